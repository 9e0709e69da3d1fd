package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/realguardio/realguardio/internal/apiclient"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/policytest"
)

// emailOf names an account of the benchmark's own (not of the World) so
// that a failure message says which one.
func emailOf(kind string, n int) string {
	return fmt.Sprintf("%s-%d@bench.realguardio.invalid", kind, n)
}

// loadWorld creates w through the public APIs with policytest.Load, the
// locations, location roles and systems through the bulk imports, as an
// onboarding of that size would.
func (r *runner) loadWorld(ctx context.Context, w *policytest.World) (*policytest.Loaded, error) {
	l, err := policytest.Load(ctx, r.admin, func(ctx context.Context, username, _, password string) (*apiclient.Client, error) {
		r.initialFor(username) // r.login replaces r.initial at this first login
		c, _, err := r.login(ctx, username, password)
		return c, err
	}, w, policytest.LoadOptions{Password: r.password, Initial: r.initial, Domain: "bench.realguardio.invalid", Import: true})
	if err != nil {
		return nil, err
	}
	for _, u := range l.Users {
		if u.EmployeeID != "" {
			r.initialFor(u.Username) // created with r.initial: the first login replaces it
		}
	}
	return l, nil
}

// pair is a user allowed to arm and disarm a system at any time.
type pair struct{ user, system string }

// plan is the part of a World the measurements use, chosen from the World
// alone so that every strategy gets the same.
type plan struct {
	pairs []pair
	// listUser sees the most systems among employees; listVisible is how
	// many.
	listUser    string
	listVisible int
	// revokeCustomer and revokeSystem are where the revocation trials'
	// own employee holds and loses its role.
	revokeCustomer, revokeLocation, revokeSystem string
}

// choose picks up to n (user, system) pairs, one per system, preferring a
// user not used yet, among employees without a schedule (a schedule would
// make the answer depend on the hour) whom the rule allows to arm and to
// disarm; and the employee who sees the most systems, for the list.
func choose(w *policytest.World, n int) (plan, error) {
	var p plan
	now := time.Now()
	uses := map[string]int{}
	for _, sys := range w.Systems() {
		if len(p.pairs) == n {
			break
		}
		res := w.Resource(sys)
		best := ""
		for _, e := range w.Employees {
			if e.Schedule != nil {
				continue
			}
			s := w.Subject(e.UserID, w.AppRoles(e.UserID))
			if !policy.IsAllowed(s, policy.OpArm, res, now).Allowed || !policy.IsAllowed(s, policy.OpDisarm, res, now).Allowed {
				continue
			}
			if best == "" || uses[e.UserID] < uses[best] {
				best = e.UserID
			}
		}
		if best != "" {
			uses[best]++
			p.pairs = append(p.pairs, pair{user: best, system: sys})
		}
	}
	if len(p.pairs) == 0 {
		return p, fmt.Errorf("the world of seed %d has no employee without a schedule allowed to arm and disarm a system; choose another --seed", w.Seed)
	}
	for _, e := range w.Employees {
		s := w.Subject(e.UserID, w.AppRoles(e.UserID))
		seen := 0
		for _, sys := range w.Systems() {
			if policy.IsAllowed(s, policy.OpView, w.Resource(sys), now).Allowed {
				seen++
			}
		}
		if seen > p.listVisible {
			p.listUser, p.listVisible = e.UserID, seen
		}
	}
	if p.listUser == "" {
		return p, fmt.Errorf("the world of seed %d has no employee who sees a system; choose another --seed", w.Seed)
	}
	ss := w.SecuritySystems[0]
	loc, _ := w.Location(ss.LocationID)
	p.revokeCustomer, p.revokeLocation, p.revokeSystem = loc.CustomerID, loc.ID, ss.ID
	return p, nil
}

// distinctUsers counts the users of pairs.
func distinctUsers(ps []pair) int {
	var us []string
	for _, p := range ps {
		if !slices.Contains(us, p.user) {
			us = append(us, p.user)
		}
	}
	return len(us)
}
