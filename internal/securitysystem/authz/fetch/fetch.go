// Package fetch is the fetch authorization strategy (AUTHZ.md): at decision
// time it asks the owners of the facts over HTTP (docs/fetch-api.md) and
// applies policy.IsAllowed to the answers. Nothing is cached except the
// service's own access token, so a decision is never stale; the price is a
// round trip per decision and a 503 whenever an owner is down.
//
// Round trips are kept to the minimum the rule allows: the caller's subject
// facts and the location's facts are fetched in parallel, and the dealer's
// facts only when the caller works for a monitoring provider (the only case
// in which the dealer's provider matters). A list costs one subject call,
// one batch location call and at most one batch dealer call, whatever the
// number of systems. Every call has a timeout and every dependency its own
// circuit breaker, so a dead dependency fails fast instead of holding
// requests.
package fetch

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/oauth2"
	"golang.org/x/sync/errgroup"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
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
}

// Authorizer is the fetch strategy. It is safe for concurrent use.
type Authorizer struct {
	r *remote
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
		ts = &discoveringTokenSource{
			issuer: cfg.Issuer, tokenURL: cfg.TokenURL,
			clientID: cfg.ClientID, clientSecret: cfg.ClientSecret,
			http: &http.Client{Transport: httpClient.Transport, Timeout: cfg.Timeout},
		}
	}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "realguardio_securitysystem_fetch_requests_total",
		Help: "Remote calls of the fetch authorization strategy, by dependency and outcome.",
	}, []string{"dependency", "outcome"})
	states := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "realguardio_securitysystem_fetch_breaker_state",
		Help: "Circuit breaker state per dependency of the fetch strategy: 0 closed, 1 half-open, 2 open.",
	}, []string{"dependency"})
	if reg != nil {
		if err := reg.Register(requests); err != nil {
			return nil, err
		}
		if err := reg.Register(states); err != nil {
			return nil, err
		}
	}
	r := &remote{
		http:     httpClient,
		timeout:  cfg.Timeout,
		base:     map[string]string{depCustomer: trim(cfg.CustomerURL), depDealer: trim(cfg.DealerURL), depMonitoring: trim(cfg.MonitoringURL)},
		breakers: map[string]*gobreaker.CircuitBreaker[struct{}]{},
		tokens:   ts,
		requests: requests,
	}
	for _, d := range []string{depCustomer, depDealer, depMonitoring, depIAM} {
		r.breakers[d] = newBreaker(d, cfg.BreakerFailures, cfg.BreakerOpen, states)
	}
	return &Authorizer{r: r}, nil
}

func trim(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}

// Name returns "fetch".
func (a *Authorizer) Name() string { return authz.StrategyFetch }

// Decide fetches the caller's facts and the location's facts in parallel,
// the dealer's only when needed, and applies the rule.
func (a *Authorizer) Decide(ctx context.Context, caller *auth.Caller, op policy.Op, ss authz.SystemRef, now time.Time) (policy.Decision, error) {
	subject := authz.Subject(caller)
	kinds := authz.EmployeeKinds(caller)
	if len(kinds) == 0 {
		// Without an employee role nobody can hold a security system role,
		// so the rule needs no fact beyond the token.
		return policy.IsAllowed(subject, op, policy.Resource{SecuritySystemID: ss.ID, LocationID: ss.LocationID}, now), nil
	}
	var loc *locationFacts
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.subjectFacts(gctx, caller.Subject, kinds, &subject) })
	g.Go(func() error {
		var err error
		loc, err = a.location(gctx, ss.LocationID)
		return err
	})
	if err := g.Wait(); err != nil {
		return policy.Decision{}, err
	}
	res := policy.Resource{SecuritySystemID: ss.ID, LocationID: ss.LocationID}
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

// Filter fetches the caller's facts and all locations in one batch call (in
// parallel), then the dealers of those locations in one batch call when the
// caller works for a monitoring provider, and applies the rule locally.
func (a *Authorizer) Filter(ctx context.Context, caller *auth.Caller, systems []authz.SystemRef, now time.Time) ([]authz.Permitted, error) {
	subject := authz.Subject(caller)
	kinds := authz.EmployeeKinds(caller)
	locs := map[string]locationFacts{}
	if len(kinds) > 0 && len(systems) > 0 {
		ids := make([]string, 0, len(systems))
		for _, s := range systems {
			ids = append(ids, s.LocationID)
		}
		slices.Sort(ids)
		ids = slices.Compact(ids)
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() error { return a.subjectFacts(gctx, caller.Subject, kinds, &subject) })
		g.Go(func() error {
			var err error
			locs, err = a.locations(gctx, ids)
			return err
		})
		if err := g.Wait(); err != nil {
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

// AuthorizeCreate fetches the location and, for a customer employee, the
// caller's facts in parallel, and applies authz.CanCreate.
func (a *Authorizer) AuthorizeCreate(ctx context.Context, caller *auth.Caller, locationID string) (authz.CreateCheck, error) {
	subject := authz.Subject(caller)
	var kinds []policy.OrgKind
	if slices.Contains(authz.EmployeeKinds(caller), policy.OrgCustomer) {
		// Only a customer's administrator (or the platform admin, known
		// from the token) may create, so other employers are never asked.
		kinds = []policy.OrgKind{policy.OrgCustomer}
	}
	var loc *locationFacts
	g, gctx := errgroup.WithContext(ctx)
	if len(kinds) > 0 {
		g.Go(func() error { return a.subjectFacts(gctx, caller.Subject, kinds, &subject) })
	}
	g.Go(func() error {
		var err error
		loc, err = a.location(gctx, locationID)
		return err
	})
	if err := g.Wait(); err != nil {
		return authz.CreateCheck{}, err
	}
	if loc == nil {
		return authz.CreateCheck{Decision: policy.Decision{Reason: policy.ReasonNoRole}}, nil
	}
	l := authz.Location{LocationID: locationID, CustomerID: loc.CustomerID, DealerID: deref(loc.DealerID)}
	return authz.CreateCheck{Found: true, Location: l, Decision: authz.CanCreate(subject, l.CustomerID)}, nil
}

// SubjectFacts returns userID's subject facts (organization, location
// roles, schedule) as the services of kinds know them, merged; UserID and
// AppRoles are left empty. The IAM's provide claims are built with it, so
// the provide and fetch strategies read the owners through the same client
// (timeouts, breakers, the same answer parsing). An error is Unavailable.
func (a *Authorizer) SubjectFacts(ctx context.Context, userID string, kinds []policy.OrgKind) (policy.Subject, error) {
	var s policy.Subject
	if len(kinds) == 0 {
		return s, nil
	}
	err := a.subjectFacts(ctx, userID, kinds, &s)
	return s, err
}

// subjectFacts asks each service that may employ the caller for its facts
// (in parallel when the token names several) and merges them into s.
func (a *Authorizer) subjectFacts(ctx context.Context, userID string, kinds []policy.OrgKind, s *policy.Subject) error {
	answers := make([]subjectFacts, len(kinds))
	g, gctx := errgroup.WithContext(ctx)
	for i, k := range kinds {
		g.Go(func() error {
			err := a.r.call(gctx, depOf(k), http.MethodGet, "/authz/subjects/"+url.PathEscape(userID), nil, &answers[i])
			if errors.Is(err, errNotFound) {
				return nil // not an employee there: no facts
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for i, ans := range answers {
		if ans.Organization != nil && s.Org == nil {
			// A user works for at most one organization; the service
			// asked is authoritative for the kind, whatever it answers.
			s.Org = &policy.Membership{Kind: kinds[i], ID: ans.Organization.ID, Roles: ans.Organization.Roles}
		}
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
