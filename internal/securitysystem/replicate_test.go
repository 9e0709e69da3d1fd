package securitysystem_test

import (
	"context"
	"encoding/json"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/eventstest"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/policytest"
	"github.com/realguardio/realguardio/internal/securitysystem"
	"github.com/realguardio/realguardio/internal/securitysystem/authz"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/replicate"
	"github.com/realguardio/realguardio/internal/securitysystem/sstest"
)

// TestReplicaRevocations feeds the revocations the fixed cases do not
// cover and checks each takes effect, on SQLite and PostgreSQL.
func TestReplicaRevocations(t *testing.T) {
	put := func(h *harness, user, ss, action string) int {
		status, _ := h.call(user, "PUT", "/securitysystems/"+h.ids[id(ss)], map[string]any{"action": action})
		return status
	}
	t.Run("employee removed", func(t *testing.T) {
		h := newHarness(t, "replicate", policytest.FixedWorld())
		if put(h, id("charlie"), "ss1", "DISARM") != http.StatusOK || put(h, id("mary"), "ss3", "DISARM") != http.StatusOK {
			t.Fatal("charlie and mary should disarm before removal")
		}
		b := sstest.NewEvents(time.Now())
		for _, u := range []string{"charlie", "mary", "alice"} {
			b.Add(policy.OrgCustomer, id("acme"), "customer.employee_removed", map[string]any{"customerId": id("acme"), "employeeId": sstest.EmployeeID(id(u)), "userId": id(u)})
		}
		b.Add(policy.OrgDealer, id("d1"), "dealer.employee_removed", map[string]any{"dealerId": id("d1"), "employeeId": sstest.EmployeeID(id("dave")), "userId": id("dave")})
		h.feed(b.List()...)
		for _, c := range [][2]string{{"charlie", "ss1"}, {"mary", "ss3"}, {"alice", "ss1"}, {"dave", "ss1"}} {
			if s := put(h, id(c[0]), c[1], "DISARM"); s != http.StatusForbidden {
				t.Errorf("%s after removal: %d, want 403", c[0], s)
			}
		}
		for _, table := range []string{"replica_team_members", "replica_location_roles"} {
			if n := h.count(`SELECT COUNT(*) FROM ` + table + ` WHERE user_id IN ('` + id("charlie") + `','` + id("mary") + `')`); n != 0 {
				t.Errorf("%s keeps %d rows of removed employees", table, n)
			}
		}
	})
	t.Run("dealer cleared, provider cleared, schedule cleared", func(t *testing.T) {
		h := newHarness(t, "replicate", policytest.FixedWorld())
		h.clock.Set(time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)) // Sunday noon: outside both schedules
		if s := put(h, id("frank"), "ss1", "DISARM"); s != http.StatusForbidden {
			t.Fatalf("frank on Sunday: %d", s)
		}
		h.change(policytest.Change{Kind: policytest.ChangeSchedule, OrgKind: policy.OrgCustomer, OrgID: id("acme"), UserID: id("frank")})
		if s := put(h, id("frank"), "ss1", "DISARM"); s != http.StatusOK {
			t.Errorf("frank unrestricted: %d", s)
		}
		if s, _ := h.call(id("erin"), "GET", "/securitysystems/"+h.ids[id("ss1")], nil); s != http.StatusOK {
			t.Fatalf("erin views ss1: %d", s)
		}
		h.change(policytest.Change{Kind: policytest.ChangeDealerProvider, DealerID: id("d1")})
		if s, _ := h.call(id("erin"), "GET", "/securitysystems/"+h.ids[id("ss1")], nil); s != http.StatusForbidden {
			t.Errorf("erin after provider cleared: %d", s)
		}
		h.change(policytest.Change{Kind: policytest.ChangeLocationDealer, CustomerID: id("acme"), LocationID: id("loc1")})
		if s := put(h, id("dave"), "ss1", "DISARM"); s != http.StatusForbidden {
			t.Errorf("dave after dealer cleared: %d", s)
		}
		h.change(policytest.Change{Kind: policytest.ChangeOrgRoles, OrgKind: policy.OrgCustomer, OrgID: id("acme"), UserID: id("alice"), Roles: []string{}})
		if s := put(h, id("alice"), "ss1", "DISARM"); s != http.StatusForbidden {
			t.Errorf("alice after [] roles: %d", s)
		}
	})
	t.Run("stores", func(t *testing.T) {
		// The projection's SQL (upserts, deletes, the union of direct and
		// team roles) on both engines.
		sqldbtest.ForEachStore(t, securitysystem.Migrations(), func(t *testing.T, db *sqldb.DB) {
			w := policytest.Generate(11, policytest.Small)
			b := sstest.NewEvents(time.Now().Add(-time.Minute))
			b.World(w)
			h := &projectionCheck{t: t, db: db}
			h.feedAndCompare(w, b)
		})
	})
}

// TestReplicateWithoutOrganizationServices: the replicate strategy makes
// no remote call at all, so arm, disarm and list keep working when every
// organization service (here: every outgoing HTTP request) fails.
func TestReplicateWithoutOrganizationServices(t *testing.T) {
	h := newHarness(t, "replicate", policytest.FixedWorld())
	for _, k := range []policy.OrgKind{policy.OrgCustomer, policy.OrgDealer, policy.OrgMonitoringProvider} {
		h.facts.Down(k, true)
	}
	h.facts.Customer.Close()
	h.facts.Dealer.Close()
	h.facts.Monitoring.Close()
	h.do(id("grace"), "PUT", "/securitysystems/"+h.ids[id("ss1")], map[string]any{"action": "ARM"}, http.StatusForbidden, nil) // Tuesday: outside her shift
	h.do(id("alice"), "PUT", "/securitysystems/"+h.ids[id("ss1")], map[string]any{"action": "DISARM"}, http.StatusOK, nil)
	h.do(id("erin"), "GET", "/securitysystems", nil, http.StatusOK, nil)
}

// TestReplicaThroughNATS runs the replica consumer against real JetStream:
// events published to the organization streams reach the replica, a new
// service object on the same database (a restart) keeps deciding and does
// not apply anything twice, and RebuildReplica rebuilds the same replica
// from a replay. The lag gauge and /readyz report the consumer.
func TestReplicaThroughNATS(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url := eventstest.NATS(t)
	_, js := eventstest.Connect(t, url)
	prefix := eventstest.Streams(t, js)
	db := sqldbtest.OpenSQLite(t)
	w := policytest.FixedWorld()
	cfg := securitysystem.Config{Strategy: "replicate", EventPrefix: prefix}
	deps := securitysystem.Deps{DB: db, JS: js, Authenticate: sstest.Authenticate}

	publish := func(evs []events.Event) {
		for _, ev := range evs {
			body, _ := json.Marshal(ev)
			msg := nats.NewMsg(events.Subject(prefix, ev.Type))
			msg.Data = body
			msg.Header.Set(nats.MsgIdHdr, ev.ID)
			if _, err := js.PublishMsg(ctx, msg); err != nil {
				t.Fatalf("publish %s: %v", ev.Type, err)
			}
		}
	}
	b := sstest.NewEvents(time.Now().Add(-time.Minute))
	b.World(w)
	publish(b.List())
	initial := len(b.List())

	start := func() (*securitysystem.Service, func()) {
		svc, err := securitysystem.New(ctx, cfg, deps)
		if err != nil {
			t.Fatal(err)
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- svc.Run(runCtx) }()
		return svc, func() {
			stop()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	svc, stop := start()
	eventually(t, "replica caught up", func() bool {
		return countRows(t, db, `SELECT COUNT(*) FROM replica_employees`) == len(w.Employees) &&
			countRows(t, db, `SELECT COUNT(*) FROM replica_team_roles`) == len(w.TeamLocationRoles)
	})
	eventually(t, "ready", func() bool { return get(t, svc.Handler(), "/readyz") == http.StatusOK })
	if body := getBody(t, svc.Handler(), "/metrics"); !strings.Contains(body, `realguardio_securitysystem_replica_lag_seconds{stream="REALGUARDIO_CUSTOMER"}`) {
		t.Errorf("no replica lag gauge in /metrics")
	}
	// Every event is recorded, also those the replica ignores; wait for
	// the last of them so the count below is not a race.
	eventually(t, "every event recorded", func() bool {
		return countRows(t, db, `SELECT COUNT(*) FROM event_applied`) == initial
	})
	// Caught up, the replica is not behind, however old its newest event
	// (a minute here): the lag is 0 while nothing is pending.
	eventually(t, "replica lag 0 once caught up", func() bool {
		return strings.Contains(getBody(t, svc.Handler(), "/metrics"), `realguardio_securitysystem_replica_lag_seconds{stream="REALGUARDIO_CUSTOMER"} 0`+"\n")
	})
	snapshot := replicaSnapshot(t, db)
	applied := countRows(t, db, `SELECT COUNT(*) FROM event_applied`)
	stop()

	// Restart: a new service object on the same database; a revocation
	// published meanwhile is applied, nothing else is applied again.
	// The same builder continues acme's sequence: an event numbered below
	// the ones already applied would be skipped as stale.
	publish([]events.Event{b.Add(policy.OrgCustomer, id("acme"), "customer.team_member_removed", map[string]any{"customerId": id("acme"), "teamId": id("t1"), "employeeId": sstest.EmployeeID(id("charlie")), "userId": id("charlie")})})
	_, stop = start()
	eventually(t, "revocation applied after restart", func() bool {
		return countRows(t, db, `SELECT COUNT(*) FROM replica_team_members`) == 0
	})
	if n := countRows(t, db, `SELECT COUNT(*) FROM event_applied`); n != applied+1 {
		t.Errorf("applied %d events after restart, want %d", n, applied+1)
	}
	stop()

	// Rebuild from scratch: the replica equals the live one.
	after := replicaSnapshot(t, db)
	if _, err := db.ExecContext(ctx, `DELETE FROM replica_locations`); err != nil { // damage it
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	report, err := securitysystem.RebuildReplica(rctx, cfg, deps)
	if err != nil {
		t.Fatalf("RebuildReplica: %v", err)
	}
	if got := replicaSnapshot(t, db); got != after {
		t.Errorf("rebuilt replica differs:\n%s\nwant\n%s", got, after)
	}
	if report.Applied["REALGUARDIO_CUSTOMER"] == 0 {
		t.Errorf("report %+v", report)
	}
	_ = snapshot
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func countRows(t *testing.T, db *sqldb.DB, q string) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// replicaSnapshot renders the replica's fact tables (not the progress) in
// a stable order.
func replicaSnapshot(t *testing.T, db *sqldb.DB) string {
	t.Helper()
	var sb strings.Builder
	for _, q := range []string{
		`SELECT employee_id || org_kind || org_id || user_id || roles || COALESCE(schedule, '-') FROM replica_employees ORDER BY 1`,
		`SELECT location_id || customer_id || COALESCE(dealer_id, '-') FROM replica_locations ORDER BY 1`,
		`SELECT location_id || employee_id || roles FROM replica_location_roles ORDER BY 1`,
		`SELECT team_id || employee_id FROM replica_team_members ORDER BY 1`,
		`SELECT location_id || team_id || roles FROM replica_team_roles ORDER BY 1`,
		`SELECT dealer_id || COALESCE(monitoring_provider_id, '-') FROM replica_dealers ORDER BY 1`,
	} {
		rows, err := db.QueryContext(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			sb.WriteString(s + "\n")
		}
		rows.Close()
		sb.WriteString("--\n")
	}
	return sb.String()
}

func get(t *testing.T, h http.Handler, path string) int {
	t.Helper()
	rec := newRecorder()
	h.ServeHTTP(rec, mustRequest(t, path))
	return rec.Code
}

func getBody(t *testing.T, h http.Handler, path string) string {
	t.Helper()
	rec := newRecorder()
	h.ServeHTTP(rec, mustRequest(t, path))
	return rec.Body.String()
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func mustRequest(t *testing.T, path string) *http.Request {
	t.Helper()
	return httptest.NewRequest(http.MethodGet, path, nil)
}

// projectionCheck feeds a World into a replica on one store and compares
// the replicate strategy's decisions with the reference.
type projectionCheck struct {
	t  *testing.T
	db *sqldb.DB
}

func (p *projectionCheck) feedAndCompare(w *policytest.World, b *sstest.Events) {
	ctx := context.Background()
	proj := replicate.NewProjection()
	sstest.Apply(p.t, p.db, proj.Handle, b.List())
	// Applying the same events again changes nothing: "set" events are
	// idempotent by construction (the consumer also skips seen ids).
	sstest.Apply(p.t, p.db, proj.Handle, b.List())
	a := replicate.New(p.db)
	rng := rand.New(rand.NewSource(w.Seed))
	for _, c := range w.Cases(rng, 150) {
		var ref authz.SystemRef
		for _, ss := range w.SecuritySystems {
			if ss.ID == c.SecuritySystemID {
				ref = authz.SystemRef{ID: ss.ID, LocationID: ss.LocationID}
			}
		}
		caller := sstest.Caller(w, c.UserID)
		caller.Roles = c.AppRoles
		got, err := a.Decide(ctx, caller, c.Op, ref, c.At)
		if want := policytest.Expected(w, c); err != nil || got != want {
			p.t.Fatalf("%s: decided %+v (err %v), want %+v", c, got, err, want)
		}
	}
}
