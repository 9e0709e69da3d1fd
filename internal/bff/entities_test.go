package bff

import (
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// entityWorld starts the fake world with the read endpoints of the entity
// pages and the Security System Service's audit added in front of it, and
// returns a client signed in as the fake customer's administrator (roles
// are the token's application roles) and the audit queries seen.
func entityWorld(t *testing.T, strategy string, roles ...string) (*testBFF, *http.Client, *[]url.Values) {
	t.Helper()
	world := newFakeWorld("user-1")
	be := world.start(t)
	cu := world.customerHandler()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /customers/{c}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"id": fakeCustomer, "name": "Acme"})
	})
	// Alice's account is enabled, Bob's (fakeEmployee2) disabled.
	mux.HandleFunc("GET /customers/{c}/employees/{e}/account", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"employeeId": r.PathValue("e"), "enabled": r.PathValue("e") == fakeEmployee})
	})
	mux.HandleFunc("GET /customers/{c}/employees/{e}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("e") == fakeEmployee2 {
			writeJSON(w, 200, map[string]any{"id": fakeEmployee2, "userId": "user-2", "email": "bob@example.com", "firstName": "Bob", "lastName": "Builder",
				"roles": []string{}, "schedule": nil, "locationRoles": map[string][]string{}, "teams": []any{}})
			return
		}
		if r.PathValue("e") != fakeEmployee {
			problem(w, 404, "employee not found", "", "")
			return
		}
		writeJSON(w, 200, map[string]any{"id": fakeEmployee, "userId": "user-1", "email": "alice@example.com", "firstName": "Alice", "lastName": "Admin",
			"roles":         []string{"CUSTOMER_EMPLOYEE_ADMINISTRATOR", "SECURITY_SYSTEM_DISARMER"},
			"schedule":      map[string]any{"timezone": "Europe/Berlin", "shifts": []map[string]any{{"weekdays": []string{"MON", "TUE"}, "start": "09:00", "end": "17:00"}}},
			"locationRoles": map[string][]string{fakeLoc1: {"SECURITY_SYSTEM_ARMER"}},
			"teams":         []map[string]any{{"id": fakeTeam, "name": "Night Watch", "locationRoles": map[string][]string{fakeLoc2: {"SECURITY_SYSTEM_DISARMER"}}}},
		})
	})
	mux.HandleFunc("GET /customers/{c}/teams/{t}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"id": fakeTeam, "name": "Night Watch", "members": []string{fakeEmployee},
			"locationRoles": map[string][]string{fakeLoc2: {"SECURITY_SYSTEM_DISARMER"}}})
	})
	mux.HandleFunc("GET /customers/{c}/locations/{l}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"id": fakeLoc1, "name": "Head office", "dealerId": fakeDealer,
			"employeeRoles": []map[string]any{{"employeeId": fakeEmployee, "roles": []string{"SECURITY_SYSTEM_ARMER"}}}, "teamRoles": []any{}})
	})
	// Who has access to the location: two pages of one holder each.
	mux.HandleFunc("GET /customers/{c}/locations/{l}/access", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("cursor") == "" {
			writeJSON(w, 200, map[string]any{"locationId": fakeLoc1, "users": []map[string]any{{
				"employeeId": fakeEmployee, "userId": "user-1", "username": "alice@example.com",
				"organizationRoles": []string{"SECURITY_SYSTEM_VIEWER"}, "locationRoles": []string{"SECURITY_SYSTEM_ARMER"},
				"teams":    []map[string]any{{"teamId": fakeTeam, "name": "Night Watch", "roles": []string{"SECURITY_SYSTEM_DISARMER"}}},
				"schedule": map[string]any{"timezone": "Europe/Berlin", "shifts": []map[string]any{{"weekdays": []string{"MON", "TUE", "WED", "THU", "FRI"}, "start": "09:00", "end": "17:00"}}},
			}}, "nextCursor": "page-2"})
			return
		}
		writeJSON(w, 200, map[string]any{"locationId": fakeLoc1, "users": []map[string]any{{
			"employeeId": "e0000000-0000-0000-0000-000000000002", "userId": "user-2", "username": "bob@example.com",
			"organizationRoles": []string{}, "locationRoles": []string{"SECURITY_SYSTEM_VIEWER"}, "teams": []any{}, "schedule": nil,
		}}, "nextCursor": nil})
	})
	mux.Handle("/", cu)
	csrv := httptest.NewServer(mux)
	t.Cleanup(csrv.Close)
	be.customer = csrv.URL
	var mu sync.Mutex
	var audits []url.Values
	ss := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/audit" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		audits = append(audits, r.URL.Query())
		mu.Unlock()
		writeJSON(w, 200, map[string]any{"entries": []map[string]any{
			{"id": "a1", "at": "2026-12-01T10:00:00Z", "userId": "user-1", "securitySystemId": "50000000-0000-0000-0000-000000000002", "securitySystemName": "Server room",
				"action": "ARM", "decision": "denied", "reason": "outside_schedule", "strategy": strategy},
		}, "nextCursor": "next-1"})
	}))
	t.Cleanup(ss.Close)
	be.ss = ss.URL
	b := startBFF(t, "", "", be, []string{newKey(t)}, func(c *Config, _ *Deps) { c.Strategy = strategy })
	sess := testSession(fakeJWT(map[string]any{"sub": "user-1", "exp": time.Now().Add(time.Hour).Unix()}))
	sess.Roles = append([]string{"CUSTOMER_EMPLOYEE"}, roles...)
	return b, b.client(t, b.mintSession(t, sess)), &audits
}

func get(t *testing.T, b *testBFF, c *http.Client, path string, want int) string {
	t.Helper()
	resp, body := b.do(t, c, "GET", path, "", nil)
	if resp.StatusCode != want {
		t.Fatalf("GET %s = %d, want %d: %s", path, resp.StatusCode, want, body)
	}
	return body
}

func TestEffectText(t *testing.T) {
	for _, c := range []struct {
		strategy string
		lifetime time.Duration
		want     string
	}{
		{"provide", 5 * time.Minute, "at the user's next token refresh, at most 5 minutes"},
		{"provide", time.Hour, "at the user's next token refresh, at most 1 hour"},
		{"provide", 90 * time.Second, "at the user's next token refresh, at most 90 seconds"},
		{"fetch", 0, "at once"},
		{"replicate", 0, "within a second"},
		{"delegate", 0, "within a second"},
	} {
		s := &Service{cfg: Config{Strategy: c.strategy, TokenLifetime: c.lifetime}}
		if got := s.effectText(); got != c.want {
			t.Errorf("%s/%v: %q, want %q", c.strategy, c.lifetime, got, c.want)
		}
	}
	if got := (Config{}).withDefaults().TokenLifetime; got != 5*time.Minute {
		t.Errorf("default token lifetime %v", got)
	}
}

// TestEmployeePageShowsCurrentValues checks that the employee page renders
// the employee's roles, shifts and location roles (direct and through a
// team, by name) and opens its editors with them.
func TestEmployeePageShowsCurrentValues(t *testing.T) {
	b, c, _ := entityWorld(t, "provide")
	body := html.UnescapeString(get(t, b, c, "/admin/organizations/customer/"+fakeCustomer+"/employees/"+fakeEmployee, 200))
	for _, want := range []string{
		`data-testid="entity-name">Alice Admin</h1>`,
		`data-effect-text="at the user's next token refresh, at most 5 minutes"`,
		`MON,TUE 09:00–17:00 (Europe/Berlin)`,
		`data-current="{"` + fakeEmployee + `":["CUSTOMER_EMPLOYEE_ADMINISTRATOR","SECURITY_SYSTEM_DISARMER"]}"`,
		`"` + fakeEmployee + `":{"timezone":"Europe/Berlin"`,
		`data-current="{"` + fakeLoc1 + ` ` + fakeEmployee + `":["SECURITY_SYSTEM_ARMER"]}"`,
		`through team <a href="/admin/organizations/customer/` + fakeCustomer + `/teams/` + fakeTeam + `">Night Watch</a>`,
		`>Head office</span>`, `>Warehouse</span>`,
		`id="remove-employee"`,
		`<script src="/static/entities.js" defer></script>`,
		`<span class="state state-disarmed">Enabled</span>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the employee page lacks %s", want)
		}
	}
	if strings.Contains(body, `id="employee-account"`) {
		t.Error("the administrator is offered to disable their own account")
	}
	body = html.UnescapeString(get(t, b, c, "/admin/organizations/customer/"+fakeCustomer+"/employees/"+fakeEmployee2, 200))
	for _, want := range []string{
		`<span class="state state-armed">Disabled</span>`,
		`id="employee-account"`, `data-path="/api/customers/{customerId}/employees/{employeeId}/account"`,
		`data-json="enabled" data-kind="bool" value="true"`, `>Enable Bob Builder's account</button>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the disabled employee's page lacks %s", want)
		}
	}
	get(t, b, c, "/admin/organizations/customer/"+fakeCustomer+"/employees/e0000000-0000-0000-0000-000000000099", 404)
	get(t, b, c, "/admin/organizations/customer/not-an-id/employees/"+fakeEmployee, 404)
	get(t, b, c, "/admin/organizations/planet/"+fakeCustomer, 404)
}

func TestTeamAndOrganizationPagesPrefill(t *testing.T) {
	b, c, _ := entityWorld(t, "fetch")
	team := html.UnescapeString(get(t, b, c, "/admin/organizations/customer/"+fakeCustomer+"/teams/"+fakeTeam, 200))
	for _, want := range []string{
		`data-members="{"` + fakeTeam + ` ` + fakeEmployee + `":true}"`,
		`data-current="{"` + fakeLoc2 + ` ` + fakeTeam + `":["SECURITY_SYSTEM_DISARMER"]}"`,
		`data-effect-text="at once"`,
		// Deleting asks first, then opens the organization's teams.
		`id="delete-team"`, `data-method="DELETE" data-path="/api/customers/{customerId}/teams/{teamId}"`,
		`data-confirm="Delete Night Watch? Its one member loses the roles it holds at 1 location (at once). This cannot be undone."`,
		`data-then="/admin/organizations/customer/` + fakeCustomer + `#sec-teams"`,
	} {
		if !strings.Contains(team, want) {
			t.Errorf("the team page lacks %s", want)
		}
	}
	org := html.UnescapeString(get(t, b, c, "/admin/organization", 200))
	for _, want := range []string{
		`<h1>Acme</h1>`,
		`id="sec-employees"`, `id="sec-locations"`, `id="sec-teams"`,
		// Choosing Alice ticks her roles; choosing Head office shows her
		// grant there; the schedule editor knows every schedule.
		`data-current="{"` + fakeEmployee + `":["CUSTOMER_EMPLOYEE_ADMINISTRATOR"]}" data-key="["path:employeeId"]"`,
		`data-current="{"` + fakeLoc1 + ` ` + fakeEmployee + `":["SECURITY_SYSTEM_ARMER","SECURITY_SYSTEM_DISARMER"]}"`,
		`data-unique="/api/customers/` + fakeCustomer + `/teams"`,
		`href="/admin/organizations/customer/` + fakeCustomer + `/employees/` + fakeEmployee + `"`,
	} {
		if !strings.Contains(org, want) {
			t.Errorf("the organization page lacks %s", want)
		}
	}
}

// TestAuditPage checks the audit page: the filter reaches GET /audit as
// the API's parameters (a day as an instant), what the service would refuse
// is dropped, the decision reads in words, and the next page link keeps the
// filter.
func TestAuditPage(t *testing.T) {
	b, c, audits := entityWorld(t, "replicate")
	// The fake user administers the customer: its systems' audit.
	body := get(t, b, c, "/audit", 200)
	if !strings.Contains(body, "Server room") || !strings.Contains(body, "outside the user&#39;s shift") || !strings.Contains(body, "replicate") {
		t.Errorf("the audit page lacks the decision:\n%s", body)
	}
	if !strings.Contains(body, `id="audit-next" href="/audit?cursor=next-1"`) {
		t.Errorf("no next page link:\n%s", body)
	}
	body = get(t, b, c, "/audit?decision=denied&action=ARM&since=2026-12-01&until=bogus&securitySystemId=nope", 200)
	q := (*audits)[len(*audits)-1]
	if q.Get("decision") != "denied" || q.Get("action") != "ARM" || q.Get("since") != "2026-12-01T00:00:00Z" || q.Has("until") || q.Has("securitySystemId") || q.Get("limit") != "50" {
		t.Errorf("GET /audit asked with %v", q)
	}
	if !strings.Contains(body, `id="audit-clear"`) || !strings.Contains(html.UnescapeString(body), `href="/audit?action=ARM&cursor=next-1&decision=denied&since=2026-12-01"`) {
		t.Errorf("the filtered page lacks its clear or next link:\n%s", body)
	}
	// /api/audit forwards to the Security System Service.
	resp, raw := b.do(t, c, "GET", "/api/audit?decision=allowed", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(raw, `"entries"`) {
		t.Errorf("GET /api/audit = %d %s", resp.StatusCode, raw)
	}
}

func TestLocationPageShowsWhoHasAccess(t *testing.T) {
	b, c, _ := entityWorld(t, "fetch")
	base := "/admin/organizations/customer/" + fakeCustomer + "/locations/" + fakeLoc1
	body := html.UnescapeString(get(t, b, c, base, 200))
	for _, want := range []string{
		`id="location-access-table"`,
		`<td data-label="May">view, arm, disarm</td>`,
		`Role ARMER at Head office; granted through team Night Watch (DISARMER); role VIEWER in Acme`,
		`Shift: Mon–Fri 09:00–17:00 Europe/Berlin`,
		`The employees of the dealer`,
		`href="` + base + `?access.cursor=page-2#access-h"`,
		`id="delete-location"`, `data-path="/api/customers/{customerId}/locations/{locationId}"`,
		`data-then="/admin/organizations/customer/` + fakeCustomer + `#sec-locations"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the location page lacks %s", want)
		}
	}
	body = html.UnescapeString(get(t, b, c, base+"?access.cursor=page-2", 200))
	if !strings.Contains(body, `bob@example.com`) || strings.Contains(body, `Night Watch (DISARMER)`) || !strings.Contains(body, `id="location-access-first"`) {
		t.Errorf("the second page of who has access is wrong:\n%s", body)
	}
	if strings.Contains(body, `id="location-access-next"`) {
		t.Error("the last page links to a next one")
	}
}

func TestLocationPageHidesWhoHasAccessFromNonAdministrators(t *testing.T) {
	b, c, _ := entityWorld(t, "fetch")
	// The fake's subject facts make user-1 an administrator of
	// fakeCustomer, not of this other customer (whose location the fake
	// still answers): the page reads and shows no holders.
	body := get(t, b, c, "/admin/organizations/customer/c0000000-0000-0000-0000-000000000099/locations/"+fakeLoc1, 200)
	if strings.Contains(body, `id="location-access"`) {
		t.Error("a user who administers another organization sees who has access")
	}
}
