package dealer_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/dealer"
	"github.com/realguardio/realguardio/internal/iam"
	"github.com/realguardio/realguardio/internal/monitoring"
	"github.com/realguardio/realguardio/internal/orgkit"
	"github.com/realguardio/realguardio/internal/orgkit/orgkittest"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/events/eventstest"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/policy"
)

// env is a real IAM, a real NATS JetStream, and the dealer and monitoring
// services over HTTP on 127.0.0.1.
type env struct {
	iam        *orgkittest.IAM
	dealerURL  string
	monURL     string
	dealerDB   *sqldb.DB
	facts      string // service token with authz:read
	dealerAdm  string // REALGUARDIO_DEALER_ADMINISTRATOR only
	platformOp string // REALGUARDIO_ADMIN only
	customer   string // CUSTOMER_EMPLOYEE
	admin      string // the bootstrap admin (both platform roles)
}

func start(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	i := orgkittest.StartIAM(t, iam.AudienceDealer, iam.AudienceMonitoring)
	_, js := eventstest.Connect(t, eventstest.NATS(t))
	prefix := eventstest.Streams(t, js)
	e := &env{iam: i, dealerDB: sqldbtest.OpenSQLite(t)}

	d, err := dealer.New(ctx, dealer.Config{Issuer: i.URL, IAMClientSecret: orgkittest.ClientSecret, EventPrefix: prefix}, dealer.Deps{DB: e.dealerDB, JS: js})
	if err != nil {
		t.Fatal(err)
	}
	m, err := monitoring.New(ctx, monitoring.Config{Issuer: i.URL, IAMClientSecret: orgkittest.ClientSecret, EventPrefix: prefix}, monitoring.Deps{DB: sqldbtest.OpenSQLite(t), JS: js})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	for _, run := range []func(context.Context) error{d.Run, m.Run} {
		go func() {
			if err := run(ctx); err != nil {
				t.Errorf("Run: %v", err)
			}
			done <- struct{}{}
		}()
	}
	t.Cleanup(func() { cancel(); <-done; <-done })
	ds := httptest.NewServer(d.Handler())
	t.Cleanup(ds.Close)
	ms := httptest.NewServer(m.Handler())
	t.Cleanup(ms.Close)
	e.dealerURL, e.monURL = ds.URL, ms.URL

	i.CreateUser(t, "dealer-onboarding@realguardio.example", "onboarding-password-1", auth.RoleDealerAdministrator)
	i.CreateUser(t, "operator@realguardio.example", "operator-password-1", auth.RoleAdmin)
	i.CreateUser(t, "someone@customer.example", "customer-password-1", auth.RoleCustomerEmployee)
	e.dealerAdm = i.Login(t, "dealer-onboarding@realguardio.example", "onboarding-password-1")
	e.platformOp = i.Login(t, "operator@realguardio.example", "operator-password-1")
	e.customer = i.Login(t, "someone@customer.example", "customer-password-1")
	e.admin = i.Login(t, "admin", orgkittest.AdminPassword)
	e.facts = i.ServiceToken(t, orgkittest.FactsClient, "authz:read")
	return e
}

// loginWithRoles logs username in while its IAM account holds roles
// instead of the dealer employee role, then gives the account its role
// back, and returns the token of that login.
func (e *env) loginWithRoles(t *testing.T, userID, username, password string, roles ...string) string {
	t.Helper()
	e.iam.SetRoles(t, userID, roles...)
	tok := e.iam.Login(t, username, password)
	e.iam.SetRoles(t, userID, auth.RoleDealerEmployee)
	return tok
}

func (e *env) do(t *testing.T, method, path, token string, body any) orgkittest.Response {
	t.Helper()
	return orgkittest.Do(t, method, e.dealerURL+path, token, body)
}

func newDealer(name, email string) map[string]any {
	return map[string]any{"name": name, "administrator": map[string]any{"email": email, "firstName": "Ada", "lastName": "Admin"}}
}

func TestDealerService(t *testing.T) {
	e := start(t)

	// The article's RBAC scenario: POST /dealers needs the
	// REALGUARDIO_DEALER_ADMINISTRATOR role, nothing else is consulted.
	r := e.do(t, "POST", "/dealers", "", newDealer("D0", "x@d0.example")).Want(t, http.StatusUnauthorized)
	if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("no Bearer challenge: %v", r.Header)
	}
	e.do(t, "POST", "/dealers", "not-a-token", newDealer("D0", "x@d0.example")).Want(t, http.StatusUnauthorized)
	r = e.do(t, "POST", "/dealers", e.customer, newDealer("D0", "x@d0.example")).Want(t, http.StatusForbidden)
	if r.String("reason") != policy.ReasonNoRole {
		t.Fatalf("denial without reason: %s", r.Raw)
	}
	e.do(t, "POST", "/dealers", e.platformOp, newDealer("D0", "x@d0.example")).Want(t, http.StatusForbidden)
	e.do(t, "POST", "/dealers", e.facts, newDealer("D0", "x@d0.example")).Want(t, http.StatusForbidden)

	d1 := e.do(t, "POST", "/dealers", e.dealerAdm, newDealer("Dealer One", "Admin@D1.example")).Want(t, http.StatusCreated)
	d2 := e.do(t, "POST", "/dealers", e.admin, newDealer("Dealer Two", "admin@d2.example")).Want(t, http.StatusCreated)
	d1ID, d2ID := d1.String("id"), d2.String("id")
	pw := d1.String("administrator.initialPassword")
	if d1ID == "" || d1.String("name") != "Dealer One" || len(pw) < 16 || d1.String("administrator.userId") == "" {
		t.Fatalf("created dealer %s", d1.Raw)
	}
	// The administrator logs in with the e-mail address and the initial
	// password, chooses a password of its own there, and acts by the
	// token's sub.
	admin1 := e.iam.FirstLogin(t, "admin@d1.example", pw, "admin-d1-own-password")
	admin2 := e.iam.FirstLogin(t, "admin@d2.example", d2.String("administrator.initialPassword"), "admin-d2-own-password")

	emp1 := e.do(t, "POST", "/dealers/"+d1ID+"/employees", admin1, map[string]any{"email": "worker@d1.example", "firstName": "Wanda", "lastName": "Worker", "password": "worker-password-1"}).Want(t, http.StatusCreated)
	if emp1.String("initialPassword") != "" {
		t.Fatalf("initial password returned although one was given: %s", emp1.Raw)
	}
	emp2 := e.do(t, "POST", "/dealers/"+d2ID+"/employees", admin2, map[string]any{"email": "worker@d2.example", "firstName": "W", "lastName": "Two"}).Want(t, http.StatusCreated)
	e1, e2 := emp1.String("id"), emp2.String("id")
	worker1 := e.iam.FirstLogin(t, "worker@d1.example", "worker-password-1", "worker-own-password")
	e.do(t, "POST", "/dealers/"+d1ID+"/employees", admin2, map[string]any{"email": "intruder@d1.example", "firstName": "I", "lastName": "I"}).Want(t, http.StatusForbidden)

	// Role updates: the dealer's administrator only (local ReBAC).
	roles := map[string]any{"roles": []string{policy.RoleDisarmer, policy.RoleViewer}}

	// Wrong application role: the administrator's account holds another
	// application role instead of SECURITY_SYSTEM_DEALER_EMPLOYEE for one
	// login; that token names the administrator's sub, yet changes nothing.
	wrongRole := e.loginWithRoles(t, d1.String("administrator.userId"), "admin@d1.example", "admin-d1-own-password", auth.RoleCustomerEmployee)
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"PUT", "/dealers/" + d1ID + "/employees/" + e1 + "/roles", roles},
		{"POST", "/dealers/" + d1ID + "/employees", map[string]any{"email": "wrong-role@d1.example", "firstName": "W", "lastName": "R"}},
		{"PUT", "/dealers/" + d1ID + "/employees/" + e1 + "/schedule", map[string]any{"timezone": "UTC", "shifts": []any{map[string]any{"weekdays": []string{"MON"}, "start": "09:00", "end": "17:00"}}}},
		{"DELETE", "/dealers/" + d1ID + "/employees/" + e1 + "/schedule", nil},
		{"DELETE", "/dealers/" + d1ID + "/employees/" + e1, nil},
		{"PUT", "/dealers/" + d1ID + "/monitoring-provider", `{"monitoringProviderId":null}`},
	} {
		if r := e.do(t, c.method, c.path, wrongRole, c.body).Want(t, http.StatusForbidden); r.String("reason") != policy.ReasonNoRole {
			t.Fatalf("%s %s: denial without reason: %s", c.method, c.path, r.Raw)
		}
	}
	var before int
	if err := e.dealerDB.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM event_outbox WHERE aggregate_id = ?`, d1ID).Scan(&before); err != nil || before != 4 {
		t.Fatalf("refused changes wrote events: %d %v", before, err)
	}
	r = e.do(t, "PUT", "/dealers/"+d1ID+"/employees/"+e1+"/roles", admin1, roles).Want(t, http.StatusOK)
	if r.Raw != `{"roles":["SECURITY_SYSTEM_DISARMER","SECURITY_SYSTEM_VIEWER"]}`+"\n" {
		t.Fatalf("roles answer %s", r.Raw)
	}
	e.do(t, "PUT", "/dealers/"+d1ID+"/employees/"+e1+"/roles", admin2, roles).Want(t, http.StatusForbidden)
	e.do(t, "PUT", "/dealers/"+d1ID+"/employees/"+e1+"/roles", worker1, map[string]any{"roles": []string{policy.RoleDealerEmployeeAdministrator}}).Want(t, http.StatusForbidden)
	e.do(t, "PUT", "/dealers/"+d1ID+"/employees/"+e1+"/roles", e.dealerAdm, roles).Want(t, http.StatusForbidden)
	e.do(t, "PUT", "/dealers/"+d1ID+"/employees/"+e2+"/roles", admin1, roles).Want(t, http.StatusNotFound)
	e.do(t, "PUT", "/dealers/"+d1ID+"/employees/"+e1+"/roles", admin1, map[string]any{"roles": []string{"SUPERUSER"}}).Want(t, http.StatusUnprocessableEntity)
	e.do(t, "PUT", "/dealers/"+d1ID+"/employees/not-a-uuid/roles", admin1, roles).Want(t, http.StatusBadRequest)
	e.do(t, "PUT", "/dealers/"+d1ID+"/employees/"+e1+"/roles", admin1, `{"roles":"x"}`).Want(t, http.StatusBadRequest)
	e.do(t, "PUT", "/dealers/"+uuid.NewString()+"/employees/"+e1+"/roles", admin1, roles).Want(t, http.StatusNotFound)
	// The foreign employee is unchanged.
	if r := e.do(t, "GET", "/dealers/"+d2ID+"/employees/"+e2, admin2, nil).Want(t, http.StatusOK); !strings.Contains(r.Raw, `"roles":[]`) {
		t.Fatalf("foreign employee changed: %s", r.Raw)
	}

	// Schedules.
	sch := map[string]any{"timezone": "Europe/Berlin", "shifts": []any{map[string]any{"weekdays": []string{"MON", "TUE"}, "start": "09:00", "end": "17:00"}}}
	e.do(t, "PUT", "/dealers/"+d1ID+"/employees/"+e1+"/schedule", admin1, sch).Want(t, http.StatusOK)
	e.do(t, "PUT", "/dealers/"+d1ID+"/employees/"+e1+"/schedule", worker1, sch).Want(t, http.StatusForbidden)
	r = e.do(t, "PUT", "/dealers/"+d1ID+"/employees/"+e1+"/schedule", admin1, map[string]any{"timezone": "Nowhere/Land", "shifts": []any{}}).Want(t, http.StatusUnprocessableEntity)
	if r.String("field") != "timezone" {
		t.Fatalf("field not named: %s", r.Raw)
	}

	// Subject facts: the user itself, a facts reader; nobody else.
	userID := emp1.String("userId")
	r = e.do(t, "GET", "/authz/subjects/"+userID, worker1, nil).Want(t, http.StatusOK)
	if r.JSON["organization"].(map[string]any)["id"] != d1ID || r.JSON["schedule"] == nil || r.JSON["locationRoles"] != nil {
		t.Fatalf("facts %s", r.Raw)
	}
	e.do(t, "GET", "/authz/subjects/"+userID, e.facts, nil).Want(t, http.StatusOK)
	e.do(t, "GET", "/authz/subjects/"+userID, admin2, nil).Want(t, http.StatusForbidden)
	e.do(t, "DELETE", "/dealers/"+d1ID+"/employees/"+e1+"/schedule", admin1, nil).Want(t, http.StatusNoContent)
	if r := e.do(t, "GET", "/authz/subjects/"+userID, e.facts, nil); r.JSON["schedule"] != nil {
		t.Fatalf("schedule not cleared: %s", r.Raw)
	}

	// Reads: any authenticated user lists dealers; employees are for the
	// dealer's employees and the platform operator.
	if r := e.do(t, "GET", "/dealers", e.customer, nil).Want(t, http.StatusOK); len(r.JSON["dealers"].([]any)) != 2 {
		t.Fatalf("dealers %s", r.Raw)
	}
	e.do(t, "GET", "/dealers/"+d1ID, e.customer, nil).Want(t, http.StatusOK)
	e.do(t, "GET", "/dealers/"+d1ID+"/employees", worker1, nil).Want(t, http.StatusOK)
	e.do(t, "GET", "/dealers/"+d1ID+"/employees", e.platformOp, nil).Want(t, http.StatusOK)
	e.do(t, "GET", "/dealers/"+d1ID+"/employees", admin2, nil).Want(t, http.StatusForbidden)
	e.do(t, "GET", "/dealers/"+d1ID+"/employees/"+e2, admin1, nil).Want(t, http.StatusNotFound)

	t.Run("MonitoringProvider", func(t *testing.T) { testMonitoringProvider(t, e, d1ID, admin1, admin2) })
	t.Run("Provisioning", func(t *testing.T) { testProvisioning(t, e, d1ID, admin1, d2ID, admin2) })
	t.Run("Events", func(t *testing.T) { testEvents(t, e, d1ID) })
}

func testMonitoringProvider(t *testing.T, e *env, d1ID, admin1, admin2 string) {
	p := orgkittest.Do(t, "POST", e.monURL+"/monitoring-providers", e.admin, map[string]any{"name": "Watchers", "administrator": map[string]any{"email": "boss@watchers.example", "firstName": "B", "lastName": "B"}}).Want(t, http.StatusCreated)
	pID := p.String("id")
	orgkittest.Do(t, "POST", e.monURL+"/monitoring-providers", e.dealerAdm, map[string]any{"name": "X", "administrator": map[string]any{"email": "x@x.example", "firstName": "B", "lastName": "B"}}).Want(t, http.StatusForbidden)

	body := map[string]any{"monitoringProviderId": pID}
	// The dealer service learns of the provider from its event; wait for
	// convergence, bounded.
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := e.do(t, "PUT", "/dealers/"+d1ID+"/monitoring-provider", admin1, body)
		if r.Status == http.StatusOK {
			break
		}
		if r.Status != http.StatusUnprocessableEntity || time.Now().After(deadline) {
			t.Fatalf("set monitoring provider: %d %s", r.Status, r.Raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.do(t, "PUT", "/dealers/"+d1ID+"/monitoring-provider", admin2, body).Want(t, http.StatusForbidden)
	e.do(t, "PUT", "/dealers/"+d1ID+"/monitoring-provider", admin1, map[string]any{"monitoringProviderId": uuid.NewString()}).Want(t, http.StatusUnprocessableEntity)
	e.do(t, "PUT", "/dealers/"+d1ID+"/monitoring-provider", admin1, map[string]any{"monitoringProviderId": "nope"}).Want(t, http.StatusBadRequest)
	e.do(t, "PUT", "/dealers/"+d1ID+"/monitoring-provider", admin1, map[string]any{}).Want(t, http.StatusUnprocessableEntity)

	r := e.do(t, "GET", "/authz/dealers/"+d1ID, e.facts, nil).Want(t, http.StatusOK)
	if r.Raw != `{"dealerId":"`+d1ID+`","monitoringProviderId":"`+pID+`"}`+"\n" {
		t.Fatalf("dealer facts %s", r.Raw)
	}
	e.do(t, "GET", "/authz/dealers/"+d1ID, admin1, nil).Want(t, http.StatusForbidden)
	e.do(t, "GET", "/authz/dealers/"+uuid.NewString(), e.facts, nil).Want(t, http.StatusNotFound)
	if r := e.do(t, "GET", "/dealers/"+d1ID, e.customer, nil); r.String("monitoringProviderId") != pID {
		t.Fatalf("dealer view %s", r.Raw)
	}
	r = e.do(t, "POST", "/authz/dealers:batch", e.facts, map[string]any{"dealerIds": []string{d1ID, uuid.NewString()}}).Want(t, http.StatusOK)
	if ds := r.JSON["dealers"].([]any); len(ds) != 1 {
		t.Fatalf("batch %s", r.Raw)
	}
	e.do(t, "POST", "/authz/dealers:batch", e.facts, map[string]any{"dealerIds": []string{"x"}}).Want(t, http.StatusBadRequest)
	// The dealers using the provider, for the fetch strategy's lists.
	r = e.do(t, "POST", "/authz/dealers:byMonitoringProviders", e.facts, map[string]any{"monitoringProviderIds": []string{pID}}).Want(t, http.StatusOK)
	if r.Raw != `{"dealerIds":["`+d1ID+`"],"nextCursor":null}`+"\n" {
		t.Fatalf("dealers by providers %s", r.Raw)
	}
	e.do(t, "POST", "/authz/dealers:byMonitoringProviders", admin1, map[string]any{"monitoringProviderIds": []string{pID}}).Want(t, http.StatusForbidden)
	e.do(t, "POST", "/authz/dealers:byMonitoringProviders", e.facts, map[string]any{"monitoringProviderIds": "x"}).Want(t, http.StatusBadRequest)

	e.do(t, "PUT", "/dealers/"+d1ID+"/monitoring-provider", admin1, `{"monitoringProviderId":null}`).Want(t, http.StatusOK)
	if r := e.do(t, "GET", "/authz/dealers/"+d1ID, e.facts, nil); r.Raw != `{"dealerId":"`+d1ID+`","monitoringProviderId":null}`+"\n" {
		t.Fatalf("cleared facts %s", r.Raw)
	}
}

// testProvisioning drives account provisioning against the real IAM: an
// outage is a 503 and the retry completes the same account; an address the
// IAM already has is a 409 and leaves nothing behind.
func testProvisioning(t *testing.T, e *env, d1ID, admin1, d2ID, admin2 string) {
	emp := map[string]any{"email": "late@d1.example", "firstName": "L", "lastName": "L", "password": "late-password-1"}
	e.iam.SetUsersDown(true)
	e.do(t, "POST", "/dealers/"+d1ID+"/employees", admin1, emp).Want(t, http.StatusServiceUnavailable)
	e.iam.SetUsersDown(false)
	if r := e.do(t, "GET", "/dealers/"+d1ID+"/employees", admin1, nil); strings.Contains(r.Raw, "late@d1.example") {
		t.Fatalf("pending employee visible: %s", r.Raw)
	}
	r := e.do(t, "POST", "/dealers/"+d1ID+"/employees", admin1, emp).Want(t, http.StatusCreated)
	e.iam.FirstLogin(t, "late@d1.example", "late-password-1", "late-own-password")
	e.do(t, "POST", "/dealers/"+d1ID+"/employees", admin1, emp).Want(t, http.StatusConflict)
	list := e.do(t, "GET", "/dealers/"+d1ID+"/employees", admin1, nil).Want(t, http.StatusOK)
	if n := strings.Count(list.Raw, "late@d1.example"); n != 1 || !strings.Contains(list.Raw, r.String("userId")) {
		t.Fatalf("employees after retry: %s", list.Raw)
	}

	e.iam.CreateUser(t, "owned@elsewhere.example", "someone-elses-password", auth.RoleCustomerEmployee)
	r = e.do(t, "POST", "/dealers/"+d1ID+"/employees", admin1, map[string]any{"email": "owned@elsewhere.example", "firstName": "O", "lastName": "O"}).Want(t, http.StatusConflict)
	if r.String("field") != "email" {
		t.Fatalf("conflict does not name the field: %s", r.Raw)
	}
	var n int
	if err := e.dealerDB.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM employees WHERE email = ?`, "owned@elsewhere.example").Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows left after an IAM conflict: %d %v", n, err)
	}
	// The employee's removal disables the account.
	e.do(t, "DELETE", "/dealers/"+d1ID+"/employees/not-a-uuid", admin1, nil).Want(t, http.StatusBadRequest)
	var lateID, lateUser string
	for _, it := range list.JSON["employees"].([]any) {
		m := it.(map[string]any)
		if m["email"] == "late@d1.example" {
			lateID, lateUser = m["id"].(string), m["userId"].(string)
		}
	}
	e.do(t, "DELETE", "/dealers/"+d1ID+"/employees/"+lateID, admin1, nil).Want(t, http.StatusNoContent)
	iamc := e.iam.Client(iam.AudienceDealer)
	if u, err := iamc.GetUser(context.Background(), lateUser); err != nil || u.Enabled {
		t.Fatalf("account after removal: %+v %v", u, err)
	}

	// Re-hiring: the address is the former employee's account, so another
	// dealer gets 409; the same dealer gets the employee back with the
	// same ids, a new password and the account enabled again.
	r = e.do(t, "POST", "/dealers/"+d2ID+"/employees", admin2, map[string]any{"email": "Late@D1.example", "firstName": "L", "lastName": "L"}).Want(t, http.StatusConflict)
	if r.String("field") != "email" {
		t.Fatalf("conflict does not name the field: %s", r.Raw)
	}
	r = e.do(t, "POST", "/dealers/"+d1ID+"/employees", admin1, map[string]any{"email": "late@d1.example", "firstName": "Lara", "lastName": "Late", "password": "second-password-1"}).Want(t, http.StatusCreated)
	if r.String("id") != lateID || r.String("userId") != lateUser {
		t.Fatalf("re-hired as %s, want employee %s user %s", r.Raw, lateID, lateUser)
	}
	if u, err := iamc.GetUser(context.Background(), lateUser); err != nil || !u.Enabled || len(u.Roles) != 1 || u.Roles[0] != auth.RoleDealerEmployee {
		t.Fatalf("account after the re-hire: %+v %v", u, err)
	}
	// The re-hire's password is an initial one again.
	rehired := e.iam.FirstLogin(t, "late@d1.example", "second-password-1", "late-own-password-2")
	if r := e.do(t, "GET", "/dealers/"+d1ID+"/employees/"+lateID, rehired, nil).Want(t, http.StatusOK); r.String("firstName") != "Lara" || !strings.Contains(r.Raw, `"roles":[]`) {
		t.Fatalf("re-hired employee %s", r.Raw)
	}
	e.do(t, "POST", "/dealers/"+d1ID+"/employees", admin1, map[string]any{"email": "late@d1.example", "firstName": "L", "lastName": "L"}).Want(t, http.StatusConflict)

	// Abandoned: dealer one's client gave up after a 503. The address is
	// reserved for dealer one's retry for orgkit.PendingTTL; after that,
	// since the IAM never created the account, dealer two may hire it.
	gaveUp := map[string]any{"email": "gave-up@example.com", "firstName": "G", "lastName": "U", "password": "gave-up-password-1"}
	e.iam.SetUsersDown(true)
	e.do(t, "POST", "/dealers/"+d1ID+"/employees", admin1, gaveUp).Want(t, http.StatusServiceUnavailable)
	e.iam.SetUsersDown(false)
	e.do(t, "POST", "/dealers/"+d2ID+"/employees", admin2, gaveUp).Want(t, http.StatusConflict)
	old := time.Now().Add(-orgkit.PendingTTL - time.Minute)
	if _, err := e.dealerDB.ExecContext(context.Background(), `UPDATE employees SET updated_at = ? WHERE email = ?`, sqldb.Micros(old), "gave-up@example.com"); err != nil {
		t.Fatal(err)
	}
	r = e.do(t, "POST", "/dealers/"+d2ID+"/employees", admin2, gaveUp).Want(t, http.StatusCreated)
	e.iam.FirstLogin(t, "gave-up@example.com", "gave-up-password-1", "gave-up-own-password")
	if r := e.do(t, "GET", "/authz/subjects/"+r.String("userId"), e.facts, nil); r.JSON["organization"].(map[string]any)["id"] != d2ID {
		t.Fatalf("facts of the employee hired after the abandonment: %s", r.Raw)
	}
}

// testEvents checks that every change of dealer one is in the outbox, in
// order, with the aggregate of docs/events.md.
func testEvents(t *testing.T, e *env, d1ID string) {
	rows, err := e.dealerDB.QueryContext(context.Background(), `SELECT event_type, aggregate_type, sequence FROM event_outbox WHERE aggregate_id = ? ORDER BY sequence`, d1ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var types []string
	for rows.Next() {
		var typ, at string
		var seq int64
		if err := rows.Scan(&typ, &at, &seq); err != nil {
			t.Fatal(err)
		}
		if at != "dealer" || seq != int64(len(types)+1) {
			t.Fatalf("event %s: aggregate %s sequence %d", typ, at, seq)
		}
		types = append(types, typ)
	}
	want := []string{
		"dealer.created", "dealer.employee_created", "dealer.employee_roles_set", // the dealer and its administrator
		"dealer.employee_created",   // worker
		"dealer.employee_roles_set", // worker's roles
		"dealer.employee_schedule_set", "dealer.employee_schedule_cleared",
		"dealer.monitoring_provider_set", "dealer.monitoring_provider_set",
		"dealer.employee_created", // late, after the retry
		"dealer.employee_removed",
		"dealer.employee_created", // late, re-hired
	}
	if strings.Join(types, ",") != strings.Join(want, ",") {
		t.Fatalf("events\n got %v\nwant %v", types, want)
	}
}
