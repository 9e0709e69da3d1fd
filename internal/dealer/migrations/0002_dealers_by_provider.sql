-- The dealers using a monitoring provider (POST
-- /authz/dealers:byMonitoringProviders), read in dealer id order.
CREATE INDEX dealer_monitoring_providers_provider ON dealer_monitoring_providers (monitoring_provider_id, dealer_id);
