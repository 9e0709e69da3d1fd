package iam

import (
	"net/http"
	"strings"
	"testing"
)

// iamPaths lists every endpoint the IAM serves, for the tests that check a
// property of all of them.
var iamPaths = []string{
	"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server",
	"/authorize", "/oauth/token", "/oauth/revoke", "/oauth/introspect", "/userinfo", "/keys", "/end_session",
	"/login", "/logged-out", "/api/users",
}

// TestCORSRefusedEverywhere sends a preflight and a plain cross-origin
// request from a foreign origin to every endpoint: no answer may admit the
// origin (the audit found zitadel's allow-all default with credentials on
// the token, userinfo, revocation, JWKS and discovery endpoints).
func TestCORSRefusedEverywhere(t *testing.T) {
	e := newEnv(t, envOpts{})
	const evil = "http://evil.example"
	for _, path := range iamPaths {
		for _, method := range []string{http.MethodOptions, http.MethodGet, http.MethodPost} {
			req, _ := http.NewRequest(method, e.issuer+path, strings.NewReader("grant_type=client_credentials"))
			req.Header.Set("Origin", evil)
			if method == http.MethodOptions {
				req.Header.Set("Access-Control-Request-Method", http.MethodPost)
				req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
			} else {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			resp, err := noFollow.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			resp.Body.Close()
			for _, h := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers"} {
				if v := resp.Header.Get(h); v != "" {
					t.Errorf("%s %s from %s: %s: %q", method, path, evil, h, v)
				}
			}
		}
	}
}
