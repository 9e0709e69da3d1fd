package policy_test

import (
	"errors"
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/policytest"
)

var reviewOps = []struct {
	op   policy.Op
	name string
}{{policy.OpView, policy.ActionView}, {policy.OpArm, policy.ActionArm}, {policy.OpDisarm, policy.ActionDisarm}}

// checkReview checks an access review of system against IsAllowed over the
// World: every listed user's actions are what IsAllowed grants ignoring
// the schedule, allowedNow is IsAllowed at now, each grant is a role the
// user really holds by that path, and nobody left out is allowed anything.
func checkReview(t *testing.T, w *policytest.World, system string, now time.Time) {
	t.Helper()
	got, err := policy.AccessReview(w.AccessFacts(system), now)
	if err != nil {
		t.Fatalf("AccessReview(%s): %v", system, err)
	}
	r := w.Resource(system)
	listed := map[string]policy.AccessEntry{}
	for i, e := range got {
		if i > 0 && (got[i-1].Username > e.Username || (got[i-1].Username == e.Username && got[i-1].UserID >= e.UserID)) {
			t.Fatalf("system %s: entries out of order at %d: %s after %s", system, i, e.Username, got[i-1].Username)
		}
		listed[e.UserID] = e
	}
	for _, u := range w.Users() {
		s := w.Subject(u, nil)
		unrestricted := s
		unrestricted.Schedule = nil
		var wantActions, wantNow []string
		for _, o := range reviewOps {
			if policy.IsAllowed(unrestricted, o.op, r, now).Allowed {
				wantActions = append(wantActions, o.name)
			}
			if policy.IsAllowed(s, o.op, r, now).Allowed {
				wantNow = append(wantNow, o.name)
			}
		}
		e, ok := listed[u]
		if len(wantActions) == 0 {
			if ok {
				t.Fatalf("system %s: %s is listed (%v) but IsAllowed allows nothing", system, u, e.Actions)
			}
			continue
		}
		if !ok {
			t.Fatalf("system %s: %s is left out but IsAllowed allows %v", system, u, wantActions)
		}
		if !slices.Equal(e.Actions, wantActions) || !slices.Equal(e.AllowedNow, nonNil(wantNow)) {
			t.Fatalf("system %s at %s: %s has actions %v now %v, IsAllowed gives %v now %v", system, now, u, e.Actions, e.AllowedNow, wantActions, wantNow)
		}
		if e.Username != policytest.Username(u) {
			t.Fatalf("username %q", e.Username)
		}
		emp, _ := w.Employee(u)
		if (emp.Schedule == nil) != (e.Schedule == nil) {
			t.Fatalf("%s: schedule %v, want %v", u, e.Schedule, emp.Schedule)
		}
		// Every grant is genuine, and the grants alone give the actions.
		var granted []string
		for _, g := range e.Grants {
			if !holds(w, u, r, g) {
				t.Fatalf("system %s: %s has grant %+v it does not hold", system, u, g)
			}
			granted = append(granted, g.Role)
		}
		viaGrants := policy.Subject{LocationRoles: map[string][]string{r.LocationID: granted}}
		for _, o := range reviewOps {
			if policy.IsAllowed(viaGrants, o.op, r, now).Allowed != slices.Contains(wantActions, o.name) {
				t.Fatalf("system %s: %s's grants %+v do not explain %v", system, u, e.Grants, wantActions)
			}
		}
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// holds reports whether u holds g.Role by the path g names, for the system
// at r.
func holds(w *policytest.World, u string, r policy.Resource, g policy.Grant) bool {
	emp, _ := w.Employee(u)
	switch g.Via {
	case policy.ViaLocation:
		for _, lr := range w.EmployeeLocationRoles {
			if lr.LocationID == r.LocationID && lr.UserID == u && g.ID == r.LocationID && slices.Contains(lr.Roles, g.Role) {
				return true
			}
		}
	case policy.ViaTeam:
		t, ok := w.Team(g.ID)
		if !ok || !slices.Contains(t.Members, u) || g.Name != policytest.Name("team", t.ID) {
			return false
		}
		for _, tr := range w.TeamsAt(r.LocationID) {
			if tr.TeamID == g.ID && slices.Contains(tr.Roles, g.Role) {
				return true
			}
		}
	case policy.ViaCustomer:
		return emp.OrgKind == policy.OrgCustomer && emp.OrgID == r.CustomerID && g.ID == r.CustomerID && slices.Contains(emp.Roles, g.Role)
	case policy.ViaDealer:
		return emp.OrgKind == policy.OrgDealer && emp.OrgID == r.DealerID && g.ID == r.DealerID && slices.Contains(emp.Roles, g.Role)
	case policy.ViaMonitoringProvider:
		return emp.OrgKind == policy.OrgMonitoringProvider && emp.OrgID == r.MonitoringProviderID && g.ID == r.MonitoringProviderID && slices.Contains(emp.Roles, g.Role)
	}
	return false
}

// TestAccessReviewAgreesWithIsAllowed runs the review of every system of
// generated worlds, before and after random changes, at instants chosen
// around the shifts of the world's schedules.
func TestAccessReviewAgreesWithIsAllowed(t *testing.T) {
	for _, seed := range []int64{1, 2, 3, 4} {
		w := policytest.Generate(seed, policytest.Medium)
		rng := rand.New(rand.NewSource(seed))
		var scheduled []*policy.Schedule
		for _, e := range w.Employees {
			if e.Schedule != nil {
				scheduled = append(scheduled, e.Schedule)
			}
		}
		for round := 0; round < 8; round++ {
			for _, ss := range w.SecuritySystems {
				now := policytest.Instant(rng, scheduled[rng.Intn(len(scheduled))])
				checkReview(t, w, ss.ID, now)
			}
			w.Mutate(rng)
		}
	}
}

// TestAccessReviewFixedCases checks the review of ss1 against AUTHZ.md's
// cast: who is listed, by which path, and frank's and grace's schedules.
func TestAccessReviewFixedCases(t *testing.T) {
	w := policytest.FixedWorld()
	id := policytest.FixedID
	tuesday10Berlin := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	got, err := policy.AccessReview(w.AccessFacts(id("ss1")), tuesday10Berlin)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		actions, now []string
		via          policy.Via
	}{
		"alice":   {[]string{"VIEW", "DISARM"}, []string{"VIEW", "DISARM"}, policy.ViaCustomer},
		"charlie": {[]string{"VIEW", "DISARM"}, []string{"VIEW", "DISARM"}, policy.ViaTeam},
		"dave":    {[]string{"VIEW", "DISARM"}, []string{"VIEW", "DISARM"}, policy.ViaDealer},
		"erin":    {[]string{"VIEW"}, []string{"VIEW"}, policy.ViaMonitoringProvider},
		"frank":   {[]string{"VIEW", "DISARM"}, []string{"VIEW", "DISARM"}, policy.ViaLocation},
		"grace":   {[]string{"VIEW", "ARM"}, []string{"VIEW"}, policy.ViaLocation},
	}
	if len(got) != len(want) {
		t.Fatalf("review lists %d users, want %d: %+v", len(got), len(want), got)
	}
	for name, wt := range want {
		i := slices.IndexFunc(got, func(e policy.AccessEntry) bool { return e.UserID == id(name) })
		if i < 0 {
			t.Fatalf("%s missing", name)
		}
		e := got[i]
		if !slices.Equal(e.Actions, wt.actions) || !slices.Equal(e.AllowedNow, wt.now) || len(e.Grants) != 1 || e.Grants[0].Via != wt.via {
			t.Errorf("%s: %+v, want %+v", name, e, wt)
		}
	}
	// Removing charlie from t1 takes him off the list.
	if err := w.Apply(policytest.Change{Kind: policytest.ChangeTeamMemberRemoved, CustomerID: id("acme"), TeamID: id("t1"), UserID: id("charlie")}); err != nil {
		t.Fatal(err)
	}
	got, _ = policy.AccessReview(w.AccessFacts(id("ss1")), tuesday10Berlin)
	if slices.ContainsFunc(got, func(e policy.AccessEntry) bool { return e.UserID == id("charlie") }) {
		t.Fatal("charlie still listed after leaving t1")
	}
}

// TestAccessReviewMergesAndRefusesConflicts checks that holders of one user
// from several owners are merged, and that two employers fail closed.
func TestAccessReviewMergesAndRefusesConflicts(t *testing.T) {
	r := policy.Resource{SecuritySystemID: "ss", LocationID: "l", CustomerID: "c", DealerID: "d"}
	now := time.Date(2026, 3, 3, 12, 0, 0, 0, time.UTC)
	f := policy.AccessFacts{Resource: r, LocationName: "HQ", CustomerName: "Acme", Holders: []policy.Holder{
		{UserID: "u", Username: "u@x", Org: &policy.Membership{Kind: policy.OrgCustomer, ID: "c", Roles: []string{policy.RoleViewer}}},
		{UserID: "u", Username: "u@x", Teams: []policy.TeamRoles{{ID: "t", Name: "Night", Roles: []string{policy.RoleArmer}}}},
		{UserID: "u", Username: "u@x", Teams: []policy.TeamRoles{{ID: "t", Name: "Night", Roles: []string{policy.RoleArmer}}}},
		{UserID: "admin-only", Username: "a@x", Org: &policy.Membership{Kind: policy.OrgCustomer, ID: "c", Roles: []string{policy.RoleCustomerEmployeeAdministrator}}},
	}}
	got, err := policy.AccessReview(f, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !slices.Equal(got[0].Actions, []string{"VIEW", "ARM"}) || len(got[0].Grants) != 2 {
		t.Fatalf("got %+v", got)
	}
	f.Holders = append(f.Holders, policy.Holder{UserID: "u", Org: &policy.Membership{Kind: policy.OrgDealer, ID: "d", Roles: []string{policy.RoleViewer}}})
	var conflict policy.ErrConflictingEmployers
	if _, err := policy.AccessReview(f, now); !errors.As(err, &conflict) || conflict.UserID != "u" {
		t.Fatalf("err = %v, want a conflict about u", err)
	}
}
