// Package system wires RealGuardIO together, in one place: it turns the
// system configuration into databases, the event bus, the authorization
// service and the services themselves, and runs them. `realguardio up` runs
// every service in one process, each on its own port and talking to the
// others only over HTTP and events, exactly as when they run apart;
// `realguardio serve <service>` runs one of them.
package system

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/realguardio/realguardio/internal/iam"
	"github.com/realguardio/realguardio/internal/platform/config"
	"github.com/realguardio/realguardio/internal/platform/fsperm"
	"github.com/realguardio/realguardio/internal/platform/telemetry"
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
	// NATSUser and NATSPassword authenticate a service to an external
	// NATS server as its own identity (deploy/README.md lists each one's
	// permissions); the password belongs in REALGUARDIO_NATS_PASSWORD.
	NATSUser, NATSPassword string
	// NATSCredsFile is a NATS credentials file (user JWT and nkey seed) of
	// the service's identity, for a server in operator mode.
	NATSCredsFile string
	// NATSNKeySeedFile is a file with the nkey seed of the service's
	// identity, for a server with nkey users.
	NATSNKeySeedFile string
	// NATSCAFile, NATSCertFile and NATSKeyFile configure TLS to the
	// external server: the CAs that sign its certificate, and a client
	// certificate and key when it verifies clients.
	NATSCAFile, NATSCertFile, NATSKeyFile string
	// NATSReplicas is the replica count of the streams; 0 chooses by the
	// cluster's size (3 from three servers on, else 1).
	NATSReplicas int
	// Endpoints of every service, by service name.
	Endpoints map[string]*Endpoint
	// AccessTokenLifetime is the lifetime of access tokens.
	AccessTokenLifetime time.Duration
	// RefreshReuseGrace is how long the IAM answers a just-rotated refresh
	// token presented again with the same successor instead of revoking
	// its family; negative disables it.
	RefreshReuseGrace time.Duration
	// KeyPublishAhead is how long a new IAM signing key is published before
	// it signs, so resource servers know it before any token carries it.
	KeyPublishAhead time.Duration
	// MaxAccessTokenBytes is the largest access token the IAM mints; the
	// provide strategy's claims grow with a user's locations, and cookies
	// and proxies have limits.
	MaxAccessTokenBytes int
	// TrustedProxies are comma-separated CIDRs of the reverse proxies in
	// front of the IAM; only from them is X-Forwarded-For believed for the
	// login throttle's client address. Parsed by Validate into
	// trustedProxies.
	TrustedProxies string
	trustedProxies []netip.Prefix
	// SessionLifetime and SessionIdleTimeout bound the IAM's browser
	// session (single sign-on).
	SessionLifetime, SessionIdleTimeout time.Duration
	// RequireMFAForAdmin makes holders of REALGUARDIO_ADMIN enrol a TOTP
	// second factor at their next login.
	RequireMFAForAdmin bool
	// PasswordResetLifetime is how long an administrator's one-time
	// password reset code may be redeemed.
	PasswordResetLifetime time.Duration
	// KeyEncryptionKey seals the IAM's signing keys in its database:
	// comma-separated base64 32-byte keys, the first sealing (rotation:
	// "new,old"). Empty reads KeyEncryptionKeyFile, else the data
	// directory's file, generated at the first start.
	KeyEncryptionKey string
	// KeyEncryptionKeyFile names a file holding KeyEncryptionKey's value.
	KeyEncryptionKeyFile string
	// SessionKeys are the BFF's cookie keys (base64, 32 bytes each), first
	// encrypts; empty under `up` uses the key kept in the data directory
	// (bff-session-keys, generated at the first start, mode 0600), so web
	// sessions survive a restart.
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
	// OpenFGAMaxTuplesPerWrite is the external OpenFGA server's
	// OPENFGA_MAX_TUPLES_PER_WRITE, the most tuples the authorization sync
	// sends in one Write (0: fga.EmbeddedMaxTuplesPerWrite for the
	// embedded server, OpenFGA's default 100 for --openfga-url).
	OpenFGAMaxTuplesPerWrite int
	// IAMInternalURL, when set, is where the services reach the IAM
	// (discovery, JWKS, token endpoint, code exchange) while tokens carry
	// the public issuer --iam-url; see auth.InternalTransport.
	IAMInternalURL string
	// AllowNoAuthz makes Validate accept Authz "none", the Security System
	// Service's allow-everything baseline. Only `realguardio bench` sets it,
	// to measure what each strategy costs; it is bound to no flag, so `up`
	// and `serve` can never run without authorization.
	AllowNoAuthz bool
	// Trace writes every span as a JSON line to traces.jsonl in the data
	// directory (`up --trace`), for reading a trace without a collector.
	Trace bool
	// Telemetry is where spans go besides the trace file: OTLP when the
	// standard OTEL_EXPORTER_OTLP_* variables say so (internal/cli reads
	// them), or a test's exporter. It is bound to no flag.
	Telemetry telemetry.Config

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
	l.String(&c.NATSUser, "nats-user", "", "NATS user of the service run by serve (its own identity on the external server)")
	l.String(&c.NATSPassword, "nats-password", "", "password of --nats-user; set it in the environment, not as a flag")
	l.String(&c.NATSCredsFile, "nats-creds", "", "NATS credentials file (user JWT and nkey seed) of the service's identity")
	l.String(&c.NATSNKeySeedFile, "nats-nkey-seed", "", "file holding the nkey seed of the service's NATS identity")
	l.String(&c.NATSCAFile, "nats-ca", "", "PEM file of the CAs that sign the NATS server's certificate (enables TLS)")
	l.String(&c.NATSCertFile, "nats-cert", "", "client certificate for NATS TLS (with --nats-key)")
	l.String(&c.NATSKeyFile, "nats-key", "", "client key for NATS TLS (with --nats-cert)")
	l.Int(&c.NATSReplicas, "nats-replicas", 0, "replicas of each event stream (default: 3 on a NATS cluster of three servers or more, else 1)")
	l.Duration(&c.AccessTokenLifetime, "access-token-lifetime", 5*time.Minute, "lifetime of access tokens")
	l.Duration(&c.RefreshReuseGrace, "refresh-reuse-grace", 30*time.Second, "how long a just-rotated refresh token presented again gets the same successor instead of revoking its session (concurrent refreshes by BFF instances); negative disables it")
	l.Duration(&c.KeyPublishAhead, "key-publish-ahead", 10*time.Minute, "how long a new IAM signing key is published before it signs")
	l.Int(&c.MaxAccessTokenBytes, "max-access-token-bytes", 8192, "largest access token the IAM mints (the provide strategy's claims grow with a user's locations)")
	l.String(&c.TrustedProxies, "trusted-proxies", "", "comma-separated CIDRs of the reverse proxies in front of the IAM, whose X-Forwarded-For gives the login throttle the client address (default: none, the connection's peer is the client)")
	l.Duration(&c.SessionLifetime, "session-lifetime", 12*time.Hour, "longest IAM browser session (single sign-on) after the password was proved")
	l.Duration(&c.SessionIdleTimeout, "session-idle-timeout", 2*time.Hour, "an IAM browser session unused this long ends")
	l.Bool(&c.RequireMFAForAdmin, "iam-require-mfa-admin", false, "make holders of REALGUARDIO_ADMIN enrol a TOTP second factor at their next login")
	l.Duration(&c.PasswordResetLifetime, "iam-password-reset-lifetime", time.Hour, "how long an administrator's one-time password reset code may be redeemed")
	l.String(&c.KeyEncryptionKey, "key-encryption-key", "", "comma-separated base64 32-byte keys sealing the IAM's signing keys in its database, the first sealing (default: --key-encryption-key-file, else "+kekFileName+" in the data directory, generated once)")
	l.String(&c.KeyEncryptionKeyFile, "key-encryption-key-file", "", "file holding the --key-encryption-key value")
	l.String(&c.SessionKeys, "session-keys", "", "comma-separated base64 32-byte keys of the BFF session cookie and store, first encrypts (default under up: kept in <data-dir>/bff-session-keys)")
	l.String(&c.OpenFGAURL, "openfga-url", "", "external OpenFGA server for the delegate strategy (default: an embedded one)")
	l.String(&c.OpenFGAEmbeddedAddr, "openfga-embedded-addr", "127.0.0.1:3005", "listen address of the embedded OpenFGA server's HTTP API")
	l.Duration(&c.OpenFGATimeout, "openfga-timeout", 2*time.Second, "timeout of each call to OpenFGA (a check or a batch of checks); past it the decision is a 503")
	l.Int(&c.OpenFGAMaxTuplesPerWrite, "openfga-max-tuples-per-write", 0, "the external OpenFGA server's OPENFGA_MAX_TUPLES_PER_WRITE: the most tuples the authorization sync writes in one call (default: 1000 for the embedded server, OpenFGA's default 100 for --openfga-url)")
	l.String(&c.IAMInternalURL, "iam-internal-url", "", "URL at which the services reach the IAM when the issuer --iam-url (the public URL in tokens and browser redirects) is not reachable from inside, e.g. http://iam:9000 behind https://login.example.com (default: --iam-url)")
	l.String(&c.OpenFGAToken, "openfga-token", "", "preshared key of the external OpenFGA server, if it requires one")
	l.Bool(&c.Trace, "trace", false, "write every span as a JSON line to traces.jsonl in the data directory (OTLP export is set by the standard OTEL_EXPORTER_OTLP_ENDPOINT)")
	l.String(&c.ClientSecrets, "client-secrets", "", "comma-separated name=secret pairs for the bff and service clients (default: generated per start; required when services run apart)")
	c.ServiceDatabaseURLs = map[string]string{}
	c.Endpoints = map[string]*Endpoint{}
	for _, name := range ServiceNames() {
		ep := &Endpoint{}
		c.Endpoints[name] = ep
		l.String(&ep.Addr, name+"-addr", defaultAddr(name), "listen address of the "+name+" service (default: the port of --"+name+"-url when only that is set)")
		l.String(&ep.URL, name+"-url", defaultURL(name), "base URL at which the "+name+" service is reached (default: derived from --"+name+"-addr when only that is set)")
		dbURL := new(string)
		l.String(dbURL, name+"-database-url", "", "database URL of the "+name+" service (overrides --database-url)")
		c.dbFlags = append(c.dbFlags, boundURL{name: name, p: dbURL})
	}
}

// defaultAddr and defaultURL are the defaults of a service's --X-addr and
// --X-url, which deriveEndpoint compares against.
func defaultAddr(name string) string { return "127.0.0.1:" + defaultPorts[name] }
func defaultURL(name string) string  { return "http://localhost:" + defaultPorts[name] }

// deriveEndpoint fills the setting of ep that was left at its default from
// the one that was changed, so that a deployer who sets only --X-addr or
// only --X-url gets a service that listens where it is said to be reached
// (and a banner that prints the URL it really answers at): before, the
// other kept the default port and peers called a port nobody listened on.
//   - Only the address changed: the URL is http://<host>:<port>, with
//     localhost for a loopback or unspecified host; port 0 leaves the URL
//     to be taken from the bound listener.
//   - Only the URL changed and it names a port: the service listens on
//     that port, on 127.0.0.1 when the URL's host is loopback, else on
//     every interface (the name is how other machines reach it). A URL
//     without a port (a public URL behind a proxy) leaves the address.
func deriveEndpoint(name string, ep *Endpoint) {
	addrSet, urlSet := ep.Addr != defaultAddr(name), ep.URL != defaultURL(name)
	switch {
	case addrSet && !urlSet:
		host, port, err := net.SplitHostPort(ep.Addr)
		if err != nil {
			return // Validate names the bad address
		}
		if port == "0" {
			ep.URL = ""
			return
		}
		if ip, err := netip.ParseAddr(host); host == "" || (err == nil && (ip.IsLoopback() || ip.IsUnspecified())) {
			host = "localhost"
		}
		ep.URL = "http://" + net.JoinHostPort(host, port)
	case urlSet && !addrSet && ep.URL != "":
		u, err := url.Parse(ep.URL)
		if err != nil || u.Port() == "" {
			return
		}
		host := ""
		if h := u.Hostname(); h == "localhost" {
			host = "127.0.0.1"
		} else if ip, err := netip.ParseAddr(h); err == nil && ip.IsLoopback() {
			host = h
		}
		ep.Addr = net.JoinHostPort(host, u.Port())
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
	if c.RefreshReuseGrace > 5*time.Minute {
		p.Addf("refresh-reuse-grace", "must be at most 5m (a longer window lets a stolen refresh token go unnoticed), got %s", c.RefreshReuseGrace)
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
		for _, f := range []struct{ name, v string }{{"nats-user", c.NATSUser}, {"nats-creds", c.NATSCredsFile}, {"nats-nkey-seed", c.NATSNKeySeedFile}} {
			if f.v != "" {
				p.Addf(f.name, "applies to an external server (--nats-url); the embedded one gives every service its own identity")
			}
		}
	}
	if (c.NATSUser == "") != (c.NATSPassword == "") {
		p.Addf("nats-password", "--nats-user and --nats-password (REALGUARDIO_NATS_PASSWORD) go together")
	}
	if n := btoi(c.NATSUser != "") + btoi(c.NATSCredsFile != "") + btoi(c.NATSNKeySeedFile != ""); n > 1 {
		p.Addf("nats-user", "give one of --nats-user, --nats-creds and --nats-nkey-seed")
	}
	if (c.NATSCertFile == "") != (c.NATSKeyFile == "") {
		p.Addf("nats-cert", "--nats-cert and --nats-key go together")
	}
	if c.NATSReplicas < 0 || c.NATSReplicas > 5 {
		p.Addf("nats-replicas", "must be between 0 (by cluster size) and 5, got %d", c.NATSReplicas)
	}
	if c.OpenFGAMaxTuplesPerWrite < 0 {
		p.Addf("openfga-max-tuples-per-write", "must not be negative, got %d", c.OpenFGAMaxTuplesPerWrite)
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
		deriveEndpoint(name, ep)
		p.CheckAddr(name+"-addr", ep.Addr)
		if ep.URL != "" {
			p.CheckHTTPURL(name+"-url", ep.URL)
		}
	}
	c.trustedProxies = nil
	for _, part := range strings.Split(c.TrustedProxies, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(part)
		if err != nil {
			if a, aerr := netip.ParseAddr(part); aerr == nil {
				pfx, err = a.Prefix(a.BitLen())
			}
		}
		if err != nil {
			p.Addf("trusted-proxies", "%q is not a CIDR (like 10.0.0.0/8) or an address", part)
			continue
		}
		c.trustedProxies = append(c.trustedProxies, pfx.Masked())
	}
	if c.SessionLifetime <= 0 {
		p.Addf("session-lifetime", "must be positive, got %s", c.SessionLifetime)
	}
	if c.PasswordResetLifetime <= 0 {
		p.Addf("iam-password-reset-lifetime", "must be positive, got %s", c.PasswordResetLifetime)
	}
	if c.SessionIdleTimeout <= 0 {
		p.Addf("session-idle-timeout", "must be positive, got %s", c.SessionIdleTimeout)
	}
	if c.KeyEncryptionKey != "" {
		if _, err := iam.ParseKeyEncryptionKeys(c.KeyEncryptionKey); err != nil {
			p.Addf("key-encryption-key", "%v", err)
		}
	}
	if _, err := parsePairs(c.ClientSecrets); err != nil {
		p.Addf("client-secrets", "%v", err)
	}
	return p.Err()
}

// TraceFile is the file of `up --trace` in the data directory.
func (c *Config) TraceFile() string { return filepath.Join(c.DataDir, "traces.jsonl") }

// telemetryConfig returns where spans go.
func (c *Config) telemetryConfig() telemetry.Config {
	t := c.Telemetry
	if c.Trace {
		t.File = c.TraceFile()
	}
	return t
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

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// kekFileName is the key-encryption key file `up` keeps in the data
// directory when no key is given.
const kekFileName = "iam-key-encryption-key"

// keyEncryptionKeys returns the IAM's key-encryption keys: the setting,
// else the file the setting names, else the data directory's file, created
// 0600 with a new key when missing.
func (c *Config) keyEncryptionKeys() ([][]byte, error) {
	if c.KeyEncryptionKey != "" {
		return iam.ParseKeyEncryptionKeys(c.KeyEncryptionKey)
	}
	path := c.KeyEncryptionKeyFile
	if path == "" {
		path = filepath.Join(c.DataDir, kekFileName)
		if err := fsperm.Dir(c.DataDir); err != nil {
			return nil, fmt.Errorf("--data-dir: %w", err)
		}
		k, err := iam.NewKeyEncryptionKey()
		if err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fsperm.FileMode)
		if err == nil {
			_, werr := f.WriteString(k + "\n")
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				return nil, fmt.Errorf("write %s: %w", path, werr)
			}
		} else if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("create %s: %w", path, err)
		}
	}
	if err := fsperm.File(path); err != nil {
		return nil, fmt.Errorf("--key-encryption-key-file: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--key-encryption-key-file: %w", err)
	}
	keys, err := iam.ParseKeyEncryptionKeys(string(b))
	if err != nil {
		return nil, fmt.Errorf("--key-encryption-key-file %s: %w", path, err)
	}
	return keys, nil
}
