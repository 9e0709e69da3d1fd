package fetch_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/policytest"
	"github.com/realguardio/realguardio/internal/securitysystem/authz"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/fetch"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/replicate"
	"github.com/realguardio/realguardio/internal/securitysystem/sstest"
)

var id = policytest.FixedID

// newFetch builds the strategy over the three facts servers, with a static
// service token (no IAM in these tests).
func newFetch(t *testing.T, customer, dealer, monitoring string, client *http.Client, log *slog.Logger) *fetch.Authorizer {
	t.Helper()
	a, err := fetch.New(fetch.Config{
		CustomerURL: customer, DealerURL: dealer, MonitoringURL: monitoring,
		TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "service"}),
		Logger:      log,
	}, client, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func newFetchFor(t *testing.T, f *sstest.Facts, client *http.Client) *fetch.Authorizer {
	return newFetch(t, f.Customer.URL, f.Dealer.URL, f.Monitoring.URL, client, nil)
}

// newReplicate builds the replicate strategy over w, fed as events.
func newReplicate(t *testing.T, w *policytest.World) authz.Authorizer {
	t.Helper()
	db := sqldbtest.OpenSQLite(t, replicate.Migrations())
	evs := sstest.NewEvents(time.Now().Add(-time.Hour))
	evs.World(w)
	sstest.Apply(t, db, replicate.NewProjection().Handle, evs.List())
	return replicate.New(db)
}

func refs(w *policytest.World) (map[string]authz.SystemRef, []authz.SystemRef) {
	byID := map[string]authz.SystemRef{}
	var all []authz.SystemRef
	for _, ss := range w.SecuritySystems {
		r := authz.SystemRef{ID: ss.ID, LocationID: ss.LocationID}
		byID[ss.ID] = r
		all = append(all, r)
	}
	return byID, all
}

// TestApplicationRolesDoNotMatter: the rule of AUTHZ.md does not depend on
// the employee application roles (a platform admin can edit them in the
// IAM), so fetch must decide every fixed case exactly as replicate and the
// reference do when the token carries no employee role, or the wrong one.
// Before the fix fetch asked only the owner named by the token's role, and
// denied alice, dave, erin... without it.
func TestApplicationRolesDoNotMatter(t *testing.T) {
	ctx := context.Background()
	wrong := map[policy.OrgKind][]string{
		policy.OrgCustomer:           {auth.RoleDealerEmployee},
		policy.OrgDealer:             {auth.RoleMonitoringEmployee},
		policy.OrgMonitoringProvider: {auth.RoleCustomerEmployee},
	}
	for _, fc := range policytest.FixedCases() {
		w := policytest.FixedWorld()
		for _, c := range fc.Before {
			if err := w.Apply(c); err != nil {
				t.Fatal(err)
			}
		}
		fa := newFetchFor(t, sstest.NewFacts(t, w), nil)
		ra := newReplicate(t, w)
		byID, all := refs(w)
		variants := map[string][]string{"no application role": nil}
		if e, ok := w.Employee(fc.Case.UserID); ok {
			variants["another kind's employee role"] = wrong[e.OrgKind]
		}
		if slices.Contains(fc.Case.AppRoles, policy.AppRoleAdmin) {
			// REALGUARDIO_ADMIN's view is the one grant AUTHZ.md gives
			// an application role; it is not what this test varies.
			continue
		}
		for name, roles := range variants {
			c := fc.Case
			c.AppRoles = roles
			want := policytest.Expected(w, c)
			if want != fc.Want {
				t.Fatalf("%s (%s): the reference decides %+v, the fixed case %+v", fc.Name, name, want, fc.Want)
			}
			caller := &auth.Caller{Subject: c.UserID, Roles: roles}
			for _, a := range []authz.Authorizer{fa, ra} {
				got, err := a.Decide(ctx, caller, c.Op, byID[c.SecuritySystemID], c.At)
				if err != nil || got != want {
					t.Errorf("%s (%s): %s decided %+v (err %v), want %+v", fc.Name, name, a.Name(), got, err, want)
				}
			}
			var lists [2][]authz.Permitted
			for i, a := range []authz.Authorizer{fa, ra} {
				got, err := a.Filter(ctx, caller, all, c.At)
				if err != nil {
					t.Fatalf("%s (%s): %s Filter: %v", fc.Name, name, a.Name(), err)
				}
				lists[i] = got
			}
			if !samePermitted(lists[0], lists[1]) {
				t.Errorf("%s (%s): fetch lists %v, replicate %v", fc.Name, name, lists[0], lists[1])
			}
		}
	}
	// The case of the finding, spelled out: alice's CUSTOMER_EMPLOYEE was
	// removed in the IAM, her organization role in acme still grants.
	w := policytest.FixedWorld()
	byID, _ := refs(w)
	fa := newFetchFor(t, sstest.NewFacts(t, w), nil)
	d, err := fa.Decide(ctx, &auth.Caller{Subject: id("alice")}, policy.OpDisarm, byID[id("ss1")], time.Now())
	if err != nil || !d.Allowed {
		t.Fatalf("alice without CUSTOMER_EMPLOYEE disarming ss1: %+v (err %v), want allowed", d, err)
	}
	// Creating needs the customer's administrator role, whatever the token
	// says; alice holds only DISARMER, so she is denied, but after asking.
	cc, err := fa.AuthorizeCreate(ctx, &auth.Caller{Subject: id("alice")}, id("loc1"))
	if err != nil || !cc.Found || cc.Decision.Allowed {
		t.Fatalf("alice creating at loc1: %+v (err %v), want found and denied", cc, err)
	}
}

func samePermitted(a, b []authz.Permitted) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].System.ID != b[i].System.ID || strings.Join(a[i].Actions, ",") != strings.Join(b[i].Actions, ",") {
			return false
		}
	}
	return true
}

// barrier is a transport that holds every request until want requests are
// in flight together (or a second has passed) and records whether they
// ever were: calls made in one parallel round meet there, calls made one
// after another never do.
type barrier struct {
	want int64

	mu       sync.Mutex
	inFlight int64
	met      bool
	release  chan struct{}
	calls    atomic.Int64
}

func newBarrier(want int64) *barrier { return &barrier{want: want, release: make(chan struct{})} }

func (b *barrier) RoundTrip(r *http.Request) (*http.Response, error) {
	b.calls.Add(1)
	b.mu.Lock()
	b.inFlight++
	if b.inFlight >= b.want && !b.met {
		b.met = true
		close(b.release)
	}
	b.mu.Unlock()
	select {
	case <-b.release:
	case <-time.After(time.Second):
	}
	b.mu.Lock()
	b.inFlight--
	b.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// TestSubjectCallsShareTheRound: the three subject calls and the location
// call (or the batch location call of a list) run as one parallel round,
// so asking every owner adds calls but no round trip; only a monitoring
// provider's employee costs one more (the dealers).
func TestSubjectCallsShareTheRound(t *testing.T) {
	ctx := context.Background()
	w := policytest.FixedWorld()
	f := sstest.NewFacts(t, w)
	byID, all := refs(w)
	cases := []struct {
		user  string
		calls int64
	}{
		{id("alice"), 4},  // 3 subjects ∥ location(s)
		{id("dave"), 4},   // 3 subjects ∥ location(s)
		{id("erin"), 5},   // 3 subjects ∥ location(s), then dealer(s)
		{id("admin"), 4},  // disarming needs the facts even for the admin
		{uuidNobody(), 4}, // a user nobody employs: every owner says so
	}
	for _, c := range cases {
		caller := &auth.Caller{Subject: c.user, Roles: w.AppRoles(c.user)}
		for _, op := range []string{"decide", "filter"} {
			b := newBarrier(4)
			fa := newFetchFor(t, f, &http.Client{Transport: b})
			var err error
			if op == "decide" {
				_, err = fa.Decide(ctx, caller, policy.OpDisarm, byID[id("ss1")], time.Now())
			} else {
				_, err = fa.Filter(ctx, caller, all, time.Now())
			}
			if err != nil {
				t.Fatalf("%s as %s: %v", op, c.user, err)
			}
			if !b.met {
				t.Errorf("%s as %s: the subject and location calls were not one parallel round", op, c.user)
			}
			if n := b.calls.Load(); n != c.calls {
				t.Errorf("%s as %s: %d calls, want %d", op, c.user, n, c.calls)
			}
		}
	}
	// The admin views by application role alone: nothing to ask.
	f.ResetCounts()
	fa := newFetchFor(t, f, nil)
	d, err := fa.Decide(ctx, &auth.Caller{Subject: id("admin"), Roles: []string{policy.AppRoleAdmin}}, policy.OpView, byID[id("ss2")], time.Now())
	if err != nil || !d.Allowed || f.Total() != 0 {
		t.Errorf("admin views ss2: %+v (err %v) after %d calls, want allowed after none", d, err, f.Total())
	}
}

func uuidNobody() string { return id("nobody") }

// TestAnyOwnerDownFailsClosed: every owner is asked, so any of them down
// makes the decision Unavailable (503), even for a user another owner
// employs: its answer could be the one that claims the user.
func TestAnyOwnerDownFailsClosed(t *testing.T) {
	ctx := context.Background()
	w := policytest.FixedWorld()
	byID, all := refs(w)
	for _, down := range []policy.OrgKind{policy.OrgCustomer, policy.OrgDealer, policy.OrgMonitoringProvider} {
		f := sstest.NewFacts(t, w)
		f.Down(down, true)
		fa := newFetchFor(t, f, nil)
		alice := &auth.Caller{Subject: id("alice"), Roles: w.AppRoles(id("alice"))}
		if _, err := fa.Decide(ctx, alice, policy.OpDisarm, byID[id("ss1")], time.Now()); !apperr.Is(err, apperr.Unavailable) {
			t.Errorf("%s down: Decide err %v, want Unavailable", down, err)
		}
		if _, err := fa.Filter(ctx, alice, all, time.Now()); !apperr.Is(err, apperr.Unavailable) {
			t.Errorf("%s down: Filter err %v, want Unavailable", down, err)
		}
		if _, err := fa.AuthorizeCreate(ctx, alice, id("loc1")); !apperr.Is(err, apperr.Unavailable) {
			t.Errorf("%s down: AuthorizeCreate err %v, want Unavailable", down, err)
		}
		if _, err := fa.SubjectFacts(ctx, id("alice")); !apperr.Is(err, apperr.Unavailable) {
			t.Errorf("%s down: SubjectFacts err %v, want Unavailable", down, err)
		}
	}
}

// TestTwoEmployersFailClosed: a user is an employee of at most one
// organization (AUTHZ.md). When two owners both claim the user, neither
// answer can be trusted over the other: every decision is Unavailable and
// the inconsistency is logged, naming the user and the claimants.
func TestTwoEmployersFailClosed(t *testing.T) {
	ctx := context.Background()
	user := id("alice")
	claim := func(kind policy.OrgKind, org string, claims bool) *httptest.Server {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /authz/subjects/{userId}", func(w http.ResponseWriter, r *http.Request) {
			out := map[string]any{"userId": r.PathValue("userId"), "organization": nil, "locationRoles": map[string]any{}, "schedule": nil}
			if claims {
				out["organization"] = map[string]any{"kind": string(kind), "id": org, "roles": []string{policy.RoleDisarmer}}
			}
			httpx.WriteJSON(w, http.StatusOK, out)
		})
		mux.HandleFunc("GET /authz/locations/{locationId}", func(w http.ResponseWriter, r *http.Request) {
			httpx.WriteJSON(w, http.StatusOK, map[string]any{"locationId": r.PathValue("locationId"), "customerId": id("acme"), "dealerId": id("d1")})
		})
		mux.HandleFunc("POST /authz/locations:batch", func(w http.ResponseWriter, r *http.Request) {
			httpx.WriteJSON(w, http.StatusOK, map[string]any{"locations": []any{
				map[string]any{"locationId": id("loc1"), "customerId": id("acme"), "dealerId": id("d1")},
			}})
		})
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		return srv
	}
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))
	cust := claim(policy.OrgCustomer, id("acme"), true)
	dealer := claim(policy.OrgDealer, id("d1"), true)
	mon := claim(policy.OrgMonitoringProvider, id("p1"), false)
	fa := newFetch(t, cust.URL, dealer.URL, mon.URL, nil, log)
	caller := &auth.Caller{Subject: user, Roles: []string{auth.RoleCustomerEmployee}}
	ss1 := authz.SystemRef{ID: id("ss1"), LocationID: id("loc1")}
	if _, err := fa.Decide(ctx, caller, policy.OpDisarm, ss1, time.Now()); !apperr.Is(err, apperr.Unavailable) {
		t.Errorf("Decide err %v, want Unavailable", err)
	}
	if _, err := fa.Filter(ctx, caller, []authz.SystemRef{ss1}, time.Now()); !apperr.Is(err, apperr.Unavailable) {
		t.Errorf("Filter err %v, want Unavailable", err)
	}
	if _, err := fa.AuthorizeCreate(ctx, caller, id("loc1")); !apperr.Is(err, apperr.Unavailable) {
		t.Errorf("AuthorizeCreate err %v, want Unavailable", err)
	}
	if _, err := fa.SubjectFacts(ctx, user); !apperr.Is(err, apperr.Unavailable) {
		t.Errorf("SubjectFacts err %v, want Unavailable", err)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	for _, want := range []string{"level=ERROR", "more than one organization claims the user", user, "customer " + id("acme"), "dealer " + id("d1")} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	// One claimant is the normal case and is merged as before.
	fa = newFetch(t, cust.URL, mon.URL, mon.URL, nil, log)
	s, err := fa.SubjectFacts(ctx, user)
	if err != nil || s.Org == nil || s.Org.Kind != policy.OrgCustomer || s.Org.ID != id("acme") {
		t.Errorf("one claimant: %+v (err %v)", s, err)
	}
}

// lockedWriter serializes the log handler's writes with the test's read.
type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
