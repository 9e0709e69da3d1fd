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
// only case in which the dealer's provider matters). A list costs three
// subject calls and one batch location call in one round, then at most one
// batch dealer call, whatever the number of systems. Every call has a
// timeout and every dependency its own circuit breaker, so a dead
// dependency fails fast instead of holding requests.
package fetch

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/oauth2"
	"golang.org/x/sync/errgroup"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/breaker"
	"github.com/realguardio/realguardio/internal/platform/svcauth"
	"github.com/realguardio/realguardio/internal/platform/telemetry"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/securitysystem/authz"
)

// Config configures the fetch strategy.
type Config struct {
	// CustomerURL, DealerURL and MonitoringURL are the base URLs of the
	// Customer, Security System Dealer and Monitoring Provider services.
	CustomerURL   string
	DealerURL     string
	MonitoringURL string
	// Issuer is the IAM's issuer URL; its discovery document names the
	// token endpoint. TokenURL, when set, skips discovery.
	Issuer   string
	TokenURL string
	// ClientID and ClientSecret are the service's client credentials.
	ClientID     string
	ClientSecret string
	// Timeout bounds every remote call (default 2s).
	Timeout time.Duration
	// BreakerFailures is how many consecutive failures open a dependency's
	// breaker (default 5); BreakerOpen how long it stays open (default 5s).
	BreakerFailures uint32
	BreakerOpen     time.Duration
	// TokenSource, when set, replaces the client-credentials flow (tests).
	TokenSource oauth2.TokenSource
	// Logger receives the inconsistencies found between the owners'
	// answers (slog.Default() when nil).
	Logger *slog.Logger
}

// Authorizer is the fetch strategy. It is safe for concurrent use.
type Authorizer struct {
	r   *remote
	log *slog.Logger
}

var _ authz.Authorizer = (*Authorizer)(nil)

// New builds the strategy. httpClient carries the transport (nil means
// http.DefaultClient's); reg, when not nil, receives the call counters and
// breaker states.
func New(cfg Config, httpClient *http.Client, reg prometheus.Registerer) (*Authorizer, error) {
	for name, v := range map[string]string{"customer URL": cfg.CustomerURL, "dealer URL": cfg.DealerURL, "monitoring URL": cfg.MonitoringURL} {
		if u, err := url.Parse(v); err != nil || u.Host == "" {
			return nil, errors.New("fetch strategy: the " + name + " is not an absolute URL")
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.BreakerFailures == 0 {
		cfg.BreakerFailures = 5
	}
	if cfg.BreakerOpen <= 0 {
		cfg.BreakerOpen = 5 * time.Second
	}
	if httpClient == nil {
		httpClient = &http.Client{}
	}
	ts := cfg.TokenSource
	if ts == nil {
		if cfg.ClientID == "" || (cfg.Issuer == "" && cfg.TokenURL == "") {
			return nil, errors.New("fetch strategy: client credentials and the IAM issuer are required")
		}
		ts = svcauth.TokenSource(svcauth.Config{
			Issuer: cfg.Issuer, TokenURL: cfg.TokenURL,
			ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
			Scopes: []string{ScopeAuthzRead},
		}, &http.Client{Transport: httpClient.Transport, Timeout: cfg.Timeout})
	}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "realguardio_securitysystem_fetch_requests_total",
		Help: "Remote calls of the fetch authorization strategy, by dependency and outcome.",
	}, []string{"dependency", "outcome"})
	if reg != nil {
		if err := reg.Register(requests); err != nil {
			return nil, err
		}
	}
	r := &remote{
		// Calls to the owners carry the decision's trace.
		http:     &http.Client{Transport: telemetry.Transport(httpClient.Transport), Timeout: httpClient.Timeout},
		timeout:  cfg.Timeout,
		base:     map[string]string{depCustomer: trim(cfg.CustomerURL), depDealer: trim(cfg.DealerURL), depMonitoring: trim(cfg.MonitoringURL)},
		breakers: map[string]*breaker.Breaker{},
		tokens:   ts,
		requests: requests,
	}
	bp := breaker.Policy{Failures: cfg.BreakerFailures, OpenFor: cfg.BreakerOpen}
	for _, d := range []string{depCustomer, depDealer, depMonitoring, depIAM} {
		b, err := newBreaker(d, bp, reg)
		if err != nil {
			return nil, err
		}
		r.breakers[d] = b
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Authorizer{r: r, log: log}, nil
}

func trim(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
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
	var loc *locationFacts
	g, gctx := errgroup.WithContext(ctx)
	merge := a.goSubjectFacts(g, gctx, caller.Subject)
	g.Go(func() error {
		var err error
		loc, err = a.location(gctx, ss.LocationID)
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
		res.DealerID = deref(loc.DealerID)
	}
	if needsDealerFacts(subject) && res.DealerID != "" {
		d, err := a.dealer(ctx, res.DealerID)
		if err != nil {
			return policy.Decision{}, err
		}
		if d != nil {
			res.MonitoringProviderID = deref(d.MonitoringProviderID)
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

// Filter fetches the caller's facts from the three owners and all
// locations in one batch call, in one parallel round, then the dealers of
// those locations in one batch call when the caller works for a monitoring
// provider, and applies the rule locally.
func (a *Authorizer) Filter(ctx context.Context, caller *auth.Caller, systems []authz.SystemRef, now time.Time) ([]authz.Permitted, error) {
	subject := authz.Subject(caller)
	locs := map[string]locationFacts{}
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
			merge = a.goSubjectFacts(g, gctx, caller.Subject)
		}
		g.Go(func() error {
			var err error
			locs, err = a.locations(gctx, ids)
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
			if d := deref(l.DealerID); d != "" {
				dealerIDs = append(dealerIDs, d)
			}
		}
		slices.Sort(dealerIDs)
		dealerIDs = slices.Compact(dealerIDs)
		if len(dealerIDs) > 0 {
			ds, err := a.dealers(ctx, dealerIDs)
			if err != nil {
				return nil, err
			}
			for id, d := range ds {
				providers[id] = deref(d.MonitoringProviderID)
			}
		}
	}
	grants := hasGrants(subject)
	out := make([]authz.Permitted, 0, len(systems))
	for _, s := range systems {
		res := policy.Resource{SecuritySystemID: s.ID, LocationID: s.LocationID}
		if l, ok := locs[s.LocationID]; ok && grants {
			res.CustomerID = l.CustomerID
			res.DealerID = deref(l.DealerID)
			res.MonitoringProviderID = providers[res.DealerID]
		}
		if p, ok := authz.Permit(subject, s, res, now); ok {
			out = append(out, p)
		}
	}
	return out, nil
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
		if dealers, err = a.pagedIDs(ctx, depDealer, "/authz/dealers:byMonitoringProviders", "monitoringProviderIds", sc.MonitoringProviderIDs, "dealerIds"); err != nil {
			return policy.Scope{}, err
		}
	}
	sc.DealerIDs, sc.MonitoringProviderIDs = nil, nil
	if len(dealers) > 0 {
		locs, err := a.pagedIDs(ctx, depCustomer, "/authz/locations:byDealers", "dealerIds", dealers, "locationIds")
		if err != nil {
			return policy.Scope{}, err
		}
		sc.LocationIDs = append(sc.LocationIDs, locs...)
		slices.Sort(sc.LocationIDs)
		sc.LocationIDs = slices.Compact(sc.LocationIDs)
	}
	return sc, nil
}

// maxScopePages bounds the pages read of one owner's id list: at the
// owners' page size of 10 000 ids that is a million locations, far beyond
// any dealer, and a loop that never ends on a misbehaving owner is worse
// than a 503.
const maxScopePages = 100

// pagedIDs reads every page of an owner's id-list endpoint (docs/fetch-api.md,
// "Lists of ids"): POST {inKey: ids, "cursor": c} answering
// {outKey: [...], "nextCursor": c'}. A 404 means the owner lacks the
// endpoint, which no healthy owner does: no decision can be made.
func (a *Authorizer) pagedIDs(ctx context.Context, dep, path, inKey string, ids []string, outKey string) ([]string, error) {
	var out []string
	cursor := ""
	for range maxScopePages {
		body := map[string]any{inKey: ids}
		if cursor != "" {
			body["cursor"] = cursor
		}
		var ans map[string]json.RawMessage
		if err := a.r.call(ctx, dep, http.MethodPost, path, body, &ans); err != nil {
			return nil, notFoundIsUnavailable(err, serviceName(dep))
		}
		var page []string
		if err := json.Unmarshal(ans[outKey], &page); err != nil {
			return nil, apperr.Wrap(err, apperr.Unavailable, "the %s service answered an unreadable id list", serviceName(dep))
		}
		out = append(out, page...)
		cursor = ""
		if raw, ok := ans["nextCursor"]; ok {
			_ = json.Unmarshal(raw, &cursor) // null leaves it empty
		}
		if cursor == "" {
			return out, nil
		}
	}
	return nil, apperr.New(apperr.Unavailable, "the %s service's id list does not end", serviceName(dep))
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
	var loc *locationFacts
	g, gctx := errgroup.WithContext(ctx)
	merge := func(*policy.Subject) error { return nil }
	if needSubject {
		merge = a.goSubjectFacts(g, gctx, caller.Subject)
	}
	g.Go(func() error {
		var err error
		loc, err = a.location(gctx, locationID)
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
	l := authz.Location{LocationID: locationID, CustomerID: loc.CustomerID, DealerID: deref(loc.DealerID)}
	return authz.CreateCheck{Found: true, Location: l, Decision: authz.CanCreate(subject, l.CustomerID)}, nil
}

// SubjectFacts returns userID's subject facts (organization, location
// roles, schedule) as the three owners know them, merged; UserID and
// AppRoles are left empty. The IAM's provide claims are built with it, so
// the provide and fetch strategies read the owners through the same client
// (timeouts, breakers, the same answer parsing and the same consistency
// check). An error is Unavailable.
func (a *Authorizer) SubjectFacts(ctx context.Context, userID string) (policy.Subject, error) {
	var s policy.Subject
	g, gctx := errgroup.WithContext(ctx)
	merge := a.goSubjectFacts(g, gctx, userID)
	if err := g.Wait(); err != nil {
		return s, err
	}
	err := merge(&s)
	return s, err
}

// owners are the services that may employ a user, in the order their
// answers are merged.
var owners = []policy.OrgKind{policy.OrgCustomer, policy.OrgDealer, policy.OrgMonitoringProvider}

// goSubjectFacts starts, in g, one GET /authz/subjects/{userId} per owner.
// The calls join whatever else g runs (the location facts), so the subject
// facts add no round trip of their own. Once g.Wait has returned nil, the
// returned function merges the answers into s.
func (a *Authorizer) goSubjectFacts(g *errgroup.Group, ctx context.Context, userID string) func(s *policy.Subject) error {
	answers := make([]subjectFacts, len(owners))
	for i, k := range owners {
		g.Go(func() error {
			err := a.r.call(ctx, depOf(k), http.MethodGet, "/authz/subjects/"+url.PathEscape(userID), nil, &answers[i])
			if errors.Is(err, errNotFound) {
				return nil // not an employee there: no facts
			}
			return err
		})
	}
	return func(s *policy.Subject) error { return a.merge(ctx, userID, answers, s) }
}

// merge folds the owners' answers (indexed like owners) into s. A user is
// an employee of at most one organization (AUTHZ.md); when several owners
// claim the user, no answer is more authoritative than another, so the
// decision fails closed and the inconsistency is logged for an operator.
func (a *Authorizer) merge(ctx context.Context, userID string, answers []subjectFacts, s *policy.Subject) error {
	var claimedBy []string
	for i, ans := range answers {
		if ans.Organization == nil {
			continue
		}
		claimedBy = append(claimedBy, string(owners[i])+" "+ans.Organization.ID)
		// The service asked is authoritative for the kind, whatever
		// kind it writes in its answer.
		s.Org = &policy.Membership{Kind: owners[i], ID: ans.Organization.ID, Roles: ans.Organization.Roles}
	}
	if len(claimedBy) > 1 {
		a.log.ErrorContext(ctx, "authorization facts are inconsistent: more than one organization claims the user as an employee; failing closed until the owners agree",
			"user_id", userID, "claimed_by", claimedBy)
		return apperr.New(apperr.Unavailable, "the organization services disagree about the user's employer")
	}
	for _, ans := range answers {
		for loc, roles := range ans.LocationRoles {
			if len(roles) == 0 {
				continue
			}
			if s.LocationRoles == nil {
				s.LocationRoles = map[string][]string{}
			}
			s.LocationRoles[loc] = append(s.LocationRoles[loc], roles...)
		}
		if ans.Schedule != nil && s.Schedule == nil {
			s.Schedule = ans.Schedule
		}
	}
	return nil
}

func depOf(k policy.OrgKind) string {
	switch k {
	case policy.OrgDealer:
		return depDealer
	case policy.OrgMonitoringProvider:
		return depMonitoring
	}
	return depCustomer
}

func (a *Authorizer) location(ctx context.Context, id string) (*locationFacts, error) {
	var l locationFacts
	err := a.r.call(ctx, depCustomer, http.MethodGet, "/authz/locations/"+url.PathEscape(id), nil, &l)
	if errors.Is(err, errNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &l, nil
}

func (a *Authorizer) locations(ctx context.Context, ids []string) (map[string]locationFacts, error) {
	var ans struct {
		Locations []locationFacts `json:"locations"`
	}
	if err := a.r.call(ctx, depCustomer, http.MethodPost, "/authz/locations:batch", map[string]any{"locationIds": ids}, &ans); err != nil {
		return nil, notFoundIsUnavailable(err, "Customer")
	}
	out := make(map[string]locationFacts, len(ans.Locations))
	for _, l := range ans.Locations {
		out[l.LocationID] = l
	}
	return out, nil
}

func (a *Authorizer) dealer(ctx context.Context, id string) (*dealerFacts, error) {
	var d dealerFacts
	err := a.r.call(ctx, depDealer, http.MethodGet, "/authz/dealers/"+url.PathEscape(id), nil, &d)
	if errors.Is(err, errNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &d, nil
}

func (a *Authorizer) dealers(ctx context.Context, ids []string) (map[string]dealerFacts, error) {
	var ans struct {
		Dealers []dealerFacts `json:"dealers"`
	}
	if err := a.r.call(ctx, depDealer, http.MethodPost, "/authz/dealers:batch", map[string]any{"dealerIds": ids}, &ans); err != nil {
		return nil, notFoundIsUnavailable(err, "Security System Dealer")
	}
	out := make(map[string]dealerFacts, len(ans.Dealers))
	for _, d := range ans.Dealers {
		out[d.DealerID] = d
	}
	return out, nil
}

// notFoundIsUnavailable turns a 404 from a batch endpoint, which always
// exists on a healthy owner, into a failure to decide.
func notFoundIsUnavailable(err error, service string) error {
	if errors.Is(err, errNotFound) {
		return apperr.Wrap(err, apperr.Unavailable, "the %s service is unavailable", service)
	}
	return err
}

// subjectFacts is the answer of GET /authz/subjects/{userId}.
type subjectFacts struct {
	UserID       string `json:"userId"`
	Organization *struct {
		Kind  string   `json:"kind"`
		ID    string   `json:"id"`
		Roles []string `json:"roles"`
	} `json:"organization"`
	LocationRoles map[string][]string `json:"locationRoles"`
	Schedule      *policy.Schedule    `json:"schedule"`
}

// locationFacts is one location of GET /authz/locations/{id} and of the
// batch call.
type locationFacts struct {
	LocationID string  `json:"locationId"`
	CustomerID string  `json:"customerId"`
	DealerID   *string `json:"dealerId"`
}

// dealerFacts is one dealer of GET /authz/dealers/{id} and of the batch
// call.
type dealerFacts struct {
	DealerID             string  `json:"dealerId"`
	MonitoringProviderID *string `json:"monitoringProviderId"`
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
