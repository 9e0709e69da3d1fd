package app

import (
	"context"

	"github.com/realguardio/realguardio/internal/orgkit/paging"
	"github.com/realguardio/realguardio/internal/platform/principal"
)

// Transactor opens the use cases' units of work. The repository owns the
// transaction: a change calls Update, whose Tx runs every method in one
// transaction of the service's database, where the organization kit's
// tables, this package's tables and the outbox live, so that checks,
// writes and events see and commit one consistent state (an employee
// removed concurrently cannot be granted a role in the same breath, and
// an event exists exactly when its change was committed). The use cases
// therefore import no SQL package.
type Transactor interface {
	// Update runs fn in one transaction, committed when fn returns nil
	// and rolled back otherwise.
	Update(ctx context.Context, fn func(Tx) error) error
	// View returns a Reader whose statements run outside any
	// transaction, each on its own, for the reads.
	View() Reader
}

// Tx is one unit of work of a change: every read, write and appended
// event runs in the transaction Transactor.Update opened.
type Tx interface {
	Reader
	Outbox
}

// Reader is the persistence and the organization kit's checks, bound to
// one transaction (in a Tx) or to the database (Transactor.View).
type Reader interface {
	Repo
	Org
}

// Org is what the use cases need from the organization kit, which owns
// customers, employees, organization roles and schedules. In a Tx its
// methods read in the change's transaction.
type Org interface {
	// RequireAdministrator returns nil when caller is an active employee of
	// customerID holding CUSTOMER_EMPLOYEE_ADMINISTRATOR there (and carries
	// the CUSTOMER_EMPLOYEE application role), else an apperr.Forbidden.
	RequireAdministrator(ctx context.Context, caller *principal.Caller, customerID string) error
	// AuthorizeReader returns nil when caller may read inside customerID
	// (its employees and the platform administrator), else an
	// apperr.Forbidden; an unknown customer is apperr.NotFound.
	AuthorizeReader(ctx context.Context, caller *principal.Caller, customerID string) error
	// Employee returns employeeID when it belongs to customerID; an
	// employee of another customer or an unknown id is apperr.NotFound, so
	// that nothing about other organizations is revealed.
	Employee(ctx context.Context, customerID, employeeID string) (Employee, error)
	// ActiveEmployees returns the active employees of customerID among
	// ids, keyed by id; the others are left out.
	ActiveEmployees(ctx context.Context, customerID string, ids []string) (map[string]Employee, error)
	// EmployeeByUser returns the customer employee whose IAM user is
	// userID; apperr.NotFound when the user is no customer's employee.
	EmployeeByUser(ctx context.Context, userID string) (Employee, error)
}

// Outbox appends an event to the transactional outbox in the Tx's
// transaction, so that the event exists exactly when the change it
// describes was committed.
type Outbox interface {
	Append(ctx context.Context, aggregateType, aggregateID, eventType string, payload any) error
	// AppendAll appends the events in order, as many Append calls would,
	// but batched: the bulk imports write thousands at once.
	AppendAll(ctx context.Context, aggregateType, aggregateID string, evs []PendingEvent) error
}

// PendingEvent is one event of an AppendAll: its type and payload.
type PendingEvent struct {
	Type    string
	Payload any
}

// Repo is the persistence the use cases need for the data this package
// owns. In a Tx each statement runs in the change's transaction.
type Repo interface {
	// LockCustomer serializes the Tx's transaction with every other change
	// of customerID until it ends.
	LockCustomer(ctx context.Context, customerID string) error

	// InsertLocation stores a new location.
	InsertLocation(ctx context.Context, l Location) error
	// Location returns the location; apperr.NotFound when unknown.
	Location(ctx context.Context, id string) (Location, error)
	// SetLocationDealer sets the dealer of a location ("" clears it).
	SetLocationDealer(ctx context.Context, locationID, dealerID string) error
	// LocationsPage reads req.Fetch() locations of customerID in
	// LocationKey order after req's cursor, whose name contains req.Query.
	LocationsPage(ctx context.Context, customerID string, req paging.Request) ([]Location, error)
	// InsertLocations stores new locations with multi-row inserts.
	InsertLocations(ctx context.Context, ls []Location) error
	// LocationsOf returns which of ids are locations of customerID.
	LocationsOf(ctx context.Context, customerID string, ids []string) (map[string]bool, error)
	// LocationFacts returns the facts of the known ids among ids.
	LocationFacts(ctx context.Context, ids []string) ([]LocationFacts, error)
	// LocationIDsByDealers returns one page of the ids of the locations
	// the dealers service, in id order after cursor, and the next cursor
	// ("" on the last page).
	LocationIDsByDealers(ctx context.Context, dealerIDs []string, cursor string) ([]string, string, error)
	// LocationAccess returns the name of l's customer and up to p.Limit+1
	// holders of security system roles at l or in its customer, after p's
	// position (see AccessPage).
	LocationAccess(ctx context.Context, l Location, p AccessPage) (string, []AccessHolder, error)

	// DealerExists reports whether the dealer is in the replica.
	DealerExists(ctx context.Context, id string) (bool, error)
	// DealersKnown returns which of ids are in the dealer replica.
	DealersKnown(ctx context.Context, ids []string) (map[string]bool, error)
	// UpsertDealer records a dealer learnt from the Dealer Service's events.
	UpsertDealer(ctx context.Context, id, name string) error

	// DeleteTeam deletes a team with its memberships and location roles
	// and returns what it took away.
	DeleteTeam(ctx context.Context, teamID string) (DeletedTeam, error)
	// DeleteLocation deletes a location with the roles held there and
	// returns what it took away.
	DeleteLocation(ctx context.Context, locationID string) (DeletedLocation, error)
	// LocationHasSystems reports whether a securitysystem.created event
	// named the location.
	LocationHasSystems(ctx context.Context, locationID string) (bool, error)
	// RecordSystem records that a security system exists at a location
	// (securitysystem.created); recording it again changes nothing.
	RecordSystem(ctx context.Context, systemID, locationID string) error
	// SetDealerProvider records the monitoring provider of a dealer ("" for
	// none).
	SetDealerProvider(ctx context.Context, dealerID, providerID string) error
	// LocationNames returns the known locations among ids, by id.
	LocationNames(ctx context.Context, ids []string) ([]LocationName, error)
	// InsertTeam stores a new team.
	InsertTeam(ctx context.Context, t Team) error
	// Team returns the team; apperr.NotFound when unknown.
	Team(ctx context.Context, id string) (Team, error)
	// TeamsPage reads req.Fetch() teams of customerID in TeamKey order
	// after req's cursor, whose name contains req.Query.
	TeamsPage(ctx context.Context, customerID string, req paging.Request) ([]Team, error)
	// AddMember reports whether the employee was not a member before.
	AddMember(ctx context.Context, customerID, teamID, employeeID, userID string) (bool, error)
	// RemoveMember reports whether the employee was a member.
	RemoveMember(ctx context.Context, teamID, employeeID string) (bool, error)
	// TeamMembers maps each of teamIDs that has members to its member
	// employee ids, sorted.
	TeamMembers(ctx context.Context, teamIDs []string) (map[string][]string, error)
	// MembersPage reads req.Fetch() active members of teamID in MemberKey
	// order after req's cursor.
	MembersPage(ctx context.Context, teamID string, req paging.Request) ([]Employee, error)
	// TeamsOfEmployee lists the teams employeeID is a member of.
	TeamsOfEmployee(ctx context.Context, employeeID string) ([]Team, error)

	// SetEmployeeLocationRoles replaces the roles an employee holds at a
	// location; empty revokes them.
	SetEmployeeLocationRoles(ctx context.Context, customerID, locationID, employeeID, userID string, roles []string) error
	// SetTeamLocationRoles replaces the roles a team holds at a location;
	// empty revokes them.
	SetTeamLocationRoles(ctx context.Context, customerID, locationID, teamID string, roles []string) error
	// ReplaceEmployeeLocationRoles replaces the roles of every (location,
	// employee) pair of grants with batched statements; the pairs are
	// distinct.
	ReplaceEmployeeLocationRoles(ctx context.Context, customerID string, grants []Grant) error
	// EmployeeRolesAt maps each of locationIDs to the direct grants of
	// employees there.
	EmployeeRolesAt(ctx context.Context, locationIDs []string) (map[string][]RoleGrant, error)
	// TeamRolesAt maps each of locationIDs to the grants of teams there.
	TeamRolesAt(ctx context.Context, locationIDs []string) (map[string][]RoleGrant, error)
	// DirectLocationRoles maps location id to the roles employeeID holds
	// there directly.
	DirectLocationRoles(ctx context.Context, employeeID string) (map[string][]string, error)
	// TeamLocationRoles maps each of teamIDs holding any role to its
	// roles by location id.
	TeamLocationRoles(ctx context.Context, teamIDs []string) (map[string]map[string][]string, error)
	// EffectiveLocationRoles maps location id to the roles employeeID holds
	// there directly or through any of its teams, merged and sorted.
	EffectiveLocationRoles(ctx context.Context, employeeID string) (map[string][]string, error)

	// Profile returns the stored profile of userID and whether one exists.
	Profile(ctx context.Context, userID string) (Profile, bool, error)
	// PutProfile stores a profile, replacing any of the same user.
	PutProfile(ctx context.Context, p Profile) error
}

// Memberships tells which dealer and monitoring provider a user works
// for, asking the owning services with the user's own token (a user may
// read their own subject facts, docs/fetch-api.md); bearer is the
// request's Authorization header.
type Memberships interface {
	Of(ctx context.Context, bearer, userID string) (Membership, error)
}
