package policytest

import (
	"fmt"
	"math/rand"
	"slices"

	"github.com/realguardio/realguardio/internal/policy"
)

// ChangeKind names the kind of a Change; each maps to one public API call
// (API.md) that a replaying test makes.
type ChangeKind string

// The kinds of change Mutate makes.
const (
	// ChangeOrgRoles replaces an employee's organization roles:
	// PUT /{customers|dealers|monitoring-providers}/{OrgID}/employees/{employee of UserID}/roles {"roles": Roles}.
	ChangeOrgRoles ChangeKind = "org_roles"
	// ChangeSchedule sets (Schedule non-nil: PUT .../schedule) or clears
	// (Schedule nil: DELETE .../schedule) an employee's schedule.
	ChangeSchedule ChangeKind = "schedule"
	// ChangeEmployeeLocationRoles replaces a customer employee's roles at a
	// location, [] revoking: PUT /customers/{CustomerID}/locations/{LocationID}/employee-roles/{employee of UserID}.
	ChangeEmployeeLocationRoles ChangeKind = "employee_location_roles"
	// ChangeTeamLocationRoles replaces a team's roles at a location, []
	// revoking: PUT /customers/{CustomerID}/locations/{LocationID}/team-roles/{TeamID}.
	ChangeTeamLocationRoles ChangeKind = "team_location_roles"
	// ChangeLocationDealer sets a location's dealer, "" clearing it:
	// PUT /customers/{CustomerID}/locations/{LocationID}/dealer {"dealerId": DealerID or null}.
	ChangeLocationDealer ChangeKind = "location_dealer"
	// ChangeTeamMemberAdded adds UserID to TeamID:
	// PUT /customers/{CustomerID}/teams/{TeamID}/members/{employee of UserID}.
	ChangeTeamMemberAdded ChangeKind = "team_member_added"
	// ChangeTeamMemberRemoved removes UserID from TeamID:
	// DELETE /customers/{CustomerID}/teams/{TeamID}/members/{employee of UserID}.
	ChangeTeamMemberRemoved ChangeKind = "team_member_removed"
	// ChangeDealerProvider sets a dealer's monitoring provider, "" clearing
	// it: PUT /dealers/{DealerID}/monitoring-provider {"monitoringProviderId": MonitoringProviderID or null}.
	ChangeDealerProvider ChangeKind = "dealer_provider"
)

// Change describes one change Mutate applied, with every id and value a
// test needs to replay it through the services' public APIs. Fields not
// used by the Kind are empty.
type Change struct {
	Kind ChangeKind
	// OrgKind and OrgID are the employing organization for ChangeOrgRoles
	// and ChangeSchedule.
	OrgKind policy.OrgKind
	OrgID   string
	// UserID is the employee concerned (IAM user id).
	UserID string
	// CustomerID owns LocationID and TeamID.
	CustomerID string
	LocationID string
	TeamID     string
	// DealerID is the dealer changed (ChangeDealerProvider) or the new
	// dealer of the location ("" for none, ChangeLocationDealer).
	DealerID string
	// MonitoringProviderID is the dealer's new provider, "" for none.
	MonitoringProviderID string
	// Roles is the complete new role set (the APIs replace sets); an empty,
	// non-nil slice revokes everything.
	Roles []string
	// Schedule is the new schedule, nil when cleared.
	Schedule *policy.Schedule
}

// String describes the change for test failure messages.
func (c Change) String() string {
	switch c.Kind {
	case ChangeOrgRoles:
		return fmt.Sprintf("org roles of user %s in %s %s := %v", c.UserID, c.OrgKind, c.OrgID, c.Roles)
	case ChangeSchedule:
		if c.Schedule == nil {
			return fmt.Sprintf("schedule of user %s (%s %s) cleared", c.UserID, c.OrgKind, c.OrgID)
		}
		return fmt.Sprintf("schedule of user %s (%s %s) := %+v", c.UserID, c.OrgKind, c.OrgID, *c.Schedule)
	case ChangeEmployeeLocationRoles:
		return fmt.Sprintf("roles of user %s at location %s (customer %s) := %v", c.UserID, c.LocationID, c.CustomerID, c.Roles)
	case ChangeTeamLocationRoles:
		return fmt.Sprintf("roles of team %s at location %s (customer %s) := %v", c.TeamID, c.LocationID, c.CustomerID, c.Roles)
	case ChangeLocationDealer:
		return fmt.Sprintf("dealer of location %s (customer %s) := %q", c.LocationID, c.CustomerID, c.DealerID)
	case ChangeTeamMemberAdded:
		return fmt.Sprintf("user %s added to team %s (customer %s)", c.UserID, c.TeamID, c.CustomerID)
	case ChangeTeamMemberRemoved:
		return fmt.Sprintf("user %s removed from team %s (customer %s)", c.UserID, c.TeamID, c.CustomerID)
	case ChangeDealerProvider:
		return fmt.Sprintf("monitoring provider of dealer %s := %q", c.DealerID, c.MonitoringProviderID)
	}
	return fmt.Sprintf("%+v", c.Kind)
}

var changeKinds = []ChangeKind{
	ChangeOrgRoles, ChangeSchedule, ChangeEmployeeLocationRoles, ChangeTeamLocationRoles,
	ChangeLocationDealer, ChangeTeamMemberAdded, ChangeTeamMemberRemoved, ChangeDealerProvider,
}

// Mutate applies one random change to the world and returns it. Every kind
// of change is possible in every generated world (kinds whose
// preconditions do not hold, such as removing a member from an empty team,
// are retried as another kind).
func (w *World) Mutate(rng *rand.Rand) Change {
	for {
		if c, ok := w.mutate(rng, changeKinds[rng.Intn(len(changeKinds))]); ok {
			return c
		}
	}
}

func (w *World) mutate(rng *rand.Rand, kind ChangeKind) (Change, bool) {
	c := Change{Kind: kind}
	switch kind {
	case ChangeOrgRoles:
		e := w.Employees[rng.Intn(len(w.Employees))]
		c.OrgKind, c.OrgID, c.UserID = e.OrgKind, e.OrgID, e.UserID
		c.Roles = randomRoles(rng, policy.OrganizationRoles(e.OrgKind), 3)
	case ChangeSchedule:
		e := w.Employees[rng.Intn(len(w.Employees))]
		c.OrgKind, c.OrgID, c.UserID = e.OrgKind, e.OrgID, e.UserID
		if rng.Intn(3) != 0 {
			s := RandomSchedule(rng)
			c.Schedule = &s
		}
	case ChangeEmployeeLocationRoles:
		l := w.Locations[rng.Intn(len(w.Locations))]
		staff := w.customerEmployees(l.CustomerID)
		if len(staff) == 0 {
			return c, false
		}
		c.CustomerID, c.LocationID, c.UserID = l.CustomerID, l.ID, staff[rng.Intn(len(staff))]
		c.Roles = randomRoles(rng, policy.SecuritySystemRoles, 2)
	case ChangeTeamLocationRoles:
		l := w.Locations[rng.Intn(len(w.Locations))]
		var teams []string
		for _, t := range w.Teams {
			if t.CustomerID == l.CustomerID {
				teams = append(teams, t.ID)
			}
		}
		if len(teams) == 0 {
			return c, false
		}
		c.CustomerID, c.LocationID, c.TeamID = l.CustomerID, l.ID, teams[rng.Intn(len(teams))]
		c.Roles = randomRoles(rng, policy.SecuritySystemRoles, 2)
	case ChangeLocationDealer:
		l := w.Locations[rng.Intn(len(w.Locations))]
		c.CustomerID, c.LocationID = l.CustomerID, l.ID
		if rng.Intn(4) != 0 {
			c.DealerID = w.Dealers[rng.Intn(len(w.Dealers))].ID
		}
	case ChangeTeamMemberAdded, ChangeTeamMemberRemoved:
		t := w.Teams[rng.Intn(len(w.Teams))]
		var candidates []string
		for _, u := range w.customerEmployees(t.CustomerID) {
			if slices.Contains(t.Members, u) == (kind == ChangeTeamMemberRemoved) {
				candidates = append(candidates, u)
			}
		}
		if len(candidates) == 0 {
			return c, false
		}
		c.CustomerID, c.TeamID, c.UserID = t.CustomerID, t.ID, candidates[rng.Intn(len(candidates))]
	case ChangeDealerProvider:
		c.DealerID = w.Dealers[rng.Intn(len(w.Dealers))].ID
		if rng.Intn(4) != 0 {
			c.MonitoringProviderID = w.MonitoringProviders[rng.Intn(len(w.MonitoringProviders))].ID
		}
	default:
		return c, false
	}
	if err := w.Apply(c); err != nil {
		panic(fmt.Sprintf("policytest: generated change does not apply: %v", err))
	}
	return c, true
}

// Apply applies a change to the world, as the owning service would: it is
// how Mutate changes the world, and how a test replays a hand-written
// change (AUTHZ.md's "removing charlie from t1"). It refuses a change that
// names unknown entities or breaks an invariant the services enforce
// (team members and location role holders are the customer's employees).
func (w *World) Apply(c Change) error {
	isStaff := func(customerID, userID string) bool {
		e, ok := w.Employee(userID)
		return ok && e.OrgKind == policy.OrgCustomer && e.OrgID == customerID
	}
	switch c.Kind {
	case ChangeOrgRoles, ChangeSchedule:
		i, ok := w.employee[c.UserID]
		if !ok || w.Employees[i].OrgID != c.OrgID || w.Employees[i].OrgKind != c.OrgKind {
			return fmt.Errorf("%v: no such employee", c)
		}
		if c.Kind == ChangeOrgRoles {
			w.Employees[i].Roles = append([]string{}, c.Roles...)
		} else {
			w.Employees[i].Schedule = cloneSchedule(c.Schedule)
		}
	case ChangeEmployeeLocationRoles:
		l, ok := w.Location(c.LocationID)
		if !ok || l.CustomerID != c.CustomerID || !isStaff(c.CustomerID, c.UserID) {
			return fmt.Errorf("%v: unknown location or not the customer's employee", c)
		}
		w.setEmployeeLocationRoles(c.LocationID, c.UserID, c.Roles)
	case ChangeTeamLocationRoles:
		l, ok := w.Location(c.LocationID)
		ti, tok := w.team[c.TeamID]
		if !ok || !tok || l.CustomerID != c.CustomerID || w.Teams[ti].CustomerID != c.CustomerID {
			return fmt.Errorf("%v: unknown location or team of the customer", c)
		}
		w.setTeamLocationRoles(c.LocationID, c.TeamID, c.Roles)
	case ChangeLocationDealer:
		i, ok := w.location[c.LocationID]
		_, dok := w.dealer[c.DealerID]
		if !ok || w.Locations[i].CustomerID != c.CustomerID || (c.DealerID != "" && !dok) {
			return fmt.Errorf("%v: unknown location or dealer", c)
		}
		w.Locations[i].DealerID = c.DealerID
	case ChangeTeamMemberAdded, ChangeTeamMemberRemoved:
		i, ok := w.team[c.TeamID]
		if !ok || w.Teams[i].CustomerID != c.CustomerID || !isStaff(c.CustomerID, c.UserID) {
			return fmt.Errorf("%v: unknown team or not the customer's employee", c)
		}
		t := &w.Teams[i]
		t.Members = slices.DeleteFunc(t.Members, func(m string) bool { return m == c.UserID })
		if c.Kind == ChangeTeamMemberAdded {
			t.Members = append(t.Members, c.UserID)
			slices.Sort(t.Members)
		}
	case ChangeDealerProvider:
		i, ok := w.dealer[c.DealerID]
		if !ok || (c.MonitoringProviderID != "" && !slices.ContainsFunc(w.MonitoringProviders,
			func(p MonitoringProvider) bool { return p.ID == c.MonitoringProviderID })) {
			return fmt.Errorf("%v: unknown dealer or provider", c)
		}
		w.Dealers[i].MonitoringProviderID = c.MonitoringProviderID
	default:
		return fmt.Errorf("unknown change kind %q", c.Kind)
	}
	return nil
}

// customerEmployees returns the user ids of a customer's employees.
func (w *World) customerEmployees(customerID string) []string {
	var out []string
	for _, e := range w.Employees {
		if e.OrgKind == policy.OrgCustomer && e.OrgID == customerID {
			out = append(out, e.UserID)
		}
	}
	return out
}
