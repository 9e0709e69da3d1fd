package bench

import (
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/policytest"
)

// The load's pairs must be ones the rule allows at any hour, on distinct
// systems, and the default seed must give every small-world system one.
func TestChoosePairsAllowedWhateverTheTime(t *testing.T) {
	d := DefaultConfig()
	w := policytest.Generate(d.Seed, d.Size)
	p, err := choose(w, d.Concurrency)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.pairs) != min(d.Concurrency, len(w.SecuritySystems)) {
		t.Errorf("%d pairs for %d systems and concurrency %d", len(p.pairs), len(w.SecuritySystems), d.Concurrency)
	}
	seen := map[string]bool{}
	for _, pr := range p.pairs {
		if seen[pr.system] {
			t.Errorf("system %s used twice", pr.system)
		}
		seen[pr.system] = true
		e, ok := w.Employee(pr.user)
		if !ok || e.Schedule != nil {
			t.Errorf("user %s is not an unrestricted employee", pr.user)
		}
		s := w.Subject(pr.user, w.AppRoles(pr.user))
		for _, op := range []policy.Op{policy.OpArm, policy.OpDisarm} {
			if !policy.IsAllowed(s, op, w.Resource(pr.system), time.Now()).Allowed {
				t.Errorf("%s may not %s %s", pr.user, op, pr.system)
			}
		}
	}
	if p.listUser == "" || p.listVisible < 1 || p.revokeSystem == "" || p.revokeLocation == "" {
		t.Errorf("plan %+v", p)
	}
}
