package iam

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"
)

func jwksKids(t *testing.T, e *env) []string {
	t.Helper()
	resp, err := http.Get(e.issuer + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			Alg string `json:"alg"`
			Kty string `json:"kty"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var out []string
	for _, k := range set.Keys {
		if k.Alg != "RS256" || k.Kty != "RSA" {
			t.Fatalf("key %+v", k)
		}
		out = append(out, k.Kid)
	}
	return out
}

func TestKeyRotation(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOpts{cfg: func(c *Config) { c.KeyPublishAhead = 10 * time.Minute }})
	cc := clientcredentials.Config{ClientID: AudienceCustomer, ClientSecret: testSvcSecret, TokenURL: e.issuer + "/oauth/token"}
	signer := func() string {
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := jwtParts(t, tok.AccessToken)
		return h["kid"].(string)
	}
	first := signer()
	if kids := jwksKids(t, e); !slices.Equal(kids, []string{first}) {
		t.Fatalf("JWKS = %v", kids)
	}
	if err := e.svc.RotateKeys(ctx); err != nil {
		t.Fatal(err)
	}
	kids := jwksKids(t, e)
	if len(kids) != 2 || kids[0] != first {
		t.Fatalf("after rotation JWKS = %v", kids)
	}
	second := kids[1]
	// Published ahead: the new key is in the JWKS but does not sign yet.
	if got := signer(); got != first {
		t.Fatalf("new key signs before its grace period: %s", got)
	}
	e.clock.advance(10 * time.Minute)
	if got := signer(); got != second {
		t.Fatalf("signer after grace = %s, want %s", got, second)
	}
	// The old key stays published while tokens it signed may be valid
	// (5 min access tokens + 1 min skew).
	e.clock.advance(5 * time.Minute)
	if err := e.svc.maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if kids := jwksKids(t, e); !slices.Contains(kids, first) {
		t.Fatalf("old key dropped too early: %v", kids)
	}
	e.clock.advance(time.Minute + time.Second)
	if kids := jwksKids(t, e); !slices.Equal(kids, []string{second}) {
		t.Fatalf("old key still published: %v", kids)
	}
	if err := e.svc.maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if ks, _ := e.svc.store.keys(ctx); len(ks) != 1 || ks[0].ID != second {
		t.Fatalf("stored keys = %d", len(ks))
	}
	// Scheduled rotation happens once the interval has passed, not before.
	e.svc.keys.interval = time.Hour
	if err := e.svc.maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(jwksKids(t, e)); n != 1 {
		t.Fatalf("rotated before the interval: %d keys", n)
	}
	e.clock.advance(time.Hour)
	if err := e.svc.maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(jwksKids(t, e)); n != 2 {
		t.Fatalf("no scheduled rotation: %d keys", n)
	}
}

func TestBootstrapAdmin(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOpts{cfg: func(c *Config) { c.AdminPassword = "" }})
	pw := e.svc.GeneratedAdminPassword()
	if len(pw) != 20 {
		t.Fatalf("generated password %q", pw)
	}
	if _, ok := e.svc.authenticate(ctx, AdminUsername, pw); !ok {
		t.Fatal("generated password does not log in")
	}
	// A second start keeps the password and generates nothing.
	again, err := New(ctx, Config{Issuer: e.issuer}, Deps{DB: e.svc.db})
	if err != nil {
		t.Fatal(err)
	}
	if again.GeneratedAdminPassword() != "" {
		t.Fatal("generated twice")
	}
	// A configured password replaces it.
	third, err := New(ctx, Config{Issuer: e.issuer, AdminPassword: "configured-pw"}, Deps{DB: e.svc.db})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := third.authenticate(ctx, AdminUsername, "configured-pw"); !ok {
		t.Fatal("configured password not applied")
	}
}
