package bff

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestLoginWithIAMDown: once the IAM has been discovered and then dies,
// /login shows the BFF's own page (503, HTML) instead of redirecting the
// browser to a dead host, and /readyz reports the IAM unreachable
// (degraded, not "ok" from the cached discovery document).
func TestLoginWithIAMDown(t *testing.T) {
	var issuer string
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer":                 issuer,
			"authorization_endpoint": issuer + "/oauth/authorize",
			"token_endpoint":         issuer + "/oauth/token",
			"jwks_uri":               issuer + "/.well-known/jwks.json",
		})
	}))
	issuer = idp.URL
	b := startBFF(t, issuer, "", backendURLs{}, []string{newKey(t)}, nil)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	resp, _ := b.do(t, noRedirect, "GET", "/login", "", nil)
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), issuer+"/oauth/authorize") {
		t.Fatalf("IAM up: /login = %d to %q, want a redirect to the IAM", resp.StatusCode, resp.Header.Get("Location"))
	}
	readyz := func() (int, map[string]any) {
		resp, body := b.do(t, noRedirect, "GET", "/readyz", "", nil)
		var out map[string]any
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatalf("readyz body %q: %v", body, err)
		}
		return resp.StatusCode, out
	}
	if code, out := readyz(); code != http.StatusOK || out["status"] != "ready" {
		t.Fatalf("IAM up: readyz = %d %v", code, out)
	}

	idp.Close()
	resp, body := b.do(t, noRedirect, "GET", "/login", "", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Location") != "" {
		t.Fatalf("IAM down: /login = %d (Location %q), want the BFF's own 503 page", resp.StatusCode, resp.Header.Get("Location"))
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(body, "identity service is not reachable") {
		t.Fatalf("IAM down: /login page %q: %s", ct, body)
	}
	code, out := readyz()
	if code != http.StatusOK || out["status"] != "degraded" {
		t.Fatalf("IAM down: readyz = %d %v, want 200 degraded", code, out)
	}
	if got := out["checks"].(map[string]any)["iam"]; got == "ok" || strings.Contains(got.(string), "127.0.0.1") {
		t.Fatalf("IAM down: readyz iam = %v", got)
	}
}
