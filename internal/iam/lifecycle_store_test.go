package iam

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// TestLifecycleStore runs the lifecycle's SQL on SQLite and PostgreSQL:
// the change requirement, the TOTP enrolment and its replay guard (one
// acceptance per step, never an earlier step), reset codes (once, before
// expiry, the latest only) and ending a user's sessions but one.
func TestLifecycleStore(t *testing.T) {
	eachStore(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := &store{db: db}
		now := time.Now().UTC()
		u := &user{ID: "u-1", Username: "u1@example.com", PasswordHash: "h0", Roles: []string{}, Enabled: true, CreatedByClient: "test"}
		if err := s.insertUser(ctx, db, u, now); err != nil {
			t.Fatal(err)
		}
		if st, err := s.lifecycle(ctx, db, u.ID); err != nil || st != (lifecycleState{}) {
			t.Fatalf("no row: %+v %v", st, err)
		}
		if err := s.setMustChangePassword(ctx, db, u.ID, true, now); err != nil {
			t.Fatal(err)
		}
		if st, _ := s.lifecycle(ctx, db, u.ID); !st.MustChangePassword {
			t.Fatal("the change requirement was not stored")
		}

		// TOTP: pending, confirmed, steps accepted once and in order.
		if err := s.setTOTPPending(ctx, u.ID, "sealed-1", now); err != nil {
			t.Fatal(err)
		}
		if err := s.confirmTOTP(ctx, u.ID, "sealed-other", 10, now); !errors.Is(err, errNotFound) {
			t.Fatalf("confirming a secret that is not pending: %v", err)
		}
		if err := s.confirmTOTP(ctx, u.ID, "sealed-1", 10, now); err != nil {
			t.Fatal(err)
		}
		if st, _ := s.lifecycle(ctx, db, u.ID); st.TOTPSecret != "sealed-1" || st.TOTPPending != "" || st.TOTPLastStep != 10 {
			t.Fatalf("after the confirmation: %+v", st)
		}
		for _, c := range []struct {
			step int64
			ok   bool
		}{{10, false}, {9, false}, {11, true}, {11, false}, {13, true}, {12, false}} {
			if ok, err := s.acceptTOTPStep(ctx, u.ID, c.step, now); err != nil || ok != c.ok {
				t.Fatalf("step %d: %v %v, want %v", c.step, ok, err, c.ok)
			}
		}

		// Reset codes.
		exp := now.Add(time.Hour)
		if err := s.insertPasswordReset(ctx, "code-a", u.ID, "admin", now, exp); err != nil {
			t.Fatal(err)
		}
		if err := s.insertPasswordReset(ctx, "code-b", u.ID, "admin", now, exp); err != nil {
			t.Fatal(err)
		}
		if _, err := s.consumePasswordReset(ctx, db, "code-a", now); !errors.Is(err, errNotFound) {
			t.Fatalf("a voided code: %v", err)
		}
		if _, err := s.consumePasswordReset(ctx, db, "code-b", exp); !errors.Is(err, errNotFound) {
			t.Fatalf("an expired code: %v", err)
		}
		if id, err := s.consumePasswordReset(ctx, db, "code-b", now); err != nil || id != u.ID {
			t.Fatalf("the latest code: %q %v", id, err)
		}
		if _, err := s.consumePasswordReset(ctx, db, "code-b", now); !errors.Is(err, errNotFound) {
			t.Fatalf("a code redeemed twice: %v", err)
		}

		// Setting the user's own password ends every session but one.
		for _, h := range []string{"keep", "other-1", "other-2"} {
			if err := s.insertBrowserSession(ctx, h, browserSession{UserID: u.ID, AuthTime: now, LastSeenAt: now, ExpiresAt: exp}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.insertRefreshToken(ctx, db, &refreshToken{Hash: "rt", ID: "rt-id", FamilyID: "f", ClientID: "c", UserID: u.ID, Scopes: []string{}, AuthTime: now, CreatedAt: now, ExpiresAt: exp, FamilyCreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		if err := db.InTx(ctx, func(tx *sqldb.Tx) error { return s.setOwnPassword(ctx, tx, u.ID, "h1", "keep", now) }); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM iam_browser_sessions WHERE user_id = ?`, u.ID).Scan(&n); err != nil || n != 1 {
			t.Fatalf("%d sessions left (%v), want the kept one", n, err)
		}
		if _, err := s.browserSession(ctx, "keep"); err != nil {
			t.Fatalf("the kept session: %v", err)
		}
		if rt, err := s.refreshTokenByHash(ctx, db, "rt"); err != nil || !rt.Revoked {
			t.Fatalf("the refresh token: %+v %v", rt, err)
		}
		got, _ := s.userByID(ctx, db, u.ID)
		st, _ := s.lifecycle(ctx, db, u.ID)
		if got.PasswordHash != "h1" || st.MustChangePassword {
			t.Fatalf("after the change: hash %q, %+v", got.PasswordHash, st)
		}
		if err := s.clearTOTP(ctx, db, u.ID, now); err != nil {
			t.Fatal(err)
		}
		if st, _ := s.lifecycle(ctx, db, u.ID); st.TOTPSecret != "" || st.TOTPLastStep != 0 {
			t.Fatalf("after clearing the factor: %+v", st)
		}
		if err := s.prunePasswordResets(ctx, exp.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
	})
}
