package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/realguardio/realguardio/internal/apiclient"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/policytest"
)

// loaded is a generated World created in a running system through the
// public APIs, with the ids the services assigned.
type loaded struct {
	w *policytest.World
	// real maps World ids (organizations, locations, teams, systems,
	// users) to the services' ids.
	real map[string]string
	// employee maps a World user id to its employee id in its
	// organization's service.
	employee map[string]string
	// username of every World user.
	username map[string]string
	// orgAdmins are the benchmark's own administrators of each World
	// organization, by World id.
	orgAdmins map[string]*apiclient.Client
	password  string
}

// emailOf names a World user so that a failure message says which one.
func emailOf(kind string, n int) string {
	return fmt.Sprintf("%s-%d@bench.realguardio.invalid", kind, n)
}

// loadWorld creates w through the public APIs as the organizations'
// administrators would, in the order the services need (a dealer's
// provider and a location's dealer are known from events, so those calls
// retry an unknown reference). Only account creations run in parallel:
// each costs an Argon2 hash in the IAM, the rest is cheap.
func (r *runner) loadWorld(ctx context.Context, w *policytest.World) (*loaded, error) {
	l := &loaded{w: w, real: map[string]string{}, employee: map[string]string{}, username: map[string]string{},
		orgAdmins: map[string]*apiclient.Client{}, password: r.password}
	var mu sync.Mutex
	const parallel = 4

	type org struct {
		kind policy.OrgKind
		id   string
	}
	var orgs []org
	for _, p := range w.MonitoringProviders {
		orgs = append(orgs, org{policy.OrgMonitoringProvider, p.ID})
	}
	for _, d := range w.Dealers {
		orgs = append(orgs, org{policy.OrgDealer, d.ID})
	}
	for _, c := range w.Customers {
		orgs = append(orgs, org{policy.OrgCustomer, c.ID})
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for i, o := range orgs {
		g.Go(func() error {
			email := emailOf("admin-"+string(o.kind), i)
			created, err := r.admin.CreateOrganization(gctx, o.kind, fmt.Sprintf("bench %s %d", o.kind, i),
				apiclient.NewEmployee{Email: email, FirstName: "Org", LastName: "Admin", Password: r.initialFor(email)})
			if err != nil {
				return fmt.Errorf("create %s %d: %w", o.kind, i, err)
			}
			c, _, err := r.login(gctx, email, l.password)
			if err != nil {
				return err
			}
			mu.Lock()
			l.real[o.id], l.orgAdmins[o.id] = created.ID, c
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for i, e := range w.Employees {
		g.Go(func() error {
			email := emailOf("employee", i)
			mu.Lock() // other goroutines of this group write l.real
			oa, orgID := l.orgAdmins[e.OrgID], l.real[e.OrgID]
			mu.Unlock()
			emp, err := oa.CreateEmployee(gctx, e.OrgKind, orgID, apiclient.NewEmployee{Email: email, FirstName: "Employee", LastName: fmt.Sprint(i), Password: r.initialFor(email)})
			if err != nil {
				return fmt.Errorf("create employee %d: %w", i, err)
			}
			if len(e.Roles) > 0 {
				if _, err := oa.SetEmployeeRoles(gctx, e.OrgKind, orgID, emp.ID, e.Roles); err != nil {
					return fmt.Errorf("set the roles of employee %d: %w", i, err)
				}
			}
			if e.Schedule != nil {
				if err := oa.SetSchedule(gctx, e.OrgKind, orgID, emp.ID, *e.Schedule); err != nil {
					return fmt.Errorf("set the schedule of employee %d: %w", i, err)
				}
			}
			mu.Lock()
			l.real[e.UserID], l.employee[e.UserID], l.username[e.UserID] = emp.UserID, emp.ID, email
			mu.Unlock()
			return nil
		})
	}
	accounts := func(kind string, ids []string, appRoles []string) {
		for i, id := range ids {
			g.Go(func() error {
				email := emailOf(kind, i)
				created, err := r.admin.CreateUser(gctx, email, l.password, appRoles)
				if err != nil {
					return fmt.Errorf("create the account %s: %w", email, err)
				}
				mu.Lock()
				l.real[id], l.username[id] = created.ID, email
				mu.Unlock()
				return nil
			})
		}
	}
	accounts("admin", w.Admins, []string{policy.AppRoleAdmin})
	accounts("outsider", w.Outsiders, nil)
	if err := g.Wait(); err != nil {
		return nil, err
	}

	for i, d := range w.Dealers {
		if d.MonitoringProviderID == "" {
			continue
		}
		if err := apiclient.RetryUnknownReference(ctx, func(ctx context.Context) error {
			return l.orgAdmins[d.ID].SetDealerMonitoringProvider(ctx, l.real[d.ID], l.real[d.MonitoringProviderID])
		}); err != nil {
			return nil, fmt.Errorf("set the provider of dealer %d: %w", i, err)
		}
	}
	if err := r.importLocations(ctx, l); err != nil {
		return nil, err
	}
	for i, t := range w.Teams {
		oa, cust := l.orgAdmins[t.CustomerID], l.real[t.CustomerID]
		created, err := oa.CreateTeam(ctx, cust, fmt.Sprintf("team %d", i))
		if err != nil {
			return nil, fmt.Errorf("create team %d: %w", i, err)
		}
		l.real[t.ID] = created.ID
		for _, m := range t.Members {
			if err := oa.AddTeamMember(ctx, cust, created.ID, l.employee[m]); err != nil {
				return nil, fmt.Errorf("add a member to team %d: %w", i, err)
			}
		}
	}
	if err := r.importLocationRoles(ctx, l); err != nil {
		return nil, err
	}
	for _, tr := range w.TeamLocationRoles {
		loc, _ := w.Location(tr.LocationID)
		if err := l.orgAdmins[loc.CustomerID].SetLocationTeamRoles(ctx, l.real[loc.CustomerID], l.real[tr.LocationID], l.real[tr.TeamID], tr.Roles); err != nil {
			return nil, fmt.Errorf("set team location roles: %w", err)
		}
	}
	if err := r.importSecuritySystems(ctx, l); err != nil {
		return nil, err
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
