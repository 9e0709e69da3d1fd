// Package store is the SQL repository of the Customer Service's own data:
// locations, the dealer replica, teams and members, location roles and
// profiles. Like the organization kit's repository it is stateless and runs
// every statement on the querier it is given, so the use cases combine its
// writes with the kit's checks and the outbox in one transaction.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/realguardio/realguardio/internal/customer/app"
	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations returns the Customer Service's own schema (set "customer"),
// applied after events.Migrations() and orgkit.Migrations().
func Migrations() sqldb.Migrations {
	return sqldb.Migrations{Set: "customer", FS: migrationFS, Dir: "migrations"}
}

// Store runs the statements of app.Repo on SQLite and PostgreSQL, on the
// querier it is given (Transactor binds it to a unit of work). The zero
// value is ready to use; Now may be set to control recorded instants in tests.
type Store struct {
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

func (s Store) now() int64 {
	if s.Now != nil {
		return sqldb.Micros(s.Now())
	}
	return sqldb.Micros(time.Now())
}

func internal(err error, what string) error {
	return apperr.Wrap(err, apperr.Internal, "%s", what)
}

// LockCustomer serializes the caller's transaction with every other change
// of customerID until it ends (see migration 0002).
func (s Store) LockCustomer(ctx context.Context, q sqldb.Querier, customerID string) error {
	_, err := q.ExecContext(ctx, `INSERT INTO customer_locks (customer_id, locked_at) VALUES (?, ?)
		ON CONFLICT (customer_id) DO UPDATE SET locked_at = excluded.locked_at`, customerID, s.now())
	if err != nil {
		return internal(err, "lock customer")
	}
	return nil
}

// InsertLocation stores a new location.
func (s Store) InsertLocation(ctx context.Context, q sqldb.Querier, l app.Location) error {
	_, err := q.ExecContext(ctx, `INSERT INTO customer_locations (id, customer_id, name, dealer_id, created_at) VALUES (?, ?, ?, ?, ?)`,
		l.ID, l.CustomerID, l.Name, nullString(l.DealerID), s.now())
	if err != nil {
		return internal(err, "insert location")
	}
	return nil
}

// Location returns location id; apperr.NotFound when unknown.
func (Store) Location(ctx context.Context, q sqldb.Querier, id string) (app.Location, error) {
	var l app.Location
	var dealer sql.NullString
	err := q.QueryRowContext(ctx, `SELECT id, customer_id, name, dealer_id FROM customer_locations WHERE id = ?`, id).Scan(&l.ID, &l.CustomerID, &l.Name, &dealer)
	if errors.Is(err, sql.ErrNoRows) {
		return app.Location{}, apperr.New(apperr.NotFound, "location %s not found", id)
	}
	if err != nil {
		return app.Location{}, internal(err, "read location")
	}
	l.DealerID = dealer.String
	return l, nil
}

// SetLocationDealer sets (or with "" clears) the dealer of a location.
func (Store) SetLocationDealer(ctx context.Context, q sqldb.Querier, locationID, dealerID string) error {
	if _, err := q.ExecContext(ctx, `UPDATE customer_locations SET dealer_id = ? WHERE id = ?`, nullString(dealerID), locationID); err != nil {
		return internal(err, "update location dealer")
	}
	return nil
}

// LocationFacts returns the facts of the known locations among ids, in the
// order of ids. One query with an IN list answers a whole page of security
// systems, which is the point of the batch endpoint.
func (Store) LocationFacts(ctx context.Context, q sqldb.Querier, ids []string) ([]app.LocationFacts, error) {
	if len(ids) == 0 {
		return []app.LocationFacts{}, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	query := `SELECT id, customer_id, dealer_id FROM customer_locations WHERE id IN (?` + strings.Repeat(", ?", len(ids)-1) + `)`
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, internal(err, "read location facts")
	}
	defer rows.Close()
	byID := map[string]app.LocationFacts{}
	for rows.Next() {
		var f app.LocationFacts
		var dealer sql.NullString
		if err := rows.Scan(&f.LocationID, &f.CustomerID, &dealer); err != nil {
			return nil, internal(err, "read location facts")
		}
		f.DealerID = dealer.String
		byID[f.LocationID] = f
	}
	if err := rows.Err(); err != nil {
		return nil, internal(err, "read location facts")
	}
	out := make([]app.LocationFacts, 0, len(byID))
	for _, id := range ids {
		if f, ok := byID[id]; ok {
			out = append(out, f)
		}
	}
	return out, nil
}

// DealerExists reports whether dealer id is in the replica.
func (Store) DealerExists(ctx context.Context, q sqldb.Querier, id string) (bool, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM customer_dealers WHERE id = ?`, id).Scan(&n); err != nil {
		return false, internal(err, "read dealer")
	}
	return n > 0, nil
}

// UpsertDealer records dealer id, keeping the latest name.
func (s Store) UpsertDealer(ctx context.Context, q sqldb.Querier, id, name string) error {
	_, err := q.ExecContext(ctx, `INSERT INTO customer_dealers (id, name, recorded_at) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name`, id, name, s.now())
	if err != nil {
		return internal(err, "record dealer")
	}
	return nil
}

// InsertTeam stores a new team.
func (s Store) InsertTeam(ctx context.Context, q sqldb.Querier, t app.Team) error {
	_, err := q.ExecContext(ctx, `INSERT INTO customer_teams (id, customer_id, name, created_at) VALUES (?, ?, ?, ?)`, t.ID, t.CustomerID, t.Name, s.now())
	if err != nil {
		return internal(err, "insert team")
	}
	return nil
}

// Team returns team id; apperr.NotFound when unknown.
func (Store) Team(ctx context.Context, q sqldb.Querier, id string) (app.Team, error) {
	var t app.Team
	err := q.QueryRowContext(ctx, `SELECT id, customer_id, name FROM customer_teams WHERE id = ?`, id).Scan(&t.ID, &t.CustomerID, &t.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return app.Team{}, apperr.New(apperr.NotFound, "team %s not found", id)
	}
	if err != nil {
		return app.Team{}, internal(err, "read team")
	}
	return t, nil
}

func scanTeams(rows *sql.Rows, what string) ([]app.Team, error) {
	defer rows.Close()
	out := []app.Team{}
	for rows.Next() {
		var t app.Team
		if err := rows.Scan(&t.ID, &t.CustomerID, &t.Name); err != nil {
			return nil, internal(err, what)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, internal(err, what)
	}
	return out, nil
}

// AddMember adds employeeID to teamID and reports whether it was new.
// Counting first keeps the statement portable (no dialect-specific
// "insert or ignore") and is safe inside the caller's transaction.
func (Store) AddMember(ctx context.Context, q sqldb.Querier, customerID, teamID, employeeID, userID string) (bool, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM customer_team_members WHERE team_id = ? AND employee_id = ?`, teamID, employeeID).Scan(&n); err != nil {
		return false, internal(err, "read team member")
	}
	if n > 0 {
		return false, nil
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO customer_team_members (team_id, employee_id, user_id, customer_id) VALUES (?, ?, ?, ?)`, teamID, employeeID, userID, customerID); err != nil {
		return false, internal(err, "add team member")
	}
	return true, nil
}

// RemoveMember removes employeeID from teamID and reports whether it was a
// member.
func (Store) RemoveMember(ctx context.Context, q sqldb.Querier, teamID, employeeID string) (bool, error) {
	res, err := q.ExecContext(ctx, `DELETE FROM customer_team_members WHERE team_id = ? AND employee_id = ?`, teamID, employeeID)
	if err != nil {
		return false, internal(err, "remove team member")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, internal(err, "remove team member")
	}
	return n > 0, nil
}

// TeamsOfEmployee lists the teams employeeID is a member of, by name.
func (Store) TeamsOfEmployee(ctx context.Context, q sqldb.Querier, employeeID string) ([]app.Team, error) {
	rows, err := q.QueryContext(ctx, `SELECT t.id, t.customer_id, t.name FROM customer_teams t
		JOIN customer_team_members m ON m.team_id = t.id WHERE m.employee_id = ? ORDER BY t.name, t.id`, employeeID)
	if err != nil {
		return nil, internal(err, "list teams of employee")
	}
	return scanTeams(rows, "list teams of employee")
}

// SetEmployeeLocationRoles replaces the roles employeeID holds at
// locationID.
func (Store) SetEmployeeLocationRoles(ctx context.Context, q sqldb.Querier, customerID, locationID, employeeID, userID string, roles []string) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM customer_location_employee_roles WHERE location_id = ? AND employee_id = ?`, locationID, employeeID); err != nil {
		return internal(err, "replace location roles")
	}
	for _, r := range roles {
		if _, err := q.ExecContext(ctx, `INSERT INTO customer_location_employee_roles (location_id, employee_id, user_id, role, customer_id) VALUES (?, ?, ?, ?, ?)`,
			locationID, employeeID, userID, r, customerID); err != nil {
			return internal(err, "replace location roles")
		}
	}
	return nil
}

// SetTeamLocationRoles replaces the roles teamID holds at locationID.
func (Store) SetTeamLocationRoles(ctx context.Context, q sqldb.Querier, customerID, locationID, teamID string, roles []string) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM customer_location_team_roles WHERE location_id = ? AND team_id = ?`, locationID, teamID); err != nil {
		return internal(err, "replace team location roles")
	}
	for _, r := range roles {
		if _, err := q.ExecContext(ctx, `INSERT INTO customer_location_team_roles (location_id, team_id, role, customer_id) VALUES (?, ?, ?, ?)`,
			locationID, teamID, r, customerID); err != nil {
			return internal(err, "replace team location roles")
		}
	}
	return nil
}

// grantsByLocation groups (location, holder, role) rows, already ordered by
// location, holder and role, into grants per location.
func grantsByLocation(rows *sql.Rows, what string) (map[string][]app.RoleGrant, error) {
	defer rows.Close()
	out := map[string][]app.RoleGrant{}
	for rows.Next() {
		var loc, holder, role string
		if err := rows.Scan(&loc, &holder, &role); err != nil {
			return nil, internal(err, what)
		}
		gs := out[loc]
		if n := len(gs); n > 0 && gs[n-1].HolderID == holder {
			gs[n-1].Roles = append(gs[n-1].Roles, role)
		} else {
			gs = append(gs, app.RoleGrant{HolderID: holder, Roles: []string{role}})
		}
		out[loc] = gs
	}
	if err := rows.Err(); err != nil {
		return nil, internal(err, what)
	}
	return out, nil
}

func rolesByLocation(rows *sql.Rows, what string) (map[string][]string, error) {
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var loc, role string
		if err := rows.Scan(&loc, &role); err != nil {
			return nil, internal(err, what)
		}
		if !slices.Contains(out[loc], role) {
			out[loc] = append(out[loc], role)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, internal(err, what)
	}
	for _, roles := range out {
		slices.Sort(roles)
	}
	return out, nil
}

// DirectLocationRoles maps location id to the roles employeeID holds there
// directly.
func (Store) DirectLocationRoles(ctx context.Context, q sqldb.Querier, employeeID string) (map[string][]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT location_id, role FROM customer_location_employee_roles WHERE employee_id = ? ORDER BY location_id, role`, employeeID)
	if err != nil {
		return nil, internal(err, "read location roles")
	}
	return rolesByLocation(rows, "read location roles")
}

// TeamLocationRoles maps each of teamIDs that holds any role to its roles
// by location id: what a team page and an employee's "through teams" list
// show. It reads the team_id index, so it costs the teams' grants only.
func (Store) TeamLocationRoles(ctx context.Context, q sqldb.Querier, teamIDs []string) (map[string]map[string][]string, error) {
	out := map[string]map[string][]string{}
	if len(teamIDs) == 0 {
		return out, nil
	}
	args := make([]any, len(teamIDs))
	for i, id := range teamIDs {
		args[i] = id
	}
	rows, err := q.QueryContext(ctx, `SELECT team_id, location_id, role FROM customer_location_team_roles WHERE team_id IN (?`+strings.Repeat(", ?", len(teamIDs)-1)+`) ORDER BY team_id, location_id, role`, args...)
	if err != nil {
		return nil, internal(err, "read team location roles")
	}
	defer rows.Close()
	for rows.Next() {
		var team, loc, role string
		if err := rows.Scan(&team, &loc, &role); err != nil {
			return nil, internal(err, "read team location roles")
		}
		if out[team] == nil {
			out[team] = map[string][]string{}
		}
		out[team][loc] = append(out[team][loc], role)
	}
	if err := rows.Err(); err != nil {
		return nil, internal(err, "read team location roles")
	}
	return out, nil
}

// EffectiveLocationRoles maps location id to the roles employeeID holds
// there directly or through a team: the merge AUTHZ.md's rule evaluates.
func (Store) EffectiveLocationRoles(ctx context.Context, q sqldb.Querier, employeeID string) (map[string][]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT location_id, role FROM customer_location_employee_roles WHERE employee_id = ?
		UNION
		SELECT r.location_id, r.role FROM customer_location_team_roles r
		JOIN customer_team_members m ON m.team_id = r.team_id WHERE m.employee_id = ?`, employeeID, employeeID)
	if err != nil {
		return nil, internal(err, "read effective location roles")
	}
	return rolesByLocation(rows, "read effective location roles")
}

// Profile returns the stored profile of userID and whether there is one.
func (Store) Profile(ctx context.Context, q sqldb.Querier, userID string) (app.Profile, bool, error) {
	p := app.Profile{UserID: userID}
	err := q.QueryRowContext(ctx, `SELECT first_name, last_name, phone_number FROM customer_profiles WHERE user_id = ?`, userID).Scan(&p.FirstName, &p.LastName, &p.PhoneNumber)
	if errors.Is(err, sql.ErrNoRows) {
		return app.Profile{}, false, nil
	}
	if err != nil {
		return app.Profile{}, false, internal(err, "read profile")
	}
	return p, true, nil
}

// PutProfile stores p, replacing the profile of p.UserID.
func (s Store) PutProfile(ctx context.Context, q sqldb.Querier, p app.Profile) error {
	_, err := q.ExecContext(ctx, `INSERT INTO customer_profiles (user_id, first_name, last_name, phone_number, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET first_name = excluded.first_name, last_name = excluded.last_name,
		phone_number = excluded.phone_number, updated_at = excluded.updated_at`,
		p.UserID, p.FirstName, p.LastName, p.PhoneNumber, s.now())
	if err != nil {
		return internal(err, "store profile")
	}
	return nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// DeleteTeam deletes teamID with its memberships and location roles, and
// returns what it took away, for the events: the members and the
// locations where the team held roles (by id).
func (Store) DeleteTeam(ctx context.Context, q sqldb.Querier, teamID string) (app.DeletedTeam, error) {
	var out app.DeletedTeam
	rows, err := q.QueryContext(ctx, `SELECT employee_id, user_id FROM customer_team_members WHERE team_id = ? ORDER BY employee_id`, teamID)
	if err != nil {
		return out, internal(err, "read the team's members")
	}
	for rows.Next() {
		var m app.Member
		if err := rows.Scan(&m.EmployeeID, &m.UserID); err != nil {
			rows.Close()
			return out, internal(err, "read the team's members")
		}
		out.Members = append(out.Members, m)
	}
	if err := closeRows(rows); err != nil {
		return out, internal(err, "read the team's members")
	}
	if out.Locations, err = textColumn(ctx, q, `SELECT DISTINCT location_id FROM customer_location_team_roles WHERE team_id = ? ORDER BY location_id`, teamID); err != nil {
		return out, internal(err, "read the team's location roles")
	}
	for _, stmt := range []string{
		`DELETE FROM customer_team_members WHERE team_id = ?`,
		`DELETE FROM customer_location_team_roles WHERE team_id = ?`,
		`DELETE FROM customer_teams WHERE id = ?`,
	} {
		if _, err := q.ExecContext(ctx, stmt, teamID); err != nil {
			return out, internal(err, "delete the team")
		}
	}
	return out, nil
}

// DeleteLocation deletes locationID with the roles held there, and returns
// what it took away, for the events: the employees who held roles there
// directly and the teams that did.
func (Store) DeleteLocation(ctx context.Context, q sqldb.Querier, locationID string) (app.DeletedLocation, error) {
	var out app.DeletedLocation
	rows, err := q.QueryContext(ctx, `SELECT DISTINCT employee_id, user_id FROM customer_location_employee_roles WHERE location_id = ? ORDER BY employee_id`, locationID)
	if err != nil {
		return out, internal(err, "read the location's roles")
	}
	for rows.Next() {
		var m app.Member
		if err := rows.Scan(&m.EmployeeID, &m.UserID); err != nil {
			rows.Close()
			return out, internal(err, "read the location's roles")
		}
		out.Employees = append(out.Employees, m)
	}
	if err := closeRows(rows); err != nil {
		return out, internal(err, "read the location's roles")
	}
	if out.Teams, err = textColumn(ctx, q, `SELECT DISTINCT team_id FROM customer_location_team_roles WHERE location_id = ? ORDER BY team_id`, locationID); err != nil {
		return out, internal(err, "read the location's team roles")
	}
	for _, stmt := range []string{
		`DELETE FROM customer_location_employee_roles WHERE location_id = ?`,
		`DELETE FROM customer_location_team_roles WHERE location_id = ?`,
		`DELETE FROM customer_locations WHERE id = ?`,
	} {
		if _, err := q.ExecContext(ctx, stmt, locationID); err != nil {
			return out, internal(err, "delete the location")
		}
	}
	return out, nil
}

// textColumn reads the one text column of query's rows.
func textColumn(ctx context.Context, q sqldb.Querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, s)
	}
	return out, closeRows(rows)
}

// closeRows closes rows and returns the error that ended the iteration.
func closeRows(rows *sql.Rows) error {
	err := rows.Err()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return err
}

// RecordSystem records security system systemID at locationID; recording
// it again changes nothing.
func (Store) RecordSystem(ctx context.Context, q sqldb.Querier, systemID, locationID string) error {
	_, err := q.ExecContext(ctx, `INSERT INTO customer_location_systems (system_id, location_id) VALUES (?, ?)
		ON CONFLICT (system_id) DO NOTHING`, systemID, locationID)
	if err != nil {
		return internal(err, "record security system")
	}
	return nil
}

// LocationHasSystems reports whether a security system is recorded at
// locationID.
func (Store) LocationHasSystems(ctx context.Context, q sqldb.Querier, locationID string) (bool, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM customer_location_systems WHERE location_id = ? LIMIT 1) AS s`, locationID).Scan(&n); err != nil {
		return false, internal(err, "read the location's security systems")
	}
	return n > 0, nil
}

// SetDealerProvider records the monitoring provider of dealerID ("" when
// it has none).
func (Store) SetDealerProvider(ctx context.Context, q sqldb.Querier, dealerID, providerID string) error {
	_, err := q.ExecContext(ctx, `INSERT INTO customer_dealer_providers (dealer_id, monitoring_provider_id) VALUES (?, ?)
		ON CONFLICT (dealer_id) DO UPDATE SET monitoring_provider_id = excluded.monitoring_provider_id`, dealerID, nullString(providerID))
	if err != nil {
		return internal(err, "record the dealer's monitoring provider")
	}
	return nil
}

// LocationNames returns the known locations among ids with what decides
// who may read their names: the customer, the dealer and its provider.
func (Store) LocationNames(ctx context.Context, q sqldb.Querier, ids []string) ([]app.LocationName, error) {
	var out []app.LocationName
	err := chunks(ids, 500, func(part []string) error {
		in, args := inList(part)
		rows, err := q.QueryContext(ctx, `SELECT l.id, l.name, l.customer_id, COALESCE(l.dealer_id, ''), COALESCE(p.monitoring_provider_id, '')
			FROM customer_locations l LEFT JOIN customer_dealer_providers p ON p.dealer_id = l.dealer_id
			WHERE l.id IN `+in, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var n app.LocationName
			if err := rows.Scan(&n.ID, &n.Name, &n.CustomerID, &n.DealerID, &n.MonitoringProviderID); err != nil {
				rows.Close()
				return err
			}
			out = append(out, n)
		}
		return closeRows(rows)
	})
	if err != nil {
		return nil, internal(err, "read location names")
	}
	slices.SortFunc(out, func(a, b app.LocationName) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}
