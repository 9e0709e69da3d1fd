// Package bff is RealGuardIO's Backend-for-Frontend and web UI.
//
// The BFF is an OpenID Connect relying party of the IAM Service
// (authorization code + PKCE). It keeps the user's tokens in a session store
// shared by every BFF instance (SQLite or PostgreSQL, sealed with the cookie
// keys) and gives the browser only an encrypted, authenticated cookie naming
// the session, instead of handing tokens to JavaScript, so a script injected
// into the page can use the session only while the page is open and can never
// take the tokens away. Every request checks the session in the store, so a
// logout or a refresh makes every earlier copy of the cookie worthless at
// once. Requests to /api/* are forwarded to the
// backend services with the session's access token, refreshed when it is
// about to expire. The UI is server-rendered HTML with a little plain
// JavaScript, all embedded in the binary.
package bff

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/realguardio/realguardio/internal/platform/config"
	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/telemetry"
)

// Config holds the BFF's settings as plain values.
type Config struct {
	// PublicURL is the origin browsers use to reach the BFF, e.g.
	// http://localhost:3000. It determines the OIDC redirect URI
	// (PublicURL + "/auth/callback"), the origin CSRF checks accept, and
	// whether cookies are marked Secure and named with the __Host- prefix
	// (always, except plain http on localhost or a loopback address, where
	// browsers refuse both).
	PublicURL string
	// Issuer is the IAM Service's issuer URL; everything else about the IAM
	// is found through its discovery document.
	Issuer string
	// ClientID and ClientSecret identify the BFF, a confidential client, at
	// the IAM Service.
	ClientID     string
	ClientSecret string
	// Scopes requested at login. Empty means openid, profile and
	// offline_access (the last one for the refresh token).
	Scopes []string
	// SessionKeys are base64-encoded 32-byte keys. The first one encrypts
	// new cookies; all of them decrypt, so a key is rotated by putting a new
	// one first and removing the old one after SessionTTL.
	SessionKeys []string
	// Backend base URLs, per API.md.
	SecuritySystemURL string
	CustomerURL       string
	DealerURL         string
	MonitoringURL     string
	// Strategy is the authorization strategy the system runs (provide,
	// fetch, replicate, delegate); the UI displays it.
	Strategy string
	// TokenLifetime is the lifetime of the IAM's access tokens. Under
	// provide an administrator's change reaches a user with their next
	// token, so the pages say "at most TokenLifetime"; zero means the
	// system's default of 5 minutes.
	TokenLifetime time.Duration
	// BackendTimeout bounds one forwarded /api call. Default 10s.
	BackendTimeout time.Duration
	// IAMTimeout bounds one call to the IAM Service (discovery, token,
	// revocation). Default 10s.
	IAMTimeout time.Duration
	// RefreshLeeway is how long before the access token's expiry the BFF
	// refreshes it, so a token never expires while a request is on its way.
	// Default 30s.
	RefreshLeeway time.Duration
	// SessionTTL is the absolute lifetime of a session cookie, whatever the
	// refresh token would allow. Default 12h.
	SessionTTL time.Duration
}

// Defaults for the settings a zero Config leaves empty.
const (
	DefaultPublicURL      = "http://localhost:3000"
	DefaultClientID       = "realguardio-bff"
	DefaultBackendTimeout = 10 * time.Second
	DefaultIAMTimeout     = 10 * time.Second
	DefaultRefreshLeeway  = 30 * time.Second
	DefaultSessionTTL     = 12 * time.Hour
	DefaultTokenLifetime  = 5 * time.Minute
)

// withDefaults returns cfg with every empty setting set to its default.
func (cfg Config) withDefaults() Config {
	if cfg.PublicURL == "" {
		cfg.PublicURL = DefaultPublicURL
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultClientID
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{"openid", "profile", "offline_access"}
	}
	if cfg.TokenLifetime <= 0 {
		cfg.TokenLifetime = DefaultTokenLifetime
	}
	if cfg.BackendTimeout <= 0 {
		cfg.BackendTimeout = DefaultBackendTimeout
	}
	if cfg.IAMTimeout <= 0 {
		cfg.IAMTimeout = DefaultIAMTimeout
	}
	if cfg.RefreshLeeway <= 0 {
		cfg.RefreshLeeway = DefaultRefreshLeeway
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	return cfg
}

// Validate reports every setting that is wrong, each by name.
func (cfg Config) Validate() error {
	cfg = cfg.withDefaults()
	var p config.Problems
	p.CheckHTTPURL("bff-public-url", cfg.PublicURL)
	p.CheckHTTPURL("issuer", cfg.Issuer)
	if cfg.ClientSecret == "" {
		p.Addf("bff-client-secret", "is required (the BFF is a confidential client)")
	}
	if _, err := parseKeys(cfg.SessionKeys); err != nil {
		p.Addf("bff-session-keys", "%v", err)
	}
	p.CheckHTTPURL("securitysystem-url", cfg.SecuritySystemURL)
	p.CheckHTTPURL("customer-url", cfg.CustomerURL)
	p.CheckHTTPURL("dealer-url", cfg.DealerURL)
	p.CheckHTTPURL("monitoring-url", cfg.MonitoringURL)
	return p.Err()
}

// Deps are the BFF's collaborators.
type Deps struct {
	// Logger receives the BFF's logs; nil means slog.Default().
	Logger *slog.Logger
	// Registry receives the BFF's metrics; nil means a new registry.
	Registry *prometheus.Registry
	// Transport carries the BFF's outgoing HTTP (IAM and backends); nil
	// means a clone of http.DefaultTransport.
	Transport http.RoundTripper
	// Now is the clock used for token and cookie expiry; nil means
	// time.Now. Tests move it forward to make access tokens expire.
	Now func() time.Time
	// DB is the session store, migrated with Migrations(); every BFF
	// instance serving the same users must use the same database.
	DB *sqldb.DB
	// Events is a NATS connection on which the BFF may subscribe to the
	// Security System Service's event subjects, for the pages' live state
	// (GET /events/securitysystems). Nil turns live updates off: the pages
	// then show what they loaded, and say so.
	Events *nats.Conn
	// EventPrefix is the first token of the event subjects
	// (events.DefaultPrefix when empty); tests set a unique one.
	EventPrefix string
}

// Service is the BFF.
type Service struct {
	cfg     Config
	log     *slog.Logger
	reg     *prometheus.Registry
	now     func() time.Time
	codec   *codec
	jar     cookieJar
	origin  string
	iam     *oidcClient
	proxies map[string]http.Handler
	backend *http.Client
	pages   map[string]*template.Template

	store    sessionStore
	instance string // names this instance's refresh leases, for logs and debugging

	// live feeds the pages' Server-Sent Events; nil without Deps.Events.
	live     *liveHub
	liveConn *nats.Conn
	liveSub  *nats.Subscription

	refreshGroup singleflight.Group
	// logoutKeys are the IAM's keys for logout tokens (backchannel.go).
	logoutKeys logoutKeys
	metrics    metrics

	// afterRead, when set (by tests only), runs after each request has
	// read its session, so a test can hold a refresh until every
	// concurrent request has seen the generation before it.
	afterRead atomic.Pointer[func()]
}

type metrics struct {
	refreshes *prometheus.CounterVec
	logins    *prometheus.CounterVec
}

// New builds the BFF. It does not contact the IAM Service: discovery happens
// on first use and is retried, because `up` may start the IAM after the BFF.
func New(_ context.Context, cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if deps.DB == nil {
		return nil, errors.New("bff: the session store (Deps.DB) is required")
	}
	if err := deps.DB.Migrate(context.Background(), Migrations()); err != nil {
		return nil, fmt.Errorf("bff: migrate the session store: %w", err)
	}
	keys, _ := parseKeys(cfg.SessionKeys)
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Registry == nil {
		deps.Registry = httpx.NewRegistry()
	}
	if deps.Transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		t.ResponseHeaderTimeout = cfg.BackendTimeout
		deps.Transport = t
	}
	// Calls to the backends and the IAM carry the request's trace.
	deps.Transport = telemetry.Transport(deps.Transport)
	if deps.Now == nil {
		deps.Now = time.Now
	}
	pub, _ := url.Parse(cfg.PublicURL)
	s := &Service{
		cfg:      cfg,
		log:      deps.Logger.With("service", "bff"),
		reg:      deps.Registry,
		now:      deps.Now,
		codec:    newCodec(keys, deps.Now),
		jar:      cookieJar{secure: !isLocalHTTP(pub)},
		origin:   pub.Scheme + "://" + pub.Host,
		backend:  &http.Client{Transport: deps.Transport, Timeout: cfg.BackendTimeout},
		store:    sessionStore{db: deps.DB},
		instance: randomToken(6),
	}
	s.iam = newOIDCClient(cfg, &http.Client{Transport: deps.Transport, Timeout: cfg.IAMTimeout}, deps.Now, s.log)
	s.metrics = metrics{
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "realguardio_bff_token_refreshes_total",
			Help: "Access token refreshes, by outcome: ok, refused (the session ended), failed (the IAM could not be asked), shared (another request or instance refreshed it).",
		}, []string{"outcome"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "realguardio_bff_logins_total",
			Help: "Completed OIDC logins, by outcome.",
		}, []string{"outcome"}),
	}
	s.reg.MustRegister(s.metrics.refreshes, s.metrics.logins)
	var err error
	if s.proxies, err = s.newProxies(deps.Transport); err != nil {
		return nil, err
	}
	if s.pages, err = parseTemplates(); err != nil {
		return nil, err
	}
	if deps.Events != nil {
		s.live, s.liveConn = newLiveHub(deps.EventPrefix, s.reg), deps.Events
		if s.liveSub, err = s.live.listen(deps.Events); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// isLocalHTTP reports whether u is plain http on this machine, the one case
// where browsers would drop Secure cookies and no network can see them.
func isLocalHTTP(u *url.URL) bool {
	if u.Scheme != "http" {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Handler returns the BFF's whole HTTP surface, wrapped by httpx.Ops.
func (s *Service) Handler() http.Handler {
	mux := httpx.NewMux("bff")
	mux.HandleFunc("GET /login", s.handleLogin)
	mux.HandleFunc("GET /auth/callback", s.handleCallback)
	mux.HandleFunc("POST /logout", s.handleLogout)
	mux.HandleFunc("POST "+BackchannelLogoutPath, s.handleBackchannelLogout)
	mux.Handle("/api/", http.HandlerFunc(s.handleAPI))
	mux.HandleFunc("GET /api/me", s.handleMe)
	mux.HandleFunc("GET /events/securitysystems", s.handleLiveSystems)
	mux.HandleFunc("GET /ui/securitysystems/{id}", s.handleSystemView)
	s.routeUI(mux)
	ops := &httpx.Ops{
		Service:  "bff",
		Registry: s.reg,
		Logger:   s.log,
		// The IAM is reported (degraded while unreachable) but does not
		// make the BFF unready: sessions keep working on their access
		// tokens, and the login page says the IAM is down. The session
		// store is needed by every request.
		Ready: []httpx.ReadyCheck{{Name: "iam", Check: s.iam.reachable, Optional: true}, {Name: "database", Check: s.store.db.Ping}},
	}
	if s.live != nil {
		// Without NATS the pages only lose their live updates (they still
		// load and act), so it degrades the BFF without making it unready.
		ops.Ready = append(ops.Ready, httpx.ReadyCheck{Name: "nats", Check: s.liveReady, Optional: true})
	}
	return ops.Handler(s.securityHeaders(mux))
}

// pruneEvery is how often each instance deletes the sessions past their
// absolute lifetime.
const pruneEvery = 10 * time.Minute

// Run discovers the IAM Service in the background so the first login is not
// slowed by it, retrying until it succeeds or ctx ends, and prunes ended
// sessions from the store; when ctx ends, so do the pages' live streams.
// It returns nil when ctx is cancelled.
func (s *Service) Run(ctx context.Context) error {
	go s.pruneLoop(ctx)
	if s.live != nil {
		// The open streams end with the service, or a graceful shutdown
		// of the HTTP server would wait for them.
		go func() {
			<-ctx.Done()
			s.live.stop()
		}()
	}
	delay := 200 * time.Millisecond
	for {
		if _, err := s.iam.get(ctx); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
	<-ctx.Done()
	return nil
}

// pruneLoop deletes expired sessions until ctx ends. Each instance prunes;
// the deletes are idempotent, so several instances only repeat each other.
func (s *Service) pruneLoop(ctx context.Context) {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		if n, err := s.store.prune(ctx, s.now()); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "pruning expired sessions failed; will retry", "err", err)
		} else if n > 0 {
			s.log.DebugContext(ctx, "pruned expired sessions", "count", n)
		}
		if err := s.store.pruneLogoutTokens(ctx, s.now()); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "pruning expired logout tokens failed; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// liveReady reports whether the live updates' NATS connection is up.
func (s *Service) liveReady(context.Context) error {
	if !s.liveConn.IsConnected() {
		return errors.New("not connected to NATS: the pages get no live updates until it reconnects")
	}
	return nil
}

// Close stops listening to the events and ends the open streams. The
// session store and the NATS
// connection belong to the caller, who opened them.
func (s *Service) Close() error {
	if s.live != nil {
		s.live.stop()
	}
	if s.liveSub != nil {
		if err := s.liveSub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
			return err
		}
	}
	return nil
}

// securityHeaders adds the headers every BFF response should carry. The
// content security policy allows only the BFF's own scripts and styles, which
// is what makes keeping tokens out of JavaScript worth it; forms may target
// the IAM Service because logout redirects there and browsers apply
// form-action to redirects.
func (s *Service) securityHeaders(next http.Handler) http.Handler {
	formAction := "'self'"
	if u, err := url.Parse(s.cfg.Issuer); err == nil {
		formAction += " " + u.Scheme + "://" + u.Host
	}
	csp := "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action " + formAction
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", csp)
		next.ServeHTTP(w, r)
	})
}

var errNoSession = errors.New("no session")
