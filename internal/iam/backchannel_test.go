package iam

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/realguardio/realguardio/internal/platform/auth"
)

// logoutReceiver is a client's back-channel logout endpoint that records
// every token and answers with the next status of its script (200 once
// the script is used up).
type logoutReceiver struct {
	mu     sync.Mutex
	tokens []string
	script []int
}

func (lr *logoutReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	lr.mu.Lock()
	lr.tokens = append(lr.tokens, r.PostForm.Get("logout_token"))
	status := http.StatusOK
	if len(lr.script) > 0 {
		status, lr.script = lr.script[0], lr.script[1:]
	}
	lr.mu.Unlock()
	w.WriteHeader(status)
}

func (lr *logoutReceiver) received() []string {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return append([]string(nil), lr.tokens...)
}

func (lr *logoutReceiver) answer(statuses ...int) {
	lr.mu.Lock()
	lr.script = statuses
	lr.mu.Unlock()
}

// verifiedLogoutClaims checks a logout token's signature against the IAM's
// JWKS and its header, and returns its claims.
func verifiedLogoutClaims(t *testing.T, e *env, token string) map[string]any {
	t.Helper()
	resp, err := http.Get(e.issuer + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(readBody(t, resp)), &set); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("logout token: %v", err)
	}
	h := jws.Signatures[0].Protected
	if h.ExtraHeaders[jose.HeaderType] != LogoutTokenType {
		t.Errorf("typ %v, want %s", h.ExtraHeaders[jose.HeaderType], LogoutTokenType)
	}
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in the JWKS", h.KeyID)
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		t.Fatalf("signature: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	ev, _ := claims["events"].(map[string]any)
	if _, ok := ev[BackchannelLogoutEvent].(map[string]any); !ok || claims["iss"] != e.issuer || claims["jti"] == "" || claims["nonce"] != nil {
		t.Errorf("logout token claims %v", claims)
	}
	if aud := stringsOf(claims["aud"]); len(aud) != 1 || aud[0] != ClientBFF {
		t.Errorf("aud %v", claims["aud"])
	}
	if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp <= iat || exp-iat > logoutTokenLifetime.Seconds() {
		t.Errorf("iat %v exp %v", iat, exp)
	}
	return claims
}

// waitTokens waits (bounded) until lr has received n tokens.
func waitTokens(t *testing.T, lr *logoutReceiver, n int) []string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for len(lr.received()) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	got := lr.received()
	if len(got) < n {
		t.Fatalf("received %d logout tokens, want %d", len(got), n)
	}
	return got
}

// TestBackchannelLogoutDelivery: end_session with a valid ID token sends
// the client a logout token for that session (sid and sub); log out
// everywhere and a disable send one for the user (sub, no sid); a
// replayed refresh token one for its family; a failed delivery is retried
// with a fresh token (new jti); a refusal (4xx) is not retried; Close
// stops the retries.
func TestBackchannelLogoutDelivery(t *testing.T) {
	ctx := context.Background()
	lr := &logoutReceiver{}
	rp := httptest.NewServer(lr)
	t.Cleanup(rp.Close)
	e := newEnv(t, envOpts{cfg: func(c *Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == ClientBFF {
				c.Clients[i].BackchannelLogoutURI = rp.URL + "/backchannel-logout"
			}
		}
	}})
	userID := e.createUser(t, "hal", "hal-password", auth.RoleCustomerEmployee)
	cfg := e.bffConfig()
	code, verifier := e.loginCode(t, cfg, "hal", "hal-password")
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	_, idClaims := jwtParts(t, tok.Extra("id_token").(string))

	// end_session: one token for that session.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(e.issuer + "/end_session?" + url.Values{"id_token_hint": {tok.Extra("id_token").(string)}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	got := waitTokens(t, lr, 1)
	claims := verifiedLogoutClaims(t, e, got[0])
	if claims["sub"] != userID || claims["sid"] == nil || claims["sid"] != idClaims["sid"] {
		t.Errorf("end_session logout token: sub %v sid %v, want %s and the ID token's sid %v", claims["sub"], claims["sid"], userID, idClaims["sid"])
	}

	// Log out everywhere, the client down once: retried with a new token.
	lr.answer(http.StatusServiceUnavailable)
	if err := e.svc.logoutEverywhere(ctx, userID); err != nil {
		t.Fatal(err)
	}
	got = waitTokens(t, lr, 3)
	first, second := verifiedLogoutClaims(t, e, got[1]), verifiedLogoutClaims(t, e, got[2])
	if first["sub"] != userID || first["sid"] != nil || first["jti"] == second["jti"] {
		t.Errorf("log out everywhere: %v then %v; want sub only and a new jti on retry", first, second)
	}
	if n := backchannelCount(t, e, "retry"); n != "1" {
		t.Errorf("retries counted %v, want 1", n)
	}

	// A refusal is final.
	lr.answer(http.StatusBadRequest)
	if err := e.svc.logoutEverywhere(ctx, userID); err != nil {
		t.Fatal(err)
	}
	waitTokens(t, lr, 4)
	if n := backchannelCount(t, e, "refused"); n != "1" {
		t.Errorf("refusals counted %v, want 1", n)
	}

	// A replayed refresh token revokes its family and ends the client's
	// session of it at once.
	lr.answer()
	code, verifier = e.loginCode(t, cfg, "hal", "hal-password")
	tok, err = cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	_, idClaims = jwtParts(t, tok.Extra("id_token").(string))
	if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
		t.Fatal(err)
	}
	e.clock.advance(time.Minute) // past the reuse grace window
	if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Fatal("a refresh token reused after the grace window was accepted")
	}
	got = waitTokens(t, lr, 5)
	if claims := verifiedLogoutClaims(t, e, got[4]); claims["sid"] != idClaims["sid"] || claims["sub"] != userID {
		t.Errorf("logout token after a replay: %v, want the family %v", claims, idClaims["sid"])
	}

	// A client that stays down: Close ends the retries.
	lr.answer(503, 503, 503, 503, 503)
	if err := e.svc.logoutEverywhere(ctx, userID); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(lr.received()); n > 7 {
		t.Errorf("%d deliveries after Close", n)
	}
}

// backchannelCount reads realguardio_iam_backchannel_logouts_total for
// result from the IAM's /metrics.
func backchannelCount(t *testing.T, e *env, result string) string {
	t.Helper()
	resp, err := http.Get(e.issuer + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	prefix := `realguardio_iam_backchannel_logouts_total{result="` + result + `"} `
	for _, line := range strings.Split(readBody(t, resp), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			return v
		}
	}
	return "absent"
}

// TestPasswordChangeLogoutNamesEarlierSessions: a password change sends a
// logout token per session the user had before it (sub and its sid), and
// none for the whole user, so that a retry cannot end a session begun
// after the change: a reset code redeemed names the two sessions of the
// old password; a change on the account page names those (already
// revoked) and the session made with the reset password.
func TestPasswordChangeLogoutNamesEarlierSessions(t *testing.T) {
	ctx := context.Background()
	lr := &logoutReceiver{}
	rp := httptest.NewServer(lr)
	t.Cleanup(rp.Close)
	e := newEnv(t, envOpts{cfg: func(c *Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == ClientBFF {
				c.Clients[i].BackchannelLogoutURI = rp.URL + "/backchannel-logout"
			}
		}
	}})
	userID := e.createUser(t, "pat@example.com", "pat-password", auth.RoleCustomerEmployee)
	cfg := e.bffConfig()
	session := func(password string) string {
		t.Helper()
		code, verifier := e.loginCode(t, cfg, "pat@example.com", password)
		tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		_, claims := jwtParts(t, tok.Extra("id_token").(string))
		sid, _ := claims["sid"].(string)
		if sid == "" {
			t.Fatalf("an ID token without sid: %v", claims)
		}
		return sid
	}
	// named checks that tokens name exactly the sessions want, each once,
	// every one with the user's sub.
	named := func(what string, tokens []string, want ...string) {
		t.Helper()
		var got []string
		for _, tok := range tokens {
			claims := verifiedLogoutClaims(t, e, tok)
			sid, _ := claims["sid"].(string)
			if claims["sub"] != userID || sid == "" {
				t.Errorf("%s: a logout token with sub %v sid %v, want %s and a sid", what, claims["sub"], claims["sid"], userID)
			}
			got = append(got, sid)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: logout tokens name %v, want %v", what, got, want)
		}
	}
	a, b := session("pat-password"), session("pat-password")

	st, out := call(t, http.MethodPost, e.issuer+"/api/users/"+userID+"/password-reset", e.adminToken(t), nil)
	if st != http.StatusCreated {
		t.Fatalf("reset: %d %v", st, out)
	}
	link, _ := out["resetUrl"].(string)
	code, _ := out["code"].(string)
	if resp, body := redeem(t, link, code, "pat-second-password"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Password set") {
		t.Fatalf("redeem: %d %s", resp.StatusCode, body)
	}
	named("reset", waitTokens(t, lr, 2), a, b)

	c := session("pat-second-password")
	br := browser(t)
	if _, body := passwordLogin(t, e, br, "pat@example.com", "pat-second-password"); body != "callback received" {
		t.Fatal(body)
	}
	<-e.codes
	resp, err := br.Get(e.issuer + accountPasswordPath)
	if err != nil {
		t.Fatal(err)
	}
	page := parsePage(t, resp.Request.URL, readBody(t, resp))
	if resp, body := submitPage(t, br, page, map[string]string{"current_password": "pat-second-password", "new_password": "pat-third-password", "confirm_password": "pat-third-password"}); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Password changed") {
		t.Fatalf("the change: %d %s", resp.StatusCode, body)
	}
	named("account page", waitTokens(t, lr, 5)[2:], a, b, c)
}
