package customer_test

import (
	"context"
	"reflect"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

const (
	appEmployee = "CUSTOMER_EMPLOYEE"
	armer       = "SECURITY_SYSTEM_ARMER"
	disarmer    = "SECURITY_SYSTEM_DISARMER"
	viewer      = "SECURITY_SYSTEM_VIEWER"
	empAdmin    = "CUSTOMER_EMPLOYEE_ADMINISTRATOR"
)

// person is an employee with the token its user would carry.
type person struct {
	EmployeeID, UserID, Token string
}

// world is two customers: acme (administrator alice, employees carol and
// dave) and foo (administrator bob, employee fred).
type world struct {
	*env
	platform           string // REALGUARDIO_ADMIN token
	acme, foo          string
	alice, carol, dave person
	bob, fred          person
}

func (e *env) createCustomer(platform, name, adminEmail string) (string, person) {
	e.t.Helper()
	out := e.must(201, "POST", "/customers", platform, map[string]any{
		"name": name, "administrator": map[string]any{"email": adminEmail, "firstName": "Ad", "lastName": "Min"},
	})
	admin := out["administrator"].(map[string]any)
	p := person{EmployeeID: admin["employeeId"].(string), UserID: admin["userId"].(string)}
	p.Token = e.iss.user(e.t, p.UserID, appEmployee)
	return out["id"].(string), p
}

func (e *env) createEmployee(adminToken, customerID, email, first string) person {
	e.t.Helper()
	out := e.must(201, "POST", "/customers/"+customerID+"/employees", adminToken, map[string]any{
		"email": email, "firstName": first, "lastName": "Doe",
	})
	p := person{EmployeeID: out["id"].(string), UserID: out["userId"].(string)}
	p.Token = e.iss.user(e.t, p.UserID, appEmployee)
	return p
}

func newWorld(t *testing.T) *world { return newWorldOn(t, newSQLiteEnv(t)) }

func newWorldOn(t *testing.T, e *env) *world {
	w := &world{env: e, platform: e.iss.user(t, uuid.NewString(), "REALGUARDIO_ADMIN")}
	w.acme, w.alice = e.createCustomer(w.platform, "Acme", "alice@acme.test")
	w.foo, w.bob = e.createCustomer(w.platform, "Foo", "bob@foo.test")
	w.carol = e.createEmployee(w.alice.Token, w.acme, "carol@acme.test", "Carol")
	w.dave = e.createEmployee(w.alice.Token, w.acme, "dave@acme.test", "Dave")
	w.fred = e.createEmployee(w.bob.Token, w.foo, "fred@foo.test", "Fred")
	return w
}

func TestUnauthenticated(t *testing.T) {
	e := newSQLiteEnv(t)
	status, _ := e.call("GET", "/profiles", "", nil)
	if status != 401 {
		t.Fatalf("GET /profiles without a token = %d; want 401", status)
	}
	status, _ = e.call("GET", "/customers", "not-a-jwt", nil)
	if status != 401 {
		t.Fatalf("GET /customers with a bad token = %d; want 401", status)
	}
}

// TestEmployeeRolesScenario is the article's ReBAC scenario: PUT
// /customers/{customerId}/employees/{employeeId}/roles.
func TestEmployeeRolesScenario(t *testing.T) {
	w := newWorld(t)
	path := "/customers/" + w.acme + "/employees/" + w.carol.EmployeeID + "/roles"
	body := map[string]any{"roles": []string{disarmer}}

	t.Run("administrator of the customer", func(t *testing.T) {
		pos := w.lastPos()
		out := w.must(200, "PUT", path, w.alice.Token, body)
		if !reflect.DeepEqual(out["roles"], []any{disarmer}) {
			t.Fatalf("roles = %v", out["roles"])
		}
		evs, _ := w.eventsSince(pos)
		if len(evs) != 1 || evs[0].Type != "customer.employee_roles_set" || evs[0].AggregateID != w.acme ||
			evs[0].Payload["userId"] != w.carol.UserID || evs[0].Payload["employeeId"] != w.carol.EmployeeID {
			t.Fatalf("events = %+v", evs)
		}
	})
	t.Run("wrong application role", func(t *testing.T) {
		tok := w.iss.user(t, w.alice.UserID, "SECURITY_SYSTEM_DEALER_EMPLOYEE")
		pos := w.lastPos()
		w.expect(403, "", "PUT", path, tok, body)
		// Every change inside the customer, the kit's and the service's own.
		w.expect(403, "", "POST", "/customers/"+w.acme+"/employees", tok, map[string]any{"email": "x@acme.test", "firstName": "X", "lastName": "Y"})
		w.expect(403, "", "DELETE", "/customers/"+w.acme+"/employees/"+w.dave.EmployeeID, tok, nil)
		w.expect(403, "", "POST", "/customers/"+w.acme+"/locations", tok, map[string]any{"name": "L"})
		w.expect(403, "", "POST", "/customers/"+w.acme+"/teams", tok, map[string]any{"name": "T"})
		if evs, _ := w.eventsSince(pos); len(evs) != 0 {
			t.Fatalf("refused requests wrote events: %+v", evs)
		}
	})
	t.Run("administrator of another customer", func(t *testing.T) {
		w.expect(403, "", "PUT", path, w.bob.Token, body)
	})
	t.Run("non-administrator of the same customer", func(t *testing.T) {
		w.expect(403, "", "PUT", path, w.dave.Token, body)
	})
	t.Run("target employee of another customer", func(t *testing.T) {
		pos := w.lastPos()
		w.expect(404, "", "PUT", "/customers/"+w.acme+"/employees/"+w.fred.EmployeeID+"/roles", w.alice.Token, body)
		if evs, _ := w.eventsSince(pos); len(evs) != 0 {
			t.Fatalf("a refused request wrote events: %+v", evs)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		w.expect(422, "roles[0]", "PUT", path, w.alice.Token, map[string]any{"roles": []string{"SUPERUSER"}})
		w.expect(400, "employeeId", "PUT", "/customers/"+w.acme+"/employees/not-a-uuid/roles", w.alice.Token, body)
	})
	t.Run("schedules", func(t *testing.T) {
		sched := "/customers/" + w.acme + "/employees/" + w.carol.EmployeeID + "/schedule"
		s := map[string]any{"timezone": "Europe/Berlin", "shifts": []any{map[string]any{"weekdays": []string{"MON"}, "start": "09:00", "end": "17:00"}}}
		w.expect(403, "", "PUT", sched, w.iss.user(t, w.alice.UserID), s)
		w.expect(403, "", "PUT", sched, w.dave.Token, s)
		w.must(200, "PUT", sched, w.alice.Token, s)
		w.must(204, "DELETE", sched, w.alice.Token, nil)
	})
}

// TestProfilesScenario is the article's "Manage profiles": the caller's own
// profile only, found by sub, with the CUSTOMER_EMPLOYEE application role.
func TestProfilesScenario(t *testing.T) {
	w := newWorld(t)
	got := w.must(200, "GET", "/profiles", w.carol.Token, nil)
	if got["firstName"] != "Carol" || got["lastName"] != "Doe" || got["phoneNumber"] != "" {
		t.Fatalf("initial profile = %v", got)
	}
	put := map[string]any{"firstName": "Caroline", "lastName": "Doe", "phoneNumber": "+49 30 1234567"}
	if got := w.must(200, "PUT", "/profiles", w.carol.Token, put); got["firstName"] != "Caroline" {
		t.Fatalf("PUT answer = %v", got)
	}
	if got := w.must(200, "GET", "/profiles", w.carol.Token, nil); got["firstName"] != "Caroline" || got["phoneNumber"] != "+49 30 1234567" {
		t.Fatalf("profile after PUT = %v", got)
	}
	// Another employee sees only their own profile.
	if got := w.must(200, "GET", "/profiles", w.dave.Token, nil); got["firstName"] != "Dave" {
		t.Fatalf("dave's profile = %v", got)
	}
	// Without the application role: 403, even for the owner.
	noRole := w.iss.user(t, w.carol.UserID, "SECURITY_SYSTEM_DEALER_EMPLOYEE")
	w.expect(403, "", "GET", "/profiles", noRole, nil)
	w.expect(403, "", "PUT", "/profiles", noRole, put)
	// A user with the role who is no customer employee has no profile.
	w.expect(404, "", "GET", "/profiles", w.iss.user(t, uuid.NewString(), appEmployee), nil)
	// Bad input.
	w.expect(422, "phoneNumber", "PUT", "/profiles", w.carol.Token, map[string]any{"firstName": "C", "lastName": "D", "phoneNumber": "call me"})
	w.expect(422, "phoneNumber", "PUT", "/profiles", w.carol.Token, map[string]any{"firstName": "C", "lastName": "D", "phoneNumber": "+12"})
	w.expect(422, "firstName", "PUT", "/profiles", w.carol.Token, map[string]any{"firstName": " ", "lastName": "D", "phoneNumber": ""})
	w.expect(400, "userId", "PUT", "/profiles", w.carol.Token, map[string]any{"firstName": "C", "lastName": "D", "phoneNumber": "", "userId": w.dave.UserID})
	w.must(200, "PUT", "/profiles", w.carol.Token, map[string]any{"firstName": "C", "lastName": "D", "phoneNumber": ""})
}

// TestLocationsTeamsAndRoles runs on both stores: the service migrates an
// empty database itself and every change goes through its transactions.
func TestLocationsTeamsAndRoles(t *testing.T) {
	sqldbtest.ForEachStore(t, nil, func(t *testing.T, db *sqldb.DB) {
		testLocationsTeamsAndRoles(t, newWorldOn(t, newEnv(t, db)))
	})
}

func testLocationsTeamsAndRoles(t *testing.T, w *world) {
	acme := "/customers/" + w.acme
	d1, d2 := uuid.NewString(), uuid.NewString()

	// A dealer the service has not heard of cannot be assigned.
	w.expect(422, "dealerId", "POST", acme+"/locations", w.alice.Token, map[string]any{"name": "HQ", "dealerId": d1})
	w.expect(422, "dealerId", "POST", acme+"/locations", w.alice.Token, map[string]any{"name": "HQ", "dealerId": "nope"})
	w.expect(422, "name", "POST", acme+"/locations", w.alice.Token, map[string]any{"name": ""})
	long := make([]byte, 201)
	for i := range long {
		long[i] = 'x'
	}
	w.expect(422, "name", "POST", acme+"/locations", w.alice.Token, map[string]any{"name": string(long)})
	w.expect(403, "", "POST", acme+"/locations", w.dave.Token, map[string]any{"name": "HQ"})
	w.expect(403, "", "POST", acme+"/locations", w.bob.Token, map[string]any{"name": "HQ"})

	w.publishDealer(d1, "Dealer One")
	w.publishDealer(d2, "Dealer Two")

	pos := w.lastPos()
	loc := w.must(201, "POST", acme+"/locations", w.alice.Token, map[string]any{"name": "HQ", "dealerId": d1})
	locID := loc["id"].(string)
	if loc["name"] != "HQ" || loc["dealerId"] != d1 {
		t.Fatalf("created location = %v", loc)
	}
	loc2 := w.must(201, "POST", acme+"/locations", w.alice.Token, map[string]any{"name": "Depot"})
	loc2ID := loc2["id"].(string)
	if loc2["dealerId"] != nil {
		t.Fatalf("location without dealer = %v", loc2)
	}
	fooLoc := w.must(201, "POST", "/customers/"+w.foo+"/locations", w.bob.Token, map[string]any{"name": "Foo HQ"})["id"].(string)

	// Dealer changes: set, unchanged (no event), clear.
	w.must(200, "PUT", acme+"/locations/"+locID+"/dealer", w.alice.Token, map[string]any{"dealerId": d2})
	w.must(200, "PUT", acme+"/locations/"+locID+"/dealer", w.alice.Token, map[string]any{"dealerId": d2})
	if out := w.must(200, "PUT", acme+"/locations/"+loc2ID+"/dealer", w.alice.Token, map[string]any{"dealerId": nil}); out["dealerId"] != nil {
		t.Fatalf("cleared dealer = %v", out)
	}
	w.expect(422, "dealerId", "PUT", acme+"/locations/"+locID+"/dealer", w.alice.Token, map[string]any{"dealerId": uuid.NewString()})
	w.expect(422, "dealerId", "PUT", acme+"/locations/"+locID+"/dealer", w.alice.Token, map[string]any{})
	w.expect(404, "", "PUT", acme+"/locations/"+fooLoc+"/dealer", w.alice.Token, map[string]any{"dealerId": d1})

	// Teams and members.
	team := w.must(201, "POST", acme+"/teams", w.alice.Token, map[string]any{"name": "Night shift"})
	teamID := team["id"].(string)
	fooTeam := w.must(201, "POST", "/customers/"+w.foo+"/teams", w.bob.Token, map[string]any{"name": "Foo team"})["id"].(string)
	w.expect(422, "name", "POST", acme+"/teams", w.alice.Token, map[string]any{"name": ""})
	w.must(204, "PUT", acme+"/teams/"+teamID+"/members/"+w.carol.EmployeeID, w.alice.Token, nil)
	w.must(204, "PUT", acme+"/teams/"+teamID+"/members/"+w.carol.EmployeeID, w.alice.Token, nil) // idempotent
	w.must(204, "PUT", acme+"/teams/"+teamID+"/members/"+w.dave.EmployeeID, w.alice.Token, nil)
	w.expect(404, "", "PUT", acme+"/teams/"+teamID+"/members/"+w.fred.EmployeeID, w.alice.Token, nil)
	w.expect(404, "", "PUT", acme+"/teams/"+fooTeam+"/members/"+w.carol.EmployeeID, w.alice.Token, nil)
	w.expect(403, "", "PUT", acme+"/teams/"+teamID+"/members/"+w.dave.EmployeeID, w.dave.Token, nil)

	// Location roles of employees and teams.
	if out := w.must(200, "PUT", acme+"/locations/"+locID+"/employee-roles/"+w.carol.EmployeeID, w.alice.Token,
		map[string]any{"roles": []string{viewer, armer, armer}}); !reflect.DeepEqual(out["roles"], []any{armer, viewer}) {
		t.Fatalf("employee location roles = %v", out)
	}
	w.must(200, "PUT", acme+"/locations/"+locID+"/team-roles/"+teamID, w.alice.Token, map[string]any{"roles": []string{disarmer}})
	w.must(200, "PUT", acme+"/locations/"+loc2ID+"/employee-roles/"+w.dave.EmployeeID, w.alice.Token, map[string]any{"roles": []string{viewer}})
	w.expect(422, "roles[1]", "PUT", acme+"/locations/"+locID+"/employee-roles/"+w.carol.EmployeeID, w.alice.Token,
		map[string]any{"roles": []string{armer, empAdmin}})
	w.expect(422, "roles", "PUT", acme+"/locations/"+locID+"/team-roles/"+teamID, w.alice.Token, map[string]any{})
	w.expect(404, "", "PUT", acme+"/locations/"+fooLoc+"/employee-roles/"+w.carol.EmployeeID, w.alice.Token, map[string]any{"roles": []string{armer}})
	w.expect(404, "", "PUT", acme+"/locations/"+locID+"/employee-roles/"+w.fred.EmployeeID, w.alice.Token, map[string]any{"roles": []string{armer}})
	w.expect(404, "", "PUT", acme+"/locations/"+locID+"/team-roles/"+fooTeam, w.alice.Token, map[string]any{"roles": []string{armer}})
	w.expect(403, "", "PUT", acme+"/locations/"+locID+"/team-roles/"+teamID, w.bob.Token, map[string]any{"roles": []string{armer}})

	// Every accepted change is one documented event, in order.
	evs, _ := w.eventsSince(pos)
	want := []struct {
		typ     string
		payload map[string]any
	}{
		{"customer.location_created", map[string]any{"customerId": w.acme, "locationId": locID, "name": "HQ", "dealerId": d1}},
		{"customer.location_created", map[string]any{"customerId": w.acme, "locationId": loc2ID, "name": "Depot", "dealerId": nil}},
		{"customer.location_created", map[string]any{"customerId": w.foo, "locationId": fooLoc, "name": "Foo HQ", "dealerId": nil}},
		{"customer.location_dealer_changed", map[string]any{"customerId": w.acme, "locationId": locID, "dealerId": d2, "previousDealerId": d1}},
		{"customer.team_created", map[string]any{"customerId": w.acme, "teamId": teamID, "name": "Night shift"}},
		{"customer.team_created", map[string]any{"customerId": w.foo, "teamId": fooTeam, "name": "Foo team"}},
		{"customer.team_member_added", map[string]any{"customerId": w.acme, "teamId": teamID, "employeeId": w.carol.EmployeeID, "userId": w.carol.UserID}},
		{"customer.team_member_added", map[string]any{"customerId": w.acme, "teamId": teamID, "employeeId": w.dave.EmployeeID, "userId": w.dave.UserID}},
		{"customer.location_employee_roles_set", map[string]any{"customerId": w.acme, "locationId": locID, "employeeId": w.carol.EmployeeID, "userId": w.carol.UserID, "roles": []any{armer, viewer}}},
		{"customer.location_team_roles_set", map[string]any{"customerId": w.acme, "locationId": locID, "teamId": teamID, "roles": []any{disarmer}}},
		{"customer.location_employee_roles_set", map[string]any{"customerId": w.acme, "locationId": loc2ID, "employeeId": w.dave.EmployeeID, "userId": w.dave.UserID, "roles": []any{viewer}}},
	}
	if len(evs) != len(want) {
		t.Fatalf("got %d events, want %d: %+v", len(evs), len(want), evs)
	}
	for i, wv := range want {
		if evs[i].Type != wv.typ || !reflect.DeepEqual(evs[i].Payload, wv.payload) || evs[i].AggregateID != wv.payload["customerId"] {
			t.Fatalf("event %d = %s %v (aggregate %s); want %s %v", i, evs[i].Type, evs[i].Payload, evs[i].AggregateID, wv.typ, wv.payload)
		}
	}
	// (The cleared dealer of loc2 had none before: no change, no event.)

	// Reads.
	locs := w.must(200, "GET", acme+"/locations", w.alice.Token, nil)["locations"].([]any)
	if len(locs) != 2 {
		t.Fatalf("locations = %v", locs)
	}
	hq := w.must(200, "GET", acme+"/locations/"+locID, w.dave.Token, nil)
	if hq["dealerId"] != d2 || len(hq["employeeRoles"].([]any)) != 1 || len(hq["teamRoles"].([]any)) != 1 {
		t.Fatalf("location view = %v", hq)
	}
	w.expect(404, "", "GET", acme+"/locations/"+fooLoc, w.alice.Token, nil)
	w.expect(403, "", "GET", acme+"/locations", w.bob.Token, nil)
	w.must(200, "GET", acme+"/locations", w.platform, nil)
	teams := w.must(200, "GET", acme+"/teams", w.alice.Token, nil)["teams"].([]any)
	members := teams[0].(map[string]any)["members"].([]any)
	if len(teams) != 1 || len(members) != 2 {
		t.Fatalf("teams = %v", teams)
	}
	emp := w.must(200, "GET", acme+"/employees/"+w.carol.EmployeeID, w.alice.Token, nil)
	if !reflect.DeepEqual(emp["locationRoles"], map[string]any{locID: []any{armer, viewer}}) || len(emp["teams"].([]any)) != 1 || emp["userId"] != w.carol.UserID {
		t.Fatalf("employee view = %v", emp)
	}
	// The roles Carol holds through her team are on her page and on the
	// team's: the editors open with them.
	if through := emp["teams"].([]any)[0].(map[string]any); through["id"] != teamID ||
		!reflect.DeepEqual(through["locationRoles"], map[string]any{locID: []any{disarmer}}) {
		t.Fatalf("employee's team with its location roles = %v", through)
	}
	teamView := w.must(200, "GET", acme+"/teams/"+teamID, w.alice.Token, nil)
	if !reflect.DeepEqual(teamView["locationRoles"], map[string]any{locID: []any{disarmer}}) || len(teamView["members"].([]any)) != 2 {
		t.Fatalf("team view = %v", teamView)
	}
	if _, ok := teams[0].(map[string]any)["locationRoles"]; ok {
		t.Fatalf("the teams list carries location roles (one read per team): %v", teams[0])
	}
	w.expect(403, "", "GET", acme+"/teams/"+teamID, w.bob.Token, nil)
	if custs := w.must(200, "GET", "/customers", w.carol.Token, nil)["customers"].([]any); len(custs) != 1 {
		t.Fatalf("carol's customers = %v", custs)
	}

	// Revocation: [] and leaving a team.
	pos = w.lastPos()
	w.must(200, "PUT", acme+"/locations/"+locID+"/team-roles/"+teamID, w.alice.Token, map[string]any{"roles": []string{}})
	w.must(204, "DELETE", acme+"/teams/"+teamID+"/members/"+w.carol.EmployeeID, w.alice.Token, nil)
	w.must(204, "DELETE", acme+"/teams/"+teamID+"/members/"+w.carol.EmployeeID, w.alice.Token, nil) // idempotent
	evs, _ = w.eventsSince(pos)
	if len(evs) != 2 || evs[0].Type != "customer.location_team_roles_set" || !reflect.DeepEqual(evs[0].Payload["roles"], []any{}) ||
		evs[1].Type != "customer.team_member_removed" || evs[1].Payload["userId"] != w.carol.UserID {
		t.Fatalf("revocation events = %+v", evs)
	}

	// Removing an employee revokes their location roles and memberships.
	pos = w.lastPos()
	w.must(204, "DELETE", acme+"/employees/"+w.dave.EmployeeID, w.alice.Token, nil)
	evs, _ = w.eventsSince(pos)
	types := []string{}
	for _, ev := range evs {
		types = append(types, ev.Type)
	}
	wantTypes := []string{"customer.employee_removed", "customer.location_employee_roles_set", "customer.team_member_removed"}
	if !slices.Equal(types, wantTypes) || !reflect.DeepEqual(evs[1].Payload["roles"], []any{}) || evs[1].Payload["userId"] != w.dave.UserID {
		t.Fatalf("removal events = %+v", evs)
	}
	w.expect(404, "", "GET", acme+"/employees/"+w.dave.EmployeeID, w.alice.Token, nil)

	// The relay publishes the outbox to the customer stream.
	w.waitFor("the outbox to be published", func() bool {
		var n int
		_ = w.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM event_outbox WHERE sent_at IS NULL`).Scan(&n)
		return n == 0
	})
	stream, err := w.js.Stream(context.Background(), events.StreamName(w.prefix, "customer"))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(context.Background(), events.Subject(w.prefix, "customer.location_team_roles_set"))
	if err != nil || msg == nil {
		t.Fatalf("location_team_roles_set not in the stream: %v", err)
	}
}

func TestFactsEndpoints(t *testing.T) {
	w := newWorld(t)
	acme := "/customers/" + w.acme
	d1 := uuid.NewString()
	w.publishDealer(d1, "Dealer One")
	l1 := w.must(201, "POST", acme+"/locations", w.alice.Token, map[string]any{"name": "L1", "dealerId": d1})["id"].(string)
	l2 := w.must(201, "POST", acme+"/locations", w.alice.Token, map[string]any{"name": "L2"})["id"].(string)
	team := w.must(201, "POST", acme+"/teams", w.alice.Token, map[string]any{"name": "T"})["id"].(string)
	w.must(204, "PUT", acme+"/teams/"+team+"/members/"+w.carol.EmployeeID, w.alice.Token, nil)
	w.must(200, "PUT", acme+"/locations/"+l1+"/employee-roles/"+w.carol.EmployeeID, w.alice.Token, map[string]any{"roles": []string{armer}})
	w.must(200, "PUT", acme+"/locations/"+l1+"/team-roles/"+team, w.alice.Token, map[string]any{"roles": []string{disarmer, armer}})
	w.must(200, "PUT", acme+"/locations/"+l2+"/team-roles/"+team, w.alice.Token, map[string]any{"roles": []string{viewer}})
	w.must(200, "PUT", acme+"/employees/"+w.carol.EmployeeID+"/roles", w.alice.Token, map[string]any{"roles": []string{viewer}})

	svc := w.iss.service(t, "realguardio-securitysystem", "authz:read")
	subj := "/authz/subjects/" + w.carol.UserID

	// Merged location roles: direct ∪ team.
	for _, tok := range []string{svc, w.carol.Token} {
		out := w.must(200, "GET", subj, tok, nil)
		wantLR := map[string]any{l1: []any{armer, disarmer}, l2: []any{viewer}}
		org := out["organization"].(map[string]any)
		if !reflect.DeepEqual(out["locationRoles"], wantLR) || org["kind"] != "customer" || org["id"] != w.acme ||
			!reflect.DeepEqual(org["roles"], []any{viewer}) || out["schedule"] != nil || out["userId"] != w.carol.UserID {
			t.Fatalf("subject facts = %v", out)
		}
	}
	// Leaving the team takes the team's roles away.
	w.must(204, "DELETE", acme+"/teams/"+team+"/members/"+w.carol.EmployeeID, w.alice.Token, nil)
	if out := w.must(200, "GET", subj, svc, nil); !reflect.DeepEqual(out["locationRoles"], map[string]any{l1: []any{armer}}) {
		t.Fatalf("after leaving the team: %v", out["locationRoles"])
	}
	// A user who is nobody's employee: no organization, no location roles.
	stranger := uuid.NewString()
	if out := w.must(200, "GET", "/authz/subjects/"+stranger, svc, nil); out["organization"] != nil || !reflect.DeepEqual(out["locationRoles"], map[string]any{}) {
		t.Fatalf("stranger = %v", out)
	}
	// Authorization: another user's facts, a service without the scope.
	w.expect(403, "", "GET", subj, w.dave.Token, nil)
	w.expect(403, "", "GET", subj, w.alice.Token, nil)
	w.expect(403, "", "GET", subj, w.iss.service(t, "realguardio-bff", "users:write"), nil)
	w.expect(403, "", "GET", "/authz/locations/"+l1, w.carol.Token, nil)
	w.expect(403, "", "POST", "/authz/locations:batch", w.carol.Token, map[string]any{"locationIds": []string{l1}})

	// Location facts.
	if out := w.must(200, "GET", "/authz/locations/"+l1, svc, nil); !reflect.DeepEqual(out, map[string]any{"locationId": l1, "customerId": w.acme, "dealerId": d1}) {
		t.Fatalf("location facts = %v", out)
	}
	if out := w.must(200, "GET", "/authz/locations/"+l2, svc, nil); out["dealerId"] != nil {
		t.Fatalf("location facts without dealer = %v", out)
	}
	w.expect(404, "", "GET", "/authz/locations/"+uuid.NewString(), svc, nil)
	out := w.must(200, "POST", "/authz/locations:batch", svc, map[string]any{"locationIds": []string{l2, uuid.NewString(), l1}})
	locs := out["locations"].([]any)
	if len(locs) != 2 || locs[0].(map[string]any)["locationId"] != l2 || locs[1].(map[string]any)["dealerId"] != d1 {
		t.Fatalf("batch = %v", out)
	}
	w.expect(422, "locationIds", "POST", "/authz/locations:batch", svc, map[string]any{"locationIds": []string{"x"}})
	w.expect(422, "locationIds", "POST", "/authz/locations:batch", svc, map[string]any{})
	// The locations a dealer services, for the fetch strategy's lists.
	if out := w.must(200, "POST", "/authz/locations:byDealers", svc, map[string]any{"dealerIds": []string{d1, uuid.NewString()}}); !reflect.DeepEqual(out, map[string]any{"locationIds": []any{l1}, "nextCursor": nil}) {
		t.Fatalf("locations by dealers = %v", out)
	}
	if out := w.must(200, "POST", "/authz/locations:byDealers", svc, map[string]any{"dealerIds": []string{d1}, "cursor": l1}); !reflect.DeepEqual(out["locationIds"], []any{}) {
		t.Fatalf("locations by dealers after the last = %v", out)
	}
	w.expect(403, "", "POST", "/authz/locations:byDealers", w.carol.Token, map[string]any{"dealerIds": []string{d1}})
	w.expect(400, "dealerIds[0]", "POST", "/authz/locations:byDealers", svc, map[string]any{"dealerIds": []string{"x"}})
	w.expect(400, "cursor", "POST", "/authz/locations:byDealers", svc, map[string]any{"dealerIds": []string{d1}, "cursor": "x"})
	w.expect(422, "dealerIds", "POST", "/authz/locations:byDealers", svc, map[string]any{})
}

// TestRemovalRevokesAtomically checks that an employee's removal and the
// revocation of the employee's location roles and team memberships commit
// together: when the revocation fails, the employee stays, and a retry
// removes and revokes everything.
func TestRemovalRevokesAtomically(t *testing.T) {
	w := newWorld(t)
	acme := "/customers/" + w.acme
	loc := w.must(201, "POST", acme+"/locations", w.alice.Token, map[string]any{"name": "HQ"})["id"].(string)
	team := w.must(201, "POST", acme+"/teams", w.alice.Token, map[string]any{"name": "T"})["id"].(string)
	w.must(204, "PUT", acme+"/teams/"+team+"/members/"+w.dave.EmployeeID, w.alice.Token, nil)
	w.must(200, "PUT", acme+"/locations/"+loc+"/employee-roles/"+w.dave.EmployeeID, w.alice.Token, map[string]any{"roles": []string{armer}})
	ctx := context.Background()
	// The store refuses to drop memberships: the revocation fails after
	// the kit marked the employee removed in the same transaction.
	if _, err := w.db.ExecContext(ctx, `CREATE TRIGGER refuse_revocation BEFORE DELETE ON customer_team_members BEGIN SELECT RAISE(ABORT, 'injected failure'); END`); err != nil {
		t.Fatal(err)
	}
	pos := w.lastPos()
	w.expect(500, "", "DELETE", acme+"/employees/"+w.dave.EmployeeID, w.alice.Token, nil)
	w.must(200, "GET", acme+"/employees/"+w.dave.EmployeeID, w.alice.Token, nil)
	if evs, _ := w.eventsSince(pos); len(evs) != 0 {
		t.Fatalf("a failed removal wrote events: %+v", evs)
	}
	if _, err := w.db.ExecContext(ctx, `DROP TRIGGER refuse_revocation`); err != nil {
		t.Fatal(err)
	}
	w.must(204, "DELETE", acme+"/employees/"+w.dave.EmployeeID, w.alice.Token, nil)
	evs, _ := w.eventsSince(pos)
	types := []string{}
	for _, ev := range evs {
		types = append(types, ev.Type)
	}
	if !slices.Equal(types, []string{"customer.employee_removed", "customer.location_employee_roles_set", "customer.team_member_removed"}) {
		t.Fatalf("removal events = %v", types)
	}
	if teams := w.must(200, "GET", acme+"/teams/"+team, w.alice.Token, nil); len(teams["members"].([]any)) != 0 {
		t.Fatalf("team after the removal = %v", teams)
	}

	// Re-hired, dave is the same employee and user, without the grants
	// revoked at the removal.
	out := w.must(201, "POST", acme+"/employees", w.alice.Token, map[string]any{"email": "dave@acme.test", "firstName": "Dave", "lastName": "Again"})
	if out["id"] != w.dave.EmployeeID || out["userId"] != w.dave.UserID {
		t.Fatalf("re-hired as %v", out)
	}
	emp := w.must(200, "GET", acme+"/employees/"+w.dave.EmployeeID, w.alice.Token, nil)
	if !reflect.DeepEqual(emp["locationRoles"], map[string]any{}) || len(emp["teams"].([]any)) != 0 || emp["lastName"] != "Again" {
		t.Fatalf("re-hired employee = %v", emp)
	}
}
