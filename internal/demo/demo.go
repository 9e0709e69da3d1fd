// Package demo loads demo organizations into a running RealGuardIO through
// its public API, as an operator and the organizations' administrators
// would, so that `realguardio up --demo` shows every way of holding a
// right of AUTHZ.md's fixed cases with real logins: an organization role
// in the customer, a role at one location, a team's role, a dealer's and a
// monitoring provider's roles, and schedules (a Berlin day shift and a UTC
// night shift past midnight).
//
// It uses only the public API (internal/apiclient), so it works with every
// authorization strategy: where a service learns of another's entity from
// events (a dealer named by a location, a provider named by a dealer, a
// location named by a new security system), the reference is retried until
// it is known.
package demo

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/realguardio/realguardio/internal/apiclient"
	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/policy"
)

// Options says where the system is and how its bootstrap admin logs in.
type Options struct {
	// Endpoints are the services' base URLs.
	Endpoints apiclient.Endpoints
	// AdminUsername and AdminPassword are the bootstrap admin's
	// credentials; the admin needs REALGUARDIO_ADMIN and
	// REALGUARDIO_DEALER_ADMINISTRATOR.
	AdminUsername, AdminPassword string
	// HTTPClient is used for every call (nil: apiclient's default).
	HTTPClient *http.Client
	// Now is the clock the demo's shifts are computed from (time.Now when
	// nil): one user on duty at the start, one not.
	Now func() time.Time
}

func (o Options) now() time.Time {
	if o.Now == nil {
		return time.Now()
	}
	return o.Now()
}

// MarkerCustomer is the customer whose presence means the demo was loaded.
const MarkerCustomer = "Acme"

// Login is one demo account: its username (an e-mail address), its
// password, and what it shows.
type Login struct {
	Username, Password string
	// Organization is the organization the account belongs to.
	Organization string
	// Shows says what the account may do, in the words of AUTHZ.md.
	Shows string
}

// Result is what Load did.
type Result struct {
	// AlreadyLoaded is true when the demo organizations existed already;
	// nothing was created and Logins is empty (the passwords were printed
	// when they were loaded).
	AlreadyLoaded bool
	// Logins are the accounts created, in a stable order.
	Logins []Login
	// SecuritySystems counts the systems created.
	SecuritySystems int
}

// The demo's e-mail domains are under .example (RFC 2606), which never
// delivers mail.
const (
	domainAcme       = "acme.example"
	domainFoo        = "foocorp.example"
	domainSecureCo   = "secureco.example"
	domainGuardAll   = "guardall.example"
	domainWatchTower = "watchtower.example"
)

// loader carries the state of one Load.
type loader struct {
	opts     Options
	provider *apiclient.Provider
	admin    *apiclient.Client
	logins   []Login
}

// Load creates the demo organizations unless a customer named
// MarkerCustomer exists, in which case it reports AlreadyLoaded and
// changes nothing. It fails on the first refused call; what was created
// until then stays (a second run then reports the demo as loaded).
func Load(ctx context.Context, opts Options) (*Result, error) {
	if opts.AdminUsername == "" {
		opts.AdminUsername = "admin"
	}
	p, err := apiclient.Discover(ctx, opts.Endpoints.IAM, opts.HTTPClient)
	if err != nil {
		return nil, err
	}
	l := &loader{opts: opts, provider: p}
	if l.admin, err = l.login(ctx, opts.AdminUsername, opts.AdminPassword); err != nil {
		return nil, fmt.Errorf("demo: log in as %s: %w", opts.AdminUsername, err)
	}
	loaded, err := l.markerExists(ctx)
	if err != nil {
		return nil, fmt.Errorf("demo: list the customers: %w", err)
	}
	if loaded {
		return &Result{AlreadyLoaded: true}, nil
	}
	n, err := l.load(ctx)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	return &Result{Logins: l.logins, SecuritySystems: n}, nil
}

// markerExists reports whether the marker customer exists, asking the
// Customer Service for the customers whose name contains it (the list is
// paged, so a platform of many customers is never read whole).
func (l *loader) markerExists(ctx context.Context) (bool, error) {
	cursor := ""
	for {
		q := url.Values{"q": {MarkerCustomer}, "limit": {"500"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Customers  []apiclient.OrganizationSummary `json:"customers"`
			NextCursor string                          `json:"nextCursor"`
		}
		if _, err := l.admin.Do(ctx, apiclient.ServiceCustomer, "GET", "/customers?"+q.Encode(), nil, &page); err != nil {
			return false, err
		}
		if slices.ContainsFunc(page.Customers, func(c apiclient.OrganizationSummary) bool { return c.Name == MarkerCustomer }) {
			return true, nil
		}
		if page.NextCursor == "" {
			return false, nil
		}
		cursor = page.NextCursor
	}
}

func (l *loader) login(ctx context.Context, username, password string) (*apiclient.Client, error) {
	se, err := l.provider.Login(ctx, username, password)
	if err != nil {
		return nil, err
	}
	return apiclient.New(l.opts.Endpoints, se, l.opts.HTTPClient), nil
}

// firstLogin logs in an account an organization service just created with
// the initial password initial, which the IAM makes every such account
// replace at its first login: the loader does that step as the demo
// person would, on the IAM's change-password page, choosing password, the
// one Print shows. So the printed logins are the accounts' own passwords
// and log in without a change; no administrator path around the rule is
// needed.
func (l *loader) firstLogin(ctx context.Context, username, initial, password string) (*apiclient.Client, error) {
	se, err := l.provider.LoginChangingPassword(ctx, username, initial, password)
	if err != nil {
		return nil, err
	}
	return apiclient.New(l.opts.Endpoints, se, l.opts.HTTPClient), nil
}

// org is a created organization with a client acting as its administrator.
type org struct {
	kind  policy.OrgKind
	id    string
	name  string
	admin *apiclient.Client
}

// createOrg creates an organization as the bootstrap admin and logs its
// administrator in for the first time (firstLogin).
func (l *loader) createOrg(ctx context.Context, kind policy.OrgKind, name, domain, what string) (*org, error) {
	email, initial, pw := "admin@"+domain, password(), password()
	created, err := l.admin.CreateOrganization(ctx, kind, name, apiclient.NewEmployee{Email: email, FirstName: name, LastName: "Administrator", Password: initial})
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	l.logins = append(l.logins, Login{Username: email, Password: pw, Organization: name, Shows: what})
	c, err := l.firstLogin(ctx, email, initial, pw)
	if err != nil {
		return nil, fmt.Errorf("log in as the administrator of %s: %w", name, err)
	}
	return &org{kind: kind, id: created.ID, name: name, admin: c}, nil
}

// employee creates an employee of o with organization roles (none when
// empty), does its first login (firstLogin) and returns its employee id.
func (l *loader) employee(ctx context.Context, o *org, first, domain, what string, roles ...string) (string, error) {
	email, initial, pw := strings.ToLower(first)+"@"+domain, password(), password()
	e, err := o.admin.CreateEmployee(ctx, o.kind, o.id, apiclient.NewEmployee{Email: email, FirstName: first, LastName: "Demo", Password: initial})
	if err != nil {
		return "", fmt.Errorf("create employee %s of %s: %w", first, o.name, err)
	}
	if _, err := l.firstLogin(ctx, email, initial, pw); err != nil {
		return "", fmt.Errorf("first login of %s of %s: %w", first, o.name, err)
	}
	if len(roles) > 0 {
		if _, err := o.admin.SetEmployeeRoles(ctx, o.kind, o.id, e.ID, roles); err != nil {
			return "", fmt.Errorf("give %s the roles %v in %s: %w", first, roles, o.name, err)
		}
	}
	l.logins = append(l.logins, Login{Username: email, Password: pw, Organization: o.name, Shows: what})
	return e.ID, nil
}

// loginOf logs in the demo account username created by this load.
func (l *loader) loginOf(ctx context.Context, username string) (*apiclient.Client, error) {
	for _, lg := range l.logins {
		if lg.Username == username {
			return l.login(ctx, lg.Username, lg.Password)
		}
	}
	return nil, fmt.Errorf("no demo account %s", username)
}

// shiftAround returns a one-shift UTC schedule starting from+ hours after
// the hour before now and lasting hours, and its description. A shift
// that crosses midnight is a night shift of the day it starts, as
// AUTHZ.md defines it, so the schedule covers exactly that span.
func shiftAround(now time.Time, from, hours int) (policy.Schedule, string) {
	start := now.UTC().Truncate(time.Hour).Add(time.Duration(from-1) * time.Hour)
	end := start.Add(time.Duration(hours) * time.Hour)
	day := policy.Weekdays[start.Weekday()]
	s := policy.Schedule{TimeZone: "UTC", Shifts: []policy.Shift{{Weekdays: []string{day}, Start: start.Format("15:04"), End: end.Format("15:04")}}}
	return s, fmt.Sprintf("%s %s-%s UTC", day, s.Shifts[0].Start, s.Shifts[0].End)
}

func (l *loader) load(ctx context.Context) (int, error) {
	watchTower, err := l.createOrg(ctx, policy.OrgMonitoringProvider, "WatchTower", domainWatchTower, "monitoring provider administrator (WatchTower watches SecureCo's locations)")
	if err != nil {
		return 0, err
	}
	secureCo, err := l.createOrg(ctx, policy.OrgDealer, "SecureCo", domainSecureCo, "dealer administrator (SecureCo services Acme HQ)")
	if err != nil {
		return 0, err
	}
	guardAll, err := l.createOrg(ctx, policy.OrgDealer, "GuardAll", domainGuardAll, "dealer administrator (GuardAll services Acme Warehouse and Foo Corp)")
	if err != nil {
		return 0, err
	}
	acme, err := l.createOrg(ctx, policy.OrgCustomer, MarkerCustomer, domainAcme, "customer administrator: employees, locations, teams, roles")
	if err != nil {
		return 0, err
	}
	foo, err := l.createOrg(ctx, policy.OrgCustomer, "Foo Corp", domainFoo, "customer administrator of another customer")
	if err != nil {
		return 0, err
	}

	// The dealer's provider: the Dealer Service knows WatchTower from the
	// Monitoring Provider Service's events.
	if err := apiclient.RetryUnknownReference(ctx, func(ctx context.Context) error {
		return secureCo.admin.SetDealerMonitoringProvider(ctx, secureCo.id, watchTower.id)
	}); err != nil {
		return 0, fmt.Errorf("let SecureCo use WatchTower: %w", err)
	}

	// Locations, serviced by dealers the Customer Service knows from events.
	location := func(o *org, name, dealer string) (string, error) {
		var loc apiclient.Location
		err := apiclient.RetryUnknownReference(ctx, func(ctx context.Context) (err error) {
			loc, err = o.admin.CreateLocation(ctx, o.id, name, dealer)
			return err
		})
		if err != nil {
			return "", fmt.Errorf("create location %s of %s: %w", name, o.name, err)
		}
		return loc.ID, nil
	}
	hq, err := location(acme, "HQ", secureCo.id)
	if err != nil {
		return 0, err
	}
	warehouse, err := location(acme, "Warehouse", guardAll.id)
	if err != nil {
		return 0, err
	}
	fooOffice, err := location(foo, "Foo Corp Office", guardAll.id)
	if err != nil {
		return 0, err
	}

	// The cast of AUTHZ.md's fixed cases.
	if _, err := l.employee(ctx, acme, "Alice", domainAcme, "disarms every Acme system at any hour (customer role DISARMER); may not arm; sees nothing of Foo Corp", policy.RoleDisarmer); err != nil {
		return 0, err
	}
	mary, err := l.employee(ctx, acme, "Mary", domainAcme, "disarms at the Warehouse only (location role DISARMER)")
	if err != nil {
		return 0, err
	}
	if err := acme.admin.SetLocationEmployeeRoles(ctx, acme.id, warehouse, mary, []string{policy.RoleDisarmer}); err != nil {
		return 0, fmt.Errorf("give Mary DISARMER at the Warehouse: %w", err)
	}
	charlie, err := l.employee(ctx, acme, "Charlie", domainAcme, "disarms at HQ as a member of team Night Watch (team role DISARMER)")
	if err != nil {
		return 0, err
	}
	team, err := acme.admin.CreateTeam(ctx, acme.id, "Night Watch")
	if err != nil {
		return 0, fmt.Errorf("create team Night Watch: %w", err)
	}
	if err := acme.admin.AddTeamMember(ctx, acme.id, team.ID, charlie); err != nil {
		return 0, fmt.Errorf("add Charlie to Night Watch: %w", err)
	}
	if err := acme.admin.SetLocationTeamRoles(ctx, acme.id, hq, team.ID, []string{policy.RoleDisarmer}); err != nil {
		return 0, fmt.Errorf("give Night Watch DISARMER at HQ: %w", err)
	}
	frank, err := l.employee(ctx, acme, "Frank", domainAcme, "disarms at HQ MON-FRI 09:00-17:00 Europe/Berlin only; views any time")
	if err != nil {
		return 0, err
	}
	if err := acme.admin.SetLocationEmployeeRoles(ctx, acme.id, hq, frank, []string{policy.RoleDisarmer}); err != nil {
		return 0, fmt.Errorf("give Frank DISARMER at HQ: %w", err)
	}
	if err := acme.admin.SetSchedule(ctx, policy.OrgCustomer, acme.id, frank, policy.Schedule{TimeZone: "Europe/Berlin", Shifts: []policy.Shift{
		{Weekdays: []string{"MON", "TUE", "WED", "THU", "FRI"}, Start: "09:00", End: "17:00"},
	}}); err != nil {
		return 0, fmt.Errorf("give Frank his Berlin day shift: %w", err)
	}
	// Two shifts computed from the start, so the demo always shows both
	// sides of a schedule: Nina is on duty now, Oliver is not yet.
	now := l.opts.now()
	ninaShift, ninaText := shiftAround(now, 0, 8)
	nina, err := l.employee(ctx, acme, "Nina", domainAcme, "disarms at HQ in her shift "+ninaText+": on duty NOW, so she may disarm HQ Front Door at once")
	if err != nil {
		return 0, err
	}
	if err := acme.admin.SetLocationEmployeeRoles(ctx, acme.id, hq, nina, []string{policy.RoleDisarmer}); err != nil {
		return 0, fmt.Errorf("give Nina DISARMER at HQ: %w", err)
	}
	if err := acme.admin.SetSchedule(ctx, policy.OrgCustomer, acme.id, nina, ninaShift); err != nil {
		return 0, fmt.Errorf("give Nina her shift: %w", err)
	}
	oliverShift, oliverText := shiftAround(now, 10, 4)
	oliver, err := l.employee(ctx, acme, "Oliver", domainAcme, "disarms at the Warehouse in his shift "+oliverText+": OUTSIDE it now, so he only views")
	if err != nil {
		return 0, err
	}
	if err := acme.admin.SetLocationEmployeeRoles(ctx, acme.id, warehouse, oliver, []string{policy.RoleDisarmer}); err != nil {
		return 0, fmt.Errorf("give Oliver DISARMER at the Warehouse: %w", err)
	}
	if err := acme.admin.SetSchedule(ctx, policy.OrgCustomer, acme.id, oliver, oliverShift); err != nil {
		return 0, fmt.Errorf("give Oliver his shift: %w", err)
	}
	if _, err := l.employee(ctx, acme, "Oscar", domainAcme, "arms and disarms every Acme system at any hour (customer roles ARMER, DISARMER); he armed HQ Front Door and the Warehouse Loading Dock",
		policy.RoleArmer, policy.RoleDisarmer); err != nil {
		return 0, err
	}
	grace, err := l.employee(ctx, acme, "Grace", domainAcme, "arms at HQ in her night shift SAT 22:00-06:00 UTC only")
	if err != nil {
		return 0, err
	}
	if err := acme.admin.SetLocationEmployeeRoles(ctx, acme.id, hq, grace, []string{policy.RoleArmer}); err != nil {
		return 0, fmt.Errorf("give Grace ARMER at HQ: %w", err)
	}
	if err := acme.admin.SetSchedule(ctx, policy.OrgCustomer, acme.id, grace, policy.Schedule{TimeZone: "UTC", Shifts: []policy.Shift{
		{Weekdays: []string{"SAT"}, Start: "22:00", End: "06:00"},
	}}); err != nil {
		return 0, fmt.Errorf("give Grace her night shift: %w", err)
	}
	if _, err := l.employee(ctx, secureCo, "Dave", domainSecureCo, "disarms at HQ, which his dealer services (dealer role DISARMER)", policy.RoleDisarmer); err != nil {
		return 0, err
	}
	if _, err := l.employee(ctx, watchTower, "Erin", domainWatchTower, "views HQ's systems through SecureCo's provider (provider role VIEWER)", policy.RoleViewer); err != nil {
		return 0, err
	}

	// Security systems, created by the operator; the Security System
	// Service may know a new location only from events.
	systems := []struct{ location, name string }{
		{hq, "HQ Front Door"}, {hq, "HQ Server Room"},
		{warehouse, "Warehouse Loading Dock"},
		{fooOffice, "Foo Corp Main Entrance"},
	}
	for _, s := range systems {
		if err := apiclient.RetryUnknownReference(ctx, func(ctx context.Context) error {
			_, err := l.admin.CreateSecuritySystem(ctx, s.location, s.name)
			return err
		}); err != nil {
			return 0, fmt.Errorf("create security system %s: %w", s.name, err)
		}
	}
	// Some systems armed, by Oscar, so a disarm can be shown at once.
	oscar, err := l.loginOf(ctx, "oscar@"+domainAcme)
	if err != nil {
		return 0, fmt.Errorf("log in as Oscar: %w", err)
	}
	if err := armByName(ctx, oscar, "HQ Front Door", "Warehouse Loading Dock"); err != nil {
		return 0, err
	}
	return len(systems), nil
}

// armByName arms the named systems as c. A strategy fed by events may not
// know c's fresh roles for a moment: a denial is retried for a bounded time.
func armByName(ctx context.Context, c *apiclient.Client, names ...string) error {
	ctx, cancel := context.WithTimeout(ctx, apiclient.DefaultRetryBound)
	defer cancel()
	for _, name := range names {
		for wait := 20 * time.Millisecond; ; wait = min(wait*2, 500*time.Millisecond) {
			err := func() error {
				list, err := c.ListSecuritySystems(ctx)
				if err != nil {
					return err
				}
				for _, ss := range list {
					if ss.Name == name {
						_, err := c.Arm(ctx, ss.ID)
						return err
					}
				}
				return apperr.New(apperr.Forbidden, "%s is not visible yet", name)
			}()
			if err == nil {
				break
			}
			if !apperr.Is(err, apperr.Forbidden) {
				return fmt.Errorf("arm %s: %w", name, err)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("arm %s: %w", name, err)
			case <-time.After(wait):
			}
		}
	}
	return nil
}

// passwordAlphabet leaves out characters easily confused when read off a
// terminal (0/O, 1/l/I).
const passwordAlphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// password returns a random 16-character demo password (about 93 bits).
func password() string {
	const n = 16
	out := make([]byte, 0, n)
	var b [1]byte
	for len(out) < n {
		_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
		// Rejection sampling keeps every character equally likely.
		if int(b[0]) >= 256-256%len(passwordAlphabet) {
			continue
		}
		out = append(out, passwordAlphabet[int(b[0])%len(passwordAlphabet)])
	}
	return string(out)
}

// Print writes what Load did for the operator: the logins in a table (the
// only time the passwords are shown), or that the demo was loaded before.
func Print(out io.Writer, r *Result, loginURL string) {
	if r.AlreadyLoaded {
		fmt.Fprintf(out, "\nThe demo organizations are already loaded (a customer named %q exists); their passwords were printed when they were loaded.\n", MarkerCustomer)
		return
	}
	fmt.Fprintf(out, "\nDemo organizations loaded: WatchTower, SecureCo, GuardAll, Acme (HQ, Warehouse, team Night Watch), Foo Corp; %d security systems, HQ Front Door and the Warehouse Loading Dock ARMED.\n", r.SecuritySystems)
	fmt.Fprintf(out, "Log in at %s with these accounts (the passwords are shown only this once):\n\n", loginURL)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  USERNAME\tPASSWORD\tORGANIZATION\tSHOWS")
	for _, lg := range r.Logins {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", lg.Username, lg.Password, lg.Organization, lg.Shows)
	}
	_ = tw.Flush()
}
