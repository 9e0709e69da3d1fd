// Package replicate is the replicate authorization strategy (AUTHZ.md): the
// Security System Service keeps its own replica of every fact the rule
// needs, in its own database, fed by the organization services' events
// (Projection), and decides with policy.IsAllowed from local queries only.
// Decisions therefore keep working while every organization service is
// down; the price is staleness bounded by the event propagation delay,
// which the service reports as replica lag.
package replicate

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/securitysystem/authz"
)

// Authorizer is the replicate strategy. It is safe for concurrent use.
type Authorizer struct {
	db *sqldb.DB
}

var _ authz.Authorizer = (*Authorizer)(nil)

// New returns the strategy reading the replica tables of db (migrated with
// Migrations).
func New(db *sqldb.DB) *Authorizer { return &Authorizer{db: db} }

// Name returns "replicate".
func (a *Authorizer) Name() string { return authz.StrategyReplicate }

// unavailable wraps a failure of the local database: the decision cannot
// be made, so the service answers 503 and changes nothing.
func unavailable(err error) error {
	return apperr.Wrap(err, apperr.Unavailable, "the authorization replica cannot be read")
}

// Decide reads the caller's facts (for this location only) and the
// location's facts from the replica and applies the rule.
func (a *Authorizer) Decide(ctx context.Context, caller *auth.Caller, op policy.Op, ss authz.SystemRef, now time.Time) (policy.Decision, error) {
	s, err := a.subject(ctx, caller, ss.LocationID)
	if err != nil {
		return policy.Decision{}, err
	}
	res := policy.Resource{SecuritySystemID: ss.ID, LocationID: ss.LocationID}
	if s.Org != nil && len(s.Org.Roles) > 0 {
		// Only an organization role needs the location's organizations.
		locs, err := a.locations(ctx, []string{ss.LocationID})
		if err != nil {
			return policy.Decision{}, err
		}
		fill(&res, locs)
	}
	return policy.IsAllowed(s, op, res, now), nil
}

// Filter reads the caller's facts once and, for an employee of a dealer
// or a provider, the facts of all the systems' locations in one query,
// then applies the rule. A customer's employee needs no location: the
// record's customer is exact (a location never changes customer), and the
// dealer and provider grant a customer's employee nothing.
func (a *Authorizer) Filter(ctx context.Context, caller *auth.Caller, systems []authz.SystemRef, now time.Time) ([]authz.Permitted, error) {
	s, err := a.subject(ctx, caller, "")
	if err != nil {
		return nil, err
	}
	var locs map[string]location
	if s.Org != nil && s.Org.Kind == policy.OrgCustomer && recordsHoldCustomers(systems) {
		out := make([]authz.Permitted, 0, len(systems))
		for _, ss := range systems {
			res := policy.Resource{SecuritySystemID: ss.ID, LocationID: ss.LocationID, CustomerID: ss.CustomerID}
			if p, ok := authz.Permit(s, ss, res, now); ok {
				out = append(out, p)
			}
		}
		return out, nil
	}
	if s.Org != nil && len(s.Org.Roles) > 0 && len(systems) > 0 {
		ids := make([]string, 0, len(systems))
		for _, ss := range systems {
			ids = append(ids, ss.LocationID)
		}
		slices.Sort(ids)
		if locs, err = a.locations(ctx, slices.Compact(ids)); err != nil {
			return nil, err
		}
	}
	out := make([]authz.Permitted, 0, len(systems))
	for _, ss := range systems {
		res := policy.Resource{SecuritySystemID: ss.ID, LocationID: ss.LocationID}
		fill(&res, locs)
		if p, ok := authz.Permit(s, ss, res, now); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// The replica's hot queries, each an index lookup (TestPlansUseIndexes
// shows their plans on both stores): a decision reads the caller's
// employee row and location roles by user, and the system's location by
// id. The IN lists are appended by the callers.
const (
	employeeQuery      = `SELECT org_kind, org_id, roles, schedule FROM replica_employees WHERE user_id = ?`
	locationRolesQuery = `SELECT location_id, roles FROM replica_location_roles WHERE user_id = ?`
	teamRolesQuery     = `SELECT tr.location_id, tr.roles FROM replica_team_members m JOIN replica_team_roles tr ON tr.team_id = m.team_id WHERE m.user_id = ?`
	locationsQuery     = `SELECT l.location_id, l.customer_id, l.dealer_id, d.monitoring_provider_id FROM replica_locations l LEFT JOIN replica_dealers d ON d.dealer_id = l.dealer_id WHERE l.location_id IN `
)

// ScopeLocations are the subqueries through which the list query matches a
// dealer's or a monitoring provider's grant roots under this strategy
// (store.WithOrganizationLocations): the locations the replica says the
// dealer services, or the provider's dealers service, read by the
// database inside the page query through replica_locations_dealer and
// replica_dealers_provider (TestListPlansUseIndexes of the store shows the
// plans on both stores). The records' own dealer and provider are not kept
// current under this strategy, so they are never matched; and the
// locations, thousands for a large dealer, no longer travel out of the
// database and back into it as one list per page.
var ScopeLocations = struct{ Dealers, MonitoringProviders string }{
	Dealers:             `SELECT location_id FROM replica_locations WHERE dealer_id`,
	MonitoringProviders: `SELECT l.location_id FROM replica_dealers d JOIN replica_locations l ON l.dealer_id = d.dealer_id WHERE d.monitoring_provider_id`,
}

// Scope reads the caller's facts from the replica and returns the rule's
// view scope as it is: the list query turns a dealer's or a monitoring
// provider's roots into their locations itself (ScopeLocations), and a
// customer stays a customer, since a location never changes customer and
// the record's customer_id is exact.
func (a *Authorizer) Scope(ctx context.Context, caller *auth.Caller, _ time.Time) (policy.Scope, error) {
	s, err := a.subject(ctx, caller, "")
	if err != nil {
		return policy.Scope{}, err
	}
	return policy.ViewScope(s), nil
}

// idSet is the subquery of the elements of one set parameter (setArg): a
// set of any size passes as one value, never as a list of placeholders.
// PostgreSQL unnests an array, whose size its planner estimates.
func idSet(d sqldb.Dialect) string {
	if d == sqldb.Postgres {
		return `SELECT unnest(CAST(? AS text[]))`
	}
	return `SELECT value FROM json_each(?)`
}

// setArg is idSet's parameter: a JSON array, or on PostgreSQL an array
// literal (JSON's string quoting is also the literal's).
func setArg(d sqldb.Dialect, ids []string) string {
	b, _ := json.Marshal(ids) // a []string always marshals
	if d == sqldb.Postgres {
		return "{" + string(b[1:len(b)-1]) + "}"
	}
	return string(b)
}

// AuthorizeCreate reads the location and the caller's facts from the
// replica. A location created moments ago may not have reached the replica
// yet; it is then reported unknown, which is the strategy's staleness.
func (a *Authorizer) AuthorizeCreate(ctx context.Context, caller *auth.Caller, locationID string) (authz.CreateCheck, error) {
	locs, err := a.locations(ctx, []string{locationID})
	if err != nil {
		return authz.CreateCheck{}, err
	}
	l, ok := locs[locationID]
	if !ok {
		return authz.CreateCheck{Decision: policy.Decision{Reason: policy.ReasonNoRole}}, nil
	}
	s, err := a.subject(ctx, caller, locationID)
	if err != nil {
		return authz.CreateCheck{}, err
	}
	loc := authz.Location{LocationID: locationID, CustomerID: l.customerID, DealerID: l.dealerID, MonitoringProviderID: l.providerID}
	return authz.CreateCheck{Found: true, Location: loc, Decision: authz.CanCreate(s, loc.CustomerID)}, nil
}

// recordsHoldCustomers reports whether every record names its customer
// (every one written by this service does; a record without one is decided
// from the replica's location instead).
func recordsHoldCustomers(systems []authz.SystemRef) bool {
	for _, ss := range systems {
		if ss.CustomerID == "" {
			return false
		}
	}
	return true
}

type location struct {
	customerID, dealerID, providerID string
}

func fill(res *policy.Resource, locs map[string]location) {
	if l, ok := locs[res.LocationID]; ok {
		res.CustomerID, res.DealerID, res.MonitoringProviderID = l.customerID, l.dealerID, l.providerID
	}
}

// locations reads the facts of the locations ids: one location by an
// equality, several as one set parameter (idSet), so a page of 500
// systems is one statement of one parameter instead of one of 250
// placeholders that the database parses and plans anew.
func (a *Authorizer) locations(ctx context.Context, ids []string) (map[string]location, error) {
	out := make(map[string]location, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	q, arg := locationsQuery+`(?)`, ids[0]
	if len(ids) > 1 {
		q, arg = locationsQuery+`(`+idSet(a.db.Dialect())+`)`, setArg(a.db.Dialect(), ids)
	}
	rows, err := a.db.QueryContext(ctx, q, arg)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, customer string
		var dealer, provider sql.NullString
		if err := rows.Scan(&id, &customer, &dealer, &provider); err != nil {
			return nil, unavailable(err)
		}
		out[id] = location{customerID: customer, dealerID: dealer.String, providerID: provider.String}
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	return out, nil
}

// kindOrder makes the choice deterministic should a user ever appear as
// the employee of two organizations at once (only possible transiently,
// while a move between organizations propagates through two streams).
var kindOrder = map[string]int{string(policy.OrgCustomer): 0, string(policy.OrgDealer): 1, string(policy.OrgMonitoringProvider): 2}

// subject builds the caller's facts from the replica. When locationID is
// not empty only the location roles held there are read, which is all a
// single decision needs.
func (a *Authorizer) subject(ctx context.Context, caller *auth.Caller, locationID string) (policy.Subject, error) {
	s := authz.Subject(caller)
	if s.UserID == "" {
		return s, nil
	}
	rows, err := a.db.QueryContext(ctx, employeeQuery, s.UserID)
	if err != nil {
		return s, unavailable(err)
	}
	best := -1
	for rows.Next() {
		var kind, orgID, roles string
		var sched sql.NullString
		if err := rows.Scan(&kind, &orgID, &roles, &sched); err != nil {
			rows.Close()
			return s, unavailable(err)
		}
		if best >= 0 && kindOrder[kind] >= best {
			continue
		}
		best = kindOrder[kind]
		m := &policy.Membership{Kind: policy.OrgKind(kind), ID: orgID}
		if err := json.Unmarshal([]byte(roles), &m.Roles); err != nil {
			rows.Close()
			return s, unavailable(fmt.Errorf("roles of user %s: %w", s.UserID, err))
		}
		s.Org, s.Schedule = m, nil
		if sched.Valid {
			var sc policy.Schedule
			if err := json.Unmarshal([]byte(sched.String), &sc); err != nil {
				rows.Close()
				return s, unavailable(fmt.Errorf("schedule of user %s: %w", s.UserID, err))
			}
			s.Schedule = &sc
		}
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return s, unavailable(err)
	}
	if s.Org == nil || s.Org.Kind != policy.OrgCustomer {
		// Location roles belong to customer employees only.
		return s, nil
	}
	q, qt := locationRolesQuery, teamRolesQuery
	args := []any{s.UserID, s.UserID}
	if locationID != "" {
		q += ` AND location_id = ?`
		qt += ` AND tr.location_id = ?`
		args = []any{s.UserID, locationID, s.UserID, locationID}
	}
	rows, err = a.db.QueryContext(ctx, q+` UNION ALL `+qt, args...)
	if err != nil {
		return s, unavailable(err)
	}
	defer rows.Close()
	for rows.Next() {
		var loc, roles string
		if err := rows.Scan(&loc, &roles); err != nil {
			return s, unavailable(err)
		}
		var rs []string
		if err := json.Unmarshal([]byte(roles), &rs); err != nil {
			return s, unavailable(fmt.Errorf("location roles of user %s: %w", s.UserID, err))
		}
		if s.LocationRoles == nil {
			s.LocationRoles = map[string][]string{}
		}
		s.LocationRoles[loc] = append(s.LocationRoles[loc], rs...)
	}
	if err := rows.Err(); err != nil {
		return s, unavailable(err)
	}
	return s, nil
}

// errNoReplica is reported by readiness when the replica tables are missing.
var errNoReplica = errors.New("replica tables missing")

// Check verifies the replica can be read; it is part of /readyz. It reads
// at most one row, so it costs nothing however large the replica.
func (a *Authorizer) Check(ctx context.Context) error {
	rows, err := a.db.QueryContext(ctx, `SELECT employee_id FROM replica_employees LIMIT 1`)
	if err != nil {
		return fmt.Errorf("%w: %v", errNoReplica, err)
	}
	return rows.Close()
}
