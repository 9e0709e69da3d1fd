package iam

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// Migrations is the IAM Service's schema, applied by New. It is exported so
// that tests of other packages can build an IAM database without a Service.
var Migrations = sqldb.Migrations{Set: "iam", FS: migrationsFS, Dir: "migrations"}

// errNotFound is returned by the store when a row does not exist; callers
// turn it into the error their protocol needs.
var errNotFound = errors.New("not found")

// user is an IAM account.
type user struct {
	ID              string
	Username        string
	PasswordHash    string
	Roles           []string
	Enabled         bool
	CreatedByClient string
	CreatedAt       time.Time
}

// store is the SQL persistence of the IAM Service.
type store struct {
	db *sqldb.DB
	// sealer seals the instance secrets (iam_secrets) as it seals the
	// signing keys (secrets.go); nil stores them plaintext.
	sealer *keySealer
}

func usernameKey(username string) string { return strings.ToLower(username) }

func encodeList(v []string) string {
	if v == nil {
		v = []string{}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func decodeList(s string) []string {
	var out []string
	_ = json.Unmarshal([]byte(s), &out)
	if out == nil {
		out = []string{}
	}
	return out
}

const userColumns = `id, username, password_hash, roles, enabled, created_by_client, created_at`

func scanUser(row interface{ Scan(...any) error }) (*user, error) {
	var u user
	var roles string
	var enabled, created int64
	if err := row.Scan(&u.ID, &u.Username, &u.PasswordHash, &roles, &enabled, &u.CreatedByClient, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, errNotFound
		}
		return nil, err
	}
	u.Roles = decodeList(roles)
	u.Enabled = enabled == 1
	u.CreatedAt = sqldb.FromMicros(created)
	return &u, nil
}

func (s *store) userByID(ctx context.Context, q sqldb.Querier, id string) (*user, error) {
	return scanUser(q.QueryRowContext(ctx, `SELECT `+userColumns+` FROM iam_users WHERE id = ?`, id))
}

func (s *store) userByUsername(ctx context.Context, q sqldb.Querier, username string) (*user, error) {
	return scanUser(q.QueryRowContext(ctx, `SELECT `+userColumns+` FROM iam_users WHERE username_key = ?`, usernameKey(username)))
}

func (s *store) insertUser(ctx context.Context, q sqldb.Querier, u *user, now time.Time) error {
	_, err := q.ExecContext(ctx, `INSERT INTO iam_users (id, username, username_key, password_hash, roles, enabled, created_by_client, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Username, usernameKey(u.Username), u.PasswordHash, encodeList(u.Roles), sqldb.Bool(u.Enabled), u.CreatedByClient, sqldb.Micros(now), sqldb.Micros(now))
	if sqldb.IsUniqueViolation(err) {
		return apperr.Wrap(err, apperr.Conflict, "a user with this id or username already exists")
	}
	return err
}

// updateCredentials replaces a user's password and roles and revokes the
// user's refresh tokens: whoever held the old credentials must not keep a
// session made with them (an organization service resets the account when
// it re-hires someone).
func (s *store) updateCredentials(ctx context.Context, q sqldb.Querier, id, passwordHash string, roles []string, now time.Time) error {
	if _, err := q.ExecContext(ctx, `UPDATE iam_users SET password_hash = ?, roles = ?, updated_at = ? WHERE id = ?`,
		passwordHash, encodeList(roles), sqldb.Micros(now), id); err != nil {
		return err
	}
	_, err := q.ExecContext(ctx, `UPDATE iam_refresh_tokens SET revoked = 1 WHERE user_id = ?`, id)
	return err
}

func (s *store) setRoles(ctx context.Context, id string, roles []string, now time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE iam_users SET roles = ?, updated_at = ? WHERE id = ?`, encodeList(roles), sqldb.Micros(now), id)
	return affectedOne(res, err)
}

// setEnabled enables or disables a user. Disabling also revokes every
// refresh token of the user, so that enabling the account again (a
// re-hire) does not bring the old sessions back.
func (s *store) setEnabled(ctx context.Context, id string, enabled bool, now time.Time) error {
	return s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE iam_users SET enabled = ?, updated_at = ? WHERE id = ?`, sqldb.Bool(enabled), sqldb.Micros(now), id)
		if err := affectedOne(res, err); err != nil {
			return err
		}
		if enabled {
			return nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE iam_refresh_tokens SET revoked = 1 WHERE user_id = ?`, id)
		return err
	})
}

func affectedOne(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return errNotFound
	}
	return nil
}

// authRequest is a stored authorization request. It implements
// op.AuthRequest, and op.IDTokenRequest for the ID token of the code
// exchange.
type authRequest struct {
	ID                  string
	ClientID            string
	RedirectURI         string
	State               string
	Nonce               string
	Scopes              []string
	ResponseType        oidc.ResponseType
	ResponseMode        oidc.ResponseMode
	CodeChallenge       string
	CodeChallengeMethod oidc.CodeChallengeMethod
	UserID              string
	AuthTime            time.Time
	IsDone              bool
	CodeCreatedAt       time.Time
	CodeUsed            bool
	FamilyID            string
	CreatedAt           time.Time
	ExpiresAt           time.Time
	// Prompt and MaxAge are the request's prompt values and max_age
	// (negative when absent), which decide whether the browser session
	// may answer it without the login form.
	Prompt []string
	MaxAge int64
	// AMR is the authentication methods the login used (RFC 8176), set
	// when the login completes.
	AMR []string
}

func (a *authRequest) GetID() string         { return a.ID }
func (a *authRequest) GetACR() string        { return "" }
func (a *authRequest) GetAMR() []string      { return a.AMR }
func (a *authRequest) GetAudience() []string { return []string{a.ClientID} }
func (a *authRequest) GetAuthTime() time.Time {
	return a.AuthTime
}
func (a *authRequest) GetClientID() string { return a.ClientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.CodeChallenge, Method: a.CodeChallengeMethod}
}
func (a *authRequest) GetNonce() string                   { return a.Nonce }
func (a *authRequest) GetRedirectURI() string             { return a.RedirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType { return a.ResponseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return a.ResponseMode }
func (a *authRequest) GetScopes() []string                { return a.Scopes }
func (a *authRequest) GetState() string                   { return a.State }
func (a *authRequest) GetSubject() string                 { return a.UserID }

// sessionID is the ID token's sid: the refresh family of the code's
// tokens, empty without refresh tokens.
func (a *authRequest) sessionID() string { return a.FamilyID }
func (a *authRequest) Done() bool        { return a.IsDone }

const authRequestColumns = `id, client_id, redirect_uri, state, nonce, scopes, response_type, response_mode,
	code_challenge, code_challenge_method, user_id, auth_time, done, code_created_at, code_used, family_id, created_at, expires_at, prompt, max_age, amr`

func scanAuthRequest(row interface{ Scan(...any) error }) (*authRequest, error) {
	var a authRequest
	var scopes, rt, rm, ccm, prompt, amr string
	var authTime, done, codeCreated, codeUsed, created, expires int64
	err := row.Scan(&a.ID, &a.ClientID, &a.RedirectURI, &a.State, &a.Nonce, &scopes, &rt, &rm,
		&a.CodeChallenge, &ccm, &a.UserID, &authTime, &done, &codeCreated, &codeUsed, &a.FamilyID, &created, &expires, &prompt, &a.MaxAge, &amr)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, errNotFound
		}
		return nil, err
	}
	a.Scopes = decodeList(scopes)
	a.Prompt = strings.Fields(prompt)
	a.AMR = decodeAMR(amr)
	a.ResponseType = oidc.ResponseType(rt)
	a.ResponseMode = oidc.ResponseMode(rm)
	a.CodeChallengeMethod = oidc.CodeChallengeMethod(ccm)
	if authTime != 0 {
		a.AuthTime = sqldb.FromMicros(authTime)
	}
	a.IsDone = done == 1
	if codeCreated != 0 {
		a.CodeCreatedAt = sqldb.FromMicros(codeCreated)
	}
	a.CodeUsed = codeUsed == 1
	a.CreatedAt = sqldb.FromMicros(created)
	a.ExpiresAt = sqldb.FromMicros(expires)
	return &a, nil
}

func (s *store) insertAuthRequest(ctx context.Context, a *authRequest) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO iam_auth_requests (id, client_id, redirect_uri, state, nonce, scopes, response_type, response_mode,
		code_challenge, code_challenge_method, user_id, auth_time, done, code_hash, code_created_at, code_used, family_id, created_at, expires_at, prompt, max_age)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', 0, 0, NULL, 0, 0, '', ?, ?, ?, ?)`,
		a.ID, a.ClientID, a.RedirectURI, a.State, a.Nonce, encodeList(a.Scopes), string(a.ResponseType), string(a.ResponseMode),
		a.CodeChallenge, string(a.CodeChallengeMethod), sqldb.Micros(a.CreatedAt), sqldb.Micros(a.ExpiresAt), strings.Join(a.Prompt, " "), a.MaxAge)
	return err
}

func (s *store) authRequestByID(ctx context.Context, id string) (*authRequest, error) {
	return scanAuthRequest(s.db.QueryRowContext(ctx, `SELECT `+authRequestColumns+` FROM iam_auth_requests WHERE id = ?`, id))
}

func (s *store) authRequestByCodeHash(ctx context.Context, q sqldb.Querier, codeHash string) (*authRequest, error) {
	return scanAuthRequest(q.QueryRowContext(ctx, `SELECT `+authRequestColumns+` FROM iam_auth_requests WHERE code_hash = ?`, codeHash))
}

// completeLogin records the authenticated user on a pending request, who
// proved the password at authTime with the methods amr; a request already
// completed or expired is not changed.
func (s *store) completeLogin(ctx context.Context, id, userID string, authTime time.Time, amr []string, now time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE iam_auth_requests SET user_id = ?, auth_time = ?, amr = ?, done = 1
		WHERE id = ? AND done = 0 AND expires_at > ?`, userID, sqldb.Micros(authTime), encodeAMR(amr), id, sqldb.Micros(now))
	return affectedOne(res, err)
}

// encodeAMR stores amr values space separated: RFC 8176 values are
// tokens without spaces. No methods store as pwd alone, the one method
// every login uses, so that a row never claims a factor by omission.
func encodeAMR(amr []string) string {
	if len(amr) == 0 {
		return amrPassword
	}
	return strings.Join(amr, " ")
}

// decodeAMR reads stored amr values. An empty column (which no login
// writes) reads as pwd alone, the one method every login uses, so that a
// damaged row never claims a second factor.
func decodeAMR(s string) []string {
	if amr := strings.Fields(s); len(amr) > 0 {
		return amr
	}
	return []string{amrPassword}
}

// browserSession is one IAM login in a browser (single sign-on).
type browserSession struct {
	UserID     string
	AuthTime   time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
	// AMR is the authentication methods of the login that made the
	// session; a request the session answers gets these, never more.
	AMR []string
}

func (s *store) insertBrowserSession(ctx context.Context, idHash string, b browserSession) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO iam_browser_sessions (id_hash, user_id, auth_time, last_seen_at, expires_at, amr) VALUES (?, ?, ?, ?, ?, ?)`,
		idHash, b.UserID, sqldb.Micros(b.AuthTime), sqldb.Micros(b.LastSeenAt), sqldb.Micros(b.ExpiresAt), encodeAMR(b.AMR))
	return err
}

func (s *store) browserSession(ctx context.Context, idHash string) (*browserSession, error) {
	var b browserSession
	var at, seen, exp int64
	var amr string
	err := s.db.QueryRowContext(ctx, `SELECT user_id, auth_time, last_seen_at, expires_at, amr FROM iam_browser_sessions WHERE id_hash = ?`, idHash).
		Scan(&b.UserID, &at, &seen, &exp, &amr)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, err
	}
	b.AuthTime, b.LastSeenAt, b.ExpiresAt = sqldb.FromMicros(at), sqldb.FromMicros(seen), sqldb.FromMicros(exp)
	b.AMR = decodeAMR(amr)
	return &b, nil
}

func (s *store) touchBrowserSession(ctx context.Context, idHash string, now time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE iam_browser_sessions SET last_seen_at = ? WHERE id_hash = ?`, sqldb.Micros(now), idHash)
	return err
}

func (s *store) deleteBrowserSession(ctx context.Context, idHash string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM iam_browser_sessions WHERE id_hash = ?`, idHash)
	return err
}

// saveCode attaches the (hashed) authorization code to a completed request.
// A request gets at most one code, so a replayed callback cannot mint a
// second one.
func (s *store) saveCode(ctx context.Context, id, codeHash string, now time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE iam_auth_requests SET code_hash = ?, code_created_at = ?
		WHERE id = ? AND done = 1 AND code_hash IS NULL`, codeHash, sqldb.Micros(now), id)
	return affectedOne(res, err)
}

// consumeCode marks the code of request id used and records the refresh
// family its tokens belong to. It reports false when the code was already
// used, which the caller treats as a replay.
func (s *store) consumeCode(ctx context.Context, q sqldb.Querier, id, familyID string) (bool, error) {
	res, err := q.ExecContext(ctx, `UPDATE iam_auth_requests SET code_used = 1, family_id = ? WHERE id = ? AND code_used = 0`, familyID, id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (s *store) deleteAuthRequest(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM iam_auth_requests WHERE id = ?`, id)
	return err
}

// refreshToken is a stored refresh token (its hash, never the token).
type refreshToken struct {
	Hash     string
	ID       string
	FamilyID string
	ClientID string
	UserID   string
	Scopes   []string
	AuthTime time.Time
	// AMR is the authentication methods of the login the family started
	// from, repeated in every refreshed ID token.
	AMR       []string
	CreatedAt time.Time
	ExpiresAt time.Time
	// FamilyCreatedAt is when the family's first token was issued (the
	// code exchange); the whole family ends RefreshFamilyLifetime later.
	FamilyCreatedAt time.Time
	Used            bool
	// UsedAt is when the token was rotated (zero while it is not), which
	// starts its reuse grace window.
	UsedAt  time.Time
	Revoked bool
}

func (s *store) insertRefreshToken(ctx context.Context, q sqldb.Querier, t *refreshToken) error {
	_, err := q.ExecContext(ctx, `INSERT INTO iam_refresh_tokens (token_hash, id, family_id, client_id, user_id, scopes, auth_time, created_at, expires_at, family_created_at, used_at, revoked, amr)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?)`,
		t.Hash, t.ID, t.FamilyID, t.ClientID, t.UserID, encodeList(t.Scopes), sqldb.Micros(t.AuthTime), sqldb.Micros(t.CreatedAt), sqldb.Micros(t.ExpiresAt), sqldb.Micros(t.FamilyCreatedAt),
		encodeAMR(t.AMR))
	return err
}

func (s *store) refreshTokenByHash(ctx context.Context, q sqldb.Querier, hash string) (*refreshToken, error) {
	var t refreshToken
	var scopes, amr string
	var authTime, created, expires, familyCreated, used, revoked int64
	err := q.QueryRowContext(ctx, `SELECT token_hash, id, family_id, client_id, user_id, scopes, auth_time, created_at, expires_at, family_created_at, used_at, revoked, amr
		FROM iam_refresh_tokens WHERE token_hash = ?`, hash).
		Scan(&t.Hash, &t.ID, &t.FamilyID, &t.ClientID, &t.UserID, &scopes, &authTime, &created, &expires, &familyCreated, &used, &revoked, &amr)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, errNotFound
		}
		return nil, err
	}
	t.Scopes = decodeList(scopes)
	t.AuthTime = sqldb.FromMicros(authTime)
	t.AMR = decodeAMR(amr)
	t.CreatedAt = sqldb.FromMicros(created)
	t.ExpiresAt = sqldb.FromMicros(expires)
	t.FamilyCreatedAt = sqldb.FromMicros(familyCreated)
	t.Used = used != 0
	if t.Used {
		t.UsedAt = sqldb.FromMicros(used)
	}
	t.Revoked = revoked != 0
	return &t, nil
}

// markRefreshUsed marks a live token rotated; false means another request
// rotated or revoked it first.
func (s *store) markRefreshUsed(ctx context.Context, q sqldb.Querier, hash string, now time.Time) (bool, error) {
	res, err := q.ExecContext(ctx, `UPDATE iam_refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at = 0 AND revoked = 0`, sqldb.Micros(now), hash)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// revokeFamily revokes every refresh token of a family, the response to a
// replayed refresh token or code.
func (s *store) revokeFamily(ctx context.Context, q sqldb.Querier, familyID string) error {
	if familyID == "" {
		return nil
	}
	_, err := q.ExecContext(ctx, `UPDATE iam_refresh_tokens SET revoked = 1 WHERE family_id = ?`, familyID)
	return err
}

// revokeSession revokes one session: the refresh family familyID, when it
// belongs to userID at clientID.
func (s *store) revokeSession(ctx context.Context, familyID, userID, clientID string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE iam_refresh_tokens SET revoked = 1 WHERE family_id = ? AND user_id = ? AND client_id = ?`, familyID, userID, clientID)
	return err
}

// revokeUserClient revokes every refresh token a user holds at a client,
// which is what logging out at that client means.
func (s *store) revokeUserClient(ctx context.Context, userID, clientID string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE iam_refresh_tokens SET revoked = 1 WHERE user_id = ? AND client_id = ?`, userID, clientID)
	return err
}

// prune deletes what can no longer be used: expired authorization requests
// and refresh tokens.
func (s *store) prune(ctx context.Context, now time.Time) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM iam_auth_requests WHERE expires_at < ?`, sqldb.Micros(now)); err != nil {
		return fmt.Errorf("prune auth requests: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM iam_refresh_tokens WHERE expires_at < ?`, sqldb.Micros(now)); err != nil {
		return fmt.Errorf("prune refresh tokens: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM iam_browser_sessions WHERE expires_at < ?`, sqldb.Micros(now)); err != nil {
		return fmt.Errorf("prune browser sessions: %w", err)
	}
	return nil
}

// storedKey is a signing key row.
type storedKey struct {
	ID          string
	PrivatePEM  string
	CreatedAt   time.Time
	ActivatesAt time.Time
}

func (s *store) keys(ctx context.Context) ([]storedKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, private_pem, created_at, activates_at FROM iam_signing_keys ORDER BY activates_at, created_at`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storedKey
	for rows.Next() {
		var k storedKey
		var c, a int64
		if err := rows.Scan(&k.ID, &k.PrivatePEM, &c, &a); err != nil {
			return nil, err
		}
		k.CreatedAt, k.ActivatesAt = sqldb.FromMicros(c), sqldb.FromMicros(a)
		out = append(out, k)
	}
	return out, rows.Err()
}

// replaceKey replaces the stored private key of id, if it still is old.
func (s *store) replaceKey(ctx context.Context, id, old, sealed string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE iam_signing_keys SET private_pem = ? WHERE id = ? AND private_pem = ?`, sealed, id, old)
	return err
}

func (s *store) insertKey(ctx context.Context, q sqldb.Querier, k storedKey) error {
	_, err := q.ExecContext(ctx, `INSERT INTO iam_signing_keys (id, private_pem, created_at, activates_at) VALUES (?, ?, ?, ?)`,
		k.ID, k.PrivatePEM, sqldb.Micros(k.CreatedAt), sqldb.Micros(k.ActivatesAt))
	return err
}

func (s *store) deleteKey(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM iam_signing_keys WHERE id = ?`, id)
	return err
}

// secret returns the named instance secret, creating it with gen on first
// use. Concurrent first starts agree because the insert is conditional.
func (s *store) secret(ctx context.Context, name string, gen func() string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM iam_secrets WHERE name = ?`, name).Scan(&v)
	if err == nil {
		return s.openSecret(name, v)
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	sealed, err := s.sealSecret(name, gen())
	if err != nil {
		return "", err
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO iam_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, sealed); err != nil {
		return "", err
	}
	if err = s.db.QueryRowContext(ctx, `SELECT value FROM iam_secrets WHERE name = ?`, name).Scan(&v); err != nil {
		return "", err
	}
	return s.openSecret(name, v)
}
