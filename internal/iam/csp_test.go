package iam

import (
	"strings"
	"testing"
)

// The login page's form-action must admit the clients' redirect origins:
// Chromium applies it to the redirect that ends a successful login, so
// 'self' alone stops the browser before it reaches the client's callback.
func TestFormActionSources(t *testing.T) {
	clients := map[string]*client{
		"bff": {cfg: ClientConfig{ID: "bff", RedirectURIs: []string{"https://app.example.com/auth/callback"}}},
		"cli": {cfg: ClientConfig{ID: "cli", Public: true, RedirectURIs: []string{"http://127.0.0.1/callback"}}},
		"svc": {cfg: ClientConfig{ID: "svc"}},
	}
	got := formActionSources(clients)
	for _, want := range []string{"'self'", "https://app.example.com", "http://127.0.0.1:*"} {
		if !strings.Contains(got, want) {
			t.Errorf("form-action %q lacks %q", got, want)
		}
	}
	if strings.Contains(got, "/auth/callback") {
		t.Errorf("form-action %q contains a path; sources must be origins", got)
	}
}
