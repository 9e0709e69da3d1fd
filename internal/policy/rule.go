package policy

import (
	"slices"
	"time"
)

// Op is an operation on a security system.
type Op string

// The operations of the security system rule.
const (
	OpView   Op = "view"
	OpArm    Op = "arm"
	OpDisarm Op = "disarm"
)

// Denial reasons, reported in problem bodies as "reason".
const (
	ReasonNoRole          = "no_role"
	ReasonOutsideSchedule = "outside_schedule"
)

// Decision is the outcome of the rule: allowed, or denied with a reason.
type Decision struct {
	Allowed bool
	// Reason is empty when allowed, else ReasonNoRole or ReasonOutsideSchedule.
	Reason string
}

// Membership is the organization a user works for and the organization
// roles held there. A user is an employee of at most one organization.
type Membership struct {
	Kind  OrgKind
	ID    string
	Roles []string
}

// Subject holds the user-side facts of a decision, however a strategy got
// them (token claims, a fetch, a replica).
type Subject struct {
	// UserID is the token's sub.
	UserID string
	// AppRoles are the application roles from the token.
	AppRoles []string
	// Org is the employing organization, nil when the user is nobody's
	// employee.
	Org *Membership
	// LocationRoles maps a location id to the roles the user holds there,
	// directly or through a team: only customer employees have any.
	LocationRoles map[string][]string
	// Schedule restricts arm and disarm; nil means unrestricted.
	Schedule *Schedule
}

// Resource holds the resource-side facts of a decision: where the system
// is and which organizations are related to that place.
type Resource struct {
	SecuritySystemID string
	LocationID       string
	CustomerID       string
	// DealerID services the location; empty when none.
	DealerID string
	// MonitoringProviderID is the dealer's monitoring provider; empty when
	// there is no dealer or the dealer uses none.
	MonitoringProviderID string
}

// The wanted role sets are allocated once: IsAllowed runs for every system
// of every list request, so it must not allocate.
var (
	wantedArm    = []string{RoleArmer}
	wantedDisarm = []string{RoleDisarmer}
	wantedView   = []string{RoleArmer, RoleDisarmer, RoleViewer}
)

func wanted(op Op) []string {
	switch op {
	case OpArm:
		return wantedArm
	case OpDisarm:
		return wantedDisarm
	case OpView:
		return wantedView
	}
	return nil
}

// Wanted returns the roles any one of which grants op (AUTHZ.md), or nil for
// an unknown op. The result is a fresh copy the caller may modify.
func Wanted(op Op) []string { return slices.Clone(wanted(op)) }

// IsAllowed is the security system rule of AUTHZ.md, exactly: a role in
// Wanted(op) held at the system's location (directly or through a team) or
// as an organization role in the location's customer, its dealer or the
// dealer's monitoring provider; then, for arm and disarm, the schedule.
// REALGUARDIO_ADMIN may additionally view every system. It does no I/O.
func IsAllowed(s Subject, op Op, r Resource, now time.Time) Decision {
	wanted := wanted(op)
	if wanted == nil {
		return Decision{Reason: ReasonNoRole}
	}
	granted := r.LocationID != "" && holdsAny(s.LocationRoles[r.LocationID], wanted)
	if !granted && s.Org != nil && holdsAny(s.Org.Roles, wanted) {
		switch s.Org.Kind {
		case OrgCustomer:
			granted = r.CustomerID != "" && s.Org.ID == r.CustomerID
		case OrgDealer:
			granted = r.DealerID != "" && s.Org.ID == r.DealerID
		case OrgMonitoringProvider:
			granted = r.MonitoringProviderID != "" && s.Org.ID == r.MonitoringProviderID
		}
	}
	if !granted {
		if op == OpView && slices.Contains(s.AppRoles, AppRoleAdmin) {
			return Decision{Allowed: true}
		}
		return Decision{Reason: ReasonNoRole}
	}
	if op != OpView && s.Schedule != nil && !s.Schedule.Covers(now) {
		return Decision{Reason: ReasonOutsideSchedule}
	}
	return Decision{Allowed: true}
}

// Actions returns the state-changing actions ("ARM", "DISARM") s may take
// on r at now, as the list endpoint reports them.
func Actions(s Subject, r Resource, now time.Time) []string {
	out := []string{}
	if IsAllowed(s, OpArm, r, now).Allowed {
		out = append(out, "ARM")
	}
	if IsAllowed(s, OpDisarm, r, now).Allowed {
		out = append(out, "DISARM")
	}
	return out
}

func holdsAny(held, wanted []string) bool {
	for _, h := range held {
		if slices.Contains(wanted, h) {
			return true
		}
	}
	return false
}
