package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

func millis(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

// ratio formats v/base ("1.3×"), "-" when there is no base.
func ratio(v, base float64) string {
	if base <= 0 || v <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", v/base)
}

// WriteScaleTable writes the scale report as one table per strategy: each
// world size's figures and, in the ratio columns, each figure divided by
// the same figure at the smallest world.
func WriteScaleTable(w io.Writer, rep *ScaleReport) {
	fmt.Fprintf(w, "Scale run on %s/%s, %d CPUs, %s; worlds %v security systems; %s.\n",
		rep.Machine.OS, rep.Machine.Arch, rep.Machine.CPUs, rep.Machine.GoVersion, rep.Worlds, rep.Duration.Round(time.Second))
	fmt.Fprintln(w, "Latencies in ms (p50/p99); ratios are p99 (paging: rate) against the smallest world of the same strategy.")
	for _, strategy := range strategiesOf(rep) {
		fmt.Fprintf(w, "\n%s\n", strategy)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "systems\tlocations\tfew first page\t×\tmany first page (sees)\t×\tpaging systems/s\t×\tdecide\t×\tload\t")
		var base *ScalePoint
		for i := range rep.Points {
			p := &rep.Points[i]
			if p.Strategy != strategy {
				continue
			}
			if p.Error != "" {
				fmt.Fprintf(tw, "%d\t\terror: %s\t\t\t\t\t\t\t\t\t\n", p.Systems, strings.ReplaceAll(p.Error, "\t", " "))
				continue
			}
			if base == nil {
				base = p
			}
			paged := ""
			if !p.Paged {
				paged = " (unpaged)"
			}
			fmt.Fprintf(tw, "%d\t%d\t%s/%s\t%s\t%s/%s (%d)\t%s\t%.0f%s\t%s\t%s/%s\t%s\t%s\t\n",
				p.Systems, p.Locations,
				millis(p.FewFirstPage.P50), millis(p.FewFirstPage.P99), ratio(float64(p.FewFirstPage.P99), float64(base.FewFirstPage.P99)),
				millis(p.ManyFirstPage.P50), millis(p.ManyFirstPage.P99), p.ManyVisible, ratio(float64(p.ManyFirstPage.P99), float64(base.ManyFirstPage.P99)),
				p.PagingPerSecond, paged, ratio(p.PagingPerSecond, base.PagingPerSecond),
				millis(p.Decide.P50), millis(p.Decide.P99), ratio(float64(p.Decide.P99), float64(base.Decide.P99)),
				p.Load.Round(time.Millisecond))
		}
		tw.Flush()
	}
}

func strategiesOf(rep *ScaleReport) []string {
	var out []string
	for _, p := range rep.Points {
		if !slices.Contains(out, p.Strategy) {
			out = append(out, p.Strategy)
		}
	}
	return out
}

// PlotScale draws the p99 latency of the many user's first page, the few
// user's first page and a decision against the platform size (log scale),
// one line per strategy, and writes it as SVG to w.
func PlotScale(w io.Writer, rep *ScaleReport) error {
	panels := []struct {
		title string
		of    func(p ScalePoint) time.Duration
	}{
		{"first page, user who sees 10 000", func(p ScalePoint) time.Duration { return p.ManyFirstPage.P99 }},
		{"first page, user who sees 5", func(p ScalePoint) time.Duration { return p.FewFirstPage.P99 }},
		{"decide (disarm)", func(p ScalePoint) time.Duration { return p.Decide.P99 }},
	}
	const width, height = 6 * vg.Inch, 3.2 * vg.Inch
	canvas := vgsvg.New(width, height*vg.Length(len(panels)))
	dc := draw.New(canvas)
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(4)}
	for i, panel := range panels {
		pl := plot.New()
		pl.Title.Text = "p99 latency: " + panel.title
		pl.X.Label.Text = "security systems on the platform"
		pl.Y.Label.Text = "ms"
		pl.X.Scale = plot.LogScale{}
		pl.X.Tick.Marker = plot.LogTicks{Prec: -1}
		var lines []any
		for _, strategy := range strategiesOf(rep) {
			var xy plotter.XYs
			for _, p := range rep.Points {
				if p.Strategy == strategy && p.Error == "" {
					xy = append(xy, plotter.XY{X: float64(p.Systems), Y: float64(panel.of(p)) / float64(time.Millisecond)})
				}
			}
			if len(xy) > 0 {
				lines = append(lines, strategy, xy)
			}
		}
		if err := plotutil.AddLinePoints(pl, lines...); err != nil {
			return err
		}
		pl.Legend.Top = true
		pl.Draw(tiles.At(dc, 0, i))
	}
	_, err := canvas.WriteTo(w)
	return err
}
