package system

import (
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/httpx"
)

// startingHandler serves a bound listener from the moment it is bound until
// its service is built: before, a process waiting for NATS (or its
// database) at start held its port open and answered nothing, so a probe
// or an operator could not tell a slow start from a hang. While starting,
// /healthz is 200 (the process is alive; a liveness probe must not kill it
// for waiting), /readyz is 503 "not ready" naming what the start waits for,
// and every other request is a 503 problem. Once the service is built,
// every request goes to its handler.
type startingHandler struct {
	name    string
	waiting *startWaits
	real    atomic.Pointer[http.Handler]
}

// serve switches every later request to h.
func (s *startingHandler) serve(h http.Handler) { s.real.Store(&h) }

func (s *startingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := s.real.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/healthz":
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok", "service": s.name})
	case r.Method == http.MethodGet && r.URL.Path == "/readyz":
		httpx.WriteJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "service": s.name, "checks": s.waiting.checks()})
	default:
		httpx.WriteError(w, r, apperr.New(apperr.Unavailable, "the %s service is starting", s.name))
	}
}

// startWaits records what a start is waiting for, by dependency name, in
// words fit for /readyz (never a host, user or database name).
type startWaits struct {
	mu    sync.Mutex
	waits map[string]string
}

// set records that the start waits for dependency name; an empty message
// clears it.
func (sw *startWaits) set(name, message string) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.waits == nil {
		sw.waits = map[string]string{}
	}
	if message == "" {
		delete(sw.waits, name)
		return
	}
	sw.waits[name] = message
}

// checks returns the /readyz checks of a start in progress.
func (sw *startWaits) checks() map[string]string {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	out := map[string]string{"startup": "starting"}
	for k, v := range sw.waits {
		out[k] = v
	}
	return out
}
