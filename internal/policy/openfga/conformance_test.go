package openfga_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand"
	"slices"
	"testing"

	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/openfga/openfgatest"
	"github.com/realguardio/realguardio/internal/policy/policytest"
	"github.com/realguardio/realguardio/internal/securitysystem/authz"
)

var (
	sizeFlag  = flag.String("policy.size", "medium", "size of the generated world: small, medium or large")
	seedFlag  = flag.Int64("policy.seed", 1, "seed of the generated world")
	casesFlag = flag.Int("policy.cases", 0, "number of generated cases (0: by size)")
)

// TestFixedCasesThroughOpenFGA evaluates AUTHZ.md's fixed cases with the
// model in an in-process OpenFGA server.
func TestFixedCasesThroughOpenFGA(t *testing.T) {
	for _, fc := range policytest.FixedCases() {
		t.Run(fc.Name, func(t *testing.T) {
			w := policytest.FixedWorld()
			for _, ch := range fc.Before {
				if err := w.Apply(ch); err != nil {
					t.Fatal(err)
				}
			}
			st := openfgatest.Start(t)
			tuples, err := openfgatest.Tuples(w)
			if err != nil {
				t.Fatal(err)
			}
			st.Write(t, tuples)
			c := fc.Case
			got, err := st.Decide(context.Background(), c.UserID, c.AppRoles, c.Op, c.SecuritySystemID, c.At)
			if err != nil {
				t.Fatalf("%v: %v", c, err)
			}
			if got != fc.Want {
				t.Fatalf("%v: OpenFGA says %+v, want %+v", c, got, fc.Want)
			}
		})
	}
}

// TestGeneratedWorldThroughOpenFGA compares the model with policy.IsAllowed
// on a generated world, then again after random changes.
func TestGeneratedWorldThroughOpenFGA(t *testing.T) {
	size, err := policytest.ParseSize(*sizeFlag)
	if err != nil {
		t.Fatal(err)
	}
	n := *casesFlag
	if n == 0 {
		n = map[policytest.Size]int{policytest.Small: 500, policytest.Medium: 1500, policytest.Large: 10000}[size]
	}
	rng := rand.New(rand.NewSource(*seedFlag))
	w := policytest.Generate(*seedFlag, size)
	for round := range 3 {
		if round > 0 {
			// A fresh store per round keeps the test about the model and
			// the mapping; the incremental sync is authzsync's to test.
			for range 20 {
				t.Logf("round %d: %v", round, w.Mutate(rng))
			}
		}
		st := openfgatest.Start(t)
		tuples, err := openfgatest.Tuples(w)
		if err != nil {
			t.Fatal(err)
		}
		st.Write(t, tuples)
		failures := 0
		for _, c := range w.Cases(rng, n/3) {
			want := policytest.Expected(w, c)
			got, err := st.Decide(context.Background(), c.UserID, c.AppRoles, c.Op, c.SecuritySystemID, c.At)
			if err != nil {
				t.Fatalf("seed %d round %d: %v: %v", *seedFlag, round, c, err)
			}
			if got != want {
				failures++
				t.Errorf("seed %d round %d: %v: OpenFGA %+v, policy.IsAllowed %+v (subject %+v, resource %+v)",
					*seedFlag, round, c, got, want, w.Subject(c.UserID, c.AppRoles), w.Resource(c.SecuritySystemID))
				if failures > 20 {
					t.FailNow()
				}
			}
		}
	}
}

// createCase is one creation decision: may UserID, whose token carries
// AppRoles, create a security system at LocationID?
type createCase struct {
	UserID     string
	AppRoles   []string
	LocationID string
}

// expectedCreate is the reference decision of creation: authz.CanCreate
// (AUTHZ.md, POST /securitysystems) over the world's facts, as every
// other strategy decides it.
func expectedCreate(w *policytest.World, c createCase) bool {
	l, _ := w.Location(c.LocationID)
	return authz.CanCreate(w.Subject(c.UserID, c.AppRoles), l.CustomerID).Allowed
}

// createCases returns n creation cases over w: half by a customer
// administrator (of any customer, so administrators of other customers
// are asked too), half by any user; some tokens get REALGUARDIO_ADMIN
// added, so an administrator who is also a platform admin is covered.
func createCases(w *policytest.World, rng *rand.Rand, n int) []createCase {
	users := w.Users()
	var admins []string
	for _, e := range w.Employees {
		if e.OrgKind == policy.OrgCustomer && slices.Contains(e.Roles, policy.RoleCustomerEmployeeAdministrator) {
			admins = append(admins, e.UserID)
		}
	}
	out := make([]createCase, 0, n)
	for range n {
		u := users[rng.Intn(len(users))]
		if len(admins) > 0 && rng.Intn(2) == 0 {
			u = admins[rng.Intn(len(admins))]
		}
		roles := w.AppRoles(u)
		if rng.Intn(8) == 0 {
			roles = append(slices.Clone(roles), policy.AppRoleAdmin)
		}
		out = append(out, createCase{UserID: u, AppRoles: roles, LocationID: w.Locations[rng.Intn(len(w.Locations))].ID})
	}
	return out
}

// conformCreate compares can_create_security_system with authz.CanCreate
// on the cases and returns how many allowed.
func conformCreate(t *testing.T, st *openfgatest.Store, w *policytest.World, cases []createCase, label string) int {
	t.Helper()
	allowed, failures := 0, 0
	for _, c := range cases {
		got, err := st.CanCreate(context.Background(), c.UserID, c.AppRoles, c.LocationID)
		if err != nil {
			t.Fatalf("%s: %+v: %v", label, c, err)
		}
		if got {
			allowed++
		}
		if want := expectedCreate(w, c); got != want {
			failures++
			t.Errorf("%s: user %s %v create at %s: OpenFGA %v, authz.CanCreate %v (subject %+v)",
				label, c.UserID, c.AppRoles, c.LocationID, got, want, w.Subject(c.UserID, c.AppRoles))
			if failures > 20 {
				t.FailNow()
			}
		}
	}
	return allowed
}

// TestFixedCreationThroughOpenFGA decides creation on the fixed world with
// alice made an administrator of acme and dave one of dealer d1: alice may
// create at acme's loc1 and loc3 but not at foo's loc2, dave nowhere (a
// dealer's administrator is not the customer's), the platform admin
// everywhere, everybody else nowhere.
func TestFixedCreationThroughOpenFGA(t *testing.T) {
	id := policytest.FixedID
	w := policytest.FixedWorld()
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
	st := openfgatest.Start(t)
	tuples, err := openfgatest.Tuples(w)
	if err != nil {
		t.Fatal(err)
	}
	st.Write(t, tuples)
	var cases []createCase
	for _, u := range []string{"alice", "mary", "dave", "erin", "admin", "outsider"} {
		for _, l := range []string{"loc1", "loc2", "loc3"} {
			cases = append(cases, createCase{UserID: id(u), AppRoles: w.AppRoles(id(u)), LocationID: id(l)})
		}
	}
	conformCreate(t, st, w, cases, "fixed world")
	for _, c := range []struct {
		user, loc string
		want      bool
	}{
		{"alice", "loc1", true}, {"alice", "loc3", true}, {"alice", "loc2", false},
		{"dave", "loc1", false}, {"mary", "loc3", false}, {"admin", "loc2", true},
	} {
		got, err := st.CanCreate(context.Background(), id(c.user), w.AppRoles(id(c.user)), id(c.loc))
		if err != nil || got != c.want {
			t.Errorf("%s creates at %s: %v %v, want %v", c.user, c.loc, got, err, c.want)
		}
	}
}

// TestGeneratedCreationThroughOpenFGA compares can_create_security_system
// with authz.CanCreate on a generated world, then again after random
// changes (which grant and revoke CUSTOMER_EMPLOYEE_ADMINISTRATOR among
// the other organization roles).
func TestGeneratedCreationThroughOpenFGA(t *testing.T) {
	size, err := policytest.ParseSize(*sizeFlag)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(*seedFlag))
	w := policytest.Generate(*seedFlag, size)
	for round := range 3 {
		if round > 0 {
			for range 20 {
				t.Logf("round %d: %v", round, w.Mutate(rng))
			}
		}
		st := openfgatest.Start(t)
		tuples, err := openfgatest.Tuples(w)
		if err != nil {
			t.Fatal(err)
		}
		st.Write(t, tuples)
		cases := createCases(w, rng, 300)
		if allowed := conformCreate(t, st, w, cases, fmt.Sprintf("seed %d round %d", *seedFlag, round)); allowed == 0 || allowed == len(cases) {
			t.Fatalf("round %d: %d of %d creations allowed: the cases do not exercise both outcomes", round, allowed, len(cases))
		}
	}
}
