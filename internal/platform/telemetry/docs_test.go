package telemetry_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// metricRow is one row of docs/observability.md's metrics table.
var metricRow = regexp.MustCompile("^\\| `(realguardio_[a-z0-9_]+)` \\| (counter|gauge|histogram) \\| ([^|]*) \\|")

// documentedMetrics returns the metrics docs/observability.md lists, with
// their label names.
func documentedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "observability.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		m := metricRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var labels []string
		for _, l := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(m[3], -1) {
			labels = append(labels, l[1])
		}
		out[m[1]] = labels
		if m[2] == "histogram" {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				out[m[1]+suffix] = labels
			}
		}
	}
	if len(out) < 20 {
		t.Fatalf("docs/observability.md lists only %d metrics; is the table's format intact?", len(out))
	}
	return out
}

// TestDeployNamesOnlyDocumentedMetrics checks that every realguardio_*
// metric the dashboard and the alert rules under deploy/observability
// query is listed in docs/observability.md, and that the dashboard and the
// rules cover what an operator must watch.
func TestDeployNamesOnlyDocumentedMetrics(t *testing.T) {
	docs := documentedMetrics(t)
	dir := filepath.Join("..", "..", "..", "deploy", "observability")
	used := map[string]bool{}
	for _, name := range []string{"grafana-dashboard.json", "alerts.yaml"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`realguardio_[a-z0-9_]+`).FindAllString(string(b), -1) {
			used[m] = true
			if _, ok := docs[m]; !ok {
				t.Errorf("%s names %s, which docs/observability.md does not list", name, m)
			}
		}
	}
	for _, must := range []string{
		"realguardio_events_consumer_blocked", "realguardio_securitysystem_replica_lag_seconds",
		"realguardio_http_requests_total", "realguardio_breaker_state",
		"realguardio_iam_login_failures_total", "realguardio_iam_signing_key_age_seconds",
		"realguardio_authz_decisions_total", "realguardio_events_outbox_unsent",
	} {
		if !used[must] {
			t.Errorf("neither the dashboard nor the alert rules use %s", must)
		}
	}
}
