-- Security systems and the audit of arm/disarm decisions.
CREATE TABLE security_systems (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    location_id TEXT NOT NULL,
    state TEXT NOT NULL,
    -- Resource facts kept on the record (the provide strategy decides on
    -- them); empty string when unknown or absent.
    customer_id TEXT NOT NULL,
    dealer_id TEXT NOT NULL,
    monitoring_provider_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX security_systems_location ON security_systems (location_id);

-- One row per arm or disarm decision, allowed, denied or unavailable.
-- ids are UUIDv7, so ordering by (at, id) is chronological.
CREATE TABLE securitysystem_audit (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    security_system_id TEXT NOT NULL,
    action TEXT NOT NULL,
    decision TEXT NOT NULL,
    reason TEXT NOT NULL,
    strategy TEXT NOT NULL
);
CREATE INDEX securitysystem_audit_system ON securitysystem_audit (security_system_id, at);
CREATE INDEX securitysystem_audit_at ON securitysystem_audit (at);
