-- The locations where each team holds roles, so deleting a team or a
-- location deletes the roles' tuples even when the events that emptied
-- the sets were missed (customer.team_deleted, customer.location_deleted).
-- A role set needs no memory otherwise: its event carries the whole set.
-- Filled from the events applied from now on; a rebuild fills it whole.
CREATE TABLE authzsync_team_roles (
    location_id TEXT NOT NULL,
    team_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    PRIMARY KEY (location_id, team_id)
);
CREATE INDEX authzsync_team_roles_team ON authzsync_team_roles (team_id);
