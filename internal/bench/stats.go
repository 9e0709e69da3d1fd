package bench

import (
	"math"
	"slices"
	"time"
)

// Summary describes a set of latency samples: how many there were, how many
// requests failed, and the usual percentiles. Durations are in the JSON
// report as nanoseconds and in the table as milliseconds.
type Summary struct {
	// N is the number of successful samples the percentiles are over.
	N int `json:"n"`
	// Errors counts the requests that failed or got an unexpected status;
	// they are not in the percentiles, so a strategy cannot look fast by
	// failing fast.
	Errors int `json:"errors"`
	// Min, P50, P90, P99 and Max are order statistics of the samples.
	Min time.Duration `json:"minNs"`
	P50 time.Duration `json:"p50Ns"`
	P90 time.Duration `json:"p90Ns"`
	P99 time.Duration `json:"p99Ns"`
	Max time.Duration `json:"maxNs"`
	// Mean is the arithmetic mean of the samples.
	Mean time.Duration `json:"meanNs"`
}

// Summarize computes the Summary of samples (which it sorts in place) with
// errors failed requests beside them.
func Summarize(samples []time.Duration, errors int) Summary {
	s := Summary{N: len(samples), Errors: errors}
	if len(samples) == 0 {
		return s
	}
	slices.Sort(samples)
	var sum time.Duration
	for _, d := range samples {
		sum += d
	}
	s.Min, s.Max = samples[0], samples[len(samples)-1]
	s.P50 = Percentile(samples, 50)
	s.P90 = Percentile(samples, 90)
	s.P99 = Percentile(samples, 99)
	s.Mean = sum / time.Duration(len(samples))
	return s
}

// Percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest sample such that at least p percent of
// the samples are at or below it. Nearest rank never invents a value
// between two samples, so a p99 over 20 trials is honestly the largest
// one rather than an interpolation suggesting precision the run lacks. It
// returns 0 for no samples.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Ratio returns a/b, or 0 when b is zero so that a missing baseline prints
// as "–" rather than as infinity.
func Ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
