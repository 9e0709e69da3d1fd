package iam

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"github.com/realguardio/realguardio/internal/contract/facts"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/principal"
)

// The audiences of RealGuardIO's backend services. An access token carries
// the audiences its client is configured with, and each resource server
// accepts only tokens naming its own audience.
const (
	AudienceIAM            = principal.AudienceIAM
	AudienceCustomer       = principal.AudienceCustomer
	AudienceDealer         = principal.AudienceDealer
	AudienceMonitoring     = principal.AudienceMonitoring
	AudienceSecuritySystem = principal.AudienceSecuritySystem
)

// AllAudiences lists every backend audience; the BFF and CLI clients get
// all of them because their users call every backend.
var AllAudiences = []string{AudienceIAM, AudienceCustomer, AudienceDealer, AudienceMonitoring, AudienceSecuritySystem}

// Client ids of the clients DefaultClients configures.
const (
	ClientBFF = "realguardio-bff"
	ClientCLI = "realguardio-cli"
)

// ScopeUsersWrite lets a client-credentials token manage IAM users.
const ScopeUsersWrite = principal.ScopeUsersWrite

// ScopeAuthzRead lets a client-credentials token read the organization
// services' authorization facts (docs/fetch-api.md).
const ScopeAuthzRead = facts.ScopeRead

// CLIRedirectURI is the loopback redirect URI registered for the CLI; any
// port is accepted (RFC 8252 §7.3), nothing else varies.
const CLIRedirectURI = "http://127.0.0.1/callback"

// CLIPostLogoutRedirectURI is the CLI's post-logout redirect URI, on any
// port like CLIRedirectURI.
const CLIPostLogoutRedirectURI = "http://127.0.0.1/logged-out"

// ClientConfig configures one OAuth client.
type ClientConfig struct {
	// ID is the client_id.
	ID string
	// SecretHash is HashClientSecret of the client's secret. Machine
	// secrets are long random strings, so an unsalted SHA-256 is as strong
	// as a slow hash here and keeps client authentication cheap (it runs on
	// every client-credentials request).
	SecretHash string
	// Secret is the clear secret, accepted for convenience of the wiring
	// code; New hashes it and never keeps it.
	Secret string
	// Public marks a client without a secret (the CLI); it must use PKCE,
	// as every client must.
	Public bool
	// RedirectURIs are matched exactly, except that an http URI of a
	// public client whose host is a loopback IP literal also matches the
	// same URI with any port (RFC 8252 §7.3): only the port may differ.
	RedirectURIs []string
	// PostLogoutRedirectURIs are the allowed post_logout_redirect_uri
	// values, matched like RedirectURIs.
	PostLogoutRedirectURIs []string
	// BackchannelLogoutURI, when set, is where the IAM POSTs a logout
	// token (OpenID Connect Back-Channel Logout 1.0) whenever a session of
	// this client's users ends at the IAM: end_session, "log out
	// everywhere", a disable. See backchannel.go.
	BackchannelLogoutURI string
	// GrantTypes lists the allowed grants: "authorization_code",
	// "refresh_token", "client_credentials".
	GrantTypes []string
	// Scopes lists the scopes the client may obtain.
	Scopes []string
	// Audiences are put in the aud claim of the client's access tokens.
	Audiences []string
	// AccessTokenLifetime overrides Config.AccessTokenLifetime when set.
	AccessTokenLifetime time.Duration
	// ProvisionableRoles are the application roles a client-credentials
	// token of this client (with scope users:write) may give the users it
	// creates: an organization service provisions its own employees and
	// nothing more. Such a client sees, disables and enables only the
	// users it created, and never changes roles; only a REALGUARDIO_ADMIN
	// user manages every account. The platform roles REALGUARDIO_ADMIN and
	// REALGUARDIO_DEALER_ADMINISTRATOR are never provisionable, so that a
	// compromised service cannot mint platform staff.
	ProvisionableRoles []string
}

// HashClientSecret returns the value ClientConfig.SecretHash holds for
// secret: "sha256:" and the hex SHA-256 digest.
func HashClientSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// employeeRoles maps each organization service's client id to the
// application role of its employees, the only role it may provision.
var employeeRoles = map[string]string{
	AudienceCustomer:   auth.RoleCustomerEmployee,
	AudienceDealer:     auth.RoleDealerEmployee,
	AudienceMonitoring: auth.RoleMonitoringEmployee,
}

// DefaultClients returns RealGuardIO's clients: the BFF (confidential,
// authorization code and refresh), the public CLI, and one
// client-credentials client per entry of serviceSecrets (client id → clear
// secret). The organization services (customer, dealer, monitoring) get the
// users:write scope, since they create their employees' accounts, limited
// to their own employee application role (ProvisionableRoles); the
// Security System Service gets authz:read, since its fetch strategy reads
// their facts.
func DefaultClients(bffRedirectURI, bffPostLogoutURI string, serviceSecrets map[string]string, bffSecret string) []ClientConfig {
	clients := []ClientConfig{
		{
			ID:                     ClientBFF,
			SecretHash:             HashClientSecret(bffSecret),
			RedirectURIs:           []string{bffRedirectURI},
			PostLogoutRedirectURIs: nonEmpty(bffPostLogoutURI),
			GrantTypes:             []string{string(oidc.GrantTypeCode), string(oidc.GrantTypeRefreshToken)},
			Scopes:                 []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeOfflineAccess},
			Audiences:              slices.Clone(AllAudiences),
		},
		{
			ID:                     ClientCLI,
			Public:                 true,
			RedirectURIs:           []string{CLIRedirectURI},
			PostLogoutRedirectURIs: []string{CLIPostLogoutRedirectURI},
			GrantTypes:             []string{string(oidc.GrantTypeCode), string(oidc.GrantTypeRefreshToken)},
			Scopes:                 []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeOfflineAccess},
			Audiences:              slices.Clone(AllAudiences),
		},
	}
	ids := make([]string, 0, len(serviceSecrets))
	for id := range serviceSecrets {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		var scopes, provisionable []string
		switch id {
		case AudienceCustomer, AudienceDealer, AudienceMonitoring:
			scopes = []string{ScopeUsersWrite}
			provisionable = []string{employeeRoles[id]}
		case AudienceSecuritySystem:
			// The fetch strategy reads the organization services' facts
			// endpoints (docs/fetch-api.md) with this scope.
			scopes = []string{ScopeAuthzRead}
		}
		clients = append(clients, ClientConfig{
			ID:                 id,
			SecretHash:         HashClientSecret(serviceSecrets[id]),
			GrantTypes:         []string{string(oidc.GrantTypeClientCredentials)},
			Scopes:             scopes,
			Audiences:          slices.Clone(AllAudiences),
			ProvisionableRoles: provisionable,
		})
	}
	return clients
}

func nonEmpty(s ...string) []string {
	var out []string
	for _, v := range s {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// validate checks one client configuration, naming what is wrong.
func (c ClientConfig) validate() error {
	if c.ID == "" {
		return fmt.Errorf("client without id")
	}
	if !c.Public && c.SecretHash == "" && c.Secret == "" {
		return fmt.Errorf("client %s: a confidential client needs Secret or SecretHash", c.ID)
	}
	if c.Public && (c.SecretHash != "" || c.Secret != "") {
		return fmt.Errorf("client %s: a public client has no secret", c.ID)
	}
	if c.SecretHash != "" && !strings.HasPrefix(c.SecretHash, "sha256:") {
		return fmt.Errorf("client %s: SecretHash must come from HashClientSecret", c.ID)
	}
	for _, g := range c.GrantTypes {
		switch oidc.GrantType(g) {
		case oidc.GrantTypeCode, oidc.GrantTypeRefreshToken:
		case oidc.GrantTypeClientCredentials:
			if c.Public {
				return fmt.Errorf("client %s: a public client cannot use client_credentials", c.ID)
			}
		default:
			return fmt.Errorf("client %s: grant type %q is not supported", c.ID, g)
		}
	}
	for _, u := range append(slices.Clone(c.RedirectURIs), c.PostLogoutRedirectURIs...) {
		p, err := url.Parse(u)
		if err != nil || p.Host == "" || (p.Scheme != "http" && p.Scheme != "https") || p.Fragment != "" {
			return fmt.Errorf("client %s: redirect URI %q must be an absolute http(s) URL without fragment", c.ID, u)
		}
	}
	if c.BackchannelLogoutURI != "" {
		if err := validateBackchannelURI(c.BackchannelLogoutURI); err != nil {
			return fmt.Errorf("client %s: back-channel logout URI %q %v", c.ID, c.BackchannelLogoutURI, err)
		}
	}
	if slices.Contains(c.GrantTypes, string(oidc.GrantTypeCode)) && len(c.RedirectURIs) == 0 {
		return fmt.Errorf("client %s: authorization_code needs at least one redirect URI", c.ID)
	}
	if len(c.Audiences) == 0 {
		return fmt.Errorf("client %s: no audiences", c.ID)
	}
	for _, r := range c.ProvisionableRoles {
		switch {
		case !auth.IsApplicationRole(r):
			return fmt.Errorf("client %s: provisionable role %q is not an application role", c.ID, r)
		case r == auth.RoleAdmin || r == auth.RoleDealerAdministrator:
			return fmt.Errorf("client %s: the platform role %s cannot be provisionable; an administrator grants it", c.ID, r)
		}
	}
	if len(c.ProvisionableRoles) > 0 && !slices.Contains(c.Scopes, ScopeUsersWrite) {
		return fmt.Errorf("client %s: provisionable roles need scope %s", c.ID, ScopeUsersWrite)
	}
	return nil
}

// redirectAllowed reports whether uri is one of the client's redirect URIs
// (see ClientConfig.RedirectURIs). zitadel's own check is wider for native
// clients: it compares only the path and query of loopback URIs, so it
// would take https://localhost:1/callback or http://[::1]:2/callback for
// http://127.0.0.1/callback. This check runs before it.
func (c *client) redirectAllowed(uri string) bool {
	return matchRedirect(c.cfg.RedirectURIs, uri, c.cfg.Public)
}

// postLogoutAllowed is redirectAllowed for post_logout_redirect_uri.
func (c *client) postLogoutAllowed(uri string) bool {
	return matchRedirect(c.cfg.PostLogoutRedirectURIs, uri, c.cfg.Public)
}

// matchRedirect reports whether uri equals one of registered or, with
// anyPort, is a registered http loopback IP literal URI with a port put in
// (1 to 65535). The variant is rebuilt canonically and compared as a
// string, so no other difference passes: not the scheme, the host (not
// localhost, not another loopback address), user info, an escaped or
// longer path, a query or a fragment, or a port written with leading
// zeros.
func matchRedirect(registered []string, uri string, anyPort bool) bool {
	if slices.Contains(registered, uri) {
		return true
	}
	if !anyPort {
		return false
	}
	u, err := url.Parse(uri)
	if err != nil {
		return false
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil || port < 1 || port > 65535 {
		return false
	}
	for _, reg := range registered {
		r, err := url.Parse(reg)
		if err != nil || r.Scheme != "http" || r.User != nil || r.Port() != "" || net.ParseIP(r.Hostname()) == nil || !net.ParseIP(r.Hostname()).IsLoopback() {
			continue
		}
		variant := *r
		variant.Host = net.JoinHostPort(r.Hostname(), strconv.Itoa(port))
		if variant.String() == uri {
			return true
		}
	}
	return false
}

// mayProvision reports whether the client may give every one of roles to
// a user it creates.
func (c *client) mayProvision(roles []string) bool {
	for _, r := range roles {
		if !slices.Contains(c.cfg.ProvisionableRoles, r) {
			return false
		}
	}
	return true
}

// client is a configured client; it implements op.Client.
type client struct {
	cfg        ClientConfig
	secretHash []byte // nil for public clients
	loginURL   string
	idLifetime time.Duration
	atLifetime time.Duration
}

var _ op.Client = (*client)(nil)

func newClient(cfg ClientConfig, issuer string, idLifetime, atLifetime time.Duration) (*client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Secret != "" {
		cfg.SecretHash = HashClientSecret(cfg.Secret)
		cfg.Secret = ""
	}
	c := &client{cfg: cfg, loginURL: issuer + loginPath, idLifetime: idLifetime, atLifetime: atLifetime}
	if cfg.AccessTokenLifetime > 0 {
		c.atLifetime = cfg.AccessTokenLifetime
	}
	if !cfg.Public {
		h, err := hex.DecodeString(strings.TrimPrefix(cfg.SecretHash, "sha256:"))
		if err != nil || len(h) != sha256.Size {
			return nil, fmt.Errorf("client %s: SecretHash is not a SHA-256 hex digest", cfg.ID)
		}
		c.secretHash = h
	}
	return c, nil
}

// checkSecret compares in constant time so the comparison leaks nothing
// about the stored hash.
func (c *client) checkSecret(secret string) bool {
	if c.cfg.Public || secret == "" {
		return false
	}
	sum := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(sum[:], c.secretHash) == 1
}

func (c *client) allowsGrant(g oidc.GrantType) bool {
	return slices.Contains(c.cfg.GrantTypes, string(g))
}

func (c *client) GetID() string                    { return c.cfg.ID }
func (c *client) RedirectURIs() []string           { return c.cfg.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string { return c.cfg.PostLogoutRedirectURIs }

// ApplicationType is native for public clients, which is what makes
// zitadel accept their loopback redirect URIs on any port.
func (c *client) ApplicationType() op.ApplicationType {
	if c.cfg.Public {
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeWeb
}

func (c *client) AuthMethod() oidc.AuthMethod {
	if c.cfg.Public {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}

func (c *client) ResponseTypes() []oidc.ResponseType {
	if c.allowsGrant(oidc.GrantTypeCode) {
		return []oidc.ResponseType{oidc.ResponseTypeCode}
	}
	return nil
}

func (c *client) GrantTypes() []oidc.GrantType {
	out := make([]oidc.GrantType, len(c.cfg.GrantTypes))
	for i, g := range c.cfg.GrantTypes {
		out[i] = oidc.GrantType(g)
	}
	return out
}

func (c *client) LoginURL(id string) string {
	return c.loginURL + "?authRequestID=" + url.QueryEscape(id)
}

func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }
func (c *client) IDTokenLifetime() time.Duration      { return c.idLifetime }
func (c *client) DevMode() bool                       { return false }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) IsScopeAllowed(scope string) bool     { return slices.Contains(c.cfg.Scopes, scope) }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *client) ClockSkew() time.Duration             { return 0 }
