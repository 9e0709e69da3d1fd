-- The locations a dealer services (POST /authz/locations:byDealers, for
-- the Security System Service's lists), read in id order.
CREATE INDEX customer_locations_dealer ON customer_locations (dealer_id, id);
