-- The user lifecycle beside the account row, so that iam_users keeps its
-- shape: must_change_password is set when someone else chose the password
-- (a generated one, or one an administrator gave); totp_secret is the
-- sealed RFC 6238 secret of an enrolled second factor ('' when none),
-- totp_pending the sealed secret shown for an enrolment not yet confirmed,
-- and totp_last_step the time step of the last code accepted, so that a
-- code is never accepted twice.
CREATE TABLE iam_user_lifecycle (
    user_id TEXT PRIMARY KEY,
    must_change_password INTEGER NOT NULL,
    totp_secret TEXT NOT NULL,
    totp_pending TEXT NOT NULL,
    totp_last_step BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- One-time password reset codes an administrator issues: only the SHA-256
-- of the code is stored; a code is used once, before expires_at.
CREATE TABLE iam_password_resets (
    code_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    issued_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used INTEGER NOT NULL
);
CREATE INDEX iam_password_resets_user ON iam_password_resets (user_id);
