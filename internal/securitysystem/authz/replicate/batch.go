package replicate

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/catalog"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// HandleBatch is the consumer's BatchHandler: it applies evs, the events of
// one batch in stream order, in tx with a few multi-row statements per
// table instead of Handle's few statements per event, which is what makes
// a rebuild from a million events take a minute or two.
//
// It leaves exactly the state Handle applied to each event in turn leaves
// (TestBatchHandlersMatchHandlers compares them on random event
// sequences): the events are first folded, in order, into the net change
// of every row they touch (the last write of a key wins; a roles set
// emptied deletes the row, a later set writes it again; an employee's
// removal deletes their rows in three tables, and only what follows it
// survives; a team's or a location's deletion likewise), then the net
// changes are written with the removals first.
// An unreadable payload is an error: the consumer then applies the batch
// one event at a time, and Handle reports the event at fault.
func (p *Projection) HandleBatch(ctx context.Context, tx *sqldb.Tx, evs []events.Event) error {
	var b replicaBatch
	b.init()
	for _, ev := range evs {
		if err := b.add(ev); err != nil {
			return fmt.Errorf("replica: payload of %s %s: %w", ev.Type, ev.ID, err)
		}
	}
	if err := b.write(ctx, tx); err != nil {
		return fmt.Errorf("replica: apply a batch of %d events: %w", len(evs), err)
	}
	return nil
}

// pairKey is the primary key of the replica's two-column tables.
type pairKey struct{ a, b string }

// The columns of replica_employees an event's upsert overwrites when the
// row exists (its ON CONFLICT clause); the insert writes them all.
const (
	colOrg      = 1 << iota // org_kind and org_id
	colUser                 // user_id
	colRoles                // roles
	colSchedule             // schedule
)

// employeeRow is the net upsert of one employee: the row an insert writes
// when the employee has no row yet, and which columns overwrite an
// existing row. Folding an event in overwrites the columns the event's own
// upsert overwrites; the columns of the first event's insert stay for the
// rest. Both cases then equal the events' upserts run one after another:
// the insert path is the first insert followed by the later updates, the
// update path the existing row with each updated column at its last value.
type employeeRow struct {
	kind, org, user, roles string
	schedule               any // nil or the schedule's JSON
	cols                   int
}

// replicaBatch is the net change of a batch to the replica tables.
type replicaBatch struct {
	locations     map[string][2]any // location → customer, dealer (nil when none)
	dealerEnsured map[string]bool   // dealers created: a row with no provider unless one exists
	dealerSet     map[string]any    // dealer → provider set (nil when none)
	removed       map[string]bool   // employees removed: their rows deleted in three tables first
	teamsGone     map[string]bool   // teams deleted: their rows deleted in two tables first
	locationsGone map[string]bool   // locations deleted: their rows deleted in three tables first
	employees     map[string]*employeeRow
	locationRoles map[pairKey]*[2]string // (location, employee) → user, roles; nil deletes
	teamMembers   map[pairKey]*string    // (team, employee) → user; nil deletes
	teamRoles     map[pairKey]*string    // (location, team) → roles; nil deletes
}

func (b *replicaBatch) init() {
	b.locations = map[string][2]any{}
	b.dealerEnsured = map[string]bool{}
	b.dealerSet = map[string]any{}
	b.removed = map[string]bool{}
	b.teamsGone = map[string]bool{}
	b.locationsGone = map[string]bool{}
	b.employees = map[string]*employeeRow{}
	b.locationRoles = map[pairKey]*[2]string{}
	b.teamMembers = map[pairKey]*string{}
	b.teamRoles = map[pairKey]*string{}
}

// add folds ev into the batch; it reads the same payloads as stepOf.
func (b *replicaBatch) add(ev events.Event) error {
	t := catalog.Type(ev.Type)
	if org, ok := catalog.OrganizationOf(t); ok && org.IsEmployeeEvent(t) {
		return b.addEmployee(org, t, ev.Payload)
	}
	switch t {
	case catalog.LocationCreated:
		p, err := catalog.DecodePayload[catalog.LocationCreatedPayload](ev.Payload)
		if err != nil {
			return err
		}
		b.locations[p.LocationID] = [2]any{p.CustomerID, nullable(p.DealerID)}
	case catalog.LocationDealerChanged:
		p, err := catalog.DecodePayload[catalog.LocationDealerChangedPayload](ev.Payload)
		if err != nil {
			return err
		}
		b.locations[p.LocationID] = [2]any{p.CustomerID, nullable(p.DealerID)}
	case catalog.LocationEmployeeRolesSet:
		p, err := catalog.DecodePayload[catalog.LocationEmployeeRolesSetPayload](ev.Payload)
		if err != nil {
			return err
		}
		k := pairKey{p.LocationID, p.EmployeeID}
		if len(p.Roles) == 0 {
			b.locationRoles[k] = nil
			return nil
		}
		roles, err := rolesJSON(p.Roles)
		if err != nil {
			return err
		}
		b.locationRoles[k] = &[2]string{p.UserID, roles}
	case catalog.TeamMemberAdded:
		p, err := catalog.DecodePayload[catalog.TeamMemberPayload](ev.Payload)
		if err != nil {
			return err
		}
		user := p.UserID
		b.teamMembers[pairKey{p.TeamID, p.EmployeeID}] = &user
	case catalog.TeamMemberRemoved:
		p, err := catalog.DecodePayload[catalog.TeamMemberPayload](ev.Payload)
		if err != nil {
			return err
		}
		b.teamMembers[pairKey{p.TeamID, p.EmployeeID}] = nil
	case catalog.LocationTeamRolesSet:
		p, err := catalog.DecodePayload[catalog.LocationTeamRolesSetPayload](ev.Payload)
		if err != nil {
			return err
		}
		k := pairKey{p.LocationID, p.TeamID}
		if len(p.Roles) == 0 {
			b.teamRoles[k] = nil
			return nil
		}
		roles, err := rolesJSON(p.Roles)
		if err != nil {
			return err
		}
		b.teamRoles[k] = &roles
	case catalog.TeamDeleted:
		p, err := catalog.DecodePayload[catalog.TeamDeletedPayload](ev.Payload)
		if err != nil {
			return err
		}
		// As for a removed employee: what the batch wrote for the team
		// before goes with the rows it had before the batch, and only
		// what follows (the id created again) is written.
		b.teamsGone[p.TeamID] = true
		deleteKeys(b.teamMembers, func(k pairKey) bool { return k.a == p.TeamID })
		deleteKeys(b.teamRoles, func(k pairKey) bool { return k.b == p.TeamID })
	case catalog.LocationDeleted:
		p, err := catalog.DecodePayload[catalog.LocationDeletedPayload](ev.Payload)
		if err != nil {
			return err
		}
		b.locationsGone[p.LocationID] = true
		delete(b.locations, p.LocationID)
		deleteKeys(b.locationRoles, func(k pairKey) bool { return k.a == p.LocationID })
		deleteKeys(b.teamRoles, func(k pairKey) bool { return k.a == p.LocationID })
	case catalog.DealerCreated:
		p, err := catalog.DecodePayload[catalog.DealerCreatedPayload](ev.Payload)
		if err != nil {
			return err
		}
		if _, set := b.dealerSet[p.DealerID]; !set {
			b.dealerEnsured[p.DealerID] = true
		}
	case catalog.DealerMonitoringProviderSet:
		p, err := catalog.DecodePayload[catalog.DealerMonitoringProviderSetPayload](ev.Payload)
		if err != nil {
			return err
		}
		b.dealerSet[p.DealerID] = nullable(p.MonitoringProviderID)
		delete(b.dealerEnsured, p.DealerID)
	}
	return nil
}

// addEmployee folds an employee event in, as employeeStep applies it.
func (b *replicaBatch) addEmployee(org catalog.Organization, t catalog.Type, payload []byte) error {
	var e catalog.Employee
	var row employeeRow
	switch t {
	case org.EmployeeCreated:
		var err error
		if e, err = org.DecodeEmployee(t, payload); err != nil {
			return err
		}
		row = employeeRow{roles: "[]", cols: colOrg | colUser}
	case org.EmployeeRemoved:
		var err error
		if e, err = org.DecodeEmployee(t, payload); err != nil {
			return err
		}
		// What the batch wrote for the employee before is deleted with
		// the rows the employee had before the batch.
		b.removed[e.EmployeeID] = true
		delete(b.employees, e.EmployeeID)
		deleteKeys(b.locationRoles, func(k pairKey) bool { return k.b == e.EmployeeID })
		deleteKeys(b.teamMembers, func(k pairKey) bool { return k.b == e.EmployeeID })
		return nil
	case org.EmployeeRolesSet:
		var roleSet []string
		var err error
		if e, roleSet, err = org.DecodeEmployeeRolesSet(payload); err != nil {
			return err
		}
		roles, err := rolesJSON(roleSet)
		if err != nil {
			return err
		}
		row = employeeRow{roles: roles, cols: colRoles | colUser}
	case org.EmployeeScheduleSet, org.EmployeeScheduleCleared:
		var sch *catalog.Schedule
		var err error
		if t == org.EmployeeScheduleSet {
			e, sch, err = org.DecodeEmployeeScheduleSet(payload)
		} else {
			e, err = org.DecodeEmployee(t, payload)
		}
		if err != nil {
			return err
		}
		row = employeeRow{roles: "[]", cols: colSchedule}
		if sch != nil {
			s, err := json.Marshal(sch)
			if err != nil {
				return err
			}
			row.schedule = string(s)
		}
	default:
		return nil
	}
	row.kind, row.org, row.user = org.Kind, e.OrgID, e.UserID
	cur, ok := b.employees[e.EmployeeID]
	if !ok {
		b.employees[e.EmployeeID] = &row
		return nil
	}
	if row.cols&colOrg != 0 {
		cur.kind, cur.org = row.kind, row.org
	}
	if row.cols&colUser != 0 {
		cur.user = row.user
	}
	if row.cols&colRoles != 0 {
		cur.roles = row.roles
	}
	if row.cols&colSchedule != 0 {
		cur.schedule = row.schedule
	}
	cur.cols |= row.cols
	return nil
}

// rowsPerStatement bounds the rows of one multi-row statement (and so its
// parameters, at most six a row): far below both engines' limits, and a
// bounded statement keeps plans cacheable.
const rowsPerStatement = 200

// write runs the net change: removals first (an employee's removal, a
// team's or a location's deletion, then emptied role sets and removed
// memberships; deletions all, so their order does not matter), then the
// upserts, which only carry what followed any removal of their key.
func (b *replicaBatch) write(ctx context.Context, tx *sqldb.Tx) error {
	removed := sortedKeys(b.removed)
	for _, t := range []string{"replica_employees", "replica_location_roles", "replica_team_members"} {
		if err := execIn(ctx, tx, `DELETE FROM `+t+` WHERE employee_id IN `, removed); err != nil {
			return err
		}
	}
	teams := sortedKeys(b.teamsGone)
	for _, t := range []string{"replica_team_members", "replica_team_roles"} {
		if err := execIn(ctx, tx, `DELETE FROM `+t+` WHERE team_id IN `, teams); err != nil {
			return err
		}
	}
	locations := sortedKeys(b.locationsGone)
	for _, t := range []string{"replica_locations", "replica_location_roles", "replica_team_roles"} {
		if err := execIn(ctx, tx, `DELETE FROM `+t+` WHERE location_id IN `, locations); err != nil {
			return err
		}
	}
	if err := deletePairs(ctx, tx, `DELETE FROM replica_location_roles WHERE (location_id, employee_id) IN `, nilKeys(b.locationRoles)); err != nil {
		return err
	}
	if err := deletePairs(ctx, tx, `DELETE FROM replica_team_members WHERE (team_id, employee_id) IN `, nilKeys(b.teamMembers)); err != nil {
		return err
	}
	if err := deletePairs(ctx, tx, `DELETE FROM replica_team_roles WHERE (location_id, team_id) IN `, nilKeys(b.teamRoles)); err != nil {
		return err
	}

	var rows [][]any
	for _, id := range sortedKeys(b.locations) {
		l := b.locations[id]
		rows = append(rows, []any{id, l[0], l[1]})
	}
	if err := sqldb.ExecRows(ctx, tx, `INSERT INTO replica_locations (location_id, customer_id, dealer_id) VALUES `, rows,
		` ON CONFLICT (location_id) DO UPDATE SET customer_id = excluded.customer_id, dealer_id = excluded.dealer_id`); err != nil {
		return err
	}
	rows = rows[:0]
	for _, id := range sortedKeys(b.dealerSet) {
		rows = append(rows, []any{id, b.dealerSet[id]})
	}
	if err := sqldb.ExecRows(ctx, tx, `INSERT INTO replica_dealers (dealer_id, monitoring_provider_id) VALUES `, rows,
		` ON CONFLICT (dealer_id) DO UPDATE SET monitoring_provider_id = excluded.monitoring_provider_id`); err != nil {
		return err
	}
	rows = rows[:0]
	for _, id := range sortedKeys(b.dealerEnsured) {
		rows = append(rows, []any{id, nil})
	}
	if err := sqldb.ExecRows(ctx, tx, `INSERT INTO replica_dealers (dealer_id, monitoring_provider_id) VALUES `, rows,
		` ON CONFLICT (dealer_id) DO NOTHING`); err != nil {
		return err
	}
	if err := b.writeEmployees(ctx, tx); err != nil {
		return err
	}
	rows = rows[:0]
	for _, k := range setKeys(b.locationRoles) {
		v := b.locationRoles[k]
		rows = append(rows, []any{k.a, k.b, v[0], v[1]})
	}
	if err := sqldb.ExecRows(ctx, tx, `INSERT INTO replica_location_roles (location_id, employee_id, user_id, roles) VALUES `, rows,
		` ON CONFLICT (location_id, employee_id) DO UPDATE SET roles = excluded.roles, user_id = excluded.user_id`); err != nil {
		return err
	}
	rows = rows[:0]
	for _, k := range setKeys(b.teamMembers) {
		rows = append(rows, []any{k.a, k.b, *b.teamMembers[k]})
	}
	if err := sqldb.ExecRows(ctx, tx, `INSERT INTO replica_team_members (team_id, employee_id, user_id) VALUES `, rows,
		` ON CONFLICT (team_id, employee_id) DO UPDATE SET user_id = excluded.user_id`); err != nil {
		return err
	}
	rows = rows[:0]
	for _, k := range setKeys(b.teamRoles) {
		rows = append(rows, []any{k.a, k.b, *b.teamRoles[k]})
	}
	return sqldb.ExecRows(ctx, tx, `INSERT INTO replica_team_roles (location_id, team_id, roles) VALUES `, rows,
		` ON CONFLICT (location_id, team_id) DO UPDATE SET roles = excluded.roles`)
}

// writeEmployees upserts the employees, one statement per set of columns
// an existing row takes (a handful: which kinds of event the batch held
// for the employee).
func (b *replicaBatch) writeEmployees(ctx context.Context, tx *sqldb.Tx) error {
	byCols := map[int][][]any{}
	for _, id := range sortedKeys(b.employees) {
		e := b.employees[id]
		byCols[e.cols] = append(byCols[e.cols], []any{id, e.kind, e.org, e.user, e.roles, e.schedule})
	}
	for _, cols := range sortedKeys(byCols) {
		var set []string
		if cols&colOrg != 0 {
			set = append(set, `org_kind = excluded.org_kind`, `org_id = excluded.org_id`)
		}
		if cols&colUser != 0 {
			set = append(set, `user_id = excluded.user_id`)
		}
		if cols&colRoles != 0 {
			set = append(set, `roles = excluded.roles`)
		}
		if cols&colSchedule != 0 {
			set = append(set, `schedule = excluded.schedule`)
		}
		if err := sqldb.ExecRows(ctx, tx, `INSERT INTO replica_employees (employee_id, org_kind, org_id, user_id, roles, schedule) VALUES `, byCols[cols],
			` ON CONFLICT (employee_id) DO UPDATE SET `+strings.Join(set, ", ")); err != nil {
			return err
		}
	}
	return nil
}

// execIn runs head followed by an IN list of ids, in bounded statements.
func execIn(ctx context.Context, tx *sqldb.Tx, head string, ids []string) error {
	for start := 0; start < len(ids); start += rowsPerStatement {
		part := ids[start:min(start+rowsPerStatement, len(ids))]
		args := make([]any, len(part))
		for i, id := range part {
			args[i] = id
		}
		if _, err := tx.ExecContext(ctx, head+`(`+placeholders(len(part))+`)`, args...); err != nil {
			return err
		}
	}
	return nil
}

// deletePairs runs head followed by a VALUES list of the keys (a row value
// IN list, which both engines match on the primary key).
func deletePairs(ctx context.Context, tx *sqldb.Tx, head string, keys []pairKey) error {
	for start := 0; start < len(keys); start += rowsPerStatement {
		part := keys[start:min(start+rowsPerStatement, len(keys))]
		var q strings.Builder
		q.WriteString(head)
		q.WriteString(`(VALUES `)
		args := make([]any, 0, 2*len(part))
		for i, k := range part {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?)")
			args = append(args, k.a, k.b)
		}
		q.WriteString(`)`)
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

// sortedKeys returns m's keys in order: statements then write rows in key
// order, so two transactions never take the same rows' locks in opposite
// orders.
func sortedKeys[K interface{ ~string | ~int }, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func comparePairs(x, y pairKey) int {
	if c := strings.Compare(x.a, y.a); c != 0 {
		return c
	}
	return strings.Compare(x.b, y.b)
}

// deleteKeys deletes from m the keys gone reports.
func deleteKeys[V any](m map[pairKey]*V, gone func(pairKey) bool) {
	for k := range m {
		if gone(k) {
			delete(m, k)
		}
	}
}

// nilKeys returns, in order, the keys whose net change is a deletion.
func nilKeys[V any](m map[pairKey]*V) []pairKey {
	var out []pairKey
	for k, v := range m {
		if v == nil {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, comparePairs)
	return out
}

// setKeys returns, in order, the keys whose net change is a write.
func setKeys[V any](m map[pairKey]*V) []pairKey {
	var out []pairKey
	for k, v := range m {
		if v != nil {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, comparePairs)
	return out
}

// placeholders returns n comma-separated bind markers.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}
