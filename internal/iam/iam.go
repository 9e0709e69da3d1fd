// Package iam is RealGuardIO's IAM Service: the OpenID Provider every user
// logs in at and every service gets its tokens from, and the owner of user
// accounts, their credentials and application roles.
//
// It is built on zitadel's OpenID Provider (github.com/zitadel/oidc/v3/pkg/op)
// for the protocol (discovery, authorization, token, userinfo, revocation,
// end-session endpoints) with a SQL storage of its own. The token endpoint's
// grants are overridden (see server.go) because RFC 9068 access tokens need
// the header typ "at+jwt", which zitadel's signer cannot set, and because
// refresh tokens rotate with reuse detection.
//
// State is in the service's database except for the login throttle's
// counts, which are in memory and therefore per instance.
package iam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/config"
	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// DefaultIssuer is the issuer of `realguardio up`.
const DefaultIssuer = "http://localhost:9000"

// AdminUsername is the bootstrap administrator's username.
const AdminUsername = "admin"

// bootstrapClient is recorded as creator of the bootstrap administrator.
const bootstrapClient = "bootstrap"

// Config holds the IAM Service's settings. Zero durations and counts take
// the documented defaults.
type Config struct {
	// Issuer is the iss of every token and the base URL of every endpoint
	// (default http://localhost:9000). It must be https, except for
	// localhost and 127.0.0.1 issuers, which may be http for development.
	Issuer string
	// AdminPassword, when set, is the password of the bootstrap user admin
	// (applied again at each start if it changed). When empty a password is
	// generated once and returned by GeneratedAdminPassword.
	AdminPassword string
	// Clients are the OAuth clients (see DefaultClients).
	Clients []ClientConfig
	// AccessTokenLifetime is the default lifetime of access tokens (5m).
	AccessTokenLifetime time.Duration
	// IDTokenLifetime is the lifetime of ID tokens (5m).
	IDTokenLifetime time.Duration
	// RefreshTokenLifetime is the lifetime of each refresh token (60m);
	// every rotation issues a new one.
	RefreshTokenLifetime time.Duration
	// RefreshFamilyLifetime is the absolute lifetime of a login's refresh
	// tokens (12h): however often they rotate, refreshing fails this long
	// after the login, so a stolen or forgotten session cannot be kept
	// alive for ever and the user must log in (and prove the password)
	// again.
	RefreshFamilyLifetime time.Duration
	// RefreshReuseGrace is how long after a refresh token is rotated it may
	// be presented again and get the same successor refresh token (with a
	// fresh access token) instead of revoking its family (30s; negative
	// disables it). Clients that refresh from several places at once (BFF
	// instances, a retry after a lost response) are not logged out by
	// their own race; past the window a reuse is theft and revokes as
	// before.
	RefreshReuseGrace time.Duration
	// AuthCodeLifetime is how long an authorization code may be exchanged
	// (60s).
	AuthCodeLifetime time.Duration
	// SessionLifetime is the longest an IAM browser session (single
	// sign-on across clients, prompt=none) lasts after the password was
	// proved (12h).
	SessionLifetime time.Duration
	// SessionIdleTimeout ends a browser session not used for this long
	// (2h).
	SessionIdleTimeout time.Duration
	// LoginTimeout is how long a user has to log in after /authorize (10m).
	LoginTimeout time.Duration
	// KeyRotationInterval is how often a new signing key is made (24h).
	KeyRotationInterval time.Duration
	// KeyPublishAhead is how long a new key is in the JWKS before it signs
	// (10m). Zero means the default; a negative value activates new keys at
	// once, which only tests should do.
	KeyPublishAhead time.Duration
	// LoginMaxFailuresPerUser failures within LoginFailureWindow lock one
	// account for one client address, and one device cookie, for
	// LoginLockout (5). Neither lock reaches the account's other clients.
	LoginMaxFailuresPerUser int
	// LoginMaxFailuresPerAccount failures of strangers (clients without a
	// device cookie for the account) from all addresses together within
	// LoginFailureWindow lock the account for strangers for LoginLockout
	// (20): the bound on distributed guessing. A browser holding a device
	// cookie for the account is not locked out by it.
	LoginMaxFailuresPerAccount int
	// LoginMaxFailuresPerIP failures of strangers from one client address
	// over all accounts within LoginFailureWindow lock that address for
	// strangers for LoginLockout (100). It is high because many users may
	// share an address (a NAT); browsers with device cookies behind it go
	// on logging in.
	LoginMaxFailuresPerIP int
	// DeviceCookieLifetime is how long a device cookie, issued at each
	// successful login, lets its browser keep its own attempts budget
	// (30 days).
	DeviceCookieLifetime time.Duration
	// TrustedProxies are the networks of the reverse proxies and load
	// balancers in front of the IAM. The login throttle takes the client
	// address from X-Forwarded-For only when the connection comes from one
	// of them, and then only the entries those proxies appended. Empty
	// means the connection's peer is the client.
	TrustedProxies []netip.Prefix
	// LoginFailureWindow is the window failures are counted in (15m).
	LoginFailureWindow time.Duration
	// LoginLockout is how long a locked username or address is refused (15m).
	LoginLockout time.Duration
	// KeyEncryptionKeys seal the signing keys in the database (AES-256-GCM,
	// 32 bytes each): the first seals, all open. Keys stored plaintext by
	// an earlier version, or sealed under a later key of the list, are
	// resealed under the first at start, which is how a key-encryption key
	// is rotated. Empty stores the signing keys plaintext (tests; the
	// wiring always gives one) and logs a warning.
	KeyEncryptionKeys [][]byte
	// MaxAccessTokenBytes is the largest access token the IAM mints (8 KiB
	// when zero). Authorization claims (the provide strategy) grow with a
	// user's location roles; a token beyond what proxies and servers accept
	// in a header would fail somewhere far from its cause, so the login or
	// refresh fails here instead, saying why.
	MaxAccessTokenBytes int
	// RequireMFAForAdmin makes a TOTP second factor mandatory for holders
	// of REALGUARDIO_ADMIN: one without a factor enrols at the next login
	// before any code is issued (see lifecycle.go).
	RequireMFAForAdmin bool
	// PasswordResetLifetime is how long a one-time password reset code an
	// administrator issues may be redeemed (1h).
	PasswordResetLifetime time.Duration
}

// DefaultRefreshReuseGrace is the default of Config.RefreshReuseGrace, the
// window Okta and Auth0 offer too: longer than a client's refresh call and
// its retries take, short enough that a token stolen later is still caught.
const DefaultRefreshReuseGrace = 30 * time.Second

// DefaultMaxAccessTokenBytes is the default of Config.MaxAccessTokenBytes:
// 8 KiB, the smallest header limit of common servers and proxies.
const DefaultMaxAccessTokenBytes = 8 << 10

func (c *Config) applyDefaults() {
	def := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	c.Issuer = strings.TrimRight(c.Issuer, "/")
	def(&c.AccessTokenLifetime, 5*time.Minute)
	def(&c.IDTokenLifetime, 5*time.Minute)
	def(&c.RefreshTokenLifetime, 60*time.Minute)
	def(&c.RefreshFamilyLifetime, 12*time.Hour)
	def(&c.RefreshReuseGrace, DefaultRefreshReuseGrace)
	if c.RefreshReuseGrace < 0 {
		c.RefreshReuseGrace = 0
	}
	def(&c.AuthCodeLifetime, 60*time.Second)
	def(&c.LoginTimeout, 10*time.Minute)
	def(&c.SessionLifetime, 12*time.Hour)
	def(&c.SessionIdleTimeout, 2*time.Hour)
	def(&c.KeyRotationInterval, 24*time.Hour)
	def(&c.KeyPublishAhead, 10*time.Minute)
	if c.KeyPublishAhead < 0 {
		c.KeyPublishAhead = 0
	}
	def(&c.LoginFailureWindow, 15*time.Minute)
	def(&c.LoginLockout, 15*time.Minute)
	if c.LoginMaxFailuresPerUser == 0 {
		c.LoginMaxFailuresPerUser = 5
	}
	if c.LoginMaxFailuresPerAccount == 0 {
		c.LoginMaxFailuresPerAccount = 20
	}
	if c.LoginMaxFailuresPerIP == 0 {
		c.LoginMaxFailuresPerIP = 100
	}
	def(&c.DeviceCookieLifetime, 30*24*time.Hour)
	def(&c.PasswordResetLifetime, time.Hour)
	if c.MaxAccessTokenBytes == 0 {
		c.MaxAccessTokenBytes = DefaultMaxAccessTokenBytes
	}
}

// Validate reports every problem of the configuration, naming the setting.
// It validates the values as New will use them, defaults applied.
func (c Config) Validate() error {
	c.applyDefaults()
	var p config.Problems
	if _, err := issuerIsInsecureOK(c.Issuer); err != nil {
		p.Addf("iam-url", "%v", err)
	}
	ids := map[string]bool{}
	for _, cl := range c.Clients {
		if err := cl.validate(); err != nil {
			p.Addf("iam-clients", "%v", err)
		}
		if ids[cl.ID] {
			p.Addf("iam-clients", "client %s is configured twice", cl.ID)
		}
		ids[cl.ID] = true
	}
	if c.MaxAccessTokenBytes < 1024 {
		// Below 1 KiB not even a service token fits.
		p.Addf("iam-max-access-token-bytes", "must be at least 1024")
	}
	if c.AdminPassword != "" && len(c.AdminPassword) < minPasswordLen {
		p.Addf("admin-password", "must be at least %d characters", minPasswordLen)
	}
	for name, d := range map[string]time.Duration{
		"iam-access-token-lifetime": c.AccessTokenLifetime, "iam-id-token-lifetime": c.IDTokenLifetime,
		"iam-refresh-token-lifetime": c.RefreshTokenLifetime, "iam-refresh-family-lifetime": c.RefreshFamilyLifetime,
		"iam-key-rotation-interval": c.KeyRotationInterval,
		"iam-session-lifetime":      c.SessionLifetime, "iam-session-idle-timeout": c.SessionIdleTimeout,
		"iam-password-reset-lifetime": c.PasswordResetLifetime,
	} {
		if d < 0 {
			p.Addf(name, "must be positive")
		}
	}
	return p.Err()
}

// issuerIsInsecureOK validates the issuer and reports whether it is a
// plain-http development issuer on a loopback host, the only case where
// zitadel's https requirement is relaxed (op.WithAllowInsecure).
func issuerIsInsecureOK(issuer string) (bool, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" {
		return false, fmt.Errorf("issuer %q is not an absolute URL", issuer)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
		return false, fmt.Errorf("issuer %q must not have a path, query or fragment", issuer)
	}
	switch u.Scheme {
	case "https":
		return false, nil
	case "http":
		host := u.Hostname()
		if host == "localhost" || net.ParseIP(host).IsLoopback() {
			return true, nil
		}
		return false, fmt.Errorf("issuer %q must use https (plain http is allowed only for localhost)", issuer)
	default:
		return false, fmt.Errorf("issuer %q must be an http(s) URL", issuer)
	}
}

// AuthorizationClaims supplies the authorization claims of a user's access
// token (the "provide" strategy of AUTHZ.md). It is called at every issue
// and refresh of a user token; an error fails the token request with a
// server_error (HTTP 503), because a token without its claims would deny
// wrongly for its whole lifetime.
type AuthorizationClaims interface {
	Claims(ctx context.Context, req AuthorizationRequest) (map[string]any, error)
}

// AuthorizationRequest tells the AuthorizationClaims hook whose token is
// being built.
type AuthorizationRequest struct {
	// UserID is the user's sub.
	UserID string
	// Roles are the user's application roles. The rule does not depend on
	// them (the owners' data decides), so the provide hook asks every owner
	// whatever they are; they are passed for hooks that need them.
	Roles []string
	// Tokens mints the IAM's own service tokens, for the hook's calls to
	// the owners of the authorization data. The IAM is the issuer, so it
	// signs them itself instead of calling its own token endpoint.
	Tokens ServiceTokens
}

// ServiceTokens mints access tokens for the IAM Service itself.
type ServiceTokens interface {
	// ServiceToken returns a client-credentials style access token whose
	// sub and client_id are SelfClientID, for audience and scopes, and
	// its expiry.
	ServiceToken(ctx context.Context, audience, scopes []string) (token string, expiry time.Time, err error)
}

// SelfClientID is the sub and client_id of the tokens the IAM mints for
// itself (ServiceTokens): its own audience name, so a resource server's
// logs say who called.
const SelfClientID = AudienceIAM

// Deps are the IAM Service's dependencies, opened by the wiring.
type Deps struct {
	// Logger receives the service's logs; nil means slog.Default().
	Logger *slog.Logger
	// DB is the IAM's own database; New migrates it.
	DB *sqldb.DB
	// Registry receives the service's metrics; nil means a new one.
	Registry *prometheus.Registry
	// AuthorizationClaims, when set, adds authorization claims to user
	// access tokens.
	AuthorizationClaims AuthorizationClaims
	// Clock replaces time.Now, for tests.
	Clock func() time.Time
}

// Service is the IAM Service.
type Service struct {
	cfg      Config
	log      *slog.Logger
	db       *sqldb.DB
	store    *store
	registry *prometheus.Registry
	now      func() time.Time
	clients  map[string]*client
	keys     *keyManager
	claims   *ClaimsBuilder
	provider *op.Provider
	server   *server
	throttle *throttle
	devices  *deviceCookies
	csrfKey  []byte
	// rotationKey derives a refresh token's successor from it, so that the
	// reuse grace window can answer with the same successor without the
	// database holding any token (see successorToken).
	rotationKey []byte
	login       *loginUI
	// validator checks the IAM's own access tokens (/userinfo, /api/users).
	validator *auth.Validator
	// backchannel delivers logout tokens (backchannel.go).
	backchannel *backchannel
	// introspect holds the validators of introspection (introspect.go).
	introspect introspectors
	metrics    *metrics
	handler    http.Handler

	generatedAdminPassword string
}

// New builds the service: it migrates the database, loads or creates the
// signing keys, and creates or updates the bootstrap administrator.
func New(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	if deps.DB == nil {
		return nil, errors.New("iam: Deps.DB is required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.applyDefaults()
	insecure, _ := issuerIsInsecureOK(cfg.Issuer)
	s := &Service{
		cfg:      cfg,
		log:      deps.Logger,
		db:       deps.DB,
		store:    &store{db: deps.DB},
		registry: deps.Registry,
		now:      deps.Clock,
		clients:  map[string]*client{},
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.registry == nil {
		s.registry = httpx.NewRegistry()
	}
	if s.now == nil {
		s.now = func() time.Time { return time.Now().UTC() }
	}
	if err := s.db.Migrate(ctx, Migrations); err != nil {
		return nil, fmt.Errorf("iam: %w", err)
	}
	maxAT := cfg.AccessTokenLifetime
	for _, cc := range cfg.Clients {
		c, err := newClient(cc, cfg.Issuer, cfg.IDTokenLifetime, cfg.AccessTokenLifetime)
		if err != nil {
			return nil, fmt.Errorf("iam: %w", err)
		}
		s.clients[c.cfg.ID] = c
		maxAT = max(maxAT, c.atLifetime)
	}
	sealer, err := newKeySealer(cfg.KeyEncryptionKeys)
	if err != nil {
		return nil, fmt.Errorf("iam: %w", err)
	}
	if sealer == nil {
		s.log.WarnContext(ctx, "iam: no key-encryption key; the signing keys are stored unencrypted")
	}
	s.keys = &keyManager{
		sealer:       sealer,
		store:        s.store,
		now:          s.now,
		publishAhead: cfg.KeyPublishAhead,
		// A retired key must verify every token it signed, so it stays
		// published for the longest token lifetime (plus a minute of clock
		// skew between this service and resource servers).
		keepAfter: max(maxAT, cfg.IDTokenLifetime) + time.Minute,
		interval:  cfg.KeyRotationInterval,
	}
	if err := s.keys.ensure(ctx); err != nil {
		return nil, fmt.Errorf("iam: %w", err)
	}
	s.store.sealer = sealer
	if err := s.store.resealSecrets(ctx); err != nil {
		return nil, fmt.Errorf("iam: %w", err)
	}
	if err := s.resealTOTP(ctx); err != nil {
		return nil, fmt.Errorf("iam: %w", err)
	}
	csrf, err := s.store.secret(ctx, "csrf", func() string { return randomToken(32) })
	if err != nil {
		return nil, fmt.Errorf("iam: csrf key: %w", err)
	}
	s.csrfKey = []byte(csrf)
	rotation, err := s.store.secret(ctx, "refresh-rotation", func() string { return randomToken(32) })
	if err != nil {
		return nil, fmt.Errorf("iam: refresh rotation key: %w", err)
	}
	s.rotationKey = []byte(rotation)
	s.metrics = newMetrics(s.registry)
	s.backchannel = newBackchannel(s)
	registerKeyAge(s.registry, s.keys, s.now)
	s.throttle = newThrottle(s.now, throttleLimits{
		client: cfg.LoginMaxFailuresPerUser, account: cfg.LoginMaxFailuresPerAccount, address: cfg.LoginMaxFailuresPerIP,
		window: cfg.LoginFailureWindow, lockout: cfg.LoginLockout,
	})
	deviceKey, err := s.store.secret(ctx, "device-cookie", func() string { return randomToken(32) })
	if err != nil {
		return nil, fmt.Errorf("iam: device cookie key: %w", err)
	}
	s.devices = &deviceCookies{key: []byte(deviceKey), lifetime: cfg.DeviceCookieLifetime,
		secure: strings.HasPrefix(cfg.Issuer, "https://"), now: s.now}
	s.claims = &ClaimsBuilder{Issuer: cfg.Issuer, Authorization: deps.AuthorizationClaims, Tokens: s}
	if err := s.bootstrapAdmin(ctx); err != nil {
		return nil, fmt.Errorf("iam: bootstrap admin: %w", err)
	}
	if err := s.buildProvider(insecure); err != nil {
		return nil, fmt.Errorf("iam: %w", err)
	}
	s.login, err = newLoginUI(s)
	if err != nil {
		return nil, fmt.Errorf("iam: %w", err)
	}
	if s.handler, err = s.routes(); err != nil {
		return nil, fmt.Errorf("iam: %w", err)
	}
	return s, nil
}

// GeneratedAdminPassword returns the bootstrap administrator's password
// when this start generated it, so that the caller can show it once; it is
// empty on every other start.
func (s *Service) GeneratedAdminPassword() string { return s.generatedAdminPassword }

// Handler returns the whole HTTP surface, with /healthz, /readyz and
// /metrics.
func (s *Service) Handler() http.Handler { return s.handler }

// Issuer returns the issuer URL the service signs tokens for.
func (s *Service) Issuer() string { return s.cfg.Issuer }

// RotateKeys publishes a new signing key now; it signs once
// KeyPublishAhead has passed. The previous key keeps verifying until its
// tokens have expired.
func (s *Service) RotateKeys(ctx context.Context) error {
	return s.keys.rotate(ctx, s.cfg.KeyPublishAhead, false)
}

// Run rotates keys on schedule, reloads keys rotated by other instances and
// prunes expired state, until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		if err := s.maintain(ctx); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "iam maintenance failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func (s *Service) maintain(ctx context.Context) error {
	if err := s.keys.rotate(ctx, s.cfg.KeyPublishAhead, true); err != nil {
		return err
	}
	if err := s.keys.dropExpired(ctx); err != nil {
		return err
	}
	if err := s.store.prunePasswordResets(ctx, s.now()); err != nil {
		return err
	}
	return s.store.prune(ctx, s.now())
}

// Close stops the back-channel logout retries still pending; the database
// belongs to the caller.
func (s *Service) Close() error {
	s.backchannel.close()
	return nil
}

func (s *Service) bootstrapAdmin(ctx context.Context) error {
	now := s.now()
	return s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		u, err := s.store.userByUsername(ctx, tx, AdminUsername)
		switch {
		case errors.Is(err, errNotFound):
			pw := s.cfg.AdminPassword
			generated := pw == ""
			if generated {
				pw = randomString(20)
			}
			hash, err := hashPassword(pw)
			if err != nil {
				return err
			}
			id := uuid.NewString()
			err = s.store.insertUser(ctx, tx, &user{
				ID: id, Username: AdminUsername, PasswordHash: hash,
				Roles: []string{auth.RoleAdmin, auth.RoleDealerAdministrator}, Enabled: true, CreatedByClient: bootstrapClient,
			}, now)
			if err != nil {
				return err
			}
			if generated {
				// A generated password was printed on a console or in a
				// log: the first login replaces it.
				if err := s.store.setMustChangePassword(ctx, tx, id, true, now); err != nil {
					return err
				}
				tx.AfterCommit(func() { s.generatedAdminPassword = pw })
			}
			return nil
		case err != nil:
			return err
		}
		if s.cfg.AdminPassword == "" {
			return nil
		}
		ok, err := verifyPassword(u.PasswordHash, s.cfg.AdminPassword)
		if err != nil || !ok {
			hash, err := hashPassword(s.cfg.AdminPassword)
			if err != nil {
				return err
			}
			if err := s.store.updateCredentials(ctx, tx, u.ID, hash, u.Roles, now); err != nil {
				return err
			}
			// The operator's own password replaces a generated one, and
			// with it the need to change it.
			return s.store.setMustChangePassword(ctx, tx, u.ID, false, now)
		}
		return nil
	})
}

// routes assembles the HTTP surface: the OpenID Provider endpoints, the
// login UI and the users API, wrapped by the operational endpoints.
func (s *Service) routes() (http.Handler, error) {
	mux := httpx.NewMux("iam")
	mux.HandleFunc("GET "+loginPath, s.login.show)
	mux.HandleFunc("POST "+loginPath, s.login.submit)
	mux.HandleFunc("GET "+loggedOutPath, s.login.loggedOut)
	s.lifecycleRoutes(mux)
	oidcHandler := s.protocolHeaders(s.opHandler())
	v, err := s.newValidator(oidcHandler)
	if err != nil {
		return nil, err
	}
	s.validator = v
	users := &usersAPI{s: s}
	mux.Handle("POST /api/users", s.requireUserAdmin(users.create))
	mux.Handle("GET /api/users/{id}", s.requireUserAdmin(users.get))
	mux.Handle("PUT /api/users/{id}/roles", s.requireUserAdmin(users.setRoles))
	mux.Handle("POST /api/users/{id}/disable", s.requireUserAdmin(users.disable))
	mux.Handle("POST /api/users/{id}/enable", s.requireUserAdmin(users.enable))
	mux.Handle("POST /api/users/{id}/logout", s.requireUserAdmin(users.logoutAll))
	mux.Handle("POST /api/users/{id}/password-reset", s.requireUserAdmin(users.resetPassword))
	mux.Handle("/api/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, r, apperr.New(apperr.NotFound, "no such endpoint"))
	}))
	mux.Handle("/", oidcHandler)
	// RFC 8414 metadata is the discovery document: same issuer, same
	// endpoints, same content.
	mux.Handle("GET "+authServerMetadataPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2 := r.Clone(r.Context())
		r2.URL.Path = oidc.DiscoveryEndpoint
		r2.URL.RawPath = ""
		oidcHandler.ServeHTTP(w, r2)
	}))
	ops := &httpx.Ops{
		Service:  "iam",
		Registry: s.registry,
		Logger:   s.log,
		Ready:    []httpx.ReadyCheck{{Name: "database", Check: s.db.Ping}},
	}
	return s.hsts(ops.Handler(mux)), nil
}
