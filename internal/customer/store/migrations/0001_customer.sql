-- The dealers this service knows of, learnt from the Dealer Service's
-- dealer.created events (never read from the dealer's database). A location
-- may only name a dealer listed here.
CREATE TABLE customer_dealers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    recorded_at BIGINT NOT NULL
);

-- A location belongs to one customer (orgkit's organizations); dealer_id is
-- NULL when no dealer services it.
CREATE TABLE customer_locations (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    name TEXT NOT NULL,
    dealer_id TEXT REFERENCES customer_dealers (id),
    created_at BIGINT NOT NULL
);
CREATE INDEX customer_locations_customer ON customer_locations (customer_id, name);

CREATE TABLE customer_teams (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX customer_teams_customer ON customer_teams (customer_id, name);

-- employee_id names an orgkit employee of the same customer; the use cases
-- check that, so there is no foreign key into the kit's schema. user_id (the
-- employee's immutable IAM sub) is kept beside it so that revocations can
-- still name the user after the kit has removed the employee.
CREATE TABLE customer_team_members (
    team_id TEXT NOT NULL REFERENCES customer_teams (id),
    employee_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    PRIMARY KEY (team_id, employee_id)
);
CREATE INDEX customer_team_members_employee ON customer_team_members (employee_id);

-- One row per role an employee holds directly at a location.
CREATE TABLE customer_location_employee_roles (
    location_id TEXT NOT NULL REFERENCES customer_locations (id),
    employee_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    PRIMARY KEY (location_id, employee_id, role)
);
CREATE INDEX customer_location_employee_roles_employee ON customer_location_employee_roles (employee_id);
CREATE INDEX customer_location_employee_roles_customer ON customer_location_employee_roles (customer_id);

-- One row per role a team holds at a location.
CREATE TABLE customer_location_team_roles (
    location_id TEXT NOT NULL REFERENCES customer_locations (id),
    team_id TEXT NOT NULL REFERENCES customer_teams (id),
    role TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    PRIMARY KEY (location_id, team_id, role)
);
CREATE INDEX customer_location_team_roles_team ON customer_location_team_roles (team_id);
CREATE INDEX customer_location_team_roles_customer ON customer_location_team_roles (customer_id);

-- A customer employee's own profile, keyed by the IAM sub it is looked up
-- by. No row means the employee has not edited it yet.
CREATE TABLE customer_profiles (
    user_id TEXT PRIMARY KEY,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    phone_number TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
