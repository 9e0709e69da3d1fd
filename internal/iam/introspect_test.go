package iam

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client/rs"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"

	"github.com/realguardio/realguardio/internal/platform/auth"
)

// narrowClient is a client-credentials client whose tokens name only the
// dealer's audience, for the "token of another audience" case.
const narrowClient = "realguardio-narrow-test"

// introspect posts token to the introspection endpoint as clientID with
// Basic authentication and returns the status and the answer.
func introspect(t *testing.T, e *env, clientID, secret, token string) (int, map[string]any) {
	t.Helper()
	return postForm(t, e.issuer+"/oauth/introspect", clientID, secret, url.Values{"token": {token}})
}

// TestIntrospection drives RFC 7662 with zitadel's resource-server client
// (discovery finds the endpoint) and with plain HTTP: an access token is
// active for a service in its audience and inactive for any other; a
// refresh token is active for its own client only; expired, revoked,
// rotated, disabled, forged and malformed tokens are {"active":false}
// and nothing more; callers without valid confidential credentials get
// 401 with a Basic challenge.
func TestIntrospection(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOpts{cfg: func(c *Config) {
		c.Clients = append(c.Clients, ClientConfig{
			ID: narrowClient, Secret: testSvcSecret, GrantTypes: []string{string(oidc.GrantTypeClientCredentials)},
			Audiences: []string{AudienceDealer},
		})
	}})
	userID := e.createUser(t, "ivy", "ivy-password", auth.RoleCustomerEmployee)
	cfg := e.bffConfig()
	code, verifier := e.loginCode(t, cfg, "ivy", "ivy-password")
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	at, rt := tok.AccessToken, tok.RefreshToken

	// A real resource-server client: discovery advertises the endpoint,
	// and the answer describes the token.
	server, err := rs.NewResourceServerClientCredentials(ctx, e.issuer, AudienceCustomer, testSvcSecret)
	if err != nil {
		t.Fatalf("resource server: %v", err)
	}
	got, err := rs.Introspect[*oidc.IntrospectionResponse](ctx, server, at)
	if err != nil {
		t.Fatalf("introspect: %v", err)
	}
	if !got.Active || got.Subject != userID || got.ClientID != ClientBFF || got.Username != "ivy" ||
		got.TokenType != oidc.BearerToken || got.Issuer != e.issuer || got.Expiration.AsTime().Before(time.Now()) ||
		!strings.Contains(strings.Join(got.Scope, " "), "openid") || !slices.Contains(got.Audience, AudienceCustomer) {
		t.Fatalf("access token introspected as %+v", got)
	}

	inactive := func(name string, status int, m map[string]any) {
		t.Helper()
		if status != http.StatusOK || m["active"] != false || len(m) != 1 {
			t.Errorf("%s: %d %v, want 200 {\"active\":false} and nothing else", name, status, m)
		}
	}
	active := func(name string, status int, m map[string]any) {
		t.Helper()
		if status != http.StatusOK || m["active"] != true {
			t.Errorf("%s: %d %v, want active", name, status, m)
		}
	}

	// The same with client_secret_post, and the refresh token for its own
	// client.
	st, m := postForm(t, e.issuer+"/oauth/introspect", "", "", url.Values{"token": {at}, "client_id": {AudienceDealer}, "client_secret": {testSvcSecret}})
	active("client_secret_post", st, m)
	st, m = introspect(t, e, ClientBFF, testBFFSecret, rt)
	active("refresh token, own client", st, m)
	if m["sub"] != userID || m["client_id"] != ClientBFF || m["sid"] == nil || m["token_type"] != nil {
		t.Errorf("refresh token introspected as %v", m)
	}

	// Another audience, another client's refresh token.
	st, m = introspect(t, e, ClientBFF, testBFFSecret, at)
	inactive("access token, caller not in its audience", st, m)
	st, m = introspect(t, e, AudienceCustomer, testSvcSecret, rt)
	inactive("refresh token of another client", st, m)
	svcTok := clientCredentialsToken(t, e, narrowClient, testSvcSecret)
	st, m = introspect(t, e, AudienceCustomer, testSvcSecret, svcTok)
	inactive("service token of another audience", st, m)
	st, m = introspect(t, e, AudienceDealer, testSvcSecret, svcTok)
	active("service token, its audience", st, m)
	if m["sub"] != narrowClient || m["client_id"] != narrowClient {
		t.Errorf("service token introspected as %v", m)
	}

	// Malformed and forged tokens.
	h, c, _ := strings.Cut(at, ".")
	_, sig, _ := strings.Cut(c, ".")
	for name, bad := range map[string]string{
		"garbage":          "not-a-token",
		"three dots":       "a.b.c",
		"no signature":     h + "." + strings.Split(at, ".")[1] + ".",
		"alg none":         b64(`{"alg":"none","typ":"at+jwt"}`) + "." + strings.Split(at, ".")[1] + ".AAAA",
		"tampered payload": h + "." + b64(`{"sub":"`+userID+`","aud":"realguardio-customer","iss":"`+e.issuer+`","exp":9999999999}`) + "." + sig,
		"ID token":         tok.Extra("id_token").(string),
	} {
		st, m = introspect(t, e, AudienceCustomer, testSvcSecret, bad)
		inactive(name, st, m)
	}

	// Callers that did not authenticate as a confidential client.
	for name, req := range map[string]func() *http.Request{
		"wrong secret": func() *http.Request {
			r := introspectionRequest(e, url.Values{"token": {at}})
			r.SetBasicAuth(AudienceCustomer, "wrong-secret")
			return r
		},
		"unknown client": func() *http.Request {
			r := introspectionRequest(e, url.Values{"token": {at}})
			r.SetBasicAuth("nobody", testSvcSecret)
			return r
		},
		"no credentials": func() *http.Request { return introspectionRequest(e, url.Values{"token": {at}}) },
		"public client id only": func() *http.Request {
			return introspectionRequest(e, url.Values{"token": {at}, "client_id": {ClientCLI}})
		},
		"public client with secret": func() *http.Request {
			return introspectionRequest(e, url.Values{"token": {at}, "client_id": {ClientCLI}, "client_secret": {"x"}})
		},
		"wrong secret in the form": func() *http.Request {
			return introspectionRequest(e, url.Values{"token": {at}, "client_id": {AudienceCustomer}, "client_secret": {"nope"}})
		},
		"client id without a secret": func() *http.Request {
			return introspectionRequest(e, url.Values{"token": {at}, "client_id": {AudienceCustomer}})
		},
	} {
		resp, err := http.DefaultClient.Do(req())
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") ||
			!strings.Contains(body, "invalid_client") || strings.Contains(body, "active") {
			t.Errorf("%s: %d %q %s, want 401 invalid_client with a Basic challenge", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: Cache-Control %q", name, cc)
		}
	}

	// The token only by POST in the body: never in a URL.
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		r, _ := http.NewRequest(m, e.issuer+"/oauth/introspect?"+url.Values{"token": {at}}.Encode(), nil)
		r.SetBasicAuth(AudienceCustomer, testSvcSecret)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(body, "active") {
			t.Errorf("%s with the token in the query: %d %s, want 400", m, resp.StatusCode, body)
		}
	}

	// Rotation: the rotated refresh token is inactive, its successor and
	// the new access token active.
	next, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: rt, Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		t.Fatal(err)
	}
	st, m = introspect(t, e, ClientBFF, testBFFSecret, rt)
	inactive("rotated refresh token", st, m)
	st, m = introspect(t, e, ClientBFF, testBFFSecret, next.RefreshToken)
	active("successor refresh token", st, m)
	st, m = introspect(t, e, AudienceCustomer, testSvcSecret, next.AccessToken)
	active("refreshed access token", st, m)

	// Revocation of the refresh token ends the session: its refresh token
	// and every access token of the session are inactive at once, though
	// the access tokens have not expired.
	if st, m := postForm(t, e.issuer+"/oauth/revoke", ClientBFF, testBFFSecret, url.Values{"token": {next.RefreshToken}}); st != http.StatusOK {
		t.Fatalf("revoke: %d %v", st, m)
	}
	st, m = introspect(t, e, ClientBFF, testBFFSecret, next.RefreshToken)
	inactive("revoked refresh token", st, m)
	st, m = introspect(t, e, AudienceCustomer, testSvcSecret, next.AccessToken)
	inactive("access token of a revoked session", st, m)
	st, m = introspect(t, e, AudienceCustomer, testSvcSecret, at)
	inactive("first access token of a revoked session", st, m)

	// A second login: disabling the user makes its tokens inactive.
	code, verifier = e.loginCode(t, cfg, "ivy", "ivy-password")
	tok2, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	st, m = introspect(t, e, AudienceCustomer, testSvcSecret, tok2.AccessToken)
	active("second login", st, m)
	if err := e.svc.store.setEnabled(ctx, userID, false, e.clock.now()); err != nil {
		t.Fatal(err)
	}
	st, m = introspect(t, e, AudienceCustomer, testSvcSecret, tok2.AccessToken)
	inactive("access token of a disabled user", st, m)
	st, m = introspect(t, e, ClientBFF, testBFFSecret, tok2.RefreshToken)
	inactive("refresh token of a disabled user", st, m)
	if err := e.svc.store.setEnabled(ctx, userID, true, e.clock.now()); err != nil {
		t.Fatal(err)
	}

	// Expiry: the service token outlives nothing past its lifetime.
	st, m = introspect(t, e, AudienceDealer, testSvcSecret, svcTok)
	active("service token before expiry", st, m)
	e.clock.advance(6 * time.Minute)
	st, m = introspect(t, e, AudienceDealer, testSvcSecret, svcTok)
	inactive("expired service token", st, m)
	code, verifier = e.loginCode(t, cfg, "ivy", "ivy-password")
	tok3, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	e.clock.advance(61 * time.Minute)
	st, m = introspect(t, e, AudienceCustomer, testSvcSecret, tok3.AccessToken)
	inactive("expired access token", st, m)
	st, m = introspect(t, e, ClientBFF, testBFFSecret, tok3.RefreshToken)
	inactive("expired refresh token", st, m)
}

// TestIntrospectionAdvertised: discovery and RFC 8414 metadata name the
// endpoint and exactly the client authentication methods it takes.
func TestIntrospectionAdvertised(t *testing.T) {
	e := newEnv(t, envOpts{})
	for _, path := range []string{"/.well-known/openid-configuration", authServerMetadataPath} {
		resp, err := http.Get(e.issuer + path)
		if err != nil {
			t.Fatal(err)
		}
		var d oidc.DiscoveryConfiguration
		if err := json.Unmarshal([]byte(readBody(t, resp)), &d); err != nil {
			t.Fatal(err)
		}
		if d.IntrospectionEndpoint != e.issuer+"/oauth/introspect" ||
			strings.Join(authMethods(d.IntrospectionEndpointAuthMethodsSupported), " ") != "client_secret_basic client_secret_post" ||
			len(d.IntrospectionEndpointAuthSigningAlgValuesSupported) != 0 {
			t.Errorf("%s: introspection %q methods %v algs %v", path, d.IntrospectionEndpoint, d.IntrospectionEndpointAuthMethodsSupported, d.IntrospectionEndpointAuthSigningAlgValuesSupported)
		}
	}
}

func authMethods(ms []oidc.AuthMethod) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m)
	}
	return out
}

func introspectionRequest(e *env, v url.Values) *http.Request {
	r, _ := http.NewRequest(http.MethodPost, e.issuer+"/oauth/introspect", strings.NewReader(v.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

// clientCredentialsToken gets a service token for clientID.
func clientCredentialsToken(t *testing.T, e *env, clientID, secret string) string {
	t.Helper()
	st, m := postForm(t, e.issuer+"/oauth/token", clientID, secret, url.Values{"grant_type": {"client_credentials"}})
	tok, _ := m["access_token"].(string)
	if st != http.StatusOK || tok == "" {
		t.Fatalf("client credentials for %s: %d %v", clientID, st, m)
	}
	return tok
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
