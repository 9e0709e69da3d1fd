package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Throughput is the outcome of a closed-loop load: the latency summary of
// the requests, the wall time of the whole run and the rate it implies.
type Throughput struct {
	Summary
	// Requests is how many requests were sent (successes and errors).
	Requests int `json:"requests"`
	// Concurrency is the number of workers that sent them.
	Concurrency int `json:"concurrency"`
	// Elapsed is the wall time from the first request to the last answer.
	Elapsed time.Duration `json:"elapsedNs"`
	// PerSecond is Requests / Elapsed.
	PerSecond float64 `json:"perSecond"`
	// FirstError describes the first failure, so a run with errors says
	// why without a log to read.
	FirstError string `json:"firstError,omitempty"`
}

// Drive sends n requests with concurrency workers in a closed loop: each
// worker sends its next request as soon as the previous one is answered,
// so the rate measured is what the system sustains rather than a rate we
// chose. do sends request i (0 ≤ i < n) from worker w and reports whether
// it succeeded; only successes are timed into the percentiles. Drive stops
// early when ctx ends, counting what was not sent as neither success nor
// error.
func Drive(ctx context.Context, n, concurrency int, do func(ctx context.Context, w, i int) error) Throughput {
	concurrency = max(1, min(concurrency, n))
	var (
		next     atomic.Int64
		mu       sync.Mutex
		samples  = make([]time.Duration, 0, n)
		errs     int
		firstErr string
		wg       sync.WaitGroup
	)
	start := time.Now()
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, n/concurrency+1)
			var localErrs int
			var localFirst string
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					break
				}
				t0 := time.Now()
				err := do(ctx, w, i)
				d := time.Since(t0)
				if err != nil {
					if localFirst == "" {
						localFirst = err.Error()
					}
					localErrs++
					continue
				}
				local = append(local, d)
			}
			mu.Lock()
			samples = append(samples, local...)
			errs += localErrs
			if firstErr == "" {
				firstErr = localFirst
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	sent := len(samples) + errs
	return Throughput{
		Summary:     Summarize(samples, errs),
		Requests:    sent,
		Concurrency: concurrency,
		Elapsed:     elapsed,
		PerSecond:   Ratio(float64(sent), elapsed.Seconds()),
		FirstError:  firstErr,
	}
}
