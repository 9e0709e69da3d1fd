package iam

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// idTokenAMR exchanges code (with its PKCE verifier) at cfg's client and
// returns the token and the amr claim of its ID token.
func idTokenAMR(t *testing.T, cfg *oauth2.Config, code, verifier string) (*oauth2.Token, []string) {
	t.Helper()
	tok, err := cfg.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok, amrOf(t, tok)
}

// amrOf returns the amr claim of tok's ID token.
func amrOf(t *testing.T, tok *oauth2.Token) []string {
	t.Helper()
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		t.Fatal("no ID token")
	}
	_, claims := jwtParts(t, raw)
	list, ok := claims["amr"].([]any)
	if !ok {
		t.Fatalf("amr is %T %v, want a list", claims["amr"], claims["amr"])
	}
	out := make([]string, 0, len(list))
	for _, v := range list {
		s, ok := v.(string)
		if !ok {
			t.Fatalf("amr value %T %v", v, v)
		}
		out = append(out, s)
	}
	return out
}

// ssoCode runs an authorization request of cfg in browser c that the
// browser session must answer without the form, and returns its code and
// verifier.
func ssoCode(t *testing.T, e *env, c *http.Client, cfg *oauth2.Config) (code, verifier string) {
	t.Helper()
	verifier = oauth2.GenerateVerifier()
	resp, err := c.Get(cfg.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, resp); body != "callback received" {
		t.Fatalf("the browser session did not answer: %d %s", resp.StatusCode, body)
	}
	return (<-e.codes).Get("code"), verifier
}

// TestAMRSaysTheMethodsUsed: the ID token's amr (RFC 8176) is pwd after a
// login with the password alone and pwd otp mfa after one with a TOTP
// code too, at the code exchange, after a refresh and when the browser
// session answers another client (single sign-on). A session made with
// the password alone never yields mfa: once the account has a factor,
// such a session no longer answers, and the login asks for the code.
func TestAMRSaysTheMethodsUsed(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOpts{})
	bff := e.bffConfig()
	cli := &oauth2.Config{ClientID: ClientCLI, RedirectURL: e.callback.URL + "/callback", Scopes: []string{"openid", "profile", "offline_access"}, Endpoint: bff.Endpoint}
	cli.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	pwdOnly := []string{"pwd"}
	withTOTP := []string{"pwd", "otp", "mfa"}

	// The password alone.
	e.createUser(t, "plain@example.com", "plain-password")
	code, verifier := e.loginCode(t, bff, "plain@example.com", "plain-password")
	tok, amr := idTokenAMR(t, bff, code, verifier)
	if !slices.Equal(amr, pwdOnly) {
		t.Fatalf("password login: amr %v, want %v", amr, pwdOnly)
	}
	next, err := bff.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if amr := amrOf(t, next); !slices.Equal(amr, pwdOnly) {
		t.Fatalf("refreshed after a password login: amr %v, want %v", amr, pwdOnly)
	}

	// The password and a TOTP code. The enrolment's browser keeps the
	// session of its password-only login.
	e.createUser(t, "otp@example.com", "otp-password")
	old := browser(t)
	secret := enrolTOTP(t, e, old, "otp@example.com", "otp-password")
	if ok, _ := authorizeIn(t, e, old, cli); ok {
		t.Fatal("a password-only session answered for an account with a second factor")
	}

	c := browser(t)
	verifier = oauth2.GenerateVerifier()
	f, _, _ := startLogin(t, c, bff.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier)))
	resp, body := submitLogin(t, c, f, "otp@example.com", "otp-password")
	if resp.StatusCode != http.StatusOK || body == "callback received" {
		t.Fatalf("the password alone: %d %s", resp.StatusCode, body)
	}
	// The enrolment spent the current step's code: the next step's works.
	e.clock.advance(totpPeriod * time.Second)
	totp, _ := totpCodeAt(secret, totpStep(e.clock.now()))
	if _, body := submitPage(t, c, parsePage(t, resp.Request.URL, body), map[string]string{"code": totp}); body != "callback received" {
		t.Fatalf("the right code: %s", body)
	}
	tok, amr = idTokenAMR(t, bff, (<-e.codes).Get("code"), verifier)
	if !slices.Equal(amr, withTOTP) {
		t.Fatalf("TOTP login: amr %v, want %v", amr, withTOTP)
	}
	next, err = bff.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if amr := amrOf(t, next); !slices.Equal(amr, withTOTP) {
		t.Fatalf("refreshed after a TOTP login: amr %v, want %v", amr, withTOTP)
	}

	// The browser session remembers how it was made.
	code, verifier = ssoCode(t, e, c, cli)
	if _, amr := idTokenAMR(t, cli, code, verifier); !slices.Equal(amr, withTOTP) {
		t.Fatalf("single sign-on after a TOTP login: amr %v, want %v", amr, withTOTP)
	}
	plain := browser(t)
	f, _, _ = startLogin(t, plain, bff.AuthCodeURL("st4te", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if _, body := submitLogin(t, plain, f, "plain@example.com", "plain-password"); body != "callback received" {
		t.Fatalf("password login: %s", body)
	}
	<-e.codes
	code, verifier = ssoCode(t, e, plain, cli)
	if _, amr := idTokenAMR(t, cli, code, verifier); !slices.Equal(amr, pwdOnly) {
		t.Fatalf("single sign-on after a password login: amr %v, want %v", amr, pwdOnly)
	}
}
