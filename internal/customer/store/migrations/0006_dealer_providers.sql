-- The monitoring provider each dealer works with, learnt from the Dealer
-- Service's dealer.monitoring_provider_set events (a NULL provider clears
-- it), so that the names of the locations a provider's employees reach
-- are shown to them (GET /location-names).
CREATE TABLE customer_dealer_providers (
    dealer_id TEXT PRIMARY KEY,
    monitoring_provider_id TEXT
);
CREATE INDEX customer_dealer_providers_provider ON customer_dealer_providers (monitoring_provider_id);
