-- The access review's role holders (GET /authz/organizations/{organizationId}/role-holders, RoleHolders):
-- an organization's active employees in e-mail then user id order, paged
-- by that key. Without this index each page sorted every active employee
-- of the organization; with it a page reads its rows in order and stops.
CREATE INDEX employees_org_email ON employees (org_id, status, email, user_id);
