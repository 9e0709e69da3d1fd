package authzclaims_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/contract/tokenclaims"
	"github.com/realguardio/realguardio/internal/iam"
	"github.com/realguardio/realguardio/internal/iam/authzclaims"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/policytest"
	"github.com/realguardio/realguardio/internal/securitysystem/authz"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/provide"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/replicate"
	"github.com/realguardio/realguardio/internal/securitysystem/sstest"
)

// minter stands in for the IAM's own service tokens.
type minter struct{}

func (minter) ServiceToken(context.Context, []string, []string) (string, time.Time, error) {
	return "iam-self", time.Now().Add(time.Hour), nil
}

func newProvider(t *testing.T, customer, dealer, monitoring string) *authzclaims.Provider {
	t.Helper()
	p, err := authzclaims.New(authzclaims.Config{CustomerURL: customer, DealerURL: dealer, MonitoringURL: monitoring, Timeout: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// claims issues the claims of userID whose IAM account holds roles, as they
// would arrive at a resource server (JSON-encoded in the token, decoded
// again).
func claims(t *testing.T, p *authzclaims.Provider, userID string, roles []string) (map[string]any, error) {
	t.Helper()
	c, err := p.Claims(context.Background(), iam.AuthorizationRequest{UserID: userID, Roles: roles, Tokens: minter{}})
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out, nil
}

// TestClaimsIgnoreApplicationRoles: a platform admin can edit a user's
// application roles in the IAM, and AUTHZ.md's rule does not depend on
// them; so the claims carry the owners' facts whatever the roles say, and
// the provide strategy decides every fixed case like replicate (and the
// reference) when the token lacks the employee role or carries another
// kind's. Before the fix the IAM asked only the owner named by the roles
// and issued empty claims to alice, dave, erin... without them.
func TestClaimsIgnoreApplicationRoles(t *testing.T) {
	ctx := context.Background()
	wrong := map[policy.OrgKind][]string{
		policy.OrgCustomer:           {auth.RoleDealerEmployee},
		policy.OrgDealer:             {auth.RoleMonitoringEmployee},
		policy.OrgMonitoringProvider: {auth.RoleCustomerEmployee},
	}
	pa := provide.New(nil, nil) // Decide reads only the token and the record
	for _, fc := range policytest.FixedCases() {
		if slices.Contains(fc.Case.AppRoles, policy.AppRoleAdmin) {
			// REALGUARDIO_ADMIN's view is the one grant AUTHZ.md gives
			// an application role; it is not what this test varies.
			continue
		}
		w := policytest.FixedWorld()
		for _, c := range fc.Before {
			if err := w.Apply(c); err != nil {
				t.Fatal(err)
			}
		}
		facts := sstest.NewFacts(t, w)
		p := newProvider(t, facts.Customer.URL, facts.Dealer.URL, facts.Monitoring.URL)
		ra := newReplicate(t, w)
		variants := map[string][]string{"no application role": nil}
		if e, ok := w.Employee(fc.Case.UserID); ok {
			variants["another kind's employee role"] = wrong[e.OrgKind]
		}
		for name, roles := range variants {
			c := fc.Case
			c.AppRoles = roles
			want := policytest.Expected(w, c)
			if want != fc.Want {
				t.Fatalf("%s (%s): the reference decides %+v, the fixed case %+v", fc.Name, name, want, fc.Want)
			}
			cl, err := claims(t, p, c.UserID, roles)
			if err != nil {
				t.Fatalf("%s (%s): claims: %v", fc.Name, name, err)
			}
			r := w.Resource(c.SecuritySystemID)
			// Under provide the record carries the resource facts.
			ref := authz.SystemRef{ID: r.SecuritySystemID, LocationID: r.LocationID, CustomerID: r.CustomerID, DealerID: r.DealerID, MonitoringProviderID: r.MonitoringProviderID}
			got, err := pa.Decide(ctx, &auth.Caller{Subject: c.UserID, Roles: roles, Claims: cl}, c.Op, ref, c.At)
			if err != nil || got != want {
				t.Errorf("%s (%s): provide decided %+v (err %v), want %+v", fc.Name, name, got, err, want)
			}
			got, err = ra.Decide(ctx, &auth.Caller{Subject: c.UserID, Roles: roles}, c.Op, authz.SystemRef{ID: r.SecuritySystemID, LocationID: r.LocationID}, c.At)
			if err != nil || got != want {
				t.Errorf("%s (%s): replicate decided %+v (err %v), want %+v", fc.Name, name, got, err, want)
			}
		}
	}
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

// TestClaimsAskEveryOwner: each issue asks all three owners once, in
// parallel, whatever the roles; a user nobody employs (the admin) gets only
// the format version.
func TestClaimsAskEveryOwner(t *testing.T) {
	w := policytest.FixedWorld()
	facts := sstest.NewFacts(t, w)
	p := newProvider(t, facts.Customer.URL, facts.Dealer.URL, facts.Monitoring.URL)
	const route = "GET /authz/subjects/{userId}"
	for _, u := range []string{"alice", "dave", "erin", "admin"} {
		uid := policytest.FixedID(u)
		facts.ResetCounts()
		cl, err := claims(t, p, uid, w.AppRoles(uid))
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		for _, k := range []policy.OrgKind{policy.OrgCustomer, policy.OrgDealer, policy.OrgMonitoringProvider} {
			if n := facts.Count(k, route); n != 1 {
				t.Errorf("%s: the %s service was asked %d times, want 1", u, k, n)
			}
		}
		f, err := tokenclaims.Decode(cl)
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		e, employed := w.Employee(uid)
		switch {
		case !employed && (f.Org != nil || len(cl) != 1):
			t.Errorf("%s employed nowhere: claims %v, want only the version", u, cl)
		case employed && (f.Org == nil || f.Org.Kind != e.OrgKind || f.Org.ID != e.OrgID):
			t.Errorf("%s: claims %v, want %s %s", u, cl, e.OrgKind, e.OrgID)
		}
	}
}

// TestClaimsFailClosed: any owner down, or two owners claiming the same
// user, fails the token request instead of issuing claims that might be
// wrong for the token's whole lifetime.
func TestClaimsFailClosed(t *testing.T) {
	w := policytest.FixedWorld()
	alice := policytest.FixedID("alice")
	for _, down := range []policy.OrgKind{policy.OrgCustomer, policy.OrgDealer, policy.OrgMonitoringProvider} {
		facts := sstest.NewFacts(t, w)
		facts.Down(down, true)
		p := newProvider(t, facts.Customer.URL, facts.Dealer.URL, facts.Monitoring.URL)
		if _, err := claims(t, p, alice, w.AppRoles(alice)); err == nil || !strings.Contains(err.Error(), "unavailable") {
			t.Errorf("%s down: err %v, want unavailable", down, err)
		}
	}
	// The dealer service also claims alice: two employers.
	facts := sstest.NewFacts(t, w)
	dealer := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(rw, http.StatusOK, map[string]any{"userId": alice, "schedule": nil,
			"organization": map[string]any{"kind": "dealer", "id": policytest.FixedID("d1"), "roles": []string{policy.RoleViewer}}})
	}))
	t.Cleanup(dealer.Close)
	p := newProvider(t, facts.Customer.URL, dealer.URL, facts.Monitoring.URL)
	if _, err := claims(t, p, alice, w.AppRoles(alice)); err == nil || !strings.Contains(err.Error(), "disagree") {
		t.Errorf("two employers: err %v, want the owners' disagreement", err)
	}
}
