// Package breaker is the one circuit-breaker policy of RealGuardIO's
// clients of other services: the fetch strategy's calls to the owners of
// the facts, the OpenFGA client and the IAM clients (service tokens and
// the user API). It wraps sony/gobreaker with the rules that make a
// breaker close again once its dependency is back:
//
//   - Only a failure of the dependency counts (a transport error, a
//     timeout, a 5xx, as the caller's Trips function says); a caller that
//     gave up (context.Canceled) counts as nothing, so a sibling call that
//     fails and cancels a probe never reopens the breaker.
//   - While half-open the breaker admits Probes calls at once, and a call
//     it cannot admit yet waits for a probe's outcome (bounded by its own
//     context) instead of failing: a decision that makes two calls to one
//     dependency is never refused by its own first call, and one slow
//     probe does not turn every other request into an error.
//   - A call the breaker refuses is an apperr.Unavailable (503 at the
//     edge), never an internal error.
//
// Every breaker reports its state as the gauge realguardio_breaker_state
// (0 closed, 1 half-open, 2 open) labelled by breaker name.
package breaker

import (
	"context"
	"errors"
	"fmt"
	"github.com/realguardio/realguardio/internal/platform/metrics"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"github.com/realguardio/realguardio/internal/platform/apperr"
)

// Defaults of a Policy's zero fields.
const (
	DefaultFailures = 5
	DefaultOpenFor  = 5 * time.Second
	DefaultProbes   = 3
)

// State is a breaker's state; its value is the gauge's.
type State int

// The states of a breaker.
const (
	Closed   State = 0
	HalfOpen State = 1
	Open     State = 2
)

// String returns "closed", "half-open" or "open".
func (s State) String() string {
	switch s {
	case HalfOpen:
		return "half-open"
	case Open:
		return "open"
	}
	return "closed"
}

// Policy says when a breaker opens and how it closes. Zero fields take
// the defaults.
type Policy struct {
	// Failures is how many consecutive failures open the breaker (5).
	Failures uint32
	// OpenFor is how long it stays open before admitting probes (5s).
	OpenFor time.Duration
	// Probes is how many calls the half-open breaker admits at once, and
	// how many consecutive successes close it (3): more than the calls
	// one request makes to one dependency at once.
	Probes uint32
}

func (p Policy) withDefaults() Policy {
	if p.Failures == 0 {
		p.Failures = DefaultFailures
	}
	if p.OpenFor <= 0 {
		p.OpenFor = DefaultOpenFor
	}
	if p.Probes == 0 {
		p.Probes = DefaultProbes
	}
	return p
}

// Breaker guards the calls to one dependency. It is safe for concurrent
// use.
type Breaker struct {
	name    string
	display string
	cb      *gobreaker.CircuitBreaker[struct{}]

	mu       sync.Mutex
	finished chan struct{} // closed (and replaced) whenever an admitted call ends
}

// Options are the parts of a breaker that depend on its caller.
type Options struct {
	// Display names the dependency in the message of a refusal, for
	// example "the Customer Service" (the breaker's name when empty).
	Display string
	// Trips reports whether err, returned by a call, is a failure of the
	// dependency. Nil means every error except context.Canceled. A
	// context.Canceled is never a failure whatever Trips says.
	Trips func(err error) bool
	// Registerer, when not nil, receives the state gauge. A gauge of the
	// same name left by an earlier breaker is replaced.
	Registerer prometheus.Registerer
}

// New returns a closed breaker named name (the gauge's label) under
// policy p.
func New(name string, p Policy, o Options) (*Breaker, error) {
	p = p.withDefaults()
	b := &Breaker{name: name, display: o.Display, finished: make(chan struct{})}
	if b.display == "" {
		b.display = name
	}
	trips := o.Trips
	if trips == nil {
		trips = func(error) bool { return true }
	}
	b.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        name,
		MaxRequests: p.Probes,
		Timeout:     p.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= p.Failures },
		IsExcluded: func(err error) bool {
			var g gaveUp
			return errors.As(err, &g) || errors.Is(err, context.Canceled)
		},
		IsSuccessful: func(err error) bool {
			return err == nil || !trips(err)
		},
	})
	if o.Registerer != nil {
		g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "realguardio_breaker_state",
			Help:        "State of a circuit breaker in front of a dependency: 0 closed, 1 half-open, 2 open.",
			ConstLabels: prometheus.Labels{"breaker": name},
		}, func() float64 { return float64(b.State()) })
		if err := metrics.Replace(o.Registerer, g); err != nil {
			return nil, fmt.Errorf("breaker %s: register the state gauge: %w", name, err)
		}
	}
	return b, nil
}

// Name returns the breaker's name.
func (b *Breaker) Name() string { return b.name }

// State returns the breaker's state now.
func (b *Breaker) State() State {
	switch b.cb.State() {
	case gobreaker.StateHalfOpen:
		return HalfOpen
	case gobreaker.StateOpen:
		return Open
	}
	return Closed
}

// Do runs fn through the breaker. fn should bound its work with ctx,
// which should carry the call's timeout: a call that waits for a
// half-open slot waits at most until ctx ends. The error is fn's as it
// returned it, or, when the breaker refused the call, an
// apperr.Unavailable whose cause IsRefused.
func (b *Breaker) Do(ctx context.Context, fn func(context.Context) error) error {
	for {
		b.mu.Lock()
		finished := b.finished
		b.mu.Unlock()
		ran := false
		_, err := b.cb.Execute(func() (struct{}, error) {
			ran = true
			err := fn(ctx)
			if err != nil && errors.Is(ctx.Err(), context.Canceled) {
				// The caller gave up: whatever the call returned (the
				// HTTP client returns the context's cause, such as a
				// sibling's error in an errgroup, not context.Canceled)
				// says nothing about the dependency.
				return struct{}{}, gaveUp{err}
			}
			return struct{}{}, err
		})
		var g gaveUp
		if errors.As(err, &g) {
			err = g.err
		}
		if ran {
			b.mu.Lock()
			close(b.finished)
			b.finished = make(chan struct{})
			b.mu.Unlock()
			return err
		}
		if !errors.Is(err, gobreaker.ErrTooManyRequests) {
			return b.refused(err)
		}
		// Half-open and every probe slot taken: wait for a probe to end,
		// then try again (the breaker is then closed, open or has a free
		// slot).
		select {
		case <-finished:
		case <-ctx.Done():
			return b.refused(fmt.Errorf("%w while waiting for a probe: %w", err, ctx.Err()))
		}
	}
}

// gaveUp marks the error of a call whose context was canceled, so the
// breaker counts it as nothing.
type gaveUp struct{ err error }

func (g gaveUp) Error() string { return g.err.Error() }

// refusedError marks the cause of a refusal.
type refusedError struct{ err error }

func (e refusedError) Error() string { return "circuit breaker: " + e.err.Error() }
func (e refusedError) Unwrap() error { return e.err }

func (b *Breaker) refused(err error) error {
	return apperr.Wrap(refusedError{err}, apperr.Unavailable, "%s is unavailable", b.display)
}

// IsRefused reports whether err is a call the breaker did not let through.
func IsRefused(err error) bool {
	var r refusedError
	return errors.As(err, &r)
}
