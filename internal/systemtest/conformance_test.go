package systemtest

import (
	"context"
	"flag"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/policy/policytest"
)

var (
	sizeFlag      = flag.String("systemtest.size", "small", "size of the generated world of the conformance test: small, medium or large")
	seedFlag      = flag.Int64("systemtest.seed", 0, "seed of the generated world and its changes (0: a new one per run, printed)")
	mutationsFlag = flag.Int("systemtest.mutations", 12, "random changes applied through the APIs after the first comparison")
	roundsFlag    = flag.Int("systemtest.rounds", 2, "rounds of changes, each followed by convergence and a comparison")
)

// TestConformance is the conformance suite through the real services: a
// generated World is loaded through the public APIs, and once the system
// has converged every (user, security system) decision it makes is compared
// with the reference rule; then random changes are made through the APIs
// and the comparison repeated. Every disagreement fails with the case.
func TestConformance(t *testing.T) {
	size, err := policytest.ParseSize(*sizeFlag)
	must(t, err)
	seed := *seedFlag
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	t.Logf("world: size %s, seed %d (rerun with -systemtest.seed=%d)", size, seed, seed)
	forEachSystem(t, func(t *testing.T, opts Options) {
		ctx := context.Background()
		s := Start(t, opts)
		w := policytest.Generate(seed, size)
		started := time.Now()
		l, err := LoadWorld(ctx, s, w, LoadOptions{})
		must(t, err)
		t.Logf("loaded %d organizations, %d users, %d locations, %d teams, %d systems in %v",
			len(w.Customers)+len(w.Dealers)+len(w.MonitoringProviders), len(w.Users()), len(w.Locations), len(w.Teams), len(w.SecuritySystems),
			time.Since(started).Round(time.Millisecond))
		s.MustConverge()
		compare(t, l, "generated world")

		rng := rand.New(rand.NewSource(seed))
		for round := 1; round <= *roundsFlag && !t.Failed(); round++ {
			for range *mutationsFlag {
				// Mutate changes a copy first: the World must only change
				// once the API accepted the change (Loaded.Apply).
				probe := l.World.Clone()
				c := probe.Mutate(rng)
				t.Logf("round %d: %v", round, c)
				must(t, l.Apply(ctx, c))
			}
			s.MustConverge()
			compare(t, l, fmt.Sprintf("after round %d of changes", round))
		}
	})
}
