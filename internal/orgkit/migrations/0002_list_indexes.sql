-- Indexes of the paged lists (API.md, "Lists"): each list reads an index
-- range in its order, starting after the cursor's key, so a page costs the
-- page and not the table. The organizations list is ordered by name then
-- id among active rows; the employees list by last name, first name, then
-- id among an organization's active employees. employees_org_names starts
-- with employees_org's columns, which it replaces.
CREATE INDEX organizations_status_name ON organizations (status, name, id);
CREATE INDEX employees_org_names ON employees (org_id, status, last_name, first_name, id);
DROP INDEX employees_org;
