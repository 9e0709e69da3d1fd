-- The replica of the facts of the security system rule, fed by the
-- organization services' events. Every table can be truncated and rebuilt
-- by replaying the streams (RebuildReplica).

-- One row per employee of any organization; roles are the organization
-- roles (JSON array), schedule the employee's schedule (JSON, NULL when
-- unrestricted).
CREATE TABLE replica_employees (
    employee_id TEXT PRIMARY KEY,
    org_kind TEXT NOT NULL,
    org_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    roles TEXT NOT NULL,
    schedule TEXT
);
CREATE INDEX replica_employees_user ON replica_employees (user_id);

CREATE TABLE replica_locations (
    location_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    dealer_id TEXT
);

-- Location roles held directly by customer employees; a row exists only
-- while the set is not empty.
CREATE TABLE replica_location_roles (
    location_id TEXT NOT NULL,
    employee_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    roles TEXT NOT NULL,
    PRIMARY KEY (location_id, employee_id)
);
CREATE INDEX replica_location_roles_user ON replica_location_roles (user_id);
CREATE INDEX replica_location_roles_employee ON replica_location_roles (employee_id);

CREATE TABLE replica_team_members (
    team_id TEXT NOT NULL,
    employee_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (team_id, employee_id)
);
CREATE INDEX replica_team_members_user ON replica_team_members (user_id);
CREATE INDEX replica_team_members_employee ON replica_team_members (employee_id);

CREATE TABLE replica_team_roles (
    location_id TEXT NOT NULL,
    team_id TEXT NOT NULL,
    roles TEXT NOT NULL,
    PRIMARY KEY (location_id, team_id)
);
CREATE INDEX replica_team_roles_team ON replica_team_roles (team_id);

CREATE TABLE replica_dealers (
    dealer_id TEXT PRIMARY KEY,
    monitoring_provider_id TEXT
);

-- Progress per source stream: the occurrence time of the newest applied
-- event, for the lag gauge and /readyz.
CREATE TABLE replica_streams (
    stream TEXT PRIMARY KEY,
    last_event_at BIGINT NOT NULL,
    applied_at BIGINT NOT NULL,
    applied_events BIGINT NOT NULL
);
