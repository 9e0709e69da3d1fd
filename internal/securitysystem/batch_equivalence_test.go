package securitysystem_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/catalog"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/policy/policytest"
	"github.com/realguardio/realguardio/internal/securitysystem"
	"github.com/realguardio/realguardio/internal/securitysystem/app"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/authztest"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/provide"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/replicate"
	"github.com/realguardio/realguardio/internal/securitysystem/sstest"
	"github.com/realguardio/realguardio/internal/securitysystem/store"
)

// TestBatchHandlersMatchHandlers checks that the consumers' BatchHandlers
// (the replica's and the resource facts') leave exactly the tables their
// Handlers leave applied one event at a time, on both stores: a generated
// World is built by its events and changed at random, with the sequences a
// batch must get right mixed in (an employee removed and created again, a
// role set then cleared, a dealer created again after its provider was
// set, events naming another user or organization than the row holds, a
// location moved through a dealer no event named, teams and locations
// deleted and created again, and at the end all of them deleted);
// one database applies every event in its own transaction with the
// Handlers, the other applies random slices of the same sequence, each in
// one transaction, with the BatchHandlers; the tables are compared after
// each of several stretches of the sequence.
func TestBatchHandlersMatchHandlers(t *testing.T) {
	seeds := []int64{1, 2, 3, 4}
	if testing.Short() {
		seeds = seeds[:1]
	}
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			for _, seed := range seeds {
				t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
					open := sqldbtest.OpenSQLite
					if name == "postgres" {
						open = sqldbtest.OpenPostgres
					}
					one, batched := open(t, securitysystem.Migrations()...), open(t, securitysystem.Migrations()...)
					checkBatchEquivalence(t, seed, one, batched)
				})
			}
		})
	}
}

func checkBatchEquivalence(t *testing.T, seed int64, one, batched *sqldb.DB) {
	ctx := context.Background()
	rng := rand.New(rand.NewSource(seed))
	w := policytest.Generate(seed, policytest.Small)
	// The records exist before their locations' events, as after a
	// rebuild of facts: the events fill in their facts on both databases.
	for _, db := range []*sqldb.DB{one, batched} {
		st := store.New(db, authztest.DiscardEvents{}, store.WithCreateHook(provide.FillKnownFacts))
		for _, ss := range w.SecuritySystems {
			if err := st.Create(ctx, app.SecuritySystem{ID: ss.ID, Name: "s", LocationID: ss.LocationID, State: app.StateDisarmed, Version: 1}, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	evs := sstest.NewEvents(time.Now().Add(-time.Hour))
	evs.World(w)
	stretches := []int{len(evs.List())}
	for range 3 {
		for range 150 {
			tricky(rng, w, evs)
			prev := w.Clone()
			evs.Change(prev, w.Mutate(rng))
		}
		stretches = append(stretches, len(evs.List()))
	}
	// Last, every location moved to a dealer and deleted (its records
	// keep what the move gave them), now and then created and deleted
	// again, and every team deleted, with nothing created after: the
	// deletions' rows must be gone on both sides.
	for _, l := range w.Locations {
		d := w.Dealers[rng.Intn(len(w.Dealers))].ID
		evs.Typed(catalog.LocationDealerChanged, l.CustomerID, catalog.LocationDealerChangedPayload{CustomerID: l.CustomerID, LocationID: l.ID, DealerID: &d})
		deleted := catalog.LocationDeletedPayload{CustomerID: l.CustomerID, LocationID: l.ID}
		evs.Typed(catalog.LocationDeleted, l.CustomerID, deleted)
		if rng.Intn(3) == 0 {
			// A customer omitted: after the deletion there is none to keep.
			evs.Typed(catalog.LocationDealerChanged, l.CustomerID, catalog.LocationDealerChangedPayload{LocationID: l.ID, DealerID: &d})
			evs.Typed(catalog.LocationDeleted, l.CustomerID, deleted)
		}
	}
	for _, tm := range w.Teams {
		evs.Typed(catalog.TeamDeleted, tm.CustomerID, catalog.TeamDeletedPayload{CustomerID: tm.CustomerID, TeamID: tm.ID})
	}
	stretches = append(stretches, len(evs.List()))
	proj := replicate.NewProjection()
	handle := func(ctx context.Context, tx *sqldb.Tx, ev events.Event) error {
		if err := proj.Handle(ctx, tx, ev); err != nil {
			return err
		}
		return provide.Handle(ctx, tx, ev)
	}
	all := evs.List()
	seen := map[string]bool{}
	from := 0
	for _, to := range stretches {
		sstest.Apply(t, one, handle, all[from:to])
		for i := from; i < to; {
			n := min(1+rng.Intn(80), to-i)
			part := all[i : i+n]
			if err := batched.InTx(ctx, func(tx *sqldb.Tx) error {
				if err := proj.HandleBatch(ctx, tx, part); err != nil {
					return err
				}
				return provide.HandleBatch(ctx, tx, part)
			}); err != nil {
				t.Fatalf("batch of events %d to %d: %v", i, i+n, err)
			}
			i += n
		}
		from = to
		compareTables(t, one, batched, to, seen)
	}
	for _, q := range equivalenceTables {
		if !seen[q] {
			t.Errorf("%s: always empty; the comparison proves nothing", q)
		}
	}
}

// tricky appends, now and then, a sequence a batch must fold correctly.
func tricky(rng *rand.Rand, w *policytest.World, evs *sstest.Events) {
	switch rng.Intn(17) {
	case 0:
		// An employee removed (revoking every role and membership), and
		// sometimes hired again at once with other roles.
		e := w.Employees[rng.Intn(len(w.Employees))]
		o, _ := catalog.OrganizationOfKind(string(e.OrgKind))
		emp := catalog.Employee{OrgID: e.OrgID, EmployeeID: sstest.EmployeeID(e.UserID), UserID: e.UserID}
		evs.Typed(o.EmployeeRemoved, e.OrgID, o.EmployeeRemovedPayload(emp))
		if rng.Intn(2) == 0 {
			evs.Typed(o.EmployeeCreated, e.OrgID, o.EmployeeCreatedPayload(emp, "x@example.com", "F", "L"))
			evs.Typed(o.EmployeeRolesSet, e.OrgID, o.EmployeeRolesSetPayload(emp, []string{"ADMIN"}))
		}
	case 1:
		// A location role set, then cleared.
		if len(w.Locations) == 0 {
			return
		}
		l := w.Locations[rng.Intn(len(w.Locations))]
		u := w.Employees[rng.Intn(len(w.Employees))].UserID
		p := catalog.LocationEmployeeRolesSetPayload{CustomerID: l.CustomerID, LocationID: l.ID, EmployeeID: sstest.EmployeeID(u), UserID: u, Roles: []string{"DISARMER"}}
		evs.Typed(catalog.LocationEmployeeRolesSet, l.CustomerID, p)
		p.Roles = []string{}
		evs.Typed(catalog.LocationEmployeeRolesSet, l.CustomerID, p)
	case 2:
		// A dealer's creation delivered again after its provider was set.
		if len(w.Dealers) == 0 {
			return
		}
		d := w.Dealers[rng.Intn(len(w.Dealers))]
		evs.Typed(catalog.DealerCreated, d.ID, catalog.Dealer.CreatedPayload(d.ID, "d"))
	case 3:
		// A schedule set then cleared, and a team member added then
		// removed.
		e := w.Employees[rng.Intn(len(w.Employees))]
		o, _ := catalog.OrganizationOfKind(string(e.OrgKind))
		emp := catalog.Employee{OrgID: e.OrgID, EmployeeID: sstest.EmployeeID(e.UserID), UserID: e.UserID}
		evs.Typed(o.EmployeeScheduleSet, e.OrgID, o.EmployeeScheduleSetPayload(emp, catalog.ScheduleOf("UTC", []catalog.Shift{})))
		evs.Typed(o.EmployeeScheduleCleared, e.OrgID, o.EmployeeScheduleClearedPayload(emp))
		if len(w.Teams) > 0 {
			tm := w.Teams[rng.Intn(len(w.Teams))]
			p := catalog.TeamMemberPayload{CustomerID: tm.CustomerID, TeamID: tm.ID, EmployeeID: emp.EmployeeID, UserID: e.UserID}
			evs.Typed(catalog.TeamMemberAdded, tm.CustomerID, p)
			evs.Typed(catalog.TeamMemberRemoved, tm.CustomerID, p)
		}
	case 4:
		// Events naming other values than the employee's row holds: each
		// kind of upsert overwrites only its own columns of an existing
		// row (a schedule neither the user nor the organization, roles
		// the user but not the organization).
		e := w.Employees[rng.Intn(len(w.Employees))]
		o, _ := catalog.OrganizationOfKind(string(e.OrgKind))
		other := catalog.Employee{OrgID: "other-" + e.OrgID, EmployeeID: sstest.EmployeeID(e.UserID), UserID: "relinked-" + e.UserID}
		evs.Typed(o.EmployeeScheduleSet, e.OrgID, o.EmployeeScheduleSetPayload(other, catalog.ScheduleOf("UTC", []catalog.Shift{})))
		if rng.Intn(2) == 0 {
			evs.Typed(o.EmployeeRolesSet, e.OrgID, o.EmployeeRolesSetPayload(other, []string{"ADMIN"}))
		}
	case 5:
		// A team deleted with whatever it still holds (as if the events
		// revoking it had been missed), and sometimes created again
		// under the same id with a member and a role at a location.
		if len(w.Teams) == 0 {
			return
		}
		tm := w.Teams[rng.Intn(len(w.Teams))]
		evs.Typed(catalog.TeamDeleted, tm.CustomerID, catalog.TeamDeletedPayload{CustomerID: tm.CustomerID, TeamID: tm.ID})
		if rng.Intn(2) == 0 {
			u := w.Employees[rng.Intn(len(w.Employees))].UserID
			evs.Typed(catalog.TeamCreated, tm.CustomerID, catalog.TeamCreatedPayload{CustomerID: tm.CustomerID, TeamID: tm.ID, Name: "again"})
			evs.Typed(catalog.TeamMemberAdded, tm.CustomerID, catalog.TeamMemberPayload{CustomerID: tm.CustomerID, TeamID: tm.ID, EmployeeID: sstest.EmployeeID(u), UserID: u})
			if len(w.Locations) > 0 {
				l := w.Locations[rng.Intn(len(w.Locations))]
				evs.Typed(catalog.LocationTeamRolesSet, tm.CustomerID, catalog.LocationTeamRolesSetPayload{CustomerID: tm.CustomerID, LocationID: l.ID, TeamID: tm.ID, Roles: []string{"ARMER"}})
			}
		}
	case 7:
		// A location moved to a dealer no event named before, then back:
		// the first move gives the dealer a facts row all the same.
		if len(w.Locations) == 0 {
			return
		}
		l := w.Locations[rng.Intn(len(w.Locations))]
		fresh := fmt.Sprintf("unseen-dealer-%d", rng.Int())
		evs.Typed(catalog.LocationDealerChanged, l.CustomerID, catalog.LocationDealerChangedPayload{CustomerID: l.CustomerID, LocationID: l.ID, DealerID: &fresh})
		evs.Typed(catalog.LocationDealerChanged, l.CustomerID, catalog.LocationDealerChangedPayload{CustomerID: l.CustomerID, LocationID: l.ID, DealerID: ptr(l.DealerID), PreviousDealerID: &fresh})
	case 6:
		// A location deleted, sometimes after its dealer was cleared as
		// the Customer Service does, sometimes with whatever it still
		// holds; and sometimes created again under the same id with
		// another dealer and a role.
		if len(w.Locations) == 0 {
			return
		}
		l := w.Locations[rng.Intn(len(w.Locations))]
		if rng.Intn(2) == 0 {
			evs.Typed(catalog.LocationDealerChanged, l.CustomerID, catalog.LocationDealerChangedPayload{CustomerID: l.CustomerID, LocationID: l.ID, PreviousDealerID: ptr(l.DealerID)})
		}
		evs.Typed(catalog.LocationDeleted, l.CustomerID, catalog.LocationDeletedPayload{CustomerID: l.CustomerID, LocationID: l.ID})
		if rng.Intn(2) == 0 && len(w.Dealers) > 0 {
			d := w.Dealers[rng.Intn(len(w.Dealers))].ID
			u := w.Employees[rng.Intn(len(w.Employees))].UserID
			evs.Typed(catalog.LocationCreated, l.CustomerID, catalog.LocationCreatedPayload{CustomerID: l.CustomerID, LocationID: l.ID, Name: "again", DealerID: &d})
			evs.Typed(catalog.LocationEmployeeRolesSet, l.CustomerID, catalog.LocationEmployeeRolesSetPayload{CustomerID: l.CustomerID, LocationID: l.ID, EmployeeID: sstest.EmployeeID(u), UserID: u, Roles: []string{"VIEWER"}})
		}
	}
}

// ptr is s's address, nil for "" (an absent id).
func ptr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// equivalenceTables are the tables both ways must leave equal, each read
// whole in a fixed order.
var equivalenceTables = []string{
	`SELECT employee_id, org_kind, org_id, user_id, roles, schedule FROM replica_employees ORDER BY employee_id`,
	`SELECT location_id, customer_id, dealer_id FROM replica_locations ORDER BY location_id`,
	`SELECT location_id, employee_id, user_id, roles FROM replica_location_roles ORDER BY location_id, employee_id`,
	`SELECT team_id, employee_id, user_id FROM replica_team_members ORDER BY team_id, employee_id`,
	`SELECT location_id, team_id, roles FROM replica_team_roles ORDER BY location_id, team_id`,
	`SELECT dealer_id, monitoring_provider_id FROM replica_dealers ORDER BY dealer_id`,
	`SELECT location_id, customer_id, dealer_id FROM provide_locations ORDER BY location_id`,
	`SELECT dealer_id, monitoring_provider_id FROM provide_dealers ORDER BY dealer_id`,
	`SELECT id, customer_id, dealer_id, monitoring_provider_id FROM security_systems ORDER BY id`,
}

func compareTables(t *testing.T, one, batched *sqldb.DB, after int, seen map[string]bool) {
	t.Helper()
	for _, q := range equivalenceTables {
		want, got := dumpRows(t, one, q), dumpRows(t, batched, q)
		seen[q] = seen[q] || len(want) > 0
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("after %d events, %s differs:\n one at a time: %v\n batched:       %v", after, q, want, got)
		}
	}
}

// dumpRows reads every row of q as strings, NULL as "NULL".
func dumpRows(t *testing.T, db *sqldb.DB, q string) []string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		fields := make([]string, len(cols))
		for i, v := range vals {
			fields[i] = "NULL"
			if v.Valid {
				fields[i] = v.String
			}
		}
		out = append(out, strings.Join(fields, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
