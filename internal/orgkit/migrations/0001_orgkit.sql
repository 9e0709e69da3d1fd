-- Organizations of one kind (each service has its own database, so the
-- table is not qualified by kind). status is pending while the first
-- administrator's IAM account is being created, then active.
CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- email is stored lower-cased: it is the IAM username. user_id is the IAM
-- sub, chosen here before the account exists so a retry reuses it.
CREATE TABLE employees (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations (id),
    user_id TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- One live (pending or active) employee per e-mail address: a user works for
-- at most one organization, and the address is the account's username.
CREATE UNIQUE INDEX employees_live_email ON employees (lower(email)) WHERE status <> 'removed';

CREATE INDEX employees_org ON employees (org_id, status);

CREATE TABLE employee_roles (
    employee_id TEXT NOT NULL REFERENCES employees (id),
    role TEXT NOT NULL,
    PRIMARY KEY (employee_id, role)
);

-- schedule is the JSON of policy.Schedule; no row means unrestricted.
CREATE TABLE employee_schedules (
    employee_id TEXT PRIMARY KEY REFERENCES employees (id),
    schedule TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
