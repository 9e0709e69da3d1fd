package iam

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// lifecycleState is what the IAM knows of an account's lifecycle beyond
// its row in iam_users (migration 0004). An account without a row has the
// zero state: its own password, no second factor.
type lifecycleState struct {
	// MustChangePassword is set while the password is one someone else
	// chose; the next login must replace it before any code is issued.
	MustChangePassword bool
	// TOTPSecret is the sealed secret of the enrolled second factor, ""
	// when none.
	TOTPSecret string
	// TOTPPending is the sealed secret of an enrolment shown but not yet
	// confirmed with a code.
	TOTPPending string
	// TOTPLastStep is the RFC 6238 time step of the last code accepted.
	TOTPLastStep int64
}

func (s *store) lifecycle(ctx context.Context, q sqldb.Querier, userID string) (lifecycleState, error) {
	var st lifecycleState
	var must int64
	err := q.QueryRowContext(ctx, `SELECT must_change_password, totp_secret, totp_pending, totp_last_step FROM iam_user_lifecycle WHERE user_id = ?`, userID).
		Scan(&must, &st.TOTPSecret, &st.TOTPPending, &st.TOTPLastStep)
	if errors.Is(err, sql.ErrNoRows) {
		return lifecycleState{}, nil
	}
	st.MustChangePassword = must == 1
	return st, err
}

// ensureLifecycle creates the user's lifecycle row if it is missing, so
// that the updates below always find one.
func (s *store) ensureLifecycle(ctx context.Context, q sqldb.Querier, userID string, now time.Time) error {
	_, err := q.ExecContext(ctx, `INSERT INTO iam_user_lifecycle (user_id, must_change_password, totp_secret, totp_pending, totp_last_step, updated_at)
		VALUES (?, 0, '', '', 0, ?) ON CONFLICT (user_id) DO NOTHING`, userID, sqldb.Micros(now))
	return err
}

// setMustChangePassword records whether the user's next login must replace
// the password.
func (s *store) setMustChangePassword(ctx context.Context, q sqldb.Querier, userID string, must bool, now time.Time) error {
	if err := s.ensureLifecycle(ctx, q, userID, now); err != nil {
		return err
	}
	_, err := q.ExecContext(ctx, `UPDATE iam_user_lifecycle SET must_change_password = ?, updated_at = ? WHERE user_id = ?`, sqldb.Bool(must), sqldb.Micros(now), userID)
	return err
}

// setOwnPassword stores a password the user chose (a forced change, a
// change of their own, a reset code redeemed): the change requirement is
// cleared, and every refresh token and every browser session of the user
// ends except the browser session keepSession (its hash, "" for none), so
// whoever knew the old password keeps nothing made with it.
func (s *store) setOwnPassword(ctx context.Context, q sqldb.Querier, userID, hash, keepSession string, now time.Time) error {
	res, err := q.ExecContext(ctx, `UPDATE iam_users SET password_hash = ?, updated_at = ? WHERE id = ?`, hash, sqldb.Micros(now), userID)
	if err := affectedOne(res, err); err != nil {
		return err
	}
	if err := s.setMustChangePassword(ctx, q, userID, false, now); err != nil {
		return err
	}
	return s.endUserSessions(ctx, q, userID, keepSession)
}

// endUserSessions revokes every refresh token of the user and deletes the
// user's browser sessions but keepSession (a hash; "" keeps none).
func (s *store) endUserSessions(ctx context.Context, q sqldb.Querier, userID, keepSession string) error {
	if _, err := q.ExecContext(ctx, `UPDATE iam_refresh_tokens SET revoked = 1 WHERE user_id = ?`, userID); err != nil {
		return err
	}
	_, err := q.ExecContext(ctx, `DELETE FROM iam_browser_sessions WHERE user_id = ? AND id_hash <> ?`, userID, keepSession)
	return err
}

// setTOTPPending stores the sealed secret of an enrolment awaiting its
// confirmation, replacing an earlier unconfirmed one.
func (s *store) setTOTPPending(ctx context.Context, userID, sealed string, now time.Time) error {
	return s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if err := s.ensureLifecycle(ctx, tx, userID, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE iam_user_lifecycle SET totp_pending = ?, updated_at = ? WHERE user_id = ?`, sealed, sqldb.Micros(now), userID)
		return err
	})
}

// confirmTOTP makes the pending secret the user's factor, if it still is
// pending, and records step as used (the confirming code is spent too).
func (s *store) confirmTOTP(ctx context.Context, userID, pending string, step int64, now time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE iam_user_lifecycle SET totp_secret = totp_pending, totp_pending = '', totp_last_step = ?, updated_at = ?
		WHERE user_id = ? AND totp_pending = ? AND totp_pending <> ''`, step, sqldb.Micros(now), userID, pending)
	return affectedOne(res, err)
}

// acceptTOTPStep records step as the last code used, only if it is later
// than the last one; false means the code (or an earlier one) was already
// used: a replay. The conditional update makes two concurrent uses of one
// code accept at most one.
func (s *store) acceptTOTPStep(ctx context.Context, userID string, step int64, now time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE iam_user_lifecycle SET totp_last_step = ?, updated_at = ? WHERE user_id = ? AND totp_last_step < ? AND totp_secret <> ''`,
		step, sqldb.Micros(now), userID, step)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// clearTOTP removes the user's second factor, enrolled or pending.
func (s *store) clearTOTP(ctx context.Context, q sqldb.Querier, userID string, now time.Time) error {
	_, err := q.ExecContext(ctx, `UPDATE iam_user_lifecycle SET totp_secret = '', totp_pending = '', totp_last_step = 0, updated_at = ? WHERE user_id = ?`, sqldb.Micros(now), userID)
	return err
}

// insertPasswordReset stores a new reset code (its hash) for the user and
// invalidates the user's earlier codes: only the latest code works.
func (s *store) insertPasswordReset(ctx context.Context, codeHash, userID, issuedBy string, now, expires time.Time) error {
	return s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE iam_password_resets SET used = 1 WHERE user_id = ?`, userID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO iam_password_resets (code_hash, user_id, issued_by, created_at, expires_at, used) VALUES (?, ?, ?, ?, ?, 0)`,
			codeHash, userID, issuedBy, sqldb.Micros(now), sqldb.Micros(expires))
		return err
	})
}

// consumePasswordReset marks the code used and returns its user, if the
// code is unused and unexpired at now; otherwise errNotFound. Marking and
// reading happen in q's transaction, so a code redeems once.
func (s *store) consumePasswordReset(ctx context.Context, q sqldb.Querier, codeHash string, now time.Time) (string, error) {
	res, err := q.ExecContext(ctx, `UPDATE iam_password_resets SET used = 1 WHERE code_hash = ? AND used = 0 AND expires_at > ?`, codeHash, sqldb.Micros(now))
	if err := affectedOne(res, err); err != nil {
		return "", err
	}
	var userID string
	err = q.QueryRowContext(ctx, `SELECT user_id FROM iam_password_resets WHERE code_hash = ?`, codeHash).Scan(&userID)
	return userID, err
}

// prunePasswordResets deletes reset codes past their expiry.
func (s *store) prunePasswordResets(ctx context.Context, now time.Time) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM iam_password_resets WHERE expires_at < ?`, sqldb.Micros(now))
	return err
}
