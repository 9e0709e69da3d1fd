-- The provide strategy's resource facts. The decisive copy is on each
-- security_systems row (customer_id, dealer_id, monitoring_provider_id);
-- these two tables are what the events said about locations and dealers,
-- so a system created later, or a location moved to a dealer whose
-- provider was set earlier, gets the current facts.
CREATE TABLE provide_locations (
    location_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    -- '' when the location has no dealer.
    dealer_id TEXT NOT NULL
);

-- A row exists for every dealer an event named; '' when it uses no
-- monitoring provider (or none is known yet).
CREATE TABLE provide_dealers (
    dealer_id TEXT PRIMARY KEY,
    monitoring_provider_id TEXT NOT NULL
);

CREATE INDEX security_systems_dealer ON security_systems (dealer_id);
