package bff

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/httpx"
)

// Backend names, the keys of Service.proxies.
const (
	backendSecuritySystem = "securitysystem"
	backendCustomer       = "customer"
	backendDealer         = "dealer"
	backendMonitoring     = "monitoring"
)

// backendFor returns the backend that serves path (the part after /api), or
// "" when no backend does. The table is API.md's, with /audit (the
// Security System Service's decision log) beside /securitysystems.
func backendFor(path string) string {
	first, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	switch first {
	case "securitysystems", "audit":
		return backendSecuritySystem
	case "customers", "profiles":
		return backendCustomer
	case "dealers":
		return backendDealer
	case "monitoring-providers":
		return backendMonitoring
	}
	return ""
}

type tokenKey struct{}

// newProxies builds one reverse proxy per backend. httputil.ReverseProxy
// already strips hop-by-hop headers in both directions and streams bodies;
// Rewrite adds what is specific to the BFF.
func (s *Service) newProxies(transport http.RoundTripper) (map[string]http.Handler, error) {
	targets := map[string]string{
		backendSecuritySystem: s.cfg.SecuritySystemURL,
		backendCustomer:       s.cfg.CustomerURL,
		backendDealer:         s.cfg.DealerURL,
		backendMonitoring:     s.cfg.MonitoringURL,
	}
	out := map[string]http.Handler{}
	for name, raw := range targets {
		target, err := url.Parse(strings.TrimRight(raw, "/"))
		if err != nil {
			return nil, err
		}
		out[name] = &httputil.ReverseProxy{
			Transport: transport,
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.Out.URL.Path = strings.TrimPrefix(pr.In.URL.Path, "/api")
				pr.Out.URL.RawPath = strings.TrimPrefix(pr.In.URL.RawPath, "/api")
				pr.SetURL(target)
				pr.Out.Host = target.Host
				// The browser's credentials stay at the BFF: the backend
				// gets the access token, never the cookie or the CSRF token.
				pr.Out.Header.Del("Cookie")
				pr.Out.Header.Del("X-CSRF-Token")
				pr.Out.Header.Del("Authorization")
				if tok, ok := pr.In.Context().Value(tokenKey{}).(string); ok {
					pr.Out.Header.Set("Authorization", "Bearer "+tok)
				}
			},
			ModifyResponse: func(resp *http.Response) error {
				// A backend must not set cookies on the BFF's origin.
				resp.Header.Del("Set-Cookie")
				return nil
			},
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				if errors.Is(err, context.Canceled) {
					return // the browser went away
				}
				httpx.WriteError(w, r, apperr.Wrap(err, apperr.Unavailable, "the %s service is not reachable; nothing was changed", name))
			},
		}
	}
	return out, nil
}

// handleAPI forwards /api/* to the backend that serves it, with the
// session's access token. Unsafe methods must pass the CSRF check first.
func (s *Service) handleAPI(w http.ResponseWriter, r *http.Request) {
	name := backendFor(strings.TrimPrefix(r.URL.Path, "/api"))
	if name == "" {
		httpx.WriteError(w, r, apperr.New(apperr.NotFound, "no API at %s", r.URL.Path))
		return
	}
	sess, err := s.currentSession(w, r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if !isSafeMethod(r.Method) {
		if err := s.checkCSRF(r, sess, r.Header.Get("X-CSRF-Token")); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.BackendTimeout)
	defer cancel()
	ctx = context.WithValue(ctx, tokenKey{}, sess.Access)
	s.proxies[name].ServeHTTP(w, r.WithContext(ctx))
}

func isSafeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// checkCSRF refuses a state-changing request unless it comes from the BFF's
// own pages: the Origin (or, without one, the Referer) must be the BFF's
// public origin, and token must be the session's CSRF token, which only a
// page of this origin can have read. SameSite=Lax already keeps the cookie
// off cross-site POSTs; this is the second, independent layer.
func (s *Service) checkCSRF(r *http.Request, sess *session, token string) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		if ref := r.Header.Get("Referer"); ref != "" {
			if u, err := url.Parse(ref); err == nil && u.Host != "" {
				origin = u.Scheme + "://" + u.Host
			}
		}
	}
	if origin == "" || !strings.EqualFold(origin, s.origin) {
		return apperr.Denied("csrf", "cross-site request refused: the request does not come from %s", s.origin)
	}
	if token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(sess.CSRF)) != 1 {
		return apperr.Denied("csrf", "cross-site request refused: missing or wrong X-CSRF-Token; reload the page")
	}
	return nil
}
