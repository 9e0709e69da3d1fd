-- Users: id is the immutable sub of every token; username_key is the
-- lower-cased username so uniqueness is case-insensitive on both engines.
CREATE TABLE iam_users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    username_key TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    created_by_client TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Authorization requests live from /authorize until the code is exchanged
-- (and a little longer, so that a replayed code is recognised).
CREATE TABLE iam_auth_requests (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    state TEXT NOT NULL,
    nonce TEXT NOT NULL,
    scopes TEXT NOT NULL,
    response_type TEXT NOT NULL,
    response_mode TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    code_challenge_method TEXT NOT NULL,
    user_id TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    done INTEGER NOT NULL,
    code_hash TEXT UNIQUE,
    code_created_at BIGINT NOT NULL,
    code_used INTEGER NOT NULL,
    family_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Refresh tokens: only the SHA-256 of the opaque token is stored. Every
-- rotation adds a row to the same family; used_at marks a rotated token so
-- that presenting it again revokes the family.
CREATE TABLE iam_refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    family_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT NOT NULL,
    revoked INTEGER NOT NULL
);
CREATE INDEX iam_refresh_tokens_family ON iam_refresh_tokens (family_id);
CREATE INDEX iam_refresh_tokens_user ON iam_refresh_tokens (user_id, client_id);

-- Signing keys: a key is published from created_at, signs from
-- activates_at until a newer key activates, and is dropped once every token
-- it signed has expired.
CREATE TABLE iam_signing_keys (
    id TEXT PRIMARY KEY,
    private_pem TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    activates_at BIGINT NOT NULL
);

-- Instance-wide secrets (the CSRF key), shared by every instance of the
-- service through the database.
CREATE TABLE iam_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
