-- Lists are keyset-paged queries over (name, id) within the caller's view
-- (API.md, "Lists"): one index per grant root the view is made of, each
-- ordered by (name, id) so a branch of the list query reads its page in
-- index order, and (name, id) itself for REALGUARDIO_ADMIN's everything.
-- The (location_id, name, id) index replaces the plain location index, of
-- which it is an extension.
DROP INDEX IF EXISTS security_systems_location;
CREATE INDEX security_systems_name ON security_systems (name, id);
CREATE INDEX security_systems_location_name ON security_systems (location_id, name, id);
CREATE INDEX security_systems_customer_name ON security_systems (customer_id, name, id);
CREATE INDEX security_systems_dealer_name ON security_systems (dealer_id, name, id);
CREATE INDEX security_systems_provider_name ON security_systems (monitoring_provider_id, name, id);
