package securitysystem_test

import (
	"context"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/catalog"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/securitysystem"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/provide"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/replicate"
	"github.com/realguardio/realguardio/internal/securitysystem/sstest"
)

// TestDeletionLeavesNoRows checks that customer.team_deleted and
// customer.location_deleted leave no replica row naming the team or the
// location (nor a resource fact of the location), one event at a time and
// in one batch. The deletions come
// without the events that revoke what the team and the location held
// first (as when one of those was parked), so each table still holds a
// row of them when the deletion arrives; the rows of another team and
// location stay.
func TestDeletionLeavesNoRows(t *testing.T) {
	const customer, dealer = "c1", "d1"
	evs := sstest.NewEvents(time.Now().Add(-time.Hour))
	for _, id := range []string{"team-gone", "team-kept"} {
		evs.Typed(catalog.TeamCreated, customer, catalog.TeamCreatedPayload{CustomerID: customer, TeamID: id, Name: id})
		evs.Typed(catalog.TeamMemberAdded, customer, catalog.TeamMemberPayload{CustomerID: customer, TeamID: id, EmployeeID: "e1", UserID: "u1"})
	}
	for _, id := range []string{"loc-gone", "loc-kept"} {
		d := dealer
		evs.Typed(catalog.LocationCreated, customer, catalog.LocationCreatedPayload{CustomerID: customer, LocationID: id, Name: id, DealerID: &d})
		evs.Typed(catalog.LocationEmployeeRolesSet, customer, catalog.LocationEmployeeRolesSetPayload{CustomerID: customer, LocationID: id, EmployeeID: "e1", UserID: "u1", Roles: []string{"VIEWER"}})
		for _, team := range []string{"team-gone", "team-kept"} {
			evs.Typed(catalog.LocationTeamRolesSet, customer, catalog.LocationTeamRolesSetPayload{CustomerID: customer, LocationID: id, TeamID: team, Roles: []string{"ARMER"}})
		}
	}
	before := len(evs.List())
	evs.Typed(catalog.TeamDeleted, customer, catalog.TeamDeletedPayload{CustomerID: customer, TeamID: "team-gone"})
	evs.Typed(catalog.LocationDeleted, customer, catalog.LocationDeletedPayload{CustomerID: customer, LocationID: "loc-gone"})
	all := evs.List()

	// Each query counts the rows of one table that name the deleted team
	// or location, and of the kept ones.
	gone := []string{
		`SELECT COUNT(*) FROM replica_team_members WHERE team_id = 'team-gone'`,
		`SELECT COUNT(*) FROM replica_team_roles WHERE team_id = 'team-gone'`,
		`SELECT COUNT(*) FROM replica_locations WHERE location_id = 'loc-gone'`,
		`SELECT COUNT(*) FROM replica_location_roles WHERE location_id = 'loc-gone'`,
		`SELECT COUNT(*) FROM replica_team_roles WHERE location_id = 'loc-gone'`,
		`SELECT COUNT(*) FROM provide_locations WHERE location_id = 'loc-gone'`,
	}
	kept := []string{
		`SELECT COUNT(*) FROM replica_team_members WHERE team_id = 'team-kept'`,
		`SELECT COUNT(*) FROM replica_team_roles WHERE team_id = 'team-kept' AND location_id = 'loc-kept'`,
		`SELECT COUNT(*) FROM replica_locations WHERE location_id = 'loc-kept'`,
		`SELECT COUNT(*) FROM replica_location_roles WHERE location_id = 'loc-kept'`,
		`SELECT COUNT(*) FROM provide_locations WHERE location_id = 'loc-kept'`,
	}
	count := func(t *testing.T, db *sqldb.DB, q string) int {
		t.Helper()
		var n int
		if err := db.QueryRowContext(context.Background(), q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	proj := replicate.NewProjection()
	handle := func(ctx context.Context, tx *sqldb.Tx, ev events.Event) error {
		if err := proj.Handle(ctx, tx, ev); err != nil {
			return err
		}
		return provide.Handle(ctx, tx, ev)
	}
	ctx := context.Background()
	for _, way := range []string{"one at a time", "batched"} {
		t.Run(way, func(t *testing.T) {
			db := sqldbtest.OpenSQLite(t, securitysystem.Migrations()...)
			sstest.Apply(t, db, handle, all[:before])
			for _, q := range gone {
				if count(t, db, q) == 0 {
					t.Fatalf("before the deletions: %s is 0; the test proves nothing", q)
				}
			}
			if way == "one at a time" {
				sstest.Apply(t, db, handle, all[before:])
			} else if err := db.InTx(ctx, func(tx *sqldb.Tx) error {
				if err := proj.HandleBatch(ctx, tx, all[before:]); err != nil {
					return err
				}
				return provide.HandleBatch(ctx, tx, all[before:])
			}); err != nil {
				t.Fatal(err)
			}
			for _, q := range gone {
				if n := count(t, db, q); n != 0 {
					t.Errorf("after the deletions: %s = %d, want 0", q, n)
				}
			}
			for _, q := range kept {
				if count(t, db, q) == 0 {
					t.Errorf("after the deletions: %s = 0: a row of another team or location went", q)
				}
			}
		})
	}
}
