package policy_test

import (
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/policytest"
)

// TestViewScopeIsTheRule checks that ViewScope(s).Covers(r) is the rule's
// view decision for every user and system of generated worlds, with their
// application roles and without, before and after random changes.
func TestViewScopeIsTheRule(t *testing.T) {
	for _, seed := range []int64{1, 2, 3, 4} {
		w := policytest.Generate(seed, policytest.Medium)
		rng := rand.New(rand.NewSource(seed))
		now := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
		for round := range 30 {
			for _, u := range w.Users() {
				for _, roles := range [][]string{w.AppRoles(u), nil, {policy.AppRoleAdmin}} {
					s := w.Subject(u, roles)
					sc := policy.ViewScope(s)
					if !slices.IsSorted(sc.LocationIDs) {
						t.Fatalf("location ids not sorted: %v", sc.LocationIDs)
					}
					for _, id := range w.Systems() {
						r := w.Resource(id)
						want := policy.IsAllowed(s, policy.OpView, r, now).Allowed
						if got := sc.Covers(r); got != want {
							t.Fatalf("seed %d round %d: user %s roles %v system %s: Covers = %v, IsAllowed(view) = %v (scope %+v)", seed, round, u, roles, id, got, want, sc)
						}
					}
					if sc.Empty() && !sc.All {
						for _, id := range w.Systems() {
							if policy.IsAllowed(s, policy.OpView, w.Resource(id), now).Allowed {
								t.Fatalf("empty scope for %s, who may view %s", u, id)
							}
						}
					}
				}
			}
			w.Mutate(rng)
		}
	}
}

func TestViewScopeEdges(t *testing.T) {
	s := policy.Subject{
		UserID:        "u",
		Org:           &policy.Membership{Kind: policy.OrgDealer, ID: "d", Roles: []string{policy.RoleDealerEmployeeAdministrator}},
		LocationRoles: map[string][]string{"l2": {policy.RoleArmer}, "l1": {policy.RoleViewer}, "": {policy.RoleViewer}, "l3": nil},
	}
	sc := policy.ViewScope(s)
	if !slices.Equal(sc.LocationIDs, []string{"l1", "l2"}) || sc.DealerIDs != nil || sc.All || sc.Empty() {
		t.Errorf("scope = %+v", sc)
	}
	if sc.Covers(policy.Resource{DealerID: "d"}) {
		t.Error("an administrator role is not a view role")
	}
	if !policy.ViewScope(policy.Subject{}).Empty() {
		t.Error("nobody's scope is not empty")
	}
	if sc := policy.ViewScope(policy.Subject{AppRoles: []string{policy.AppRoleAdmin}}); !sc.All || sc.Empty() {
		t.Errorf("admin scope = %+v", sc)
	}
}
