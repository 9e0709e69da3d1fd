package delegate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	openfgav1 "github.com/openfga/api/proto/openfga/v1"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/realguardio/realguardio/internal/authzsync"
	"github.com/realguardio/realguardio/internal/authzsync/authzsynctest"
	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/catalog"
	"github.com/realguardio/realguardio/internal/platform/events/eventstest"
	"github.com/realguardio/realguardio/internal/platform/fga"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/openfga"
	"github.com/realguardio/realguardio/internal/policy/openfga/openfgatest"
	"github.com/realguardio/realguardio/internal/policy/policytest"
	"github.com/realguardio/realguardio/internal/securitysystem/authz"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/authztest"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/delegate"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/provide"
	"github.com/realguardio/realguardio/internal/securitysystem/sstest"
	"github.com/realguardio/realguardio/internal/securitysystem/store"
)

// setup starts an embedded OpenFGA, writes w's tuples through the client
// and returns the strategy and the server.
func setup(t *testing.T, w *policytest.World) (*delegate.Authorizer, *fga.Embedded, *fga.Client) {
	t.Helper()
	return setupDir(t, w, "")
}

// setupDir is setup over the SQLite datastore of `up` in dir ("" for the
// memory datastore).
func setupDir(t *testing.T, w *policytest.World, dir string) (*delegate.Authorizer, *fga.Embedded, *fga.Client) {
	t.Helper()
	ctx := context.Background()
	srv, err := fga.StartEmbedded(ctx, fga.EmbeddedOptions{Addr: "127.0.0.1:0", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	c, err := fga.New(fga.Config{URL: srv.URL(), Timeout: 15 * time.Second, BreakerFailures: 2, BreakerOpen: time.Minute}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	tuples, err := openfgatest.Tuples(w)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Write(ctx, tuples, nil); err != nil {
		t.Fatal(err)
	}
	return delegate.New(c), srv, c
}

func caller(w *policytest.World, userID string, appRoles []string) *auth.Caller {
	return &auth.Caller{Subject: userID, Roles: appRoles}
}

func refs(w *policytest.World) []authz.SystemRef {
	var out []authz.SystemRef
	for _, s := range w.SecuritySystems {
		out = append(out, authz.SystemRef{ID: s.ID, LocationID: s.LocationID})
	}
	return out
}

func TestFixedCases(t *testing.T) {
	w := policytest.FixedWorld()
	a, _, _ := setup(t, w)
	for _, fc := range policytest.FixedCases() {
		if len(fc.Before) > 0 {
			continue // changes are the sync's to test
		}
		c := fc.Case
		got, err := a.Decide(context.Background(), caller(w, c.UserID, c.AppRoles), c.Op,
			authz.SystemRef{ID: c.SecuritySystemID, LocationID: w.Resource(c.SecuritySystemID).LocationID}, c.At)
		if err != nil {
			t.Fatalf("%s: %v", fc.Name, err)
		}
		if got != fc.Want {
			t.Errorf("%s: got %+v, want %+v", fc.Name, got, fc.Want)
		}
	}
	// A service token holds no roles.
	got, err := a.Decide(context.Background(), &auth.Caller{Subject: "client", IsService: true}, policy.OpView, refs(w)[0], time.Now())
	if err != nil || got.Allowed || got.Reason != policy.ReasonNoRole {
		t.Fatalf("service token: %+v %v", got, err)
	}
}

// TestConformance runs the strategies' suite against delegate, over the
// memory datastore and (first seeds only: it is slower, and there to check
// its pool and statement cache) over the SQLite one of `up`: OpenFGA holds the World's tuples, replaced by the difference
// after every change, and the records' resource facts are kept by the
// resource facts handler fed the documented events, as under `up`.
func TestConformance(t *testing.T) {
	for _, ds := range []string{"memory", "sqlite"} {
		run := authztest.Run
		if ds == "sqlite" {
			run = authztest.RunFirstSeed
		}
		t.Run(ds, func(t *testing.T) {
			run(t, func(t *testing.T, w *policytest.World) authztest.Strategy {
				dir := ""
				if ds == "sqlite" {
					dir = t.TempDir()
				}
				a, _, client := setupDir(t, w, dir)
				current := tupleSet(t, w)
				db := authztest.OpenDB(t)
				feed := authztest.Feed(t, db, w, provide.Handle)
				return authztest.Strategy{
					Authorizer: a,
					Store:      store.New(db, authztest.DiscardEvents{}, store.WithCreateHook(provide.FillKnownFacts)),
					Caller:     func(u string) *auth.Caller { return caller(w, u, w.AppRoles(u)) },
					Follow: func(before *policytest.World, c policytest.Change) {
						next := tupleSet(t, w)
						var writes []*openfgav1.TupleKey
						var deletes []*openfgav1.TupleKeyWithoutCondition
						for k, tk := range current {
							if _, ok := next[k]; !ok {
								deletes = append(deletes, &openfgav1.TupleKeyWithoutCondition{Object: tk.Object, Relation: tk.Relation, User: tk.User})
							}
						}
						for k, tk := range next {
							if _, ok := current[k]; !ok {
								writes = append(writes, tk)
							}
						}
						if err := client.Write(context.Background(), writes, deletes); err != nil {
							t.Fatal(err)
						}
						current = next
						feed(before, c)
					},
				}
			})
		})
	}
}

// tupleSet is w's tuples by their text.
func tupleSet(t *testing.T, w *policytest.World) map[string]*openfgav1.TupleKey {
	t.Helper()
	ts, err := openfgatest.Tuples(w)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*openfgav1.TupleKey{}
	for _, tk := range ts {
		out[prototext.Format(tk)] = tk
	}
	return out
}

// TestFilterOfRecordsWithoutFacts: the records of the conformance suite
// hold their resource facts, so Filter resolves them over the caller's
// grants; a record without them (created before its location's facts were
// known) is checked one by one, and must come out the same.
func TestFilterOfRecordsWithoutFacts(t *testing.T) {
	ctx := context.Background()
	w := policytest.Generate(3, policytest.Small)
	a, _, _ := setup(t, w)
	rng := rand.New(rand.NewSource(3))
	systems := refs(w)
	for _, c := range w.Cases(rng, 30) {
		list, err := a.Filter(ctx, caller(w, c.UserID, c.AppRoles), systems, c.At)
		if err != nil {
			t.Fatal(err)
		}
		s := w.Subject(c.UserID, c.AppRoles)
		var want []authz.Permitted
		for _, ref := range systems {
			if p, ok := authz.Permit(s, ref, w.Resource(ref.ID), c.At); ok {
				want = append(want, p)
			}
		}
		if !slices.EqualFunc(list, want, func(x, y authz.Permitted) bool {
			return x.System == y.System && slices.Equal(x.Actions, y.Actions)
		}) {
			t.Errorf("list of %s at %v: delegate %+v, policy %+v", c.UserID, c.At, list, want)
		}
	}
}

// administer returns w with alice made CUSTOMER_EMPLOYEE_ADMINISTRATOR
// of acme and dave DEALER_EMPLOYEE_ADMINISTRATOR of d1, which services
// loc1: the fixed world has no administrators.
func administer(t *testing.T, w *policytest.World) *policytest.World {
	t.Helper()
	id := policytest.FixedID
	for _, ch := range []policytest.Change{
		{Kind: policytest.ChangeOrgRoles, OrgKind: policy.OrgCustomer, OrgID: id("acme"), UserID: id("alice"),
			Roles: []string{policy.RoleCustomerEmployeeAdministrator, policy.RoleDisarmer}},
		{Kind: policytest.ChangeOrgRoles, OrgKind: policy.OrgDealer, OrgID: id("d1"), UserID: id("dave"),
			Roles: []string{policy.RoleDealerEmployeeAdministrator, policy.RoleDisarmer}},
	} {
		if err := w.Apply(ch); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func TestAuthorizeCreate(t *testing.T) {
	ctx := context.Background()
	id := policytest.FixedID
	w := administer(t, policytest.FixedWorld())
	fromFGA, _, c := setup(t, w)
	// As under `up`: the locations' facts the resource facts consumer
	// keeps, OpenFGA for the others (here "nowhere").
	db := authztest.OpenDB(t)
	authztest.Feed(t, db, w, provide.Handle)
	known := delegate.New(c, delegate.WithKnownLocations(provide.KnownLocations(db)))
	// loc5's location_created reached the resource facts consumer and not
	// yet the sync: the location is found, and the Check decides.
	loc5 := authz.Location{LocationID: id("loc5"), CustomerID: id("acme"), DealerID: id("d1"), MonitoringProviderID: id("p1")}
	ev := sstest.NewEvents(time.Now()).Typed(catalog.LocationCreated, loc5.CustomerID,
		catalog.LocationCreatedPayload{CustomerID: loc5.CustomerID, LocationID: loc5.LocationID, Name: "l", DealerID: &loc5.DealerID})
	if err := db.InTx(ctx, func(tx *sqldb.Tx) error { return provide.Handle(ctx, tx, ev) }); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		who  *auth.Caller
		want authz.CreateCheck
	}{
		{"REALGUARDIO_ADMIN", caller(w, id("admin"), []string{policy.AppRoleAdmin}), authz.CreateCheck{Found: true, Location: loc5, Decision: policy.Decision{Allowed: true}}},
		{"acme's administrator", caller(w, id("alice"), []string{auth.RoleCustomerEmployee}),
			authz.CreateCheck{Found: true, Location: authz.Location{LocationID: loc5.LocationID, CustomerID: loc5.CustomerID, DealerID: loc5.DealerID}, Decision: policy.Decision{Reason: policy.ReasonNoRole}}},
	} {
		if got, err := known.AuthorizeCreate(ctx, tc.who, loc5.LocationID); err != nil || got != tc.want {
			t.Errorf("%s at loc5, known locally only: %+v %v, want %+v", tc.name, got, err, tc.want)
		}
		if got, err := fromFGA.AuthorizeCreate(ctx, tc.who, loc5.LocationID); err != nil || got.Found {
			t.Errorf("%s at loc5, facts from OpenFGA: %+v %v, want not found", tc.name, got, err)
		}
	}
	// olga administers foo, the customer of loc2 only.
	olga, err := openfga.OrgRoleTuples(policy.OrgCustomer, id("foo"), id("olga"), []string{policy.RoleCustomerEmployeeAdministrator})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Write(ctx, olga, nil); err != nil {
		t.Fatal(err)
	}
	customerEmployee := []string{auth.RoleCustomerEmployee}
	loc1 := authz.Location{LocationID: id("loc1"), CustomerID: id("acme"), DealerID: id("d1"), MonitoringProviderID: id("p1")}
	loc2 := authz.Location{LocationID: id("loc2"), CustomerID: id("foo")}
	loc3 := authz.Location{LocationID: id("loc3"), CustomerID: id("acme")}
	allow := policy.Decision{Allowed: true}
	noRole := policy.Decision{Reason: policy.ReasonNoRole}
	for _, tc := range []struct {
		name   string
		caller *auth.Caller
		loc    string
		want   authz.CreateCheck
	}{
		{"acme's administrator at loc1", caller(w, id("alice"), customerEmployee), "loc1", authz.CreateCheck{Found: true, Location: loc1, Decision: allow}},
		{"acme's administrator at loc3", caller(w, id("alice"), customerEmployee), "loc3", authz.CreateCheck{Found: true, Location: loc3, Decision: allow}},
		{"REALGUARDIO_ADMIN at loc1", caller(w, id("admin"), []string{policy.AppRoleAdmin}), "loc1", authz.CreateCheck{Found: true, Location: loc1, Decision: allow}},
		{"REALGUARDIO_ADMIN at loc2", caller(w, id("admin"), []string{policy.AppRoleAdmin}), "loc2", authz.CreateCheck{Found: true, Location: loc2, Decision: allow}},
		{"acme's administrator, also REALGUARDIO_ADMIN, at foo's loc2", caller(w, id("alice"), []string{auth.RoleCustomerEmployee, policy.AppRoleAdmin}), "loc2",
			authz.CreateCheck{Found: true, Location: loc2, Decision: allow}},
		{"acme's administrator at foo's loc2", caller(w, id("alice"), customerEmployee), "loc2", authz.CreateCheck{Found: true, Location: loc2, Decision: noRole}},
		{"foo's administrator at acme's loc1", caller(w, id("olga"), customerEmployee), "loc1", authz.CreateCheck{Found: true, Location: authz.Location{LocationID: id("loc1"), CustomerID: id("acme"), DealerID: id("d1")}, Decision: noRole}},
		{"d1's administrator at loc1, which d1 services", caller(w, id("dave"), []string{auth.RoleDealerEmployee}), "loc1", authz.CreateCheck{Found: true, Location: authz.Location{LocationID: id("loc1"), CustomerID: id("acme"), DealerID: id("d1")}, Decision: noRole}},
		{"an acme employee with a location role at loc3", caller(w, id("mary"), customerEmployee), "loc3", authz.CreateCheck{Found: true, Location: loc3, Decision: noRole}},
		{"a service token", &auth.Caller{Subject: "client", IsService: true}, "loc3", authz.CreateCheck{Found: true, Location: loc3, Decision: noRole}},
		{"REALGUARDIO_ADMIN at an unknown location", caller(w, id("admin"), []string{policy.AppRoleAdmin}), "nowhere", authz.CreateCheck{Decision: noRole}},
		{"acme's administrator at an unknown location", caller(w, id("alice"), customerEmployee), "nowhere", authz.CreateCheck{Decision: noRole}},
		{"a stranger at an unknown location", caller(w, id("stranger"), nil), "nowhere", authz.CreateCheck{Decision: noRole}},
	} {
		for _, a := range []struct {
			name string
			*delegate.Authorizer
		}{{"facts from OpenFGA", fromFGA}, {"known facts", known}} {
			got, err := a.AuthorizeCreate(ctx, tc.caller, id(tc.loc))
			if err != nil {
				t.Fatalf("%s, %s: %v", tc.name, a.name, err)
			}
			if got != tc.want {
				t.Errorf("%s, %s: got %+v, want %+v", tc.name, a.name, got, tc.want)
			}
			// The bulk path of an import decides the same, here with the
			// case's location between two others.
			locs := []string{id("loc1"), id(tc.loc), id("loc3")}
			bulk, err := a.AuthorizeCreates(ctx, tc.caller, locs)
			if err != nil || len(bulk) != len(locs) {
				t.Fatalf("%s, %s: bulk %+v, %v", tc.name, a.name, bulk, err)
			}
			for i, l := range locs {
				one, err := a.AuthorizeCreate(ctx, tc.caller, l)
				if err != nil {
					t.Fatal(err)
				}
				if bulk[i] != one {
					t.Errorf("%s, %s: bulk at %s %+v, single %+v", tc.name, a.name, l, bulk[i], one)
				}
			}
		}
	}
}

// TestGeneratedWorldCreate compares AuthorizeCreate with authz.CanCreate
// and the world's location facts on a generated world, whose first
// employee of every organization is its administrator, with the
// locations' facts read from OpenFGA and from the resource facts tables.
func TestGeneratedWorldCreate(t *testing.T) {
	w := policytest.Generate(5, policytest.Small)
	fromFGA, _, c := setup(t, w)
	db := authztest.OpenDB(t)
	authztest.Feed(t, db, w, provide.Handle)
	for _, a := range []*delegate.Authorizer{fromFGA, delegate.New(c, delegate.WithKnownLocations(provide.KnownLocations(db)))} {
		generatedWorldCreate(t, w, a)
	}
}

// generatedWorldCreate is TestGeneratedWorldCreate of one authorizer.
func generatedWorldCreate(t *testing.T, w *policytest.World, a *delegate.Authorizer) {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewSource(5))
	users := w.Users()
	allowed := 0
	for range 120 {
		u := users[rng.Intn(len(users))]
		l := w.Locations[rng.Intn(len(w.Locations))]
		if rng.Intn(2) == 0 {
			// Half the cases ask at a location of the user's own customer,
			// where its administrators may create.
			if e, ok := w.Employee(u); ok && e.OrgKind == policy.OrgCustomer {
				for _, x := range w.Locations {
					if x.CustomerID == e.OrgID {
						l = x
						break
					}
				}
			}
		}
		got, err := a.AuthorizeCreate(ctx, caller(w, u, w.AppRoles(u)), l.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := authz.CanCreate(w.Subject(u, w.AppRoles(u)), l.CustomerID)
		if !got.Found || got.Decision != want || got.Location.CustomerID != l.CustomerID || got.Location.DealerID != l.DealerID {
			t.Errorf("user %s at %s: delegate %+v, want found %+v at %+v", u, l.ID, got, want, l)
			continue
		}
		if want.Allowed {
			allowed++
			if p := providerOf(w, l.DealerID); got.Location.MonitoringProviderID != p {
				t.Errorf("user %s at %s: provider %q, want %q", u, l.ID, got.Location.MonitoringProviderID, p)
			}
		}
	}
	if allowed == 0 {
		t.Fatal("no case allowed a creation")
	}
}

// providerOf returns the monitoring provider of a dealer, "" for none.
func providerOf(w *policytest.World, dealerID string) string {
	for _, d := range w.Dealers {
		if d.ID == dealerID {
			return d.MonitoringProviderID
		}
	}
	return ""
}

// TestCreateFollowsEvents runs the authorization sync between events and
// OpenFGA: CUSTOMER_EMPLOYEE_ADMINISTRATOR granted by employee_roles_set
// allows creation, a new roles set without it revokes it, and so does the
// employee's removal.
func TestCreateFollowsEvents(t *testing.T) {
	ctx := context.Background()
	id := policytest.FixedID
	_, js := eventstest.Connect(t, eventstest.NATS(t))
	prefix := eventstest.Streams(t, js)
	srv, err := fga.StartEmbedded(ctx, fga.EmbeddedOptions{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	c, err := fga.New(fga.Config{URL: srv.URL(), Timeout: 15 * time.Second}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	db := sqldbtest.OpenSQLite(t)
	s, err := authzsync.New(ctx, authzsync.Config{EventPrefix: prefix, RetryInterval: 100 * time.Millisecond},
		authzsync.Deps{DB: db, JS: js, FGA: c})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	b := authzsynctest.NewBuilder()
	sent := 0
	publish := func(evs ...events.Event) {
		t.Helper()
		if err := authzsynctest.Publish(ctx, js, prefix, evs...); err != nil {
			t.Fatal(err)
		}
		sent += len(evs)
		deadline := time.Now().Add(60 * time.Second)
		for {
			var n int
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM event_applied WHERE consumer = ?`, authzsync.DefaultConsumerName).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n >= sent {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the sync applied %d of %d events in 60s", n, sent)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	w := policytest.FixedWorld()
	publish(b.World(w)...)

	a := delegate.New(c)
	alice := caller(w, id("alice"), w.AppRoles(id("alice")))
	mayCreate := func(at string) bool {
		t.Helper()
		got, err := a.AuthorizeCreate(ctx, alice, id(at))
		if err != nil || !got.Found {
			t.Fatalf("alice at %s: %+v %v", at, got, err)
		}
		return got.Decision.Allowed
	}
	if mayCreate("loc1") {
		t.Fatal("alice may create before she is an administrator")
	}
	roles := func(rs ...string) events.Event {
		return b.EmployeeEvent(policy.OrgCustomer, id("acme"), id("alice"), "employee_roles_set", map[string]any{"roles": rs})
	}
	publish(roles(policy.RoleCustomerEmployeeAdministrator, policy.RoleDisarmer))
	if !mayCreate("loc1") || !mayCreate("loc3") || mayCreate("loc2") {
		t.Fatal("acme's administrator alice may not create at acme's locations, or may at foo's")
	}
	// The set replaces the set: DISARMER alone revokes the administrator.
	publish(roles(policy.RoleDisarmer))
	if mayCreate("loc1") {
		t.Fatal("alice may still create after CUSTOMER_EMPLOYEE_ADMINISTRATOR was taken away")
	}
	publish(roles(policy.RoleCustomerEmployeeAdministrator))
	if !mayCreate("loc1") {
		t.Fatal("alice's administrator role granted again was not applied")
	}
	publish(b.EmployeeEvent(policy.OrgCustomer, id("acme"), id("alice"), "employee_removed", nil))
	if mayCreate("loc1") {
		t.Fatal("removed alice may still create")
	}
	// A location created by an event is known at once.
	loc4 := id("loc4")
	publish(b.OrgEvent(policy.OrgCustomer, id("acme"), "location_created", map[string]any{"locationId": loc4, "name": "location", "dealerId": id("d1")}))
	got, err := a.AuthorizeCreate(ctx, caller(w, id("admin"), []string{policy.AppRoleAdmin}), loc4)
	want := authz.Location{LocationID: loc4, CustomerID: id("acme"), DealerID: id("d1"), MonitoringProviderID: id("p1")}
	if err != nil || !got.Found || !got.Decision.Allowed || got.Location != want {
		t.Fatalf("admin at the new loc4: %+v %v, want %+v", got, err, want)
	}
}

// TestOpenFGADown: every entry point fails with Unavailable (503, nothing
// changed), never a denial or an allow.
func TestOpenFGADown(t *testing.T) {
	ctx := context.Background()
	w := policytest.FixedWorld()
	a, srv, _ := setup(t, w)
	_ = srv.Close()
	alice := caller(w, policytest.FixedID("alice"), w.AppRoles(policytest.FixedID("alice")))
	for i := range 3 { // the third call meets the open breaker
		if _, err := a.Decide(ctx, alice, policy.OpDisarm, refs(w)[0], time.Now()); !apperr.Is(err, apperr.Unavailable) {
			t.Fatalf("Decide %d: %v", i, err)
		}
	}
	if _, err := a.Filter(ctx, alice, refs(w), time.Now()); !apperr.Is(err, apperr.Unavailable) {
		t.Fatalf("Filter: %v", err)
	}
	if _, err := a.AuthorizeCreate(ctx, alice, policytest.FixedID("loc1")); !apperr.Is(err, apperr.Unavailable) {
		t.Fatalf("AuthorizeCreate: %v", err)
	}
	if err := a.Ready(ctx); !apperr.Is(err, apperr.Unavailable) {
		t.Fatalf("Ready: %v", err)
	}
}

// BenchmarkDecide measures one allowed decision over HTTP against the
// embedded server (one Check).
func BenchmarkDecide(b *testing.B) {
	w := policytest.FixedWorld()
	a, _, _ := setupB(b, w)
	alice := caller(w, policytest.FixedID("alice"), w.AppRoles(policytest.FixedID("alice")))
	ref := refs(w)[0]
	now := time.Now()
	b.ResetTimer()
	for b.Loop() {
		if d, err := a.Decide(context.Background(), alice, policy.OpDisarm, ref, now); err != nil || !d.Allowed {
			b.Fatal(d, err)
		}
	}
}

// BenchmarkFilter measures listing every system of a Medium world (about
// 24 systems) and the first 100 of a Large one, as a REALGUARDIO_ADMIN
// (views everything, never on duty) and as a scheduled customer employee,
// over the SQLite datastore of `up` and the memory one:
//
//	go test -run '^$' -bench Filter -benchtime 20x ./internal/securitysystem/authz/delegate/
func BenchmarkFilter(b *testing.B) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for _, ds := range []string{"sqlite", "memory"} {
		for _, size := range []policytest.Size{policytest.Medium, policytest.Large} {
			w := policytest.Generate(1, size)
			dir := ""
			if ds == "sqlite" {
				dir = b.TempDir()
			}
			a, _, _ := setupDirB(b, w, dir)
			systems := refs(w)[:min(100, len(w.SecuritySystems))]
			for _, who := range []string{"admin", "employee"} {
				c := caller(w, w.Admins[0], []string{policy.AppRoleAdmin})
				if who == "employee" {
					for _, e := range w.Employees {
						if e.Schedule != nil && e.OrgKind == policy.OrgCustomer && len(e.Roles) > 0 {
							c = caller(w, e.UserID, w.AppRoles(e.UserID))
							break
						}
					}
				}
				b.Run(fmt.Sprintf("%s/%s/systems=%d", ds, who, len(systems)), func(b *testing.B) {
					start := cpuTime()
					defer func() { b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op") }()
					for b.Loop() {
						list, err := a.Filter(context.Background(), c, systems, now)
						if err != nil || (who == "admin" && len(list) != len(systems)) {
							b.Fatal(len(list), err)
						}
					}
				})
			}
		}
	}
}

func setupB(b *testing.B, w *policytest.World) (*delegate.Authorizer, *fga.Embedded, *fga.Client) {
	b.Helper()
	return setupDirB(b, w, "")
}

// setupDirB is setupB over the SQLite datastore in dir ("" for memory).
func setupDirB(b *testing.B, w *policytest.World, dir string) (*delegate.Authorizer, *fga.Embedded, *fga.Client) {
	b.Helper()
	ctx := context.Background()
	srv, err := fga.StartEmbedded(ctx, fga.EmbeddedOptions{Addr: "127.0.0.1:0", Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	c, err := fga.New(fga.Config{URL: srv.URL(), Timeout: 15 * time.Second}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	tuples, err := openfgatest.Tuples(w)
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Write(ctx, tuples, nil); err != nil {
		b.Fatal(err)
	}
	return delegate.New(c), srv, c
}

// cpuTime is the CPU time of the process so far (every goroutine: client,
// gateway, server, datastore). BenchmarkFilter reports it per operation
// as cpu-ns/op, which on a shared machine varies far less with the load
// of others than the wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// recorder is a transport that keeps the path and body of every request.
type recorder struct {
	mu    sync.Mutex
	calls []recorded
}

type recorded struct{ path, body string }

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	r.mu.Lock()
	r.calls = append(r.calls, recorded{req.URL.Path, string(body)})
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func (r *recorder) take() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.calls
	r.calls = nil
	return out
}

// TestListPageReads checks what a list page asks OpenFGA, for every user
// of a generated world: each Read of the user's (or a team's) tuples on
// location names its relation, so OpenFGA answers it from its (store,
// object type, relation, user) index instead of scanning every location
// tuple of the platform; and the page asks its one on_duty Check only when
// the page holds a system the user may arm or disarm, never for a viewer's.
func TestListPageReads(t *testing.T) {
	ctx := context.Background()
	w := policytest.Generate(5, policytest.Small)
	_, srv, _ := setup(t, w)
	rec := &recorder{}
	c, err := fga.New(fga.Config{URL: srv.URL(), Timeout: 15 * time.Second}, &http.Client{Transport: rec}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := delegate.New(c)
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	systems := refsWithFacts(w)
	at := time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)
	var checked, unchecked int
	for _, u := range w.Users() {
		rec.take()
		mctx := authz.WithRequestMemo(ctx)
		cl := caller(w, u, nil)
		if _, err := a.Scope(mctx, cl, at); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Filter(mctx, cl, systems, at); err != nil {
			t.Fatal(err)
		}
		checks := 0
		for _, call := range rec.take() {
			switch {
			case strings.HasSuffix(call.path, "/read"):
				var req struct {
					TupleKey struct{ User, Relation, Object string } `json:"tuple_key"`
				}
				if err := json.Unmarshal([]byte(call.body), &req); err != nil {
					t.Fatal(err)
				}
				if req.TupleKey.Object == openfga.TypeLocation+":" && req.TupleKey.Relation == "" {
					t.Errorf("list of %s: a Read of every location tuple of %s names no relation: %s", u, req.TupleKey.User, call.body)
				}
			case strings.HasSuffix(call.path, "/check"):
				checks++
			}
		}
		s := w.Subject(u, nil)
		mayAct := false
		for _, ss := range systems {
			r := w.Resource(ss.ID)
			mayAct = mayAct || policy.IsAllowed(s, policy.OpArm, r, at).Reason != policy.ReasonNoRole ||
				policy.IsAllowed(s, policy.OpDisarm, r, at).Reason != policy.ReasonNoRole
		}
		switch {
		case checks > 1:
			t.Errorf("list of %s: %d Checks, want at most one", u, checks)
		case !mayAct && checks != 0:
			t.Errorf("list of %s, who may arm or disarm none of the systems: %d Checks, want none", u, checks)
		case mayAct && checks != 1:
			t.Errorf("list of %s, who holds armer or disarmer on a listed system: %d Checks, want one", u, checks)
		}
		if mayAct {
			checked++
		} else {
			unchecked++
		}
	}
	if checked == 0 || unchecked == 0 {
		t.Fatalf("the world has %d users who may act and %d who may not: both kinds are needed", checked, unchecked)
	}
}

// BenchmarkListPage measures what a list page asks OpenFGA (Scope, then
// Filter of a page of 50 over the same request memo) on the SQLite
// datastore of `up`, for the benchmark's two users: "few" holds VIEWER,
// ARMER and DISARMER at one location (its page asks the on_duty Check),
// "many" SECURITY_SYSTEM_VIEWER in its customer; on platforms of 500 and
// 5 000 locations of another customer (two tuples each, customer and
// dealer), which are what a Read of location tuples without a relation
// scans:
//
//	go test -run '^$' -bench ListPage -benchtime 200x ./internal/securitysystem/authz/delegate/
func BenchmarkListPage(b *testing.B) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	id := func(kind string, i int) string { return policytest.FixedID(fmt.Sprintf("%s-%d", kind, i)) }
	for _, locations := range []int{500, 5000} {
		srv, err := fga.StartEmbedded(ctx, fga.EmbeddedOptions{Addr: "127.0.0.1:0", Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		c, err := fga.New(fga.Config{URL: srv.URL(), Timeout: 30 * time.Second}, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		big, mine, dealer := id("customer", 1), id("customer", 2), id("dealer", 1)
		few, many := id("user", 1), id("user", 2)
		tuples := openfga.EmployeeLocationRoleTuples(id("location", 0), few, []string{policy.RoleViewer, policy.RoleArmer, policy.RoleDisarmer})
		tuples = append(tuples, openfga.LocationTuples(id("location", 0), mine, dealer)...)
		orgTuples, err := openfga.OrgRoleTuples(policy.OrgCustomer, mine, many, []string{policy.RoleViewer})
		if err != nil {
			b.Fatal(err)
		}
		tuples = append(tuples, orgTuples...)
		for _, u := range []string{few, many} {
			t, err := openfga.OnDutyTuple(u, nil)
			if err != nil {
				b.Fatal(err)
			}
			tuples = append(tuples, t)
		}
		for l := 1; l < locations; l++ {
			tuples = append(tuples, openfga.LocationTuples(id("location", l), big, dealer)...)
		}
		for start := 0; start < len(tuples); start += 100 {
			if err := c.Write(ctx, tuples[start:min(start+100, len(tuples))], nil); err != nil {
				b.Fatal(err)
			}
		}
		a := delegate.New(c)
		var page []authz.SystemRef
		for i := range 50 {
			page = append(page, authz.SystemRef{ID: id("system", i), LocationID: id("location", 0), CustomerID: mine, DealerID: dealer})
		}
		for _, u := range []struct{ name, id string }{{"few", few}, {"many", many}} {
			b.Run(fmt.Sprintf("locations=%d/%s", locations, u.name), func(b *testing.B) {
				cl := caller(nil, u.id, nil)
				start := cpuTime()
				defer func() { b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op") }()
				for b.Loop() {
					mctx := authz.WithRequestMemo(ctx)
					if _, err := a.Scope(mctx, cl, now); err != nil {
						b.Fatal(err)
					}
					got, err := a.Filter(mctx, cl, page, now)
					if err != nil || len(got) != len(page) {
						b.Fatal(len(got), err)
					}
				}
			})
		}
		_ = srv.Close()
	}
}

// refsWithFacts returns w's systems with their resource facts, as the
// service's records hold them.
func refsWithFacts(w *policytest.World) []authz.SystemRef {
	var out []authz.SystemRef
	for _, s := range w.SecuritySystems {
		r := w.Resource(s.ID)
		out = append(out, authz.SystemRef{ID: s.ID, LocationID: r.LocationID, CustomerID: r.CustomerID, DealerID: r.DealerID, MonitoringProviderID: r.MonitoringProviderID})
	}
	return out
}

// TestImportCallsAreBounded counts the OpenFGA calls of imports of n
// locations known to the resource facts tables, as under `up`: the
// BatchChecks of can_create_security_system (one call per
// fga.MaxChecksPerBatchCheck locations) and nothing per location. Reading
// each location's tuples from OpenFGA instead, one Read per location, ran
// an import of 1 000 locations past the server's write timeout at 10⁴
// systems. The decisions are compared with authz.CanCreate and the
// world's facts.
func TestImportCallsAreBounded(t *testing.T) {
	ctx := context.Background()
	w := policytest.Generate(7, policytest.Small)
	// Grow the world to 260 locations, spread over its customers and
	// dealers (every third without a dealer).
	for i := len(w.Locations); i < 260; i++ {
		l := policytest.Location{ID: policytest.FixedID(fmt.Sprintf("import-loc-%d", i)), CustomerID: w.Customers[i%len(w.Customers)].ID}
		if i%3 != 0 {
			l.DealerID = w.Dealers[i%len(w.Dealers)].ID
		}
		w.Locations = append(w.Locations, l)
	}
	_, srv, _ := setup(t, w)
	db := authztest.OpenDB(t)
	authztest.Feed(t, db, w, provide.Handle)
	rec := &recorder{}
	c, err := fga.New(fga.Config{URL: srv.URL(), Timeout: 15 * time.Second}, &http.Client{Transport: rec}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	a := delegate.New(c, delegate.WithKnownLocations(provide.KnownLocations(db)))
	admin := caller(w, policytest.FixedID("admin"), []string{policy.AppRoleAdmin})
	var customerAdmin string
	for _, u := range w.Users() {
		if e, ok := w.Employee(u); ok && e.OrgKind == policy.OrgCustomer && authz.CanCreate(w.Subject(u, w.AppRoles(u)), e.OrgID).Allowed {
			customerAdmin = u
			break
		}
	}
	if customerAdmin == "" {
		t.Fatal("the world has no customer administrator")
	}
	callers := map[string]*auth.Caller{"REALGUARDIO_ADMIN": admin, "a customer administrator": caller(w, customerAdmin, w.AppRoles(customerAdmin))}
	for _, n := range []int{1, 50, 51, 260} {
		locs := make([]string, n)
		for i := range locs {
			locs[i] = w.Locations[i].ID
		}
		for name, who := range callers {
			rec.take()
			got, err := a.AuthorizeCreates(ctx, who, locs)
			if err != nil {
				t.Fatalf("%s, %d locations: %v", name, n, err)
			}
			calls := rec.take()
			bound := (n + fga.MaxChecksPerBatchCheck - 1) / fga.MaxChecksPerBatchCheck
			if len(calls) > bound {
				paths := map[string]int{}
				for _, c := range calls {
					paths[c.path[strings.LastIndex(c.path, "/")+1:]]++
				}
				t.Errorf("%s: an import of %d locations made %d OpenFGA calls %v, want at most %d", name, n, len(calls), paths, bound)
			}
			for i, l := range w.Locations[:n] {
				want := authz.CanCreate(w.Subject(who.Subject, who.Roles), l.CustomerID)
				if who == admin {
					want = policy.Decision{Allowed: true}
				}
				g := got[i]
				if !g.Found || g.Decision != want || g.Location.CustomerID != l.CustomerID || g.Location.DealerID != l.DealerID {
					t.Errorf("%s at %s: %+v, want found %+v at %+v", name, l.ID, g, want, l)
				} else if want.Allowed && g.Location.MonitoringProviderID != providerOf(w, l.DealerID) {
					t.Errorf("%s at %s: provider %q, want %q", name, l.ID, g.Location.MonitoringProviderID, providerOf(w, l.DealerID))
				}
			}
		}
	}
}
