package orgkit_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/orgkit"
	"github.com/realguardio/realguardio/internal/orgkit/paging"
	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/policy"
)

// accounts is a test double of the Accounts port with the IAM's documented
// semantics (idempotent create for the same id and username, Conflict for a
// username owned by another id) that can be switched to fail.
type accounts struct {
	mu       sync.Mutex
	byID     map[string]account
	fail     error // returned by every call while set
	refuse   error // returned by CreateUser alone while set
	creates  int
	disabled map[string]bool
}

type account struct {
	username, password string
	roles              []string
}

func newAccounts() *accounts {
	return &accounts{byID: map[string]account{}, disabled: map[string]bool{}}
}

func (a *accounts) CreateUser(_ context.Context, id, username, password string, roles []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.creates++
	if a.fail != nil {
		return a.fail
	}
	if a.refuse != nil {
		return a.refuse
	}
	for oid, acc := range a.byID {
		if acc.username == username && oid != id {
			return apperr.New(apperr.Conflict, "username exists")
		}
	}
	if acc, ok := a.byID[id]; ok && acc.username != username {
		return apperr.New(apperr.Conflict, "id exists")
	}
	a.byID[id] = account{username: username, password: password, roles: slices.Clone(roles)}
	return nil
}

func (a *accounts) DisableUser(_ context.Context, id string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return a.fail
	}
	a.disabled[id] = true
	return nil
}

func (a *accounts) EnableUser(_ context.Context, id string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return a.fail
	}
	if _, ok := a.byID[id]; !ok {
		return apperr.New(apperr.NotFound, "no such user")
	}
	delete(a.disabled, id)
	return nil
}

// AccountEnabled answers as the IAM: unknown accounts are NotFound.
func (a *accounts) AccountEnabled(_ context.Context, id string) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return false, a.fail
	}
	if _, ok := a.byID[id]; !ok {
		return false, apperr.New(apperr.NotFound, "no such user")
	}
	return !a.disabled[id], nil
}

func (a *accounts) UserExists(_ context.Context, id string) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return false, a.fail
	}
	_, ok := a.byID[id]
	return ok, nil
}

// ResetPassword answers a reset code for a known account, as the IAM
// does; the code is random, so a test can tell two resets apart.
func (a *accounts) ResetPassword(_ context.Context, id string) (orgkit.PasswordReset, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return orgkit.PasswordReset{}, a.fail
	}
	if _, ok := a.byID[id]; !ok {
		return orgkit.PasswordReset{}, apperr.New(apperr.NotFound, "no such user")
	}
	code := uuid.NewString()
	return orgkit.PasswordReset{UserID: id, Code: code, ResetURL: "http://iam.test/reset?code=" + code, ExpiresAt: time.Now().Add(time.Hour)}, nil
}

func (a *accounts) isDisabled(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.disabled[id]
}

func (a *accounts) setRefuse(err error) {
	a.mu.Lock()
	a.refuse = err
	a.mu.Unlock()
}

func (a *accounts) setFail(err error) {
	a.mu.Lock()
	a.fail = err
	a.mu.Unlock()
}

func (a *accounts) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.byID)
}

func (a *accounts) get(id string) (account, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	acc, ok := a.byID[id]
	return acc, ok
}

// failingOutbox appends for real and then fails on one event type, so a
// test can show that an event and its change commit together or not at all.
type failingOutbox struct {
	*events.Outbox
	failOn string
}

func (o failingOutbox) Append(ctx context.Context, tx *sqldb.Tx, at, aid, et string, p any) (events.Event, error) {
	ev, err := o.Outbox.Append(ctx, tx, at, aid, et, p)
	if err == nil && et == o.failOn {
		return ev, errors.New("injected failure after append")
	}
	return ev, err
}

var sets = []sqldb.Migrations{events.Migrations(), orgkit.Migrations()}

type outboxRow struct {
	Type, AggregateType, AggregateID string
	Sequence                         int64
	Payload                          map[string]any
}

func outbox(t *testing.T, db *sqldb.DB) []outboxRow {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), `SELECT event_type, aggregate_type, aggregate_id, sequence, payload FROM event_outbox ORDER BY pos`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		var p string
		if err := rows.Scan(&r.Type, &r.AggregateType, &r.AggregateID, &r.Sequence, &p); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(p), &r.Payload); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func count(t *testing.T, db *sqldb.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func user(sub string, roles ...string) *auth.Caller {
	return &auth.Caller{Subject: sub, Roles: roles}
}

func wantCode(t *testing.T, err error, code apperr.Code) {
	t.Helper()
	if apperr.CodeOf(err) != code {
		t.Fatalf("error %v: code %q, want %q", err, apperr.CodeOf(err), code)
	}
}

func wantField(t *testing.T, err error, code apperr.Code, field string) {
	t.Helper()
	wantCode(t, err, code)
	if e := apperr.As(err); e.Field != field {
		t.Fatalf("error %v: field %q, want %q", err, e.Field, field)
	}
}

type fixture struct {
	db   *sqldb.DB
	svc  *orgkit.Service
	acc  *accounts
	kind orgkit.Kind
}

func newFixture(t *testing.T, db *sqldb.DB, kind orgkit.Kind) *fixture {
	acc := newAccounts()
	return &fixture{db: db, acc: acc, kind: kind, svc: orgkit.NewService(kind, db, events.NewOutbox(kind.Producer), acc, nil)}
}

func (f *fixture) creator() *auth.Caller { return user(uuid.NewString(), f.kind.CreatorRole) }

// org creates an organization and returns it with its administrator as a
// caller.
func (f *fixture) org(t *testing.T, name, email string) (orgkit.CreatedOrganization, *auth.Caller) {
	t.Helper()
	out, err := f.svc.CreateOrganization(context.Background(), f.creator(), name, orgkit.NewEmployee{Email: email, FirstName: "Ada", LastName: "Admin"})
	if err != nil {
		t.Fatalf("create organization: %v", err)
	}
	return out, user(out.Administrator.UserID, f.kind.EmployeeAppRole)
}

func (f *fixture) employee(t *testing.T, admin *auth.Caller, orgID, email string) (orgkit.CreatedEmployee, *auth.Caller) {
	t.Helper()
	out, err := f.svc.CreateEmployee(context.Background(), admin, orgID, orgkit.NewEmployee{Email: email, FirstName: "Eve", LastName: "Employee"})
	if err != nil {
		t.Fatalf("create employee: %v", err)
	}
	return out, user(out.UserID, f.kind.EmployeeAppRole)
}

func TestOrgKit(t *testing.T) {
	sqldbtest.ForEachStore(t, sets, func(t *testing.T, db *sqldb.DB) {
		t.Run("CreateOrganization", func(t *testing.T) { testCreateOrganization(t, db) })
		t.Run("Provisioning", func(t *testing.T) { testProvisioning(t, db) })
		t.Run("OrganizationProvisioning", func(t *testing.T) { testOrganizationProvisioning(t, db) })
		t.Run("Authorization", func(t *testing.T) { testAuthorization(t, db) })
		t.Run("RolesAndSchedules", func(t *testing.T) { testRolesAndSchedules(t, db) })
		t.Run("Remove", func(t *testing.T) { testRemove(t, db) })
		t.Run("PasswordReset", func(t *testing.T) { testPasswordReset(t, db) })
		t.Run("Account", func(t *testing.T) { testAccount(t, db) })
		t.Run("RemoveHook", func(t *testing.T) { testRemoveHook(t, db) })
		t.Run("Rehire", func(t *testing.T) { testRehire(t, db) })
		t.Run("Abandoned", func(t *testing.T) { testAbandoned(t, db) })
		t.Run("Atomicity", func(t *testing.T) { testAtomicity(t, db) })
		t.Run("Repo", func(t *testing.T) { testRepo(t, db) })
		t.Run("ConcurrentRetries", func(t *testing.T) { testConcurrentRetries(t, db) })
	})
}

// Each subtest starts from an empty outbox so it can assert exact events.
func reset(t *testing.T, db *sqldb.DB) {
	t.Helper()
	for _, q := range []string{`DELETE FROM event_outbox`, `DELETE FROM event_sequences`, `DELETE FROM employee_schedules`, `DELETE FROM employee_roles`, `DELETE FROM employees`, `DELETE FROM organizations`} {
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
}

func testCreateOrganization(t *testing.T, db *sqldb.DB) {
	reset(t, db)
	ctx := context.Background()
	f := newFixture(t, db, orgkit.Dealer)

	_, err := f.svc.CreateOrganization(ctx, user(uuid.NewString(), auth.RoleAdmin), "Acme", orgkit.NewEmployee{Email: "a@acme.example", FirstName: "A", LastName: "B"})
	wantCode(t, err, apperr.Forbidden)

	out, err := f.svc.CreateOrganization(ctx, f.creator(), " Acme Alarms ", orgkit.NewEmployee{Email: "Ada@Acme.Example", FirstName: "Ada", LastName: "Admin"})
	if err != nil {
		t.Fatal(err)
	}
	if out.Name != "Acme Alarms" || len(out.Administrator.InitialPassword) < 16 {
		t.Fatalf("unexpected answer %+v", out)
	}
	acc, ok := f.acc.get(out.Administrator.UserID)
	if !ok || acc.username != "ada@acme.example" || acc.password != out.Administrator.InitialPassword || !slices.Equal(acc.roles, []string{auth.RoleDealerEmployee}) {
		t.Fatalf("account %+v %v", acc, ok)
	}
	evs := outbox(t, db)
	if len(evs) != 3 {
		t.Fatalf("events %+v", evs)
	}
	want := []struct {
		typ     string
		payload map[string]any
	}{
		{"dealer.created", map[string]any{"dealerId": out.ID, "name": "Acme Alarms"}},
		{"dealer.employee_created", map[string]any{"dealerId": out.ID, "employeeId": out.Administrator.EmployeeID, "userId": out.Administrator.UserID, "email": "ada@acme.example", "firstName": "Ada", "lastName": "Admin"}},
		{"dealer.employee_roles_set", map[string]any{"dealerId": out.ID, "employeeId": out.Administrator.EmployeeID, "userId": out.Administrator.UserID, "roles": []any{policy.RoleDealerEmployeeAdministrator}}},
	}
	for i, w := range want {
		got := evs[i]
		if got.Type != w.typ || got.AggregateType != "dealer" || got.AggregateID != out.ID || got.Sequence != int64(i+1) {
			t.Errorf("event %d: %+v, want type %s", i, got, w.typ)
		}
		wj, _ := json.Marshal(w.payload)
		gj, _ := json.Marshal(got.Payload)
		if string(wj) != string(gj) {
			t.Errorf("event %d payload %s, want %s", i, gj, wj)
		}
	}

	// The administrator's facts, read by a service and by the user itself.
	svcCaller := &auth.Caller{Subject: "securitysystem", IsService: true, Scopes: []string{orgkit.ScopeAuthzRead}}
	facts, err := f.svc.SubjectFacts(ctx, svcCaller, out.Administrator.UserID)
	if err != nil || facts.Organization == nil || facts.Organization.ID != out.ID || facts.Organization.Kind != policy.OrgDealer ||
		!slices.Equal(facts.Organization.Roles, []string{policy.RoleDealerEmployeeAdministrator}) || facts.Schedule != nil {
		t.Fatalf("facts %+v %v", facts, err)
	}
	if _, err := f.svc.SubjectFacts(ctx, user(out.Administrator.UserID), out.Administrator.UserID); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.SubjectFacts(ctx, user(uuid.NewString()), out.Administrator.UserID)
	wantCode(t, err, apperr.Forbidden)
	_, err = f.svc.SubjectFacts(ctx, &auth.Caller{Subject: "x", IsService: true}, out.Administrator.UserID)
	wantCode(t, err, apperr.Forbidden)
	nobody := uuid.NewString()
	facts, err = f.svc.SubjectFacts(ctx, svcCaller, nobody)
	if err != nil || facts.Organization != nil || facts.UserID != nobody {
		t.Fatalf("facts of nobody %+v %v", facts, err)
	}
	b, _ := json.Marshal(facts)
	if string(b) != `{"userId":"`+nobody+`","organization":null,"schedule":null}` {
		t.Fatalf("facts JSON %s", b)
	}

	// Bad input names the field.
	_, err = f.svc.CreateOrganization(ctx, f.creator(), "", orgkit.NewEmployee{Email: "x@y.example", FirstName: "A", LastName: "B"})
	wantField(t, err, apperr.Invalid, "name")
	_, err = f.svc.CreateOrganization(ctx, f.creator(), "N", orgkit.NewEmployee{Email: "not-an-address", FirstName: "A", LastName: "B"})
	wantField(t, err, apperr.Invalid, "administrator.email")
	_, err = f.svc.CreateOrganization(ctx, f.creator(), "N", orgkit.NewEmployee{Email: "x@y.example", LastName: "B"})
	wantField(t, err, apperr.Invalid, "administrator.firstName")
	_, err = f.svc.CreateOrganization(ctx, f.creator(), "N", orgkit.NewEmployee{Email: "x@y.example", FirstName: "A", LastName: "B", Password: "short"})
	wantField(t, err, apperr.Invalid, "administrator.password")
	// The address of an active employee is taken.
	_, err = f.svc.CreateOrganization(ctx, f.creator(), "Other", orgkit.NewEmployee{Email: "ADA@acme.example", FirstName: "A", LastName: "B"})
	wantField(t, err, apperr.Conflict, "administrator.email")
	if n := len(outbox(t, db)); n != 3 {
		t.Fatalf("refused requests wrote events: %d", n)
	}
}

func testProvisioning(t *testing.T, db *sqldb.DB) {
	reset(t, db)
	ctx := context.Background()
	f := newFixture(t, db, orgkit.MonitoringProvider)
	org, admin := f.org(t, "Watchers", "boss@watch.example")
	before := len(outbox(t, db))
	in := orgkit.NewEmployee{Email: "Eve@Watch.example", FirstName: "Eve", LastName: "E", Password: "correct horse battery"}

	// IAM down: 503, nothing visible, no event, the pending row stays.
	f.acc.setFail(apperr.New(apperr.Unavailable, "IAM down"))
	_, err := f.svc.CreateEmployee(ctx, admin, org.ID, in)
	wantCode(t, err, apperr.Unavailable)
	if n := len(outbox(t, db)); n != before {
		t.Fatalf("events after a failed creation: %d, want %d", n, before)
	}
	emps, err := listEmployees(ctx, f.svc, admin, org.ID)
	if err != nil || len(emps) != 1 {
		t.Fatalf("pending employee visible: %+v %v", emps, err)
	}
	var pendingUser string
	if err := db.QueryRowContext(ctx, `SELECT user_id FROM employees WHERE email = ? AND status = ?`, "eve@watch.example", "pending").Scan(&pendingUser); err != nil {
		t.Fatalf("pending row: %v", err)
	}
	if _, err := f.svc.Repo().EmployeeByUserID(ctx, db, pendingUser); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("pending employee found by user id: %v", err)
	}
	facts, err := f.svc.SubjectFacts(ctx, user(pendingUser), pendingUser)
	if err != nil || facts.Organization != nil {
		t.Fatalf("pending employee has facts: %+v %v", facts, err)
	}

	// The retry completes it with the same user id: one account, one event.
	f.acc.setFail(nil)
	out, err := f.svc.CreateEmployee(ctx, admin, org.ID, in)
	if err != nil {
		t.Fatal(err)
	}
	if out.UserID != pendingUser || out.InitialPassword != "" {
		t.Fatalf("retry answered %+v, want user %s and no generated password", out, pendingUser)
	}
	if n := f.acc.count(); n != 2 {
		t.Fatalf("accounts: %d, want 2 (administrator and employee)", n)
	}
	evs := outbox(t, db)
	if len(evs) != before+1 || evs[before].Type != "monitoring.employee_created" || evs[before].Payload["monitoringProviderId"] != org.ID ||
		evs[before].Payload["userId"] != pendingUser || evs[before].Payload["email"] != "eve@watch.example" {
		t.Fatalf("events %+v", evs[before:])
	}
	// Once completed, the same request is a conflict, not a second employee.
	_, err = f.svc.CreateEmployee(ctx, admin, org.ID, in)
	wantField(t, err, apperr.Conflict, "email")
	if n := count(t, db, `SELECT COUNT(*) FROM employees`); n != 2 {
		t.Fatalf("employees: %d", n)
	}

	// IAM 409: the username belongs to an account this service does not
	// know. 409, and nothing is left behind.
	f.acc.byID[uuid.NewString()] = account{username: "taken@elsewhere.example"}
	_, err = f.svc.CreateEmployee(ctx, admin, org.ID, orgkit.NewEmployee{Email: "taken@elsewhere.example", FirstName: "T", LastName: "T"})
	wantField(t, err, apperr.Conflict, "email")
	if n := count(t, db, `SELECT COUNT(*) FROM employees WHERE email = ?`, "taken@elsewhere.example"); n != 0 {
		t.Fatalf("rows left after an IAM conflict: %d", n)
	}
	if n := len(outbox(t, db)); n != before+1 {
		t.Fatalf("events after an IAM conflict: %d", n)
	}

	// A pending address of another organization is a conflict too.
	other, otherAdmin := f.org(t, "Others", "boss@others.example")
	f.acc.setFail(apperr.New(apperr.Unavailable, "IAM down"))
	_, err = f.svc.CreateEmployee(ctx, admin, org.ID, orgkit.NewEmployee{Email: "half@watch.example", FirstName: "H", LastName: "H"})
	wantCode(t, err, apperr.Unavailable)
	f.acc.setFail(nil)
	_, err = f.svc.CreateEmployee(ctx, otherAdmin, other.ID, orgkit.NewEmployee{Email: "half@watch.example", FirstName: "H", LastName: "H"})
	wantField(t, err, apperr.Conflict, "email")
	// A generated password is returned once and is the account's.
	gen, err := f.svc.CreateEmployee(ctx, admin, org.ID, orgkit.NewEmployee{Email: "half@watch.example", FirstName: "H", LastName: "H"})
	if err != nil {
		t.Fatal(err)
	}
	if acc, _ := f.acc.get(gen.UserID); len(gen.InitialPassword) < 16 || acc.password != gen.InitialPassword {
		t.Fatalf("generated password %q, account %+v", gen.InitialPassword, acc)
	}
}

func testOrganizationProvisioning(t *testing.T, db *sqldb.DB) {
	reset(t, db)
	ctx := context.Background()
	f := newFixture(t, db, orgkit.Customer)
	creator := f.creator()
	admin := orgkit.NewEmployee{Email: "root@shop.example", FirstName: "R", LastName: "R"}

	f.acc.setFail(apperr.New(apperr.Unavailable, "IAM down"))
	_, err := f.svc.CreateOrganization(ctx, creator, "Shop", admin)
	wantCode(t, err, apperr.Unavailable)
	orgs, err := listOrgs(ctx, f.svc, user(uuid.NewString(), auth.RoleAdmin))
	if err != nil || len(orgs) != 0 || len(outbox(t, db)) != 0 {
		t.Fatalf("pending organization visible: %+v %v", orgs, err)
	}

	f.acc.setFail(nil)
	out, err := f.svc.CreateOrganization(ctx, creator, "Shop Renamed", admin)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM organizations`); n != 1 || f.acc.count() != 1 {
		t.Fatalf("organizations %d, accounts %d: want 1 and 1", n, f.acc.count())
	}
	orgs, _ = listOrgs(ctx, f.svc, user(uuid.NewString(), auth.RoleAdmin))
	if len(orgs) != 1 || orgs[0].ID != out.ID || orgs[0].Name != "Shop Renamed" {
		t.Fatalf("organizations %+v", orgs)
	}
	if n := len(outbox(t, db)); n != 3 {
		t.Fatalf("events %d, want 3", n)
	}
	// Customers are private: a stranger sees none, the administrator its own.
	if orgs, _ := listOrgs(ctx, f.svc, user(uuid.NewString())); len(orgs) != 0 {
		t.Fatalf("stranger sees %+v", orgs)
	}
	if orgs, _ := listOrgs(ctx, f.svc, user(out.Administrator.UserID)); len(orgs) != 1 {
		t.Fatalf("administrator sees %+v", orgs)
	}
	_, err = f.svc.GetOrganization(ctx, user(uuid.NewString()), out.ID)
	wantCode(t, err, apperr.Forbidden)

	// IAM conflict on the administrator: nothing is left, not even the
	// pending organization.
	f.acc.byID[uuid.NewString()] = account{username: "owned@else.example"}
	_, err = f.svc.CreateOrganization(ctx, creator, "Ghost", orgkit.NewEmployee{Email: "owned@else.example", FirstName: "G", LastName: "G"})
	wantField(t, err, apperr.Conflict, "administrator.email")
	if n := count(t, db, `SELECT COUNT(*) FROM organizations`); n != 1 {
		t.Fatalf("organizations after IAM conflict: %d", n)
	}
}

func testAuthorization(t *testing.T, db *sqldb.DB) {
	reset(t, db)
	ctx := context.Background()
	f := newFixture(t, db, orgkit.Dealer)
	d1, admin1 := f.org(t, "D1", "admin@d1.example")
	d2, admin2 := f.org(t, "D2", "admin@d2.example")
	e1, emp1 := f.employee(t, admin1, d1.ID, "worker@d1.example")
	e2, _ := f.employee(t, admin2, d2.ID, "worker@d2.example")
	before := len(outbox(t, db))

	roles := []string{policy.RoleDisarmer}
	if _, err := f.svc.SetEmployeeRoles(ctx, admin1, d1.ID, e1.ID, roles); err != nil {
		t.Fatalf("administrator: %v", err)
	}
	// The token of the administrator must carry the kind's employee
	// application role: the sub alone does not make a caller an employee.
	for _, c := range []*auth.Caller{user(admin1.Subject), user(admin1.Subject, auth.RoleCustomerEmployee, auth.RoleMonitoringEmployee, auth.RoleAdmin)} {
		_, err := f.svc.SetEmployeeRoles(ctx, c, d1.ID, e1.ID, roles)
		wantCode(t, err, apperr.Forbidden)
		if e := apperr.As(err); e.Reason != policy.ReasonNoRole {
			t.Fatalf("denial reason %q", e.Reason)
		}
		_, err = f.svc.CreateEmployee(ctx, c, d1.ID, orgkit.NewEmployee{Email: "new@d1.example", FirstName: "N", LastName: "N"})
		wantCode(t, err, apperr.Forbidden)
		_, err = f.svc.SetSchedule(ctx, c, d1.ID, e1.ID, policy.Schedule{TimeZone: "UTC", Shifts: []policy.Shift{{Weekdays: []string{"MON"}, Start: "09:00", End: "17:00"}}})
		wantCode(t, err, apperr.Forbidden)
		wantCode(t, f.svc.ClearSchedule(ctx, c, d1.ID, e1.ID), apperr.Forbidden)
		wantCode(t, f.svc.RemoveEmployee(ctx, c, d1.ID, e1.ID), apperr.Forbidden)
		wantCode(t, f.svc.Change(ctx, c, d1.ID, func(*sqldb.Tx, orgkit.Employee) error { return nil }), apperr.Forbidden)
	}
	_, err := f.svc.SetEmployeeRoles(ctx, admin2, d1.ID, e1.ID, roles)
	wantCode(t, err, apperr.Forbidden)
	_, err = f.svc.SetEmployeeRoles(ctx, emp1, d1.ID, e1.ID, []string{policy.RoleDealerEmployeeAdministrator})
	wantCode(t, err, apperr.Forbidden)
	_, err = f.svc.SetEmployeeRoles(ctx, user(uuid.NewString(), auth.RoleAdmin, auth.RoleDealerAdministrator), d1.ID, e1.ID, roles)
	wantCode(t, err, apperr.Forbidden)
	_, err = f.svc.SetEmployeeRoles(ctx, &auth.Caller{Subject: admin1.Subject, IsService: true}, d1.ID, e1.ID, roles)
	wantCode(t, err, apperr.Forbidden)
	// A target employee of another dealer is not found, and unchanged.
	_, err = f.svc.SetEmployeeRoles(ctx, admin1, d1.ID, e2.ID, roles)
	wantCode(t, err, apperr.NotFound)
	if r, _ := f.svc.Repo().Roles(ctx, db, e2.ID); len(r) != 0 {
		t.Fatalf("foreign employee changed: %v", r)
	}
	_, err = f.svc.SetEmployeeRoles(ctx, admin1, uuid.NewString(), e1.ID, roles)
	wantCode(t, err, apperr.NotFound)
	if n := len(outbox(t, db)); n != before+1 {
		t.Fatalf("events: %d, want %d", n, before+1)
	}

	// Reads: members and REALGUARDIO_ADMIN.
	if _, err := listEmployees(ctx, f.svc, emp1, d1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.GetEmployee(ctx, user(uuid.NewString(), auth.RoleAdmin), d1.ID, e1.ID); err != nil {
		t.Fatal(err)
	}
	_, err = listEmployees(ctx, f.svc, admin2, d1.ID)
	wantCode(t, err, apperr.Forbidden)
	_, err = f.svc.GetEmployee(ctx, admin1, d1.ID, e2.ID)
	wantCode(t, err, apperr.NotFound)
	// Dealers are a public directory.
	if orgs, _ := listOrgs(ctx, f.svc, user(uuid.NewString(), auth.RoleCustomerEmployee)); len(orgs) != 2 {
		t.Fatalf("directory %+v", orgs)
	}
}

func testRolesAndSchedules(t *testing.T, db *sqldb.DB) {
	reset(t, db)
	ctx := context.Background()
	f := newFixture(t, db, orgkit.Dealer)
	d, admin := f.org(t, "D", "admin@d.example")
	e, _ := f.employee(t, admin, d.ID, "w@d.example")
	before := len(outbox(t, db))

	got, err := f.svc.SetEmployeeRoles(ctx, admin, d.ID, e.ID, []string{policy.RoleViewer, policy.RoleArmer, policy.RoleViewer})
	if err != nil || !slices.Equal(got, []string{policy.RoleArmer, policy.RoleViewer}) {
		t.Fatalf("roles %v %v", got, err)
	}
	_, err = f.svc.SetEmployeeRoles(ctx, admin, d.ID, e.ID, []string{policy.RoleArmer, policy.RoleCustomerEmployeeAdministrator})
	wantField(t, err, apperr.Invalid, "roles[1]")
	_, err = f.svc.SetEmployeeRoles(ctx, admin, d.ID, e.ID, nil)
	wantField(t, err, apperr.Invalid, "roles")
	got, err = f.svc.SetEmployeeRoles(ctx, admin, d.ID, e.ID, []string{})
	if err != nil || len(got) != 0 {
		t.Fatalf("revoke: %v %v", got, err)
	}
	// The last administrator cannot drop the role.
	_, err = f.svc.SetEmployeeRoles(ctx, admin, d.ID, d.Administrator.EmployeeID, []string{policy.RoleViewer})
	wantCode(t, err, apperr.Conflict)

	sch := policy.Schedule{TimeZone: "Europe/Berlin", Shifts: []policy.Shift{{Weekdays: []string{"MON", "FRI"}, Start: "22:00", End: "06:00"}}}
	if _, err := f.svc.SetSchedule(ctx, admin, d.ID, e.ID, sch); err != nil {
		t.Fatal(err)
	}
	bad := sch
	bad.TimeZone = "Mars/Olympus"
	_, err = f.svc.SetSchedule(ctx, admin, d.ID, e.ID, bad)
	wantField(t, err, apperr.Invalid, "timezone")
	_, err = f.svc.SetSchedule(ctx, admin, d.ID, e.ID, policy.Schedule{TimeZone: "UTC"})
	wantField(t, err, apperr.Invalid, "shifts")
	_, err = f.svc.SetSchedule(ctx, admin, d.ID, e.ID, policy.Schedule{TimeZone: "UTC", Shifts: []policy.Shift{{Weekdays: []string{"XYZ"}, Start: "09:00", End: "10:00"}}})
	wantField(t, err, apperr.Invalid, "shifts[0].weekdays")
	_, err = f.svc.SetSchedule(ctx, admin, d.ID, e.ID, policy.Schedule{TimeZone: "UTC", Shifts: []policy.Shift{{Weekdays: []string{"MON"}, Start: "9:00", End: "10:00"}}})
	wantField(t, err, apperr.Invalid, "shifts[0].start")

	det, err := f.svc.GetEmployee(ctx, admin, d.ID, e.ID)
	if err != nil || det.Schedule == nil || det.Schedule.TimeZone != "Europe/Berlin" || len(det.Roles) != 0 || det.Email != "w@d.example" {
		t.Fatalf("details %+v %v", det, err)
	}
	if err := f.svc.ClearSchedule(ctx, admin, d.ID, e.ID); err != nil {
		t.Fatal(err)
	}
	if det, _ := f.svc.GetEmployee(ctx, admin, d.ID, e.ID); det.Schedule != nil {
		t.Fatalf("schedule not cleared")
	}

	evs := outbox(t, db)[before:]
	types := []string{}
	for _, ev := range evs {
		types = append(types, ev.Type)
	}
	if !slices.Equal(types, []string{"dealer.employee_roles_set", "dealer.employee_roles_set", "dealer.employee_schedule_set", "dealer.employee_schedule_cleared"}) {
		t.Fatalf("event types %v", types)
	}
	if r := evs[1].Payload["roles"].([]any); len(r) != 0 {
		t.Fatalf("revocation payload %+v", evs[1].Payload)
	}
	schJSON, _ := json.Marshal(evs[2].Payload["schedule"])
	if string(schJSON) != `{"shifts":[{"end":"06:00","start":"22:00","weekdays":["MON","FRI"]}],"timezone":"Europe/Berlin"}` {
		t.Fatalf("schedule payload %s", schJSON)
	}
	for _, ev := range evs {
		if ev.Payload["employeeId"] != e.ID || ev.Payload["userId"] != e.UserID || ev.Payload["dealerId"] != d.ID {
			t.Fatalf("payload %+v", ev.Payload)
		}
	}
}

func testRemove(t *testing.T, db *sqldb.DB) {
	reset(t, db)
	ctx := context.Background()
	f := newFixture(t, db, orgkit.Dealer)
	d, admin := f.org(t, "D", "admin@d.example")
	e, emp := f.employee(t, admin, d.ID, "w@d.example")
	if _, err := f.svc.SetEmployeeRoles(ctx, admin, d.ID, e.ID, []string{policy.RoleArmer}); err != nil {
		t.Fatal(err)
	}
	before := len(outbox(t, db))

	f.acc.setFail(apperr.New(apperr.Unavailable, "down"))
	wantCode(t, f.svc.RemoveEmployee(ctx, admin, d.ID, e.ID), apperr.Unavailable)
	if _, err := f.svc.GetEmployee(ctx, admin, d.ID, e.ID); err != nil {
		t.Fatalf("employee changed although the IAM was down: %v", err)
	}
	f.acc.setFail(nil)
	wantCode(t, f.svc.RemoveEmployee(ctx, emp, d.ID, e.ID), apperr.Forbidden)
	wantCode(t, f.svc.RemoveEmployee(ctx, admin, d.ID, d.Administrator.EmployeeID), apperr.Conflict)
	if f.acc.disabled[d.Administrator.UserID] {
		t.Fatal("the last administrator's account was disabled by a refused removal")
	}
	if err := f.svc.RemoveEmployee(ctx, admin, d.ID, e.ID); err != nil {
		t.Fatal(err)
	}
	if !f.acc.disabled[e.UserID] {
		t.Fatal("account not disabled")
	}
	_, err := f.svc.GetEmployee(ctx, admin, d.ID, e.ID)
	wantCode(t, err, apperr.NotFound)
	facts, _ := f.svc.SubjectFacts(ctx, emp, e.UserID)
	if facts.Organization != nil {
		t.Fatalf("removed employee still has facts %+v", facts)
	}
	evs := outbox(t, db)[before:]
	if len(evs) != 1 || evs[0].Type != "dealer.employee_removed" || evs[0].Payload["userId"] != e.UserID {
		t.Fatalf("events %+v", evs)
	}
	// The address is free again for a new employee.
	if n := count(t, db, `SELECT COUNT(*) FROM employee_roles WHERE employee_id = ?`, e.ID); n != 0 {
		t.Fatalf("roles of a removed employee kept: %d", n)
	}
}

// testRemoveHook checks OnEmployeeRemoved: it runs inside the removal's
// transaction (it sees the employee removed and its events join the
// removal's), and its failure rolls the whole removal back.
func testRemoveHook(t *testing.T, db *sqldb.DB) {
	reset(t, db)
	ctx := context.Background()
	acc := newAccounts()
	var svc *orgkit.Service
	var fail error
	var seen []orgkit.Employee
	svc = orgkit.NewService(orgkit.Dealer, db, events.NewOutbox("dealer"), acc, nil,
		orgkit.OnEmployeeRemoved(func(ctx context.Context, tx *sqldb.Tx, e orgkit.Employee) error {
			seen = append(seen, e)
			if _, err := svc.Repo().Employee(ctx, tx, e.OrgID, e.ID); !apperr.Is(err, apperr.NotFound) {
				t.Errorf("the hook sees the employee still active: %v", err)
			}
			if err := svc.Emit(ctx, tx, e.OrgID, "dealer.test_cleanup", svc.Payload(e.OrgID, "employeeId", e.ID)); err != nil {
				return err
			}
			return fail
		}))
	f := &fixture{db: db, svc: svc, acc: acc, kind: orgkit.Dealer}
	d, admin := f.org(t, "D", "admin@d.example")
	e, _ := f.employee(t, admin, d.ID, "w@d.example")
	before := len(outbox(t, db))

	fail = errors.New("injected failure of the hook")
	if err := svc.RemoveEmployee(ctx, admin, d.ID, e.ID); err == nil {
		t.Fatal("a failing hook did not fail the removal")
	}
	if _, err := svc.GetEmployee(ctx, admin, d.ID, e.ID); err != nil {
		t.Fatalf("the removal committed although its hook failed: %v", err)
	}
	if n := len(outbox(t, db)); n != before {
		t.Fatalf("a rolled-back removal wrote %d events", n-before)
	}

	fail = nil
	if err := svc.RemoveEmployee(ctx, admin, d.ID, e.ID); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || seen[1].ID != e.ID || seen[1].UserID != e.UserID || seen[1].OrgID != d.ID || seen[1].Status != orgkit.StatusRemoved {
		t.Fatalf("hook calls %+v", seen)
	}
	evs := outbox(t, db)[before:]
	if len(evs) != 2 || evs[0].Type != "dealer.employee_removed" || evs[1].Type != "dealer.test_cleanup" || evs[1].Sequence != evs[0].Sequence+1 {
		t.Fatalf("events %+v", evs)
	}
	// Removals refused before the transaction never reach the hook.
	wantCode(t, svc.RemoveEmployee(ctx, admin, d.ID, d.Administrator.EmployeeID), apperr.Conflict)
	if len(seen) != 2 {
		t.Fatalf("hook called for a refused removal: %+v", seen)
	}
}

// testRehire re-adds removed employees: in the same organization the
// employee comes back with the same employee id and user id, a reset
// account and a new employee_created event; elsewhere the address is a
// conflict, because it is the former employee's account.
func testRehire(t *testing.T, db *sqldb.DB) {
	reset(t, db)
	ctx := context.Background()
	f := newFixture(t, db, orgkit.Dealer)
	d, admin := f.org(t, "D", "admin@d.example")
	other, otherAdmin := f.org(t, "O", "admin@o.example")
	e, _ := f.employee(t, admin, d.ID, "back@d.example")
	if _, err := f.svc.SetEmployeeRoles(ctx, admin, d.ID, e.ID, []string{policy.RoleArmer}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SetSchedule(ctx, admin, d.ID, e.ID, policy.Schedule{TimeZone: "UTC", Shifts: []policy.Shift{{Weekdays: []string{"MON"}, Start: "09:00", End: "17:00"}}}); err != nil {
		t.Fatal(err)
	}
	remove := func() {
		t.Helper()
		if err := f.svc.RemoveEmployee(ctx, admin, d.ID, e.ID); err != nil {
			t.Fatal(err)
		}
		if !f.acc.isDisabled(e.UserID) {
			t.Fatal("account of a removed employee enabled")
		}
	}
	remove()
	before := len(outbox(t, db))

	// Another organization, and a new one: the address is the former
	// employee's account.
	_, err := f.svc.CreateEmployee(ctx, otherAdmin, other.ID, orgkit.NewEmployee{Email: "BACK@d.example", FirstName: "B", LastName: "B"})
	wantField(t, err, apperr.Conflict, "email")
	_, err = f.svc.CreateOrganization(ctx, f.creator(), "New", orgkit.NewEmployee{Email: "back@d.example", FirstName: "B", LastName: "B"})
	wantField(t, err, apperr.Conflict, "administrator.email")
	if n := len(outbox(t, db)); n != before {
		t.Fatalf("refused re-hires wrote %d events", n-before)
	}

	rehire := func(password string) orgkit.CreatedEmployee {
		t.Helper()
		out, err := f.svc.CreateEmployee(ctx, admin, d.ID, orgkit.NewEmployee{Email: "Back@D.example", FirstName: "Bea", LastName: "Back", Password: password})
		if err != nil {
			t.Fatal(err)
		}
		if out.ID != e.ID || out.UserID != e.UserID {
			t.Fatalf("re-hired as %+v, want employee %s user %s", out, e.ID, e.UserID)
		}
		return out
	}
	rehire("a-new-password")
	acc, _ := f.acc.get(e.UserID)
	if acc.password != "a-new-password" || !slices.Equal(acc.roles, []string{auth.RoleDealerEmployee}) || f.acc.isDisabled(e.UserID) || f.acc.count() != 3 {
		t.Fatalf("account after the re-hire %+v (disabled %v, accounts %d)", acc, f.acc.isDisabled(e.UserID), f.acc.count())
	}
	det, err := f.svc.GetEmployee(ctx, admin, d.ID, e.ID)
	if err != nil || det.FirstName != "Bea" || len(det.Roles) != 0 || det.Schedule != nil {
		t.Fatalf("re-hired employee %+v %v: want new names, no roles, no schedule", det, err)
	}
	evs := outbox(t, db)[before:]
	if len(evs) != 1 || evs[0].Type != "dealer.employee_created" || evs[0].Payload["employeeId"] != e.ID || evs[0].Payload["userId"] != e.UserID || evs[0].Payload["firstName"] != "Bea" {
		t.Fatalf("events %+v", evs)
	}
	_, err = f.svc.CreateEmployee(ctx, admin, d.ID, orgkit.NewEmployee{Email: "back@d.example", FirstName: "B", LastName: "B"})
	wantField(t, err, apperr.Conflict, "email")

	// A re-hire interrupted by an IAM outage is completed by its retry.
	remove()
	f.acc.setFail(apperr.New(apperr.Unavailable, "down"))
	_, err = f.svc.CreateEmployee(ctx, admin, d.ID, orgkit.NewEmployee{Email: "back@d.example", FirstName: "B", LastName: "B"})
	wantCode(t, err, apperr.Unavailable)
	if _, err := f.svc.GetEmployee(ctx, admin, d.ID, e.ID); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("half re-hired employee visible: %v", err)
	}
	f.acc.setFail(nil)
	out := rehire("")
	if acc, _ := f.acc.get(e.UserID); acc.password != out.InitialPassword || f.acc.isDisabled(e.UserID) {
		t.Fatalf("account after the retried re-hire %+v", acc)
	}

	// The IAM refusing a re-hire leaves the row: it is the only record of
	// the account that holds the address. A retry completes it.
	remove()
	f.acc.setRefuse(apperr.InvalidField("password", "refused"))
	_, err = f.svc.CreateEmployee(ctx, admin, d.ID, orgkit.NewEmployee{Email: "back@d.example", FirstName: "B", LastName: "B", Password: "refused-password"})
	wantField(t, err, apperr.Invalid, "password")
	f.acc.setRefuse(nil)
	if n := count(t, db, `SELECT COUNT(*) FROM employees WHERE email = ?`, "back@d.example"); n != 1 {
		t.Fatalf("rows of the re-hired employee: %d", n)
	}
	rehire("accepted-password")
	if n := count(t, db, `SELECT COUNT(*) FROM employees`); n != 3 {
		t.Fatalf("employees: %d, want 3", n)
	}
}

// age makes the pending employee with the address look abandoned: its
// last provisioning attempt lies beyond orgkit.PendingTTL.
func age(t *testing.T, db *sqldb.DB, email string) {
	t.Helper()
	old := time.Now().Add(-orgkit.PendingTTL - time.Minute)
	if _, err := db.ExecContext(context.Background(), `UPDATE employees SET updated_at = ? WHERE email = ? AND status = ?`, sqldb.Micros(old), email, "pending"); err != nil {
		t.Fatal(err)
	}
}

// testAbandoned covers pending employees left behind by clients that gave
// up after a 503: within PendingTTL the address stays reserved for the
// original organization; after it, another organization gets the address
// if the IAM never created the abandoned account, and a conflict if it
// did, in which case only the original organization completes the row.
func testAbandoned(t *testing.T, db *sqldb.DB) {
	reset(t, db)
	ctx := context.Background()
	f := newFixture(t, db, orgkit.MonitoringProvider)
	a, adminA := f.org(t, "A", "admin@a.example")
	b, adminB := f.org(t, "B", "admin@b.example")
	down := apperr.New(apperr.Unavailable, "IAM down")
	abandon := func(email string) string {
		t.Helper()
		f.acc.setFail(down)
		_, err := f.svc.CreateEmployee(ctx, adminA, a.ID, orgkit.NewEmployee{Email: email, FirstName: "P", LastName: "P"})
		wantCode(t, err, apperr.Unavailable)
		f.acc.setFail(nil)
		var userID string
		if err := db.QueryRowContext(ctx, `SELECT user_id FROM employees WHERE email = ? AND status = ?`, email, "pending").Scan(&userID); err != nil {
			t.Fatal(err)
		}
		return userID
	}
	in := func(email string) orgkit.NewEmployee {
		return orgkit.NewEmployee{Email: email, FirstName: "N", LastName: "N"}
	}

	// No account was created: B gets the address once the row is abandoned.
	abandon("gone@x.example")
	_, err := f.svc.CreateEmployee(ctx, adminB, b.ID, in("gone@x.example"))
	wantField(t, err, apperr.Conflict, "email")
	age(t, db, "gone@x.example")
	before := len(outbox(t, db))
	out, err := f.svc.CreateEmployee(ctx, adminB, b.ID, in("gone@x.example"))
	if err != nil {
		t.Fatalf("address of an abandoned employee: %v", err)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM employees WHERE email = ?`, "gone@x.example"); n != 1 {
		t.Fatalf("rows with the address: %d, want B's only", n)
	}
	if _, err := f.svc.GetEmployee(ctx, adminB, b.ID, out.ID); err != nil {
		t.Fatal(err)
	}
	evs := outbox(t, db)[before:]
	if len(evs) != 1 || evs[0].AggregateID != b.ID || evs[0].Payload["userId"] != out.UserID {
		t.Fatalf("events %+v", evs)
	}
	_, err = f.svc.CreateEmployee(ctx, adminA, a.ID, in("gone@x.example"))
	wantField(t, err, apperr.Conflict, "email")

	// The abandoned attempt created the account (its answer was lost):
	// the address stays with A, and A's retry completes the row, however
	// old.
	kept := abandon("kept@x.example")
	f.acc.byID[kept] = account{username: "kept@x.example"}
	age(t, db, "kept@x.example")
	_, err = f.svc.CreateEmployee(ctx, adminB, b.ID, in("kept@x.example"))
	wantField(t, err, apperr.Conflict, "email")
	_, err = f.svc.CreateOrganization(ctx, f.creator(), "C", in("kept@x.example"))
	wantField(t, err, apperr.Conflict, "administrator.email")
	if got, err := f.svc.CreateEmployee(ctx, adminA, a.ID, in("kept@x.example")); err != nil || got.UserID != kept {
		t.Fatalf("A's late retry = %+v, %v; want user %s", got, err, kept)
	}

	// The IAM cannot be asked: 503, nothing changes.
	abandon("unsure@x.example")
	age(t, db, "unsure@x.example")
	f.acc.setFail(down)
	_, err = f.svc.CreateEmployee(ctx, adminB, b.ID, in("unsure@x.example"))
	wantCode(t, err, apperr.Unavailable)
	f.acc.setFail(nil)
	if n := count(t, db, `SELECT COUNT(*) FROM employees WHERE email = ? AND org_id = ?`, "unsure@x.example", a.ID); n != 1 {
		t.Fatalf("A's pending row changed while the IAM was down: %d", n)
	}

	// An abandoned organization creation: its pending administrator's
	// address goes to a new organization, and the pending organization
	// is deleted with it.
	f.acc.setFail(down)
	_, err = f.svc.CreateOrganization(ctx, f.creator(), "Ghost", in("founder@x.example"))
	wantCode(t, err, apperr.Unavailable)
	f.acc.setFail(nil)
	age(t, db, "founder@x.example")
	if _, err := f.svc.CreateEmployee(ctx, adminB, b.ID, in("founder@x.example")); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM organizations WHERE status = ?`, "pending"); n != 0 {
		t.Fatalf("pending organizations left: %d", n)
	}
	// And the address of an abandoned employee goes to a new
	// organization's administrator.
	abandon("boss@x.example")
	age(t, db, "boss@x.example")
	if _, err := f.svc.CreateOrganization(ctx, f.creator(), "D", in("boss@x.example")); err != nil {
		t.Fatal(err)
	}
}

func testAtomicity(t *testing.T, db *sqldb.DB) {
	reset(t, db)
	ctx := context.Background()
	acc := newAccounts()
	svc := orgkit.NewService(orgkit.Dealer, db, failingOutbox{Outbox: events.NewOutbox("dealer"), failOn: "dealer.employee_roles_set"}, acc, nil)
	creator := user(uuid.NewString(), auth.RoleDealerAdministrator)
	_, err := svc.CreateOrganization(ctx, creator, "D", orgkit.NewEmployee{Email: "a@d.example", FirstName: "A", LastName: "A"})
	if err == nil {
		t.Fatal("a failing event write did not fail the change")
	}
	if n := len(outbox(t, db)); n != 0 {
		t.Fatalf("a failed change wrote %d events", n)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM organizations WHERE status = ?`, "active"); n != 0 {
		t.Fatalf("a failed change activated the organization")
	}
}

func testRepo(t *testing.T, db *sqldb.DB) {
	reset(t, db)
	ctx := context.Background()
	f := newFixture(t, db, orgkit.Customer)
	c, admin := f.org(t, "C", "a@c.example")
	e, _ := f.employee(t, admin, c.ID, "Mixed.Case@C.example")
	repo := orgkit.Repo{}
	// Inside a caller's transaction, the kit's reads and checks work.
	err := db.InTx(ctx, func(tx *sqldb.Tx) error {
		got, err := repo.Employee(ctx, tx, c.ID, e.ID)
		if err != nil || got.Email != "mixed.case@c.example" || got.UserID != e.UserID || got.Status != orgkit.StatusActive {
			t.Errorf("employee %+v %v", got, err)
		}
		if _, err := repo.Employee(ctx, tx, uuid.NewString(), e.ID); !apperr.Is(err, apperr.NotFound) {
			t.Errorf("employee of another organization: %v", err)
		}
		byUser, err := repo.EmployeeByUserID(ctx, tx, e.UserID)
		if err != nil || byUser.ID != e.ID || byUser.OrgID != c.ID {
			t.Errorf("by user %+v %v", byUser, err)
		}
		if _, err := f.svc.AuthorizeAdministrator(ctx, tx, admin, c.ID); err != nil {
			t.Errorf("administrator refused: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The unique index on the live e-mail address is case-insensitive.
	_, err = db.ExecContext(ctx, `INSERT INTO employees (id, org_id, user_id, email, first_name, last_name, status, created_at, updated_at) VALUES (?, ?, ?, ?, 'x', 'y', 'pending', 0, 0)`,
		uuid.NewString(), c.ID, uuid.NewString(), "MIXED.case@c.example")
	if !sqldb.IsUniqueViolation(err) {
		t.Fatalf("duplicate live address accepted: %v", err)
	}
	// ... but a removed employee's address may be reused.
	if _, err := db.ExecContext(ctx, `UPDATE employees SET status = 'removed' WHERE id = ?`, e.ID); err != nil {
		t.Fatal(err)
	}
	_, err = db.ExecContext(ctx, `INSERT INTO employees (id, org_id, user_id, email, first_name, last_name, status, created_at, updated_at) VALUES (?, ?, ?, ?, 'x', 'y', 'pending', 0, 0)`,
		uuid.NewString(), c.ID, uuid.NewString(), "mixed.case@c.example")
	if err != nil {
		t.Fatalf("address of a removed employee refused: %v", err)
	}
}

// testConcurrentRetries sends the same creation several times at once,
// after an IAM outage left a pending row: however they interleave, there is
// one employee, one account and one employee_created event, and every
// successful answer names the same user.
func testConcurrentRetries(t *testing.T, db *sqldb.DB) {
	reset(t, db)
	ctx := context.Background()
	f := newFixture(t, db, orgkit.Dealer)
	d, admin := f.org(t, "D", "admin@d.example")
	in := orgkit.NewEmployee{Email: "twice@d.example", FirstName: "T", LastName: "T", Password: "a-good-password"}
	f.acc.setFail(apperr.New(apperr.Unavailable, "down"))
	_, err := f.svc.CreateEmployee(ctx, admin, d.ID, in)
	wantCode(t, err, apperr.Unavailable)
	f.acc.setFail(nil)
	before := len(outbox(t, db))

	const n = 6
	results := make(chan orgkit.CreatedEmployee, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := f.svc.CreateEmployee(ctx, admin, d.ID, in)
			if err != nil {
				errs <- err
				return
			}
			results <- out
		}()
	}
	wg.Wait()
	close(results)
	close(errs)
	for err := range errs {
		// A request that starts after another completed sees an active
		// employee: a conflict, never a second employee.
		wantCode(t, err, apperr.Conflict)
	}
	users := map[string]bool{}
	for out := range results {
		users[out.UserID] = true
	}
	if len(users) != 1 {
		t.Fatalf("successful answers name %d users, want 1", len(users))
	}
	if c := count(t, db, `SELECT COUNT(*) FROM employees WHERE email = ?`, "twice@d.example"); c != 1 {
		t.Fatalf("employees: %d", c)
	}
	if c := f.acc.count(); c != 2 {
		t.Fatalf("accounts: %d, want 2", c)
	}
	if evs := outbox(t, db); len(evs) != before+1 {
		t.Fatalf("events: %d, want %d", len(evs), before+1)
	}
}

// firstPage is a request for the first page of the largest size.
var firstPage = paging.Request{Limit: paging.MaxLimit}

func listOrgs(ctx context.Context, svc *orgkit.Service, caller *auth.Caller) ([]orgkit.Organization, error) {
	p, err := svc.ListOrganizations(ctx, caller, firstPage)
	return p.Items, err
}

func listEmployees(ctx context.Context, svc *orgkit.Service, caller *auth.Caller, orgID string) ([]orgkit.EmployeeDetails, error) {
	p, err := svc.ListEmployees(ctx, caller, orgID, firstPage)
	return p.Items, err
}

// testPasswordReset: an organization's administrator gets a reset code for
// an active employee of the organization; an employee without the
// administrator role, another organization's administrator and a removed
// employee get none; an unreachable IAM is a 503.
func testPasswordReset(t *testing.T, db *sqldb.DB) {
	reset(t, db)
	ctx := context.Background()
	f := newFixture(t, db, orgkit.Customer)
	org, admin := f.org(t, "Acme", "ada@acme.example")
	emp, empCaller := f.employee(t, admin, org.ID, "eve@acme.example")
	other, otherAdmin := f.org(t, "Foo", "fay@foo.example")
	_ = other

	r, err := f.svc.ResetEmployeePassword(ctx, admin, org.ID, emp.ID)
	if err != nil || r.EmployeeID != emp.ID || r.UserID != emp.UserID || r.Code == "" || !strings.Contains(r.ResetURL, r.Code) {
		t.Fatalf("reset %+v %v", r, err)
	}
	_, err = f.svc.ResetEmployeePassword(ctx, empCaller, org.ID, emp.ID)
	wantCode(t, err, apperr.Forbidden)
	_, err = f.svc.ResetEmployeePassword(ctx, otherAdmin, org.ID, emp.ID)
	wantCode(t, err, apperr.Forbidden)
	_, err = f.svc.ResetEmployeePassword(ctx, otherAdmin, other.ID, emp.ID)
	wantCode(t, err, apperr.NotFound)

	f.acc.mu.Lock()
	f.acc.fail = errors.New("connection refused")
	f.acc.mu.Unlock()
	_, err = f.svc.ResetEmployeePassword(ctx, admin, org.ID, emp.ID)
	wantCode(t, err, apperr.Unavailable)
	f.acc.mu.Lock()
	f.acc.fail = nil
	f.acc.mu.Unlock()

	if err := f.svc.RemoveEmployee(ctx, admin, org.ID, emp.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.ResetEmployeePassword(ctx, admin, org.ID, emp.ID)
	wantCode(t, err, apperr.NotFound)
}

// testAccount checks reading and changing an employee's account status:
// only the organization's administrators change it (the platform
// administrator reads it), nobody disables their own account, and a
// disabled employee keeps roles for when the account is enabled again.
func testAccount(t *testing.T, db *sqldb.DB) {
	reset(t, db)
	ctx := context.Background()
	f := newFixture(t, db, orgkit.MonitoringProvider)
	org, admin := f.org(t, "Watch", "ada@watch.example")
	emp, empCaller := f.employee(t, admin, org.ID, "eve@watch.example")
	_, otherAdmin := f.org(t, "Other", "oli@other.example")
	platform := user(uuid.NewString(), auth.RoleAdmin)
	if _, err := f.svc.SetEmployeeRoles(ctx, admin, org.ID, emp.ID, []string{policy.RoleViewer}); err != nil {
		t.Fatal(err)
	}
	before := len(outbox(t, db))

	st, err := f.svc.EmployeeAccount(ctx, admin, org.ID, emp.ID)
	if err != nil || !st.Enabled || st.UserID != emp.UserID || st.EmployeeID != emp.ID {
		t.Fatalf("account %+v %v", st, err)
	}
	for _, c := range []*auth.Caller{empCaller, otherAdmin} {
		_, err = f.svc.EmployeeAccount(ctx, c, org.ID, emp.ID)
		wantCode(t, err, apperr.Forbidden)
		_, err = f.svc.SetEmployeeAccountEnabled(ctx, c, org.ID, emp.ID, false)
		wantCode(t, err, apperr.Forbidden)
	}
	_, err = f.svc.SetEmployeeAccountEnabled(ctx, platform, org.ID, emp.ID, false)
	wantCode(t, err, apperr.Forbidden)
	if f.acc.isDisabled(emp.UserID) {
		t.Fatal("a refused change disabled the account")
	}
	_, err = f.svc.SetEmployeeAccountEnabled(ctx, admin, org.ID, org.Administrator.EmployeeID, false)
	wantField(t, err, apperr.Invalid, "enabled")

	if st, err = f.svc.SetEmployeeAccountEnabled(ctx, admin, org.ID, emp.ID, false); err != nil || st.Enabled {
		t.Fatalf("disable: %+v %v", st, err)
	}
	if !f.acc.isDisabled(emp.UserID) {
		t.Fatal("account not disabled")
	}
	if st, err = f.svc.EmployeeAccount(ctx, platform, org.ID, emp.ID); err != nil || st.Enabled {
		t.Fatalf("the platform administrator reads %+v %v", st, err)
	}
	// Disabling is no removal: the employee and its roles stay.
	if d, err := f.svc.GetEmployee(ctx, admin, org.ID, emp.ID); err != nil || len(d.Roles) != 1 {
		t.Fatalf("a disabled employee = %+v %v", d, err)
	}
	if st, err = f.svc.SetEmployeeAccountEnabled(ctx, admin, org.ID, emp.ID, true); err != nil || !st.Enabled || f.acc.isDisabled(emp.UserID) {
		t.Fatalf("enable: %+v %v", st, err)
	}
	if evs := outbox(t, db)[before:]; len(evs) != 0 {
		t.Fatalf("an account change wrote events %+v", evs)
	}

	f.acc.setFail(errors.New("connection refused"))
	_, err = f.svc.EmployeeAccount(ctx, admin, org.ID, emp.ID)
	wantCode(t, err, apperr.Unavailable)
	_, err = f.svc.SetEmployeeAccountEnabled(ctx, admin, org.ID, emp.ID, false)
	wantCode(t, err, apperr.Unavailable)
	f.acc.setFail(nil)

	if err := f.svc.RemoveEmployee(ctx, admin, org.ID, emp.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.SetEmployeeAccountEnabled(ctx, admin, org.ID, emp.ID, true)
	wantCode(t, err, apperr.NotFound)
}
