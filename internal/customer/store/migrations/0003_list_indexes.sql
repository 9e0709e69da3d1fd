-- Indexes of the paged lists (API.md, "Lists"): locations and teams of a
-- customer by name then id, read as an index range after the cursor's key.
-- They replace the (customer_id, name) indexes, which lacked the id the
-- order ends with (SQLite indexes carry the rowid, not the TEXT id).
CREATE INDEX customer_locations_customer_name ON customer_locations (customer_id, name, id);
DROP INDEX customer_locations_customer;
CREATE INDEX customer_teams_customer_name ON customer_teams (customer_id, name, id);
DROP INDEX customer_teams_customer;
