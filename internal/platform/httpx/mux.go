package httpx

import (
	"net/http"
	"slices"
	"sync"
)

// Router is what a function adding routes needs: *Mux and *http.ServeMux
// both satisfy it, so a package that registers its handlers on a mux it is
// given (the organization kit) needs no wrapper.
type Router interface {
	Handle(pattern string, handler http.Handler)
}

// Mux is the request router of a service: an http.ServeMux (Go 1.22
// patterns, "PUT /securitysystems/{id}") that also records every pattern
// registered on it under the service's name. http.ServeMux cannot list its
// patterns, and a route the code serves but api/*.yaml does not document
// (or the other way round) is found only by comparing the two, which
// internal/openapitest does with RegisteredRoutes.
type Mux struct {
	mux     *http.ServeMux
	service string
}

// NewMux returns an empty router whose patterns are recorded under service
// (the name httpx.Ops labels the service's metrics with).
func NewMux(service string) *Mux {
	return &Mux{mux: http.NewServeMux(), service: service}
}

// Handle registers handler for pattern, as http.ServeMux.Handle does
// (panicking on an invalid or conflicting pattern), and records pattern.
func (m *Mux) Handle(pattern string, handler http.Handler) {
	m.mux.Handle(pattern, handler)
	routes.add(m.service, pattern)
}

// HandleFunc registers f for pattern, as Handle does.
func (m *Mux) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(f))
}

// ServeHTTP dispatches the request as http.ServeMux does; the matched
// pattern is set on r itself (r.Pattern), which Routes relies on.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mux.ServeHTTP(w, r)
}

// RegisteredRoutes returns, sorted, every pattern registered through a Mux
// of service in this process so far. Building a service's handler
// registers its routes, so after a system has started this is the HTTP
// surface each of its services serves.
func RegisteredRoutes(service string) []string {
	return routes.list(service)
}

// routes is the process's record of registered patterns. It is a set per
// service, so building a service many times (tests do) does not grow it.
var routes = routeRecord{bySvc: map[string]map[string]struct{}{}}

type routeRecord struct {
	mu    sync.Mutex
	bySvc map[string]map[string]struct{}
}

func (rr *routeRecord) add(service, pattern string) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	set := rr.bySvc[service]
	if set == nil {
		set = map[string]struct{}{}
		rr.bySvc[service] = set
	}
	set[pattern] = struct{}{}
}

func (rr *routeRecord) list(service string) []string {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	out := make([]string, 0, len(rr.bySvc[service]))
	for p := range rr.bySvc[service] {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}
