// Package telemetry sets up OpenTelemetry tracing for RealGuardIO: one
// TracerProvider per service (so each carries its own resource,
// service.name realguardio-<service>), exporting over OTLP when the
// standard OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
// is set, or as JSON lines to a file (`up --trace`). The exporters and the
// SDK read the other standard OTEL_* variables themselves (headers,
// timeouts, sampler, resource attributes); this package only picks the
// protocol, which the SDK leaves to the program.
//
// Tracing is off by default. Off, no provider is built, servers are not
// wrapped, and the helpers below (Transport, StartSpan) find no span in
// their context and cost one context lookup.
//
// Code below the wiring never holds a provider: it finds one in its
// context, either the span it continues (spans remember their provider) or
// one the wiring put there with WithProvider for background work (relays,
// consumers). One process running every service (`up`) therefore gets each
// service's spans under that service's name without passing providers
// through every constructor.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ServiceNamePrefix starts every service name: realguardio-<service>.
const ServiceNamePrefix = "realguardio-"

// Propagator is the W3C trace context propagator used on every HTTP call and
// every event. Baggage is not propagated: nothing reads it, and a caller's
// baggage would otherwise travel into every backend.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Config says where spans go. The zero value turns tracing off.
type Config struct {
	// OTLP exports spans over OTLP to the endpoint of the standard
	// variables, read by the exporter itself.
	OTLP bool
	// Protocol is the OTLP protocol: "grpc" (the default, as the
	// specification says) or "http/protobuf".
	Protocol string
	// File, when set, receives every span as one JSON object per line,
	// appended, for a developer without a collector.
	File string
	// Exporter, when set, receives every span as it ends (tests use the
	// SDK's in-memory exporter).
	Exporter sdktrace.SpanExporter
}

// Enabled reports whether any exporter is configured.
func (c Config) Enabled() bool { return c.OTLP || c.File != "" || c.Exporter != nil }

// FromEnv returns the OTLP part of the configuration from the standard
// variables: OTLP is on when OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (and OTEL_TRACES_EXPORTER is not
// "none"), with the protocol of OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or
// OTEL_EXPORTER_OTLP_PROTOCOL. OTEL_TRACES_EXPORTER=console writes to the
// file the caller then names (File). getenv is os.Getenv outside tests.
func FromEnv(getenv func(string) string) (Config, error) {
	var c Config
	exporter := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))
	switch exporter {
	case "none":
		return c, nil
	case "", "otlp", "console":
	default:
		return c, fmt.Errorf("OTEL_TRACES_EXPORTER: %q is not supported (want otlp, console or none)", exporter)
	}
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
		c.OTLP = exporter != "console"
	}
	c.Protocol = getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if c.Protocol == "" {
		c.Protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch c.Protocol {
	case "", "grpc", "http/protobuf":
	default:
		return c, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL: %q is not supported (want grpc or http/protobuf)", c.Protocol)
	}
	return c, nil
}

// Tracing holds the exporters and the providers built from them.
type Tracing struct {
	exporters []sdktrace.SpanExporter
	file      *os.File

	mu        sync.Mutex
	providers map[string]*sdktrace.TracerProvider
	syncer    bool
}

// Setup builds the exporters of cfg. With tracing off it returns nil, and
// a nil *Tracing hands out no-op providers.
func Setup(ctx context.Context, cfg Config) (*Tracing, error) {
	if !cfg.Enabled() {
		return nil, nil
	}
	t := &Tracing{providers: map[string]*sdktrace.TracerProvider{}, syncer: cfg.Exporter != nil}
	if cfg.OTLP {
		var exp sdktrace.SpanExporter
		var err error
		if cfg.Protocol == "http/protobuf" {
			exp, err = otlptracehttp.New(ctx)
		} else {
			exp, err = otlptracegrpc.New(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("OTLP trace exporter: %w", err)
		}
		t.exporters = append(t.exporters, exp)
	}
	if cfg.File != "" {
		f, err := os.OpenFile(cfg.File, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			_ = t.Shutdown(ctx)
			return nil, fmt.Errorf("trace file: %w", err)
		}
		t.file = f
		exp, err := stdouttrace.New(stdouttrace.WithWriter(f))
		if err != nil {
			_ = t.Shutdown(ctx)
			return nil, fmt.Errorf("trace file: %w", err)
		}
		t.exporters = append(t.exporters, exp)
	}
	if cfg.Exporter != nil {
		t.exporters = append(t.exporters, cfg.Exporter)
	}
	return t, nil
}

// Provider returns the tracer provider of service, built on first use with
// the resource service.name realguardio-<service>, or a no-op provider
// when t is nil.
func (t *Tracing) Provider(service string) trace.TracerProvider {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if tp, ok := t.providers[service]; ok {
		return tp
	}
	// resource.Default reads OTEL_RESOURCE_ATTRIBUTES; the service name is
	// ours, since one process may run every service.
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(ServiceNamePrefix+service)))
	if err != nil {
		res = resource.NewSchemaless(semconv.ServiceName(ServiceNamePrefix + service))
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	for _, exp := range t.exporters {
		exp = sharedExporter{exp}
		if t.syncer {
			opts = append(opts, sdktrace.WithSyncer(exp))
		} else {
			opts = append(opts, sdktrace.WithBatcher(exp))
		}
	}
	tp := sdktrace.NewTracerProvider(opts...)
	t.providers[service] = tp
	return tp
}

// Shutdown flushes every provider's spans, then closes the exporters.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	providers := t.providers
	t.providers = map[string]*sdktrace.TracerProvider{}
	t.mu.Unlock()
	var errs []error
	for _, tp := range providers {
		errs = append(errs, tp.Shutdown(ctx))
	}
	for _, exp := range t.exporters {
		errs = append(errs, exp.Shutdown(ctx))
	}
	if t.file != nil {
		errs = append(errs, t.file.Close())
	}
	return errors.Join(errs...)
}

// sharedExporter lets several providers feed one exporter: a provider's
// shutdown must not close the exporter the others still use; Tracing
// closes it once.
type sharedExporter struct{ sdktrace.SpanExporter }

// Shutdown does nothing; Tracing.Shutdown closes the real exporter.
func (sharedExporter) Shutdown(context.Context) error { return nil }

// ExportSpans hands the spans on with their URLs redacted.
func (e sharedExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	out := make([]sdktrace.ReadOnlySpan, len(spans))
	for i, s := range spans {
		out[i] = redact(s)
	}
	return e.SpanExporter.ExportSpans(ctx, out)
}

// redact removes the query and any user information from the URL
// attributes of s: an OAuth callback or redirect carries codes and state in
// its query, and no credential may reach a trace. Instrumentation sets these
// attributes after the span started, so they are rewritten on the way out.
func redact(s sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
	attrs := s.Attributes()
	var changed []attribute.KeyValue
	for i, kv := range attrs {
		if kv.Key != semconv.URLFullKey {
			continue
		}
		u, err := url.Parse(kv.Value.AsString())
		if err != nil || (u.RawQuery == "" && u.User == nil && u.Fragment == "") {
			continue
		}
		u.RawQuery, u.User, u.Fragment = "", nil, ""
		if changed == nil {
			changed = append([]attribute.KeyValue(nil), attrs...)
		}
		changed[i] = attribute.String(string(semconv.URLFullKey), u.String())
	}
	if changed == nil {
		return s
	}
	return redactedSpan{ReadOnlySpan: s, attrs: changed}
}

// redactedSpan is a span with replaced attributes.
type redactedSpan struct {
	sdktrace.ReadOnlySpan
	attrs []attribute.KeyValue
}

// Attributes returns the redacted attributes.
func (r redactedSpan) Attributes() []attribute.KeyValue { return r.attrs }
