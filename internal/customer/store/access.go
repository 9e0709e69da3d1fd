package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/realguardio/realguardio/internal/customer/app"
	"github.com/realguardio/realguardio/internal/orgkit"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/policy"
)

// LocationAccess returns the name of l's customer and up to p.Limit+1 of
// its active employees holding a security system role at l (directly or
// through a team) or as an organization role in the customer, after p's
// position in username (e-mail) then user id order, with every such role
// and the schedule.
//
// It reads the organization kit's tables (employees, their roles and
// schedules), which live in this service's database, because the page is
// ordered by the kit's e-mail column: one keyset query over both is the
// only way the page's cost follows the page and not the customer's size.
func (Store) LocationAccess(ctx context.Context, q sqldb.Querier, l app.Location, p app.AccessPage) (string, []app.AccessHolder, error) {
	var name string
	err := q.QueryRowContext(ctx, `SELECT name FROM organizations WHERE id = ?`, l.CustomerID).Scan(&name)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", nil, internal(err, "read customer")
	}
	d := q.Dialect()
	page := orgkit.AccessPage{Limit: p.Limit, AfterUsername: p.AfterUsername, AfterUserID: p.AfterUserID, UserID: p.UserID}
	after, afterArgs := orgkit.AfterClause(d, page)
	query := `SELECT e.id, e.user_id, e.email FROM employees e
		WHERE e.org_id = ? AND e.status = ? AND ` + after + `
		AND (e.id IN (SELECT employee_id FROM customer_location_employee_roles WHERE location_id = ?)
		  OR e.id IN (SELECT m.employee_id FROM customer_location_team_roles t
		              JOIN customer_team_members m ON m.team_id = t.team_id WHERE t.location_id = ?)
		  OR EXISTS (SELECT 1 FROM employee_roles r WHERE r.employee_id = e.id AND r.role IN (?, ?, ?)))`
	args := append([]any{l.CustomerID, orgkit.StatusActive}, afterArgs...)
	args = append(args, l.ID, l.ID, policy.RoleArmer, policy.RoleDisarmer, policy.RoleViewer)
	if p.UserID != "" {
		query += ` AND e.user_id = ?`
		args = append(args, p.UserID)
	}
	query += ` ORDER BY ` + orgkit.BinaryOrder(d, "e.email") + `, ` + orgkit.BinaryOrder(d, "e.user_id") + ` LIMIT ?`
	args = append(args, p.Limit+1)
	holders, err := orgkit.ScanHolders(ctx, q, query, args...)
	if err != nil {
		return "", nil, err
	}
	if err := (orgkit.Repo{}).FillHolders(ctx, q, holders); err != nil {
		return "", nil, err
	}
	out := make([]app.AccessHolder, len(holders))
	at := make(map[string]int, len(holders))
	ids := make([]any, len(holders))
	for i, h := range holders {
		out[i] = app.AccessHolder{EmployeeID: h.EmployeeID, UserID: h.UserID, Username: h.Username,
			OrganizationRoles: h.Roles, LocationRoles: []string{}, Teams: []app.TeamGrant{}, Schedule: h.Schedule}
		at[h.EmployeeID] = i
		ids[i] = h.EmployeeID
	}
	if len(out) == 0 {
		return name, out, nil
	}
	in := "(?" + strings.Repeat(", ?", len(ids)-1) + ")"
	rows, err := q.QueryContext(ctx, `SELECT employee_id, role FROM customer_location_employee_roles
		WHERE location_id = ? AND employee_id IN `+in+` ORDER BY employee_id, role`, append([]any{l.ID}, ids...)...)
	if err != nil {
		return "", nil, internal(err, "read location roles")
	}
	defer rows.Close()
	for rows.Next() {
		var emp, role string
		if err := rows.Scan(&emp, &role); err != nil {
			return "", nil, internal(err, "read location roles")
		}
		out[at[emp]].LocationRoles = append(out[at[emp]].LocationRoles, role)
	}
	if err := rows.Err(); err != nil {
		return "", nil, internal(err, "read location roles")
	}
	trows, err := q.QueryContext(ctx, `SELECT m.employee_id, t.id, t.name, r.role FROM customer_location_team_roles r
		JOIN customer_teams t ON t.id = r.team_id
		JOIN customer_team_members m ON m.team_id = r.team_id
		WHERE r.location_id = ? AND m.employee_id IN `+in+` ORDER BY m.employee_id, t.name, t.id, r.role`, append([]any{l.ID}, ids...)...)
	if err != nil {
		return "", nil, internal(err, "read team location roles")
	}
	defer trows.Close()
	for trows.Next() {
		var emp, team, teamName, role string
		if err := trows.Scan(&emp, &team, &teamName, &role); err != nil {
			return "", nil, internal(err, "read team location roles")
		}
		h := &out[at[emp]]
		if n := len(h.Teams); n > 0 && h.Teams[n-1].TeamID == team {
			h.Teams[n-1].Roles = append(h.Teams[n-1].Roles, role)
		} else {
			h.Teams = append(h.Teams, app.TeamGrant{TeamID: team, Name: teamName, Roles: []string{role}})
		}
	}
	if err := trows.Err(); err != nil {
		return "", nil, internal(err, "read team location roles")
	}
	return name, out, nil
}
