package policytest

import (
	"math/rand"
	"reflect"
	"slices"
	"testing"

	"github.com/realguardio/realguardio/internal/policy"
)

func TestGenerateIsDeterministic(t *testing.T) {
	for _, size := range []Size{Small, Medium, Large} {
		a, b := Generate(42, size), Generate(42, size)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%v: two worlds from seed 42 differ", size)
		}
		if reflect.DeepEqual(a.Customers, Generate(43, size).Customers) {
			t.Fatalf("%v: seeds 42 and 43 give the same customer ids", size)
		}
		ra, rb := rand.New(rand.NewSource(7)), rand.New(rand.NewSource(7))
		for i := range 50 {
			if ca, cb := a.Mutate(ra), b.Mutate(rb); !reflect.DeepEqual(ca, cb) {
				t.Fatalf("%v: mutation %d differs: %v vs %v", size, i, ca, cb)
			}
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%v: worlds differ after the same mutations", size)
		}
		if ca, cb := a.Cases(ra, 200), b.Cases(rb, 200); !reflect.DeepEqual(ca, cb) {
			t.Fatalf("%v: cases differ", size)
		}
	}
}

func TestGenerateProducesEveryFactKind(t *testing.T) {
	for seed := int64(1); seed <= 30; seed++ {
		w := Generate(seed, Small)
		checkInvariants(t, w)
		kinds := map[policy.OrgKind]bool{}
		var nightShift, dayShift, noDealer, withDealer, noProvider, withProvider, member bool
		for _, e := range w.Employees {
			kinds[e.OrgKind] = true
			if e.Schedule == nil {
				continue
			}
			for _, sh := range e.Schedule.Shifts {
				if sh.End <= sh.Start {
					nightShift = true
				} else {
					dayShift = true
				}
			}
		}
		for _, l := range w.Locations {
			noDealer = noDealer || l.DealerID == ""
			withDealer = withDealer || l.DealerID != ""
		}
		var viaProvider, viaBareDealer bool
		for _, s := range w.Systems() {
			r := w.Resource(s)
			viaProvider = viaProvider || r.MonitoringProviderID != ""
			viaBareDealer = viaBareDealer || (r.DealerID != "" && r.MonitoringProviderID == "")
		}
		for _, d := range w.Dealers {
			noProvider = noProvider || d.MonitoringProviderID == ""
			withProvider = withProvider || d.MonitoringProviderID != ""
		}
		for _, tm := range w.Teams {
			member = member || len(tm.Members) > 0
		}
		for name, ok := range map[string]bool{
			"customer employee": kinds[policy.OrgCustomer], "dealer employee": kinds[policy.OrgDealer],
			"provider employee": kinds[policy.OrgMonitoringProvider], "night shift": nightShift, "day shift": dayShift,
			"location without dealer": noDealer, "location with dealer": withDealer,
			"dealer without provider": noProvider, "dealer with provider": withProvider, "team member": member,
			"system via a provider": viaProvider, "system via a dealer without provider": viaBareDealer,
			"employee location role": len(w.EmployeeLocationRoles) > 0, "team location role": len(w.TeamLocationRoles) > 0,
			"security system": len(w.SecuritySystems) > 0, "admin": len(w.Admins) > 0, "outsider": len(w.Outsiders) > 0,
		} {
			if !ok {
				t.Errorf("seed %d: no %s", seed, name)
			}
		}
		for _, e := range w.Employees {
			if e.Schedule != nil {
				if err := e.Schedule.Validate(); err != nil {
					t.Errorf("seed %d: invalid schedule %+v: %v", seed, *e.Schedule, err)
				}
			}
		}
	}
}

func TestMutateProducesEveryKindAndKeepsInvariants(t *testing.T) {
	w := Generate(3, Small)
	rng := rand.New(rand.NewSource(3))
	seen := map[ChangeKind]bool{}
	var revoked, dealerCleared bool
	for range 400 {
		c := w.Mutate(rng)
		seen[c.Kind] = true
		revoked = revoked || (c.Kind == ChangeEmployeeLocationRoles && len(c.Roles) == 0 && c.Roles != nil)
		dealerCleared = dealerCleared || (c.Kind == ChangeLocationDealer && c.DealerID == "")
		if c.String() == "" {
			t.Fatal("empty change description")
		}
		checkInvariants(t, w)
	}
	for _, k := range changeKinds {
		if !seen[k] {
			t.Errorf("no %s change in 400 mutations", k)
		}
	}
	if !revoked || !dealerCleared {
		t.Errorf("revoke with [] seen: %v; dealer cleared: %v", revoked, dealerCleared)
	}
}

func TestCasesCoverAllowsDenialsAndBothReasons(t *testing.T) {
	w := Generate(5, Medium)
	counts := map[string]int{}
	for _, c := range w.Cases(rand.New(rand.NewSource(5)), 3000) {
		d := Expected(w, c)
		if d.Allowed {
			counts["allowed"]++
		} else {
			counts[d.Reason]++
		}
		if slices.Contains(w.Outsiders, c.UserID) && d.Allowed {
			t.Fatalf("outsider allowed: %v", c)
		}
	}
	for _, k := range []string{"allowed", policy.ReasonNoRole, policy.ReasonOutsideSchedule} {
		if counts[k] < 30 {
			t.Errorf("only %d %s cases of 3000: %v", counts[k], k, counts)
		}
	}
}

func TestCloneIsDeep(t *testing.T) {
	w := Generate(9, Small)
	c := w.Clone()
	rng := rand.New(rand.NewSource(1))
	for range 100 {
		w.Mutate(rng)
	}
	if reflect.DeepEqual(w, c) {
		t.Fatal("100 mutations changed nothing")
	}
	if !reflect.DeepEqual(c, Generate(9, Small)) {
		t.Fatal("mutating the original changed the clone")
	}
}

// checkInvariants asserts what the owning services guarantee: team members
// and location role holders are employees of the location's or team's
// customer, and no role set is empty.
func checkInvariants(t *testing.T, w *World) {
	t.Helper()
	isStaff := func(customer, user string) bool {
		e, ok := w.Employee(user)
		return ok && e.OrgKind == policy.OrgCustomer && e.OrgID == customer
	}
	for _, tm := range w.Teams {
		for _, m := range tm.Members {
			if !isStaff(tm.CustomerID, m) {
				t.Fatalf("team %s member %s is not its customer's employee", tm.ID, m)
			}
		}
	}
	for _, r := range w.EmployeeLocationRoles {
		l, _ := w.Location(r.LocationID)
		if !isStaff(l.CustomerID, r.UserID) || len(r.Roles) == 0 {
			t.Fatalf("bad employee location role %+v", r)
		}
	}
	for _, r := range w.TeamLocationRoles {
		if len(r.Roles) == 0 {
			t.Fatalf("empty team location role %+v", r)
		}
	}
	for i, s := range w.SecuritySystems {
		if w.Resource(s.ID).LocationID != s.LocationID || w.Systems()[i] != s.ID {
			t.Fatalf("system index broken for %s", s.ID)
		}
	}
}
