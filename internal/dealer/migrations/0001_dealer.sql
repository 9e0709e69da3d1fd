-- The monitoring provider a dealer uses (at most one); no row means none.
CREATE TABLE dealer_monitoring_providers (
    dealer_id TEXT PRIMARY KEY REFERENCES organizations (id),
    monitoring_provider_id TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The monitoring providers this service has learnt of from the Monitoring
-- Provider Service's monitoring.provider_created events; a dealer may only
-- name one of them.
CREATE TABLE monitoring_provider_replica (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
