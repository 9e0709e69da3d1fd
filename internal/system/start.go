package system

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/realguardio/realguardio/internal/iam"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/fga"
	"github.com/realguardio/realguardio/internal/platform/fsperm"
	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/telemetry"
	"github.com/realguardio/realguardio/internal/securitysystem"
)

// clientIDs maps each backend service to its OAuth client id. The ids are
// the services' audiences, so a token's client is recognisable in logs.
var clientIDs = map[string]string{
	ServiceCustomer:       iam.AudienceCustomer,
	ServiceDealer:         iam.AudienceDealer,
	ServiceMonitoring:     iam.AudienceMonitoring,
	ServiceSecuritySystem: iam.AudienceSecuritySystem,
}

// System is a running set of services.
type System struct {
	cfg    Config
	logger *slog.Logger
	cancel context.CancelFunc
	// running holds every background component (servers, services' Run).
	// None stops the others: an unexpected stop is logged and reported on
	// errs (tests fail on it), and the rest keep serving.
	running errgroup.Group
	errs    chan error

	mu      sync.Mutex
	closers []func() error

	// URLs maps each running service to the base URL it is reached at.
	URLs map[string]string
	// AdminPassword is the bootstrap admin's password when this start
	// generated it, so that it can be printed once; empty otherwise.
	AdminPassword string
	// NATSURL is the URL of the NATS server in use.
	NATSURL string
	// Strategy is the Security System Service's authorization strategy.
	Strategy string
	// OpenFGAURL is the URL of the embedded OpenFGA server, when one runs.
	OpenFGAURL string

	// waits is what the start is waiting for, shown by /readyz until the
	// services are built (startingHandler).
	waits startWaits

	// tracing holds the services' tracer providers (nil with tracing off).
	tracing *telemetry.Tracing

	// fgaToken is the key OpenFGA clients present: the configured one for
	// an external server, a per-start one for the embedded server.
	fgaToken string

	// IAM is the IAM Service when it runs in this process (tests use it to
	// rotate keys and inspect users).
	IAM *iam.Service
	// SecuritySystem is the Security System Service when it runs here.
	SecuritySystem *securitysystem.Service
}

// Start builds and starts the configured services and returns once every
// one listens. Stop ends them.
func Start(ctx context.Context, cfg Config, logger *slog.Logger) (*System, error) {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &System{cfg: cfg, logger: logger, cancel: cancel, errs: make(chan error, 16), URLs: map[string]string{}, Strategy: cfg.Authz}
	if err := s.start(ctx, runCtx); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// runs reports whether service name runs in this process: every service
// under `up` (one a strategy lists, such as the authorization sync, only
// with that strategy), or the one `serve` names.
func (s *System) runs(name string) bool {
	if s.cfg.Only != "" {
		return s.cfg.Only == name
	}
	return !strategyOnly(name) || slices.Contains(strategies[s.cfg.Authz].services, name)
}

// start opens what the services share, then builds each one that runs
// here with its entry in builders, in that order, and serves them.
func (s *System) start(ctx, runCtx context.Context) error {
	cfg := s.cfg
	secrets, err := s.clientSecrets()
	if err != nil {
		return err
	}
	// Everything written from now on is private to this user, and what an
	// earlier start or a permissive umask left readable is made private.
	fsperm.RestrictUmask()
	if err := fsperm.Tree(cfg.DataDir); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}

	// Bind every listener first so that URLs are known (tests bind port 0)
	// before any service is configured with the others' addresses.
	listeners := map[string]net.Listener{}
	for _, name := range ServiceNames() {
		ep := cfg.Endpoints[name]
		if s.runs(name) {
			ln, err := net.Listen("tcp", ep.Addr)
			if err != nil {
				return fmt.Errorf("--%s-addr (%s): listen on %s: %w", name, "REALGUARDIO_"+strings.ToUpper(name)+"_ADDR", ep.Addr, err)
			}
			listeners[name] = ln
			s.onClose(func() error { _ = ln.Close(); return nil })
			if _, port, _ := net.SplitHostPort(ep.Addr); port == "0" || ep.URL == "" {
				s.URLs[name] = "http://localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
				continue
			}
		}
		s.URLs[name] = strings.TrimRight(ep.URL, "/")
	}
	// Answer on every bound port at once, /readyz saying what the start
	// waits for, until the services are built.
	starting := map[string]*startingHandler{}
	for name, ln := range listeners {
		h := &startingHandler{name: name, waiting: &s.waits}
		starting[name] = h
		srv := &httpx.Server{Name: name, Listener: ln, Handler: h, Logger: s.log(name)}
		s.goRun(runCtx, name+" http", srv.Serve)
	}
	issuer := s.URLs[ServiceIAM]
	if cfg.IAMInternalURL != "" {
		// Every client of the IAM in this process uses the default
		// transport, so rewriting there reaches them all (validators,
		// service tokens, the IAM user API, the BFF's OIDC client) and
		// touches no other request. Only a process started with the
		// setting (serve in a deployment) changes it.
		rt, err := auth.InternalTransport(issuer, cfg.IAMInternalURL, http.DefaultTransport)
		if err != nil {
			return fmt.Errorf("iam-internal-url: %w", err)
		}
		http.DefaultTransport = rt
	}

	if s.tracing, err = telemetry.Setup(ctx, cfg.telemetryConfig()); err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	if s.tracing != nil {
		// Registered before every service, so it runs after they stopped
		// and flushes their last spans.
		s.onClose(func() error {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return s.tracing.Shutdown(sctx)
		})
	}

	w := &wiring{issuer: issuer, secrets: secrets, strategy: strategies[cfg.Authz]}
	// The BFF alone needs NATS only for the pages' live state: without a
	// server it runs with live updates off rather than not at all.
	bffAlone := cfg.Only == ServiceBFF && cfg.NATSURL == ""
	if slices.ContainsFunc(builders, func(b serviceBuilder) bool { return b.nats && s.runs(b.name) }) && !bffAlone {
		if w.bus, err = s.startNATS(ctx); err != nil {
			return err
		}
	}

	services := map[string]built{}
	for _, b := range builders {
		if !s.runs(b.name) {
			continue
		}
		svc, err := b.build(s, ctx, w)
		if err != nil {
			return err
		}
		services[b.name] = svc
	}

	for _, name := range ServiceNames() {
		b, ok := services[name]
		if !ok {
			continue
		}
		// Each service traces with its own provider: its requests as server
		// spans, its background work (relays, consumers) through the run
		// context.
		tp := s.tracing.Provider(name)
		starting[name].serve(telemetry.Handler(tp, b.handler))
		s.goRun(telemetry.WithProvider(runCtx, tp), name, b.run)
	}
	return nil
}

// startOpenFGA returns the URL of the OpenFGA server the delegate strategy
// uses: the configured one, or an embedded server that `up` starts with its
// store under the data directory.
func (s *System) startOpenFGA(ctx context.Context) (string, error) {
	if s.cfg.OpenFGAURL != "" {
		s.fgaToken = s.cfg.OpenFGAToken
		return strings.TrimRight(s.cfg.OpenFGAURL, "/"), nil
	}
	if s.cfg.Only != "" {
		return "", errors.New("--openfga-url (REALGUARDIO_OPENFGA_URL): a service run alone needs an external OpenFGA server; the embedded one is only started by `up`")
	}
	// The embedded server holds every authorization tuple: a fresh key
	// per start keeps other local processes from writing their own grants.
	s.fgaToken = randomSecret(24)
	emb, err := fga.StartEmbedded(ctx, fga.EmbeddedOptions{
		Addr:         s.cfg.OpenFGAEmbeddedAddr,
		Dir:          filepath.Join(s.cfg.DataDir, "openfga"),
		Logger:       s.log("openfga"),
		PresharedKey: s.fgaToken,
	})
	if err != nil {
		return "", fmt.Errorf("embedded OpenFGA on %s: %w", s.cfg.OpenFGAEmbeddedAddr, err)
	}
	s.onClose(emb.Close)
	s.OpenFGAURL = emb.URL()
	return emb.URL(), nil
}

// fgaWriteLimit is how many tuples one Write to the OpenFGA server in use
// may carry: --openfga-max-tuples-per-write, else the embedded server's
// limit or OpenFGA's default for an external one.
func (s *System) fgaWriteLimit() int {
	switch {
	case s.cfg.OpenFGAMaxTuplesPerWrite > 0:
		return s.cfg.OpenFGAMaxTuplesPerWrite
	case s.cfg.OpenFGAURL == "":
		return fga.EmbeddedMaxTuplesPerWrite
	}
	return fga.MaxTuplesPerWrite
}

func (s *System) openDB(ctx context.Context, name string) (*sqldb.DB, error) {
	s.waits.set("database", "connecting")
	defer s.waits.set("database", "")
	db, err := openDatabase(ctx, s.cfg, name)
	if err != nil {
		return nil, err
	}
	s.onClose(db.Close)
	return db, nil
}

func (s *System) log(name string) *slog.Logger { return s.logger.With("service", name) }

// clientSecrets returns the clear secrets of the BFF and service clients:
// those configured, and when the whole system runs in this process (`up`)
// fresh random ones for the rest, which never leave the process. A service
// run alone must be given its secret, and the IAM all of them.
func (s *System) clientSecrets() (map[string]string, error) {
	given, err := parsePairs(s.cfg.ClientSecrets)
	if err != nil {
		return nil, fmt.Errorf("--client-secrets: %w", err)
	}
	out := map[string]string{}
	var missing []string
	for _, name := range []string{ServiceBFF, ServiceCustomer, ServiceDealer, ServiceMonitoring, ServiceSecuritySystem} {
		if v := given[name]; v != "" {
			if len(v) < 16 {
				return nil, fmt.Errorf("--client-secrets (REALGUARDIO_CLIENT_SECRETS): the secret of %s must be at least 16 characters", name)
			}
			out[name] = v
			continue
		}
		if s.cfg.Only == "" {
			out[name] = randomSecret(32)
			continue
		}
		if s.cfg.Only == name || s.cfg.Only == ServiceIAM {
			missing = append(missing, name)
		}
	}
	for name := range given {
		if _, ok := out[name]; !ok {
			return nil, fmt.Errorf("--client-secrets (REALGUARDIO_CLIENT_SECRETS): unknown client %q (want bff, customer, dealer, monitoring, securitysystem)", name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("--client-secrets (REALGUARDIO_CLIENT_SECRETS): no secret for %s; a service run alone needs its own, and the IAM Service all of them", strings.Join(missing, ", "))
	}
	return out, nil
}

// sessionKeys returns the BFF's cookie keys: those configured, or under `up`
// the ones kept in the data directory, generated at the first start, so that
// web sessions (cookies and the sealed store rows) survive a restart.
func (s *System) sessionKeys() ([]string, error) {
	if strings.TrimSpace(s.cfg.SessionKeys) != "" {
		var keys []string
		for _, k := range strings.Split(s.cfg.SessionKeys, ",") {
			keys = append(keys, strings.TrimSpace(k))
		}
		return keys, nil
	}
	if s.cfg.Only != "" {
		return nil, errors.New("--session-keys (REALGUARDIO_SESSION_KEYS): the BFF run alone needs its cookie keys, so that every instance can read every session")
	}
	return loadOrCreateKeys(filepath.Join(s.cfg.DataDir, sessionKeysFile))
}

// sessionKeysFile is the name, in the data directory, of the file holding
// the BFF's cookie keys when REALGUARDIO_SESSION_KEYS does not give them.
const sessionKeysFile = "bff-session-keys"

// loadOrCreateKeys reads the base64 keys in path, one a line, or creates the
// file with one fresh key. The file is the session secret: it is created
// 0600 in a 0700 directory, and an existing file readable by others is
// tightened to 0600 before use.
func loadOrCreateKeys(path string) ([]string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("session keys: %w", err)
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return nil, err
		}
		key := base64.StdEncoding.EncodeToString(k)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			// Another process created it first: use theirs.
			return loadOrCreateKeys(path)
		}
		if err != nil {
			return nil, fmt.Errorf("session keys: %w", err)
		}
		_, werr := f.WriteString(key + "\n")
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			_ = os.Remove(path)
			return nil, fmt.Errorf("session keys: write %s: %w", path, werr)
		}
		return []string{key}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("session keys: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return nil, fmt.Errorf("session keys: %s is readable by other users and cannot be made private: %w", path, err)
		}
	}
	var keys []string
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			keys = append(keys, line)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("session keys: %s holds no key; delete it to have one generated", path)
	}
	return keys, nil
}

// onClose registers f to run at Stop, in reverse order of registration.
func (s *System) onClose(f func() error) {
	s.mu.Lock()
	s.closers = append(s.closers, f)
	s.mu.Unlock()
}

// goRun runs f in the background until Stop; an error other than at
// shutdown is logged and reported on Errors.
func (s *System) goRun(ctx context.Context, name string, f func(ctx context.Context) error) {
	s.running.Go(func() error {
		if err := f(ctx); err != nil && ctx.Err() == nil {
			s.logger.Error("component stopped", "component", name, "err", err)
			select {
			case s.errs <- fmt.Errorf("%s: %w", name, err):
			default:
			}
		}
		return nil
	})
}

// Errors reports components that stopped unexpectedly.
func (s *System) Errors() <-chan error { return s.errs }

// Stop shuts every service down, waits for them, then closes what they
// shared (databases, NATS), newest first.
func (s *System) Stop() error {
	s.cancel()
	_ = s.running.Wait() // every component returns nil: errors went to errs
	s.mu.Lock()
	closers := s.closers
	s.closers = nil
	s.mu.Unlock()
	var errs []error
	for i := len(closers) - 1; i >= 0; i-- {
		if err := closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// PrintWelcome tells the operator where to log in.
func (s *System) PrintWelcome(out io.Writer) {
	fmt.Fprintln(out, "RealGuardIO is running.")
	fmt.Fprintln(out)
	for _, name := range ServiceNames() {
		if u, ok := s.URLs[name]; ok && s.runs(name) {
			fmt.Fprintf(out, "  %-15s %s\n", name, u)
		}
	}
	if s.runs(ServiceSecuritySystem) {
		fmt.Fprintf(out, "  %-15s %s\n", "authorization", s.Strategy)
	}
	if s.NATSURL != "" {
		fmt.Fprintf(out, "  %-15s %s\n", "nats", s.NATSURL)
	}
	if s.OpenFGAURL != "" {
		fmt.Fprintf(out, "  %-15s %s\n", "openfga", s.OpenFGAURL)
	}
	if s.cfg.Trace {
		fmt.Fprintf(out, "  %-15s %s\n", "traces", s.cfg.TraceFile())
	}
	if db := s.sqliteServices(); len(db) > 0 {
		fmt.Fprintf(out, "  %-15s SQLite files in %s for %s (set --database-url for PostgreSQL)\n", "database", s.cfg.DataDir, strings.Join(db, ", "))
	}
	switch {
	case s.runs(ServiceBFF):
		fmt.Fprintf(out, "\nOpen %s/ and log in as admin", s.URLs[ServiceBFF])
		if s.AdminPassword != "" {
			fmt.Fprintf(out, " with the generated password:\n\n    %s\n\nIt is shown only this once, and the first login asks you to replace it; or set --admin-password (REALGUARDIO_ADMIN_PASSWORD) to choose your own.\n", s.AdminPassword)
		} else {
			fmt.Fprintln(out, " (password: the one set with --admin-password, or the one the IAM Service generated and printed at its first start).")
		}
	case s.AdminPassword != "":
		// serve iam: the BFF runs elsewhere, but the generated password
		// exists only here and now.
		fmt.Fprintf(out, "\nThe bootstrap user admin has the generated password:\n\n    %s\n\nIt is shown only this once, and the first login asks you to replace it; or set --admin-password (REALGUARDIO_ADMIN_PASSWORD) to choose your own.\n", s.AdminPassword)
	}
}

// sqliteServices names the services of this process that keep their data
// in SQLite files (no PostgreSQL URL was given for them), which a
// deployer who forgot --database-url must hear of.
func (s *System) sqliteServices() []string {
	var out []string
	for _, name := range ServiceNames() {
		if !s.runs(name) || name == ServiceBFF {
			continue
		}
		if u := s.cfg.databaseURL(name); !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
			out = append(out, name)
		}
	}
	return out
}

// minLevel drops records below its level, to quieten a chatty component.
type minLevel struct {
	slog.Handler
	level slog.Level
}

// Enabled reports whether the record's level reaches the minimum.
func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.level && m.Handler.Enabled(ctx, l)
}

// WithAttrs keeps the minimum on derived handlers.
func (m minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{m.Handler.WithAttrs(attrs), m.level}
}

// WithGroup keeps the minimum on derived handlers.
func (m minLevel) WithGroup(name string) slog.Handler {
	return minLevel{m.Handler.WithGroup(name), m.level}
}

// reuseGrace converts the system setting to the IAM's, where zero means the
// default and a negative value none.
func reuseGrace(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// publishAhead converts the system setting to the IAM's, where zero means
// the default and a negative value "at once".
func publishAhead(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
