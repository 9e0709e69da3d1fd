package httpx

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// routeSlot receives the pattern an inner mux matched. A middleware between
// Ops and the API's mux (token validation) serves a copy of the request, so
// the pattern the mux sets on that copy never reaches Ops; Routes writes it
// here instead.
type routeSlot struct{ pattern string }

type routeSlotKey struct{}

// Routes wraps the mux of a service's API so that the metrics, access logs
// and spans of Ops are labelled with the route pattern it matched
// ("PUT /securitysystems/{id}") even when middleware sits between Ops and
// the mux. Mount it directly around the mux, inside the middleware.
func Routes(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		// ServeMux records the matched pattern on the request it was given.
		if slot, ok := r.Context().Value(routeSlotKey{}).(*routeSlot); ok && slot.pattern == "" && r.Pattern != "" && r.Pattern != "/" {
			slot.pattern = r.Pattern
		}
	})
}

// withRouteSlot returns r carrying an empty slot for Routes to fill.
func withRouteSlot(r *http.Request) (*http.Request, *routeSlot) {
	slot := &routeSlot{}
	return r.WithContext(context.WithValue(r.Context(), routeSlotKey{}, slot)), slot
}

// routeOf returns the most specific pattern known for the request: the one
// an inner mux recorded, else the one Ops's own mux matched.
func routeOf(r *http.Request, slot *routeSlot) string {
	if slot.pattern != "" {
		return slot.pattern
	}
	if r.Pattern != "" {
		return r.Pattern
	}
	return "unmatched"
}

// nameSpan names the request's server span after its route, as the
// OpenTelemetry conventions ask (a low-cardinality name); without a span
// it does nothing.
func nameSpan(ctx context.Context, route string) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.SetName(route)
	span.SetAttributes(attribute.String("http.route", route))
}

// observe records a latency with the trace id of a sampled request as an
// exemplar, so a slow bucket leads to a trace.
func observe(o prometheus.Observer, ctx context.Context, seconds float64) {
	sc := trace.SpanContextFromContext(ctx)
	if eo, ok := o.(prometheus.ExemplarObserver); ok && sc.IsSampled() {
		eo.ObserveWithExemplar(seconds, prometheus.Labels{"trace_id": sc.TraceID().String(), "span_id": sc.SpanID().String()})
		return
	}
	o.Observe(seconds)
}
