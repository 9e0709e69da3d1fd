package openfga_test

import (
	"context"
	"flag"
	"math/rand"
	"testing"

	"github.com/realguardio/realguardio/internal/policy/openfga/openfgatest"
	"github.com/realguardio/realguardio/internal/policy/policytest"
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
