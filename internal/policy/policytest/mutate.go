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
		e := &w.Employees[rng.Intn(len(w.Employees))]
		roles := randomRoles(rng, policy.OrganizationRoles(e.OrgKind), 3)
		e.Roles = slices.Clone(roles)
		c.OrgKind, c.OrgID, c.UserID, c.Roles = e.OrgKind, e.OrgID, e.UserID, roles
	case ChangeSchedule:
		e := &w.Employees[rng.Intn(len(w.Employees))]
		if rng.Intn(3) == 0 {
			e.Schedule = nil
		} else {
			s := RandomSchedule(rng)
			e.Schedule = &s
		}
		c.OrgKind, c.OrgID, c.UserID, c.Schedule = e.OrgKind, e.OrgID, e.UserID, cloneSchedule(e.Schedule)
	case ChangeEmployeeLocationRoles:
		l := w.Locations[rng.Intn(len(w.Locations))]
		staff := w.customerEmployees(l.CustomerID)
		if len(staff) == 0 {
			return c, false
		}
		u := staff[rng.Intn(len(staff))]
		roles := randomRoles(rng, policy.SecuritySystemRoles, 2)
		w.setEmployeeLocationRoles(l.ID, u, roles)
		c.CustomerID, c.LocationID, c.UserID, c.Roles = l.CustomerID, l.ID, u, roles
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
		t := teams[rng.Intn(len(teams))]
		roles := randomRoles(rng, policy.SecuritySystemRoles, 2)
		w.setTeamLocationRoles(l.ID, t, roles)
		c.CustomerID, c.LocationID, c.TeamID, c.Roles = l.CustomerID, l.ID, t, roles
	case ChangeLocationDealer:
		l := &w.Locations[rng.Intn(len(w.Locations))]
		l.DealerID = ""
		if rng.Intn(4) != 0 {
			l.DealerID = w.Dealers[rng.Intn(len(w.Dealers))].ID
		}
		c.CustomerID, c.LocationID, c.DealerID = l.CustomerID, l.ID, l.DealerID
	case ChangeTeamMemberAdded, ChangeTeamMemberRemoved:
		t := &w.Teams[rng.Intn(len(w.Teams))]
		var candidates []string
		for _, u := range w.customerEmployees(t.CustomerID) {
			if slices.Contains(t.Members, u) == (kind == ChangeTeamMemberRemoved) {
				candidates = append(candidates, u)
			}
		}
		if len(candidates) == 0 {
			return c, false
		}
		u := candidates[rng.Intn(len(candidates))]
		if kind == ChangeTeamMemberAdded {
			t.Members = append(t.Members, u)
			slices.Sort(t.Members)
		} else {
			t.Members = slices.DeleteFunc(t.Members, func(m string) bool { return m == u })
		}
		c.CustomerID, c.TeamID, c.UserID = t.CustomerID, t.ID, u
	case ChangeDealerProvider:
		d := &w.Dealers[rng.Intn(len(w.Dealers))]
		d.MonitoringProviderID = ""
		if rng.Intn(4) != 0 {
			d.MonitoringProviderID = w.MonitoringProviders[rng.Intn(len(w.MonitoringProviders))].ID
		}
		c.DealerID, c.MonitoringProviderID = d.ID, d.MonitoringProviderID
	default:
		return c, false
	}
	return c, true
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
