package bff

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/realguardio/realguardio/internal/policy"
)

// fakeWorld is a small, consistent stand-in for the Customer and Security
// System services: the dashboard reflects the location roles granted
// through the customer administration forms, so a browser test can
// administer a role and watch the dashboard change.
type fakeWorld struct {
	mu      sync.Mutex
	user    string
	systems []*securitySystem
	// roles[locationId] are the location roles of the user.
	roles   map[string][]string
	profile map[string]string
	// denyArm names a system whose arming is denied outside the shift.
	denyArm string
	// down makes the security system service answer 503 to changes.
	down bool
	// pageSize, when positive, caps the page of GET /securitysystems
	// below the limit asked for, so a test sees several pages.
	pageSize int
	// moreEmployees adds that many employees to the customer's list.
	moreEmployees int
}

const (
	fakeCustomer = "c0000000-0000-0000-0000-000000000001"
	fakeLoc1     = "10000000-0000-0000-0000-000000000001"
	fakeLoc2     = "10000000-0000-0000-0000-000000000002"
	fakeEmployee = "e0000000-0000-0000-0000-000000000001"
	// fakeEmployee2 is Bob, whose account is disabled (entityWorld).
	fakeEmployee2 = "e0000000-0000-0000-0000-000000000002"
	fakeTeam      = "70000000-0000-0000-0000-000000000001"
	fakeDealer    = "d0000000-0000-0000-0000-000000000001"
)

func newFakeWorld(user string) *fakeWorld {
	return &fakeWorld{
		user: user,
		systems: []*securitySystem{
			{ID: "50000000-0000-0000-0000-000000000001", Name: "Main entrance", LocationID: fakeLoc1, State: "ARMED"},
			{ID: "50000000-0000-0000-0000-000000000002", Name: "Server room", LocationID: fakeLoc1, State: "DISARMED"},
			{ID: "50000000-0000-0000-0000-000000000003", Name: "Warehouse", LocationID: fakeLoc2, State: "ARMED"},
		},
		roles:   map[string][]string{fakeLoc1: {"SECURITY_SYSTEM_ARMER", "SECURITY_SYSTEM_DISARMER"}},
		profile: map[string]string{"firstName": "Alice", "lastName": "Admin", "phoneNumber": "+49 30 1234567"},
		denyArm: "50000000-0000-0000-0000-000000000002",
	}
}

func (f *fakeWorld) view(s *securitySystem) (securitySystem, bool) {
	roles := f.roles[s.LocationID]
	if len(roles) == 0 {
		return securitySystem{}, false
	}
	out := *s
	out.Actions = []string{}
	for _, r := range roles {
		if r == "SECURITY_SYSTEM_ARMER" && s.State == "DISARMED" {
			out.Actions = append(out.Actions, "ARM")
		}
		if r == "SECURITY_SYSTEM_DISARMER" && s.State == "ARMED" {
			out.Actions = append(out.Actions, "DISARM")
		}
	}
	return out, true
}

func problem(w http.ResponseWriter, status int, detail, reason, field string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": http.StatusText(status), "status": status, "detail": detail, "reason": reason, "field": field})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeWorld) securitySystemHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /securitysystems", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		// The filters and paging of API.md "Lists": name contains q
		// (case-insensitive), state, locationId; limit and an opaque
		// cursor (here the offset).
		q := r.URL.Query()
		list := []securitySystem{}
		for _, s := range f.systems {
			v, ok := f.view(s)
			if !ok ||
				(q.Get("q") != "" && !strings.Contains(strings.ToLower(v.Name), strings.ToLower(q.Get("q")))) ||
				(q.Get("state") != "" && v.State != q.Get("state")) ||
				(q.Get("locationId") != "" && v.LocationID != q.Get("locationId")) {
				continue
			}
			list = append(list, v)
		}
		limit, _ := strconv.Atoi(q.Get("limit"))
		if limit <= 0 {
			limit = 50
		}
		if f.pageSize > 0 {
			limit = min(limit, f.pageSize)
		}
		from, _ := strconv.Atoi(q.Get("cursor"))
		from = min(max(from, 0), len(list))
		to := min(from+limit, len(list))
		out := map[string]any{"securitySystems": list[from:to]}
		if to < len(list) {
			out["nextCursor"] = strconv.Itoa(to)
		}
		writeJSON(w, 200, out)
	})
	mux.HandleFunc("GET /securitysystems/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, s := range f.systems {
			if s.ID == r.PathValue("id") {
				if v, ok := f.view(s); ok {
					writeJSON(w, 200, v)
					return
				}
			}
		}
		problem(w, 404, "unknown security system", "", "")
	})
	// The access review of the user alone: their location roles, as
	// grants at the location, everything allowed now.
	mux.HandleFunc("GET /securitysystems/{id}/access", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("userId") != "me" {
			problem(w, 403, "only administrators review everyone's access", "no_role", "")
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, s := range f.systems {
			if s.ID != r.PathValue("id") {
				continue
			}
			if _, ok := f.view(s); !ok {
				break
			}
			u := accessUser{UserID: f.user, Username: "alice@example.com", Actions: []string{"VIEW"}, AllowedNow: []string{"VIEW"}}
			for _, role := range f.roles[s.LocationID] {
				u.Grants = append(u.Grants, policy.Grant{Role: role, Via: policy.ViaLocation, ID: s.LocationID, Name: "Head office"})
				switch role {
				case "SECURITY_SYSTEM_ARMER":
					u.Actions, u.AllowedNow = append(u.Actions, "ARM"), append(u.AllowedNow, "ARM")
				case "SECURITY_SYSTEM_DISARMER":
					u.Actions, u.AllowedNow = append(u.Actions, "DISARM"), append(u.AllowedNow, "DISARM")
				}
			}
			writeJSON(w, 200, accessReview{SecuritySystemID: s.ID, Users: []accessUser{u}})
			return
		}
		problem(w, 404, "unknown security system", "", "")
	})
	mux.HandleFunc("PUT /securitysystems/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		var body struct{ Action string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		if f.down {
			problem(w, 503, "the authorization service is unavailable", "", "")
			return
		}
		for _, s := range f.systems {
			if s.ID != r.PathValue("id") {
				continue
			}
			if body.Action == "ARM" && s.ID == f.denyArm {
				problem(w, 403, "outside the caller's schedule", "outside_schedule", "")
				return
			}
			v, ok := f.view(s)
			allowed := false
			for _, a := range v.Actions {
				allowed = allowed || a == body.Action
			}
			if !ok || !allowed {
				problem(w, 403, "no role", "no_role", "")
				return
			}
			if body.Action == "ARM" {
				s.State = "ARMED"
			} else {
				s.State = "DISARMED"
			}
			v, _ = f.view(s)
			writeJSON(w, 200, v)
			return
		}
		problem(w, 404, "unknown security system", "", "")
	})
	return mux
}

func (f *fakeWorld) customerHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authz/subjects/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"userId": r.PathValue("id"),
			"organization": map[string]any{"kind": "customer", "id": fakeCustomer, "roles": []string{"CUSTOMER_EMPLOYEE_ADMINISTRATOR"}}})
	})
	mux.HandleFunc("POST /customers/{c}/employees", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		_ = json.NewDecoder(r.Body).Decode(&body)
		if strings.HasPrefix(body["email"], "taken@") {
			problem(w, 409, "email: an employee with this e-mail address exists", "", "email")
			return
		}
		writeJSON(w, 201, map[string]any{"id": "e0000000-0000-0000-0000-000000000009", "userId": "u0000000-0000-0000-0000-000000000009", "initialPassword": "Generated-Pass-123"})
	})
	mux.HandleFunc("PUT /customers/{c}/locations/{l}/employee-roles/{e}", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Roles []string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		f.roles[r.PathValue("l")] = body.Roles
		f.mu.Unlock()
		writeJSON(w, 200, map[string]any{"roles": body.Roles})
	})
	// The read endpoints the administration page offers names from.
	// The employees: Alice, then f.moreEmployees generated ones, filtered
	// by q and paged by an offset cursor as API.md "Lists" says.
	mux.HandleFunc("GET /customers/{c}/employees", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		n := f.moreEmployees
		f.mu.Unlock()
		all := []map[string]any{
			{"id": fakeEmployee, "userId": "user-1", "email": "alice@example.com", "firstName": "Alice", "lastName": "Admin", "roles": []string{"CUSTOMER_EMPLOYEE_ADMINISTRATOR"}},
		}
		for i := range n {
			all = append(all, map[string]any{"id": fmt.Sprintf("e1000000-0000-0000-0000-%012d", i), "email": fmt.Sprintf("worker%03d@example.com", i),
				"firstName": "Worker", "lastName": fmt.Sprintf("%03d", i), "roles": []string{}})
		}
		q := r.URL.Query()
		list := []map[string]any{}
		for _, e := range all {
			name := e["firstName"].(string) + " " + e["lastName"].(string)
			if q.Get("q") == "" || strings.Contains(strings.ToLower(name), strings.ToLower(q.Get("q"))) {
				list = append(list, e)
			}
		}
		limit, _ := strconv.Atoi(q.Get("limit"))
		if limit <= 0 {
			limit = 50
		}
		from, _ := strconv.Atoi(q.Get("cursor"))
		from = min(max(from, 0), len(list))
		to := min(from+limit, len(list))
		out := map[string]any{"employees": list[from:to], "nextCursor": nil}
		if to < len(list) {
			out["nextCursor"] = strconv.Itoa(to)
		}
		writeJSON(w, 200, out)
	})
	mux.HandleFunc("GET /customers/{c}/locations", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		locs := []map[string]any{}
		for _, l := range []struct{ id, name string }{{fakeLoc1, "Head office"}, {fakeLoc2, "Warehouse"}} {
			grants := []map[string]any{}
			if roles := f.roles[l.id]; len(roles) > 0 {
				grants = append(grants, map[string]any{"employeeId": fakeEmployee, "roles": roles})
			}
			locs = append(locs, map[string]any{"id": l.id, "name": l.name, "dealerId": nil, "employeeRoles": grants, "teamRoles": []any{}})
		}
		writeJSON(w, 200, map[string]any{"locations": locs})
	})
	// The names of the asked locations, as GET /location-names answers
	// one who may see them all.
	mux.HandleFunc("GET /location-names", func(w http.ResponseWriter, r *http.Request) {
		known := map[string]string{fakeLoc1: "Head office", fakeLoc2: "Warehouse"}
		out := []map[string]string{}
		for _, id := range strings.Split(r.URL.Query().Get("ids"), ",") {
			if n, ok := known[id]; ok {
				out = append(out, map[string]string{"id": id, "name": n, "customerId": fakeCustomer})
			}
		}
		writeJSON(w, 200, map[string]any{"locations": out})
	})
	mux.HandleFunc("GET /customers/{c}/teams", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"teams": []map[string]any{{"id": fakeTeam, "name": "Night Watch", "members": []string{fakeEmployee}}}})
	})
	mux.HandleFunc("GET /profiles", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSON(w, 200, f.profile)
	})
	mux.HandleFunc("PUT /profiles", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		_ = json.NewDecoder(r.Body).Decode(&body)
		if body["phoneNumber"] != "" && !strings.HasPrefix(body["phoneNumber"], "+") {
			problem(w, 422, "phoneNumber: must be in international format, e.g. +49 30 1234567", "", "phoneNumber")
			return
		}
		f.mu.Lock()
		f.profile = body
		f.mu.Unlock()
		writeJSON(w, 200, body)
	})
	return mux
}

// orgless answers the subject facts of a user who works for no
// organization of this kind.
func orgless() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/authz/subjects/") {
			writeJSON(w, 200, map[string]any{"organization": nil})
			return
		}
		// The public directories of dealers and providers.
		switch r.URL.Path {
		case "/dealers":
			writeJSON(w, 200, map[string]any{"dealers": []map[string]any{{"id": fakeDealer, "name": "SecureCo"}}})
			return
		case "/monitoring-providers":
			writeJSON(w, 200, map[string]any{"monitoringProviders": []map[string]any{}})
			return
		}
		problem(w, 404, "not found", "", "")
	})
}

// fakeBackends starts the fake services.
func (f *fakeWorld) start(t testing.TB) backendURLs {
	ss := httptest.NewServer(f.securitySystemHandler())
	cu := httptest.NewServer(f.customerHandler())
	de := httptest.NewServer(orgless())
	mo := httptest.NewServer(orgless())
	t.Cleanup(func() { ss.Close(); cu.Close(); de.Close(); mo.Close() })
	return backendURLs{ss: ss.URL, customer: cu.URL, dealer: de.URL, monitoring: mo.URL}
}
