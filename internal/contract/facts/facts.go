package facts

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/oauth2"
	"golang.org/x/sync/errgroup"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/breaker"
	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/platform/svcauth"
	"github.com/realguardio/realguardio/internal/platform/telemetry"
	"github.com/realguardio/realguardio/internal/policy"
)

// Config configures the client.
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
	// ClientID and ClientSecret are the caller's client credentials.
	ClientID     string
	ClientSecret string
	// Timeout bounds every remote call (default 2s).
	Timeout time.Duration
	// BreakerFailures is how many consecutive failures open a dependency's
	// breaker (default 5); BreakerOpen how long it stays open (default 5s).
	BreakerFailures uint32
	BreakerOpen     time.Duration
	// TokenSource, when set, replaces the client-credentials flow (the
	// IAM mints its own tokens; tests).
	TokenSource oauth2.TokenSource
	// Logger receives the inconsistencies found between the owners'
	// answers (slog.Default() when nil).
	Logger *slog.Logger
}

// Client calls the facts endpoints of the three organization services. It
// is safe for concurrent use. Every error it returns is an Unavailable
// *apperr.Error (or a breaker refusal, which maps the same way): an answer
// that cannot be had is never guessed.
type Client struct {
	r   *remote
	log *slog.Logger
}

// New builds the client. httpClient carries the transport (nil means
// http.DefaultClient's); reg, when not nil, receives the call counters and
// breaker states.
func New(cfg Config, httpClient *http.Client, reg prometheus.Registerer) (*Client, error) {
	for name, v := range map[string]string{"customer URL": cfg.CustomerURL, "dealer URL": cfg.DealerURL, "monitoring URL": cfg.MonitoringURL} {
		if u, err := url.Parse(v); err != nil || u.Host == "" {
			return nil, errors.New("authorization facts client: the " + name + " is not an absolute URL")
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
			return nil, errors.New("authorization facts client: client credentials and the IAM issuer are required")
		}
		ts = svcauth.TokenSource(svcauth.Config{
			Issuer: cfg.Issuer, TokenURL: cfg.TokenURL,
			ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
			Scopes: []string{ScopeRead},
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
	owners := httpClient.Transport
	if owners == nil {
		// A decision's calls go out in parallel, two of them to the
		// Customer Service: keep their connections for the next one.
		owners = httpx.PooledTransport(32)
	}
	r := &remote{
		// Calls to the owners carry the decision's trace.
		http:     &http.Client{Transport: telemetry.Transport(owners), Timeout: httpClient.Timeout},
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
	return &Client{r: r, log: log}, nil
}

func trim(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}

// SubjectFacts returns userID's subject facts (organization, location
// roles, schedule) as the three owners know them, merged; UserID and
// AppRoles are left empty.
func (c *Client) SubjectFacts(ctx context.Context, userID string) (policy.Subject, error) {
	var s policy.Subject
	g, gctx := errgroup.WithContext(ctx)
	merge := c.GoSubjectFacts(g, gctx, userID)
	if err := g.Wait(); err != nil {
		return s, err
	}
	err := merge(&s)
	return s, err
}

// owners are the services that may employ a user, in the order their
// answers are merged.
var owners = []policy.OrgKind{policy.OrgCustomer, policy.OrgDealer, policy.OrgMonitoringProvider}

// GoSubjectFacts starts, in g, one GET /authz/subjects/{userId} per owner.
// The calls join whatever else g runs (a location's facts), so the subject
// facts add no round trip of their own. Once g.Wait has returned nil, the
// returned function merges the answers into s.
func (c *Client) GoSubjectFacts(g *errgroup.Group, ctx context.Context, userID string) func(s *policy.Subject) error {
	answers := make([]subjectFacts, len(owners))
	for i, k := range owners {
		g.Go(func() error {
			err := c.r.call(ctx, depOf(k), http.MethodGet, "/authz/subjects/"+url.PathEscape(userID), nil, &answers[i])
			if errors.Is(err, errNotFound) {
				return nil // not an employee there: no facts
			}
			return err
		})
	}
	return func(s *policy.Subject) error { return c.merge(ctx, userID, answers, s) }
}

// merge folds the owners' answers (indexed like owners) into s. A user is
// an employee of at most one organization (AUTHZ.md); when several owners
// claim the user, no answer is more authoritative than another, so the
// decision fails closed and the inconsistency is logged for an operator.
func (c *Client) merge(ctx context.Context, userID string, answers []subjectFacts, s *policy.Subject) error {
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
		c.log.ErrorContext(ctx, "authorization facts are inconsistent: more than one organization claims the user as an employee; failing closed until the owners agree",
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

// Location returns a location's facts, nil when the Customer Service does
// not know it.
func (c *Client) Location(ctx context.Context, id string) (*Location, error) {
	var l Location
	err := c.r.call(ctx, depCustomer, http.MethodGet, "/authz/locations/"+url.PathEscape(id), nil, &l)
	if errors.Is(err, errNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &l, nil
}

// Locations returns the facts of the locations among ids the Customer
// Service knows, by id, in one call.
func (c *Client) Locations(ctx context.Context, ids []string) (map[string]Location, error) {
	var ans struct {
		Locations []Location `json:"locations"`
	}
	if err := c.r.call(ctx, depCustomer, http.MethodPost, "/authz/locations:batch", map[string]any{"locationIds": ids}, &ans); err != nil {
		return nil, notFoundIsUnavailable(err, "Customer")
	}
	out := make(map[string]Location, len(ans.Locations))
	for _, l := range ans.Locations {
		out[l.LocationID] = l
	}
	return out, nil
}

// Dealer returns a dealer's facts, nil when the Dealer Service does not
// know it.
func (c *Client) Dealer(ctx context.Context, id string) (*Dealer, error) {
	var d Dealer
	err := c.r.call(ctx, depDealer, http.MethodGet, "/authz/dealers/"+url.PathEscape(id), nil, &d)
	if errors.Is(err, errNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// Dealers returns the facts of the dealers among ids the Dealer Service
// knows, by id, in one call.
func (c *Client) Dealers(ctx context.Context, ids []string) (map[string]Dealer, error) {
	var ans struct {
		Dealers []Dealer `json:"dealers"`
	}
	if err := c.r.call(ctx, depDealer, http.MethodPost, "/authz/dealers:batch", map[string]any{"dealerIds": ids}, &ans); err != nil {
		return nil, notFoundIsUnavailable(err, "Security System Dealer")
	}
	out := make(map[string]Dealer, len(ans.Dealers))
	for _, d := range ans.Dealers {
		out[d.DealerID] = d
	}
	return out, nil
}

// LocationsByDealers returns the ids of the locations the given dealers
// service, every page of the Customer Service's answer.
func (c *Client) LocationsByDealers(ctx context.Context, dealerIDs []string) ([]string, error) {
	return c.pagedIDs(ctx, depCustomer, "/authz/locations:byDealers", "dealerIds", dealerIDs, "locationIds")
}

// DealersByMonitoringProviders returns the ids of the dealers that use the
// given monitoring providers, every page of the Dealer Service's answer.
func (c *Client) DealersByMonitoringProviders(ctx context.Context, providerIDs []string) ([]string, error) {
	return c.pagedIDs(ctx, depDealer, "/authz/dealers:byMonitoringProviders", "monitoringProviderIds", providerIDs, "dealerIds")
}

// maxIDPages bounds the pages read of one owner's id list: at the owners'
// page size of 10 000 ids that is a million locations, far beyond any
// dealer, and a loop that never ends on a misbehaving owner is worse than
// a 503.
const maxIDPages = 100

// pagedIDs reads every page of an owner's id-list endpoint (docs/fetch-api.md,
// "Lists of ids"): POST {inKey: ids, "cursor": c} answering
// {outKey: [...], "nextCursor": c'}. A 404 means the owner lacks the
// endpoint, which no healthy owner does: no decision can be made.
func (c *Client) pagedIDs(ctx context.Context, dep, path, inKey string, ids []string, outKey string) ([]string, error) {
	var out []string
	cursor := ""
	for range maxIDPages {
		body := map[string]any{inKey: ids}
		if cursor != "" {
			body["cursor"] = cursor
		}
		var ans map[string]json.RawMessage
		if err := c.r.call(ctx, dep, http.MethodPost, path, body, &ans); err != nil {
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

// LocationAccess reads one page of the Customer Service's
// GET /authz/locations/{id}/access; query is the page's query string
// ("?limit=…", see docs/fetch-api.md). It returns nil for an unknown
// location.
func (c *Client) LocationAccess(ctx context.Context, locationID, query string) (*LocationAccess, error) {
	var loc LocationAccess
	err := c.r.call(ctx, depCustomer, http.MethodGet, "/authz/locations/"+url.PathEscape(locationID)+"/access"+query, nil, &loc)
	if errors.Is(err, errNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &loc, nil
}

// RoleHolders reads one page of an organization's role holders from the
// service owning organizations of kind (GET
// /authz/organizations/{id}/role-holders). An organization the owner does
// not know (a dealer removed meanwhile) holds nobody.
func (c *Client) RoleHolders(ctx context.Context, kind policy.OrgKind, orgID, query string) (RoleHolders, error) {
	var out RoleHolders
	err := c.r.call(ctx, depOf(kind), http.MethodGet, "/authz/organizations/"+url.PathEscape(orgID)+"/role-holders"+query, nil, &out)
	if errors.Is(err, errNotFound) {
		return RoleHolders{}, nil
	}
	return out, err
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

// Location is one location of GET /authz/locations/{id} and of the batch
// call.
type Location struct {
	LocationID string  `json:"locationId"`
	CustomerID string  `json:"customerId"`
	DealerID   *string `json:"dealerId"`
}

// Dealer is one dealer of GET /authz/dealers/{id} and of the batch call.
type Dealer struct {
	DealerID             string  `json:"dealerId"`
	MonitoringProviderID *string `json:"monitoringProviderId"`
}

// LocationAccess is the answer of the Customer Service's
// GET /authz/locations/{id}/access: the location, its customer and dealer,
// and one page of the users holding roles at it or in the customer.
type LocationAccess struct {
	LocationID   string  `json:"locationId"`
	LocationName string  `json:"locationName"`
	CustomerID   string  `json:"customerId"`
	CustomerName string  `json:"customerName"`
	DealerID     *string `json:"dealerId"`
	Users        []struct {
		UserID            string   `json:"userId"`
		Username          string   `json:"username"`
		OrganizationRoles []string `json:"organizationRoles"`
		LocationRoles     []string `json:"locationRoles"`
		Teams             []struct {
			TeamID string   `json:"teamId"`
			Name   string   `json:"name"`
			Roles  []string `json:"roles"`
		} `json:"teams"`
		Schedule *policy.Schedule `json:"schedule"`
	} `json:"users"`
	// More is true when users after the last one exist.
	More bool `json:"more"`
}

// RoleHolders is the answer of GET /authz/organizations/{id}/role-holders:
// the organization's name and one page of its employees holding
// organization roles.
type RoleHolders struct {
	OrganizationID string `json:"organizationId"`
	Name           string `json:"name"`
	Users          []struct {
		UserID   string           `json:"userId"`
		Username string           `json:"username"`
		Roles    []string         `json:"roles"`
		Schedule *policy.Schedule `json:"schedule"`
	} `json:"users"`
	// More is true when users after the last one exist.
	More bool `json:"more"`
}

// Deref returns *p, or "" for nil: the wire's null ids.
func Deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
