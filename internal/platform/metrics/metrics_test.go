package metrics_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/realguardio/realguardio/internal/platform/metrics"
)

func counter() prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: "realguardio_test_total", Help: "A test counter."})
}

func TestReplaceKeepsTheNewest(t *testing.T) {
	reg := prometheus.NewRegistry()
	first, second := counter(), counter()
	first.Add(5)
	second.Add(2)
	for _, c := range []prometheus.Counter{first, second} {
		if err := metrics.Replace(reg, c); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := testutil.GatherAndCount(reg, "realguardio_test_total"); err != nil || got != 1 {
		t.Fatalf("series = %d, %v", got, err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if v := mfs[0].GetMetric()[0].GetCounter().GetValue(); v != 2 {
		t.Fatalf("reported %v, want the newest counter's 2", v)
	}
	if err := metrics.Replace(nil, counter()); err != nil {
		t.Fatal(err)
	}
}

func TestShareReturnsTheFirst(t *testing.T) {
	reg := prometheus.NewRegistry()
	first, err := metrics.Share(reg, counter())
	if err != nil {
		t.Fatal(err)
	}
	second, err := metrics.Share(reg, counter())
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Fatal("the second registration did not get the first counter")
	}
	// Same name, other labels: a real conflict, reported.
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "realguardio_test_total", Help: "A test counter."}, []string{"x"})
	if _, err := metrics.Share(reg, vec); err == nil {
		t.Fatal("a conflicting registration was accepted")
	}
}
