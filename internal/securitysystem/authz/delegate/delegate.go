// Package delegate is the delegate authorization strategy (AUTHZ.md,
// docs/delegate.md): the Security System Service holds none of the facts
// of the rule and asks OpenFGA, which the authorization sync
// (internal/authzsync) keeps up to date from the owners' events. The model
// and the encoding of facts and Check requests are internal/policy/openfga;
// the instant of the decision goes in the Check context as current_time,
// which the model's schedule condition reads.
//
// Round trips: a decision is one Check when allowed; a denied arm or
// disarm costs a second Check of the role-only relation (arm_granted,
// disarm_granted) to tell no_role from outside_schedule, so the allowed
// path, the common one, pays for no reason it does not need. A list page
// is the caller's grants read from OpenFGA (seven indexed Reads of the
// caller's own tuples in one round, three more per team), a local query
// over them (Scope), and the page's actions resolved over the same grants
// with one on_duty Check (Filter), asked only when the page holds a system
// the caller may arm or disarm: never a Check per system. ListObjects is
// not used: its answer is capped (1000 objects by default), which would
// silently truncate an administrator's list. A creation is one Check of
// the location's can_create_security_system with the location's customer
// and dealer read alongside it (one round trip): from the facts the
// resource facts consumer keeps locally when it knows the location
// (WithKnownLocations), else from OpenFGA's tuples, plus then a read of the
// dealer's provider when allowed; an import of n known locations is
// ⌈n/50⌉ BatchCheck calls. Creation needs no other service, as the
// strategy intends.
package delegate

import (
	"context"
	"slices"
	"strings"
	"time"

	openfgav1 "github.com/openfga/api/proto/openfga/v1"
	"golang.org/x/sync/errgroup"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/fga"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/openfga"
	"github.com/realguardio/realguardio/internal/securitysystem/authz"
)

// Authorizer is the delegate strategy. It is safe for concurrent use.
type Authorizer struct {
	fga   *fga.Client
	known KnownLocations
}

// KnownLocations returns the resource facts (customer, dealer, the
// dealer's provider) that the service holds locally of those of ids it
// knows, and leaves the others out: provide.KnownLocations, the tables the
// resource facts consumer keeps under this strategy too.
type KnownLocations func(ctx context.Context, ids []string) (map[string]authz.Location, error)

// Option configures an Authorizer.
type Option func(*Authorizer)

// WithKnownLocations makes creation read a location's facts from known
// instead of OpenFGA's tuples, and ask OpenFGA only about the locations
// known does not hold. A bulk import then costs its BatchChecks (one call
// per 50 locations) and one local query per 200 locations, instead of one
// OpenFGA Read per location, which at 10⁴ systems ran past the server's
// write timeout. The decision itself is still OpenFGA's Check.
func WithKnownLocations(known KnownLocations) Option {
	return func(a *Authorizer) { a.known = known }
}

var (
	_ authz.Authorizer           = (*Authorizer)(nil)
	_ authz.BulkCreateAuthorizer = (*Authorizer)(nil)
)

// New returns the strategy asking the OpenFGA server of client. The client
// bootstraps the store and model on first use, so New makes no call.
func New(client *fga.Client, opts ...Option) *Authorizer {
	a := &Authorizer{fga: client}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Name returns "delegate".
func (a *Authorizer) Name() string { return authz.StrategyDelegate }

// Ready reports whether OpenFGA answers with the store and model in place;
// the service may add it to /readyz.
func (a *Authorizer) Ready(ctx context.Context) error { return a.fga.Ready(ctx) }

// Decide asks OpenFGA whether the caller may perform op on the system at
// now, and on a denied arm or disarm asks again for the reason.
func (a *Authorizer) Decide(ctx context.Context, caller *auth.Caller, op policy.Op, ss authz.SystemRef, now time.Time) (policy.Decision, error) {
	s := authz.Subject(caller)
	if s.UserID == "" || openfga.Relation(op) == "" || ss.ID == "" {
		// A service token holds no roles, and an unknown op is no role.
		return policy.Decision{Reason: policy.ReasonNoRole}, nil
	}
	allowed, err := a.fga.Check(ctx, openfga.CheckRequest(s.UserID, s.AppRoles, op, ss.ID, now))
	if err != nil {
		return policy.Decision{}, err
	}
	if allowed || op == policy.OpView {
		// View is not scheduled: its role-only relation is itself.
		return openfga.DecisionOf(allowed, false), nil
	}
	granted, err := a.fga.Check(ctx, openfga.GrantedCheckRequest(s.UserID, s.AppRoles, op, ss.ID, now))
	if err != nil {
		return policy.Decision{}, err
	}
	return openfga.DecisionOf(false, granted), nil
}

// Filter returns, in input order, the systems the caller may view with the
// actions allowed now. Its cost is bounded by the caller's own tuples, not
// by the number of systems: it reads the caller's grants from OpenFGA
// (grants: the tuples naming the user, and those of the user's teams, the
// same Reads as Scope, which a list page has made already) and asks one
// Check, whether the caller is on duty now (OnDutyCheckRequest: the
// schedule condition evaluated by OpenFGA), which a list page asks only
// when it holds a system where the caller holds armer or disarmer, since
// on duty changes nothing else; then it resolves each system's can_view,
// can_arm and can_disarm over
// those grants and the record's resource facts exactly as the model
// defines them (model.fga):
//
//   - a relation r of the system is r held at its location, directly or
//     through a team, or at the location's customer, or at its dealer, or
//     at the dealer's monitoring provider (servicing_r);
//   - can_view is viewer, armer or disarmer so held, or REALGUARDIO_ADMIN
//     (the token's role, OpenFGA's contextual admin tuple);
//   - can_arm is armer so held and on duty; can_disarm likewise.
//
// The location of a system never changes and its customer, dealer and
// provider on the record are kept current by the resource facts consumer
// from the same events the sync writes to OpenFGA, so this answers as the
// per-system Checks would, within the same propagation delay. What it
// saves: a page of 500 systems cost 1 500 Checks of about 15 datastore
// reads each (seconds on a busy OpenFGA, past the call timeout), and now
// costs a handful of indexed Reads and one Check whatever the page size.
// A system whose record holds no resource facts is asked about one by one
// instead (checkEach), never guessed. Decisions that change something
// (Decide, AuthorizeCreate) are still OpenFGA Checks.
func (a *Authorizer) Filter(ctx context.Context, caller *auth.Caller, systems []authz.SystemRef, now time.Time) ([]authz.Permitted, error) {
	s := authz.Subject(caller)
	out := make([]authz.Permitted, 0, len(systems))
	if s.UserID == "" || len(systems) == 0 {
		return out, nil
	}
	var (
		gr      grants
		onDuty  bool
		unknown []authz.SystemRef
	)
	for _, ss := range systems {
		if ss.CustomerID == "" {
			unknown = append(unknown, ss)
		}
	}
	remembered, known := rememberedGrants(ctx, s.UserID)
	if known && len(unknown) == 0 {
		// A list page: its Scope read the grants in this request. Whether
		// the caller is on duty matters only if the page holds a system
		// where it holds armer or disarmer; a viewer's page, or one of
		// systems viewed only through REALGUARDIO_ADMIN, asks nothing.
		gr = remembered
		if gr.actsOnAny(systems) {
			var err error
			if onDuty, err = a.fga.Check(ctx, openfga.OnDutyCheckRequest(s.UserID, now)); err != nil {
				return nil, err
			}
		}
	} else {
		// One system's view (or records without facts): read the grants
		// and ask the Check in the same round.
		g, gctx := errgroup.WithContext(ctx)
		if len(unknown) < len(systems) {
			g.Go(func() error {
				var err error
				gr, err = a.grants(gctx, s.UserID)
				return err
			})
		}
		g.Go(func() error {
			var err error
			onDuty, err = a.fga.Check(gctx, openfga.OnDutyCheckRequest(s.UserID, now))
			return err
		})
		if err := g.Wait(); err != nil {
			return nil, err
		}
	}
	checked, err := a.checkEach(ctx, s, unknown, onDuty, now)
	if err != nil {
		return nil, err
	}
	admin := slices.Contains(s.AppRoles, policy.AppRoleAdmin)
	for _, ss := range systems {
		if ss.CustomerID == "" {
			if p, ok := checked[ss.ID]; ok {
				out = append(out, p)
			}
			continue
		}
		held := gr.at(ss)
		if !held.any() && !admin {
			continue
		}
		actions := []string{}
		if onDuty && held.armer {
			actions = append(actions, authz.ActionArm)
		}
		if onDuty && held.disarmer {
			actions = append(actions, authz.ActionDisarm)
		}
		out = append(out, authz.Permitted{System: ss, Actions: actions})
	}
	return out, nil
}

// checkEach decides systems whose record holds no resource facts (every
// location has a customer, so a record without one predates the facts or
// was written without them) by asking OpenFGA about each, in at most two
// BatchChecks split into calls of 50: can_view of every system, then,
// only when on duty, arm_granted and disarm_granted of the viewable ones.
// This decides exactly as can_arm and can_disarm do: they are *_granted
// and on_duty from the system's platform, the one platform object.
func (a *Authorizer) checkEach(ctx context.Context, s policy.Subject, systems []authz.SystemRef, onDuty bool, now time.Time) (map[string]authz.Permitted, error) {
	out := make(map[string]authz.Permitted, len(systems))
	if len(systems) == 0 {
		return out, nil
	}
	reqs := make([]*openfgav1.CheckRequest, 0, len(systems))
	for _, ss := range systems {
		reqs = append(reqs, openfga.CheckRequest(s.UserID, s.AppRoles, policy.OpView, ss.ID, now))
	}
	got, err := a.fga.BatchCheck(ctx, reqs)
	if err != nil {
		return nil, err
	}
	var viewable []authz.SystemRef
	for i, ss := range systems {
		if got[i] {
			viewable = append(viewable, ss)
		}
	}
	granted := make([]bool, 2*len(viewable))
	if onDuty && len(viewable) > 0 {
		reqs = reqs[:0]
		for _, ss := range viewable {
			reqs = append(reqs,
				openfga.GrantedCheckRequest(s.UserID, s.AppRoles, policy.OpArm, ss.ID, now),
				openfga.GrantedCheckRequest(s.UserID, s.AppRoles, policy.OpDisarm, ss.ID, now))
		}
		if granted, err = a.fga.BatchCheck(ctx, reqs); err != nil {
			return nil, err
		}
	}
	for i, ss := range viewable {
		actions := []string{}
		if granted[2*i] {
			actions = append(actions, authz.ActionArm)
		}
		if granted[2*i+1] {
			actions = append(actions, authz.ActionDisarm)
		}
		out[ss.ID] = authz.Permitted{System: ss, Actions: actions}
	}
	return out, nil
}

// viewRelations are the relations of customer, dealer, monitoring_provider
// and location that grant view (model.fga: viewer includes armer and
// disarmer).
var viewRelations = []string{"armer", "disarmer", "viewer"}

// maxParallelReads bounds the Reads in flight for one list, so a member
// of many teams does not flood the server.
const maxParallelReads = 8

// roles is which of the model's role relations a user holds on one object.
type roles struct{ armer, disarmer, viewer bool }

func (r *roles) add(relation string) {
	switch relation {
	case "armer":
		r.armer = true
	case "disarmer":
		r.disarmer = true
	case "viewer":
		r.viewer = true
	}
}

func (r roles) or(o roles) roles {
	return roles{r.armer || o.armer, r.disarmer || o.disarmer, r.viewer || o.viewer}
}

func (r roles) any() bool { return r.armer || r.disarmer || r.viewer }

// grants is a user's role relations on the grant roots of the model: the
// organizations (customer, dealer, monitoring_provider) and the locations,
// those held through a team included.
type grants struct {
	customers, dealers, providers, locations map[string]roles
}

// at returns the role relations the user holds on a system with the
// record's resource facts, as model.fga's location relations combine them.
func (g grants) at(ss authz.SystemRef) roles {
	var r roles
	look := func(m map[string]roles, id string) {
		if id != "" {
			r = r.or(m[id])
		}
	}
	look(g.locations, ss.LocationID)
	look(g.customers, ss.CustomerID)
	look(g.dealers, ss.DealerID)
	if ss.DealerID != "" {
		look(g.providers, ss.MonitoringProviderID)
	}
	return r
}

// actsOnAny reports whether the user holds armer or disarmer on any of the
// systems (with their records' resource facts), the only case in which
// being on duty changes a page's actions.
func (g grants) actsOnAny(systems []authz.SystemRef) bool {
	for _, ss := range systems {
		if r := g.at(ss); r.armer || r.disarmer {
			return true
		}
	}
	return false
}

// rememberedGrants returns the grants of userID that this request read
// already (the request memo of authz.WithRequestMemo), if any.
func rememberedGrants(ctx context.Context, userID string) (grants, bool) {
	if g, ok := authz.RememberedFacts(ctx, userID); ok {
		if gr, ok := g.(grants); ok {
			return gr, true
		}
	}
	return grants{}, false
}

// grants reads the user's grant roots from OpenFGA, each a Read of the
// tuples naming the user on one type, all in one parallel round: the
// organization roles (customer, dealer, monitoring_provider), the direct
// location roles and the team memberships; then, in a second round, the
// location roles of those teams. Its cost grows with the user's own
// tuples, never with the platform's (OpenFGA indexes tuples by user); no
// ListObjects, whose answer is capped. Within one request (the request
// memo of authz.WithRequestMemo) they are read once: Scope and the page's
// Filter share them.
func (a *Authorizer) grants(ctx context.Context, userID string) (grants, error) {
	// A list page's Scope read them moments ago in the same request.
	if gr, ok := rememberedGrants(ctx, userID); ok {
		return gr, nil
	}
	gr, err := a.readGrants(ctx, userID)
	if err == nil {
		authz.RememberFacts(ctx, userID, gr)
	}
	return gr, err
}

// grantReads are the Reads of one user's (or team's) grant roots: one per
// organization type and the team memberships, whose tuples number the
// platform's organization roles and members, not its systems; and one per
// role relation on location, whose tuples grow with the platform (every
// location holds its customer and dealer tuples). OpenFGA's index by user
// starts (store, object type, relation, user): on PostgreSQL a Read naming
// the user and the type but no relation reads every tuple of the type
// through its (store, object_type) prefix, which made the location Read of
// every list page cost the whole platform's locations. Naming the relation
// makes each an index lookup of the user's own tuples (on the embedded
// SQLite datastore thanks to the planner statistics the server seeds,
// docs/delegate.md "Tuning").
func grantReads(user string, member bool) []*openfgav1.ReadRequestTupleKey {
	var out []*openfgav1.ReadRequestTupleKey
	if !member {
		for _, typ := range []string{openfga.TypeCustomer, openfga.TypeDealer, openfga.TypeMonitoringProvider} {
			out = append(out, &openfgav1.ReadRequestTupleKey{User: user, Object: typ + ":"})
		}
		out = append(out, &openfgav1.ReadRequestTupleKey{User: user, Relation: "member", Object: openfga.TypeTeam + ":"})
	}
	for _, rel := range viewRelations {
		out = append(out, &openfgav1.ReadRequestTupleKey{User: user, Relation: rel, Object: openfga.TypeLocation + ":"})
	}
	return out
}

// readAll runs the Reads in parallel (at most maxParallelReads at once) and
// returns their tuples in the order of keys.
func (a *Authorizer) readAll(ctx context.Context, keys []*openfgav1.ReadRequestTupleKey) ([][]*openfgav1.Tuple, error) {
	found := make([][]*openfgav1.Tuple, len(keys))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(maxParallelReads)
	for i, k := range keys {
		g.Go(func() error {
			var err error
			found[i], err = a.fga.Read(gctx, k)
			return err
		})
	}
	return found, g.Wait()
}

// readGrants reads the user's grant roots from OpenFGA (grants).
func (a *Authorizer) readGrants(ctx context.Context, userID string) (grants, error) {
	found, err := a.readAll(ctx, grantReads(openfga.Object(openfga.TypeUser, userID), false))
	if err != nil {
		return grants{}, err
	}
	gr := grants{customers: map[string]roles{}, dealers: map[string]roles{}, providers: map[string]roles{}, locations: map[string]roles{}}
	byType := map[string]map[string]roles{
		openfga.TypeCustomer: gr.customers, openfga.TypeDealer: gr.dealers,
		openfga.TypeMonitoringProvider: gr.providers, openfga.TypeLocation: gr.locations,
	}
	var teams []string
	add := func(t *openfgav1.Tuple) {
		typ, id, _ := strings.Cut(t.GetKey().GetObject(), ":")
		rel := t.GetKey().GetRelation()
		if typ == openfga.TypeTeam && rel == "member" {
			teams = append(teams, id)
			return
		}
		if m, ok := byType[typ]; ok && slices.Contains(viewRelations, rel) {
			r := m[id]
			r.add(rel)
			m[id] = r
		}
	}
	for _, ts := range found {
		for _, t := range ts {
			add(t)
		}
	}
	var keys []*openfgav1.ReadRequestTupleKey
	for _, team := range teams {
		keys = append(keys, grantReads(openfga.Object(openfga.TypeTeam, team)+"#member", true)...)
	}
	if found, err = a.readAll(ctx, keys); err != nil {
		return grants{}, err
	}
	for _, ts := range found {
		for _, t := range ts {
			if strings.HasPrefix(t.GetKey().GetObject(), openfga.TypeLocation+":") {
				add(t)
			}
		}
	}
	return gr, nil
}

// Scope returns the caller's grant roots read from OpenFGA (grants): the
// organizations and locations where the caller holds a view relation. The
// records' dealer and monitoring provider, which the scope's organization
// ids are matched against, are kept current by the resource facts
// consumer, which runs under this strategy too (within the same event
// propagation delay as OpenFGA's own tuples); the page's actions are then
// Filter's, over the same grants.
func (a *Authorizer) Scope(ctx context.Context, caller *auth.Caller, _ time.Time) (policy.Scope, error) {
	s := authz.Subject(caller)
	if s.UserID == "" || slices.Contains(s.AppRoles, policy.AppRoleAdmin) {
		return policy.ViewScope(s), nil
	}
	gr, err := a.grants(ctx, s.UserID)
	if err != nil {
		return policy.Scope{}, err
	}
	var sc policy.Scope
	for _, x := range []struct {
		m   map[string]roles
		out *[]string
	}{{gr.customers, &sc.CustomerIDs}, {gr.dealers, &sc.DealerIDs}, {gr.providers, &sc.MonitoringProviderIDs}, {gr.locations, &sc.LocationIDs}} {
		for id, r := range x.m {
			if r.any() {
				*x.out = append(*x.out, id)
			}
		}
		slices.Sort(*x.out)
	}
	return sc, nil
}

// objectID returns the id of "type:id".
func objectID(object string) string {
	_, id, _ := strings.Cut(object, ":")
	return id
}

// AuthorizeCreate decides the creation of a system at locationID with one
// Check of can_create_security_system (an administrator of the location's
// customer, or REALGUARDIO_ADMIN from the token as a contextual tuple), as
// AuthorizeCreates decides an import of one location.
func (a *Authorizer) AuthorizeCreate(ctx context.Context, caller *auth.Caller, locationID string) (authz.CreateCheck, error) {
	out, err := a.AuthorizeCreates(ctx, caller, []string{locationID})
	if err != nil {
		return authz.CreateCheck{}, err
	}
	return out[0], nil
}

// AuthorizeCreates decides the creations of a bulk import at many
// locations: one BatchCheck of can_create_security_system for all of them
// (calls of 50, fga.Config.BatchConcurrency at once), and in the same round
// the locations' facts. A location is found when the service knows its
// facts locally (WithKnownLocations: one query per 200 locations, no
// OpenFGA call) or, for the others, when OpenFGA holds its customer tuple
// (one Read of the location's tuples, its customer and dealer together, at
// most maxParallelReads at once); a location found by neither is reported
// as not found (an invalid locationId) whatever the Check says, since the
// admin is allowed at any location id. Only the allowed locations found in
// OpenFGA with a dealer read the dealer's provider, once per distinct
// dealer, a second round. With every location known locally an import of
// n locations is ⌈n/50⌉ OpenFGA calls: one Read per location made an
// import of a thousand locations run past the server's write timeout at
// 10⁴ systems. The facts go on the new records, where under this strategy
// they are informational (the store's create hook, provide.FillKnownFacts,
// sets the locally known ones again): decisions on the systems ask OpenFGA.
func (a *Authorizer) AuthorizeCreates(ctx context.Context, caller *auth.Caller, locationIDs []string) ([]authz.CreateCheck, error) {
	s := authz.Subject(caller)
	out := make([]authz.CreateCheck, len(locationIDs))
	allowed := make([]bool, len(locationIDs))
	facts := make([]authz.Location, len(locationIDs))
	// fromFGA marks the facts read from OpenFGA's tuples, whose dealer's
	// provider is still to read.
	fromFGA := make([]bool, len(locationIDs))
	g, gctx := errgroup.WithContext(ctx)
	if s.UserID != "" {
		// A service token holds no roles: nothing to ask.
		g.Go(func() error {
			reqs := make([]*openfgav1.CheckRequest, len(locationIDs))
			for i, l := range locationIDs {
				reqs[i] = openfga.CreateCheckRequest(s.UserID, s.AppRoles, l)
			}
			got, err := a.fga.BatchCheck(gctx, reqs)
			copy(allowed, got)
			return err
		})
	}
	g.Go(func() error {
		known := map[string]authz.Location{}
		if a.known != nil {
			var err error
			if known, err = a.known(gctx, locationIDs); err != nil {
				return apperr.Wrap(err, apperr.Unavailable, "the locations' facts cannot be read")
			}
		}
		reads, rctx := errgroup.WithContext(gctx)
		reads.SetLimit(maxParallelReads)
		for i, l := range locationIDs {
			if k, ok := known[l]; ok && k.CustomerID != "" {
				facts[i] = k
				continue
			}
			fromFGA[i] = true
			reads.Go(func() error {
				tuples, err := a.fga.Read(rctx, &openfgav1.ReadRequestTupleKey{Object: openfga.Object(openfga.TypeLocation, l)})
				if err != nil {
					return err
				}
				facts[i].LocationID = l
				for _, t := range tuples {
					switch t.GetKey().GetRelation() {
					case "customer":
						facts[i].CustomerID = objectID(t.GetKey().GetUser())
					case "dealer":
						facts[i].DealerID = objectID(t.GetKey().GetUser())
					}
				}
				return nil
			})
		}
		return reads.Wait()
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var dealers []string
	for i, l := range facts {
		if fromFGA[i] && l.CustomerID != "" && allowed[i] && l.DealerID != "" && !slices.Contains(dealers, l.DealerID) {
			dealers = append(dealers, l.DealerID)
		}
	}
	found := make([]string, len(dealers))
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(maxParallelReads)
	for i, d := range dealers {
		g.Go(func() error {
			var err error
			found[i], err = a.related(gctx, openfga.Object(openfga.TypeDealer, d), "monitoring_provider")
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	providers := make(map[string]string, len(dealers))
	for i, d := range dealers {
		providers[d] = found[i]
	}
	for i, l := range facts {
		switch {
		case l.CustomerID == "":
			out[i] = authz.CreateCheck{Decision: policy.Decision{Reason: policy.ReasonNoRole}}
		case !allowed[i]:
			// The provider is read for allowed creations only.
			l.MonitoringProviderID = ""
			out[i] = authz.CreateCheck{Found: true, Location: l, Decision: policy.Decision{Reason: policy.ReasonNoRole}}
		default:
			if fromFGA[i] {
				l.MonitoringProviderID = providers[l.DealerID]
			}
			out[i] = authz.CreateCheck{Found: true, Location: l, Decision: policy.Decision{Allowed: true}}
		}
	}
	return out, nil
}

// related returns the id of the one object related to object by relation
// ("" when none), for the single-valued relations of the model.
func (a *Authorizer) related(ctx context.Context, object, relation string) (string, error) {
	tuples, err := a.fga.Read(ctx, &openfgav1.ReadRequestTupleKey{Object: object, Relation: relation})
	if err != nil {
		return "", err
	}
	if len(tuples) == 0 {
		return "", nil
	}
	_, id, ok := strings.Cut(tuples[0].GetKey().GetUser(), ":")
	if !ok {
		return "", apperr.New(apperr.Internal, "unexpected tuple in the authorization server")
	}
	return id, nil
}
