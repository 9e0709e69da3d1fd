package httpx_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/realguardio/realguardio/internal/platform/httpx"
)

// TestMuxRecordsItsPatterns: a Mux serves as http.ServeMux does, and
// RegisteredRoutes lists every pattern registered under the service, once
// however many times the service built its router, and no other service's.
func TestMuxRecordsItsPatterns(t *testing.T) {
	for range 2 {
		m := httpx.NewMux("muxtest-a")
		m.HandleFunc("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(r.PathValue("id") + " " + r.Pattern))
		})
		m.Handle("POST /things", http.NotFoundHandler())
		rec := httptest.NewRecorder()
		m.ServeHTTP(rec, httptest.NewRequest("GET", "/things/42", nil))
		if got := rec.Body.String(); got != "42 GET /things/{id}" {
			t.Fatalf("served %q", got)
		}
	}
	httpx.NewMux("muxtest-b").Handle("GET /other", http.NotFoundHandler())
	if got, want := httpx.RegisteredRoutes("muxtest-a"), []string{"GET /things/{id}", "POST /things"}; !slices.Equal(got, want) {
		t.Errorf("RegisteredRoutes = %q, want %q", got, want)
	}
	if got := httpx.RegisteredRoutes("muxtest-none"); len(got) != 0 {
		t.Errorf("a service that registered nothing has %q", got)
	}
}
