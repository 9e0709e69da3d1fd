package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/bench"
)

// TestBenchSettingsAreChecked: bad settings stop the benchmark before any
// system starts, naming each one.
func TestBenchSettingsAreChecked(t *testing.T) {
	code, _, errOut := runCLI(t, nil, "bench", "--strategies", "none,magic", "--size", "huge", "--token-sizes", "1,x", "--concurrency", "0")
	if code != ExitUsage {
		t.Fatalf("code %d, want %d; stderr %q", code, ExitUsage, errOut)
	}
	for _, want := range []string{"--size", "huge", "--token-sizes"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q does not mention %q", errOut, want)
		}
	}
	code, _, errOut = runCLI(t, nil, "bench", "--strategies", "none,magic", "--concurrency", "0")
	if code != ExitUsage || !strings.Contains(errOut, `"magic"`) || !strings.Contains(errOut, "concurrency") {
		t.Fatalf("code %d, stderr %q", code, errOut)
	}
}

// TestBenchQuick runs the command with tiny sizes on the baseline and the
// provide strategy (which has every section: token sizes and the refresh
// of the revocation trials), as JSON, and checks that every figure is
// there and sane; then that the table shows every section. A limit of
// 2048 bytes makes the 30-role token exceed it, so the refusal is
// exercised without creating a thousand locations.
func TestBenchQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole system twice")
	}
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	code := Main(ctx, []string{"bench", "--json", "--strategies", "none,provide", "--size", "small",
		"--requests", "20", "--list-requests", "10", "--concurrency", "4", "--revocations", "2",
		"--token-sizes", "1,30", "--max-access-token-bytes", "2048", "--access-token-lifetime", "2m"},
		&out, &errOut, func(string) string { return "" })
	if code != ExitOK {
		t.Fatalf("code %d; stderr:\n%s", code, errOut.String())
	}
	var rep bench.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("the --json output does not decode: %v\n%s", err, out.String())
	}
	if rep.Machine.CPUs < 1 || rep.Machine.GOMAXPROCS < 1 || rep.Note == "" {
		t.Errorf("machine %+v, note %q", rep.Machine, rep.Note)
	}
	if s := rep.Settings; s.Requests != 20 || s.Concurrency != 4 || s.Revocations != 2 || s.Size != "small" || s.AccessTokenLifetime != 2*time.Minute {
		t.Errorf("settings %+v", s)
	}
	if len(rep.Strategies) != 2 || rep.Strategies[0].Strategy != "none" || rep.Strategies[1].Strategy != "provide" {
		t.Fatalf("strategies %+v", rep.Strategies)
	}
	sane := func(what string, tp bench.Throughput, n int) {
		t.Helper()
		if tp.Requests != n || tp.N != n || tp.Errors != 0 {
			t.Errorf("%s: requests %d, successes %d, errors %d (first: %s), want %d without error", what, tp.Requests, tp.N, tp.Errors, tp.FirstError, n)
		}
		if !(tp.Min > 0 && tp.Min <= tp.P50 && tp.P50 <= tp.P90 && tp.P90 <= tp.P99 && tp.P99 <= tp.Max && tp.Max < time.Minute) {
			t.Errorf("%s: latencies out of order: %+v", what, tp.Summary)
		}
		if tp.PerSecond <= 0 || tp.Elapsed <= 0 {
			t.Errorf("%s: %v req/s over %v", what, tp.PerSecond, tp.Elapsed)
		}
	}
	for _, st := range rep.Strategies {
		if st.Error != "" {
			t.Errorf("%s failed: %s", st.Strategy, st.Error)
			continue
		}
		sane(st.Strategy+" disarm", st.Disarm, 20)
		sane(st.Strategy+" list", st.List, 10)
	}
	if rep.Strategies[0].Revocation != nil {
		t.Errorf("none has a revocation figure: %+v", rep.Strategies[0].Revocation)
	}
	rv := rep.Strategies[1].Revocation
	switch {
	case rv == nil:
		t.Errorf("provide has no revocation figure")
	case rv.N != 2 || rv.Errors != 0 || rv.P50 <= 0 || rv.P99 < rv.P50 || rv.Polls < 1 || !rv.Refresh:
		t.Errorf("provide revocation %+v", rv)
	case !strings.Contains(rv.Bound, "2m0s"):
		t.Errorf("provide bound %q does not name the token lifetime", rv.Bound)
	}
	if len(rep.TokenSizes) != 2 {
		t.Fatalf("token sizes %+v", rep.TokenSizes)
	}
	if ts := rep.TokenSizes[0]; ts.Locations != 1 || ts.Refused || ts.Bytes < 500 || ts.Bytes > 2048 {
		t.Errorf("one location role: %+v", ts)
	}
	if ts := rep.TokenSizes[1]; ts.Locations != 30 || !ts.Refused || !strings.Contains(ts.Message, "too large") {
		t.Errorf("30 location roles over a 2048-byte limit: %+v", ts)
	}
	if w := rep.World; w.DisarmSystems < 1 || w.ListVisible < 1 || w.SecuritySystems < w.DisarmSystems {
		t.Errorf("world %+v", w)
	}

	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"GOMAXPROCS", "noisy", "seed 48", "Disarm:", "List:", "Revocation", "after refresh",
		"Access-token size", "refused", "vs none", "p99 ms", "concurrency 4", "none", "provide"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, text.String())
		}
	}
}

// TestBenchScaleQuick grows a tiny platform twice through the bulk imports
// under the baseline and one strategy, and checks the report and the plot.
func TestBenchScaleQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole system twice")
	}
	plotFile := filepath.Join(t.TempDir(), "scale.svg")
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	code := Main(ctx, []string{"bench", "--json", "--scale", "12,30", "--strategies", "none,replicate", "--requests", "10",
		"--list-requests", "10", "--concurrency", "2", "--page-limit", "4", "--plot", plotFile},
		&out, &errOut, func(string) string { return "" })
	if code != ExitOK {
		t.Fatalf("code %d; stdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	var rep bench.ScaleReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("the --json output does not decode: %v\n%s", err, out.String())
	}
	if len(rep.Points) != 4 {
		t.Fatalf("points %+v", rep.Points)
	}
	for _, p := range rep.Points {
		if p.Error != "" || p.FewFirstPage.N != 10 || p.ManyFirstPage.N != 10 || p.Decide.N != 10 || p.PagingPerSecond <= 0 {
			t.Errorf("%s at %d: %+v", p.Strategy, p.Systems, p)
		}
		if want := p.Systems - 5; p.ManyVisible != want {
			t.Errorf("%s at %d: the many user sees %d, want %d", p.Strategy, p.Systems, p.ManyVisible, want)
		}
	}
	svg, err := os.ReadFile(plotFile)
	if err != nil || !bytes.Contains(svg, []byte("<svg")) {
		t.Fatalf("plot: %v, %d bytes", err, len(svg))
	}
}

// TestBenchScaleReports merges two saved scale reports, one strategy
// each, into one table and one plot without running anything, and refuses
// a file that is not a report.
func TestBenchScaleReports(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, rep bench.ScaleReport) string {
		b, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	point := func(strategy string, systems int) bench.ScalePoint {
		th := bench.Throughput{Summary: bench.Summary{N: 10, P50: time.Millisecond, P99: 2 * time.Millisecond}, Requests: 10}
		return bench.ScalePoint{Strategy: strategy, Systems: systems, Locations: systems / 2, FewFirstPage: th, ManyFirstPage: th,
			ManyVisible: systems - 5, PagingPerSecond: 5000, Paged: true, Decide: th, Load: time.Second}
	}
	a := write("none.json", bench.ScaleReport{Worlds: []int{100, 1000}, Points: []bench.ScalePoint{point("none", 100), point("none", 1000)}})
	b := write("delegate.json", bench.ScaleReport{Worlds: []int{100, 1000, 10000}, Points: []bench.ScalePoint{point("delegate", 100), point("delegate", 1000), point("delegate", 10000)}})
	plotFile := filepath.Join(dir, "scale.svg")
	code, out, errOut := runCLI(t, nil, "bench", "--scale-reports", a+","+b, "--plot", plotFile)
	if code != ExitOK {
		t.Fatalf("code %d: %s", code, errOut)
	}
	for _, want := range []string{"worlds [100 1000 10000]", "none\n", "delegate\n", "   10000 "} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if svg, err := os.ReadFile(plotFile); err != nil || !bytes.Contains(svg, []byte("<svg")) {
		t.Fatalf("plot: %v, %d bytes", err, len(svg))
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, nil, "bench", "--scale-reports", bad); code != ExitUsage || !strings.Contains(errOut, "not a scale report") {
		t.Fatalf("a bad file: code %d, %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, nil, "bench", "--scale-reports", a, "--scale", "10,20"); code != ExitUsage || !strings.Contains(errOut, "scale-reports") {
		t.Fatalf("with --scale: code %d, %s", code, errOut)
	}
}
