-- The authorization sync's memory of what it wrote to OpenFGA, where an
-- event alone does not say which tuples to delete. Role sets need no
-- memory: a "set" event writes the roles held and deletes the other
-- SECURITY_SYSTEM_* roles. Everything here can be truncated and rebuilt by
-- replaying the streams.

-- One row per employee of any organization (employee ids are unique per
-- owning service, hence the kind in the key).
CREATE TABLE authzsync_employees (
    org_kind TEXT NOT NULL,
    employee_id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (org_kind, employee_id)
);
CREATE INDEX authzsync_employees_user ON authzsync_employees (user_id);

-- The one on_duty tuple per user: which employment wrote it and the
-- schedule (canonical JSON, NULL when unrestricted) its condition carries.
CREATE TABLE authzsync_on_duty (
    user_id TEXT PRIMARY KEY,
    org_kind TEXT NOT NULL,
    employee_id TEXT NOT NULL,
    schedule TEXT
);

-- Team memberships, so removing an employee removes them.
CREATE TABLE authzsync_team_members (
    team_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX authzsync_team_members_user ON authzsync_team_members (customer_id, user_id);

-- Locations where an employee holds direct roles, so removing the employee
-- revokes them.
CREATE TABLE authzsync_location_roles (
    location_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    PRIMARY KEY (location_id, user_id)
);
CREATE INDEX authzsync_location_roles_user ON authzsync_location_roles (customer_id, user_id);

-- The dealer written for each location and the provider for each dealer,
-- so a change deletes the old tuple even if the event's "previous" field
-- disagrees with what was written.
CREATE TABLE authzsync_locations (
    location_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    dealer_id TEXT
);
CREATE TABLE authzsync_dealers (
    dealer_id TEXT PRIMARY KEY,
    monitoring_provider_id TEXT
);

-- When the newest applied event of each stream occurred: the sync lag
-- survives a restart.
CREATE TABLE authzsync_streams (
    stream TEXT PRIMARY KEY,
    last_event_at BIGINT NOT NULL,
    applied_at BIGINT NOT NULL
);
