package systemtest

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/realguardio/realguardio/internal/apiclient"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/policytest"
)

// LoadOptions tunes LoadWorld.
type LoadOptions struct {
	// BootstrapAdmin makes the world's first admin the bootstrap admin
	// instead of a new REALGUARDIO_ADMIN account (FixedWorld's "admin").
	BootstrapAdmin bool
	// Parallel bounds the concurrent account creations and logins (4 when
	// zero): each costs an Argon2 hash in the IAM Service.
	Parallel int
}

// WorldUser is a user of a loaded world: its credentials, its employee id
// in its organization's service (empty for admins and outsiders) and a
// logged-in client.
type WorldUser struct {
	// WorldID is the user's id in the World; Subject is the real one.
	WorldID, Subject   string
	Username, Password string
	EmployeeID         string
	Client             *Client
}

// Loaded is a policytest World created in a running system through the
// public APIs (policytest.Load), with the map between the World's ids and
// the ids the services assigned. World is kept equal to the system's
// facts: change both only through Apply.
type Loaded struct {
	Sys   *System
	World *policytest.World
	// Users are the world's users by World id.
	Users map[string]*WorldUser

	loaded    *policytest.Loaded
	orgAdmins map[string]*Client // World organization id → the harness's administrator of it
}

// Real returns the real id of a World id ("" when unknown).
func (l *Loaded) Real(worldID string) string { return l.loaded.Real(worldID) }

// Name returns a readable name of a World id: FixedWorld's names, or the
// id itself.
func (l *Loaded) Name(worldID string) string { return policytest.Names(worldID)[0] }

// LoadWorld creates w in the running system through the public APIs with
// policytest.Load, one request per entity: organizations (each with an
// administrator account of the harness, so that changes to the World's
// own employees never lock the harness out), employees with their roles and
// schedules, admins and outsiders as IAM accounts, the dealers' monitoring
// providers, locations and their dealers, teams and members, location
// roles, and security systems; then it logs every World user in through
// the OIDC flow. It does not wait for convergence. w itself becomes
// Loaded.World and must not be changed but through Loaded.Apply.
func LoadWorld(ctx context.Context, s *System, w *policytest.World, opts LoadOptions) (*Loaded, error) {
	admin, err := s.Admin(ctx)
	if err != nil {
		return nil, err
	}
	lo := policytest.LoadOptions{Password: "pw-" + randomHex(8), Initial: "initial-" + randomHex(8), Domain: "systemtest.invalid", Parallel: opts.Parallel}
	if opts.BootstrapAdmin {
		lo.Bootstrap = &policytest.LoadedUser{Username: s.AdminUsername, Password: s.AdminPassword, Subject: admin.Session().Subject}
	}
	login := func(ctx context.Context, username, initial, password string) (*apiclient.Client, error) {
		se, err := s.FirstLogin(ctx, username, initial, password)
		if err != nil {
			return nil, err
		}
		return s.Client(se).API(), nil
	}
	pl, err := policytest.Load(ctx, admin.API(), login, w, lo)
	if err != nil {
		return nil, err
	}
	l := &Loaded{Sys: s, World: w, Users: map[string]*WorldUser{}, loaded: pl, orgAdmins: map[string]*Client{}}
	for id, c := range pl.OrgAdmins {
		l.orgAdmins[id] = &Client{api: c}
	}
	for id, u := range pl.Users {
		wu := &WorldUser{WorldID: u.WorldID, Subject: u.Subject, Username: u.Username, Password: u.Password, EmployeeID: u.EmployeeID}
		if lo.Bootstrap != nil && u.Subject == lo.Bootstrap.Subject {
			wu.Client = admin
		}
		l.Users[id] = wu
	}

	// Every user logs in, an employee for the first time: it replaces
	// its initial password with the world's password, as a person would
	// on the IAM's page. The verified sub must be the id the services
	// reported.
	parallel := opts.Parallel
	if parallel <= 0 {
		parallel = 4
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for _, u := range l.Users {
		if u.Client != nil {
			continue
		}
		g.Go(func() error {
			login := s.Login
			if u.EmployeeID != "" {
				login = func(ctx context.Context, username, password string) (*Session, error) {
					return s.FirstLogin(ctx, username, lo.Initial, password)
				}
			}
			se, err := login(gctx, u.Username, u.Password)
			if err != nil {
				return err
			}
			if se.Subject != u.Subject {
				return fmt.Errorf("load world: %s logged in as sub %s, but the services reported user id %s", u.Username, se.Subject, u.Subject)
			}
			u.Client = s.Client(se)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return l, nil
}

// Apply makes a change through the public API, as the administrator of the
// organization owning the data would, and then to World, so the reference
// decisions follow. It does not wait for convergence.
func (l *Loaded) Apply(ctx context.Context, c policytest.Change) error {
	var r *Response
	want := http.StatusOK
	switch c.Kind {
	case policytest.ChangeOrgRoles:
		r = l.orgAdmins[c.OrgID].SetEmployeeRoles(ctx, c.OrgKind, l.Real(c.OrgID), l.Users[c.UserID].EmployeeID, c.Roles)
	case policytest.ChangeSchedule:
		oa, org, emp := l.orgAdmins[c.OrgID], l.Real(c.OrgID), l.Users[c.UserID].EmployeeID
		if c.Schedule == nil {
			r, want = oa.ClearSchedule(ctx, c.OrgKind, org, emp), http.StatusNoContent
		} else {
			r = oa.SetSchedule(ctx, c.OrgKind, org, emp, *c.Schedule)
		}
	case policytest.ChangeEmployeeLocationRoles:
		r = l.orgAdmins[c.CustomerID].SetLocationEmployeeRoles(ctx, l.Real(c.CustomerID), l.Real(c.LocationID), l.Users[c.UserID].EmployeeID, c.Roles)
	case policytest.ChangeTeamLocationRoles:
		r = l.orgAdmins[c.CustomerID].SetLocationTeamRoles(ctx, l.Real(c.CustomerID), l.Real(c.LocationID), l.Real(c.TeamID), c.Roles)
	case policytest.ChangeLocationDealer:
		r = RetryUnknownReference(ctx, func() *Response {
			return l.orgAdmins[c.CustomerID].SetLocationDealer(ctx, l.Real(c.CustomerID), l.Real(c.LocationID), l.Real(c.DealerID))
		})
	case policytest.ChangeTeamMemberAdded:
		r, want = l.orgAdmins[c.CustomerID].AddTeamMember(ctx, l.Real(c.CustomerID), l.Real(c.TeamID), l.Users[c.UserID].EmployeeID), http.StatusNoContent
	case policytest.ChangeTeamMemberRemoved:
		r, want = l.orgAdmins[c.CustomerID].RemoveTeamMember(ctx, l.Real(c.CustomerID), l.Real(c.TeamID), l.Users[c.UserID].EmployeeID), http.StatusNoContent
	case policytest.ChangeDealerProvider:
		r = RetryUnknownReference(ctx, func() *Response {
			return l.orgAdmins[c.DealerID].SetDealerMonitoringProvider(ctx, l.Real(c.DealerID), l.Real(c.MonitoringProviderID))
		})
	default:
		return fmt.Errorf("apply %v: unknown kind", c)
	}
	if r.Status != want {
		return fmt.Errorf("apply %v: %s (want %d)", c, r, want)
	}
	return l.World.Apply(c)
}

// Mismatch is one decision on which the system and the reference rule
// disagree.
type Mismatch struct {
	Case policytest.Case
	// Want is the reference decision; Got describes the system's answer.
	Want policy.Decision
	Got  string
	// Via names the request that showed the decision.
	Via string
}

// Comparison is the outcome of Compare.
type Comparison struct {
	// Checked counts the decisions compared; Skipped those left out
	// because a shift edge fell within a second of the request.
	Checked, Skipped int
	Mismatches       []Mismatch
}

// edgeMargin keeps instants near a shift edge out of the comparison: the
// service decides at its own instant between the two the harness takes
// around a request.
const edgeMargin = time.Second

// Compare asks the system, as every user of the World, for every security
// system of the World: GET /securitysystems/{id} for view (200, or 403
// with reason no_role) and the actions of GET /securitysystems and of the
// single GET for arm and disarm, evaluated by the service at the current
// time. Each is compared with policytest.Expected at the instants taken
// around the request; a decision that changes within edgeMargin of them is
// skipped and counted. No state changes.
func (l *Loaded) Compare(ctx context.Context) (Comparison, error) {
	var (
		mu  sync.Mutex
		out Comparison
	)
	w := l.World
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, uid := range w.Users() {
		u := l.Users[uid]
		g.Go(func() error {
			var res Comparison
			appRoles := w.AppRoles(uid)
			expect := func(op policy.Op, sys string, t0, t1 time.Time) (policy.Decision, bool) {
				c := policytest.Case{UserID: uid, AppRoles: appRoles, Op: op, SecuritySystemID: sys}
				var first policy.Decision
				for i, at := range []time.Time{t0.Add(-edgeMargin), t0, t1, t1.Add(edgeMargin)} {
					c.At = at
					d := policytest.Expected(w, c)
					if i == 0 {
						first = d
					} else if d != first {
						return d, false
					}
				}
				return first, true
			}
			actionsOp := map[string]policy.Op{"ARM": policy.OpArm, "DISARM": policy.OpDisarm}
			compareActions := func(sys string, actions []string, t0, t1 time.Time, via string) {
				for action, op := range actionsOp {
					want, ok := expect(op, sys, t0, t1)
					if !ok {
						res.Skipped++
						continue
					}
					res.Checked++
					if got := slices.Contains(actions, action); got != want.Allowed {
						res.Mismatches = append(res.Mismatches, Mismatch{
							Case: policytest.Case{UserID: uid, AppRoles: appRoles, Op: op, SecuritySystemID: sys, At: t0},
							Want: want, Got: fmt.Sprintf("actions %v", actions), Via: via})
					}
				}
			}

			t0 := time.Now()
			list, r := u.Client.ListSecuritySystems(gctx)
			t1 := time.Now()
			if r.Status != http.StatusOK {
				return fmt.Errorf("compare: list as %s: %s", u.Username, r)
			}
			listed := map[string][]string{}
			for _, ss := range list {
				if wid, ok := l.loaded.WorldID(ss.ID); ok {
					listed[wid] = ss.Actions
				}
			}
			for _, sys := range w.Systems() {
				want, _ := expect(policy.OpView, sys, t0, t1)
				actions, got := listed[sys]
				res.Checked++
				if got != want.Allowed {
					res.Mismatches = append(res.Mismatches, Mismatch{
						Case: policytest.Case{UserID: uid, AppRoles: appRoles, Op: policy.OpView, SecuritySystemID: sys, At: t0},
						Want: want, Got: fmt.Sprintf("listed=%v", got), Via: "GET /securitysystems"})
				}
				if got && want.Allowed {
					compareActions(sys, actions, t0, t1, "GET /securitysystems actions")
				}
			}
			for _, sys := range w.Systems() {
				t0 := time.Now()
				ss, r := u.Client.GetSecuritySystem(gctx, l.Real(sys))
				t1 := time.Now()
				want, _ := expect(policy.OpView, sys, t0, t1)
				res.Checked++
				c := policytest.Case{UserID: uid, AppRoles: appRoles, Op: policy.OpView, SecuritySystemID: sys, At: t0}
				switch {
				case r.Err != nil || (r.Status != http.StatusOK && r.Status != http.StatusForbidden):
					return fmt.Errorf("compare: get %s as %s: %s", l.Name(sys), u.Username, r)
				case want.Allowed && r.Status == http.StatusOK:
					compareActions(sys, ss.Actions, t0, t1, "GET /securitysystems/{id} actions")
				case !want.Allowed && r.Status == http.StatusForbidden && r.Reason() == want.Reason:
				default:
					res.Mismatches = append(res.Mismatches, Mismatch{Case: c, Want: want,
						Got: fmt.Sprintf("%d reason %q", r.Status, r.Reason()), Via: "GET /securitysystems/{id}"})
				}
			}
			mu.Lock()
			out.Checked += res.Checked
			out.Skipped += res.Skipped
			out.Mismatches = append(out.Mismatches, res.Mismatches...)
			mu.Unlock()
			return nil
		})
	}
	err := g.Wait()
	return out, err
}

// Describe prints a mismatch with names and real ids, so the case can be
// found in the system's data and replayed in the pure rule.
func (l *Loaded) Describe(m Mismatch) string {
	c := m.Case
	u := l.Users[c.UserID]
	want := "allow"
	if !m.Want.Allowed {
		want = "deny " + m.Want.Reason
	}
	subject := l.World.Subject(c.UserID, c.AppRoles)
	return fmt.Sprintf("seed %d: %s (%s, sub %s) %s %s (system %s) at %s via %s: want %s, got %s\n\tsubject facts: %s\n\tresource facts: %+v",
		l.World.Seed, l.Name(c.UserID), u.Username, u.Subject, c.Op, l.Name(c.SecuritySystemID), l.Real(c.SecuritySystemID),
		c.At.UTC().Format(time.RFC3339), m.Via, want, m.Got, describeSubject(subject), l.World.Resource(c.SecuritySystemID))
}

func describeSubject(s policy.Subject) string {
	var b strings.Builder
	fmt.Fprintf(&b, "appRoles=%v", s.AppRoles)
	if s.Org != nil {
		fmt.Fprintf(&b, " org=%s:%s roles=%v", s.Org.Kind, s.Org.ID, s.Org.Roles)
	}
	if len(s.LocationRoles) > 0 {
		fmt.Fprintf(&b, " locationRoles=%v", s.LocationRoles)
	}
	if s.Schedule != nil {
		fmt.Fprintf(&b, " schedule=%+v", *s.Schedule)
	}
	return b.String()
}
