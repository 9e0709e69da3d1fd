package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/realguardio/realguardio/internal/platform/apperr"
)

// serve runs one request with the given Authorization header through the
// middleware and returns the response and the caller the handler saw.
func serve(t testing.TB, v *Validator, authorization string) (*httptest.ResponseRecorder, *Caller) {
	t.Helper()
	var got *Caller
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := MustCaller(r.Context())
		if err != nil {
			t.Errorf("handler reached without a caller: %v", err)
		}
		got = c
		w.WriteHeader(http.StatusNoContent)
	}))
	req := httptest.NewRequest(http.MethodGet, "/customers", nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec, got
}

func TestValidTokenBuildsCaller(t *testing.T) {
	e := newTestEnv(t)
	tok := e.good(t)
	rec, c := serve(t, e.v, "Bearer "+tok)
	if rec.Code != http.StatusNoContent {
		t.Fatalf("status %d, body %s", rec.Code, rec.Body)
	}
	if c.Subject != testSubject || c.ClientID != testClient || c.IsService || c.Token != tok {
		t.Errorf("caller %+v", c)
	}
	if !slices.Equal(c.Roles, []string{RoleCustomerEmployee}) || !slices.Equal(c.Scopes, []string{"openid", "profile"}) {
		t.Errorf("roles %v scopes %v", c.Roles, c.Scopes)
	}
	if c.Claims["jti"] != "2b9c1e0a-7f3d-4c55-8e21-6a0b9d4f3c12" {
		t.Errorf("claims %v", c.Claims)
	}
	// Scheme is case-insensitive.
	if rec, _ := serve(t, e.v, "bEaReR "+tok); rec.Code != http.StatusNoContent {
		t.Errorf("lower-case scheme: status %d", rec.Code)
	}
}

func TestServiceToken(t *testing.T) {
	e := newTestEnv(t)
	s := e.goodSpec()
	s.claims["sub"] = "realguardio-customer-service"
	s.claims["client_id"] = "realguardio-customer-service"
	s.claims["scope"] = "users:write"
	delete(s.claims, "roles")
	c, err := e.v.Validate(context.Background(), sign(t, s))
	if err != nil {
		t.Fatal(err)
	}
	if !c.IsService || !c.HasScope("users:write") || c.HasRole(RoleAdmin) {
		t.Errorf("caller %+v", c)
	}
	ctx := WithCaller(context.Background(), c)
	if _, err := RequireScope(ctx, "users:write"); err != nil {
		t.Errorf("RequireScope: %v", err)
	}
	if _, err := RequireScope(ctx, "users:read"); !apperr.Is(err, apperr.Forbidden) {
		t.Errorf("RequireScope missing scope: %v", err)
	}
}

func TestMissingTokenChallenge(t *testing.T) {
	e := newTestEnv(t)
	for _, authz := range []string{"", "Basic dXNlcjpwYXNz"} {
		rec, _ := serve(t, e.v, authz)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("%q: status %d", authz, rec.Code)
		}
		// API.md: missing or invalid token → Bearer error="invalid_token".
		if got := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer ") || !strings.Contains(got, `error="invalid_token"`) {
			t.Errorf("%q: challenge %q", authz, got)
		}
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
			t.Errorf("content type %q", ct)
		}
	}
}
