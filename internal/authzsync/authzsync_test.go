package authzsync_test

import (
	"context"
	"flag"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	openfgav1 "github.com/openfga/api/proto/openfga/v1"

	"github.com/realguardio/realguardio/internal/authzsync"
	"github.com/realguardio/realguardio/internal/authzsync/authzsynctest"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/eventstest"
	"github.com/realguardio/realguardio/internal/platform/fga"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/openfga"
	"github.com/realguardio/realguardio/internal/policy/policytest"
	"github.com/realguardio/realguardio/internal/securitysystem/authz"
)

var (
	seedFlag = flag.Int64("policy.seed", 1, "seed of the generated world")
	sizeFlag = flag.String("policy.size", "small", "size of the generated world: small, medium or large")
)

// env is one sync under test: embedded NATS with private streams, an
// OpenFGA server, the sync's database and a running Syncer.
type env struct {
	t      *testing.T
	js     jetstream.JetStream
	prefix string
	fga    *fga.Client
	db     *sqldb.DB
	sync   *authzsync.Syncer
	stop   func()
	b      *authzsynctest.Builder
	sent   int // events published that the sync must apply
	// clock, when set before start, is the sync's clock (Deps.Clock).
	clock func() time.Time
}

func newEnv(t *testing.T, fgaURL string) *env {
	t.Helper()
	_, js := eventstest.Connect(t, eventstest.NATS(t))
	e := &env{t: t, js: js, prefix: eventstest.Streams(t, js), b: authzsynctest.NewBuilder()}
	if fgaURL == "" {
		srv, err := fga.StartEmbedded(context.Background(), fga.EmbeddedOptions{Addr: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Close() })
		fgaURL = srv.URL()
	}
	c, err := fga.New(fga.Config{URL: fgaURL, Timeout: 15 * time.Second, BreakerOpen: 200 * time.Millisecond}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The timeout is generous: batches of conditioned checks under the
	// race detector on a loaded machine are slow, and this test is about
	// correctness, not latency.
	e.fga = c
	e.db = sqldbtest.OpenSQLite(t)
	e.start()
	return e
}

// start builds and runs a new Syncer on the same database: a restart.
func (e *env) start() {
	e.t.Helper()
	s, err := authzsync.New(context.Background(), authzsync.Config{EventPrefix: e.prefix, RetryInterval: 100 * time.Millisecond},
		authzsync.Deps{DB: e.db, JS: e.js, FGA: e.fga, Clock: e.clock})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	e.sync = s
	e.stop = func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("Run: %v", err)
		}
	}
	e.t.Cleanup(func() {
		if e.stop != nil {
			e.stop()
			e.stop = nil
		}
	})
}

func (e *env) restart() {
	e.stop()
	e.stop = nil
	e.start()
}

// publish sends events and waits until the sync applied all of them.
func (e *env) publish(evs ...events.Event) {
	e.t.Helper()
	if err := authzsynctest.Publish(context.Background(), e.js, e.prefix, evs...); err != nil {
		e.t.Fatal(err)
	}
	e.sent += len(evs)
	e.waitApplied(e.sent)
}

func (e *env) waitApplied(n int) {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var got int
		if err := e.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM event_applied WHERE consumer = ?`,
			authzsync.DefaultConsumerName).Scan(&got); err != nil {
			e.t.Fatal(err)
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			parked, _ := e.sync.ListParked(context.Background())
			e.t.Fatalf("the sync applied %d of %d events in 60s (parked: %+v)", got, n, parked)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// decide asks OpenFGA for every case in batches, as the delegate strategy
// does: the op's relation and the role-only relation for the reason.
func (e *env) decide(cases []policytest.Case) []policy.Decision {
	e.t.Helper()
	var reqs []*openfgav1.CheckRequest
	for _, c := range cases {
		reqs = append(reqs,
			openfga.CheckRequest(c.UserID, c.AppRoles, c.Op, c.SecuritySystemID, c.At),
			openfga.GrantedCheckRequest(c.UserID, c.AppRoles, c.Op, c.SecuritySystemID, c.At))
	}
	got, err := e.fga.BatchCheck(context.Background(), reqs)
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]policy.Decision, len(cases))
	for i := range cases {
		out[i] = openfga.DecisionOf(got[2*i], got[2*i+1])
	}
	return out
}

// conform compares OpenFGA with policy.IsAllowed over w on n cases.
func (e *env) conform(w *policytest.World, rng *rand.Rand, n int, label string) {
	e.t.Helper()
	cases := w.Cases(rng, n)
	got := e.decide(cases)
	failures := 0
	for i, c := range cases {
		if want := policytest.Expected(w, c); got[i] != want {
			failures++
			e.t.Errorf("%s: %v: OpenFGA %+v, policy.IsAllowed %+v", label, c, got[i], want)
			if failures > 10 {
				e.t.FailNow()
			}
		}
	}
}

// conformCreate compares can_create_security_system with authz.CanCreate
// over w on n creation cases, half of them by a customer's administrator
// (at any customer's location), in one batch.
func (e *env) conformCreate(w *policytest.World, rng *rand.Rand, n int, label string) {
	e.t.Helper()
	users := w.Users()
	var admins []string
	for _, emp := range w.Employees {
		if emp.OrgKind == policy.OrgCustomer && slices.Contains(emp.Roles, policy.RoleCustomerEmployeeAdministrator) {
			admins = append(admins, emp.UserID)
		}
	}
	type createCase struct{ user, location string }
	cases := make([]createCase, n)
	reqs := make([]*openfgav1.CheckRequest, n)
	for i := range cases {
		u := users[rng.Intn(len(users))]
		if len(admins) > 0 && rng.Intn(2) == 0 {
			u = admins[rng.Intn(len(admins))]
		}
		cases[i] = createCase{u, w.Locations[rng.Intn(len(w.Locations))].ID}
		reqs[i] = openfga.CreateCheckRequest(u, w.AppRoles(u), cases[i].location)
	}
	got, err := e.fga.BatchCheck(context.Background(), reqs)
	if err != nil {
		e.t.Fatal(err)
	}
	failures := 0
	for i, c := range cases {
		l, _ := w.Location(c.location)
		if want := authz.CanCreate(w.Subject(c.user, w.AppRoles(c.user)), l.CustomerID).Allowed; got[i] != want {
			failures++
			e.t.Errorf("%s: user %s creates at %s: OpenFGA %v, authz.CanCreate %v", label, c.user, c.location, got[i], want)
			if failures > 10 {
				e.t.FailNow()
			}
		}
	}
}

// TestGeneratedWorldThroughEvents replays a generated world and random
// changes (revocations included: roles [], members removed, dealers and
// providers changed or cleared, schedules cleared) through the streams,
// restarting the sync between rounds, and compares every decision with
// policy.IsAllowed and every creation with authz.CanCreate (the role sets
// grant and take away CUSTOMER_EMPLOYEE_ADMINISTRATOR too).
func TestGeneratedWorldThroughEvents(t *testing.T) {
	size, err := policytest.ParseSize(*sizeFlag)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, "")
	w := policytest.Generate(*seedFlag, size)
	rng := rand.New(rand.NewSource(*seedFlag))
	e.publish(e.b.World(w)...)
	t.Logf("world of %d events applied", e.sent)
	e.conform(w, rng, 400, "initial world")
	e.conformCreate(w, rng, 200, "initial world")
	for round := 1; round <= 3; round++ {
		var evs []events.Event
		for range 25 {
			c := w.Mutate(rng)
			evs = append(evs, e.b.Change(c)...)
		}
		if round == 2 {
			e.restart()
		}
		e.publish(evs...)
		e.conform(w, rng, 400, "round "+string(rune('0'+round)))
		e.conformCreate(w, rng, 200, "round "+string(rune('0'+round)))
	}
}

// TestFixedCasesAndRevocations replays AUTHZ.md's fixed world, checks its
// cases, then revokes every kind of fact one by one.
func TestFixedCasesAndRevocations(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "")
	w := policytest.FixedWorld()
	e.publish(e.b.World(w)...)
	for _, fc := range policytest.FixedCases() {
		if len(fc.Before) > 0 {
			continue
		}
		if got := e.decide([]policytest.Case{fc.Case})[0]; got != fc.Want {
			t.Errorf("%s: OpenFGA %+v, want %+v", fc.Name, got, fc.Want)
		}
	}
	for _, fc := range policytest.FixedCases() {
		// The changes before a case (charlie leaves t1, loc1's dealer
		// changes) accumulate; the reference follows the same world.
		for _, ch := range fc.Before {
			if err := w.Apply(ch); err != nil {
				t.Fatal(err)
			}
			e.publish(e.b.Change(ch)...)
		}
		want := policytest.Expected(w, fc.Case)
		if got := e.decide([]policytest.Case{fc.Case})[0]; got != want {
			t.Errorf("%s (after %d changes): OpenFGA %+v, policy %+v", fc.Name, len(fc.Before), got, want)
		}
	}

	id := policytest.FixedID
	noon := time.Date(2026, 3, 3, 12, 0, 0, 0, time.UTC)
	evening := time.Date(2026, 3, 3, 18, 30, 0, 0, time.UTC)
	may := func(user string, op policy.Op, system string, at time.Time) bool {
		return e.decide([]policytest.Case{{UserID: id(user), Op: op, SecuritySystemID: id(system), At: at}})[0].Allowed
	}
	alice, ok := w.Employee(id("alice"))
	if !ok {
		t.Fatal("no alice in the fixed world")
	}
	// Organization roles []: alice loses disarm and view of ss1.
	if !may("alice", policy.OpDisarm, "ss1", noon) {
		t.Fatal("alice may not disarm ss1 before the revocation")
	}
	e.publish(e.b.EmployeeEvent(alice.OrgKind, alice.OrgID, alice.UserID, "employee_roles_set", map[string]any{"roles": []string{}}))
	if may("alice", policy.OpDisarm, "ss1", noon) || may("alice", policy.OpView, "ss1", noon) {
		t.Fatal("alice keeps access to ss1 after roles []")
	}

	// A restart, then the grant republished under another message id
	// (past JetStream's de-duplication): the sync skips it, alice stays
	// revoked. A marker event behind it proves the grant was processed.
	e.restart()
	grant := e.b.EmployeeEvent(alice.OrgKind, alice.OrgID, alice.UserID, "employee_roles_set", map[string]any{"roles": []string{policy.RoleDisarmer}})
	e.publish(grant)
	if !may("alice", policy.OpDisarm, "ss1", noon) {
		t.Fatal("alice's new grant was not applied")
	}
	revoke := e.b.EmployeeEvent(alice.OrgKind, alice.OrgID, alice.UserID, "employee_roles_set", map[string]any{"roles": []string{}})
	e.publish(revoke)
	e.restart()
	if err := authzsynctest.PublishAs(ctx, e.js, e.prefix, grant, grant.ID+"-again"); err != nil {
		t.Fatal(err)
	}
	e.publish(e.b.OrgEvent(policy.OrgCustomer, alice.OrgID, "created", map[string]any{"name": "marker"}))
	if may("alice", policy.OpDisarm, "ss1", noon) {
		t.Fatal("a redelivered old grant was applied twice: alice may disarm again")
	}

	// Employee removed: mary (location role at loc3) loses it, and her
	// tuples are gone.
	mary, _ := w.Employee(id("mary"))
	if !may("mary", policy.OpDisarm, "ss3", noon) {
		t.Fatal("mary may not disarm ss3 before her removal")
	}
	e.publish(e.b.EmployeeEvent(mary.OrgKind, mary.OrgID, mary.UserID, "employee_removed", nil))
	if may("mary", policy.OpDisarm, "ss3", noon) {
		t.Fatal("removed mary may still disarm ss3")
	}
	left, err := e.fga.Read(ctx, &openfgav1.ReadRequestTupleKey{User: "user:" + mary.UserID, Object: "location:"})
	if err != nil || len(left) != 0 {
		t.Fatalf("mary's location tuples after removal: %v %v", left, err)
	}

	// A team member who is removed as an employee leaves the team too.
	charlie, _ := w.Employee(id("charlie"))
	e.publish(e.b.TeamMember(charlie.OrgID, id("t1"), charlie.UserID, true))
	if !may("charlie", policy.OpDisarm, "ss1", noon) {
		t.Fatal("charlie, back in t1, may not disarm ss1")
	}
	e.publish(e.b.EmployeeEvent(charlie.OrgKind, charlie.OrgID, charlie.UserID, "employee_removed", nil))
	if may("charlie", policy.OpDisarm, "ss1", noon) || may("charlie", policy.OpView, "ss1", noon) {
		t.Fatal("removed charlie keeps his team's access")
	}

	// Schedule cleared: frank may disarm in the evening.
	frank, _ := w.Employee(id("frank"))
	if may("frank", policy.OpDisarm, "ss1", evening) {
		t.Fatal("frank may disarm outside his schedule")
	}
	e.publish(e.b.Schedule(frank.OrgKind, frank.OrgID, frank.UserID, nil))
	if !may("frank", policy.OpDisarm, "ss1", evening) {
		t.Fatal("frank is still restricted after his schedule was cleared")
	}
	// Schedule set again: restricted again (the on_duty tuple is replaced).
	e.publish(e.b.Schedule(frank.OrgKind, frank.OrgID, frank.UserID, frank.Schedule))
	if may("frank", policy.OpDisarm, "ss1", evening) || !may("frank", policy.OpDisarm, "ss1", time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)) {
		t.Fatal("frank's schedule was not restored")
	}

	// Provider changed then cleared: erin (VIEWER at p1) loses ss1 once
	// loc1's dealer no longer uses p1. The fixed cases moved loc1 to d2;
	// move it back to d1 first.
	e.publish(e.b.LocationDealer(w.Resource(id("ss1")).CustomerID, w.Resource(id("ss1")).LocationID, id("d1")))
	if !may("erin", policy.OpView, "ss1", noon) || !may("dave", policy.OpDisarm, "ss1", noon) {
		t.Fatal("erin/dave lack access to ss1 through d1")
	}
	e.publish(e.b.DealerProvider(id("d1"), ""))
	if may("erin", policy.OpView, "ss1", noon) {
		t.Fatal("erin keeps access after d1 stopped using p1")
	}
	// Dealer cleared: dave loses ss1.
	e.publish(e.b.LocationDealer(w.Resource(id("ss1")).CustomerID, w.Resource(id("ss1")).LocationID, ""))
	if may("dave", policy.OpDisarm, "ss1", noon) {
		t.Fatal("dave keeps access after loc1 lost its dealer")
	}
	// Dealer employee removed: dave's organization roles are deleted.
	e.publish(e.b.LocationDealer(w.Resource(id("ss1")).CustomerID, w.Resource(id("ss1")).LocationID, id("d1")))
	dave, _ := w.Employee(id("dave"))
	e.publish(e.b.EmployeeEvent(dave.OrgKind, dave.OrgID, dave.UserID, "employee_removed", nil))
	if may("dave", policy.OpDisarm, "ss1", noon) {
		t.Fatal("removed dave may still disarm ss1")
	}
	// OpenFGA ahead of the sync's memory (as after an event that wrote to
	// OpenFGA and was then parked): frank's on_duty tuple carries a
	// schedule the sync believes cleared. Clearing again replaces it
	// instead of failing on the conflicting condition.
	e.publish(e.b.Schedule(frank.OrgKind, frank.OrgID, frank.UserID, nil))
	scheduled, err := openfga.OnDutyTuple(frank.UserID, frank.Schedule)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.fga.Write(ctx, nil, []*openfgav1.TupleKeyWithoutCondition{openfga.WithoutCondition(scheduled)}); err != nil {
		t.Fatal(err)
	}
	if err := e.fga.Write(ctx, []*openfgav1.TupleKey{scheduled}, nil); err != nil {
		t.Fatal(err)
	}
	e.publish(e.b.Schedule(frank.OrgKind, frank.OrgID, frank.UserID, nil))
	if !may("frank", policy.OpDisarm, "ss1", evening) {
		t.Fatal("frank's stale scheduled on_duty tuple was not replaced")
	}

	parked, err := e.sync.ListParked(ctx)
	if err != nil || len(parked) != 0 {
		t.Fatalf("parked events: %+v %v", parked, err)
	}
}

// TestOpenFGADownPausesTheSync stops OpenFGA while an event is pending:
// the event is not failed or parked, and it is applied once OpenFGA is
// back. Readiness reports the outage.
func TestOpenFGADownPausesTheSync(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	srv, err := fga.StartEmbedded(ctx, fga.EmbeddedOptions{Addr: "127.0.0.1:0", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()
	e := newEnv(t, srv.URL())
	w := policytest.FixedWorld()
	e.publish(e.b.World(w)...)
	_ = srv.Close()

	alice, _ := w.Employee(policytest.FixedID("alice"))
	revoke := e.b.EmployeeEvent(alice.OrgKind, alice.OrgID, alice.UserID, "employee_roles_set", map[string]any{"roles": []string{}})
	if err := authzsynctest.Publish(ctx, e.js, e.prefix, revoke); err != nil {
		t.Fatal(err)
	}
	e.sent++
	ready := httptest.NewServer(e.sync.Handler())
	t.Cleanup(ready.Close)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(ready.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz stays ready while OpenFGA is down")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // let the sync try, fail and pause
	parked, err := e.sync.ListParked(ctx)
	if err != nil || len(parked) != 0 {
		t.Fatalf("parked while OpenFGA was down: %+v %v", parked, err)
	}

	srv2, err := fga.StartEmbedded(ctx, fga.EmbeddedOptions{Addr: addr, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv2.Close() })
	e.waitApplied(e.sent)
	c := policytest.Case{UserID: alice.UserID, Op: policy.OpDisarm, SecuritySystemID: policytest.FixedID("ss1"), At: time.Now()}
	if e.decide([]policytest.Case{c})[0].Allowed {
		t.Fatal("the revocation published during the outage was not applied")
	}
	resp, err := http.Get(ready.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 1<<16)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if !strings.Contains(b.String(), "realguardio_authzsync_lag_seconds") {
		t.Fatal("/metrics has no realguardio_authzsync_lag_seconds")
	}
}

// An event that keeps failing holds the stream back and makes the sync not
// ready; it is never parked and skipped, since skipping a revocation would
// keep a grant alive in OpenFGA.
func TestFailingEventBlocksInsteadOfParking(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "")
	w := policytest.FixedWorld()
	e.publish(e.b.World(w)...)

	alice, _ := w.Employee(policytest.FixedID("alice"))
	broken := e.b.EmployeeEvent(alice.OrgKind, alice.OrgID, alice.UserID, "employee_roles_set", map[string]any{"roles": "not a list"})
	revoke := e.b.EmployeeEvent(alice.OrgKind, alice.OrgID, alice.UserID, "employee_roles_set", map[string]any{"roles": []string{}})
	if err := authzsynctest.Publish(ctx, e.js, e.prefix, broken, revoke); err != nil {
		t.Fatal(err)
	}
	ready := httptest.NewServer(e.sync.Handler())
	t.Cleanup(ready.Close)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(ready.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz stays ready while an event keeps failing")
		}
		time.Sleep(50 * time.Millisecond)
	}
	parked, err := e.sync.ListParked(ctx)
	if err != nil || len(parked) != 0 {
		t.Fatalf("a failing authorization event was parked: %+v %v", parked, err)
	}
	// The revocation behind it waits: alice keeps her old grant until an
	// operator repairs the stream, and readiness says so.
	c := policytest.Case{UserID: alice.UserID, Op: policy.OpDisarm, SecuritySystemID: policytest.FixedID("ss1"), At: time.Now()}
	if !e.decide([]policytest.Case{c})[0].Allowed {
		t.Fatal("the event behind the failing one was applied out of order")
	}
}

// The lag gauge is 0 while nothing is pending, however long the sync has
// been idle (the rule of the replica's lag): an hour after the last event
// an idle sync still reads 0. While an event waits (here one that keeps
// failing and blocks its stream) it is the age of the newest applied event.
func TestLagIsZeroWhileIdle(t *testing.T) {
	var offset atomic.Int64
	_, js := eventstest.Connect(t, eventstest.NATS(t))
	e := &env{t: t, js: js, prefix: eventstest.Streams(t, js), b: authzsynctest.NewBuilder(),
		clock: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }}
	srv, err := fga.StartEmbedded(context.Background(), fga.EmbeddedOptions{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	if e.fga, err = fga.New(fga.Config{URL: srv.URL(), Timeout: 15 * time.Second, BreakerOpen: 200 * time.Millisecond}, nil, nil); err != nil {
		t.Fatal(err)
	}
	e.db = sqldbtest.OpenSQLite(t)
	e.start()
	ops := httptest.NewServer(e.sync.Handler())
	t.Cleanup(ops.Close)

	w := policytest.FixedWorld()
	e.publish(e.b.World(w)...)
	offset.Store(int64(time.Hour))

	// waitLag polls until every stream that applied an event is idle (lag
	// and gauge 0) or, with pending true, until at least one is pending
	// with a lag (and gauge) of at least the hour.
	waitLag := func(what string, pending bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			gauges := lagGauges(t, ops.URL)
			consistent, applied, behind := true, 0, 0
			for _, l := range e.sync.Lag() {
				if l.NewestEvent.IsZero() {
					continue
				}
				applied++
				g, found := gauges[l.Stream]
				switch {
				case !found:
					consistent = false
				case l.Pending == 0 && l.LagSeconds == 0 && g == 0:
				case l.Pending > 0 && l.LagSeconds >= time.Hour.Seconds() && g >= time.Hour.Seconds():
					behind++
				default:
					consistent = false
				}
			}
			if consistent && applied > 0 && (behind > 0) == pending {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: lag %+v, gauges %v", what, e.sync.Lag(), gauges)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitLag("idle an hour after the last event", false)

	alice, _ := w.Employee(policytest.FixedID("alice"))
	broken := e.b.EmployeeEvent(alice.OrgKind, alice.OrgID, alice.UserID, "employee_roles_set", map[string]any{"roles": "not a list"})
	if err := authzsynctest.Publish(context.Background(), e.js, e.prefix, broken); err != nil {
		t.Fatal(err)
	}
	waitLag("an event pending an hour after the last applied one", true)
}

// lagGauges scrapes realguardio_authzsync_lag_seconds per stream from the
// sync's /metrics.
func lagGauges(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, resp.Body); err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(b.String(), "\n") {
		rest, ok := strings.CutPrefix(line, `realguardio_authzsync_lag_seconds{stream="`)
		if !ok {
			continue
		}
		stream, value, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("lag gauge %q: %v", line, err)
		}
		out[stream] = v
	}
	return out
}
