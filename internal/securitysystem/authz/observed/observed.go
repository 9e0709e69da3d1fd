// Package observed decorates an authz.Authorizer with what an operator needs
// to see of every authorization decision: a span (strategy, operation,
// outcome, reason, where the facts came from) and the Prometheus counters
// and latency histogram of decisions by strategy, operation, outcome and
// reason. The decision itself is the wrapped strategy's, unchanged.
package observed

import (
	"context"
	"errors"
	"github.com/realguardio/realguardio/internal/platform/metrics"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/telemetry"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/securitysystem/authz"
)

// Outcomes of a decision, as the metric label and span attribute spell them.
const (
	OutcomeAllowed = "allowed"
	OutcomeDenied  = "denied"
	// OutcomeError is a decision that could not be made (503).
	OutcomeError = "error"
)

// Operations besides policy's view, arm and disarm.
const (
	// OpList is a Filter: the systems of a page the caller may view.
	OpList = "list"
	// OpCreate is AuthorizeCreate.
	OpCreate = "create"
	// OpScope is Scope: the grant roots a list query starts from.
	OpScope = "scope"
)

// FactsSource names where each strategy gets the facts of the rule.
func FactsSource(strategy string) string {
	switch strategy {
	case authz.StrategyProvide:
		return "token"
	case authz.StrategyFetch:
		return "owner_call"
	case authz.StrategyReplicate:
		return "replica"
	case authz.StrategyDelegate:
		return "openfga"
	default:
		return "none"
	}
}

// Authorizer is the decorator.
type Authorizer struct {
	next     authz.Authorizer
	strategy string
	source   string
	count    *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

var _ authz.Authorizer = (*Authorizer)(nil)

// New wraps next; reg, when not nil, receives
// realguardio_authz_decisions_total and
// realguardio_authz_decision_duration_seconds.
func New(next authz.Authorizer, reg prometheus.Registerer) (*Authorizer, error) {
	a := &Authorizer{
		next:     next,
		strategy: next.Name(),
		source:   FactsSource(next.Name()),
		count: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "realguardio_authz_decisions_total",
			Help: "Authorization decisions of the Security System Service, by strategy, operation (view, arm, disarm, list, create), outcome (allowed, denied, error) and reason (none when allowed, the denial reason, or unavailable).",
		}, []string{"strategy", "operation", "outcome", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "realguardio_authz_decision_duration_seconds",
			Help:    "Time to make an authorization decision (facts included), by strategy and operation.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"strategy", "operation"}),
	}
	// Every strategy built in the process adds to the same series.
	var err error
	if a.count, err = metrics.Share(reg, a.count); err != nil {
		return nil, err
	}
	if a.latency, err = metrics.Share(reg, a.latency); err != nil {
		return nil, err
	}
	return a, nil
}

// Name returns the wrapped strategy's name.
func (a *Authorizer) Name() string { return a.strategy }

// Unwrap returns the decorated strategy.
func (a *Authorizer) Unwrap() authz.Authorizer { return a.next }

// Decide decides through the strategy and records the decision.
func (a *Authorizer) Decide(ctx context.Context, caller *auth.Caller, op policy.Op, ss authz.SystemRef, now time.Time) (policy.Decision, error) {
	ctx, done := a.start(ctx, string(op), attribute.String("realguardio.security_system.id", ss.ID))
	d, err := a.next.Decide(ctx, caller, op, ss, now)
	done(d, err)
	return d, err
}

// Filter filters through the strategy and records one list decision.
func (a *Authorizer) Filter(ctx context.Context, caller *auth.Caller, systems []authz.SystemRef, now time.Time) ([]authz.Permitted, error) {
	ctx, done := a.start(ctx, OpList, attribute.Int("realguardio.authz.systems", len(systems)))
	out, err := a.next.Filter(ctx, caller, systems, now)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attribute.Int("realguardio.authz.permitted", len(out)))
	}
	// A list is allowed as a whole; which systems it shows is the filter.
	done(policy.Decision{Allowed: true}, err)
	return out, err
}

// Scope reads the caller's view scope through the strategy and records it
// as one scope decision: the query of a list page starts from it.
func (a *Authorizer) Scope(ctx context.Context, caller *auth.Caller, now time.Time) (policy.Scope, error) {
	ctx, done := a.start(ctx, OpScope)
	sc, err := a.next.Scope(ctx, caller, now)
	done(policy.Decision{Allowed: true}, err)
	return sc, err
}

// AuthorizeCreate authorizes through the strategy and records the decision.
func (a *Authorizer) AuthorizeCreate(ctx context.Context, caller *auth.Caller, locationID string) (authz.CreateCheck, error) {
	ctx, done := a.start(ctx, OpCreate, attribute.String("realguardio.location.id", locationID))
	c, err := a.next.AuthorizeCreate(ctx, caller, locationID)
	done(c.Decision, err)
	return c, err
}

// AuthorizeCreates authorizes the creations at many locations through the
// strategy's bulk path and records each decision. It is only called when
// the strategy has one (Bulk).
func (a *Authorizer) AuthorizeCreates(ctx context.Context, caller *auth.Caller, locationIDs []string) ([]authz.CreateCheck, error) {
	b, ok := a.next.(authz.BulkCreateAuthorizer)
	if !ok {
		return nil, errors.New("observed: the strategy has no bulk creation check")
	}
	checks, err := b.AuthorizeCreates(ctx, caller, locationIDs)
	for i := range locationIDs {
		_, done := a.start(ctx, OpCreate, attribute.String("realguardio.location.id", locationIDs[i]))
		if err != nil {
			done(policy.Decision{}, err)
			break
		}
		done(checks[i].Decision, nil)
	}
	return checks, err
}

// Bulk reports whether the strategy decides bulk creations itself
// (authz.BulkCreateAuthorizer); the import asks AuthorizeCreates only then.
func (a *Authorizer) Bulk() bool {
	_, ok := a.next.(authz.BulkCreateAuthorizer)
	return ok
}

// start opens the decision's span (when the request is traced) and returns
// the function that records its outcome in the span and the metrics.
func (a *Authorizer) start(ctx context.Context, op string, attrs ...attribute.KeyValue) (context.Context, func(policy.Decision, error)) {
	begin := time.Now()
	ctx, span := telemetry.StartSpan(ctx, "authz "+op, trace.WithAttributes(append(attrs,
		attribute.String("realguardio.authz.strategy", a.strategy),
		attribute.String("realguardio.authz.operation", op),
		attribute.String("realguardio.authz.facts_source", a.source))...))
	return ctx, func(d policy.Decision, err error) {
		outcome, reason := Outcome(d, err)
		a.count.WithLabelValues(a.strategy, op, outcome, reason).Inc()
		observe(a.latency.WithLabelValues(a.strategy, op), ctx, time.Since(begin).Seconds())
		if !span.IsRecording() {
			return
		}
		span.SetAttributes(attribute.String("realguardio.authz.outcome", outcome), attribute.String("realguardio.authz.reason", reason))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "decision unavailable")
		}
		span.End()
	}
}

// Outcome returns the outcome and reason labels of a decision.
func Outcome(d policy.Decision, err error) (outcome, reason string) {
	switch {
	case err != nil:
		return OutcomeError, "unavailable"
	case d.Allowed:
		return OutcomeAllowed, "none"
	case d.Reason == "":
		return OutcomeDenied, "unknown"
	default:
		return OutcomeDenied, d.Reason
	}
}

// observe records a latency with the trace id of a sampled request as an
// exemplar.
func observe(o prometheus.Observer, ctx context.Context, seconds float64) {
	sc := trace.SpanContextFromContext(ctx)
	if eo, ok := o.(prometheus.ExemplarObserver); ok && sc.IsSampled() {
		eo.ObserveWithExemplar(seconds, prometheus.Labels{"trace_id": sc.TraceID().String()})
		return
	}
	o.Observe(seconds)
}
