package iam

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestCLIRedirectURIs checks that the public CLI client's loopback
// redirect (and post-logout redirect) varies in its port only, exactly as
// API.md registers it, and that the BFF's stays an exact match.
func TestCLIRedirectURIs(t *testing.T) {
	e := newEnv(t, envOpts{})
	authorize := func(clientID, redirectURI string) *http.Response {
		q := baseAuthQuery(e)
		q.Set("client_id", clientID)
		q.Set("scope", "openid")
		q.Set("redirect_uri", redirectURI)
		return authorizeRaw(t, e, q)
	}
	toLogin := func(resp *http.Response) bool {
		return resp.StatusCode == http.StatusFound && strings.HasPrefix(resp.Header.Get("Location"), e.issuer+loginPath)
	}
	accepted := []string{
		"http://127.0.0.1/callback",
		"http://127.0.0.1:1/callback",
		"http://127.0.0.1:53682/callback",
		"http://127.0.0.1:65535/callback",
	}
	refused := []string{
		"https://127.0.0.1:1/callback",
		"https://localhost:1/callback",
		"http://localhost:8080/callback",
		"http://[::1]:8080/callback",
		"http://127.0.0.2:8080/callback",
		"http://evil.example:8080/callback",
		"http://user@127.0.0.1:8080/callback",
		"http://127.0.0.1:8080@evil.example/callback",
		"http://127.0.0.1:0/callback",
		"http://127.0.0.1:65536/callback",
		"http://127.0.0.1:08080/callback",
		"http://127.0.0.1:/callback",
		"http://127.0.0.1:8080/callback/",
		"http://127.0.0.1:8080/Callback",
		"http://127.0.0.1:8080/%63allback",
		"http://127.0.0.1:8080/callback?x=1",
		"http://127.0.0.1:8080/callback#x",
		"http://127.0.0.1:8080/other",
	}
	for _, u := range accepted {
		if resp := authorize(ClientCLI, u); !toLogin(resp) {
			t.Errorf("CLI redirect_uri %s refused: %d %q", u, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	for _, u := range refused {
		resp := authorize(ClientCLI, u)
		if resp.StatusCode == http.StatusFound {
			t.Errorf("CLI redirect_uri %s accepted or redirected to: %q", u, resp.Header.Get("Location"))
		}
	}
	// The BFF's loopback callback of the tests is matched exactly.
	bff := e.callback.URL + "/auth/callback"
	if resp := authorize(ClientBFF, bff); !toLogin(resp) {
		t.Errorf("BFF redirect_uri refused: %d", resp.StatusCode)
	}
	other, _ := url.Parse(bff)
	other.Host = "127.0.0.1:1"
	if resp := authorize(ClientBFF, other.String()); resp.StatusCode == http.StatusFound {
		t.Errorf("BFF redirect_uri on another port accepted: %q", resp.Header.Get("Location"))
	}

	endSession := func(clientID, uri string) *http.Response {
		q := url.Values{"client_id": {clientID}, "post_logout_redirect_uri": {uri}}
		resp, err := noFollow.Get(e.issuer + "/end_session?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, u := range []string{CLIPostLogoutRedirectURI, "http://127.0.0.1:53682/logged-out"} {
		if resp := endSession(ClientCLI, u); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != u {
			t.Errorf("CLI post-logout %s: %d %q", u, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	for _, u := range []string{
		"https://localhost:1/logged-out", "http://[::1]:8080/logged-out", "http://localhost:8080/logged-out",
		"http://127.0.0.1:8080/callback", "http://127.0.0.1:8080/logged-out?x=1", "http://u@127.0.0.1:8080/logged-out",
	} {
		if resp := endSession(ClientCLI, u); resp.StatusCode == http.StatusFound && resp.Header.Get("Location") != e.issuer+loggedOutPath {
			t.Errorf("CLI post-logout %s accepted: %q", u, resp.Header.Get("Location"))
		}
	}
	if resp := endSession(ClientBFF, testPostLogout); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != testPostLogout {
		t.Errorf("BFF post-logout: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := endSession(ClientBFF, "http://127.0.0.1:2/logged-out"); resp.StatusCode == http.StatusFound && resp.Header.Get("Location") != e.issuer+loggedOutPath {
		t.Errorf("BFF post-logout on another port accepted: %q", resp.Header.Get("Location"))
	}
}

// TestMatchRedirect covers matchRedirect's rules directly, including a
// registered IPv6 loopback URI.
func TestMatchRedirect(t *testing.T) {
	reg := []string{"http://[::1]/cb", "http://127.0.0.1/callback?a=1", "http://localhost/cb2", "https://app.example/cb"}
	for uri, want := range map[string]bool{
		"http://[::1]:8080/cb":                true,
		"http://127.0.0.1:9/callback?a=1":     true,
		"http://127.0.0.1:9/callback?a=2":     false,
		"http://localhost/cb2":                true,  // exact
		"http://localhost:8080/cb2":           false, // only IP literals vary
		"https://app.example/cb":              true,
		"https://app.example:444/cb":          false,
		"http://[::1]:8080/cb/../cb":          false,
		"http://[0:0:0:0:0:0:0:1]:8080/cb":    false,
		"http://127.0.0.1:8080/callback?a=1#": false,
	} {
		if got := matchRedirect(reg, uri, true); got != want {
			t.Errorf("public %s: %v, want %v", uri, got, want)
		}
	}
	if matchRedirect(reg, "http://[::1]:8080/cb", false) {
		t.Error("a confidential client's loopback URI matched on another port")
	}
}
