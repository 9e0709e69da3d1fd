package breaker_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/breaker"
)

var errDown = errors.New("connection refused")

func fail(context.Context) error { return errDown }
func ok(context.Context) error   { return nil }

func open(t *testing.T, b *breaker.Breaker, failures int) {
	t.Helper()
	for range failures {
		_ = b.Do(context.Background(), fail)
	}
	if b.State() != breaker.Open {
		t.Fatalf("state after %d failures = %s, want open", failures, b.State())
	}
}

func TestOpensAndRefusesAsUnavailable(t *testing.T) {
	b, err := breaker.New("dep", breaker.Policy{Failures: 2, OpenFor: time.Hour}, breaker.Options{Display: "the Dep Service"})
	if err != nil {
		t.Fatal(err)
	}
	open(t, b, 2)
	called := false
	err = b.Do(context.Background(), func(context.Context) error { called = true; return nil })
	if called {
		t.Fatal("an open breaker let a call through")
	}
	if !apperr.Is(err, apperr.Unavailable) || !breaker.IsRefused(err) {
		t.Fatalf("refusal = %v, want an Unavailable refusal", err)
	}
	if ae := apperr.As(err); !strings.Contains(ae.Message, "the Dep Service") {
		t.Fatalf("message %q does not name the dependency", ae.Message)
	}
}

func TestCanceledCallIsNoFailure(t *testing.T) {
	b, _ := breaker.New("dep", breaker.Policy{Failures: 1, OpenFor: time.Hour}, breaker.Options{})
	_ = b.Do(context.Background(), func(context.Context) error { return context.Canceled })
	if b.State() != breaker.Closed {
		t.Fatalf("a canceled call opened the breaker")
	}
}

// TestCanceledWithCauseIsNoFailure: an errgroup cancels its context with
// the first error as its cause, and the HTTP client returns that cause,
// not context.Canceled: still the caller gave up, not the dependency.
func TestCanceledWithCauseIsNoFailure(t *testing.T) {
	b, _ := breaker.New("dep", breaker.Policy{Failures: 1, OpenFor: time.Hour}, breaker.Options{})
	ctx, cancel := context.WithCancelCause(context.Background())
	sibling := errors.New("a sibling call failed")
	cancel(sibling)
	err := b.Do(ctx, func(ctx context.Context) error { return context.Cause(ctx) })
	if !errors.Is(err, sibling) {
		t.Fatalf("err = %v, want the call's own error", err)
	}
	if b.State() != breaker.Closed {
		t.Fatalf("a call canceled with a cause opened the breaker")
	}
}

func TestTripsDecidesWhatCounts(t *testing.T) {
	notFound := errors.New("not found")
	b, _ := breaker.New("dep", breaker.Policy{Failures: 1, OpenFor: time.Hour}, breaker.Options{
		Trips: func(err error) bool { return !errors.Is(err, notFound) },
	})
	for range 5 {
		if err := b.Do(context.Background(), func(context.Context) error { return notFound }); !errors.Is(err, notFound) {
			t.Fatalf("err = %v, want the call's own error", err)
		}
	}
	if b.State() != breaker.Closed {
		t.Fatal("an answer that is no failure opened the breaker")
	}
}

// TestHalfOpenSiblingsBothServed is the fetch strategy's starvation: one
// request makes two concurrent calls to one dependency in an errgroup
// whose first error cancels the other. Half-open, both must be served.
func TestHalfOpenSiblingsBothServed(t *testing.T) {
	b, _ := breaker.New("dep", breaker.Policy{Failures: 1, OpenFor: 20 * time.Millisecond, Probes: 1}, breaker.Options{})
	open(t, b, 1)
	time.Sleep(40 * time.Millisecond)
	if b.State() != breaker.HalfOpen {
		t.Fatalf("state = %s, want half-open", b.State())
	}
	g, gctx := errgroup.WithContext(context.Background())
	for range 2 {
		g.Go(func() error {
			return b.Do(gctx, func(ctx context.Context) error {
				select {
				case <-time.After(10 * time.Millisecond):
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			})
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("half-open request with two calls failed: %v", err)
	}
	if b.State() != breaker.Closed {
		t.Fatalf("state = %s after successful probes, want closed", b.State())
	}
}

// TestHalfOpenManyConcurrentRequestsClose drives many concurrent callers
// into a half-open breaker with few probe slots: every caller is served
// and the breaker closes.
func TestHalfOpenManyConcurrentRequestsClose(t *testing.T) {
	b, _ := breaker.New("dep", breaker.Policy{Failures: 1, OpenFor: 20 * time.Millisecond, Probes: 2}, breaker.Options{})
	open(t, b, 1)
	time.Sleep(40 * time.Millisecond)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			errs <- b.Do(ctx, func(context.Context) error { time.Sleep(time.Millisecond); return nil })
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a caller of the half-open breaker failed: %v", err)
		}
	}
	if b.State() != breaker.Closed {
		t.Fatalf("state = %s, want closed", b.State())
	}
}

// TestHalfOpenFailedProbeReopens: a probe that fails
// reopens the breaker, and the callers waiting for it are refused at once
// instead of each waiting for its own timeout.
func TestHalfOpenFailedProbeReopens(t *testing.T) {
	b, _ := breaker.New("dep", breaker.Policy{Failures: 1, OpenFor: 20 * time.Millisecond, Probes: 1}, breaker.Options{})
	open(t, b, 1)
	time.Sleep(40 * time.Millisecond)
	release := make(chan struct{})
	started := make(chan struct{})
	probe := make(chan error, 1)
	go func() {
		probe <- b.Do(context.Background(), func(context.Context) error { close(started); <-release; return errDown })
	}()
	<-started
	waiter := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		waiter <- b.Do(ctx, ok)
	}()
	time.Sleep(10 * time.Millisecond)
	close(release)
	start := time.Now()
	err := <-waiter
	if !breaker.IsRefused(err) || !apperr.Is(err, apperr.Unavailable) {
		t.Fatalf("waiter got %v, want a refusal once the probe failed", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("waiter was refused after %s, want at once", d)
	}
	if err := <-probe; !errors.Is(err, errDown) {
		t.Fatalf("probe = %v", err)
	}
	if b.State() != breaker.Open {
		t.Fatalf("state = %s, want open again", b.State())
	}
}

func TestWaiterBoundedByItsContext(t *testing.T) {
	b, _ := breaker.New("dep", breaker.Policy{Failures: 1, OpenFor: 20 * time.Millisecond, Probes: 1}, breaker.Options{})
	open(t, b, 1)
	time.Sleep(40 * time.Millisecond)
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	go func() {
		_ = b.Do(context.Background(), func(context.Context) error { close(started); <-release; return nil })
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := b.Do(ctx, ok)
	if !breaker.IsRefused(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a refusal after the waiter's deadline", err)
	}
}

func TestStateGauge(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := breaker.New("customer", breaker.Policy{Failures: 1, OpenFor: time.Hour}, breaker.Options{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	// A second breaker of the same name replaces the first's gauge.
	b, err := breaker.New("customer", breaker.Policy{Failures: 1, OpenFor: time.Hour}, breaker.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if got := gauge(t, reg, "customer"); got != 0 {
		t.Fatalf("gauge = %v, want 0 (closed)", got)
	}
	_ = b.Do(context.Background(), fail)
	if got := gauge(t, reg, "customer"); got != 2 {
		t.Fatalf("gauge = %v, want 2 (open)", got)
	}
}

// gauge reads realguardio_breaker_state{breaker=name} from reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != "realguardio_breaker_state" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "breaker" && l.GetValue() == name {
					n++
					v = m.GetGauge().GetValue()
				}
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d gauges for breaker %q, want 1", n, name)
	}
	return v
}
