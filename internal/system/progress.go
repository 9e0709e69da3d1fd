package system

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/realguardio/realguardio/internal/securitysystem"
)

// progressPrinter shows a rebuild's progress: on a terminal one line
// redrawn in place (a bar, events done of total, rate, time left); on
// anything else (a log file, a pipe, CI) a plain line every plainEvery,
// since carriage returns would make a log unreadable.
type progressPrinter struct {
	out        io.Writer
	tty        bool
	plainEvery time.Duration
	lastPlain  time.Duration
	drawn      bool
}

// newProgressPrinter picks the form from out: redrawn when it is a
// terminal.
func newProgressPrinter(out io.Writer) *progressPrinter {
	f, ok := out.(*os.File)
	return &progressPrinter{out: out, tty: ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())), plainEvery: 5 * time.Second}
}

// interval is how often the rebuild should report: often enough for a
// smooth redraw on a terminal, the plain period otherwise.
func (p *progressPrinter) interval() time.Duration {
	if p.tty {
		return 200 * time.Millisecond
	}
	return p.plainEvery
}

// update shows one report. A plain form prints it only when plainEvery
// has passed since its last line, and always the final one; a redrawn
// line is ended after the final one.
func (p *progressPrinter) update(r securitysystem.RebuildProgress) {
	if p.tty {
		end := ""
		if r.Final {
			end = "\n"
		}
		fmt.Fprintf(p.out, "\r%s\x1b[K%s", progressLine(r, true), end)
		p.drawn = !r.Final
		return
	}
	if !r.Final && p.lastPlain != 0 && r.Elapsed-p.lastPlain < p.plainEvery {
		return
	}
	p.lastPlain = r.Elapsed
	fmt.Fprintf(p.out, "  %s\n", progressLine(r, false))
}

// abort ends a redrawn line, so an error message starts on its own.
func (p *progressPrinter) abort() {
	if p.tty && p.drawn {
		fmt.Fprintln(p.out)
	}
}

// progressLine formats one report: "[####....] 1200 of 5000 events (24%),
// 830 events/s, about 5s left". The rate is the average since the start
// of the replay, steadier than an instantaneous one over 200 ms.
func progressLine(r securitysystem.RebuildProgress, bar bool) string {
	pct := 100.0
	if r.Total > 0 {
		pct = 100 * float64(r.Done) / float64(r.Total)
	}
	line := fmt.Sprintf("%d of %d events (%.0f%%)", r.Done, r.Total, pct)
	if bar {
		const width = 24
		filled := int(pct / 100 * width)
		b := make([]byte, width)
		for i := range b {
			b[i] = '.'
			if i < filled {
				b[i] = '#'
			}
		}
		line = "[" + string(b) + "] " + line
	}
	secs := r.Elapsed.Seconds()
	if secs <= 0 || r.Done == 0 {
		if r.Final {
			return line + ", done"
		}
		return line + ", time left unknown"
	}
	rate := float64(r.Done) / secs
	line += fmt.Sprintf(", %.0f events/s", rate)
	left := time.Duration(float64(r.Total-r.Done) / rate * float64(time.Second))
	if r.Final || left <= 0 {
		return line + ", done"
	}
	return line + fmt.Sprintf(", about %s left", left.Round(time.Second))
}
