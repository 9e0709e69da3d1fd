-- The IAM's browser sessions (single sign-on): one row per login in a
-- browser, found by the hash of its cookie. auth_time is when the user
-- last proved the password; last_seen_at drives the idle timeout.
CREATE TABLE iam_browser_sessions (
    id_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX iam_browser_sessions_user ON iam_browser_sessions (user_id);
-- What an authorization request asked of the session: prompt (space
-- separated) and max_age in seconds (-1 when absent).
ALTER TABLE iam_auth_requests ADD COLUMN prompt TEXT NOT NULL DEFAULT '';
ALTER TABLE iam_auth_requests ADD COLUMN max_age BIGINT NOT NULL DEFAULT -1;
