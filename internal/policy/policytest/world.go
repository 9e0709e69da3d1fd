// Package policytest generates organizations, their authorization facts and
// decision cases for conformance tests (AUTHZ.md, "Conformance"): every
// strategy and the OpenFGA model must decide each generated case exactly as
// policy.IsAllowed does over the World's facts.
//
// Everything is deterministic in the seed (ids are UUIDv5 derived from it,
// randomness comes from the caller's *rand.Rand), so a failing case can be
// reproduced from the seed printed by the test.
package policytest

import (
	"cmp"
	"fmt"
	"math/rand"
	"slices"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/policy"
)

// Size chooses how many organizations and facts Generate produces.
type Size int

// The sizes of generated worlds. Small suits tests that replay the world
// through running services; Large suits the pure and in-process checks.
const (
	Small Size = iota
	Medium
	Large
)

// String returns the flag spelling of the size ("small", "medium", "large").
func (s Size) String() string {
	switch s {
	case Small:
		return "small"
	case Medium:
		return "medium"
	case Large:
		return "large"
	}
	return fmt.Sprintf("Size(%d)", int(s))
}

// ParseSize parses the flag spelling of a size, so tests can offer a
// -policy.size flag.
func ParseSize(s string) (Size, error) {
	switch s {
	case "small":
		return Small, nil
	case "medium":
		return Medium, nil
	case "large":
		return Large, nil
	}
	return 0, fmt.Errorf("unknown size %q (small, medium, large)", s)
}

type dims struct {
	customers, locationsPerCustomer, dealers, providers   int
	employeesPerOrg, teamsPerCustomer, systemsPerLocation int
	admins, outsiders                                     int
}

func (s Size) dims() dims {
	switch s {
	case Medium:
		return dims{4, 4, 3, 2, 6, 2, 2, 1, 1}
	case Large:
		return dims{16, 8, 8, 4, 12, 4, 2, 2, 2}
	}
	return dims{2, 3, 2, 1, 4, 1, 1, 1, 1}
}

// Customer is a customer organization.
type Customer struct {
	ID string
}

// Dealer is a security system dealer and the monitoring provider it uses.
type Dealer struct {
	ID string
	// MonitoringProviderID is empty when the dealer uses no provider.
	MonitoringProviderID string
}

// MonitoringProvider is a monitoring provider organization.
type MonitoringProvider struct {
	ID string
}

// Location is a customer's location and the dealer servicing it.
type Location struct {
	ID         string
	CustomerID string
	// DealerID is empty when no dealer services the location.
	DealerID string
}

// Employee is a user employed by one organization, with the organization
// roles held there and an optional schedule.
type Employee struct {
	// UserID is the IAM user id (the token's sub). The services' own
	// employee ids are theirs to assign; a replaying test maps between them.
	UserID  string
	OrgKind policy.OrgKind
	OrgID   string
	// Roles are the organization roles, sorted; possibly empty.
	Roles []string
	// Schedule is nil for an unrestricted employee.
	Schedule *policy.Schedule
}

// Team is a customer's team and its members' user ids (sorted).
type Team struct {
	ID         string
	CustomerID string
	Members    []string
}

// EmployeeLocationRole is the set of roles a customer employee holds
// directly at a location. The World never holds an empty set: setting []
// removes the entry, as the API's "[] revokes" does.
type EmployeeLocationRole struct {
	LocationID string
	UserID     string
	Roles      []string
}

// TeamLocationRole is the set of roles a team holds at a location, never
// empty in a World.
type TeamLocationRole struct {
	LocationID string
	TeamID     string
	Roles      []string
}

// SecuritySystem is a security system at a location.
type SecuritySystem struct {
	ID         string
	LocationID string
}

// World is a generated set of organizations and every fact the security
// system rule reads. Slices are in a stable order (creation order for
// entities, sorted by key for location roles) so iteration is reproducible;
// change it only through Mutate, which keeps the indexes consistent.
type World struct {
	Seed                  int64
	Size                  Size
	Customers             []Customer
	Dealers               []Dealer
	MonitoringProviders   []MonitoringProvider
	Locations             []Location
	Employees             []Employee
	Teams                 []Team
	EmployeeLocationRoles []EmployeeLocationRole
	TeamLocationRoles     []TeamLocationRole
	SecuritySystems       []SecuritySystem
	// Admins are users holding REALGUARDIO_ADMIN and employed by nobody.
	Admins []string
	// Outsiders are users with no organization and no application role;
	// every decision about them must be a denial.
	Outsiders []string

	ids      int
	employee map[string]int // user id -> index in Employees
	location map[string]int
	team     map[string]int
	dealer   map[string]int
	system   map[string]int
}

// idNamespace makes generated ids distinct from any other UUIDv5 use.
var idNamespace = uuid.MustParse("7d1f5c7e-3b1a-4d5e-9a51-6f0c2e0b9a11")

// newID returns the next id of the world: a UUIDv5 of the seed, the kind and
// a counter, so the same seed always yields the same ids.
func (w *World) newID(kind string) string {
	w.ids++
	return uuid.NewSHA1(idNamespace, fmt.Appendf(nil, "%d/%s/%d", w.Seed, kind, w.ids)).String()
}

// Generate builds a world of the given size from seed. The same seed and
// size always produce the same world.
func Generate(seed int64, size Size) *World {
	rng := rand.New(rand.NewSource(seed))
	d := size.dims()
	w := &World{Seed: seed, Size: size}
	for range d.providers {
		w.MonitoringProviders = append(w.MonitoringProviders, MonitoringProvider{ID: w.newID("provider")})
	}
	for i := range d.dealers {
		dl := Dealer{ID: w.newID("dealer")}
		// Most dealers use a provider; the last one never does, so the
		// "no provider" branch of the rule is always exercised.
		if i == 0 || (i != d.dealers-1 && rng.Intn(5) != 0) {
			dl.MonitoringProviderID = w.MonitoringProviders[rng.Intn(len(w.MonitoringProviders))].ID
		}
		w.Dealers = append(w.Dealers, dl)
	}
	for range d.customers {
		w.Customers = append(w.Customers, Customer{ID: w.newID("customer")})
	}
	for ci, c := range w.Customers {
		for li := range d.locationsPerCustomer {
			l := Location{ID: w.newID("location"), CustomerID: c.ID}
			// The first location of the first customer has no dealer, so
			// that branch of the rule always appears.
			if !(ci == 0 && li == 0) && rng.Intn(4) != 0 {
				l.DealerID = w.Dealers[rng.Intn(len(w.Dealers))].ID
			}
			w.Locations = append(w.Locations, l)
		}
	}
	addEmployees := func(kind policy.OrgKind, orgID string) {
		for i := range d.employeesPerOrg {
			e := Employee{UserID: w.newID("user"), OrgKind: kind, OrgID: orgID}
			// The first employee of each organization is its administrator
			// and holds no security system role; the others get random ones.
			if i == 0 {
				e.Roles = []string{adminRole(kind)}
			} else {
				e.Roles = randomRoles(rng, policy.OrganizationRoles(kind), 3)
			}
			if i > 0 && rng.Intn(3) == 0 {
				s := RandomSchedule(rng)
				e.Schedule = &s
			}
			w.Employees = append(w.Employees, e)
		}
	}
	for _, c := range w.Customers {
		addEmployees(policy.OrgCustomer, c.ID)
	}
	for _, dl := range w.Dealers {
		addEmployees(policy.OrgDealer, dl.ID)
	}
	for _, p := range w.MonitoringProviders {
		addEmployees(policy.OrgMonitoringProvider, p.ID)
	}
	for _, c := range w.Customers {
		for range d.teamsPerCustomer {
			t := Team{ID: w.newID("team"), CustomerID: c.ID}
			for _, e := range w.Employees {
				if e.OrgID == c.ID && rng.Intn(2) == 0 {
					t.Members = append(t.Members, e.UserID)
				}
			}
			slices.Sort(t.Members)
			w.Teams = append(w.Teams, t)
		}
	}
	for range d.admins {
		w.Admins = append(w.Admins, w.newID("user"))
	}
	for range d.outsiders {
		w.Outsiders = append(w.Outsiders, w.newID("user"))
	}
	w.reindex()
	for _, l := range w.Locations {
		for _, e := range w.Employees {
			if e.OrgID == l.CustomerID && rng.Intn(3) == 0 {
				w.setEmployeeLocationRoles(l.ID, e.UserID, randomRoles(rng, policy.SecuritySystemRoles, 2))
			}
		}
		for _, t := range w.Teams {
			if t.CustomerID == l.CustomerID && rng.Intn(2) == 0 {
				w.setTeamLocationRoles(l.ID, t.ID, randomRoles(rng, policy.SecuritySystemRoles, 2))
			}
		}
		for range 1 + rng.Intn(d.systemsPerLocation) {
			w.SecuritySystems = append(w.SecuritySystems, SecuritySystem{ID: w.newID("system"), LocationID: l.ID})
		}
	}
	w.reindex()
	w.ensureEveryKind(rng)
	return w
}

// ensureEveryKind adds the facts chance may have left out, so that even a
// Small world exercises every branch of the rule: a direct and a team
// location role, a team member, a day and a night schedule.
func (w *World) ensureEveryKind(rng *rand.Rand) {
	c := w.Customers[0]
	staff := w.customerEmployees(c.ID)
	l := w.Locations[0] // the first customer's, without a dealer
	// A location served by a dealer with a provider, and one by a dealer
	// without (dealer 0 always has one, the last never).
	w.Locations[1].DealerID = w.Dealers[0].ID
	w.Locations[2].DealerID = w.Dealers[len(w.Dealers)-1].ID
	if len(w.EmployeeLocationRoles) == 0 {
		w.setEmployeeLocationRoles(l.ID, staff[1], []string{policy.RoleArmer})
	}
	if len(w.TeamLocationRoles) == 0 {
		w.setTeamLocationRoles(l.ID, w.Teams[0].ID, []string{policy.RoleDisarmer})
	}
	if t := &w.Teams[0]; len(t.Members) == 0 {
		t.Members = []string{staff[len(staff)-1]}
	}
	night := policy.Schedule{TimeZone: Zones[rng.Intn(len(Zones))], Shifts: []policy.Shift{
		{Weekdays: []string{"FRI", "SAT"}, Start: "22:00", End: "06:00"},
	}}
	day := policy.Schedule{TimeZone: "Europe/Berlin", Shifts: []policy.Shift{
		{Weekdays: []string{"MON", "TUE", "WED", "THU", "FRI"}, Start: "09:00", End: "17:00"},
	}}
	w.Employees[w.employee[staff[1]]].Schedule = &night
	w.Employees[w.employee[staff[2]]].Schedule = &day
}

func adminRole(kind policy.OrgKind) string {
	switch kind {
	case policy.OrgDealer:
		return policy.RoleDealerEmployeeAdministrator
	case policy.OrgMonitoringProvider:
		return policy.RoleMonitoringProviderEmployeeAdministrator
	}
	return policy.RoleCustomerEmployeeAdministrator
}

// randomRoles returns a sorted random subset of from with at most max
// elements, possibly empty.
func randomRoles(rng *rand.Rand, from []string, max int) []string {
	n := rng.Intn(max + 1)
	perm := rng.Perm(len(from))
	out := []string{}
	for _, i := range perm[:min(n, len(from))] {
		out = append(out, from[i])
	}
	slices.Sort(out)
	return out
}

func (w *World) reindex() {
	w.employee = make(map[string]int, len(w.Employees))
	for i, e := range w.Employees {
		w.employee[e.UserID] = i
	}
	w.location = make(map[string]int, len(w.Locations))
	for i, l := range w.Locations {
		w.location[l.ID] = i
	}
	w.team = make(map[string]int, len(w.Teams))
	for i, t := range w.Teams {
		w.team[t.ID] = i
	}
	w.dealer = make(map[string]int, len(w.Dealers))
	for i, d := range w.Dealers {
		w.dealer[d.ID] = i
	}
	w.system = make(map[string]int, len(w.SecuritySystems))
	for i, s := range w.SecuritySystems {
		w.system[s.ID] = i
	}
}

// setEmployeeLocationRoles replaces a location role set, keeping the slice
// sorted by (location, user) and dropping empty sets.
func (w *World) setEmployeeLocationRoles(locationID, userID string, roles []string) {
	cmpKey := func(r EmployeeLocationRole, _ struct{}) int {
		return cmp.Or(cmp.Compare(r.LocationID, locationID), cmp.Compare(r.UserID, userID))
	}
	i, found := slices.BinarySearchFunc(w.EmployeeLocationRoles, struct{}{}, cmpKey)
	switch {
	case len(roles) == 0 && found:
		w.EmployeeLocationRoles = slices.Delete(w.EmployeeLocationRoles, i, i+1)
	case len(roles) == 0:
	case found:
		w.EmployeeLocationRoles[i].Roles = slices.Clone(roles)
	default:
		w.EmployeeLocationRoles = slices.Insert(w.EmployeeLocationRoles, i,
			EmployeeLocationRole{LocationID: locationID, UserID: userID, Roles: slices.Clone(roles)})
	}
}

// setTeamLocationRoles is setEmployeeLocationRoles for teams.
func (w *World) setTeamLocationRoles(locationID, teamID string, roles []string) {
	cmpKey := func(r TeamLocationRole, _ struct{}) int {
		return cmp.Or(cmp.Compare(r.LocationID, locationID), cmp.Compare(r.TeamID, teamID))
	}
	i, found := slices.BinarySearchFunc(w.TeamLocationRoles, struct{}{}, cmpKey)
	switch {
	case len(roles) == 0 && found:
		w.TeamLocationRoles = slices.Delete(w.TeamLocationRoles, i, i+1)
	case len(roles) == 0:
	case found:
		w.TeamLocationRoles[i].Roles = slices.Clone(roles)
	default:
		w.TeamLocationRoles = slices.Insert(w.TeamLocationRoles, i,
			TeamLocationRole{LocationID: locationID, TeamID: teamID, Roles: slices.Clone(roles)})
	}
}

// Clone returns a deep copy, so a test can keep the world as it was before
// a Mutate.
func (w *World) Clone() *World {
	c := *w
	c.Customers = slices.Clone(w.Customers)
	c.Dealers = slices.Clone(w.Dealers)
	c.MonitoringProviders = slices.Clone(w.MonitoringProviders)
	c.Locations = slices.Clone(w.Locations)
	c.Employees = slices.Clone(w.Employees)
	for i := range c.Employees {
		c.Employees[i].Roles = slices.Clone(c.Employees[i].Roles)
		c.Employees[i].Schedule = cloneSchedule(c.Employees[i].Schedule)
	}
	c.Teams = slices.Clone(w.Teams)
	for i := range c.Teams {
		c.Teams[i].Members = slices.Clone(c.Teams[i].Members)
	}
	c.EmployeeLocationRoles = slices.Clone(w.EmployeeLocationRoles)
	for i := range c.EmployeeLocationRoles {
		c.EmployeeLocationRoles[i].Roles = slices.Clone(c.EmployeeLocationRoles[i].Roles)
	}
	c.TeamLocationRoles = slices.Clone(w.TeamLocationRoles)
	for i := range c.TeamLocationRoles {
		c.TeamLocationRoles[i].Roles = slices.Clone(c.TeamLocationRoles[i].Roles)
	}
	c.SecuritySystems = slices.Clone(w.SecuritySystems)
	c.Admins = slices.Clone(w.Admins)
	c.Outsiders = slices.Clone(w.Outsiders)
	c.reindex()
	return &c
}

func cloneSchedule(s *policy.Schedule) *policy.Schedule {
	if s == nil {
		return nil
	}
	c := policy.Schedule{TimeZone: s.TimeZone, Shifts: slices.Clone(s.Shifts)}
	for i := range c.Shifts {
		c.Shifts[i].Weekdays = slices.Clone(c.Shifts[i].Weekdays)
	}
	return &c
}

// Employee returns the employee with the user id, if any.
func (w *World) Employee(userID string) (Employee, bool) {
	i, ok := w.employee[userID]
	if !ok {
		return Employee{}, false
	}
	return w.Employees[i], true
}

// Location returns the location with the id, if any.
func (w *World) Location(id string) (Location, bool) {
	i, ok := w.location[id]
	if !ok {
		return Location{}, false
	}
	return w.Locations[i], true
}

// Users returns every user id of the world: employees, admins and
// outsiders, in a stable order.
func (w *World) Users() []string {
	out := make([]string, 0, len(w.Employees)+len(w.Admins)+len(w.Outsiders))
	for _, e := range w.Employees {
		out = append(out, e.UserID)
	}
	out = append(out, w.Admins...)
	return append(out, w.Outsiders...)
}

// Systems returns every security system id in a stable order.
func (w *World) Systems() []string {
	out := make([]string, len(w.SecuritySystems))
	for i, s := range w.SecuritySystems {
		out[i] = s.ID
	}
	return out
}

// AppRoles returns the application roles the IAM Service would put in the
// user's token: the employee role of the employing organization's kind, or
// REALGUARDIO_ADMIN for an admin, or none.
func (w *World) AppRoles(userID string) []string {
	if e, ok := w.Employee(userID); ok {
		switch e.OrgKind {
		case policy.OrgCustomer:
			return []string{"CUSTOMER_EMPLOYEE"}
		case policy.OrgDealer:
			return []string{"SECURITY_SYSTEM_DEALER_EMPLOYEE"}
		case policy.OrgMonitoringProvider:
			return []string{"MONITORING_PROVIDER_EMPLOYEE"}
		}
	}
	if slices.Contains(w.Admins, userID) {
		return []string{policy.AppRoleAdmin}
	}
	return nil
}

// Subject derives the user-side facts of the reference rule: the
// employment and organization roles, the union of direct and team location
// roles per location, and the schedule. appRoles are taken as given so a
// test can vary them.
func (w *World) Subject(userID string, appRoles []string) policy.Subject {
	s := policy.Subject{UserID: userID, AppRoles: slices.Clone(appRoles), LocationRoles: map[string][]string{}}
	e, ok := w.Employee(userID)
	if !ok {
		return s
	}
	s.Org = &policy.Membership{Kind: e.OrgKind, ID: e.OrgID, Roles: slices.Clone(e.Roles)}
	s.Schedule = cloneSchedule(e.Schedule)
	add := func(loc string, roles []string) {
		for _, r := range roles {
			if !slices.Contains(s.LocationRoles[loc], r) {
				s.LocationRoles[loc] = append(s.LocationRoles[loc], r)
			}
		}
	}
	for _, r := range w.EmployeeLocationRoles {
		if r.UserID == userID {
			add(r.LocationID, r.Roles)
		}
	}
	for _, r := range w.TeamLocationRoles {
		if t := w.Teams[w.team[r.TeamID]]; slices.Contains(t.Members, userID) {
			add(r.LocationID, r.Roles)
		}
	}
	for loc := range s.LocationRoles {
		slices.Sort(s.LocationRoles[loc])
	}
	return s
}

// Resource derives the resource-side facts of the reference rule for a
// security system: its location, the location's customer and dealer, and
// the dealer's provider. An unknown id yields a Resource with only the id.
func (w *World) Resource(securitySystemID string) policy.Resource {
	r := policy.Resource{SecuritySystemID: securitySystemID}
	i, ok := w.system[securitySystemID]
	if !ok {
		return r
	}
	l := w.Locations[w.location[w.SecuritySystems[i].LocationID]]
	r.LocationID, r.CustomerID, r.DealerID = l.ID, l.CustomerID, l.DealerID
	if l.DealerID != "" {
		r.MonitoringProviderID = w.Dealers[w.dealer[l.DealerID]].MonitoringProviderID
	}
	return r
}
