package delegate_test

import (
	"context"
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/fga"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/openfga/openfgatest"
	"github.com/realguardio/realguardio/internal/policy/policytest"
	"github.com/realguardio/realguardio/internal/securitysystem/authz"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/delegate"
)

// setup starts an embedded OpenFGA, writes w's tuples through the client
// and returns the strategy and the server.
func setup(t *testing.T, w *policytest.World) (*delegate.Authorizer, *fga.Embedded, *fga.Client) {
	t.Helper()
	ctx := context.Background()
	srv, err := fga.StartEmbedded(ctx, fga.EmbeddedOptions{Addr: "127.0.0.1:0"})
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

// TestGeneratedWorldFilterAndDecide compares Filter (one batch per list)
// and Decide with policy.IsAllowed on a generated world.
func TestGeneratedWorldFilterAndDecide(t *testing.T) {
	ctx := context.Background()
	w := policytest.Generate(3, policytest.Small)
	a, _, _ := setup(t, w)
	rng := rand.New(rand.NewSource(3))
	systems := refs(w)
	for i, c := range w.Cases(rng, 300) {
		ref := authz.SystemRef{ID: c.SecuritySystemID, LocationID: w.Resource(c.SecuritySystemID).LocationID}
		got, err := a.Decide(ctx, caller(w, c.UserID, c.AppRoles), c.Op, ref, c.At)
		if err != nil {
			t.Fatal(err)
		}
		if want := policytest.Expected(w, c); got != want {
			t.Errorf("%v: delegate %+v, policy %+v", c, got, want)
		}
		if i%10 != 0 {
			continue
		}
		// Every tenth case also lists every system for the case's user at
		// the case's instant.
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

type fakeCreate struct{ called bool }

func (f *fakeCreate) AuthorizeCreate(context.Context, *auth.Caller, string) (authz.CreateCheck, error) {
	f.called = true
	return authz.CreateCheck{Found: true, Decision: policy.Decision{Allowed: true}}, nil
}

func TestAuthorizeCreate(t *testing.T) {
	ctx := context.Background()
	id := policytest.FixedID
	w := policytest.FixedWorld()
	a, _, c := setup(t, w)
	admin := caller(w, id("admin"), []string{policy.AppRoleAdmin})
	got, err := a.AuthorizeCreate(ctx, admin, id("loc1"))
	if err != nil {
		t.Fatal(err)
	}
	want := authz.Location{LocationID: id("loc1"), CustomerID: id("acme"), DealerID: id("d1"), MonitoringProviderID: id("p1")}
	if !got.Found || got.Location != want || !got.Decision.Allowed {
		t.Fatalf("admin at loc1: %+v, want found %+v allowed", got, want)
	}
	got, err = a.AuthorizeCreate(ctx, caller(w, id("alice"), w.AppRoles(id("alice"))), id("loc3"))
	if err != nil || !got.Found || got.Decision.Allowed || got.Location.DealerID != "" {
		t.Fatalf("alice at loc3: %+v %v", got, err)
	}
	got, err = a.AuthorizeCreate(ctx, admin, id("nowhere"))
	if err != nil || got.Found || got.Decision.Allowed {
		t.Fatalf("unknown location: %+v %v", got, err)
	}
	f := &fakeCreate{}
	if got, err := delegate.New(c, delegate.WithCreateAuthorizer(f)).AuthorizeCreate(ctx, admin, id("loc1")); err != nil || !f.called || !got.Decision.Allowed {
		t.Fatalf("with a create authorizer: %+v %v (called %v)", got, err, f.called)
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

// BenchmarkFilterAdmin measures listing every system of a Medium world as
// an administrator (three checks per system in batches of 50).
func BenchmarkFilterAdmin(b *testing.B) {
	w := policytest.Generate(1, policytest.Medium)
	a, _, _ := setupB(b, w)
	admin := caller(w, w.Admins[0], []string{policy.AppRoleAdmin})
	systems := refs(w)
	now := time.Now()
	b.ResetTimer()
	for b.Loop() {
		if list, err := a.Filter(context.Background(), admin, systems, now); err != nil || len(list) != len(systems) {
			b.Fatal(len(list), err)
		}
	}
	b.ReportMetric(float64(len(systems)), "systems")
}

func setupB(b *testing.B, w *policytest.World) (*delegate.Authorizer, *fga.Embedded, *fga.Client) {
	b.Helper()
	ctx := context.Background()
	srv, err := fga.StartEmbedded(ctx, fga.EmbeddedOptions{Addr: "127.0.0.1:0"})
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
