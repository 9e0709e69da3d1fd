package iam

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func TestLoginThrottle(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.createUser(t, "gina", "gina-password")
	cfg := e.bffConfig()
	c := browser(t)
	attempt := func(username, password string) (*http.Response, string) {
		f, _, _ := startLogin(t, c, cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		return submitLogin(t, c, f, username, password)
	}
	for i := 0; i < 5; i++ {
		resp, body := attempt("gina", "wrong-password")
		m := errorRe.FindStringSubmatch(body)
		if resp.StatusCode != http.StatusUnauthorized || m == nil || m[1] != invalidCredentials {
			t.Fatalf("attempt %d: %d %v", i, resp.StatusCode, m)
		}
	}
	// Unknown users get exactly the same answer.
	if resp, body := attempt("nobody-here", "whatever-pw"); resp.StatusCode != http.StatusUnauthorized || errorRe.FindStringSubmatch(body)[1] != invalidCredentials {
		t.Fatalf("unknown user: %d", resp.StatusCode)
	}
	e.mu.Lock()
	sleeps := append([]time.Duration(nil), e.sleeps...)
	e.mu.Unlock()
	if len(sleeps) < 4 || !(sleeps[0] < sleeps[1] && sleeps[1] < sleeps[2] && sleeps[2] < sleeps[3]) {
		t.Fatalf("delays are not progressive: %v", sleeps)
	}
	// Locked: even the right password is refused, with a clear message.
	resp, body := attempt("GINA", "gina-password")
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed attempts; try again in 15 minutes") {
		t.Fatalf("locked: %d %s", resp.StatusCode, errorRe.FindStringSubmatch(body))
	}
	e.clock.advance(16 * time.Minute)
	resp, body = attempt("gina", "gina-password")
	if resp.StatusCode != http.StatusOK || body != "callback received" {
		t.Fatalf("after lockout: %d %s", resp.StatusCode, body)
	}
	<-e.codes

	// Per address: 20 failures over many usernames lock the address.
	for i := 0; i < 20; i++ {
		attempt("spray-"+strings.Repeat("x", i+1), "wrong-password")
	}
	resp, body = attempt("gina", "gina-password")
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed attempts") {
		t.Fatalf("address lock: %d", resp.StatusCode)
	}
}

func TestLoginCSRF(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.createUser(t, "hank", "hank-password")
	cfg := e.bffConfig()
	c := browser(t)
	f, _, _ := startLogin(t, c, cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))

	t.Run("wrong token", func(t *testing.T) {
		bad := loginForm{action: f.action, fields: url.Values{"authRequestID": {f.fields.Get("authRequestID")}, "csrf": {"forged"}}}
		if resp, _ := submitLogin(t, c, bad, "hank", "hank-password"); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("no cookie (cross-site post)", func(t *testing.T) {
		if resp, _ := submitLogin(t, browser(t), f, "hank", "hank-password"); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("token of another request", func(t *testing.T) {
		other, _, _ := startLogin(t, c, cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		mixed := loginForm{action: f.action, fields: url.Values{"authRequestID": {f.fields.Get("authRequestID")}, "csrf": {other.fields.Get("csrf")}}}
		if resp, _ := submitLogin(t, c, mixed, "hank", "hank-password"); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("cookie is SameSite", func(t *testing.T) {
		resp, err := http.Get(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var found bool
		for _, ck := range resp.Cookies() {
			if ck.Name == csrfCookie {
				found = ck.SameSite == http.SameSiteStrictMode && ck.HttpOnly
			}
		}
		if !found {
			t.Fatalf("csrf cookie missing or not SameSite=Strict HttpOnly: %v", resp.Header["Set-Cookie"])
		}
	})
}
