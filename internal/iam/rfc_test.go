package iam

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/realguardio/realguardio/internal/platform/auth"
)

// postToken posts a form to the token endpoint with Basic client
// authentication and returns the raw response.
func postToken(t *testing.T, e *env, clientID, secret string, v url.Values) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.issuer+"/oauth/token", strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestTokenResponsesNotCached checks RFC 6749 §5.1 on success and error.
func TestTokenResponsesNotCached(t *testing.T) {
	e := newEnv(t, envOpts{})
	for _, v := range []url.Values{
		{"grant_type": {"client_credentials"}},
		{"grant_type": {"authorization_code"}, "code": {"nope"}, "redirect_uri": {"http://x"}},
	} {
		resp := postToken(t, e, AudienceCustomer, testSvcSecret, v)
		if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Pragma") != "no-cache" {
			t.Errorf("%s: %d Cache-Control %q Pragma %q", v.Get("grant_type"), resp.StatusCode, resp.Header.Get("Cache-Control"), resp.Header.Get("Pragma"))
		}
	}
}

// TestBadClientSecret is RFC 6749 §5.2: a failed client authentication
// through the Authorization header is a 401 with a Basic challenge.
func TestBadClientSecret(t *testing.T) {
	e := newEnv(t, envOpts{})
	for _, path := range []string{"/oauth/token", "/oauth/revoke"} {
		req, _ := http.NewRequest(http.MethodPost, e.issuer+path, strings.NewReader("grant_type=client_credentials&token=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(AudienceCustomer, "wrong-secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") || !strings.Contains(body, `"invalid_client"`) {
			t.Errorf("%s: %d WWW-Authenticate %q %s", path, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
		}
	}
}

// TestUserinfoChallenge is RFC 6750 §3: /userinfo without a valid token
// answers 401 with a Bearer challenge.
func TestUserinfoChallenge(t *testing.T) {
	e := newEnv(t, envOpts{})
	for name, authz := range map[string]string{"missing": "", "invalid": "Bearer not-a-token"} {
		req, _ := http.NewRequest(http.MethodGet, e.issuer+"/userinfo", nil)
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `Bearer realm="realguardio", error="invalid_token"`) {
			t.Errorf("%s: %d WWW-Authenticate %q", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
}

func s256(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestPKCELengths is RFC 7636 §4.1/4.2: verifier and challenge are 43 to
// 128 characters.
func TestPKCELengths(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.createUser(t, "kim", "kim-password")
	q := baseAuthQuery(e)
	q.Set("code_challenge", "abc")
	wantErrorRedirect(t, e, authorizeRaw(t, e, q), "invalid_request")

	cfg := e.bffConfig()
	short := "abcd"
	c := browser(t)
	f, _, _ := startLogin(t, c, cfg.AuthCodeURL("st4te", oauth2.SetAuthURLParam("code_challenge", s256(short)), oauth2.SetAuthURLParam("code_challenge_method", "S256")))
	if resp, body := submitLogin(t, c, f, "kim", "kim-password"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	code := (<-e.codes).Get("code")
	_, err := cfg.Exchange(context.Background(), code, oauth2.VerifierOption(short))
	if oauthErrorCode(err) != "invalid_grant" {
		t.Fatalf("4-character verifier: %v", err)
	}
	for _, v := range []string{strings.Repeat("a", 42), strings.Repeat("a", 129), strings.Repeat("a", 42) + "+"} {
		if pkceValue(v) {
			t.Errorf("pkceValue(%q) = true", v)
		}
	}
	if !pkceValue(strings.Repeat("a", 43)) || !pkceValue(strings.Repeat("~", 128)) {
		t.Error("valid lengths refused")
	}
}

// TestRequestObjectsRefused: request_uri and request are refused with
// their error codes instead of silently ignored.
func TestRequestObjectsRefused(t *testing.T) {
	e := newEnv(t, envOpts{})
	q := baseAuthQuery(e)
	q.Set("request_uri", "https://attacker.example/req.jwt")
	wantErrorRedirect(t, e, authorizeRaw(t, e, q), "request_uri_not_supported")
	q = baseAuthQuery(e)
	q.Set("request", "eyJhbGciOiJub25lIn0.e30.")
	wantErrorRedirect(t, e, authorizeRaw(t, e, q), "request_not_supported")
}

// TestAuthorizationResponseIssuer is RFC 9207: the code and error
// redirects carry iss.
func TestAuthorizationResponseIssuer(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.createUser(t, "lea", "lea-password")
	e.loginCode(t, e.bffConfig(), "lea", "lea-password")
	// loginCode consumed the query; log in again to read it.
	cfg := e.bffConfig()
	c := browser(t)
	f, _, _ := startLogin(t, c, cfg.AuthCodeURL("st4te", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	submitLogin(t, c, f, "lea", "lea-password")
	if got := (<-e.codes).Get("iss"); got != e.issuer {
		t.Fatalf("iss of the code response = %q, want %q", got, e.issuer)
	}
	q := baseAuthQuery(e)
	q.Set("scope", "no-such-scope")
	resp := authorizeRaw(t, e, q)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc == nil || loc.Query().Get("error") == "" || loc.Query().Get("iss") != e.issuer {
		t.Fatalf("error response %q lacks iss", resp.Header.Get("Location"))
	}
}

// TestMetadata checks discovery and RFC 8414 metadata: the same
// document, no introspection methods without an introspection endpoint,
// RFC 9207 advertised.
func TestMetadata(t *testing.T) {
	e := newEnv(t, envOpts{})
	get := func(path string) map[string]any {
		resp, err := http.Get(e.issuer + path)
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		var m map[string]any
		if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &m) != nil {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		return m
	}
	oidcDoc, oauthDoc := get("/.well-known/openid-configuration"), get(authServerMetadataPath)
	a, _ := json.Marshal(oidcDoc)
	b, _ := json.Marshal(oauthDoc)
	if string(a) != string(b) || oauthDoc["issuer"] != e.issuer {
		t.Fatalf("RFC 8414 metadata differs from discovery:\n%s\n%s", a, b)
	}
	// Introspection methods are advertised with the introspection
	// endpoint (RFC 7662, introspect.go), and no signing algorithms since
	// no JWT client authentication is taken.
	if oidcDoc["introspection_endpoint"] != e.issuer+"/oauth/introspect" {
		t.Errorf("introspection_endpoint %v", oidcDoc["introspection_endpoint"])
	}
	if m, _ := json.Marshal(oidcDoc["introspection_endpoint_auth_methods_supported"]); string(m) != `["client_secret_basic","client_secret_post"]` {
		t.Errorf("introspection_endpoint_auth_methods_supported %s", m)
	}
	if _, ok := oidcDoc["introspection_endpoint_auth_signing_alg_values_supported"]; ok {
		t.Errorf("discovery has introspection signing algorithms without JWT client authentication")
	}
	if oidcDoc["backchannel_logout_supported"] != true || oidcDoc["backchannel_logout_session_supported"] != true {
		t.Errorf("backchannel logout %v session %v", oidcDoc["backchannel_logout_supported"], oidcDoc["backchannel_logout_session_supported"])
	}
	if oidcDoc["authorization_response_iss_parameter_supported"] != true || oidcDoc["request_uri_parameter_supported"] != false {
		t.Errorf("iss %v request_uri %v", oidcDoc["authorization_response_iss_parameter_supported"], oidcDoc["request_uri_parameter_supported"])
	}
}

// TestHSTS: an https issuer's responses carry Strict-Transport-Security,
// an http (development) issuer's do not.
func TestHSTS(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	for issuer, want := range map[string]bool{"https://iam.example.com": true, "http://localhost:9000": false} {
		s := &Service{cfg: Config{Issuer: issuer}}
		rec := httptest.NewRecorder()
		s.hsts(ok).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/login", nil))
		if got := rec.Header().Get("Strict-Transport-Security") != ""; got != want {
			t.Errorf("%s: HSTS %v, want %v", issuer, got, want)
		}
	}
}

// TestEndSessionHints: an access token is no id_token_hint; an expired ID
// token ends no refresh token; a valid one ends only its own session.
func TestEndSessionHints(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOpts{cfg: func(c *Config) { c.IDTokenLifetime = time.Second }})
	e.createUser(t, "max", "max-password", auth.RoleCustomerEmployee)
	cfg := e.bffConfig()
	login := func() *oauth2.Token {
		code, verifier := e.loginCode(t, cfg, "max", "max-password")
		tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	endSession := func(hint string) int {
		q := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {testPostLogout}}
		resp, err := noFollow.Get(e.issuer + "/end_session?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	alive := func(tok *oauth2.Token) bool {
		_, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		return err == nil
	}
	phone, laptop := login(), login()
	if st := endSession(phone.AccessToken); st != http.StatusBadRequest {
		t.Fatalf("access token as id_token_hint: %d", st)
	}
	time.Sleep(2100 * time.Millisecond) // the ID tokens expire
	if st := endSession(phone.Extra("id_token").(string)); st != http.StatusFound {
		t.Fatalf("expired hint: %d", st)
	}
	// Refreshing rotates; keep the new tokens.
	phoneNext, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: phone.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("an expired ID token ended the session: %v", err)
	}
	_, idClaims := jwtParts(t, phoneNext.Extra("id_token").(string))
	if idClaims["sid"] == nil || idClaims["sid"] == "" {
		t.Fatalf("ID token without sid: %v", idClaims)
	}
	if st := endSession(phoneNext.Extra("id_token").(string)); st != http.StatusFound {
		t.Fatalf("valid hint: %d", st)
	}
	if alive(phoneNext) {
		t.Fatal("the session of a valid ID token survived end_session")
	}
	if !alive(laptop) {
		t.Fatal("end_session ended another session of the user")
	}
}
