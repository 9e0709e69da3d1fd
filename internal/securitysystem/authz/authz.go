// Package authz is the seam between the Security System Service and the way
// it gets the facts of the security system rule (AUTHZ.md, "The four
// strategies"). Every strategy implements Authorizer; the decision itself is
// always the one pure function policy.IsAllowed, so strategies differ only
// in where the facts come from and how stale they may be.
//
// One package per strategy lives below this one (none, fetch, replicate;
// provide and delegate later) and the service's wiring picks one by name.
package authz

import (
	"context"
	"slices"
	"time"

	"github.com/realguardio/realguardio/internal/platform/principal"
	"github.com/realguardio/realguardio/internal/policy"
)

// Strategy names, as Config.Strategy and `realguardio up --authz` spell them.
const (
	StrategyNone      = "none"
	StrategyFetch     = "fetch"
	StrategyReplicate = "replicate"
	StrategyProvide   = "provide"
	StrategyDelegate  = "delegate"
)

// Actions a caller may take on a system, as the HTTP API spells them.
const (
	ActionArm    = "ARM"
	ActionDisarm = "DISARM"
)

// SystemRef is what a strategy needs to know about one security system: its
// identity and location, plus the resource facts the record itself carries.
// The record's facts are filled in from events and are what the provide
// strategy decides on ("store the customerID in each SecuritySystem"); fetch
// and replicate ignore them and look the location up themselves, so a stale
// copy on the record can never widen what they allow.
type SystemRef struct {
	ID         string
	LocationID string
	// CustomerID, DealerID and MonitoringProviderID are the resource facts
	// kept on the record; empty when unknown or absent.
	CustomerID           string
	DealerID             string
	MonitoringProviderID string
}

// Resource returns the record's own resource facts in the form of the rule.
func (r SystemRef) Resource() policy.Resource {
	return policy.Resource{
		SecuritySystemID:     r.ID,
		LocationID:           r.LocationID,
		CustomerID:           r.CustomerID,
		DealerID:             r.DealerID,
		MonitoringProviderID: r.MonitoringProviderID,
	}
}

// Permitted is one system the caller may view, with the state-changing
// actions ("ARM", "DISARM") the caller may take on it now.
type Permitted struct {
	System  SystemRef
	Actions []string
}

// Location is what a strategy knows about a location when a system is
// created there: its customer and, when present, its dealer and the
// dealer's monitoring provider. The service stores these on the new record
// and names the customer in the securitysystem.created event.
type Location struct {
	LocationID           string
	CustomerID           string
	DealerID             string
	MonitoringProviderID string
}

// CreateCheck is the outcome of authorizing the creation of a system.
type CreateCheck struct {
	// Found is false when the location is unknown; Decision is then a
	// denial and Location is empty.
	Found    bool
	Location Location
	Decision policy.Decision
}

// Authorizer gathers the facts of the rule for one strategy and applies
// policy.IsAllowed. A non-nil error always means the decision could not be
// made (a dependency is down or slow): the service answers 503 and changes
// nothing, it never treats an error as a denial or an allow.
type Authorizer interface {
	// Decide decides whether caller may perform op on the system at now.
	Decide(ctx context.Context, caller *principal.Caller, op policy.Op, ss SystemRef, now time.Time) (policy.Decision, error)
	// Filter returns, in input order, the systems the caller may view, each
	// with the actions allowed now. It makes a bounded number of remote
	// round trips whatever the number of systems, never one per system.
	Filter(ctx context.Context, caller *principal.Caller, systems []SystemRef, now time.Time) ([]Permitted, error)
	// Scope returns what caller may view, as grant roots a list query
	// selects by (policy.ViewScope of the caller's facts): locations and
	// customers match the record's location_id and customer_id, which
	// never change for a system; DealerIDs and MonitoringProviderIDs match
	// the record's dealer_id and monitoring_provider_id, so a strategy whose
	// records do not keep those current resolves them into LocationIDs
	// itself (fetch), or has the store's list query resolve them in the
	// same database (replicate: store.WithOrganizationLocations). Its cost
	// grows with the caller's grants, never with the number of systems; a
	// list asks it once per page.
	Scope(ctx context.Context, caller *principal.Caller, now time.Time) (policy.Scope, error)
	// AuthorizeCreate decides whether caller may create a system at the
	// location (CanCreate) and reports the location's facts.
	AuthorizeCreate(ctx context.Context, caller *principal.Caller, locationID string) (CreateCheck, error)
	// Name returns the strategy name recorded in audit rows.
	Name() string
}

// BulkCreateAuthorizer is implemented by a strategy that decides the
// creations of a bulk import at many locations for fewer round trips than
// one AuthorizeCreate each; the import uses it when present. The checks
// are in the order of locationIDs.
type BulkCreateAuthorizer interface {
	AuthorizeCreates(ctx context.Context, caller *principal.Caller, locationIDs []string) ([]CreateCheck, error)
}

// Subject starts the rule's subject facts from the token: its sub and
// application roles. Strategies add organization, location roles and
// schedule from wherever they keep them.
func Subject(caller *principal.Caller) policy.Subject {
	if caller == nil || caller.IsService {
		// A service token acts for no user: it holds no roles at all.
		return policy.Subject{}
	}
	return policy.Subject{UserID: caller.Subject, AppRoles: caller.Roles}
}

// Permit evaluates view, arm and disarm for one system; it returns false
// when the subject may not view it. It is the shared tail of every Filter.
func Permit(s policy.Subject, ref SystemRef, r policy.Resource, now time.Time) (Permitted, bool) {
	if !policy.IsAllowed(s, policy.OpView, r, now).Allowed {
		return Permitted{}, false
	}
	return Permitted{System: ref, Actions: policy.Actions(s, r, now)}, true
}

// CanCreate is the rule for POST /securitysystems (AUTHZ.md, "The other
// operations of the seed"): the caller holds CUSTOMER_EMPLOYEE_ADMINISTRATOR
// as an organization role in the location's customer, or is a
// REALGUARDIO_ADMIN. Like policy.IsAllowed it is pure, so every strategy
// decides creation the same way.
func CanCreate(s policy.Subject, customerID string) policy.Decision {
	if slices.Contains(s.AppRoles, policy.AppRoleAdmin) {
		return policy.Decision{Allowed: true}
	}
	if customerID != "" && s.Org != nil && s.Org.Kind == policy.OrgCustomer && s.Org.ID == customerID &&
		slices.Contains(s.Org.Roles, policy.RoleCustomerEmployeeAdministrator) {
		return policy.Decision{Allowed: true}
	}
	return policy.Decision{Reason: policy.ReasonNoRole}
}
