package policytest

import (
	"slices"

	"github.com/realguardio/realguardio/internal/policy"
)

// Username returns the IAM username of a World user: its e-mail address,
// derived from the id as the test doubles and events spell it.
func Username(userID string) string { return userID + "@example.com" }

// Name returns the display name of a World entity (location, team or
// organization): the World has no names, so doubles and expectations
// derive the same one from the id.
func Name(kind, id string) string {
	if len(id) > 8 {
		id = id[:8]
	}
	return kind + " " + id
}

// AccessFacts returns the facts of an access review of the system: its
// resource facts, the names of its location and organizations, and one
// holder per employee of every organization of the World, with the roles
// held at the system's location directly and through teams. Employees that
// can have nothing to do with the system are included on purpose, so that
// policy.AccessReview is tested on leaving them out.
func (w *World) AccessFacts(securitySystemID string) policy.AccessFacts {
	r := w.Resource(securitySystemID)
	f := policy.AccessFacts{
		Resource:               r,
		LocationName:           Name("location", r.LocationID),
		CustomerName:           Name("customer", r.CustomerID),
		DealerName:             Name("dealer", r.DealerID),
		MonitoringProviderName: Name("provider", r.MonitoringProviderID),
	}
	for _, e := range w.Employees {
		h := policy.Holder{
			UserID:   e.UserID,
			Username: Username(e.UserID),
			Org:      &policy.Membership{Kind: e.OrgKind, ID: e.OrgID, Roles: slices.Clone(e.Roles)},
			Schedule: cloneSchedule(e.Schedule),
		}
		for _, lr := range w.EmployeeLocationRoles {
			if lr.LocationID == r.LocationID && lr.UserID == e.UserID {
				h.LocationRoles = slices.Clone(lr.Roles)
			}
		}
		for _, tr := range w.TeamLocationRoles {
			if tr.LocationID != r.LocationID {
				continue
			}
			if t := w.Teams[w.team[tr.TeamID]]; slices.Contains(t.Members, e.UserID) {
				h.Teams = append(h.Teams, policy.TeamRoles{ID: t.ID, Name: Name("team", t.ID), Roles: slices.Clone(tr.Roles)})
			}
		}
		f.Holders = append(f.Holders, h)
	}
	return f
}

// TeamsAt returns the teams holding roles at a location, with the roles.
func (w *World) TeamsAt(locationID string) []TeamLocationRole {
	var out []TeamLocationRole
	for _, tr := range w.TeamLocationRoles {
		if tr.LocationID == locationID {
			out = append(out, tr)
		}
	}
	return out
}

// Team returns the team with the id, if any.
func (w *World) Team(id string) (Team, bool) {
	i, ok := w.team[id]
	if !ok {
		return Team{}, false
	}
	return w.Teams[i], true
}
