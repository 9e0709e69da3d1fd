// Package systemtest drives the whole of RealGuardIO through `up`
// (internal/system.Start) exactly as an outside client would: every service
// listens on 127.0.0.1 on a free port, users log in through the real OpenID
// Connect flow of the IAM Service with real client libraries, and every
// request goes through the public HTTP contract (API.md).
//
// The exported harness (Start, System.Login, Client, System.WaitConverged,
// LoadWorld, Loaded.Apply, Loaded.Compare) is meant for the system tests in
// this package and for later benchmarks that need the same running system.
//
// The tests run every strategy of the table in scenario_test.go on SQLite
// and, when REALGUARDIO_TEST_POSTGRES_URL is set, on PostgreSQL:
//
//	go test -race ./internal/systemtest/...
//	go test ./internal/systemtest -run TestConformance -systemtest.size=medium -systemtest.seed=42
package systemtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/realguardio/realguardio/internal/apiclient"
	"github.com/realguardio/realguardio/internal/platform/config"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/platform/telemetry"
	"github.com/realguardio/realguardio/internal/system"
)

// Store names the databases a system under test uses.
type Store string

// The stores Start supports.
const (
	// StoreSQLite gives every service a SQLite file in a temporary
	// directory, the default of `up`.
	StoreSQLite Store = "sqlite"
	// StorePostgres gives every service a fresh PostgreSQL database on the
	// server named by REALGUARDIO_TEST_POSTGRES_URL (the test skips when it
	// is unset, or fails under CI=true).
	StorePostgres Store = "postgres"
)

// Options configures a system under test. The zero value (apart from
// Strategy) is a usable default.
type Options struct {
	// Strategy is the Security System Service's authorization strategy
	// (--authz).
	Strategy string
	// Store selects SQLite (default) or PostgreSQL.
	Store Store
	// AdminPassword is the bootstrap admin's password; a random one when
	// empty, so tests never share a guessable credential.
	AdminPassword string
	// AccessTokenLifetime is the lifetime of access tokens; 30 minutes when
	// zero, so a test never sees a token expire by accident (tests that
	// want expiry set it).
	AccessTokenLifetime time.Duration
	// LogLevel is the minimum level of the system's log lines copied to
	// the test log; slog.LevelWarn when zero-valued Options are used.
	LogLevel *slog.Level
	// SpanExporter, when set, receives every span of every service (the
	// SDK's in-memory exporter in the tracing tests).
	SpanExporter sdktrace.SpanExporter
}

// System is a running RealGuardIO started by Start, with what a black-box
// client needs to reach it.
type System struct {
	// Sys is the running system as internal/system returns it.
	Sys *system.System
	// Strategy is the authorization strategy in use.
	Strategy string
	// Store is the kind of databases in use.
	Store Store
	// Issuer is the IAM Service's issuer URL.
	Issuer string
	// AdminUsername and AdminPassword are the bootstrap admin's
	// credentials.
	AdminUsername, AdminPassword string

	tb   testing.TB
	http *http.Client

	oidcOnce sync.Once
	oidc     *apiclient.Provider
	oidcErr  error

	mu       sync.Mutex
	sessions []*Session

	adminMu sync.Mutex
	admin   *Client

	probeOnce sync.Once
	probe     *probe
	probeErr  error
}

// URL returns the base URL of the named service (system.ServiceIAM, ...).
func (s *System) URL(service string) string { return s.Sys.URLs[service] }

// Services returns the names of the services running in this system, in
// start order: those of system.ServiceNames that have a URL (some run only
// with one strategy, such as the authorization sync with delegate).
func (s *System) Services() []string {
	var out []string
	for _, name := range system.ServiceNames() {
		if s.Sys.URLs[name] != "" {
			out = append(out, name)
		}
	}
	return out
}

// NewConfig returns the configuration `up` would use with its defaults,
// changed to run on free loopback ports with dataDir and strategy, and
// validated the way the command line validates it. An error from Validate
// is returned unchanged so a caller can tell a rejected setting (a strategy
// `up` does not accept) from a failure to start.
func NewConfig(dataDir, strategy string) (system.Config, error) {
	var cfg system.Config
	fs := flag.NewFlagSet("systemtest", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	// An empty environment: the test must not pick up the developer's
	// REALGUARDIO_* settings.
	l := config.NewLoader(fs, func(string) string { return "" })
	cfg.Bind(l)
	if err := l.Parse(nil); err != nil {
		return cfg, err
	}
	cfg.DataDir = dataDir
	cfg.Authz = strategy
	cfg.NATSEmbeddedAddr = "127.0.0.1:0"
	// The embedded OpenFGA too: its default port would make two systems
	// with the delegate strategy (parallel packages) collide.
	cfg.OpenFGAEmbeddedAddr = "127.0.0.1:0"
	// The race detector slows OpenFGA's check evaluation many times over,
	// and CI runs packages side by side on two cores: a batch check that
	// takes tens of milliseconds in production can take seconds here. The
	// production default (2s) stays; the tests are about decisions, not
	// latency.
	cfg.OpenFGATimeout = 30 * time.Second
	for _, ep := range cfg.Endpoints {
		ep.Addr = "127.0.0.1:0"
		ep.URL = ""
	}
	return cfg, cfg.Validate()
}

// ValidateStrategy reports whether `up` accepts strategy, by the same
// Config.Validate the command line runs.
func ValidateStrategy(strategy string) error {
	_, err := NewConfig(os.TempDir(), strategy)
	return err
}

// Start starts the whole system with opts and stops it when the test ends.
// It fails the test when the system does not start.
func Start(tb testing.TB, opts Options) *System {
	tb.Helper()
	if opts.Store == "" {
		opts.Store = StoreSQLite
	}
	cfg, err := NewConfig(tb.TempDir(), opts.Strategy)
	if err != nil {
		tb.Fatalf("configuration for strategy %q: %v", opts.Strategy, err)
	}
	if opts.AdminPassword == "" {
		opts.AdminPassword = "admin-" + randomHex(12)
	}
	cfg.AdminPassword = opts.AdminPassword
	cfg.AccessTokenLifetime = opts.AccessTokenLifetime
	if cfg.AccessTokenLifetime == 0 {
		cfg.AccessTokenLifetime = 30 * time.Minute
	}
	switch opts.Store {
	case StoreSQLite:
	case StorePostgres:
		// One fresh database per service and test rather than
		// Config.DatabaseURL: that would put every test on the same
		// databases realguardio_<service> (there is no name prefix
		// setting), so runs would see each other's data.
		// sqldbtest drops the databases when the test ends, after Stop,
		// which is registered later and so runs first.
		cfg.ServiceDatabaseURLs = map[string]string{}
		for _, name := range system.ServiceNames() {
			cfg.ServiceDatabaseURLs[name] = sqldbtest.PostgresURL(tb)
		}
	default:
		tb.Fatalf("unknown store %q", opts.Store)
	}
	if err := cfg.Validate(); err != nil {
		tb.Fatalf("configuration: %v", err)
	}
	cfg.Telemetry.Exporter = opts.SpanExporter
	level := slog.LevelWarn
	if opts.LogLevel != nil {
		level = *opts.LogLevel
	}
	logger, stopLog := testLogger(tb, level)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	started := time.Now()
	sys, err := system.Start(ctx, cfg, logger)
	if err != nil {
		stopLog()
		tb.Fatalf("start the system (strategy %s, %s): %v", opts.Strategy, opts.Store, err)
	}
	tb.Logf("system up in %v: strategy %s, store %s, IAM %s", time.Since(started).Round(time.Millisecond), opts.Strategy, opts.Store, sys.URLs[system.ServiceIAM])
	s := &System{
		Sys:           sys,
		Strategy:      opts.Strategy,
		Store:         opts.Store,
		Issuer:        sys.URLs[system.ServiceIAM],
		AdminUsername: "admin",
		AdminPassword: opts.AdminPassword,
		tb:            tb,
		// A test that starts a span sends its trace context, so its
		// requests are the roots of the system's traces.
		http: &http.Client{Timeout: 30 * time.Second, Transport: telemetry.Transport(nil)},
	}
	// A component that dies while the test runs would otherwise show up only
	// as confusing timeouts: it is logged at once and fails the test at the
	// end.
	done := make(chan struct{})
	var dead error
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case err := <-sys.Errors():
			logger.Error("a component of the system stopped", "err", err)
			dead = err
		case <-done:
		}
	}()
	tb.Cleanup(func() {
		close(done)
		<-watched
		if dead != nil {
			tb.Errorf("a component of the system stopped while the test ran: %v", dead)
		}
		if err := sys.Stop(); err != nil {
			tb.Errorf("stop the system: %v", err)
		}
		stopLog()
		s.http.CloseIdleConnections()
	})
	if err := s.waitReady(); err != nil {
		tb.Fatal(err)
	}
	return s
}

// waitReady waits until every service answers /readyz with 200, so that a
// test's first request does not race the services' start (the replica
// consumer attaching to its streams, the JWKS being fetched).
func (s *System) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, name := range s.Services() {
		u := s.URL(name) + "/readyz"
		var last string
		err := poll(ctx, func() bool {
			resp, err := s.http.Get(u)
			if err != nil {
				last = err.Error()
				return false
			}
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b)))
			return resp.StatusCode == http.StatusOK
		})
		if err != nil {
			return fmt.Errorf("service %s not ready at %s within 60s: last answer %s", name, u, last)
		}
	}
	return nil
}

// poll is the one bounded wait of the harness (apiclient.Poll): nothing
// sleeps as an assertion.
func poll(ctx context.Context, cond func() bool) error { return apiclient.Poll(ctx, cond) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// testLogger returns a logger that copies records at or above level to the
// test log, and a function after which records are dropped: a service
// goroutine logging after the test ended would otherwise panic in t.Log.
func testLogger(tb testing.TB, level slog.Level) (*slog.Logger, func()) {
	w := &tbWriter{tb: tb}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), w.stop
}

type tbWriter struct {
	mu      sync.Mutex
	tb      testing.TB
	stopped bool
}

func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.tb.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *tbWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}
