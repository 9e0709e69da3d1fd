-- The access review's role holders (GET /authz/organizations/{organizationId}/role-holders, RoleHolders):
-- an organization's active employees in e-mail then user id order, paged
-- by that key. The order is bytewise (COLLATE "C", BinaryOrder) so it is
-- the same on both stores, and the index must carry that collation to
-- give it. Without this index each page sorted every active employee of
-- the organization; with it a page reads its rows in order and stops.
CREATE INDEX employees_org_email ON employees (org_id, status, email COLLATE "C", user_id COLLATE "C");
