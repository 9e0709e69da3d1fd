// Package system wires RealGuardIO together, in one place: it turns the
// system configuration into databases, the event bus, the authorization
// service and the services themselves, and runs them. `realguardio up` runs
// every service in one process, each on its own port and talking to the
// others only over HTTP and events, exactly as when they run apart;
// `realguardio serve <service>` runs one of them.
package system

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/realguardio/realguardio/internal/platform/config"
)

// Service names, as accepted by `realguardio serve`.
const (
	ServiceIAM            = "iam"
	ServiceCustomer       = "customer"
	ServiceDealer         = "dealer"
	ServiceMonitoring     = "monitoring"
	ServiceSecuritySystem = "securitysystem"
	ServiceBFF            = "bff"
	// ServiceAuthzSync feeds OpenFGA from the events; it runs only with the
	// delegate strategy.
	ServiceAuthzSync = "authzsync"
)

// ServiceNames lists the services in start order.
func ServiceNames() []string {
	return []string{ServiceIAM, ServiceCustomer, ServiceDealer, ServiceMonitoring, ServiceAuthzSync, ServiceSecuritySystem, ServiceBFF}
}

// Strategies are the accepted values of --authz.
var Strategies = []string{"fetch", "replicate", "provide", "delegate"}

// Endpoint is where one service listens and how the others reach it.
type Endpoint struct {
	// Addr is the listen address (host:port; port 0 picks a free one).
	Addr string
	// URL is the base URL other services and browsers use; empty derives
	// it from the bound listener.
	URL string
}

// Config is the whole system's configuration.
type Config struct {
	// Only names the single service to run (serve); empty runs all (up).
	Only string
	// DataDir holds the SQLite files, the embedded NATS store and the
	// embedded OpenFGA store.
	DataDir string
	// Authz selects the authorization strategy of the Security System
	// Service.
	Authz string
	// AdminPassword sets the bootstrap admin's password; empty generates
	// one at first start.
	AdminPassword string
	// Demo loads demo organizations and prints their logins.
	Demo bool
	// DatabaseURL, when set to a PostgreSQL server URL, gives every service
	// its own database realguardio_<service> on that server (created when
	// missing); per-service URLs override it.
	DatabaseURL string
	// ServiceDatabaseURLs overrides the database of individual services.
	ServiceDatabaseURLs map[string]string
	// NATSURL selects an external NATS server or cluster; empty starts an
	// embedded one on NATSEmbeddedAddr.
	NATSURL string
	// NATSEmbeddedAddr is the listen address of the embedded NATS server.
	NATSEmbeddedAddr string
	// Endpoints of every service, by service name.
	Endpoints map[string]*Endpoint
	// AccessTokenLifetime is the lifetime of access tokens.
	AccessTokenLifetime time.Duration
	// KeyPublishAhead is how long a new IAM signing key is published before
	// it signs, so resource servers know it before any token carries it.
	KeyPublishAhead time.Duration
	// MaxAccessTokenBytes is the largest access token the IAM mints; the
	// provide strategy's claims grow with a user's locations, and cookies
	// and proxies have limits.
	MaxAccessTokenBytes int
	// SessionKeys are the BFF's cookie keys (base64, 32 bytes each), first
	// encrypts; empty generates one per start (sessions end at restart).
	SessionKeys string
	// ClientSecrets are the secrets of the BFF and service clients as
	// name=secret pairs; needed when services run apart, generated per start
	// by `up`.
	ClientSecrets string
	// OpenFGAURL selects an external OpenFGA server for the delegate
	// strategy; empty starts an embedded one (only `up` may).
	OpenFGAURL string
	// OpenFGAEmbeddedAddr is the listen address of the embedded OpenFGA
	// server's HTTP API.
	OpenFGAEmbeddedAddr string
	// OpenFGAToken is the preshared key of an external OpenFGA server.
	OpenFGAToken string
	// OpenFGATimeout bounds every call to OpenFGA (a Check, or a batch of
	// at most 50 checks); past it the decision is a 503.
	OpenFGATimeout time.Duration
	// IAMInternalURL, when set, is where the services reach the IAM
	// (discovery, JWKS, token endpoint, code exchange) while tokens carry
	// the public issuer --iam-url; see auth.InternalTransport.
	IAMInternalURL string
	// AllowNoAuthz makes Validate accept Authz "none", the Security System
	// Service's allow-everything baseline. Only `realguardio bench` sets it,
	// to measure what each strategy costs; it is bound to no flag, so `up`
	// and `serve` can never run without authorization.
	AllowNoAuthz bool

	// dbFlags are the per-service database flags bound by Bind, folded into
	// ServiceDatabaseURLs by Validate.
	dbFlags []boundURL
}

var defaultPorts = map[string]string{
	ServiceBFF:            "3000",
	ServiceSecuritySystem: "3001",
	ServiceCustomer:       "3002",
	ServiceDealer:         "3003",
	ServiceMonitoring:     "3004",
	ServiceIAM:            "9000",
	ServiceAuthzSync:      "3006",
}

// Bind defines every setting on l with its default.
func (c *Config) Bind(l *config.Loader) {
	l.String(&c.DataDir, "data-dir", "./data", "directory for the embedded databases, NATS and OpenFGA stores")
	l.String(&c.Authz, "authz", "replicate", "authorization strategy of the Security System Service: "+strings.Join(Strategies, ", "))
	l.String(&c.AdminPassword, "admin-password", "", "password of the bootstrap user admin (default: generated once and printed)")
	l.Bool(&c.Demo, "demo", false, "load demo organizations and print their logins")
	l.String(&c.DatabaseURL, "database-url", "", "PostgreSQL server URL; each service uses its own database realguardio_<service> on it (default: SQLite files in the data directory)")
	l.String(&c.NATSURL, "nats-url", "", "external NATS server or cluster URL(s), comma separated (default: an embedded server)")
	l.String(&c.NATSEmbeddedAddr, "nats-embedded-addr", "127.0.0.1:4223", "listen address of the embedded NATS server")
	l.Duration(&c.AccessTokenLifetime, "access-token-lifetime", 5*time.Minute, "lifetime of access tokens")
	l.Duration(&c.KeyPublishAhead, "key-publish-ahead", 10*time.Minute, "how long a new IAM signing key is published before it signs")
	l.Int(&c.MaxAccessTokenBytes, "max-access-token-bytes", 8192, "largest access token the IAM mints (the provide strategy's claims grow with a user's locations)")
	l.String(&c.SessionKeys, "session-keys", "", "comma-separated base64 32-byte keys of the BFF session cookie, first encrypts (default: generated per start)")
	l.String(&c.OpenFGAURL, "openfga-url", "", "external OpenFGA server for the delegate strategy (default: an embedded one)")
	l.String(&c.OpenFGAEmbeddedAddr, "openfga-embedded-addr", "127.0.0.1:3005", "listen address of the embedded OpenFGA server's HTTP API")
	l.Duration(&c.OpenFGATimeout, "openfga-timeout", 2*time.Second, "timeout of each call to OpenFGA (a check or a batch of checks); past it the decision is a 503")
	l.String(&c.IAMInternalURL, "iam-internal-url", "", "URL at which the services reach the IAM when the issuer --iam-url (the public URL in tokens and browser redirects) is not reachable from inside, e.g. http://iam:9000 behind https://login.example.com (default: --iam-url)")
	l.String(&c.OpenFGAToken, "openfga-token", "", "preshared key of the external OpenFGA server, if it requires one")
	l.String(&c.ClientSecrets, "client-secrets", "", "comma-separated name=secret pairs for the bff and service clients (default: generated per start; required when services run apart)")
	c.ServiceDatabaseURLs = map[string]string{}
	c.Endpoints = map[string]*Endpoint{}
	for _, name := range ServiceNames() {
		ep := &Endpoint{}
		c.Endpoints[name] = ep
		l.String(&ep.Addr, name+"-addr", "127.0.0.1:"+defaultPorts[name], "listen address of the "+name+" service")
		l.String(&ep.URL, name+"-url", "http://localhost:"+defaultPorts[name], "base URL at which the "+name+" service is reached")
		dbURL := new(string)
		l.String(dbURL, name+"-database-url", "", "database URL of the "+name+" service (overrides --database-url)")
		c.dbFlags = append(c.dbFlags, boundURL{name: name, p: dbURL})
	}
}

type boundURL struct {
	name string
	p    *string
}

// Validate checks every setting and names each one that is wrong.
func (c *Config) Validate() error {
	for _, b := range c.dbFlags {
		if *b.p != "" {
			c.ServiceDatabaseURLs[b.name] = *b.p
		}
	}
	var p config.Problems
	if c.DataDir == "" {
		p.Addf("data-dir", "must not be empty")
	}
	if !(c.AllowNoAuthz && c.Authz == "none") {
		p.CheckOneOf("authz", c.Authz, Strategies...)
	}
	if c.Only != "" && !slices.Contains(ServiceNames(), c.Only) {
		p.Addf("serve", "unknown service %q (want one of %s)", c.Only, strings.Join(ServiceNames(), ", "))
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		p.Addf("database-url", "must be a postgres:// URL, got a value of another scheme")
	}
	if c.AdminPassword != "" && len(c.AdminPassword) < 8 {
		p.Addf("admin-password", "must be at least 8 characters")
	}
	if c.AccessTokenLifetime < 10*time.Second || c.AccessTokenLifetime > 24*time.Hour {
		p.Addf("access-token-lifetime", "must be between 10s and 24h, got %s", c.AccessTokenLifetime)
	}
	if c.KeyPublishAhead < 0 {
		p.Addf("key-publish-ahead", "must not be negative")
	}
	if c.MaxAccessTokenBytes < 1024 {
		p.Addf("max-access-token-bytes", "must be at least 1024, got %d", c.MaxAccessTokenBytes)
	}
	if c.NATSURL == "" {
		p.CheckAddr("nats-embedded-addr", c.NATSEmbeddedAddr)
	}
	if c.OpenFGATimeout <= 0 {
		p.Addf("openfga-timeout", "must be positive, got %s", c.OpenFGATimeout)
	}
	if c.OpenFGAURL != "" {
		p.CheckHTTPURL("openfga-url", c.OpenFGAURL)
	} else {
		p.CheckAddr("openfga-embedded-addr", c.OpenFGAEmbeddedAddr)
	}
	if c.IAMInternalURL != "" {
		p.CheckHTTPURL("iam-internal-url", c.IAMInternalURL)
	}
	for _, name := range ServiceNames() {
		ep := c.Endpoints[name]
		p.CheckAddr(name+"-addr", ep.Addr)
		if ep.URL != "" {
			p.CheckHTTPURL(name+"-url", ep.URL)
		}
	}
	if _, err := parsePairs(c.ClientSecrets); err != nil {
		p.Addf("client-secrets", "%v", err)
	}
	return p.Err()
}

// databaseURL returns the database URL of service name.
func (c *Config) databaseURL(name string) string {
	if u := c.ServiceDatabaseURLs[name]; u != "" {
		return u
	}
	if c.DatabaseURL != "" {
		return withDatabase(c.DatabaseURL, "realguardio_"+name)
	}
	return filepath.Join(c.DataDir, name+".db")
}

// parsePairs parses "a=b,c=d".
func parsePairs(s string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("%q is not name=secret", redactPair(part))
		}
		out[k] = v
	}
	return out, nil
}

func redactPair(s string) string {
	if k, _, ok := strings.Cut(s, "="); ok {
		return k + "=…"
	}
	if len(s) > 4 {
		return s[:4] + "…"
	}
	return s
}

// hostPort splits an address for messages.
func hostPort(addr string) string {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if h == "" {
		h = "0.0.0.0"
	}
	return net.JoinHostPort(h, p)
}
