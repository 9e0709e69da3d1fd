package system

import (
	"slices"
	"testing"
)

// TestEveryServiceAndStrategyIsWired: each service name has exactly one
// builder and each strategy Config accepts has its wiring, so adding
// either without the other fails here rather than at a start.
func TestEveryServiceAndStrategyIsWired(t *testing.T) {
	var built []string
	for _, b := range builders {
		if slices.Contains(built, b.name) {
			t.Errorf("%s has two builders", b.name)
		}
		built = append(built, b.name)
	}
	for _, name := range ServiceNames() {
		if !slices.Contains(built, name) {
			t.Errorf("service %s has no builder", name)
		}
	}
	for _, name := range built {
		if !slices.Contains(ServiceNames(), name) {
			t.Errorf("builder %s is not in ServiceNames", name)
		}
	}
	for _, st := range append(slices.Clone(Strategies), "none") {
		if _, ok := strategies[st]; !ok {
			t.Errorf("strategy %s has no wiring in strategies", st)
		}
	}
	for st, w := range strategies {
		if st != "none" && !slices.Contains(Strategies, st) {
			t.Errorf("strategies wires %s, which Config does not accept", st)
		}
		for _, svc := range w.services {
			if !slices.Contains(ServiceNames(), svc) {
				t.Errorf("strategy %s runs %s, which is no service", st, svc)
			}
		}
	}
}

// TestRunsFollowsTheStrategy: under `up` the authorization sync runs only
// with the strategy that lists it, every other service always; `serve`
// runs the one service it names whatever the strategy.
func TestRunsFollowsTheStrategy(t *testing.T) {
	for _, st := range Strategies {
		s := &System{cfg: Config{Authz: st}}
		for _, name := range ServiceNames() {
			want := name != ServiceAuthzSync || st == "delegate"
			if got := s.runs(name); got != want {
				t.Errorf("up with %s: runs(%s) = %v, want %v", st, name, got, want)
			}
		}
		alone := &System{cfg: Config{Authz: st, Only: ServiceAuthzSync}}
		if !alone.runs(ServiceAuthzSync) || alone.runs(ServiceIAM) {
			t.Errorf("serve authzsync with %s: runs only it", st)
		}
	}
}
