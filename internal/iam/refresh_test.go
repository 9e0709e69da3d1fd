package iam

import (
	"context"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// TestRefreshFamilyLifetime checks that a session ends a fixed time after
// its login however often its refresh token rotates, and that no token of
// the family is issued to live past that end.
func TestRefreshFamilyLifetime(t *testing.T) {
	if got := (func() Config { c := Config{}; c.applyDefaults(); return c })().RefreshFamilyLifetime; got != 12*time.Hour {
		t.Fatalf("default RefreshFamilyLifetime %v, want 12h", got)
	}
	eachStore(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		e := newEnv(t, envOpts{db: db, cfg: func(c *Config) { c.RefreshFamilyLifetime = 3 * time.Hour }})
		e.createUser(t, "jill", "jill-password")
		cfg := e.bffConfig()
		start := e.clock.now()
		code, verifier := e.loginCode(t, cfg, "jill", "jill-password")
		tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		rt := tok.RefreshToken
		// Each refresh well within the token's 60 minutes keeps the
		// session going, up to the family's end...
		for range 3 {
			e.clock.advance(50 * time.Minute)
			next, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
			if err != nil {
				t.Fatalf("refresh at %v: %v", e.clock.now().Sub(start).Round(time.Minute), err)
			}
			rt = next.RefreshToken
		}
		stored, err := e.svc.store.refreshTokenByHash(ctx, db, hashSecret(rt))
		if err != nil {
			t.Fatal(err)
		}
		// The family begins at the code exchange, which a loaded machine
		// may reach seconds after start.
		if end := stored.FamilyCreatedAt.Add(3 * time.Hour); stored.ExpiresAt.After(end) || stored.FamilyCreatedAt.Before(start.Add(-time.Second)) || stored.FamilyCreatedAt.After(start.Add(time.Minute)) {
			t.Fatalf("token expires %v, family began %v; the session began %v and ends %v", stored.ExpiresAt, stored.FamilyCreatedAt, start, end)
		}
		// ...and not past it, although the last token is only 50 minutes
		// old.
		e.clock.advance(50 * time.Minute)
		if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token(); oauthErrorCode(err) != "invalid_grant" {
			t.Fatalf("refresh after the family lifetime: %v", err)
		}
		// A token whose own expiry lies beyond the family's end (issued
		// under a longer lifetime) ends with the family too.
		if _, err := db.ExecContext(ctx, `UPDATE iam_refresh_tokens SET expires_at = ? WHERE token_hash = ?`,
			sqldb.Micros(e.clock.now().Add(time.Hour)), hashSecret(rt)); err != nil {
			t.Fatal(err)
		}
		if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token(); oauthErrorCode(err) != "invalid_grant" {
			t.Fatalf("refresh of a long-lived token after the family lifetime: %v", err)
		}
	})
}

// TestRefreshReuseGrace: a refresh token presented again shortly after its
// rotation gets the same successor (a client racing itself), concurrent
// presentations all get it, and the family lives on; past the window, after
// the successor itself rotated, or with the window disabled, a reuse is
// theft and revokes the family.
func TestRefreshReuseGrace(t *testing.T) {
	if got := (func() Config { c := Config{}; c.applyDefaults(); return c })().RefreshReuseGrace; got != 30*time.Second {
		t.Fatalf("default RefreshReuseGrace %v, want 30s", got)
	}
	eachStore(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		e := newEnv(t, envOpts{db: db, cfg: func(c *Config) { c.RefreshReuseGrace = 20 * time.Second }})
		e.createUser(t, "jill", "jill-password")
		cfg := e.bffConfig()
		login := func() string {
			code, verifier := e.loginCode(t, cfg, "jill", "jill-password")
			tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatal(err)
			}
			return tok.RefreshToken
		}
		refresh := func(rt string) (*oauth2.Token, error) {
			return cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
		}

		t.Run("within the window: the same successor", func(t *testing.T) {
			rt := login()
			first, err := refresh(rt)
			if err != nil {
				t.Fatal(err)
			}
			e.clock.advance(15 * time.Second)
			again, err := refresh(rt)
			if err != nil {
				t.Fatalf("reuse within the window: %v", err)
			}
			if again.RefreshToken != first.RefreshToken || again.AccessToken == "" {
				t.Fatal("reuse within the window did not return the same successor")
			}
			if _, ok := again.Extra("id_token").(string); !ok {
				t.Fatal("no ID token in the grace answer")
			}
			if _, err := refresh(first.RefreshToken); err != nil {
				t.Fatalf("the successor no longer works: %v", err)
			}
		})

		t.Run("concurrent presentations", func(t *testing.T) {
			rt := login()
			const n = 6
			got := make([]string, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					tok, err := refresh(rt)
					errs[i] = err
					if err == nil {
						got[i] = tok.RefreshToken
					}
				})
			}
			wg.Wait()
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("presentation %d: %v", i, errs[i])
				}
				if got[i] != got[0] {
					t.Fatalf("presentation %d got another successor", i)
				}
			}
			if _, err := refresh(got[0]); err != nil {
				t.Fatalf("the family did not survive the race: %v", err)
			}
		})

		t.Run("past the window: revoked", func(t *testing.T) {
			rt := login()
			first, err := refresh(rt)
			if err != nil {
				t.Fatal(err)
			}
			e.clock.advance(21 * time.Second)
			if _, err := refresh(rt); oauthErrorCode(err) != "invalid_grant" {
				t.Fatalf("reuse after the window: %v", err)
			}
			if _, err := refresh(first.RefreshToken); oauthErrorCode(err) != "invalid_grant" {
				t.Fatalf("the family survived a reuse after the window: %v", err)
			}
		})

		t.Run("successor already rotated: revoked", func(t *testing.T) {
			rt := login()
			first, err := refresh(rt)
			if err != nil {
				t.Fatal(err)
			}
			second, err := refresh(first.RefreshToken)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := refresh(rt); oauthErrorCode(err) != "invalid_grant" {
				t.Fatalf("reuse of a grandparent: %v", err)
			}
			if _, err := refresh(second.RefreshToken); oauthErrorCode(err) != "invalid_grant" {
				t.Fatalf("the family survived: %v", err)
			}
		})

		t.Run("a revoked family has no grace", func(t *testing.T) {
			rt := login()
			first, err := refresh(rt)
			if err != nil {
				t.Fatal(err)
			}
			stored, err := e.svc.store.refreshTokenByHash(ctx, db, hashSecret(first.RefreshToken))
			if err != nil {
				t.Fatal(err)
			}
			if err := e.svc.store.revokeFamily(ctx, db, stored.FamilyID); err != nil {
				t.Fatal(err)
			}
			if _, err := refresh(rt); oauthErrorCode(err) != "invalid_grant" {
				t.Fatalf("reuse in a revoked family: %v", err)
			}
		})
	})

	t.Run("disabled", func(t *testing.T) {
		ctx := context.Background()
		e := newEnv(t, envOpts{cfg: func(c *Config) { c.RefreshReuseGrace = -1 }})
		e.createUser(t, "jill", "jill-password")
		cfg := e.bffConfig()
		code, verifier := e.loginCode(t, cfg, "jill", "jill-password")
		tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		first, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); oauthErrorCode(err) != "invalid_grant" {
			t.Fatalf("immediate reuse without a window: %v", err)
		}
		if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: first.RefreshToken}).Token(); oauthErrorCode(err) != "invalid_grant" {
			t.Fatalf("the family survived: %v", err)
		}
	})
}
