package store_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/customer/app"
	"github.com/realguardio/realguardio/internal/customer/store"
	"github.com/realguardio/realguardio/internal/orgkit/paging"
	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestStore(t *testing.T) {
	sqldbtest.ForEachStore(t, []sqldb.Migrations{store.Migrations()}, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := store.Store{}
		cust, other := uuid.NewString(), uuid.NewString()
		dealer := uuid.NewString()
		e1, e2 := uuid.NewString(), uuid.NewString()

		// Dealer replica: upsert is idempotent and keeps the latest name.
		if ok, err := s.DealerExists(ctx, db, dealer); err != nil || ok {
			t.Fatalf("DealerExists before = %v, %v", ok, err)
		}
		must(t, s.UpsertDealer(ctx, db, dealer, "D1"))
		must(t, s.UpsertDealer(ctx, db, dealer, "D1 renamed"))
		if ok, err := s.DealerExists(ctx, db, dealer); err != nil || !ok {
			t.Fatalf("DealerExists after = %v, %v", ok, err)
		}

		// Locations.
		l1 := app.Location{ID: uuid.NewString(), CustomerID: cust, Name: "B", DealerID: dealer}
		l2 := app.Location{ID: uuid.NewString(), CustomerID: cust, Name: "A"}
		l3 := app.Location{ID: uuid.NewString(), CustomerID: other, Name: "X"}
		for _, l := range []app.Location{l1, l2, l3} {
			must(t, s.InsertLocation(ctx, db, l))
		}
		got, err := s.Location(ctx, db, l1.ID)
		if err != nil || got != l1 {
			t.Fatalf("Location = %+v, %v; want %+v", got, err, l1)
		}
		if _, err := s.Location(ctx, db, uuid.NewString()); !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("unknown location: %v, want NotFound", err)
		}
		locs, err := s.LocationsPage(ctx, db, cust, paging.Request{Limit: 10})
		if err != nil || len(locs) != 2 || locs[0].ID != l2.ID || locs[1].ID != l1.ID {
			t.Fatalf("Locations = %+v, %v; want [A B]", locs, err)
		}
		must(t, s.SetLocationDealer(ctx, db, l1.ID, ""))
		must(t, s.SetLocationDealer(ctx, db, l2.ID, dealer))
		facts, err := s.LocationFacts(ctx, db, []string{l2.ID, uuid.NewString(), l1.ID, l3.ID})
		want := []app.LocationFacts{
			{LocationID: l2.ID, CustomerID: cust, DealerID: dealer},
			{LocationID: l1.ID, CustomerID: cust},
			{LocationID: l3.ID, CustomerID: other},
		}
		if err != nil || !reflect.DeepEqual(facts, want) {
			t.Fatalf("LocationFacts = %+v, %v; want %+v", facts, err, want)
		}

		// Teams and members.
		t1 := app.Team{ID: uuid.NewString(), CustomerID: cust, Name: "Night"}
		must(t, s.InsertTeam(ctx, db, t1))
		if tt, err := s.Team(ctx, db, t1.ID); err != nil || tt != t1 {
			t.Fatalf("Team = %+v, %v", tt, err)
		}
		if _, err := s.Team(ctx, db, uuid.NewString()); !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("unknown team: %v", err)
		}
		if added, err := s.AddMember(ctx, db, cust, t1.ID, e2, "u-"+e2); err != nil || !added {
			t.Fatalf("AddMember = %v, %v", added, err)
		}
		if added, err := s.AddMember(ctx, db, cust, t1.ID, e2, "u-"+e2); err != nil || added {
			t.Fatalf("AddMember again = %v, %v; want false", added, err)
		}
		members, err := s.TeamMembers(ctx, db, []string{t1.ID, uuid.NewString()})
		if err != nil || !reflect.DeepEqual(members, map[string][]string{t1.ID: {e2}}) {
			t.Fatalf("TeamMembers = %v, %v", members, err)
		}
		if teams, err := s.TeamsOfEmployee(ctx, db, e2); err != nil || len(teams) != 1 || teams[0] != t1 {
			t.Fatalf("TeamsOfEmployee = %v, %v", teams, err)
		}

		// Location roles, direct and through teams, merged.
		must(t, s.SetEmployeeLocationRoles(ctx, db, cust, l1.ID, e1, "u-"+e1, []string{"SECURITY_SYSTEM_ARMER", "SECURITY_SYSTEM_VIEWER"}))
		must(t, s.SetEmployeeLocationRoles(ctx, db, cust, l1.ID, e2, "u-"+e2, []string{"SECURITY_SYSTEM_VIEWER"}))
		must(t, s.SetTeamLocationRoles(ctx, db, cust, l1.ID, t1.ID, []string{"SECURITY_SYSTEM_DISARMER", "SECURITY_SYSTEM_VIEWER"}))
		must(t, s.SetTeamLocationRoles(ctx, db, cust, l2.ID, t1.ID, []string{"SECURITY_SYSTEM_ARMER"}))
		eff, err := s.EffectiveLocationRoles(ctx, db, e2)
		wantEff := map[string][]string{
			l1.ID: {"SECURITY_SYSTEM_DISARMER", "SECURITY_SYSTEM_VIEWER"},
			l2.ID: {"SECURITY_SYSTEM_ARMER"},
		}
		if err != nil || !reflect.DeepEqual(eff, wantEff) {
			t.Fatalf("EffectiveLocationRoles = %v, %v; want %v", eff, err, wantEff)
		}
		direct, err := s.DirectLocationRoles(ctx, db, e2)
		if err != nil || !reflect.DeepEqual(direct, map[string][]string{l1.ID: {"SECURITY_SYSTEM_VIEWER"}}) {
			t.Fatalf("DirectLocationRoles = %v, %v", direct, err)
		}
		byLoc, err := s.EmployeeRolesAt(ctx, db, []string{l1.ID, l2.ID})
		if err != nil || len(byLoc[l1.ID]) != 2 || len(byLoc) != 1 {
			t.Fatalf("EmployeeRolesAt = %v, %v", byLoc, err)
		}
		teamByLoc, err := s.TeamRolesAt(ctx, db, []string{l2.ID})
		if err != nil || len(teamByLoc) != 1 || !reflect.DeepEqual(teamByLoc[l2.ID], []app.RoleGrant{{HolderID: t1.ID, Roles: []string{"SECURITY_SYSTEM_ARMER"}}}) {
			t.Fatalf("TeamRolesAt = %v, %v", teamByLoc, err)
		}
		byTeam, err := s.TeamLocationRoles(ctx, db, []string{t1.ID, "00000000-0000-0000-0000-00000000dead"})
		wantByTeam := map[string]map[string][]string{t1.ID: {l1.ID: {"SECURITY_SYSTEM_DISARMER", "SECURITY_SYSTEM_VIEWER"}, l2.ID: {"SECURITY_SYSTEM_ARMER"}}}
		if err != nil || !reflect.DeepEqual(byTeam, wantByTeam) {
			t.Fatalf("TeamLocationRoles = %v, %v; want %v", byTeam, err, wantByTeam)
		}
		if none, err := s.TeamLocationRoles(ctx, db, nil); err != nil || len(none) != 0 {
			t.Fatalf("TeamLocationRoles of no team = %v, %v", none, err)
		}

		// Replacing with [] revokes; leaving the team removes team roles.
		must(t, s.SetEmployeeLocationRoles(ctx, db, cust, l1.ID, e2, "u-"+e2, nil))
		if removed, err := s.RemoveMember(ctx, db, t1.ID, e2); err != nil || !removed {
			t.Fatalf("RemoveMember = %v, %v", removed, err)
		}
		if removed, err := s.RemoveMember(ctx, db, t1.ID, e2); err != nil || removed {
			t.Fatalf("RemoveMember again = %v, %v; want false", removed, err)
		}
		if eff, err := s.EffectiveLocationRoles(ctx, db, e2); err != nil || len(eff) != 0 {
			t.Fatalf("EffectiveLocationRoles after revocation = %v, %v", eff, err)
		}

		// Transactions roll back every write of the store.
		must(t, func() error {
			err := db.InTx(ctx, func(tx *sqldb.Tx) error {
				must(t, s.SetEmployeeLocationRoles(ctx, tx, cust, l2.ID, e1, "u-"+e1, []string{"SECURITY_SYSTEM_ARMER"}))
				return apperr.New(apperr.Conflict, "roll back")
			})
			if !apperr.Is(err, apperr.Conflict) {
				return err
			}
			return nil
		}())
		if d, _ := s.DirectLocationRoles(ctx, db, e1); len(d) != 1 {
			t.Fatalf("rolled back write is visible: %v", d)
		}

		// Profiles.
		if _, ok, err := s.Profile(ctx, db, "u1"); err != nil || ok {
			t.Fatalf("Profile before = %v, %v", ok, err)
		}
		p := app.Profile{UserID: "u1", FirstName: "Ann", LastName: "Lee", PhoneNumber: "+4930123456"}
		must(t, s.PutProfile(ctx, db, p))
		p.PhoneNumber = ""
		must(t, s.PutProfile(ctx, db, p))
		if got, ok, err := s.Profile(ctx, db, "u1"); err != nil || !ok || got != p {
			t.Fatalf("Profile = %+v, %v, %v; want %+v", got, ok, err, p)
		}
	})
}
