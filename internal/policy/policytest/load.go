package policytest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/realguardio/realguardio/internal/apiclient"
	"github.com/realguardio/realguardio/internal/policy"
)

// LoadOptions tunes Load.
type LoadOptions struct {
	// Password is the password of every account Load creates, once the
	// organizations' accounts have replaced Initial with it.
	Password string
	// Initial is the password the organization services' accounts
	// (organization administrators and employees) are created with. It is
	// someone else's choice, so the IAM has each account replace it at its
	// first login (docs/security.md): Load's login does that for the
	// administrators it logs in, and whoever logs an employee in first
	// must too. It must differ from Password.
	Initial string
	// Domain ends the e-mail address of every account Load creates
	// ("systemtest.invalid"), so that the tools loading worlds into one
	// system never take each other's names.
	Domain string
	// Parallel bounds the concurrent organization and account creations
	// (4 when zero): each costs an Argon2 hash in the IAM Service.
	Parallel int
	// Import creates the locations, the employees' location roles and the
	// security systems through the bulk imports (API.md, "Bulk import"),
	// one request per 10 000, as an onboarding would, instead of one
	// request each: for worlds of thousands. A Security System Service
	// without its import endpoint gets its systems one by one.
	Import bool
	// Bootstrap, when set, is the account admin acts as, standing for the
	// World's first admin instead of a new REALGUARDIO_ADMIN account.
	Bootstrap *LoadedUser
}

// LoginFunc logs in, for the first time, an account an organization
// service created with the initial password, replacing it with password on
// the IAM's change page as the person would
// (apiclient.Provider.LoginChangingPassword), and returns a client acting
// as it.
type LoginFunc func(ctx context.Context, username, initial, password string) (*apiclient.Client, error)

// LoadedUser is a World user created in a running system: its World id,
// the id the IAM Service assigned (the tokens' sub), its credentials and
// its employee id in its organization's service (empty for admins and
// outsiders).
type LoadedUser struct {
	WorldID, Subject   string
	Username, Password string
	EmployeeID         string
}

// Loaded is a World created in a running system through the public APIs,
// with the map between the World's ids and the ids the services assigned.
type Loaded struct {
	World *World
	// Users are the World's users by World id.
	Users map[string]*LoadedUser
	// OrgAdmins are the loader's own administrators of each World
	// organization, by World id: an account of every organization that
	// the World's own employees never change, so changes to them never
	// lock the loader's user out.
	OrgAdmins map[string]*apiclient.Client

	mu    sync.Mutex
	real  map[string]string // World id → real id (organizations, locations, teams, systems, users)
	world map[string]string // real id → World id
}

// Real returns the real id of a World id ("" when unknown).
func (l *Loaded) Real(worldID string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.real[worldID]
}

// WorldID returns the World id of a real id.
func (l *Loaded) WorldID(realID string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	id, ok := l.world[realID]
	return id, ok
}

func (l *Loaded) bind(worldID, realID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.real[worldID] = realID
	l.world[realID] = worldID
}

// addUser records a created user: its entry in Users and its ids.
func (l *Loaded) addUser(u *LoadedUser) {
	l.bind(u.WorldID, u.Subject)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.Users[u.WorldID] = u
}

// name is a readable name of a World id: FixedWorld's names, or the kind
// and the id's first characters.
func name(kind, worldID string) string {
	if n := Names(worldID)[0]; n != worldID {
		return n
	}
	return kind + " " + worldID[:8]
}

// Load creates w in the running system through the public APIs, as the
// organizations' administrators would, in the order the services need:
// organizations (each with an administrator account of the loader's, by
// login), employees with their roles and schedules, admins and outsiders
// as IAM accounts, the dealers' monitoring providers, locations and their
// dealers, teams and members, location roles, and security systems. A
// dealer's provider, a location's dealer and a system's location are known
// to the service from events, so those calls retry an unknown reference.
// Only the organization and account creations run in parallel: each costs
// an Argon2 hash in the IAM, the rest is cheap. admin is a
// REALGUARDIO_ADMIN's client. Load does not wait for convergence; every
// error names the World's seed.
func Load(ctx context.Context, admin *apiclient.Client, login LoginFunc, w *World, opts LoadOptions) (*Loaded, error) {
	l := &Loaded{World: w, Users: map[string]*LoadedUser{}, OrgAdmins: map[string]*apiclient.Client{},
		real: map[string]string{}, world: map[string]string{}}
	if err := l.load(ctx, admin, login, opts); err != nil {
		return nil, fmt.Errorf("load world (seed %d): %w", w.Seed, err)
	}
	return l, nil
}

func (l *Loaded) load(ctx context.Context, admin *apiclient.Client, login LoginFunc, opts LoadOptions) error {
	w := l.World
	if opts.Initial == "" || opts.Initial == opts.Password {
		return errors.New("LoadOptions.Initial must be set and differ from Password: the IAM has an initial password replaced at the first login")
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 4
	}
	username := func(worldID string) string {
		n := Names(worldID)[0]
		if n == worldID {
			n = "user-" + worldID[:8]
		}
		return n + "@world." + opts.Domain
	}

	// Organizations, in parallel: each creation provisions an account.
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
	g.SetLimit(opts.Parallel)
	for _, o := range orgs {
		g.Go(func() error {
			n := name(string(o.kind), o.id)
			email := "admin-" + strings.ReplaceAll(n, " ", "-") + "@org." + opts.Domain
			created, err := admin.CreateOrganization(gctx, o.kind, n,
				apiclient.NewEmployee{Email: email, FirstName: "Org", LastName: "Admin", Password: opts.Initial})
			if err != nil {
				return fmt.Errorf("create %s: %w", n, err)
			}
			c, err := login(gctx, email, opts.Initial, opts.Password)
			if err != nil {
				return fmt.Errorf("log in the administrator of %s: %w", n, err)
			}
			l.bind(o.id, created.ID)
			l.mu.Lock()
			l.OrgAdmins[o.id] = c
			l.mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}

	// Employees with their roles and schedules, admins and outsiders.
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(opts.Parallel)
	for _, e := range w.Employees {
		g.Go(func() error {
			u := &LoadedUser{WorldID: e.UserID, Username: username(e.UserID), Password: opts.Password}
			oa, orgID := l.OrgAdmins[e.OrgID], l.Real(e.OrgID) // written before this group
			n := name("user", e.UserID)
			emp, err := oa.CreateEmployee(gctx, e.OrgKind, orgID, apiclient.NewEmployee{Email: u.Username, FirstName: n, LastName: "World", Password: opts.Initial})
			if err != nil {
				return fmt.Errorf("create employee %s: %w", n, err)
			}
			u.EmployeeID, u.Subject = emp.ID, emp.UserID
			if len(e.Roles) > 0 {
				if _, err := oa.SetEmployeeRoles(gctx, e.OrgKind, orgID, emp.ID, e.Roles); err != nil {
					return fmt.Errorf("set the roles of %s: %w", n, err)
				}
			}
			if e.Schedule != nil {
				if err := oa.SetSchedule(gctx, e.OrgKind, orgID, emp.ID, *e.Schedule); err != nil {
					return fmt.Errorf("set the schedule of %s: %w", n, err)
				}
			}
			l.addUser(u)
			return nil
		})
	}
	accounts := func(ids []string, appRoles []string) {
		for i, id := range ids {
			g.Go(func() error {
				u := &LoadedUser{WorldID: id, Username: username(id), Password: opts.Password}
				if opts.Bootstrap != nil && i == 0 && slices.Contains(appRoles, policy.AppRoleAdmin) {
					u.Username, u.Password, u.Subject = opts.Bootstrap.Username, opts.Bootstrap.Password, opts.Bootstrap.Subject
				} else {
					created, err := admin.CreateUser(gctx, u.Username, u.Password, appRoles)
					if err != nil {
						return fmt.Errorf("create the account %s: %w", u.Username, err)
					}
					u.Subject = created.ID
				}
				l.addUser(u)
				return nil
			})
		}
	}
	accounts(w.Admins, []string{policy.AppRoleAdmin})
	accounts(w.Outsiders, nil)
	if err := g.Wait(); err != nil {
		return err
	}

	// The dealers' providers: the Dealer Service knows a provider from the
	// Monitoring Provider Service's events, so it may not know it yet.
	for _, d := range w.Dealers {
		if d.MonitoringProviderID == "" {
			continue
		}
		if err := apiclient.RetryUnknownReference(ctx, func(ctx context.Context) error {
			return l.OrgAdmins[d.ID].SetDealerMonitoringProvider(ctx, l.Real(d.ID), l.Real(d.MonitoringProviderID))
		}); err != nil {
			return fmt.Errorf("set the provider of dealer %s: %w", name("dealer", d.ID), err)
		}
	}
	// Locations, with their dealers (known to the Customer Service from
	// the Dealer Service's events).
	if opts.Import {
		if err := l.importLocations(ctx); err != nil {
			return err
		}
	} else {
		for _, loc := range w.Locations {
			var created apiclient.Location
			if err := apiclient.RetryUnknownReference(ctx, func(ctx context.Context) error {
				var err error
				created, err = l.OrgAdmins[loc.CustomerID].CreateLocation(ctx, l.Real(loc.CustomerID), name("location", loc.ID), l.Real(loc.DealerID))
				return err
			}); err != nil {
				return fmt.Errorf("create location %s: %w", name("location", loc.ID), err)
			}
			l.bind(loc.ID, created.ID)
		}
	}
	for _, t := range w.Teams {
		oa, cust := l.OrgAdmins[t.CustomerID], l.Real(t.CustomerID)
		created, err := oa.CreateTeam(ctx, cust, name("team", t.ID))
		if err != nil {
			return fmt.Errorf("create team %s: %w", name("team", t.ID), err)
		}
		l.bind(t.ID, created.ID)
		for _, m := range t.Members {
			if err := oa.AddTeamMember(ctx, cust, created.ID, l.Users[m].EmployeeID); err != nil {
				return fmt.Errorf("add %s to team %s: %w", name("user", m), name("team", t.ID), err)
			}
		}
	}
	if opts.Import {
		if err := l.importLocationRoles(ctx); err != nil {
			return err
		}
	} else {
		for _, lr := range w.EmployeeLocationRoles {
			loc, _ := w.Location(lr.LocationID)
			if err := l.OrgAdmins[loc.CustomerID].SetLocationEmployeeRoles(ctx, l.Real(loc.CustomerID), l.Real(lr.LocationID), l.Users[lr.UserID].EmployeeID, lr.Roles); err != nil {
				return fmt.Errorf("set the roles of %s at %s: %w", name("user", lr.UserID), name("location", lr.LocationID), err)
			}
		}
	}
	for _, tr := range w.TeamLocationRoles {
		loc, _ := w.Location(tr.LocationID)
		if err := l.OrgAdmins[loc.CustomerID].SetLocationTeamRoles(ctx, l.Real(loc.CustomerID), l.Real(tr.LocationID), l.Real(tr.TeamID), tr.Roles); err != nil {
			return fmt.Errorf("set the roles of team %s at %s: %w", name("team", tr.TeamID), name("location", tr.LocationID), err)
		}
	}
	// Security systems, created by the admin; the Security System Service
	// may learn of a new location from events.
	if opts.Import {
		return l.importSecuritySystems(ctx, admin)
	}
	return l.createSecuritySystems(ctx, admin, 0, len(w.SecuritySystems))
}

// importBatch is the number of items Load sends per bulk import, API.md's
// maximum.
const importBatch = 10000

// batches calls fn with consecutive index ranges [lo, hi) of at most
// importBatch of n items.
func batches(n int, fn func(lo, hi int) error) error {
	for lo := 0; lo < n; lo += importBatch {
		if err := fn(lo, min(lo+importBatch, n)); err != nil {
			return err
		}
	}
	return nil
}

// importLocations creates every World location through the customers'
// bulk import (POST /customers/{id}/locations/import), one request per
// customer and 10 000 locations, as a customer onboarding its sites would.
// A location's dealer is known to the Customer Service from events, so a
// request naming a dealer just created is retried.
func (l *Loaded) importLocations(ctx context.Context) error {
	byCustomer := map[string][]int{}
	var order []string
	for i, loc := range l.World.Locations {
		if _, ok := byCustomer[loc.CustomerID]; !ok {
			order = append(order, loc.CustomerID)
		}
		byCustomer[loc.CustomerID] = append(byCustomer[loc.CustomerID], i)
	}
	for _, cust := range order {
		idx := byCustomer[cust]
		err := batches(len(idx), func(lo, hi int) error {
			items := make([]map[string]any, 0, hi-lo)
			for _, i := range idx[lo:hi] {
				loc := l.World.Locations[i]
				item := map[string]any{"name": name("location", loc.ID)}
				if d := loc.DealerID; d != "" {
					item["dealerId"] = l.Real(d)
				}
				items = append(items, item)
			}
			var out struct {
				IDs []string `json:"ids"`
			}
			err := apiclient.RetryUnknownReference(ctx, func(ctx context.Context) error {
				_, err := l.OrgAdmins[cust].Do(ctx, apiclient.ServiceCustomer, "POST", "/customers/"+l.Real(cust)+"/locations/import",
					map[string]any{"locations": items}, &out)
				return err
			})
			if err != nil {
				return fmt.Errorf("import %d locations: %w", hi-lo, err)
			}
			if len(out.IDs) != hi-lo {
				return fmt.Errorf("import of %d locations answered %d ids", hi-lo, len(out.IDs))
			}
			for k, i := range idx[lo:hi] {
				l.bind(l.World.Locations[i].ID, out.IDs[k])
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// importLocationRoles grants every World employee location role through
// the customers' bulk import (POST /customers/{id}/location-roles/import).
func (l *Loaded) importLocationRoles(ctx context.Context) error {
	byCustomer := map[string][]map[string]any{}
	var order []string
	for _, lr := range l.World.EmployeeLocationRoles {
		loc, _ := l.World.Location(lr.LocationID)
		if _, ok := byCustomer[loc.CustomerID]; !ok {
			order = append(order, loc.CustomerID)
		}
		byCustomer[loc.CustomerID] = append(byCustomer[loc.CustomerID], map[string]any{
			"locationId": l.Real(lr.LocationID), "employeeId": l.Users[lr.UserID].EmployeeID, "roles": lr.Roles})
	}
	for _, cust := range order {
		grants := byCustomer[cust]
		err := batches(len(grants), func(lo, hi int) error {
			_, err := l.OrgAdmins[cust].Do(ctx, apiclient.ServiceCustomer, "POST", "/customers/"+l.Real(cust)+"/location-roles/import",
				map[string]any{"grants": grants[lo:hi]}, nil)
			if err != nil {
				return fmt.Errorf("import %d location roles: %w", hi-lo, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// importSecuritySystems creates every World system through POST
// /securitysystems/import (API.md, "Bulk import"). A Security System
// Service without that endpoint (404 or 405) gets them one by one, so a
// load runs against either. The service knows new locations from events,
// so a request naming one is retried.
func (l *Loaded) importSecuritySystems(ctx context.Context, admin *apiclient.Client) error {
	systems := l.World.SecuritySystems
	return batches(len(systems), func(lo, hi int) error {
		items := make([]map[string]any, 0, hi-lo)
		for _, ss := range systems[lo:hi] {
			items = append(items, map[string]any{"locationId": l.Real(ss.LocationID), "name": name("system", ss.ID)})
		}
		var out struct {
			IDs []string `json:"ids"`
		}
		err := apiclient.RetryUnknownReference(ctx, func(ctx context.Context) error {
			_, err := admin.Do(ctx, apiclient.ServiceSecuritySystem, "POST", "/securitysystems/import", map[string]any{"securitySystems": items}, &out)
			return err
		})
		if missingEndpoint(err) {
			return l.createSecuritySystems(ctx, admin, lo, hi)
		}
		if err != nil {
			return fmt.Errorf("import %d security systems: %w", hi-lo, err)
		}
		if len(out.IDs) != hi-lo {
			return fmt.Errorf("import of %d security systems answered %d ids", hi-lo, len(out.IDs))
		}
		for k := range out.IDs {
			l.bind(systems[lo+k].ID, out.IDs[k])
		}
		return nil
	})
}

// createSecuritySystems creates systems lo to hi one request each.
func (l *Loaded) createSecuritySystems(ctx context.Context, admin *apiclient.Client, lo, hi int) error {
	for _, ss := range l.World.SecuritySystems[lo:hi] {
		var created apiclient.SecuritySystem
		if err := apiclient.RetryUnknownReference(ctx, func(ctx context.Context) error {
			var err error
			created, err = admin.CreateSecuritySystem(ctx, l.Real(ss.LocationID), name("system", ss.ID))
			return err
		}); err != nil {
			return fmt.Errorf("create security system %s: %w", name("system", ss.ID), err)
		}
		l.bind(ss.ID, created.ID)
	}
	return nil
}

// missingEndpoint reports an answer saying the service has no such route
// (404 or 405): a service older than the endpoint.
func missingEndpoint(err error) bool {
	var ae *apiclient.Error
	return errors.As(err, &ae) && (ae.Status() == http.StatusNotFound || ae.Status() == http.StatusMethodNotAllowed)
}
