package iam

import (
	"context"
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
		// The family begins at the code exchange, a moment after start
		// (longer on a loaded machine).
		if end := start.Add(3 * time.Hour); stored.ExpiresAt.After(stored.FamilyCreatedAt.Add(3*time.Hour)) || stored.FamilyCreatedAt.Before(start.Add(-time.Second)) || stored.FamilyCreatedAt.After(start.Add(time.Minute)) {
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
