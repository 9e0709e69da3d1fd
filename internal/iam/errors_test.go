package iam

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// TestAuthRequestErrorsHideStoreDetails checks that what the store says
// (its "not found", SQL and driver text) never becomes the OAuth error
// shown to the browser or the client.
func TestAuthRequestErrorsHideStoreDetails(t *testing.T) {
	ctx := context.Background()
	get := func(t *testing.T, u string) (*http.Response, string) {
		t.Helper()
		resp, err := noFollow.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		return resp, readBody(t, resp)
	}

	t.Run("unknown request", func(t *testing.T) {
		e := newEnv(t, envOpts{})
		resp, body := get(t, e.svc.authCallbackURL("x"))
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(body, "not found") || !strings.Contains(body, "unknown or has expired") {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	})

	t.Run("replayed callback", func(t *testing.T) {
		e := newEnv(t, envOpts{})
		e.createUser(t, "ivy", "ivy-password")
		c := browser(t)
		f, _, _ := startLogin(t, c, e.bffConfig().AuthCodeURL("st4te", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if resp, body := submitLogin(t, c, f, "ivy", "ivy-password"); body != "callback received" {
			t.Fatalf("login: %d %s", resp.StatusCode, body)
		}
		<-e.codes
		// The request already has its code; a second callback must not
		// mint another, and says so without the store's words.
		resp, body := get(t, e.svc.authCallbackURL(f.fields.Get("authRequestID")))
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("code") != "" {
			t.Fatalf("%d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
		if d := loc.Query().Get("error_description"); loc.Query().Get("error") != "invalid_request" || strings.Contains(d, "not found") || !strings.Contains(d, "unknown or has expired") {
			t.Fatalf("error redirect %q", loc)
		}
	})

	t.Run("store failure", func(t *testing.T) {
		e := newEnv(t, envOpts{})
		if _, err := e.svc.db.ExecContext(ctx, `DROP TABLE iam_auth_requests`); err != nil {
			t.Fatal(err)
		}
		resp, body := get(t, e.svc.authCallbackURL("x"))
		if strings.Contains(body, "iam_auth_requests") || strings.Contains(strings.ToLower(body), "no such table") || !strings.Contains(body, "server_error") {
			t.Fatalf("callback: %d %q", resp.StatusCode, body)
		}
		// Creating a request fails the same way, redirected to the client.
		resp = authorizeRaw(t, e, baseAuthQuery(e))
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if loc == nil || loc.Query().Get("error") != "server_error" || strings.Contains(loc.RawQuery, "table") {
			t.Fatalf("authorize: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
}
