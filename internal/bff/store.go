package bff

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"time"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations returns the BFF's schema (set "bff"): the session table every
// BFF instance shares.
func Migrations() sqldb.Migrations {
	return sqldb.Migrations{Set: "bff", FS: migrationFS, Dir: "migrations"}
}

// errSessionGone is the store's answer for a session that does not exist
// (never did, logged out, refused by the IAM, or expired and pruned).
var errSessionGone = errors.New("session not found")

// sessionRow is one row of bff_sessions.
type sessionRow struct {
	IDHash  string
	Subject string
	// IAMSID is the IAM's session id (the ID token's sid), which
	// back-channel logout names; empty when the IAM gave none.
	IAMSID       string
	Generation   int64
	Data         string // sealed sessionData
	AccessExpiry time.Time
	ExpiresAt    time.Time
	LeaseOwner   string
	LeaseUntil   time.Time
}

// sessionStore is the SQL repository of the sessions, on SQLite or
// PostgreSQL. Every method is one statement on its primary key (or, for
// pruning and back-channel logout, on an index), so its cost does not grow
// with the number of sessions.
type sessionStore struct {
	db *sqldb.DB
}

// hashID is how a session id is stored: whoever reads the database learns
// no id a cookie could name (and the cookie is sealed with keys the
// database does not hold anyway).
func hashID(id string) string {
	sum := sha256.Sum256([]byte("realguardio-bff-session:" + id))
	return hex.EncodeToString(sum[:])
}

func (st sessionStore) insert(ctx context.Context, r *sessionRow, now time.Time) error {
	_, err := st.db.ExecContext(ctx, `INSERT INTO bff_sessions (id_hash, subject, iam_sid, generation, data, access_expiry, expires_at, lease_owner, lease_until, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, '', 0, ?)`,
		r.IDHash, r.Subject, r.IAMSID, r.Generation, r.Data, sqldb.Micros(r.AccessExpiry), sqldb.Micros(r.ExpiresAt), sqldb.Micros(now))
	return err
}

// get returns the session row, or errSessionGone. A row past its absolute
// expiry is gone even before the pruner deletes it.
func (st sessionStore) get(ctx context.Context, idHash string, now time.Time) (*sessionRow, error) {
	var r sessionRow
	var access, expires, lease int64
	err := st.db.QueryRowContext(ctx, `SELECT id_hash, subject, generation, data, access_expiry, expires_at, lease_owner, lease_until
		FROM bff_sessions WHERE id_hash = ?`, idHash).
		Scan(&r.IDHash, &r.Subject, &r.Generation, &r.Data, &access, &expires, &r.LeaseOwner, &lease)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errSessionGone
	}
	if err != nil {
		return nil, err
	}
	r.AccessExpiry = sqldb.FromMicros(access)
	r.ExpiresAt = sqldb.FromMicros(expires)
	r.LeaseUntil = sqldb.FromMicros(lease)
	if !now.Before(r.ExpiresAt) {
		return nil, errSessionGone
	}
	return &r, nil
}

// tryLease takes the refresh lease of generation gen of the session for
// owner until until: it succeeds only when the session is still at that
// generation and nobody else holds a live lease. This compare-and-swap is
// what makes one refresh per session at a time across instances.
func (st sessionStore) tryLease(ctx context.Context, idHash string, gen int64, owner string, now, until time.Time) (bool, error) {
	res, err := st.db.ExecContext(ctx, `UPDATE bff_sessions SET lease_owner = ?, lease_until = ?
		WHERE id_hash = ? AND generation = ? AND lease_until < ?`,
		owner, sqldb.Micros(until), idHash, gen, sqldb.Micros(now))
	return oneRow(res, err)
}

// commitRefresh stores the refreshed session as generation gen+1 and ends
// the lease, provided owner still holds the lease of generation gen.
func (st sessionStore) commitRefresh(ctx context.Context, idHash string, gen int64, owner, data string, accessExpiry, now time.Time) (bool, error) {
	res, err := st.db.ExecContext(ctx, `UPDATE bff_sessions SET generation = generation + 1, data = ?, access_expiry = ?, lease_owner = '', lease_until = 0, updated_at = ?
		WHERE id_hash = ? AND generation = ? AND lease_owner = ?`,
		data, sqldb.Micros(accessExpiry), sqldb.Micros(now), idHash, gen, owner)
	return oneRow(res, err)
}

// releaseLease gives up owner's lease without changing the session, after
// a refresh the IAM could not answer, so the next request may try again.
func (st sessionStore) releaseLease(ctx context.Context, idHash, owner string) error {
	_, err := st.db.ExecContext(ctx, `UPDATE bff_sessions SET lease_owner = '', lease_until = 0 WHERE id_hash = ? AND lease_owner = ?`, idHash, owner)
	return err
}

// delete ends a session.
func (st sessionStore) delete(ctx context.Context, idHash string) error {
	_, err := st.db.ExecContext(ctx, `DELETE FROM bff_sessions WHERE id_hash = ?`, idHash)
	return err
}

// deleteSubject ends every session of a user and reports how many there
// were.
func (st sessionStore) deleteSubject(ctx context.Context, subject string) (int64, error) {
	res, err := st.db.ExecContext(ctx, `DELETE FROM bff_sessions WHERE subject = ?`, subject)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// prune deletes the sessions past their absolute expiry.
func (st sessionStore) prune(ctx context.Context, now time.Time) (int64, error) {
	res, err := st.db.ExecContext(ctx, `DELETE FROM bff_sessions WHERE expires_at < ?`, sqldb.Micros(now))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func oneRow(res sql.Result, err error) (bool, error) {
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
