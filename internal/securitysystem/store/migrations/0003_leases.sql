-- Who runs against this database: one row per running instance of the
-- service (kind 'service') and one per replica or store rebuild (kind
-- 'rebuild'), each renewed every second and expiring a few seconds after
-- its process dies. A rebuild refuses to start while a service row is
-- live (it would delete the running consumers' durables), a service while
-- a rebuild row is.
CREATE TABLE securitysystem_leases (
    holder TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    renewed_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
