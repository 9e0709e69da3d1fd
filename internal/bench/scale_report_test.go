package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestScaleReportAndPlot(t *testing.T) {
	tp := func(p99 time.Duration) Throughput {
		return Throughput{Summary: Summary{N: 10, P50: p99 / 2, P99: p99}, Requests: 10}
	}
	rep := &ScaleReport{Worlds: []int{1000, 10000}, Machine: Machine{OS: "linux", Arch: "amd64", CPUs: 2}}
	for _, s := range []string{"none", "replicate"} {
		rep.Points = append(rep.Points,
			ScalePoint{Strategy: s, Systems: 1000, Locations: 500, FewFirstPage: tp(2 * time.Millisecond), ManyFirstPage: tp(4 * time.Millisecond),
				ManyVisible: 995, PagingPerSecond: 10000, Paged: true, Decide: tp(time.Millisecond)},
			ScalePoint{Strategy: s, Systems: 10000, Locations: 5000, FewFirstPage: tp(3 * time.Millisecond), ManyFirstPage: tp(5 * time.Millisecond),
				ManyVisible: 9995, PagingPerSecond: 5000, Paged: false, Decide: tp(time.Millisecond)})
	}
	rep.Points = append(rep.Points, ScalePoint{Strategy: "delegate", Systems: 1000, Error: "boom"})
	var buf bytes.Buffer
	WriteScaleTable(&buf, rep)
	out := buf.String()
	for _, want := range []string{"replicate", "1.50×", "1.25×", "0.50×", "(unpaged)", "error: boom", "2.00/4.00"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	buf.Reset()
	if err := PlotScale(&buf, rep); err != nil {
		t.Fatal(err)
	}
	svg := buf.String()
	if !strings.Contains(svg, "<svg") || !strings.Contains(svg, "replicate") || !strings.Contains(svg, "security systems on the platform") {
		t.Fatalf("not the expected SVG (%d bytes)", len(svg))
	}
}
