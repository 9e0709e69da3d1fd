package app_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/customer/app"
	"github.com/realguardio/realguardio/internal/customer/store"
	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/principal"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

func TestValidatePhoneNumber(t *testing.T) {
	for _, ok := range []string{"", "  ", "+14155550123", "+49 30 1234567", "(030) 123-4567", "0301234567"} {
		if _, err := app.ValidatePhoneNumber(ok); err != nil {
			t.Errorf("ValidatePhoneNumber(%q) = %v; want ok", ok, err)
		}
	}
	for _, bad := range []string{"call me", "+12", "+1234567890123456", "++4930123456", "12345x67", "+49 30 1234567 ext 5"} {
		err := apperr.As(func() error { _, err := app.ValidatePhoneNumber(bad); return err }())
		if err == nil || err.Code != apperr.Invalid || err.Field != "phoneNumber" {
			t.Errorf("ValidatePhoneNumber(%q) = %v; want Invalid phoneNumber", bad, err)
		}
	}
}

func TestValidateNameAndRoles(t *testing.T) {
	if n, err := app.ValidateName("name", "  HQ  "); err != nil || n != "HQ" {
		t.Fatalf("ValidateName = %q, %v", n, err)
	}
	if _, err := app.ValidateName("name", strings.Repeat("ä", app.MaxNameLength)); err != nil {
		t.Fatalf("200 characters refused: %v", err)
	}
	if _, err := app.ValidateName("name", strings.Repeat("a", app.MaxNameLength+1)); !apperr.Is(err, apperr.Invalid) {
		t.Fatalf("201 characters accepted: %v", err)
	}
	roles, err := app.ValidateLocationRoles([]string{"SECURITY_SYSTEM_VIEWER", "SECURITY_SYSTEM_ARMER", "SECURITY_SYSTEM_VIEWER"})
	if err != nil || !reflect.DeepEqual(roles, []string{"SECURITY_SYSTEM_ARMER", "SECURITY_SYSTEM_VIEWER"}) {
		t.Fatalf("ValidateLocationRoles = %v, %v", roles, err)
	}
	if roles, err := app.ValidateLocationRoles([]string{}); err != nil || roles == nil || len(roles) != 0 {
		t.Fatalf("[] = %v, %v; want an empty, non-nil set", roles, err)
	}
	if _, err := app.ValidateLocationRoles(nil); apperr.As(err) == nil || apperr.As(err).Field != "roles" {
		t.Fatalf("missing roles: %v", err)
	}
	if _, err := app.ValidateLocationRoles([]string{"SECURITY_SYSTEM_ARMER", "CUSTOMER_EMPLOYEE_ADMINISTRATOR"}); apperr.As(err) == nil || apperr.As(err).Field != "roles[1]" {
		t.Fatalf("organization role at a location: %v", err)
	}
	if _, err := app.ValidateID("dealerId", strings.ToUpper(uuid.NewString())); err != nil {
		t.Fatalf("upper-case UUID refused: %v", err)
	}
	if _, err := app.ValidateID("dealerId", "{"+uuid.NewString()+"}"); !apperr.Is(err, apperr.Invalid) {
		t.Fatalf("braced UUID accepted: %v", err)
	}
}

// fakeOrg is an organization kit with a fixed set of active employees and
// administrators.
type fakeOrg struct {
	employees map[string]app.Employee // by employee id
	admins    map[string]bool         // user ids
}

func (f *fakeOrg) RequireAdministrator(_ context.Context, _ sqldb.Querier, c *principal.Caller, customerID string) error {
	for _, e := range f.employees {
		if e.UserID == c.Subject && e.CustomerID == customerID && f.admins[e.UserID] {
			return nil
		}
	}
	return apperr.Denied("no_role", "not an administrator")
}

func (f *fakeOrg) AuthorizeReader(context.Context, sqldb.Querier, *principal.Caller, string) error {
	return nil
}

func (f *fakeOrg) Employee(_ context.Context, _ sqldb.Querier, customerID, employeeID string) (app.Employee, error) {
	e, ok := f.employees[employeeID]
	if !ok || e.CustomerID != customerID {
		return app.Employee{}, apperr.New(apperr.NotFound, "employee not found")
	}
	return e, nil
}

func (f *fakeOrg) ActiveEmployees(_ context.Context, _ sqldb.Querier, customerID string, ids []string) (map[string]app.Employee, error) {
	out := map[string]app.Employee{}
	for _, id := range ids {
		if e, ok := f.employees[id]; ok && e.CustomerID == customerID && e.Active {
			out[id] = e
		}
	}
	return out, nil
}

func (f *fakeOrg) EmployeeByUser(_ context.Context, _ sqldb.Querier, userID string) (app.Employee, error) {
	for _, e := range f.employees {
		if e.UserID == userID {
			return e, nil
		}
	}
	return app.Employee{}, apperr.New(apperr.NotFound, "employee not found")
}

type recorded struct {
	Type    string
	Payload string
}

// TestRevokeEmployee checks the revocation the kit runs inside an
// employee's removal: the removed employee's location roles and team
// memberships are revoked with their events, other employees' grants are
// kept, and running it again finds nothing to revoke.
func TestRevokeEmployee(t *testing.T) {
	db := sqldbtest.OpenSQLite(t, store.Migrations())
	ctx := context.Background()
	cust := uuid.NewString()
	admin := app.Employee{ID: uuid.NewString(), CustomerID: cust, UserID: uuid.NewString(), Active: true}
	stays := app.Employee{ID: uuid.NewString(), CustomerID: cust, UserID: uuid.NewString(), Active: true}
	leaves := app.Employee{ID: uuid.NewString(), CustomerID: cust, UserID: uuid.NewString(), Active: true}
	org := &fakeOrg{employees: map[string]app.Employee{admin.ID: admin, stays.ID: stays, leaves.ID: leaves}, admins: map[string]bool{admin.UserID: true}}
	var evs []recorded
	units := store.Transactor{DB: db, Org: org, Outbox: store.OutboxFunc(func(_ context.Context, _ *sqldb.Tx, aggType, aggID, typ string, p any) error {
		b, _ := json.Marshal(p)
		evs = append(evs, recorded{typ, string(b)})
		return nil
	})}
	svc := &app.Service{Store: units}
	caller := &principal.Caller{Subject: admin.UserID, Roles: []string{principal.RoleCustomerEmployee}}
	loc, err := svc.CreateLocation(ctx, caller, cust, "L", "")
	if err != nil {
		t.Fatal(err)
	}
	team, err := svc.CreateTeam(ctx, caller, cust, "T")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []app.Employee{stays, leaves} {
		if _, err := svc.SetEmployeeLocationRoles(ctx, caller, cust, loc.ID, e.ID, []string{"SECURITY_SYSTEM_ARMER"}); err != nil {
			t.Fatal(err)
		}
		if err := svc.AddTeamMember(ctx, caller, cust, team.ID, e.ID); err != nil {
			t.Fatal(err)
		}
	}
	delete(org.employees, leaves.ID) // removed by the kit
	evs = nil
	revoke := func() {
		t.Helper()
		if err := db.InTx(ctx, func(tx *sqldb.Tx) error { return svc.RevokeEmployee(ctx, units.Bind(tx), leaves) }); err != nil {
			t.Fatal(err)
		}
	}
	revoke()
	want := []recorded{
		{app.EventLocationEmployeeRolesSet, `{"customerId":"` + cust + `","locationId":"` + loc.ID + `","employeeId":"` + leaves.ID + `","userId":"` + leaves.UserID + `","roles":[]}`},
		{app.EventTeamMemberRemoved, `{"customerId":"` + cust + `","teamId":"` + team.ID + `","employeeId":"` + leaves.ID + `","userId":"` + leaves.UserID + `"}`},
	}
	if !reflect.DeepEqual(evs, want) {
		t.Fatalf("events = %v\nwant %v", evs, want)
	}
	evs = nil
	revoke()
	if len(evs) != 0 {
		t.Fatalf("second revocation wrote events: %v", evs)
	}
	roles, err := svc.SubjectLocationRoles(ctx, stays.UserID)
	if err != nil || !reflect.DeepEqual(roles, map[string][]string{loc.ID: {"SECURITY_SYSTEM_ARMER"}}) {
		t.Fatalf("the remaining employee lost grants: %v, %v", roles, err)
	}
}

// TestConcurrentChanges checks that concurrent changes inside one customer
// are serialized: repeated additions of one member all succeed and exactly
// one of them is an event, and concurrent role replacements never collide.
func TestConcurrentChanges(t *testing.T) {
	sqldbtest.ForEachStore(t, []sqldb.Migrations{store.Migrations()}, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		cust := uuid.NewString()
		admin := app.Employee{ID: uuid.NewString(), CustomerID: cust, UserID: uuid.NewString(), Active: true}
		member := app.Employee{ID: uuid.NewString(), CustomerID: cust, UserID: uuid.NewString(), Active: true}
		org := &fakeOrg{employees: map[string]app.Employee{admin.ID: admin, member.ID: member}, admins: map[string]bool{admin.UserID: true}}
		var mu sync.Mutex
		added := 0
		svc := &app.Service{Store: store.Transactor{DB: db, Org: org, Outbox: store.OutboxFunc(func(_ context.Context, _ *sqldb.Tx, _, _, typ string, _ any) error {
			mu.Lock()
			defer mu.Unlock()
			if typ == app.EventTeamMemberAdded {
				added++
			}
			return nil
		})}}
		caller := &principal.Caller{Subject: admin.UserID, Roles: []string{principal.RoleCustomerEmployee}}
		loc, err := svc.CreateLocation(ctx, caller, cust, "L", "")
		if err != nil {
			t.Fatal(err)
		}
		team, err := svc.CreateTeam(ctx, caller, cust, "T")
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for i := 0; i < 8; i++ {
			wg.Add(2)
			go func() {
				defer wg.Done()
				errs <- svc.AddTeamMember(ctx, caller, cust, team.ID, member.ID)
			}()
			go func() {
				defer wg.Done()
				_, err := svc.SetEmployeeLocationRoles(ctx, caller, cust, loc.ID, member.ID, []string{"SECURITY_SYSTEM_ARMER", "SECURITY_SYSTEM_VIEWER"})
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("concurrent change failed: %v", err)
			}
		}
		if added != 1 {
			t.Fatalf("%d team_member_added events; want 1", added)
		}
	})
}
