-- One row per logged-in browser. The cookie names the row (by the session id,
-- stored here only as its SHA-256) and the generation it was written for;
-- every request checks both, so deleting the row (logout, a refused refresh,
-- back-channel logout) or bumping the generation (a refresh) makes every
-- earlier copy of the cookie worthless at once, on every BFF instance.
CREATE TABLE bff_sessions (
    id_hash TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    generation BIGINT NOT NULL,
    -- The tokens, CSRF token and display data, sealed (JWE dir/A256GCM) with
    -- the cookie keys: the database alone yields no token.
    data TEXT NOT NULL,
    access_expiry BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- The refresh lease: while lease_until is in the future, the instance
    -- lease_owner is refreshing this session and the others wait for it.
    lease_owner TEXT NOT NULL,
    lease_until BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX bff_sessions_expires ON bff_sessions (expires_at);
CREATE INDEX bff_sessions_subject ON bff_sessions (subject);
