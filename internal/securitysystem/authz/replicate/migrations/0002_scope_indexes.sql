-- A list's view reaches the locations a dealer services and the dealers a
-- monitoring provider watches (replicate.Authorizer.Scope): both are
-- lookups by the relation's target, indexed here.
CREATE INDEX replica_locations_dealer ON replica_locations (dealer_id);
CREATE INDEX replica_dealers_provider ON replica_dealers (monitoring_provider_id);
