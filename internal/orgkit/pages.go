package orgkit

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/realguardio/realguardio/internal/orgkit/paging"
	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/policy"
)

// OrganizationKey is the list order of organizations: name, then id.
func OrganizationKey(o Organization) []string { return []string{o.Name, o.ID} }

// EmployeeKey is the list order of employees: last name, first name, then
// id, the order people look names up in.
func EmployeeKey(e EmployeeDetails) []string { return []string{e.LastName, e.FirstName, e.ID} }

// OrganizationsPage reads req.Fetch() active organizations in list order
// after req's cursor whose name contains req.Query. It is a range scan of
// organizations_status_name; with a filter the scan goes on until the page
// is full, which for names that match rarely is a longer scan, never a
// sort of the table.
func (Repo) OrganizationsPage(ctx context.Context, q sqldb.Querier, req paging.Request) ([]Organization, error) {
	query := `SELECT id, name FROM organizations WHERE status = ?`
	args := []any{StatusActive}
	if w, a := req.Where("name", "id"); w != "" {
		query += " AND " + w
		args = append(args, a...)
	}
	if w, a := req.Contains("name"); w != "" {
		query += " AND " + w
		args = append(args, a...)
	}
	query += ` ORDER BY name, id LIMIT ?`
	args = append(args, req.Fetch())
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "list organizations")
	}
	defer rows.Close()
	out := []Organization{}
	for rows.Next() {
		var o Organization
		if err := rows.Scan(&o.ID, &o.Name); err != nil {
			return nil, apperr.Wrap(err, apperr.Internal, "list organizations")
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "list organizations")
	}
	return out, nil
}

// EmployeesPage reads req.Fetch() active employees of orgID in list order
// after req's cursor, whose name or e-mail address contains req.Query: a
// range scan of employees_org_names.
func (Repo) EmployeesPage(ctx context.Context, q sqldb.Querier, orgID string, req paging.Request) ([]Employee, error) {
	query := `SELECT ` + employeeColumns + ` FROM employees WHERE org_id = ? AND status = ?`
	args := []any{orgID, StatusActive}
	if w, a := req.Where("last_name", "first_name", "id"); w != "" {
		query += " AND " + w
		args = append(args, a...)
	}
	if req.Query != "" {
		var parts []string
		for _, col := range []string{"email", "first_name", "last_name"} {
			w, a := req.Contains(col)
			parts = append(parts, w)
			args = append(args, a...)
		}
		query += " AND (" + strings.Join(parts, " OR ") + ")"
	}
	query += ` ORDER BY last_name, first_name, id LIMIT ?`
	args = append(args, req.Fetch())
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "list employees")
	}
	defer rows.Close()
	out := []Employee{}
	for rows.Next() {
		e, err := scanEmployee(rows)
		if err != nil {
			return nil, apperr.Wrap(err, apperr.Internal, "list employees")
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "list employees")
	}
	return out, nil
}

// inList returns "(?, ?, …)" for n values and the values as arguments.
func inList(ids []string) (string, []any) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return "(?" + strings.Repeat(", ?", len(ids)-1) + ")", args
}

// DetailsOf returns emps with their roles and schedules, in the order
// given, reading the roles and the schedules of all of them with one query
// each (primary-key lookups), so a page of 500 employees is three queries,
// not a thousand.
func (Repo) DetailsOf(ctx context.Context, q sqldb.Querier, emps []Employee) ([]EmployeeDetails, error) {
	out := make([]EmployeeDetails, len(emps))
	if len(emps) == 0 {
		return out, nil
	}
	ids := make([]string, len(emps))
	for i, e := range emps {
		ids[i] = e.ID
	}
	in, args := inList(ids)
	roles := map[string][]string{}
	rows, err := q.QueryContext(ctx, `SELECT employee_id, role FROM employee_roles WHERE employee_id IN `+in+` ORDER BY employee_id, role`, args...)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "read roles")
	}
	for rows.Next() {
		var id, r string
		if err := rows.Scan(&id, &r); err != nil {
			rows.Close()
			return nil, apperr.Wrap(err, apperr.Internal, "read roles")
		}
		roles[id] = append(roles[id], r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "read roles")
	}
	schedules := map[string]*policy.Schedule{}
	rows, err = q.QueryContext(ctx, `SELECT employee_id, schedule FROM employee_schedules WHERE employee_id IN `+in, args...)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "read schedules")
	}
	for rows.Next() {
		var id, raw string
		if err := rows.Scan(&id, &raw); err != nil {
			rows.Close()
			return nil, apperr.Wrap(err, apperr.Internal, "read schedules")
		}
		var s policy.Schedule
		if err := json.Unmarshal([]byte(raw), &s); err != nil {
			rows.Close()
			return nil, apperr.Wrap(err, apperr.Internal, "decode stored schedule")
		}
		schedules[id] = &s
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "read schedules")
	}
	for i, e := range emps {
		r := roles[e.ID]
		if r == nil {
			r = []string{}
		}
		out[i] = EmployeeDetails{Employee: e, Roles: r, Schedule: schedules[e.ID]}
	}
	return out, nil
}

// ActiveEmployees returns the active employees of orgID among ids, keyed
// by id, reading them with one primary-key query per chunk of ids. It is
// what a bulk change checks its employees with. Organization and status
// are compared here: given them in the WHERE clause, SQLite prefers the
// organization's index and would read all of its employees.
func (Repo) ActiveEmployees(ctx context.Context, q sqldb.Querier, orgID string, ids []string) (map[string]Employee, error) {
	out := map[string]Employee{}
	const chunk = 500
	for start := 0; start < len(ids); start += chunk {
		part := ids[start:min(start+chunk, len(ids))]
		in, args := inList(part)
		rows, err := q.QueryContext(ctx, `SELECT `+employeeColumns+` FROM employees WHERE id IN `+in, args...)
		if err != nil {
			return nil, apperr.Wrap(err, apperr.Internal, "read employees")
		}
		for rows.Next() {
			e, err := scanEmployee(rows)
			if err != nil {
				rows.Close()
				return nil, apperr.Wrap(err, apperr.Internal, "read employees")
			}
			if e.OrgID == orgID && e.Status == StatusActive {
				out[e.ID] = e
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, apperr.Wrap(err, apperr.Internal, "read employees")
		}
	}
	return out, nil
}
