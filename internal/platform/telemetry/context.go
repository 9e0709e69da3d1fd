package telemetry

import (
	"context"
	"net/http"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"go.opentelemetry.io/otel/trace/noop"
)

// instrumentation names the tracer of RealGuardIO's own spans.
const instrumentation = "github.com/realguardio/realguardio"

// nooMeter keeps otelhttp's own metrics off: the services export theirs to
// Prometheus, labelled by route (httpx).
var nooMeter = metricnoop.NewMeterProvider()

type providerKey struct{}

// WithProvider returns ctx carrying tp, the provider of spans started from
// ctx that continue no span: the wiring puts each service's provider in the
// context of its background work. A nil tp returns ctx unchanged.
func WithProvider(ctx context.Context, tp trace.TracerProvider) context.Context {
	if tp == nil {
		return ctx
	}
	return context.WithValue(ctx, providerKey{}, tp)
}

// providerFrom returns the provider of the span ctx continues, else the one
// WithProvider stored, else nil.
func providerFrom(ctx context.Context) trace.TracerProvider {
	if s := trace.SpanFromContext(ctx); s.IsRecording() {
		return s.TracerProvider()
	}
	if tp, ok := ctx.Value(providerKey{}).(trace.TracerProvider); ok {
		return tp
	}
	return nil
}

// Active reports whether ctx continues a recording span, so that work done
// for it should be traced.
func Active(ctx context.Context) bool { return trace.SpanFromContext(ctx).IsRecording() }

// StartSpan starts a child span of the recording span in ctx. Without one it
// returns ctx and a no-op span, so code inside a request or an event is
// traced and background polling is not.
func StartSpan(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	s := trace.SpanFromContext(ctx)
	if !s.IsRecording() {
		return ctx, noop.Span{}
	}
	return s.TracerProvider().Tracer(instrumentation).Start(ctx, name, opts...)
}

// StartRoot starts a span with the provider stored by WithProvider (or the
// current span's), for work that begins outside any request, such as an
// event's delivery; without a provider it returns a no-op span.
func StartRoot(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	tp := providerFrom(ctx)
	if tp == nil {
		return ctx, noop.Span{}
	}
	return tp.Tracer(instrumentation).Start(ctx, name, opts...)
}

// Enabled reports whether spans started from ctx may be recorded.
func Enabled(ctx context.Context) bool { return providerFrom(ctx) != nil }

// Handler wraps a service's whole HTTP surface with a server span per
// request, continuing the caller's W3C trace context, with tp the
// service's provider; httpx names the span after the matched route. A nil
// tp returns h unchanged.
func Handler(tp trace.TracerProvider, h http.Handler) http.Handler {
	if tp == nil {
		return h
	}
	return otelhttp.NewHandler(h, "http.server",
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(Propagator),
		otelhttp.WithMeterProvider(nooMeter),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method }),
		// Probes and scrapes every few seconds would bury the traces
		// of users' requests.
		otelhttp.WithFilter(func(r *http.Request) bool {
			return r.URL.Path != "/healthz" && r.URL.Path != "/readyz" && r.URL.Path != "/metrics"
		}),
	)
}

// Transport wraps base (http.DefaultTransport when nil) so that a request
// made inside a recording span gets a client span and carries the W3C
// trace context; any other request goes straight to base.
func Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if t, ok := base.(*transport); ok {
		return t
	}
	return &transport{base: base, traced: otelhttp.NewTransport(base,
		otelhttp.WithTracerProvider(dispatcher{}),
		otelhttp.WithPropagators(Propagator),
		otelhttp.WithMeterProvider(nooMeter),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Host }),
	)}
}

type transport struct {
	base   http.RoundTripper
	traced http.RoundTripper
}

// RoundTrip traces the request only when its context is traced.
func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !Active(r.Context()) {
		return t.base.RoundTrip(r)
	}
	return t.traced.RoundTrip(r)
}

// CloseIdleConnections closes the idle connections of the base transport,
// so http.Client.CloseIdleConnections keeps working through the wrapper.
func (t *transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// Client returns an *http.Client with the given timeout whose transport is
// Transport(nil).
func Client(timeout time.Duration) *http.Client {
	return &http.Client{Transport: Transport(nil), Timeout: timeout}
}

// Inject returns the W3C trace context of ctx as header pairs (empty when
// ctx has no valid span), for carriers other than HTTP: the outbox row and
// the NATS message.
func Inject(ctx context.Context) map[string]string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return nil
	}
	c := propagation.MapCarrier{}
	Propagator.Inject(ctx, c)
	return c
}

// Extract returns the span context carried by the header pairs get reads,
// or an invalid one.
func Extract(get func(key string) string) trace.SpanContext {
	c := propagation.MapCarrier{}
	for _, k := range Propagator.Fields() {
		if v := get(k); v != "" {
			c[k] = v
		}
	}
	return trace.SpanContextFromContext(Propagator.Extract(context.Background(), c))
}

// dispatcher is the provider of client spans: it starts each span with the
// provider of the span it continues, so a call made by a service is that
// service's span.
type dispatcher struct{ embedded.TracerProvider }

// Tracer returns a tracer that dispatches at Start.
func (dispatcher) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return dispatchTracer{name: name, opts: opts}
}

type dispatchTracer struct {
	embedded.Tracer
	name string
	opts []trace.TracerOption
}

// Start starts the span with the provider found in ctx, or a no-op span.
func (d dispatchTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	tp := providerFrom(ctx)
	if tp == nil {
		return noop.NewTracerProvider().Tracer(d.name).Start(ctx, name, opts...)
	}
	return tp.Tracer(d.name, d.opts...).Start(ctx, name, opts...)
}
