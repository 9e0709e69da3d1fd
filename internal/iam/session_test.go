package iam

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// authorizeIn follows an authorization request in browser c and reports
// whether it ended at the client's callback without showing the login
// form, and the callback's query.
func authorizeIn(t *testing.T, e *env, c *http.Client, cfg *oauth2.Config, opts ...oauth2.AuthCodeOption) (bool, url.Values) {
	t.Helper()
	opts = append(opts, oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	resp, err := c.Get(cfg.AuthCodeURL("st4te", opts...))
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if body != "callback received" {
		if !strings.Contains(body, `name="password"`) {
			t.Fatalf("neither the callback nor the login form: %d %s", resp.StatusCode, body)
		}
		return false, nil
	}
	return true, <-e.codes
}

// TestSingleSignOn: a browser that logged in at one client is logged in
// at the others (no form, the first login's auth_time); prompt=none,
// prompt=login, max_age and the idle timeout are honoured; end_session and
// disabling the user end the session, for copies of the cookie too.
func TestSingleSignOn(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOpts{})
	userID := e.createUser(t, "sso@example.com", "sso-password")
	bff := e.bffConfig()
	cli := &oauth2.Config{ClientID: ClientCLI, RedirectURL: e.callback.URL + "/callback", Scopes: []string{"openid", "profile", "offline_access"}, Endpoint: bff.Endpoint}
	cli.Endpoint.AuthStyle = oauth2.AuthStyleInParams

	if ok, q := authorizeIn(t, e, browser(t), bff, oauth2.SetAuthURLParam("prompt", "none")); ok && q.Get("error") != "login_required" {
		t.Fatalf("prompt=none without a session: %v", q)
	}
	c := browser(t)
	f, _, _ := startLogin(t, c, bff.AuthCodeURL("st4te", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if resp, body := submitLogin(t, c, f, "sso@example.com", "sso-password"); body != "callback received" {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	<-e.codes
	firstLogin := e.clock.now()

	e.clock.advance(10 * time.Minute)
	verifier := oauth2.GenerateVerifier()
	resp, err := c.Get(cli.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, resp); body != "callback received" {
		t.Fatalf("another client in the same browser showed: %s", body)
	}
	code := (<-e.codes).Get("code")
	tok, err := cli.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	_, id := jwtParts(t, tok.Extra("id_token").(string))
	if id["sub"] != userID || int64(id["auth_time"].(float64)) > firstLogin.Unix()+1 {
		t.Fatalf("SSO ID token sub %v auth_time %v, first login %d", id["sub"], id["auth_time"], firstLogin.Unix())
	}

	if ok, q := authorizeIn(t, e, c, bff, oauth2.SetAuthURLParam("prompt", "none")); !ok || q.Get("code") == "" {
		t.Fatalf("prompt=none with a session: %v %v", ok, q)
	}
	if ok, _ := authorizeIn(t, e, c, bff, oauth2.SetAuthURLParam("prompt", "login")); ok {
		t.Fatal("prompt=login answered from the session")
	}
	if ok, _ := authorizeIn(t, e, c, bff, oauth2.SetAuthURLParam("max_age", "60")); ok {
		t.Fatal("max_age=60 answered by a login 10 minutes old")
	}
	if ok, q := authorizeIn(t, e, c, bff, oauth2.SetAuthURLParam("prompt", "none"), oauth2.SetAuthURLParam("max_age", "60")); ok && q.Get("error") != "login_required" {
		t.Fatalf("prompt=none max_age=60: %v", q)
	}
	if ok, _ := authorizeIn(t, e, c, bff, oauth2.SetAuthURLParam("max_age", "3600")); !ok {
		t.Fatal("max_age=3600 not answered by a login 10 minutes old")
	}
	// Idle past the timeout (2h): the form again.
	e.clock.advance(2*time.Hour + time.Minute)
	if ok, _ := authorizeIn(t, e, c, bff); ok {
		t.Fatal("an idle session answered")
	}

	// A new login; a copy of its cookie is taken, then the browser logs
	// out: neither the browser nor the copy is logged in any more.
	f, _, _ = startLogin(t, c, bff.AuthCodeURL("st4te", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	submitLogin(t, c, f, "sso@example.com", "sso-password")
	<-e.codes
	issuer, _ := url.Parse(e.issuer)
	copied := browser(t)
	copied.Jar.SetCookies(issuer, c.Jar.Cookies(issuer))
	if ok, _ := authorizeIn(t, e, copied, bff); !ok {
		t.Fatal("the copied cookie is no session (test setup)")
	}
	resp, err = c.Get(e.issuer + "/end_session?" + url.Values{"client_id": {ClientBFF}, "post_logout_redirect_uri": {testPostLogout}}.Encode())
	if err == nil {
		resp.Body.Close()
	}
	for name, b := range map[string]*http.Client{"browser": c, "copy": copied} {
		if ok, _ := authorizeIn(t, e, b, bff); ok {
			t.Fatalf("%s still logged in after end_session", name)
		}
	}

	// Disabling the user ends their sessions.
	f, _, _ = startLogin(t, c, bff.AuthCodeURL("st4te", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	submitLogin(t, c, f, "sso@example.com", "sso-password")
	<-e.codes
	if err := e.svc.store.setEnabled(ctx, userID, false, e.clock.now()); err != nil {
		t.Fatal(err)
	}
	if ok, _ := authorizeIn(t, e, c, bff); ok {
		t.Fatal("a disabled user's session answered")
	}
}
