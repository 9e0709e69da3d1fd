package policy

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Via names the path through which a role reaches a security system
// (AUTHZ.md, "Access review").
type Via string

// The paths of the security system rule, in the order the rule reads them.
const (
	ViaLocation           Via = "location"
	ViaTeam               Via = "team"
	ViaCustomer           Via = "customer"
	ViaDealer             Via = "dealer"
	ViaMonitoringProvider Via = "monitoring_provider"
)

// Action names of the access review, as the HTTP API spells them.
const (
	ActionView   = "VIEW"
	ActionArm    = "ARM"
	ActionDisarm = "DISARM"
)

// Grant is one role that reaches the system by one path: held at the
// location directly, through a team, or as an organization role in the
// location's customer, its dealer or the dealer's monitoring provider. ID
// and Name are those of the location, team or organization.
type Grant struct {
	Role string `json:"role"`
	Via  Via    `json:"via"`
	ID   string `json:"id"`
	Name string `json:"name"`
}

// TeamRoles are the roles a team holds at the system's location, for one of
// its members.
type TeamRoles struct {
	ID    string
	Name  string
	Roles []string
}

// Holder is what the owners know of one user that may matter to one
// system: the employment (kind, organization and organization roles), the
// roles held at the system's location directly and through teams, and the
// schedule. A holder whose facts grant nothing on the system is simply not
// listed.
type Holder struct {
	UserID string
	// Username is the IAM username (the employee's e-mail address).
	Username string
	// Org is the employing organization with its organization roles; nil
	// when the owners know no employment.
	Org *Membership
	// LocationRoles are the roles held directly at the system's location.
	LocationRoles []string
	// Teams are the user's teams holding roles at the system's location.
	Teams    []TeamRoles
	Schedule *Schedule
}

// AccessFacts are the facts an access review of one system is answered
// from: where the system is, the names of the places and organizations
// named in grants, and the holders.
type AccessFacts struct {
	Resource Resource
	// LocationName, CustomerName, DealerName and MonitoringProviderName
	// label the grants; they do not change any decision.
	LocationName           string
	CustomerName           string
	DealerName             string
	MonitoringProviderName string
	Holders                []Holder
}

// AccessEntry is one user who may view, arm or disarm a system, and why.
type AccessEntry struct {
	UserID   string
	Username string
	// Actions are what the grants give, ignoring the schedule ("VIEW",
	// "ARM", "DISARM", in that order).
	Actions []string
	// AllowedNow are the actions the rule allows at the review's instant.
	AllowedNow []string
	// Grants are every (role, path) that gives an action, in the rule's
	// order of paths, then by role.
	Grants []Grant
	// Schedule is the user's schedule, nil when unrestricted.
	Schedule *Schedule
}

// ErrConflictingEmployers reports holders of one user claimed as an employee
// by two organizations, which the model forbids (a user works for at most
// one). Like the fetch strategy's decision, a review over such facts fails
// closed rather than pick one.
type ErrConflictingEmployers struct{ UserID string }

func (e ErrConflictingEmployers) Error() string {
	return fmt.Sprintf("user %s is claimed as an employee by more than one organization", e.UserID)
}

// AccessReview is the security system rule asked the other way (AUTHZ.md,
// "Access review"): every holder for whom IsAllowed allows view, arm or
// disarm at some time, with what the grants give, what is allowed at now,
// and each grant. Holders of the same user id are merged (they may come
// from several owners); two different employers for one user are an
// ErrConflictingEmployers. REALGUARDIO_ADMIN's view-everything is no
// grant: application roles are not facts of this function. The result is
// ordered by username, then user id. It does no I/O.
func AccessReview(f AccessFacts, now time.Time) ([]AccessEntry, error) {
	merged, err := mergeHolders(f.Holders)
	if err != nil {
		return nil, err
	}
	r := f.Resource
	out := []AccessEntry{}
	for _, h := range merged {
		subject := Subject{UserID: h.UserID, Org: h.Org, LocationRoles: map[string][]string{}}
		if r.LocationID != "" {
			roles := slices.Clone(h.LocationRoles)
			for _, t := range h.Teams {
				roles = append(roles, t.Roles...)
			}
			slices.Sort(roles)
			subject.LocationRoles[r.LocationID] = slices.Compact(roles)
		}
		e := AccessEntry{UserID: h.UserID, Username: h.Username, Actions: []string{}, AllowedNow: []string{}, Schedule: h.Schedule}
		timed := subject
		timed.Schedule = h.Schedule
		for _, a := range []struct {
			op   Op
			name string
		}{{OpView, ActionView}, {OpArm, ActionArm}, {OpDisarm, ActionDisarm}} {
			if IsAllowed(subject, a.op, r, now).Allowed {
				e.Actions = append(e.Actions, a.name)
			}
			if IsAllowed(timed, a.op, r, now).Allowed {
				e.AllowedNow = append(e.AllowedNow, a.name)
			}
		}
		if len(e.Actions) == 0 {
			continue
		}
		e.Grants = grantsOf(f, h)
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b AccessEntry) int {
		return cmp.Or(cmp.Compare(a.Username, b.Username), cmp.Compare(a.UserID, b.UserID))
	})
	return out, nil
}

// grantsOf lists the paths by which h's security system roles reach the
// system of f. Only roles the rule reads (ARMER, DISARMER, VIEWER) are
// grants, and an organization role only in the organization the rule
// names for the system's location.
func grantsOf(f AccessFacts, h Holder) []Grant {
	r := f.Resource
	out := []Grant{}
	seen := map[Grant]bool{}
	add := func(roles []string, via Via, id, name string) {
		sorted := slices.Clone(roles)
		slices.Sort(sorted)
		for _, role := range sorted {
			g := Grant{Role: role, Via: via, ID: id, Name: name}
			if IsLocationRole(role) && !seen[g] {
				seen[g] = true
				out = append(out, g)
			}
		}
	}
	if r.LocationID != "" {
		add(h.LocationRoles, ViaLocation, r.LocationID, f.LocationName)
		teams := slices.Clone(h.Teams)
		slices.SortFunc(teams, func(a, b TeamRoles) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
		for _, t := range teams {
			add(t.Roles, ViaTeam, t.ID, t.Name)
		}
	}
	if h.Org != nil && h.Org.ID != "" {
		switch {
		case h.Org.Kind == OrgCustomer && h.Org.ID == r.CustomerID:
			add(h.Org.Roles, ViaCustomer, r.CustomerID, f.CustomerName)
		case h.Org.Kind == OrgDealer && h.Org.ID == r.DealerID:
			add(h.Org.Roles, ViaDealer, r.DealerID, f.DealerName)
		case h.Org.Kind == OrgMonitoringProvider && h.Org.ID == r.MonitoringProviderID:
			add(h.Org.Roles, ViaMonitoringProvider, r.MonitoringProviderID, f.MonitoringProviderName)
		}
	}
	return out
}

// mergeHolders folds holders of the same user into one, in first-seen
// order. Location and team roles add up; the employment must agree.
func mergeHolders(hs []Holder) ([]Holder, error) {
	index := map[string]int{}
	var out []Holder
	for _, h := range hs {
		i, seen := index[h.UserID]
		if !seen {
			index[h.UserID] = len(out)
			c := h
			c.LocationRoles = slices.Clone(h.LocationRoles)
			c.Teams = slices.Clone(h.Teams)
			out = append(out, c)
			continue
		}
		m := &out[i]
		switch {
		case h.Org == nil:
		case m.Org == nil:
			m.Org = h.Org
		case m.Org.Kind != h.Org.Kind || m.Org.ID != h.Org.ID:
			return nil, ErrConflictingEmployers{UserID: h.UserID}
		default:
			org := *m.Org
			org.Roles = append(slices.Clone(org.Roles), h.Org.Roles...)
			m.Org = &org
		}
		m.LocationRoles = append(m.LocationRoles, h.LocationRoles...)
		m.Teams = append(m.Teams, h.Teams...)
		if m.Schedule == nil {
			m.Schedule = h.Schedule
		}
		if m.Username == "" {
			m.Username = h.Username
		}
	}
	return out, nil
}
