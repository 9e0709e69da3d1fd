package store

import (
	"context"

	"github.com/realguardio/realguardio/internal/customer/app"
	"github.com/realguardio/realguardio/internal/orgkit/paging"
	"github.com/realguardio/realguardio/internal/platform/principal"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// Org is the organization kit's part of a unit of work: its checks and
// employees read on the querier of the unit's transaction, so that a
// change and the checks it depends on see one state. The service's wiring
// adapts the kit to it.
type Org interface {
	// RequireAdministrator returns nil when caller is an active employee of
	// customerID holding CUSTOMER_EMPLOYEE_ADMINISTRATOR there (and carries
	// the CUSTOMER_EMPLOYEE application role), else an apperr.Forbidden.
	RequireAdministrator(ctx context.Context, q sqldb.Querier, caller *principal.Caller, customerID string) error
	// AuthorizeReader returns nil when caller may read inside customerID,
	// else an apperr.Forbidden; an unknown customer is apperr.NotFound.
	AuthorizeReader(ctx context.Context, q sqldb.Querier, caller *principal.Caller, customerID string) error
	// Employee returns employeeID when it belongs to customerID, else
	// apperr.NotFound.
	Employee(ctx context.Context, q sqldb.Querier, customerID, employeeID string) (app.Employee, error)
	// ActiveEmployees returns the active employees of customerID among
	// ids, keyed by id.
	ActiveEmployees(ctx context.Context, q sqldb.Querier, customerID string, ids []string) (map[string]app.Employee, error)
	// EmployeeByUser returns the customer employee whose IAM user is
	// userID; apperr.NotFound when there is none.
	EmployeeByUser(ctx context.Context, q sqldb.Querier, userID string) (app.Employee, error)
}

// Outbox appends events to the transactional outbox inside tx, so that an
// event exists exactly when the change it describes was committed.
type Outbox interface {
	Append(ctx context.Context, tx *sqldb.Tx, aggregateType, aggregateID, eventType string, payload any) error
	// AppendAll appends the events in order, as many Append calls would,
	// but batched: the bulk imports write thousands at once.
	AppendAll(ctx context.Context, tx *sqldb.Tx, aggregateType, aggregateID string, evs []app.PendingEvent) error
}

// OutboxFunc adapts a function to Outbox.
type OutboxFunc func(ctx context.Context, tx *sqldb.Tx, aggregateType, aggregateID, eventType string, payload any) error

// Append calls f.
func (f OutboxFunc) Append(ctx context.Context, tx *sqldb.Tx, aggregateType, aggregateID, eventType string, payload any) error {
	return f(ctx, tx, aggregateType, aggregateID, eventType, payload)
}

// AppendAll calls f for each event in order.
func (f OutboxFunc) AppendAll(ctx context.Context, tx *sqldb.Tx, aggregateType, aggregateID string, evs []app.PendingEvent) error {
	for _, ev := range evs {
		if err := f(ctx, tx, aggregateType, aggregateID, ev.Type, ev.Payload); err != nil {
			return err
		}
	}
	return nil
}

// Transactor implements app.Transactor on the service's database: the
// repository owns the transaction, and the use cases see only units of
// work whose every statement and event runs in it.
type Transactor struct {
	// DB is the service's database; the kit's tables, this package's
	// tables and the outbox live in it, so one transaction covers them all.
	DB *sqldb.DB
	// Store runs this package's statements.
	Store Store
	// Org reaches the organization kit's employees and checks.
	Org Org
	// Outbox receives the events of every change.
	Outbox Outbox
}

var (
	_ app.Transactor = Transactor{}
	_ app.Tx         = unit{}
)

// Update runs fn in one transaction of DB (sqldb.DB.InTx: committed when fn
// returns nil, with its after-commit hooks).
func (t Transactor) Update(ctx context.Context, fn func(app.Tx) error) error {
	return t.DB.InTx(ctx, func(tx *sqldb.Tx) error { return fn(t.Bind(tx)) })
}

// View returns the reads on DB outside any transaction.
func (t Transactor) View() app.Reader { return reader{t: t, q: t.DB} }

// Bind returns the unit of work of tx, a transaction opened by someone
// else: the organization kit removing an employee (whose grants are
// revoked in the removal's transaction) or an event consumer (which
// records the event as applied in the same transaction as its effect).
func (t Transactor) Bind(tx *sqldb.Tx) app.Tx { return unit{reader: reader{t: t, q: tx}, tx: tx} }

// reader runs the Store's statements and the Org's checks on one querier.
type reader struct {
	t Transactor
	q sqldb.Querier
}

// unit is reader in a transaction, which can also append events.
type unit struct {
	reader
	tx *sqldb.Tx
}

// Append appends the event in the unit's transaction.
func (u unit) Append(ctx context.Context, aggregateType, aggregateID, eventType string, payload any) error {
	return u.t.Outbox.Append(ctx, u.tx, aggregateType, aggregateID, eventType, payload)
}

// AppendAll appends the events in order in the unit's transaction.
func (u unit) AppendAll(ctx context.Context, aggregateType, aggregateID string, evs []app.PendingEvent) error {
	return u.t.Outbox.AppendAll(ctx, u.tx, aggregateType, aggregateID, evs)
}

// LocationAccess is Store.LocationAccess on the unit's querier.
func (r reader) LocationAccess(ctx context.Context, l app.Location, p app.AccessPage) (string, []app.AccessHolder, error) {
	return r.t.Store.LocationAccess(ctx, r.q, l, p)
}

// LocationIDsByDealers is Store.LocationIDsByDealers on the unit's querier.
func (r reader) LocationIDsByDealers(ctx context.Context, dealerIDs []string, cursor string) ([]string, string, error) {
	return r.t.Store.LocationIDsByDealers(ctx, r.q, dealerIDs, cursor)
}

// LocationsPage is Store.LocationsPage on the unit's querier.
func (r reader) LocationsPage(ctx context.Context, customerID string, req paging.Request) ([]app.Location, error) {
	return r.t.Store.LocationsPage(ctx, r.q, customerID, req)
}

// InsertLocations is Store.InsertLocations on the unit's querier.
func (r reader) InsertLocations(ctx context.Context, ls []app.Location) error {
	return r.t.Store.InsertLocations(ctx, r.q, ls)
}

// LocationsOf is Store.LocationsOf on the unit's querier.
func (r reader) LocationsOf(ctx context.Context, customerID string, ids []string) (map[string]bool, error) {
	return r.t.Store.LocationsOf(ctx, r.q, customerID, ids)
}

// DealersKnown is Store.DealersKnown on the unit's querier.
func (r reader) DealersKnown(ctx context.Context, ids []string) (map[string]bool, error) {
	return r.t.Store.DealersKnown(ctx, r.q, ids)
}

// TeamsPage is Store.TeamsPage on the unit's querier.
func (r reader) TeamsPage(ctx context.Context, customerID string, req paging.Request) ([]app.Team, error) {
	return r.t.Store.TeamsPage(ctx, r.q, customerID, req)
}

// TeamMembers is Store.TeamMembers on the unit's querier.
func (r reader) TeamMembers(ctx context.Context, teamIDs []string) (map[string][]string, error) {
	return r.t.Store.TeamMembers(ctx, r.q, teamIDs)
}

// MembersPage is Store.MembersPage on the unit's querier.
func (r reader) MembersPage(ctx context.Context, teamID string, req paging.Request) ([]app.Employee, error) {
	return r.t.Store.MembersPage(ctx, r.q, teamID, req)
}

// ReplaceEmployeeLocationRoles is Store.ReplaceEmployeeLocationRoles on the unit's querier.
func (r reader) ReplaceEmployeeLocationRoles(ctx context.Context, customerID string, grants []app.Grant) error {
	return r.t.Store.ReplaceEmployeeLocationRoles(ctx, r.q, customerID, grants)
}

// EmployeeRolesAt is Store.EmployeeRolesAt on the unit's querier.
func (r reader) EmployeeRolesAt(ctx context.Context, locationIDs []string) (map[string][]app.RoleGrant, error) {
	return r.t.Store.EmployeeRolesAt(ctx, r.q, locationIDs)
}

// TeamRolesAt is Store.TeamRolesAt on the unit's querier.
func (r reader) TeamRolesAt(ctx context.Context, locationIDs []string) (map[string][]app.RoleGrant, error) {
	return r.t.Store.TeamRolesAt(ctx, r.q, locationIDs)
}

// LockCustomer is Store.LockCustomer on the unit's querier.
func (r reader) LockCustomer(ctx context.Context, customerID string) error {
	return r.t.Store.LockCustomer(ctx, r.q, customerID)
}

// InsertLocation is Store.InsertLocation on the unit's querier.
func (r reader) InsertLocation(ctx context.Context, l app.Location) error {
	return r.t.Store.InsertLocation(ctx, r.q, l)
}

// Location is Store.Location on the unit's querier.
func (r reader) Location(ctx context.Context, id string) (app.Location, error) {
	return r.t.Store.Location(ctx, r.q, id)
}

// SetLocationDealer is Store.SetLocationDealer on the unit's querier.
func (r reader) SetLocationDealer(ctx context.Context, locationID, dealerID string) error {
	return r.t.Store.SetLocationDealer(ctx, r.q, locationID, dealerID)
}

// LocationFacts is Store.LocationFacts on the unit's querier.
func (r reader) LocationFacts(ctx context.Context, ids []string) ([]app.LocationFacts, error) {
	return r.t.Store.LocationFacts(ctx, r.q, ids)
}

// DealerExists is Store.DealerExists on the unit's querier.
func (r reader) DealerExists(ctx context.Context, id string) (bool, error) {
	return r.t.Store.DealerExists(ctx, r.q, id)
}

// UpsertDealer is Store.UpsertDealer on the unit's querier.
func (r reader) UpsertDealer(ctx context.Context, id, name string) error {
	return r.t.Store.UpsertDealer(ctx, r.q, id, name)
}

// InsertTeam is Store.InsertTeam on the unit's querier.
func (r reader) InsertTeam(ctx context.Context, t app.Team) error {
	return r.t.Store.InsertTeam(ctx, r.q, t)
}

// Team is Store.Team on the unit's querier.
func (r reader) Team(ctx context.Context, id string) (app.Team, error) {
	return r.t.Store.Team(ctx, r.q, id)
}

// AddMember is Store.AddMember on the unit's querier.
func (r reader) AddMember(ctx context.Context, customerID, teamID, employeeID, userID string) (bool, error) {
	return r.t.Store.AddMember(ctx, r.q, customerID, teamID, employeeID, userID)
}

// RemoveMember is Store.RemoveMember on the unit's querier.
func (r reader) RemoveMember(ctx context.Context, teamID, employeeID string) (bool, error) {
	return r.t.Store.RemoveMember(ctx, r.q, teamID, employeeID)
}

// TeamsOfEmployee is Store.TeamsOfEmployee on the unit's querier.
func (r reader) TeamsOfEmployee(ctx context.Context, employeeID string) ([]app.Team, error) {
	return r.t.Store.TeamsOfEmployee(ctx, r.q, employeeID)
}

// SetEmployeeLocationRoles is Store.SetEmployeeLocationRoles on the unit's querier.
func (r reader) SetEmployeeLocationRoles(ctx context.Context, customerID, locationID, employeeID, userID string, roles []string) error {
	return r.t.Store.SetEmployeeLocationRoles(ctx, r.q, customerID, locationID, employeeID, userID, roles)
}

// SetTeamLocationRoles is Store.SetTeamLocationRoles on the unit's querier.
func (r reader) SetTeamLocationRoles(ctx context.Context, customerID, locationID, teamID string, roles []string) error {
	return r.t.Store.SetTeamLocationRoles(ctx, r.q, customerID, locationID, teamID, roles)
}

// DirectLocationRoles is Store.DirectLocationRoles on the unit's querier.
func (r reader) DirectLocationRoles(ctx context.Context, employeeID string) (map[string][]string, error) {
	return r.t.Store.DirectLocationRoles(ctx, r.q, employeeID)
}

// TeamLocationRoles is Store.TeamLocationRoles on the unit's querier.
func (r reader) TeamLocationRoles(ctx context.Context, teamIDs []string) (map[string]map[string][]string, error) {
	return r.t.Store.TeamLocationRoles(ctx, r.q, teamIDs)
}

// EffectiveLocationRoles is Store.EffectiveLocationRoles on the unit's querier.
func (r reader) EffectiveLocationRoles(ctx context.Context, employeeID string) (map[string][]string, error) {
	return r.t.Store.EffectiveLocationRoles(ctx, r.q, employeeID)
}

// Profile is Store.Profile on the unit's querier.
func (r reader) Profile(ctx context.Context, userID string) (app.Profile, bool, error) {
	return r.t.Store.Profile(ctx, r.q, userID)
}

// PutProfile is Store.PutProfile on the unit's querier.
func (r reader) PutProfile(ctx context.Context, p app.Profile) error {
	return r.t.Store.PutProfile(ctx, r.q, p)
}

// DeleteTeam is Store.DeleteTeam on the unit's querier.
func (r reader) DeleteTeam(ctx context.Context, teamID string) (app.DeletedTeam, error) {
	return r.t.Store.DeleteTeam(ctx, r.q, teamID)
}

// DeleteLocation is Store.DeleteLocation on the unit's querier.
func (r reader) DeleteLocation(ctx context.Context, locationID string) (app.DeletedLocation, error) {
	return r.t.Store.DeleteLocation(ctx, r.q, locationID)
}

// RecordSystem is Store.RecordSystem on the unit's querier.
func (r reader) RecordSystem(ctx context.Context, systemID, locationID string) error {
	return r.t.Store.RecordSystem(ctx, r.q, systemID, locationID)
}

// LocationHasSystems is Store.LocationHasSystems on the unit's querier.
func (r reader) LocationHasSystems(ctx context.Context, locationID string) (bool, error) {
	return r.t.Store.LocationHasSystems(ctx, r.q, locationID)
}

// SetDealerProvider is Store.SetDealerProvider on the unit's querier.
func (r reader) SetDealerProvider(ctx context.Context, dealerID, providerID string) error {
	return r.t.Store.SetDealerProvider(ctx, r.q, dealerID, providerID)
}

// LocationNames is Store.LocationNames on the unit's querier.
func (r reader) LocationNames(ctx context.Context, ids []string) ([]app.LocationName, error) {
	return r.t.Store.LocationNames(ctx, r.q, ids)
}

// RequireAdministrator is Org.RequireAdministrator on the unit's querier.
func (r reader) RequireAdministrator(ctx context.Context, caller *principal.Caller, customerID string) error {
	return r.t.Org.RequireAdministrator(ctx, r.q, caller, customerID)
}

// AuthorizeReader is Org.AuthorizeReader on the unit's querier.
func (r reader) AuthorizeReader(ctx context.Context, caller *principal.Caller, customerID string) error {
	return r.t.Org.AuthorizeReader(ctx, r.q, caller, customerID)
}

// Employee is Org.Employee on the unit's querier.
func (r reader) Employee(ctx context.Context, customerID, employeeID string) (app.Employee, error) {
	return r.t.Org.Employee(ctx, r.q, customerID, employeeID)
}

// ActiveEmployees is Org.ActiveEmployees on the unit's querier.
func (r reader) ActiveEmployees(ctx context.Context, customerID string, ids []string) (map[string]app.Employee, error) {
	return r.t.Org.ActiveEmployees(ctx, r.q, customerID, ids)
}

// EmployeeByUser is Org.EmployeeByUser on the unit's querier.
func (r reader) EmployeeByUser(ctx context.Context, userID string) (app.Employee, error) {
	return r.t.Org.EmployeeByUser(ctx, r.q, userID)
}
