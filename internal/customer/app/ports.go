package app

import (
	"context"

	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// Org is what the use cases need from the organization kit, which owns
// customers, employees, organization roles and schedules. Every method
// takes the querier of the caller's transaction so that checks and changes
// see one consistent state: an employee removed concurrently cannot be
// granted a role in the same breath.
type Org interface {
	// RequireAdministrator returns nil when caller is an active employee of
	// customerID holding CUSTOMER_EMPLOYEE_ADMINISTRATOR there (and carries
	// the CUSTOMER_EMPLOYEE application role), else an apperr.Forbidden.
	RequireAdministrator(ctx context.Context, q sqldb.Querier, caller *auth.Caller, customerID string) error
	// AuthorizeReader returns nil when caller may read inside customerID
	// (its employees and the platform administrator), else an
	// apperr.Forbidden; an unknown customer is apperr.NotFound.
	AuthorizeReader(ctx context.Context, q sqldb.Querier, caller *auth.Caller, customerID string) error
	// Employee returns employeeID when it belongs to customerID; an
	// employee of another customer or an unknown id is apperr.NotFound, so
	// that nothing about other organizations is revealed.
	Employee(ctx context.Context, q sqldb.Querier, customerID, employeeID string) (Employee, error)
	// EmployeeByUser returns the customer employee whose IAM user is
	// userID; apperr.NotFound when the user is no customer's employee.
	EmployeeByUser(ctx context.Context, q sqldb.Querier, userID string) (Employee, error)
}

// Outbox appends an event to the transactional outbox inside tx, so that
// the event exists exactly when the change it describes was committed.
type Outbox interface {
	Append(ctx context.Context, tx *sqldb.Tx, aggregateType, aggregateID, eventType string, payload any) error
}

// OutboxFunc adapts a function to Outbox.
type OutboxFunc func(ctx context.Context, tx *sqldb.Tx, aggregateType, aggregateID, eventType string, payload any) error

// Append calls f.
func (f OutboxFunc) Append(ctx context.Context, tx *sqldb.Tx, aggregateType, aggregateID, eventType string, payload any) error {
	return f(ctx, tx, aggregateType, aggregateID, eventType, payload)
}

// Repo is the persistence the use cases need for the data this package
// owns. Implementations run each statement on the querier given, which is
// the use case's transaction for changes.
type Repo interface {
	// LockCustomer serializes the transaction q with every other change of
	// customerID until it ends.
	LockCustomer(ctx context.Context, q sqldb.Querier, customerID string) error

	// InsertLocation stores a new location.
	InsertLocation(ctx context.Context, q sqldb.Querier, l Location) error
	// Location returns the location; apperr.NotFound when unknown.
	Location(ctx context.Context, q sqldb.Querier, id string) (Location, error)
	// SetLocationDealer sets the dealer of a location ("" clears it).
	SetLocationDealer(ctx context.Context, q sqldb.Querier, locationID, dealerID string) error
	// Locations lists the locations of customerID.
	Locations(ctx context.Context, q sqldb.Querier, customerID string) ([]Location, error)
	// LocationFacts returns the facts of the known ids among ids.
	LocationFacts(ctx context.Context, q sqldb.Querier, ids []string) ([]LocationFacts, error)
	// LocationAccess returns the name of l's customer and up to p.Limit+1
	// holders of security system roles at l or in its customer, after p's
	// position (see AccessPage).
	LocationAccess(ctx context.Context, q sqldb.Querier, l Location, p AccessPage) (string, []AccessHolder, error)

	// DealerExists reports whether the dealer is in the replica.
	DealerExists(ctx context.Context, q sqldb.Querier, id string) (bool, error)
	// UpsertDealer records a dealer learnt from the Dealer Service's events.
	UpsertDealer(ctx context.Context, q sqldb.Querier, id, name string) error

	// InsertTeam stores a new team.
	InsertTeam(ctx context.Context, q sqldb.Querier, t Team) error
	// Team returns the team; apperr.NotFound when unknown.
	Team(ctx context.Context, q sqldb.Querier, id string) (Team, error)
	// Teams lists the teams of customerID.
	Teams(ctx context.Context, q sqldb.Querier, customerID string) ([]Team, error)
	// AddMember reports whether the employee was not a member before.
	AddMember(ctx context.Context, q sqldb.Querier, customerID, teamID, employeeID, userID string) (bool, error)
	// RemoveMember reports whether the employee was a member.
	RemoveMember(ctx context.Context, q sqldb.Querier, teamID, employeeID string) (bool, error)
	// TeamMembers maps each team of customerID to its member employee ids.
	TeamMembers(ctx context.Context, q sqldb.Querier, customerID string) (map[string][]string, error)
	// TeamsOfEmployee lists the teams employeeID is a member of.
	TeamsOfEmployee(ctx context.Context, q sqldb.Querier, employeeID string) ([]Team, error)

	// SetEmployeeLocationRoles replaces the roles an employee holds at a
	// location; empty revokes them.
	SetEmployeeLocationRoles(ctx context.Context, q sqldb.Querier, customerID, locationID, employeeID, userID string, roles []string) error
	// SetTeamLocationRoles replaces the roles a team holds at a location;
	// empty revokes them.
	SetTeamLocationRoles(ctx context.Context, q sqldb.Querier, customerID, locationID, teamID string, roles []string) error
	// EmployeeRolesByLocation maps each location of customerID to the
	// direct grants of employees there.
	EmployeeRolesByLocation(ctx context.Context, q sqldb.Querier, customerID string) (map[string][]RoleGrant, error)
	// TeamRolesByLocation maps each location of customerID to the grants
	// of teams there.
	TeamRolesByLocation(ctx context.Context, q sqldb.Querier, customerID string) (map[string][]RoleGrant, error)
	// DirectLocationRoles maps location id to the roles employeeID holds
	// there directly.
	DirectLocationRoles(ctx context.Context, q sqldb.Querier, employeeID string) (map[string][]string, error)
	// EffectiveLocationRoles maps location id to the roles employeeID holds
	// there directly or through any of its teams, merged and sorted.
	EffectiveLocationRoles(ctx context.Context, q sqldb.Querier, employeeID string) (map[string][]string, error)

	// Profile returns the stored profile of userID and whether one exists.
	Profile(ctx context.Context, q sqldb.Querier, userID string) (Profile, bool, error)
	// PutProfile stores a profile, replacing any of the same user.
	PutProfile(ctx context.Context, q sqldb.Querier, p Profile) error
}
