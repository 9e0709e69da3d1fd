package httpx_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/platform/telemetry"
)

type ctxKey struct{}

// copyingMiddleware serves a copy of the request, as the token middleware
// does (r.WithContext), so the mux's pattern never reaches Ops by itself.
func copyingMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, 1)))
	})
}

func scrape(t *testing.T, h http.Handler, accept string) string {
	t.Helper()
	req := httptest.NewRequest("GET", "/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

// TestRouteLabelBehindMiddleware checks that a request is counted under
// the pattern the API's mux matched, even behind a middleware that copies
// the request, and that its server span is named after it.
func TestRouteLabelBehindMiddleware(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /securitysystems/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	ops := &httpx.Ops{Service: "test", Registry: prometheus.NewRegistry()}
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	h := telemetry.Handler(tp, ops.Handler(copyingMiddleware(httpx.Routes(mux))))

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("PUT", "/securitysystems/42", nil))
	if rec.Code != http.StatusNoContent {
		t.Fatalf("status %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/nowhere", nil))

	body := scrape(t, h, "")
	if !strings.Contains(body, `realguardio_http_requests_total{method="PUT",route="PUT /securitysystems/{id}",status="204"} 1`) {
		t.Fatalf("no count by route pattern:\n%s", body)
	}
	if strings.Contains(body, `route="/",status="204"`) {
		t.Fatalf("the API request was counted under /:\n%s", body)
	}
	spans := exp.GetSpans()
	if len(spans) != 2 || spans[0].Name != "PUT /securitysystems/{id}" {
		t.Fatalf("spans %v, want the first named after its route", spans)
	}
	// Exemplars travel in OpenMetrics.
	om := scrape(t, h, "application/openmetrics-text; version=1.0.0")
	if !strings.Contains(om, `trace_id="`+spans[0].SpanContext.TraceID().String()+`"`) {
		t.Fatalf("no exemplar with the request's trace id:\n%s", om)
	}
}
