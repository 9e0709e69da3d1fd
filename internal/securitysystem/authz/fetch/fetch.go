// Package fetch is the fetch authorization strategy (AUTHZ.md): at decision
// time it asks the owners of the facts over HTTP (docs/fetch-api.md) and
// applies policy.IsAllowed to the answers. Nothing is cached except the
// service's own access token, so a decision is never stale; the price is a
// round trip per decision and a 503 whenever an owner is down.
//
// The caller's subject facts are asked of all three owners (Customer,
// Security System Dealer and Monitoring Provider services) whatever the
// token's application roles say: the rule of AUTHZ.md does not depend on
// them, and an administrator may edit them in the IAM, so reading the
// employer off CUSTOMER_EMPLOYEE and the like would make fetch disagree with
// replicate and delegate, which read only the owners' data. A user employed
// by more than one organization contradicts the model; the decision then
// fails closed (Unavailable) rather than picking one.
//
// Round trips are kept to the minimum the rule allows: the three subject
// calls and the location's facts are fetched in one parallel round, and the
// dealer's facts only when the caller works for a monitoring provider (the
// only case in which the dealer's provider matters). A list page costs the
// three subject calls of its Scope, plus the owners' lists of the
// organization's locations for a dealer's or provider's employee, and its
// actions are decided over the same answers (filterListPage); a view of one
// system costs three subject calls and one batch location call in one
// round, then at most one batch dealer call. Every call has a
// timeout and every dependency its own circuit breaker, so a dead
// dependency fails fast instead of holding requests.
package fetch

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/realguardio/realguardio/internal/contract/facts"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/securitysystem/authz"
)

// Config configures the fetch strategy: the owners' URLs and the
// service's credentials for the facts client (internal/contract/facts).
type Config = facts.Config

// ScopeAuthzRead is the scope of the client-credentials token the fetch
// strategy presents to the organization services' facts endpoints.
const ScopeAuthzRead = facts.ScopeRead

// Authorizer is the fetch strategy. It is safe for concurrent use.
type Authorizer struct {
	c *facts.Client
}

var _ authz.Authorizer = (*Authorizer)(nil)

// New builds the strategy. httpClient carries the transport (nil means
// http.DefaultClient's); reg, when not nil, receives the call counters and
// breaker states.
func New(cfg Config, httpClient *http.Client, reg prometheus.Registerer) (*Authorizer, error) {
	c, err := facts.New(cfg, httpClient, reg)
	if err != nil {
		return nil, err
	}
	return &Authorizer{c: c}, nil
}

// Name returns "fetch".
func (a *Authorizer) Name() string { return authz.StrategyFetch }

// Decide fetches the caller's facts from the three owners and the
// location's facts in one parallel round, the dealer's only when needed, and
// applies the rule.
func (a *Authorizer) Decide(ctx context.Context, caller *auth.Caller, op policy.Op, ss authz.SystemRef, now time.Time) (policy.Decision, error) {
	subject := authz.Subject(caller)
	res := policy.Resource{SecuritySystemID: ss.ID, LocationID: ss.LocationID}
	if !isUser(caller) || (op == policy.OpView && slices.Contains(subject.AppRoles, policy.AppRoleAdmin)) {
		// A service token acts for no user, and REALGUARDIO_ADMIN views
		// every system whatever the facts: no remote fact can change
		// either decision.
		return policy.IsAllowed(subject, op, res, now), nil
	}
	var loc *facts.Location
	g, gctx := errgroup.WithContext(ctx)
	merge := a.c.GoSubjectFacts(g, gctx, caller.Subject)
	g.Go(func() error {
		var err error
		loc, err = a.c.Location(gctx, ss.LocationID)
		return err
	})
	if err := g.Wait(); err != nil {
		return policy.Decision{}, err
	}
	if err := merge(&subject); err != nil {
		return policy.Decision{}, err
	}
	if loc != nil {
		res.CustomerID = loc.CustomerID
		res.DealerID = facts.Deref(loc.DealerID)
	}
	if needsDealerFacts(subject) && res.DealerID != "" {
		d, err := a.c.Dealer(ctx, res.DealerID)
		if err != nil {
			return policy.Decision{}, err
		}
		if d != nil {
			res.MonitoringProviderID = facts.Deref(d.MonitoringProviderID)
		}
	}
	return policy.IsAllowed(subject, op, res, now), nil
}

// isUser reports whether caller acts for a user, the only kind of caller
// that can have subject facts.
func isUser(caller *auth.Caller) bool {
	return caller != nil && !caller.IsService && caller.Subject != ""
}

// needsDealerFacts reports whether the dealer's monitoring provider can
// change the decision: only for an employee of a monitoring provider.
func needsDealerFacts(s policy.Subject) bool {
	return s.Org != nil && s.Org.Kind == policy.OrgMonitoringProvider && len(s.Org.Roles) > 0
}

// hasGrants reports whether s holds any role that could grant anything;
// without one no resource fact can change a decision.
func hasGrants(s policy.Subject) bool {
	return (s.Org != nil && len(s.Org.Roles) > 0) || len(s.LocationRoles) > 0
}

// Filter decides a list page over what its Scope read in the same request
// (filterListPage). Otherwise (a view of one system, a REALGUARDIO_ADMIN's
// page) it fetches the caller's facts from the three owners and all
// locations in one batch call, in one parallel round, then the dealers of
// those locations in one batch call when the caller works for a monitoring
// provider, and applies the rule locally.
func (a *Authorizer) Filter(ctx context.Context, caller *auth.Caller, systems []authz.SystemRef, now time.Time) ([]authz.Permitted, error) {
	if out, ok := a.filterListPage(ctx, caller, systems, now); ok {
		return out, nil
	}
	subject := authz.Subject(caller)
	locs := map[string]facts.Location{}
	// Even REALGUARDIO_ADMIN needs the facts here: the list reports the
	// actions (arm, disarm), which only the facts can grant.
	if isUser(caller) && len(systems) > 0 {
		ids := make([]string, 0, len(systems))
		for _, s := range systems {
			ids = append(ids, s.LocationID)
		}
		slices.Sort(ids)
		ids = slices.Compact(ids)
		g, gctx := errgroup.WithContext(ctx)
		merge := func(*policy.Subject) error { return nil }
		if known, ok := authz.RememberedSubject(ctx, caller.Subject); ok {
			// This request's Scope read the caller's facts already.
			subject.Org, subject.LocationRoles, subject.Schedule = known.Org, known.LocationRoles, known.Schedule
		} else {
			merge = a.c.GoSubjectFacts(g, gctx, caller.Subject)
		}
		g.Go(func() error {
			var err error
			locs, err = a.c.Locations(gctx, ids)
			return err
		})
		if err := g.Wait(); err != nil {
			return nil, err
		}
		if err := merge(&subject); err != nil {
			return nil, err
		}
	}
	providers := map[string]string{}
	if needsDealerFacts(subject) {
		var dealerIDs []string
		for _, l := range locs {
			if d := facts.Deref(l.DealerID); d != "" {
				dealerIDs = append(dealerIDs, d)
			}
		}
		slices.Sort(dealerIDs)
		dealerIDs = slices.Compact(dealerIDs)
		if len(dealerIDs) > 0 {
			ds, err := a.c.Dealers(ctx, dealerIDs)
			if err != nil {
				return nil, err
			}
			for id, d := range ds {
				providers[id] = facts.Deref(d.MonitoringProviderID)
			}
		}
	}
	grants := hasGrants(subject)
	out := make([]authz.Permitted, 0, len(systems))
	for _, s := range systems {
		res := policy.Resource{SecuritySystemID: s.ID, LocationID: s.LocationID}
		if l, ok := locs[s.LocationID]; ok && grants {
			res.CustomerID = l.CustomerID
			res.DealerID = facts.Deref(l.DealerID)
			res.MonitoringProviderID = providers[res.DealerID]
		}
		if p, ok := authz.Permit(subject, s, res, now); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// listReach is what a list page's Scope learnt, in the same request, about
// which locations the caller's organization role reaches: the locations the
// owners answered for its dealer (or its provider's dealers). Filter reads
// it back through the request memo.
type listReach struct {
	locations map[string]bool
}

// filterListPage decides a list page without a call when this request's
// Scope already read everything the rule needs (ok false otherwise, and
// Filter asks the owners as for a single view). The caller's subject facts
// are Scope's; a system's customer is its record's, exact because a
// location never changes customer (the list's own query matches the
// customer on it too); and the only resource facts that do change, a
// location's dealer and the dealer's provider, matter only to an employee
// of a dealer or provider, for whom Scope has just asked the owners which
// locations the organization reaches now. So the page is decided over the
// same fresh facts as its query, and a list page costs the three subject
// calls and nothing more for a customer's employee, the lookups of the
// organization's locations besides for a dealer's or provider's. A record
// without its customer (none is written so) falls back to the owners.
func (a *Authorizer) filterListPage(ctx context.Context, caller *auth.Caller, systems []authz.SystemRef, now time.Time) ([]authz.Permitted, bool) {
	if !isUser(caller) {
		return nil, false
	}
	known, ok := authz.RememberedSubject(ctx, caller.Subject)
	if !ok {
		return nil, false
	}
	subject := authz.Subject(caller)
	subject.Org, subject.LocationRoles, subject.Schedule = known.Org, known.LocationRoles, known.Schedule
	var reach map[string]bool
	if subject.Org != nil && (subject.Org.Kind == policy.OrgDealer || subject.Org.Kind == policy.OrgMonitoringProvider) {
		r, ok := authz.RememberedFacts(ctx, caller.Subject)
		lr, isReach := r.(listReach)
		if !ok || !isReach {
			return nil, false
		}
		reach = lr.locations
	}
	for _, s := range systems {
		if s.CustomerID == "" {
			return nil, false
		}
	}
	out := make([]authz.Permitted, 0, len(systems))
	for _, s := range systems {
		res := policy.Resource{SecuritySystemID: s.ID, LocationID: s.LocationID, CustomerID: s.CustomerID}
		if reach[s.LocationID] {
			// The organization reaches the location: as its dealer, or
			// as the provider of its dealer.
			switch subject.Org.Kind {
			case policy.OrgDealer:
				res.DealerID = subject.Org.ID
			case policy.OrgMonitoringProvider:
				res.MonitoringProviderID = subject.Org.ID
			}
		}
		if p, ok := authz.Permit(subject, s, res, now); ok {
			out = append(out, p)
		}
	}
	return out, true
}

// Scope fetches the caller's facts from the three owners (one parallel
// round) and turns the rule's view scope into what the list query
// matches. The records' dealer and provider are not kept current under
// this strategy, so an organization role in a dealer becomes the locations
// the Customer Service says the dealer services (POST
// /authz/locations:byDealers), and one in a monitoring provider first the
// dealers the Dealer Service says use the provider (POST
// /authz/dealers:byMonitoringProviders), then their locations. That is at
// most two more rounds, each paged by the owner, never a call per system;
// everything is asked again at every request, as fetch promises.
func (a *Authorizer) Scope(ctx context.Context, caller *auth.Caller, _ time.Time) (policy.Scope, error) {
	subject := authz.Subject(caller)
	if isUser(caller) && !slices.Contains(subject.AppRoles, policy.AppRoleAdmin) {
		// REALGUARDIO_ADMIN views everything whatever the facts: no call
		// can widen that scope.
		var err error
		if subject, err = a.SubjectFacts(ctx, caller.Subject); err != nil {
			return policy.Scope{}, err
		}
		// The page's Filter, in the same request, reuses them.
		authz.RememberSubject(ctx, caller.Subject, subject)
		subject.UserID, subject.AppRoles = caller.Subject, caller.Roles
	}
	sc := policy.ViewScope(subject)
	dealers := sc.DealerIDs
	if len(sc.MonitoringProviderIDs) > 0 {
		var err error
		if dealers, err = a.c.DealersByMonitoringProviders(ctx, sc.MonitoringProviderIDs); err != nil {
			return policy.Scope{}, err
		}
	}
	sc.DealerIDs, sc.MonitoringProviderIDs = nil, nil
	reach := listReach{locations: map[string]bool{}}
	if len(dealers) > 0 {
		locs, err := a.c.LocationsByDealers(ctx, dealers)
		if err != nil {
			return policy.Scope{}, err
		}
		for _, l := range locs {
			reach.locations[l] = true
		}
		sc.LocationIDs = append(sc.LocationIDs, locs...)
		slices.Sort(sc.LocationIDs)
		sc.LocationIDs = slices.Compact(sc.LocationIDs)
	}
	if isUser(caller) && !sc.All {
		// The page's Filter decides over the same reach.
		authz.RememberFacts(ctx, caller.Subject, reach)
	}
	return sc, nil
}

// AuthorizeCreate fetches the location and, unless the caller is a
// REALGUARDIO_ADMIN, the caller's facts from the three owners in parallel,
// and applies authz.CanCreate.
func (a *Authorizer) AuthorizeCreate(ctx context.Context, caller *auth.Caller, locationID string) (authz.CreateCheck, error) {
	subject := authz.Subject(caller)
	// CanCreate allows REALGUARDIO_ADMIN whatever the facts, so only
	// other users' facts are worth a call. The other owners are asked too,
	// although only a customer role can allow: a user claimed by two
	// organizations is an inconsistency that fails closed everywhere.
	needSubject := isUser(caller) && !slices.Contains(subject.AppRoles, policy.AppRoleAdmin)
	var loc *facts.Location
	g, gctx := errgroup.WithContext(ctx)
	merge := func(*policy.Subject) error { return nil }
	if needSubject {
		merge = a.c.GoSubjectFacts(g, gctx, caller.Subject)
	}
	g.Go(func() error {
		var err error
		loc, err = a.c.Location(gctx, locationID)
		return err
	})
	if err := g.Wait(); err != nil {
		return authz.CreateCheck{}, err
	}
	if err := merge(&subject); err != nil {
		return authz.CreateCheck{}, err
	}
	if loc == nil {
		return authz.CreateCheck{Decision: policy.Decision{Reason: policy.ReasonNoRole}}, nil
	}
	l := authz.Location{LocationID: locationID, CustomerID: loc.CustomerID, DealerID: facts.Deref(loc.DealerID)}
	return authz.CreateCheck{Found: true, Location: l, Decision: authz.CanCreate(subject, l.CustomerID)}, nil
}

// SubjectFacts returns userID's subject facts (organization, location
// roles, schedule) as the three owners know them, merged; UserID and
// AppRoles are left empty. An error is Unavailable.
func (a *Authorizer) SubjectFacts(ctx context.Context, userID string) (policy.Subject, error) {
	return a.c.SubjectFacts(ctx, userID)
}
