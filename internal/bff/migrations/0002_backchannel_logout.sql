-- OpenID Connect Back-Channel Logout. iam_sid is the IAM's session id (the
-- ID token's sid, which stays the same across refreshes), so that a logout
-- token naming one IAM session ends exactly the BFF sessions of that login;
-- sessions begun before this column existed are reached by their subject.
ALTER TABLE bff_sessions ADD COLUMN iam_sid TEXT NOT NULL DEFAULT '';
CREATE INDEX bff_sessions_iam_sid ON bff_sessions (iam_sid);

-- The logout tokens already taken, by the SHA-256 of issuer and jti, until
-- they expire: a replayed token is refused on every instance.
CREATE TABLE bff_logout_tokens (
    jti_hash TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX bff_logout_tokens_expires ON bff_logout_tokens (expires_at);
