package httpx_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/httpx"
)

func TestHandlerFuncWritesTheReturnedError(t *testing.T) {
	h := httpx.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if r.URL.Query().Get("fail") != "" {
			return apperr.New(apperr.NotFound, "no such security system")
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"ok": "yes"})
		return nil
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/?fail=1", nil))
	if rec.Code != http.StatusNotFound || rec.Header().Get("Content-Type") != httpx.ProblemContentType {
		t.Fatalf("error answer = %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusOK || rec.Body.String() == "" {
		t.Fatalf("success answer = %d %q", rec.Code, rec.Body.String())
	}
}
