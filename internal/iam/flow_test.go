package iam

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// TestLoginFlow drives the whole OpenID Connect flow over real HTTP with
// real relying-party libraries, on both databases.
func TestLoginFlow(t *testing.T) {
	eachStore(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		e := newEnv(t, envOpts{db: db})
		userID := e.createUser(t, "Alice@Example.com", "correct horse", auth.RoleCustomerEmployee)

		provider, err := oidc.NewProvider(ctx, e.issuer)
		if err != nil {
			t.Fatalf("discovery: %v", err)
		}
		cfg := e.bffConfig()
		cfg.Endpoint = provider.Endpoint()
		cfg.Endpoint.AuthStyle = oauth2.AuthStyleInHeader

		// Username matching is case-insensitive.
		code, verifier := e.loginCode(t, cfg, "alice@example.com", "correct horse", oidc.Nonce("n0nce"))
		tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		rawID, _ := tok.Extra("id_token").(string)
		idTok, err := provider.Verifier(&oidc.Config{ClientID: ClientBFF}).Verify(ctx, rawID)
		if err != nil {
			t.Fatalf("verify ID token: %v", err)
		}
		if idTok.Subject != userID || idTok.Nonce != "n0nce" {
			t.Fatalf("ID token sub=%q nonce=%q", idTok.Subject, idTok.Nonce)
		}
		if err := idTok.VerifyAccessToken(tok.AccessToken); err != nil {
			t.Fatalf("at_hash: %v", err)
		}
		checkAccessToken(t, e, tok.AccessToken, userID, ClientBFF, []string{auth.RoleCustomerEmployee})
		if tok.RefreshToken == "" {
			t.Fatal("no refresh token for offline_access")
		}

		// The access token verifies against the published JWKS as an
		// RFC 9068 token.
		keySet := oidc.NewRemoteKeySet(ctx, e.issuer+"/keys")
		if _, err := keySet.VerifySignature(ctx, tok.AccessToken); err != nil {
			t.Fatalf("access token signature against JWKS: %v", err)
		}

		// Userinfo.
		info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil || info.Subject != userID {
			t.Fatalf("userinfo: %+v %v", info, err)
		}

		// Refresh rotates the refresh token.
		tok2, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken {
			t.Fatal("refresh token not rotated")
		}
		checkAccessToken(t, e, tok2.AccessToken, userID, ClientBFF, []string{auth.RoleCustomerEmployee})

		// RFC 7009 revocation, then the refresh fails.
		status, body := postForm(t, e.issuer+"/oauth/revoke", ClientBFF, testBFFSecret, url.Values{"token": {tok2.RefreshToken}, "token_type_hint": {"refresh_token"}})
		if status != http.StatusOK {
			t.Fatalf("revoke: %d %v", status, body)
		}
		if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok2.RefreshToken}).Token(); err == nil {
			t.Fatal("refresh after revocation succeeded")
		}

		// RP-initiated logout: a new session, then end_session revokes it
		// and redirects to the registered post-logout URI with the state.
		code, verifier = e.loginCode(t, cfg, "alice@example.com", "correct horse")
		tok3, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		var endSession struct {
			URL string `json:"end_session_endpoint"`
		}
		_ = provider.Claims(&endSession)
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		q := url.Values{"id_token_hint": {tok3.Extra("id_token").(string)}, "post_logout_redirect_uri": {testPostLogout}, "state": {"bye"}}
		resp, err := noFollow.Get(endSession.URL + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, testPostLogout) || !strings.Contains(loc, "state=bye") {
			t.Fatalf("end_session: %d %q", resp.StatusCode, loc)
		}
		if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok3.RefreshToken}).Token(); err == nil {
			t.Fatal("refresh after logout succeeded")
		}

		// Client credentials.
		cc := clientcredentials.Config{ClientID: AudienceCustomer, ClientSecret: testSvcSecret, TokenURL: cfg.Endpoint.TokenURL, Scopes: []string{ScopeUsersWrite}}
		svcTok, err := cc.Token(ctx)
		if err != nil {
			t.Fatalf("client credentials: %v", err)
		}
		_, claims := checkAccessToken(t, e, svcTok.AccessToken, AudienceCustomer, AudienceCustomer, []string{})
		if claims["scope"] != ScopeUsersWrite {
			t.Fatalf("scope = %v", claims["scope"])
		}
	})
}

// checkAccessToken asserts the RFC 9068 shape and RealGuardIO's claims.
func checkAccessToken(t *testing.T, e *env, raw, sub, clientID string, roles []string) (map[string]any, map[string]any) {
	t.Helper()
	h, c := jwtParts(t, raw)
	if h["typ"] != "at+jwt" || h["alg"] != "RS256" || h["kid"] == "" {
		t.Fatalf("access token header = %v", h)
	}
	if e.svc.keys.byID(h["kid"].(string)) == nil {
		t.Fatalf("kid %v not published", h["kid"])
	}
	if c["iss"] != e.issuer || c["sub"] != sub || c["client_id"] != clientID {
		t.Fatalf("claims = %v", c)
	}
	for _, k := range []string{"exp", "iat", "nbf", "jti", "scope", "aud", "roles"} {
		if _, ok := c[k]; !ok {
			t.Fatalf("claim %s missing: %v", k, c)
		}
	}
	aud := stringsOf(c["aud"])
	for _, a := range AllAudiences {
		if !slices.Contains(aud, a) {
			t.Fatalf("aud %v lacks %s", aud, a)
		}
	}
	if got := stringsOf(c["roles"]); !slices.Equal(got, roles) && !(len(got) == 0 && len(roles) == 0) {
		t.Fatalf("roles = %v, want %v", got, roles)
	}
	if exp, iat := c["exp"].(float64), c["iat"].(float64); exp-iat != 300 {
		t.Fatalf("lifetime = %v s, want 300", exp-iat)
	}
	if _, err := e.svc.verifyAccessToken(context.Background(), raw); err != nil {
		t.Fatalf("own verifier refuses the token: %v", err)
	}
	return h, c
}
