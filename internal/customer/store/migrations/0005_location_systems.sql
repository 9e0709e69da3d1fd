-- The security systems this service knows of, learnt from the Security
-- System Service's securitysystem.created events: a location that has one
-- cannot be deleted. No foreign key: the event may name a location this
-- service never had or already deleted.
CREATE TABLE customer_location_systems (
    system_id TEXT PRIMARY KEY,
    location_id TEXT NOT NULL
);
CREATE INDEX customer_location_systems_location ON customer_location_systems (location_id);
