package iam

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"time"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/httpx"
)

// selfRefreshInterval is the least time between two reads of the IAM's own
// JWKS by its validator when a token names an unknown key. The read is in
// process and cheap, so it is short: a key rotated in by another instance
// is known at once, and a flood of forged key ids costs at most ten JWKS
// renderings a second.
const selfRefreshInterval = 100 * time.Millisecond

// newValidator is the IAM's validator of its own access tokens: the one
// every resource server uses (internal/platform/auth), with the
// IAM's audience, reading discovery and the JWKS from the IAM's own
// handler in process instead of over the network. One validator for the
// whole system means one set of rules: canonical base64 only, compact
// serialization only, claim types, iat not in the future, no crit.
func (s *Service) newValidator(oidcHandler http.Handler) (*auth.Validator, error) {
	return auth.NewValidator(auth.Options{
		Issuer:                 s.cfg.Issuer,
		Audience:               AudienceIAM,
		HTTPClient:             &http.Client{Transport: selfTransport{oidcHandler}, Timeout: 5 * time.Second},
		JWKSMinRefreshInterval: selfRefreshInterval,
		Clock:                  s.now,
		Logger:                 s.log,
		Registry:               s.registry,
	})
}

// selfTransport answers the validator's HTTP requests with the IAM's own
// handler, in process.
type selfTransport struct{ h http.Handler }

func (t selfTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	w := &bufferedResponse{header: http.Header{}}
	t.h.ServeHTTP(w, r)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return &http.Response{
		Status: http.StatusText(w.status), StatusCode: w.status, Header: w.header,
		Body: io.NopCloser(&w.body), ContentLength: int64(w.body.Len()),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Request: r,
	}, nil
}

// bufferedResponse is the http.ResponseWriter of selfTransport.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}

// verifyAccessToken checks one of the IAM's own access tokens exactly as
// a resource server does.
func (s *Service) verifyAccessToken(ctx context.Context, raw string) (*auth.Caller, error) {
	return s.validator.Validate(ctx, raw)
}

// requireUserAdmin authenticates the bearer token with the shared
// validator's middleware (one Authorization header, a Bearer token, the
// RFC 6750 challenge) and admits a client-credentials token with scope
// users:write or a user token with REALGUARDIO_ADMIN. Admission is not
// the whole check: the handlers confine a service to the users it
// provisions (see usersAPI).
func (s *Service) requireUserAdmin(next http.HandlerFunc) http.Handler {
	return s.validator.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, ok := auth.CallerFrom(r.Context())
		allowed := ok && ((caller.IsService && caller.HasScope(ScopeUsersWrite)) || caller.HasRole(auth.RoleAdmin))
		if !allowed {
			httpx.WriteError(w, r, apperr.Denied("no_role", "managing users needs scope %s or role %s", ScopeUsersWrite, auth.RoleAdmin))
			return
		}
		next(w, r)
	}))
}
