package bench

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func ms(n ...int) []time.Duration {
	out := make([]time.Duration, len(n))
	for i, v := range n {
		out[i] = time.Duration(v) * time.Millisecond
	}
	return out
}

func TestPercentileNearestRank(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, c := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample is every percentile", ms(7), 99, 7 * time.Millisecond},
		{"one sample, p0", ms(7), 0, 7 * time.Millisecond},
		{"median of an odd count", ms(1, 2, 3, 4, 5), 50, 3 * time.Millisecond},
		{"median of an even count is the lower middle", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p90 of ten", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, 9 * time.Millisecond},
		{"p99 of ten is the largest", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{"p100 is the largest", ms(1, 2, 3), 100, 3 * time.Millisecond},
		{"p50 of 1..100", hundred, 50, 50 * time.Millisecond},
		{"p99 of 1..100", hundred, 99, 99 * time.Millisecond},
		{"p99.9 of 1..100", hundred, 99.9, 100 * time.Millisecond},
		{"p1 of 1..100", hundred, 1, 1 * time.Millisecond},
		{"p above 100 clamps", ms(1, 2), 150, 2 * time.Millisecond},
	} {
		if got := Percentile(c.sorted, c.p); got != c.want {
			t.Errorf("%s: Percentile(p%v) = %v, want %v", c.name, c.p, got, c.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	s := Summarize(ms(5, 1, 4, 2, 3), 2)
	want := Summary{N: 5, Errors: 2, Min: time.Millisecond, P50: 3 * time.Millisecond, P90: 5 * time.Millisecond,
		P99: 5 * time.Millisecond, Max: 5 * time.Millisecond, Mean: 3 * time.Millisecond}
	if s != want {
		t.Errorf("Summarize = %+v, want %+v", s, want)
	}
	if z := Summarize(nil, 3); z.N != 0 || z.Errors != 3 || z.P50 != 0 {
		t.Errorf("Summarize(nil) = %+v", z)
	}
}

func TestRatio(t *testing.T) {
	if r := Ratio(3, 2); r != 1.5 {
		t.Errorf("Ratio(3,2) = %v", r)
	}
	if r := Ratio(3, 0); r != 0 {
		t.Errorf("Ratio(3,0) = %v, want 0 (no baseline)", r)
	}
}

func TestDriveSendsEveryRequestOnce(t *testing.T) {
	const n = 103
	var mu sync.Mutex
	seen := map[int]int{}
	workers := map[int]bool{}
	res := Drive(context.Background(), n, 4, func(_ context.Context, w, i int) error {
		mu.Lock()
		seen[i]++
		workers[w] = true
		mu.Unlock()
		if i%10 == 0 {
			return errors.New("boom")
		}
		return nil
	})
	if len(seen) != n {
		t.Fatalf("sent %d distinct requests, want %d", len(seen), n)
	}
	for i, c := range seen {
		if c != 1 {
			t.Errorf("request %d sent %d times", i, c)
		}
	}
	if res.Requests != n || res.Errors != 11 || res.N != n-11 || res.Concurrency != 4 {
		t.Errorf("Drive = requests %d errors %d n %d concurrency %d", res.Requests, res.Errors, res.N, res.Concurrency)
	}
	if res.FirstError != "boom" || res.PerSecond <= 0 {
		t.Errorf("FirstError %q PerSecond %v", res.FirstError, res.PerSecond)
	}
	for w := range workers {
		if w < 0 || w >= 4 {
			t.Errorf("worker index %d out of range", w)
		}
	}
}

func TestDriveStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var sent atomic.Int64
	res := Drive(ctx, 1000, 2, func(context.Context, int, int) error {
		if sent.Add(1) == 10 {
			cancel()
		}
		return nil
	})
	if res.Requests >= 1000 || res.Requests < 10 {
		t.Errorf("sent %d requests after cancel at 10", res.Requests)
	}
}
