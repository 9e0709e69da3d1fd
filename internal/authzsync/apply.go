package authzsync

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	openfgav1 "github.com/openfga/api/proto/openfga/v1"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/catalog"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/openfga"
)

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// plan is what one event does to OpenFGA. It is computed inside the SQL
// transaction and executed last, after every SQL statement of the event
// succeeded, so the only failure after OpenFGA changed is the commit
// itself; the event is then redelivered, the plan recomputed from the
// unchanged SQL state, and the same idempotent writes and deletes repeat.
type plan struct {
	writes  []*openfgav1.TupleKey
	deletes []*openfgav1.TupleKeyWithoutCondition
	// replace holds tuples whose key may exist with another condition (the
	// on_duty tuple): each is deleted, then written, in two calls, since
	// OpenFGA refuses one request that deletes and writes the same key.
	replace []*openfgav1.TupleKey
	// upsert holds tuples believed unchanged (the on_duty tuple of an
	// unchanged schedule): written, and replaced only if OpenFGA holds
	// the key with another condition, which happens when OpenFGA got ahead
	// of the SQL state (a parked event that had already written).
	upsert []*openfgav1.TupleKey
}

func (p *plan) write(ts ...*openfgav1.TupleKey) { p.writes = append(p.writes, ts...) }

func (p *plan) delete(ts ...*openfgav1.TupleKey) {
	for _, t := range ts {
		p.deletes = append(p.deletes, openfga.WithoutCondition(t))
	}
}

// setRoles writes the tuples of held and deletes those of every other role
// of known (the roles the model holds for the object): a "set" event
// carries the whole set, so no memory of the previous set is needed, and a
// replay converges whatever OpenFGA holds.
func (p *plan) setRoles(tuplesOf func(roles []string) []*openfgav1.TupleKey, known, held []string) {
	var rest []string
	for _, r := range known {
		if !containsString(held, r) {
			rest = append(rest, r)
		}
	}
	p.write(tuplesOf(held)...)
	p.delete(tuplesOf(rest)...)
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func (p *plan) empty() bool {
	return len(p.writes)+len(p.deletes)+len(p.replace)+len(p.upsert) == 0
}

// errBadEvent marks an event that can never apply (its payload lacks what
// the sync needs); retrying cannot help, so it is parked like any failure.
var errBadEvent = errors.New("malformed event")

// planEvent updates the sync's SQL state for ev in tx and returns what to
// do in OpenFGA. ev's payload is read as the catalogue's struct of its
// type; events the sync does not need give an empty plan, so new event
// types never block a stream.
func planEvent(ctx context.Context, tx *sqldb.Tx, ev events.Event) (*plan, error) {
	p := &plan{}
	t := catalog.Type(ev.Type)
	if org, ok := catalog.OrganizationOf(t); ok && org.IsEmployeeEvent(t) {
		if err := planEmployeeEvent(ctx, tx, p, org, t, ev.Payload); err != nil {
			return nil, err
		}
		return p, nil
	}
	var err error
	switch t {
	case catalog.SecuritySystemCreated:
		pl, derr := catalog.DecodePayload[catalog.SecuritySystemCreatedPayload](ev.Payload)
		if derr != nil {
			return nil, badPayload(derr)
		}
		if pl.SecuritySystemID == "" || pl.LocationID == "" {
			return nil, fmt.Errorf("%w: securitysystem.created without system or location", errBadEvent)
		}
		p.write(openfga.SecuritySystemTuples(pl.SecuritySystemID, pl.LocationID)...)
	case catalog.DealerMonitoringProviderSet:
		pl, derr := catalog.DecodePayload[catalog.DealerMonitoringProviderSetPayload](ev.Payload)
		if derr != nil {
			return nil, badPayload(derr)
		}
		err = dealerProviderSet(ctx, tx, p, pl.DealerID, deref(pl.MonitoringProviderID), deref(pl.PreviousMonitoringProviderID))
	case catalog.LocationCreated:
		pl, derr := catalog.DecodePayload[catalog.LocationCreatedPayload](ev.Payload)
		if derr != nil {
			return nil, badPayload(derr)
		}
		err = locationDealer(ctx, tx, p, pl.LocationID, pl.CustomerID, deref(pl.DealerID), "")
	case catalog.LocationDealerChanged:
		pl, derr := catalog.DecodePayload[catalog.LocationDealerChangedPayload](ev.Payload)
		if derr != nil {
			return nil, badPayload(derr)
		}
		err = locationDealer(ctx, tx, p, pl.LocationID, pl.CustomerID, deref(pl.DealerID), deref(pl.PreviousDealerID))
	case catalog.LocationEmployeeRolesSet:
		pl, derr := catalog.DecodePayload[catalog.LocationEmployeeRolesSetPayload](ev.Payload)
		if derr != nil {
			return nil, badPayload(derr)
		}
		err = employeeLocationRoles(ctx, tx, p, pl)
	case catalog.LocationTeamRolesSet:
		pl, derr := catalog.DecodePayload[catalog.LocationTeamRolesSetPayload](ev.Payload)
		if derr != nil {
			return nil, badPayload(derr)
		}
		err = teamLocationRoles(ctx, tx, p, pl)
	case catalog.TeamMemberAdded, catalog.TeamMemberRemoved:
		pl, derr := catalog.DecodePayload[catalog.TeamMemberPayload](ev.Payload)
		if derr != nil {
			return nil, badPayload(derr)
		}
		err = teamMember(ctx, tx, p, pl, t == catalog.TeamMemberAdded)
	case catalog.TeamDeleted:
		pl, derr := catalog.DecodePayload[catalog.TeamDeletedPayload](ev.Payload)
		if derr != nil {
			return nil, badPayload(derr)
		}
		err = teamDeleted(ctx, tx, p, pl.TeamID)
	case catalog.LocationDeleted:
		pl, derr := catalog.DecodePayload[catalog.LocationDeletedPayload](ev.Payload)
		if derr != nil {
			return nil, badPayload(derr)
		}
		err = locationDeleted(ctx, tx, p, pl.CustomerID, pl.LocationID)
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

func badPayload(err error) error { return fmt.Errorf("%w: payload: %v", errBadEvent, err) }

// planEmployeeEvent is planEvent for the employee events of the three
// kinds of organization, which the sync treats alike.
func planEmployeeEvent(ctx context.Context, tx *sqldb.Tx, p *plan, org catalog.Organization, t catalog.Type, payload []byte) error {
	kind := policy.OrgKind(org.Kind)
	var (
		e     catalog.Employee
		roles []string
		sched *catalog.Schedule
		err   error
	)
	switch t {
	case org.EmployeeRolesSet:
		e, roles, err = org.DecodeEmployeeRolesSet(payload)
	case org.EmployeeScheduleSet:
		e, sched, err = org.DecodeEmployeeScheduleSet(payload)
	default:
		e, err = org.DecodeEmployee(t, payload)
	}
	if err != nil {
		return badPayload(err)
	}
	if e.EmployeeID == "" || e.UserID == "" || e.OrgID == "" {
		return fmt.Errorf("%w: %s without organization, employee or user id", errBadEvent, t)
	}
	switch t {
	case org.EmployeeCreated:
		return employeeCreated(ctx, tx, p, kind, e)
	case org.EmployeeRemoved:
		return employeeRemoved(ctx, tx, p, kind, e)
	case org.EmployeeRolesSet:
		if err := ensureEmployee(ctx, tx, p, kind, e); err != nil {
			return err
		}
		p.setRoles(func(roles []string) []*openfgav1.TupleKey {
			ts, _ := openfga.OrgRoleTuples(kind, e.OrgID, e.UserID, roles) // kind is valid here
			return ts
		}, openfga.OrgRoles(kind), roles)
		return nil
	case org.EmployeeScheduleSet:
		return scheduleSet(ctx, tx, p, kind, e, policySchedule(sched))
	}
	// org.EmployeeScheduleCleared: the employee is unrestricted again.
	return scheduleSet(ctx, tx, p, kind, e, nil)
}

// policySchedule is s in the policy's form, field for field (nil stays
// nil).
func policySchedule(s *catalog.Schedule) *policy.Schedule {
	if s == nil {
		return nil
	}
	return &policy.Schedule{TimeZone: s.TimeZone, Shifts: catalog.ConvertShifts[policy.Shift](s.Shifts)}
}

func exec(ctx context.Context, tx *sqldb.Tx, q string, args ...any) error {
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("authzsync: %w", err)
	}
	return nil
}

// canonicalSchedule is the stored form of a schedule: its JSON, or NULL
// (nil) when unrestricted. Equal schedules give equal strings, so an
// unchanged schedule rewrites nothing.
func canonicalSchedule(s *policy.Schedule) (any, error) {
	if s == nil {
		return nil, nil
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

func upsertEmployee(ctx context.Context, tx *sqldb.Tx, kind policy.OrgKind, e catalog.Employee) error {
	return exec(ctx, tx, `INSERT INTO authzsync_employees (org_kind, employee_id, org_id, user_id) VALUES (?, ?, ?, ?)
		ON CONFLICT (org_kind, employee_id) DO UPDATE SET org_id = excluded.org_id, user_id = excluded.user_id`,
		string(kind), e.EmployeeID, e.OrgID, e.UserID)
}

// onDutyOwner returns which employment wrote the user's on_duty tuple and
// its stored schedule; found is false when there is none.
func onDutyOwner(ctx context.Context, tx *sqldb.Tx, userID string) (kind, employeeID string, schedule sql.NullString, found bool, err error) {
	err = tx.QueryRowContext(ctx, `SELECT org_kind, employee_id, schedule FROM authzsync_on_duty WHERE user_id = ?`, userID).
		Scan(&kind, &employeeID, &schedule)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", schedule, false, nil
	}
	if err != nil {
		return "", "", schedule, false, fmt.Errorf("authzsync: %w", err)
	}
	return kind, employeeID, schedule, true, nil
}

// setOnDuty makes this employment the owner of the user's on_duty tuple
// with schedule sched. The tuple is replaced (delete, then write) when its
// condition changes, and merely rewritten (a no-op) when it does not, so a
// replay converges.
func setOnDuty(ctx context.Context, tx *sqldb.Tx, p *plan, kind policy.OrgKind, e catalog.Employee, sched *policy.Schedule) error {
	tuple, err := openfga.OnDutyTuple(e.UserID, sched)
	if err != nil {
		return fmt.Errorf("%w: schedule of user %s: %v", errBadEvent, e.UserID, err)
	}
	stored, err := canonicalSchedule(sched)
	if err != nil {
		return err
	}
	ownerKind, ownerEmp, old, found, err := onDutyOwner(ctx, tx, e.UserID)
	if err != nil {
		return err
	}
	oldStored := any(nil)
	if old.Valid {
		oldStored = old.String
	}
	if err := exec(ctx, tx, `INSERT INTO authzsync_on_duty (user_id, org_kind, employee_id, schedule) VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET org_kind = excluded.org_kind, employee_id = excluded.employee_id, schedule = excluded.schedule`,
		e.UserID, string(kind), e.EmployeeID, stored); err != nil {
		return err
	}
	if found && ownerKind == string(kind) && ownerEmp == e.EmployeeID && oldStored == stored {
		p.upsert = append(p.upsert, tuple)
	} else {
		p.replace = append(p.replace, tuple)
	}
	return nil
}

// ensureEmployee records the employee and gives them an unrestricted
// on_duty tuple if the user has none: events of an employee normally
// follow employee_created, but one that expired from the stream or was
// parked must not leave the employee unable to ever arm or disarm.
func ensureEmployee(ctx context.Context, tx *sqldb.Tx, p *plan, kind policy.OrgKind, e catalog.Employee) error {
	if err := upsertEmployee(ctx, tx, kind, e); err != nil {
		return err
	}
	if _, _, _, found, err := onDutyOwner(ctx, tx, e.UserID); err != nil || found {
		return err
	}
	return setOnDuty(ctx, tx, p, kind, e, nil)
}

func employeeCreated(ctx context.Context, tx *sqldb.Tx, p *plan, kind policy.OrgKind, e catalog.Employee) error {
	if err := upsertEmployee(ctx, tx, kind, e); err != nil {
		return err
	}
	// A new employment takes over the user's on_duty tuple: a user is the
	// employee of one organization at a time, and a move between
	// organizations may arrive in either order across streams.
	ownerKind, ownerEmp, old, found, err := onDutyOwner(ctx, tx, e.UserID)
	if err != nil {
		return err
	}
	if found && ownerKind == string(kind) && ownerEmp == e.EmployeeID {
		var sched *policy.Schedule
		if old.Valid {
			sched = &policy.Schedule{}
			if err := json.Unmarshal([]byte(old.String), sched); err != nil {
				return fmt.Errorf("authzsync: stored schedule of user %s: %w", e.UserID, err)
			}
		}
		return setOnDuty(ctx, tx, p, kind, e, sched)
	}
	return setOnDuty(ctx, tx, p, kind, e, nil)
}

func employeeRemoved(ctx context.Context, tx *sqldb.Tx, p *plan, kind policy.OrgKind, e catalog.Employee) error {
	orgID := e.OrgID
	// Every role the model holds for the kind goes, the customer's
	// administrator included, so a removed administrator can no longer
	// create systems.
	all, _ := openfga.OrgRoleTuples(kind, orgID, e.UserID, openfga.OrgRoles(kind))
	p.delete(all...)
	ownerKind, ownerEmp, _, found, err := onDutyOwner(ctx, tx, e.UserID)
	if err != nil {
		return err
	}
	// The on_duty tuple goes only if this employment wrote it; if the user
	// was meanwhile hired elsewhere, it is the new employment's.
	if found && ownerKind == string(kind) && ownerEmp == e.EmployeeID {
		duty, _ := openfga.OnDutyTuple(e.UserID, nil)
		p.delete(duty)
		if err := exec(ctx, tx, `DELETE FROM authzsync_on_duty WHERE user_id = ?`, e.UserID); err != nil {
			return err
		}
	}
	if kind == policy.OrgCustomer {
		teams, err := strings1(ctx, tx, `SELECT team_id FROM authzsync_team_members WHERE customer_id = ? AND user_id = ?`, orgID, e.UserID)
		if err != nil {
			return err
		}
		for _, team := range teams {
			p.delete(openfga.TeamMemberTuple(team, e.UserID))
		}
		locs, err := strings1(ctx, tx, `SELECT location_id FROM authzsync_location_roles WHERE customer_id = ? AND user_id = ?`, orgID, e.UserID)
		if err != nil {
			return err
		}
		for _, loc := range locs {
			p.delete(openfga.EmployeeLocationRoleTuples(loc, e.UserID, policy.SecuritySystemRoles)...)
		}
		for _, q := range []string{
			`DELETE FROM authzsync_team_members WHERE customer_id = ? AND user_id = ?`,
			`DELETE FROM authzsync_location_roles WHERE customer_id = ? AND user_id = ?`,
		} {
			if err := exec(ctx, tx, q, orgID, e.UserID); err != nil {
				return err
			}
		}
	}
	return exec(ctx, tx, `DELETE FROM authzsync_employees WHERE org_kind = ? AND employee_id = ?`, string(kind), e.EmployeeID)
}

func scheduleSet(ctx context.Context, tx *sqldb.Tx, p *plan, kind policy.OrgKind, e catalog.Employee, sched *policy.Schedule) error {
	if err := upsertEmployee(ctx, tx, kind, e); err != nil {
		return err
	}
	ownerKind, ownerEmp, _, found, err := onDutyOwner(ctx, tx, e.UserID)
	if err != nil {
		return err
	}
	if found && (ownerKind != string(kind) || ownerEmp != e.EmployeeID) {
		// A late event of a former employment: the user's schedule is now
		// the new employer's to set.
		return nil
	}
	return setOnDuty(ctx, tx, p, kind, e, sched)
}

// single replaces a single-valued relation (a location's dealer, a
// dealer's provider): it deletes the tuples of the value written before
// and of the value the event says was there, unless one of them is the
// new value, and writes the new one.
func single(p *plan, tupleOf func(string) *openfgav1.TupleKey, newID string, olds ...string) {
	for _, old := range olds {
		if old != "" && old != newID {
			p.delete(tupleOf(old))
		}
	}
	if newID != "" {
		p.write(tupleOf(newID))
	}
}

func locationDealer(ctx context.Context, tx *sqldb.Tx, p *plan, locationID, customerID, dealer, previous string) error {
	if locationID == "" || customerID == "" {
		return fmt.Errorf("%w: location event without location or customer", errBadEvent)
	}
	var stored sql.NullString
	err := tx.QueryRowContext(ctx, `SELECT dealer_id FROM authzsync_locations WHERE location_id = ?`, locationID).Scan(&stored)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("authzsync: %w", err)
	}
	if err := exec(ctx, tx, `INSERT INTO authzsync_locations (location_id, customer_id, dealer_id) VALUES (?, ?, ?)
		ON CONFLICT (location_id) DO UPDATE SET customer_id = excluded.customer_id, dealer_id = excluded.dealer_id`,
		locationID, customerID, nullable(dealer)); err != nil {
		return err
	}
	p.write(openfga.LocationTuples(locationID, customerID, "")...)
	single(p, func(d string) *openfgav1.TupleKey { return openfga.LocationDealerTuple(locationID, d) },
		dealer, stored.String, previous)
	return nil
}

func dealerProviderSet(ctx context.Context, tx *sqldb.Tx, p *plan, dealerID, providerID, previous string) error {
	if dealerID == "" {
		return fmt.Errorf("%w: dealer.monitoring_provider_set without dealer", errBadEvent)
	}
	var stored sql.NullString
	err := tx.QueryRowContext(ctx, `SELECT monitoring_provider_id FROM authzsync_dealers WHERE dealer_id = ?`, dealerID).Scan(&stored)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("authzsync: %w", err)
	}
	if err := exec(ctx, tx, `INSERT INTO authzsync_dealers (dealer_id, monitoring_provider_id) VALUES (?, ?)
		ON CONFLICT (dealer_id) DO UPDATE SET monitoring_provider_id = excluded.monitoring_provider_id`,
		dealerID, nullable(providerID)); err != nil {
		return err
	}
	single(p, func(mp string) *openfgav1.TupleKey { return openfga.DealerProviderTuple(dealerID, mp) },
		providerID, stored.String, previous)
	return nil
}

func employeeLocationRoles(ctx context.Context, tx *sqldb.Tx, p *plan, pl catalog.LocationEmployeeRolesSetPayload) error {
	if pl.LocationID == "" || pl.UserID == "" || pl.CustomerID == "" {
		return fmt.Errorf("%w: location_employee_roles_set without location, customer or user", errBadEvent)
	}
	var err error
	if len(pl.Roles) == 0 {
		err = exec(ctx, tx, `DELETE FROM authzsync_location_roles WHERE location_id = ? AND user_id = ?`, pl.LocationID, pl.UserID)
	} else {
		err = exec(ctx, tx, `INSERT INTO authzsync_location_roles (location_id, user_id, customer_id) VALUES (?, ?, ?)
			ON CONFLICT (location_id, user_id) DO NOTHING`, pl.LocationID, pl.UserID, pl.CustomerID)
	}
	if err != nil {
		return err
	}
	p.setRoles(func(roles []string) []*openfgav1.TupleKey {
		return openfga.EmployeeLocationRoleTuples(pl.LocationID, pl.UserID, roles)
	}, policy.SecuritySystemRoles, pl.Roles)
	return nil
}

func teamMember(ctx context.Context, tx *sqldb.Tx, p *plan, pl catalog.TeamMemberPayload, added bool) error {
	if pl.TeamID == "" || pl.UserID == "" || pl.CustomerID == "" {
		return fmt.Errorf("%w: team member event without team, customer or user", errBadEvent)
	}
	t := openfga.TeamMemberTuple(pl.TeamID, pl.UserID)
	if added {
		p.write(t)
		return exec(ctx, tx, `INSERT INTO authzsync_team_members (team_id, user_id, customer_id) VALUES (?, ?, ?)
			ON CONFLICT (team_id, user_id) DO NOTHING`, pl.TeamID, pl.UserID, pl.CustomerID)
	}
	p.delete(t)
	return exec(ctx, tx, `DELETE FROM authzsync_team_members WHERE team_id = ? AND user_id = ?`, pl.TeamID, pl.UserID)
}

func teamLocationRoles(ctx context.Context, tx *sqldb.Tx, p *plan, pl catalog.LocationTeamRolesSetPayload) error {
	if pl.LocationID == "" || pl.TeamID == "" {
		return fmt.Errorf("%w: location_team_roles_set without location or team", errBadEvent)
	}
	var err error
	if len(pl.Roles) == 0 {
		err = exec(ctx, tx, `DELETE FROM authzsync_team_roles WHERE location_id = ? AND team_id = ?`, pl.LocationID, pl.TeamID)
	} else {
		err = exec(ctx, tx, `INSERT INTO authzsync_team_roles (location_id, team_id, customer_id) VALUES (?, ?, ?)
			ON CONFLICT (location_id, team_id) DO NOTHING`, pl.LocationID, pl.TeamID, pl.CustomerID)
	}
	if err != nil {
		return err
	}
	p.setRoles(func(roles []string) []*openfgav1.TupleKey {
		return openfga.TeamLocationRoleTuples(pl.LocationID, pl.TeamID, roles)
	}, policy.SecuritySystemRoles, pl.Roles)
	return nil
}

// teamDeleted deletes what the sync wrote for the team: its memberships
// and its roles at every location. The Customer Service's events before
// the deletion normally did so already; these deletes catch what one of
// them missed (parked, or applied before the sync recorded team roles),
// and cost nothing when there is nothing left.
func teamDeleted(ctx context.Context, tx *sqldb.Tx, p *plan, teamID string) error {
	if teamID == "" {
		return fmt.Errorf("%w: team_deleted without team", errBadEvent)
	}
	users, err := strings1(ctx, tx, `SELECT user_id FROM authzsync_team_members WHERE team_id = ?`, teamID)
	if err != nil {
		return err
	}
	for _, u := range users {
		p.delete(openfga.TeamMemberTuple(teamID, u))
	}
	locs, err := strings1(ctx, tx, `SELECT location_id FROM authzsync_team_roles WHERE team_id = ?`, teamID)
	if err != nil {
		return err
	}
	for _, loc := range locs {
		p.delete(openfga.TeamLocationRoleTuples(loc, teamID, policy.SecuritySystemRoles)...)
	}
	for _, q := range []string{
		`DELETE FROM authzsync_team_members WHERE team_id = ?`,
		`DELETE FROM authzsync_team_roles WHERE team_id = ?`,
	} {
		if err := exec(ctx, tx, q, teamID); err != nil {
			return err
		}
	}
	return nil
}

// locationDeleted deletes what the sync wrote for the location: its
// customer and dealer tuples and the roles employees and teams held there
// (normally already emptied by the events before the deletion). A
// location is deleted only without security systems, so it has no system
// tuples.
func locationDeleted(ctx context.Context, tx *sqldb.Tx, p *plan, customerID, locationID string) error {
	if locationID == "" {
		return fmt.Errorf("%w: location_deleted without location", errBadEvent)
	}
	var storedCustomer string
	var storedDealer sql.NullString
	err := tx.QueryRowContext(ctx, `SELECT customer_id, dealer_id FROM authzsync_locations WHERE location_id = ?`, locationID).
		Scan(&storedCustomer, &storedDealer)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("authzsync: %w", err)
	}
	// The customer the sync wrote and the one the event names: the same,
	// but a tuple of either must not stay.
	customers := []string{customerID}
	if storedCustomer != customerID {
		customers = append(customers, storedCustomer)
	}
	for _, c := range customers {
		if c != "" {
			p.delete(openfga.LocationTuples(locationID, c, "")...)
		}
	}
	if storedDealer.String != "" {
		p.delete(openfga.LocationDealerTuple(locationID, storedDealer.String))
	}
	users, err := strings1(ctx, tx, `SELECT user_id FROM authzsync_location_roles WHERE location_id = ?`, locationID)
	if err != nil {
		return err
	}
	for _, u := range users {
		p.delete(openfga.EmployeeLocationRoleTuples(locationID, u, policy.SecuritySystemRoles)...)
	}
	teams, err := strings1(ctx, tx, `SELECT team_id FROM authzsync_team_roles WHERE location_id = ?`, locationID)
	if err != nil {
		return err
	}
	for _, team := range teams {
		p.delete(openfga.TeamLocationRoleTuples(locationID, team, policy.SecuritySystemRoles)...)
	}
	for _, q := range []string{
		`DELETE FROM authzsync_locations WHERE location_id = ?`,
		`DELETE FROM authzsync_location_roles WHERE location_id = ?`,
		`DELETE FROM authzsync_team_roles WHERE location_id = ?`,
	} {
		if err := exec(ctx, tx, q, locationID); err != nil {
			return err
		}
	}
	return nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// strings1 runs a query of one text column and returns its values.
func strings1(ctx context.Context, tx *sqldb.Tx, q string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("authzsync: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("authzsync: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
