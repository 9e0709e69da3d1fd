package monitoring_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/realguardio/realguardio/internal/iam"
	"github.com/realguardio/realguardio/internal/monitoring"
	"github.com/realguardio/realguardio/internal/orgkit/orgkittest"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/policy"
)

// TestMonitoringService runs the service over real HTTP with real tokens
// from a real IAM, on SQLite and PostgreSQL. NATS is left out (Deps.JS
// nil): the events stay in the outbox, where the test reads them.
func TestMonitoringService(t *testing.T) {
	i := orgkittest.StartIAM(t, iam.AudienceMonitoring)
	i.CreateUser(t, "dealer-onboarding@realguardio.example", "onboarding-password-1", auth.RoleDealerAdministrator)
	i.CreateUser(t, "someone@customer.example", "customer-password-1", auth.RoleCustomerEmployee)
	dealerAdm := i.Login(t, "dealer-onboarding@realguardio.example", "onboarding-password-1")
	customer := i.Login(t, "someone@customer.example", "customer-password-1")
	admin := i.Login(t, "admin", orgkittest.AdminPassword)
	facts := i.ServiceToken(t, orgkittest.FactsClient, "authz:read")

	sqldbtest.ForEachStore(t, nil, func(t *testing.T, db *sqldb.DB) {
		svc, err := monitoring.New(context.Background(), monitoring.Config{Issuer: i.URL, IAMClientSecret: orgkittest.ClientSecret}, monitoring.Deps{DB: db})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(svc.Handler())
		defer srv.Close()
		do := func(method, path, token string, body any) orgkittest.Response {
			t.Helper()
			return orgkittest.Do(t, method, srv.URL+path, token, body)
		}
		suffix := string(db.Dialect())
		newProvider := func(name, email string) map[string]any {
			return map[string]any{"name": name, "administrator": map[string]any{"email": email, "firstName": "B", "lastName": "B"}}
		}

		do("GET", "/healthz", "", nil).Want(t, http.StatusOK)
		do("GET", "/readyz", "", nil).Want(t, http.StatusOK)
		do("POST", "/monitoring-providers", "", newProvider("P", "a@p.example")).Want(t, http.StatusUnauthorized)
		do("POST", "/monitoring-providers", dealerAdm, newProvider("P", "a@p.example")).Want(t, http.StatusForbidden)
		do("POST", "/monitoring-providers", customer, newProvider("P", "a@p.example")).Want(t, http.StatusForbidden)
		if r := do("POST", "/monitoring-providers", admin, map[string]any{"name": "P"}).Want(t, http.StatusUnprocessableEntity); r.String("field") != "administrator" {
			t.Fatalf("missing administrator not named: %s", r.Raw)
		}
		if r := do("POST", "/monitoring-providers", admin, `{"name":"P","boss":{}}`).Want(t, http.StatusBadRequest); r.String("field") != "boss" {
			t.Fatalf("unknown field not named: %s", r.Raw)
		}
		do("POST", "/monitoring-providers", admin, `{"name":`).Want(t, http.StatusBadRequest)
		do("GET", "/monitoring-providers/42", admin, nil).Want(t, http.StatusBadRequest)
		do("GET", "/no-such-path", admin, nil).Want(t, http.StatusNotFound)
		if r := do("POST", "/monitoring-providers", admin, newProvider("P", "not-an-email")).Want(t, http.StatusUnprocessableEntity); r.String("field") != "administrator.email" {
			t.Fatalf("bad e-mail not named: %s", r.Raw)
		}
		p := do("POST", "/monitoring-providers", admin, newProvider("Watchers", "boss-"+suffix+"@watch.example")).Want(t, http.StatusCreated)
		pID := p.String("id")
		// Generated passwords: each account chooses its own at the first
		// login.
		bossPassword := "boss-own-password-" + suffix
		boss := i.FirstLogin(t, "boss-"+suffix+"@watch.example", p.String("administrator.initialPassword"), bossPassword)

		emp := do("POST", "/monitoring-providers/"+pID+"/employees", boss, map[string]any{"email": "erin-" + suffix + "@watch.example", "firstName": "Erin", "lastName": "E"}).Want(t, http.StatusCreated)
		erin := i.FirstLogin(t, "erin-"+suffix+"@watch.example", emp.String("initialPassword"), "erin-own-password")
		path := "/monitoring-providers/" + pID + "/employees/" + emp.String("id")
		// Wrong application role: the administrator's account holds
		// another application role instead of MONITORING_PROVIDER_EMPLOYEE
		// for one login; that token names the administrator's sub, yet
		// changes nothing.
		bossID := p.String("administrator.userId")
		i.SetRoles(t, bossID, auth.RoleDealerEmployee)
		wrongRole := i.Login(t, "boss-"+suffix+"@watch.example", bossPassword)
		i.SetRoles(t, bossID, auth.RoleMonitoringEmployee)
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"PUT", path + "/roles", map[string]any{"roles": []string{policy.RoleViewer}}},
			{"POST", "/monitoring-providers/" + pID + "/employees", map[string]any{"email": "wrong-role-" + suffix + "@watch.example", "firstName": "W", "lastName": "R"}},
			{"PUT", path + "/schedule", map[string]any{"timezone": "UTC", "shifts": []any{map[string]any{"weekdays": []string{"SAT"}, "start": "22:00", "end": "06:00"}}}},
			{"DELETE", path + "/schedule", nil},
			{"DELETE", path, nil},
		} {
			if r := do(c.method, c.path, wrongRole, c.body).Want(t, http.StatusForbidden); r.String("reason") != policy.ReasonNoRole {
				t.Fatalf("%s %s: denial without reason: %s", c.method, c.path, r.Raw)
			}
		}
		do("PUT", path+"/roles", boss, map[string]any{"roles": []string{policy.RoleViewer}}).Want(t, http.StatusOK)
		do("PUT", path+"/roles", erin, map[string]any{"roles": []string{policy.RoleMonitoringProviderEmployeeAdministrator}}).Want(t, http.StatusForbidden)
		do("PUT", path+"/roles", admin, map[string]any{"roles": []string{policy.RoleViewer}}).Want(t, http.StatusForbidden)
		do("PUT", path+"/roles", boss, map[string]any{"roles": []string{policy.RoleDealerEmployeeAdministrator}}).Want(t, http.StatusUnprocessableEntity)
		do("PUT", path+"/schedule", boss, map[string]any{"timezone": "UTC", "shifts": []any{map[string]any{"weekdays": []string{"SAT"}, "start": "22:00", "end": "06:00"}}}).Want(t, http.StatusOK)
		do("PUT", path+"/schedule", boss, map[string]any{"timezone": "UTC", "shifts": []any{}}).Want(t, http.StatusUnprocessableEntity)
		do("PUT", path+"/schedule", boss, map[string]any{"timezone": "UTC", "shifts": []any{map[string]any{"weekdays": []string{"SAT"}, "start": "25:00", "end": "06:00"}}}).Want(t, http.StatusUnprocessableEntity)

		r := do("GET", "/authz/subjects/"+emp.String("userId"), facts, nil).Want(t, http.StatusOK)
		org := r.JSON["organization"].(map[string]any)
		if org["kind"] != "monitoring_provider" || org["id"] != pID || r.JSON["schedule"] == nil || !strings.Contains(r.Raw, `"roles":["SECURITY_SYSTEM_VIEWER"]`) {
			t.Fatalf("facts %s", r.Raw)
		}
		do("GET", "/authz/subjects/"+emp.String("userId"), boss, nil).Want(t, http.StatusForbidden)
		do("GET", "/authz/subjects/"+emp.String("userId"), erin, nil).Want(t, http.StatusOK)
		do("DELETE", path+"/schedule", boss, nil).Want(t, http.StatusNoContent)

		if r := do("GET", "/monitoring-providers", customer, nil).Want(t, http.StatusOK); !strings.Contains(r.Raw, pID) {
			t.Fatalf("list %s", r.Raw)
		}
		do("GET", "/monitoring-providers/"+pID, dealerAdm, nil).Want(t, http.StatusOK)
		do("GET", "/monitoring-providers/"+pID+"/employees", erin, nil).Want(t, http.StatusOK)
		do("GET", "/monitoring-providers/"+pID+"/employees", customer, nil).Want(t, http.StatusForbidden)
		do("GET", path, admin, nil).Want(t, http.StatusOK)

		var types []string
		rows, err := db.QueryContext(context.Background(), `SELECT event_type FROM event_outbox WHERE aggregate_type = ? AND aggregate_id = ? ORDER BY sequence`, "monitoring_provider", pID)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var typ string
			_ = rows.Scan(&typ)
			types = append(types, typ)
		}
		want := "monitoring.provider_created,monitoring.employee_created,monitoring.employee_roles_set,monitoring.employee_created,monitoring.employee_roles_set,monitoring.employee_schedule_set,monitoring.employee_schedule_cleared"
		if strings.Join(types, ",") != want {
			t.Fatalf("events %v", types)
		}
	})
}
