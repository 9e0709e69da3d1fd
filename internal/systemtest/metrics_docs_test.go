package systemtest

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var (
	docMetricRow = regexp.MustCompile("^\\| `(realguardio_[a-z0-9_]+)` \\| (counter|gauge|histogram) \\| ([^|]*) \\|")
	docLabel     = regexp.MustCompile("`([a-z_]+)`")
	sampleLine   = regexp.MustCompile(`^(realguardio_[a-zA-Z0-9_]+)(?:\{(.*)\})? `)
	sampleLabel  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="`)
)

// documented returns docs/observability.md's metrics and their sorted
// label names (histograms under their _bucket, _sum and _count names).
func documented(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "observability.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		m := docMetricRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var labels []string
		for _, l := range docLabel.FindAllStringSubmatch(m[3], -1) {
			labels = append(labels, l[1])
		}
		slices.Sort(labels)
		names := []string{m[1]}
		if m[2] == "histogram" {
			names = []string{m[1] + "_bucket", m[1] + "_sum", m[1] + "_count"}
		}
		for _, n := range names {
			out[n] = labels
		}
	}
	return out
}

// checkMetricsDocumented scrapes every service of s and fails for each
// realguardio_* metric that docs/observability.md does not list with
// exactly the labels it carries.
func checkMetricsDocumented(t *testing.T, s *System) {
	t.Helper()
	docs := documented(t)
	seen := 0
	for _, svc := range s.Services() {
		resp, err := http.Get(s.URL(svc) + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(body), "\n") {
			m := sampleLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			seen++
			var labels []string
			for _, l := range sampleLabel.FindAllStringSubmatch(m[2], -1) {
				if l[1] != "le" {
					labels = append(labels, l[1])
				}
			}
			slices.Sort(labels)
			want, ok := docs[m[1]]
			switch {
			case !ok:
				t.Errorf("%s exposes %s, which docs/observability.md does not list", svc, m[1])
				docs[m[1]] = labels // report once
			case !slices.Equal(want, labels):
				t.Errorf("%s exposes %s with labels %v; docs/observability.md says %v", svc, m[1], labels, want)
				docs[m[1]] = labels
			}
		}
	}
	if seen == 0 {
		t.Fatal("no realguardio_* metric scraped")
	}
}

// checkRouteLabel checks that API requests are counted under their
// route pattern, not the "/" the API is mounted under.
func checkRouteLabel(t *testing.T, s *System, service, route string) {
	t.Helper()
	resp, err := http.Get(s.URL(service) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `route="`+route+`"`) {
		t.Errorf("%s's metrics have no route %q", service, route)
	}
}
