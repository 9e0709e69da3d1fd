package store

import (
	"context"
	"database/sql"
	"strings"

	"github.com/realguardio/realguardio/internal/customer/app"
	"github.com/realguardio/realguardio/internal/orgkit/paging"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// chunkRows bounds the rows of one multi-row statement: at five columns a
// chunk binds 5 000 values, well under SQLite's 32 766 and PostgreSQL's
// 65 535, and long enough that a 10 000-item import is a handful of
// statements.
const chunkRows = 1000

// inList returns "(?, ?, …)" for the ids and the ids as arguments.
func inList(ids []string) (string, []any) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return "(?" + strings.Repeat(", ?", len(ids)-1) + ")", args
}

// chunks calls fn with consecutive slices of at most n of ids.
func chunks(ids []string, n int, fn func(part []string) error) error {
	for start := 0; start < len(ids); start += n {
		if err := fn(ids[start:min(start+n, len(ids))]); err != nil {
			return err
		}
	}
	return nil
}

// page appends the keyset and filter predicates of req over the name
// column and the order and limit to query.
func page(query string, args []any, req paging.Request, nameCols ...string) (string, []any) {
	if w, a := req.Where(nameCols...); w != "" {
		query += " AND " + w
		args = append(args, a...)
	}
	if w, a := req.Contains(nameCols[0]); w != "" {
		query += " AND " + w
		args = append(args, a...)
	}
	return query + " ORDER BY " + strings.Join(nameCols, ", ") + " LIMIT ?", append(args, req.Fetch())
}

// LocationsPage reads a page of the locations of customerID: a range scan
// of customer_locations_customer_name after the cursor.
func (Store) LocationsPage(ctx context.Context, q sqldb.Querier, customerID string, req paging.Request) ([]app.Location, error) {
	query, args := page(`SELECT id, customer_id, name, dealer_id FROM customer_locations WHERE customer_id = ?`, []any{customerID}, req, "name", "id")
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, internal(err, "list locations")
	}
	defer rows.Close()
	out := []app.Location{}
	for rows.Next() {
		var l app.Location
		var dealer sql.NullString
		if err := rows.Scan(&l.ID, &l.CustomerID, &l.Name, &dealer); err != nil {
			return nil, internal(err, "list locations")
		}
		l.DealerID = dealer.String
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, internal(err, "list locations")
	}
	return out, nil
}

// InsertLocations stores new locations, a thousand rows per statement.
func (s Store) InsertLocations(ctx context.Context, q sqldb.Querier, ls []app.Location) error {
	now := s.now()
	for start := 0; start < len(ls); start += chunkRows {
		part := ls[start:min(start+chunkRows, len(ls))]
		args := make([]any, 0, 5*len(part))
		for _, l := range part {
			args = append(args, l.ID, l.CustomerID, l.Name, nullString(l.DealerID), now)
		}
		query := `INSERT INTO customer_locations (id, customer_id, name, dealer_id, created_at) VALUES (?, ?, ?, ?, ?)` +
			strings.Repeat(", (?, ?, ?, ?, ?)", len(part)-1)
		if _, err := q.ExecContext(ctx, query, args...); err != nil {
			return internal(err, "insert locations")
		}
	}
	return nil
}

// LocationsOf returns which of ids are locations of customerID, by
// primary-key lookups. The customer is compared here, not in the WHERE
// clause: given both, SQLite prefers the customer's index and would read
// all of the customer's locations instead of the few named.
func (Store) LocationsOf(ctx context.Context, q sqldb.Querier, customerID string, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	err := chunks(ids, chunkRows, func(part []string) error {
		in, args := inList(part)
		rows, err := q.QueryContext(ctx, `SELECT id, customer_id FROM customer_locations WHERE id IN `+in, args...)
		if err != nil {
			return internal(err, "read locations")
		}
		defer rows.Close()
		for rows.Next() {
			var id, owner string
			if err := rows.Scan(&id, &owner); err != nil {
				return internal(err, "read locations")
			}
			if owner == customerID {
				out[id] = true
			}
		}
		if err := rows.Err(); err != nil {
			return internal(err, "read locations")
		}
		return nil
	})
	return out, err
}

// DealersKnown returns which of ids are in the dealer replica.
func (Store) DealersKnown(ctx context.Context, q sqldb.Querier, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	err := chunks(ids, chunkRows, func(part []string) error {
		in, args := inList(part)
		rows, err := q.QueryContext(ctx, `SELECT id FROM customer_dealers WHERE id IN `+in, args...)
		if err != nil {
			return internal(err, "read dealers")
		}
		return collectIDs(rows, out, "read dealers")
	})
	return out, err
}

func collectIDs(rows *sql.Rows, into map[string]bool, what string) error {
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return internal(err, what)
		}
		into[id] = true
	}
	if err := rows.Err(); err != nil {
		return internal(err, what)
	}
	return nil
}

// TeamsPage reads a page of the teams of customerID: a range scan of
// customer_teams_customer_name after the cursor.
func (Store) TeamsPage(ctx context.Context, q sqldb.Querier, customerID string, req paging.Request) ([]app.Team, error) {
	query, args := page(`SELECT id, customer_id, name FROM customer_teams WHERE customer_id = ?`, []any{customerID}, req, "name", "id")
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, internal(err, "list teams")
	}
	return scanTeams(rows, "list teams")
}

// TeamMembers maps each of teamIDs that has members to their employee ids,
// sorted: one primary-key range per team.
func (Store) TeamMembers(ctx context.Context, q sqldb.Querier, teamIDs []string) (map[string][]string, error) {
	out := map[string][]string{}
	err := chunks(teamIDs, chunkRows, func(part []string) error {
		in, args := inList(part)
		rows, err := q.QueryContext(ctx, `SELECT team_id, employee_id FROM customer_team_members WHERE team_id IN `+in+` ORDER BY team_id, employee_id`, args...)
		if err != nil {
			return internal(err, "list team members")
		}
		defer rows.Close()
		for rows.Next() {
			var team, emp string
			if err := rows.Scan(&team, &emp); err != nil {
				return internal(err, "list team members")
			}
			out[team] = append(out[team], emp)
		}
		if err := rows.Err(); err != nil {
			return internal(err, "list team members")
		}
		return nil
	})
	return out, err
}

// MembersPage reads a page of the active members of teamID with their
// names, joining the organization kit's employees (the same database) by
// primary key. The order is the kit's employee order, so it needs the
// team's members sorted: the cost is the team's size, never the
// customer's or the platform's.
func (Store) MembersPage(ctx context.Context, q sqldb.Querier, teamID string, req paging.Request) ([]app.Employee, error) {
	query := `SELECT e.id, e.org_id, e.user_id, e.email, e.first_name, e.last_name FROM customer_team_members m
		JOIN employees e ON e.id = m.employee_id WHERE m.team_id = ? AND e.status = 'active'`
	args := []any{teamID}
	if w, a := req.Where("e.last_name", "e.first_name", "e.id"); w != "" {
		query += " AND " + w
		args = append(args, a...)
	}
	query += ` ORDER BY e.last_name, e.first_name, e.id LIMIT ?`
	rows, err := q.QueryContext(ctx, query, append(args, req.Fetch())...)
	if err != nil {
		return nil, internal(err, "list team members")
	}
	defer rows.Close()
	out := []app.Employee{}
	for rows.Next() {
		e := app.Employee{Active: true}
		if err := rows.Scan(&e.ID, &e.CustomerID, &e.UserID, &e.Email, &e.FirstName, &e.LastName); err != nil {
			return nil, internal(err, "list team members")
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, internal(err, "list team members")
	}
	return out, nil
}

// ReplaceEmployeeLocationRoles replaces the roles of every pair of grants:
// one DELETE per chunk of pairs (a row-value IN over VALUES, which both
// engines run as primary-key lookups) and multi-row INSERTs of the new
// roles.
func (Store) ReplaceEmployeeLocationRoles(ctx context.Context, q sqldb.Querier, customerID string, grants []app.Grant) error {
	const pairsPerDelete = 1000
	for start := 0; start < len(grants); start += pairsPerDelete {
		part := grants[start:min(start+pairsPerDelete, len(grants))]
		args := make([]any, 0, 2*len(part))
		for _, g := range part {
			args = append(args, g.LocationID, g.EmployeeID)
		}
		query := `DELETE FROM customer_location_employee_roles WHERE (location_id, employee_id) IN (VALUES (?, ?)` +
			strings.Repeat(", (?, ?)", len(part)-1) + `)`
		if _, err := q.ExecContext(ctx, query, args...); err != nil {
			return internal(err, "replace location roles")
		}
	}
	var args []any
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		n := len(args) / 5
		query := `INSERT INTO customer_location_employee_roles (location_id, employee_id, user_id, role, customer_id) VALUES (?, ?, ?, ?, ?)` +
			strings.Repeat(", (?, ?, ?, ?, ?)", n-1)
		args2 := args
		args = nil
		if _, err := q.ExecContext(ctx, query, args2...); err != nil {
			return internal(err, "replace location roles")
		}
		return nil
	}
	for _, g := range grants {
		for _, r := range g.Roles {
			args = append(args, g.LocationID, g.EmployeeID, g.UserID, r, customerID)
			if len(args) >= 5*chunkRows {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// EmployeeRolesAt maps each of locationIDs to the direct grants of
// employees there: primary-key ranges of the locations.
func (Store) EmployeeRolesAt(ctx context.Context, q sqldb.Querier, locationIDs []string) (map[string][]app.RoleGrant, error) {
	return grantsAt(ctx, q, `SELECT location_id, employee_id, role FROM customer_location_employee_roles WHERE location_id IN `,
		` ORDER BY location_id, employee_id, role`, locationIDs, "list location roles")
}

// TeamRolesAt maps each of locationIDs to the grants of teams there.
func (Store) TeamRolesAt(ctx context.Context, q sqldb.Querier, locationIDs []string) (map[string][]app.RoleGrant, error) {
	return grantsAt(ctx, q, `SELECT location_id, team_id, role FROM customer_location_team_roles WHERE location_id IN `,
		` ORDER BY location_id, team_id, role`, locationIDs, "list team location roles")
}

func grantsAt(ctx context.Context, q sqldb.Querier, head, tail string, ids []string, what string) (map[string][]app.RoleGrant, error) {
	out := map[string][]app.RoleGrant{}
	err := chunks(ids, chunkRows, func(part []string) error {
		in, args := inList(part)
		rows, err := q.QueryContext(ctx, head+in+tail, args...)
		if err != nil {
			return internal(err, what)
		}
		got, err := grantsByLocation(rows, what)
		for k, v := range got {
			out[k] = v
		}
		return err
	})
	return out, err
}
