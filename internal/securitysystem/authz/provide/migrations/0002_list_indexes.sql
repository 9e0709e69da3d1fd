-- security_systems (dealer_id, name, id) of the systems' own migrations
-- serves every lookup this index did.
DROP INDEX IF EXISTS security_systems_dealer;
