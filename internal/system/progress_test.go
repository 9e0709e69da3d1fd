package system

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/securitysystem"
)

// Off a terminal the progress is plain lines, one per period and the
// final one, without carriage returns or escape sequences; on a terminal
// one line is redrawn and ended after the final report.
func TestProgressPrinter(t *testing.T) {
	var buf bytes.Buffer
	p := newProgressPrinter(&buf) // a buffer is no terminal
	if p.tty || p.interval() != 5*time.Second {
		t.Fatalf("buffer taken for a terminal (tty %v, interval %s)", p.tty, p.interval())
	}
	for _, r := range []securitysystem.RebuildProgress{
		{Done: 1000, Total: 10000, Elapsed: 5 * time.Second},
		{Done: 1500, Total: 10000, Elapsed: 7 * time.Second}, // within the period: not printed
		{Done: 4000, Total: 10000, Elapsed: 10 * time.Second},
		{Done: 10000, Total: 10000, Elapsed: 20 * time.Second, Final: true},
	} {
		p.update(r)
	}
	want := "  1000 of 10000 events (10%), 200 events/s, about 45s left\n" +
		"  4000 of 10000 events (40%), 400 events/s, about 15s left\n" +
		"  10000 of 10000 events (100%), 500 events/s, done\n"
	if buf.String() != want {
		t.Errorf("plain progress:\n%q\nwant\n%q", buf.String(), want)
	}

	buf.Reset()
	p = &progressPrinter{out: &buf, tty: true}
	p.update(securitysystem.RebuildProgress{Done: 0, Total: 8, Elapsed: time.Second})
	p.update(securitysystem.RebuildProgress{Done: 4, Total: 8, Elapsed: 2 * time.Second})
	p.update(securitysystem.RebuildProgress{Done: 8, Total: 8, Elapsed: 3 * time.Second, Final: true})
	got := buf.String()
	if strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, "\n") || strings.Count(got, "\r") != 3 {
		t.Errorf("terminal progress is not one redrawn line: %q", got)
	}
	for _, s := range []string{
		"\r[........................] 0 of 8 events (0%), time left unknown\x1b[K",
		"\r[############............] 4 of 8 events (50%), 2 events/s, about 2s left\x1b[K",
		"\r[########################] 8 of 8 events (100%), 3 events/s, done\x1b[K\n",
	} {
		if !strings.Contains(got, s) {
			t.Errorf("terminal progress %q lacks %q", got, s)
		}
	}

	// An empty stream set is done at once.
	if got := progressLine(securitysystem.RebuildProgress{Final: true}, false); got != "0 of 0 events (100%), done" {
		t.Errorf("empty: %q", got)
	}
}
