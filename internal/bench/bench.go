// Package bench is RealGuardIO's own benchmark (`realguardio bench`): it
// runs the whole system once per authorization strategy, in this process
// and on 127.0.0.1 only, gives each the same generated organization, and
// measures side by side what the strategies cost (disarm latency and
// throughput, the list endpoint), how fast a revocation takes effect, and
// how large the provide strategy's access tokens grow. A "none" run
// (no authorization at all) is the baseline the ratios are taken against.
//
// Every run is bounded: a fixed number of requests and trials, a timeout
// per strategy, and every system is stopped and its data removed before the
// next starts.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/realguardio/realguardio/internal/apiclient"
	"github.com/realguardio/realguardio/internal/platform/config"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/policytest"
	"github.com/realguardio/realguardio/internal/system"
)

// StrategyNone is the baseline: the Security System Service allows every
// request without looking at any fact.
const StrategyNone = "none"

// Strategies are the strategies a run measures by default, the baseline
// first so that every other line can be read against it.
var Strategies = []string{StrategyNone, "provide", "fetch", "replicate", "delegate"}

// Config is the settings of a run. The zero value of a field takes the
// default DefaultConfig gives it.
type Config struct {
	// Strategies to measure, in order; "none" is the baseline.
	Strategies []string
	// Size and Seed choose the generated organization (policytest).
	Size policytest.Size
	Seed int64
	// Requests is the number of disarm requests per strategy, after
	// Warmup untimed ones; ListRequests the number of list requests.
	Requests, Warmup, ListRequests int
	// Concurrency is the number of workers sending requests.
	Concurrency int
	// Revocations is the number of revocation trials per strategy.
	Revocations int
	// PollInterval is the pause between two polls of a decision in a
	// revocation trial.
	PollInterval time.Duration
	// TokenSizeRoles are the numbers of location roles of the users whose
	// provide access token is measured; nil measures none.
	TokenSizeRoles []int
	// AccessTokenLifetime and MaxAccessTokenBytes configure the IAM as
	// `up` would (its defaults when zero).
	AccessTokenLifetime time.Duration
	MaxAccessTokenBytes int
	// StrategyTimeout bounds everything done for one strategy.
	StrategyTimeout time.Duration
	// OpenFGATimeout, when set, replaces `up`'s bound on each call to
	// OpenFGA (--openfga-timeout, 2 s). On a machine shared with other
	// work a call can wait that long for a core with nothing wrong with
	// OpenFGA; a longer bound then measures the calls instead of 503s.
	OpenFGATimeout time.Duration
	// Logger receives the system's own log (warnings and errors by
	// default); Progress, when not nil, one line per step.
	Logger   *slog.Logger
	Progress io.Writer
}

// DefaultConfig returns the settings of a plain `realguardio bench`: a few
// minutes on a small, loaded machine.
func DefaultConfig() Config {
	return Config{
		Strategies:      slices.Clone(Strategies),
		Size:            policytest.Small,
		Seed:            48, // a small world in which every system has an unrestricted user allowed to arm and disarm it
		Requests:        2000,
		ListRequests:    500,
		Concurrency:     8,
		Revocations:     20,
		PollInterval:    2 * time.Millisecond,
		TokenSizeRoles:  []int{1, 10, 100, 1000},
		StrategyTimeout: 10 * time.Minute,
	}
}

// Validate names every setting that cannot run.
func (c Config) Validate() error {
	var p config.Problems
	if len(c.Strategies) == 0 {
		p.Addf("strategies", "name at least one strategy")
	}
	for _, s := range c.Strategies {
		if !slices.Contains(Strategies, s) {
			p.Addf("strategies", "unknown strategy %q (want some of %s)", s, strings.Join(Strategies, ", "))
		}
	}
	if c.Requests < 1 || c.Requests > 1_000_000 {
		p.Addf("requests", "must be between 1 and 1000000, got %d", c.Requests)
	}
	if c.ListRequests < 1 || c.ListRequests > 1_000_000 {
		p.Addf("list-requests", "must be between 1 and 1000000, got %d", c.ListRequests)
	}
	if c.Warmup < 0 {
		p.Addf("warmup", "must not be negative")
	}
	if c.Concurrency < 1 || c.Concurrency > 256 {
		p.Addf("concurrency", "must be between 1 and 256, got %d", c.Concurrency)
	}
	if c.Revocations < 0 || c.Revocations > 10_000 {
		p.Addf("revocations", "must be between 0 and 10000, got %d", c.Revocations)
	}
	if c.PollInterval < 0 || c.PollInterval > time.Second {
		p.Addf("poll-interval", "must be between 0 and 1s, got %s", c.PollInterval)
	}
	for _, n := range c.TokenSizeRoles {
		if n < 1 || n > 5000 {
			p.Addf("token-sizes", "each count must be between 1 and 5000, got %d", n)
		}
	}
	if c.StrategyTimeout <= 0 {
		p.Addf("strategy-timeout", "must be positive")
	}
	return p.Err()
}

// Run measures every configured strategy in turn and returns the report.
// A strategy that fails is reported with its error and the others still
// run; Run returns an error only when nothing could be measured or ctx
// ended.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.Warmup == 0 {
		// Enough to open the connections and warm the caches; not so many
		// that a short run is mostly warm-up.
		cfg.Warmup = min(cfg.Requests/5, 10*cfg.Concurrency)
	}
	w := policytest.Generate(cfg.Seed, cfg.Size)
	pl, err := choose(w, cfg.Concurrency)
	if err != nil {
		return nil, err
	}
	base, err := systemConfig("", "none")
	if err != nil {
		return nil, err
	}
	if cfg.AccessTokenLifetime == 0 {
		cfg.AccessTokenLifetime = base.AccessTokenLifetime
	}
	if cfg.MaxAccessTokenBytes == 0 {
		cfg.MaxAccessTokenBytes = base.MaxAccessTokenBytes
	}
	rep := &Report{
		Started: time.Now().UTC(),
		Machine: Machine{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version()},
		Settings: Settings{
			Strategies: cfg.Strategies, Size: cfg.Size.String(), Seed: cfg.Seed,
			Requests: cfg.Requests, ListRequests: cfg.ListRequests, Concurrency: cfg.Concurrency, Warmup: cfg.Warmup,
			Revocations: cfg.Revocations, PollInterval: cfg.PollInterval,
			AccessTokenLifetime: cfg.AccessTokenLifetime, MaxAccessTokenBytes: cfg.MaxAccessTokenBytes,
			TokenSizeRoles: cfg.TokenSizeRoles, Store: "SQLite",
		},
		World: WorldInfo{
			Customers: len(w.Customers), Dealers: len(w.Dealers), MonitoringProviders: len(w.MonitoringProviders),
			Locations: len(w.Locations), Employees: len(w.Employees), Teams: len(w.Teams), SecuritySystems: len(w.SecuritySystems),
			DisarmSystems: len(pl.pairs), DisarmUsers: distinctUsers(pl.pairs),
			ListUser: "a " + string(mustEmployee(w, pl.listUser).OrgKind) + " employee", ListVisible: pl.listVisible,
		},
		Note: "Absolute numbers on a shared machine are noisy; the comparison is the ratios, measured in the same run on the same data.",
	}
	for _, strategy := range cfg.Strategies {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		fmt.Fprintf(cfg.Progress, "bench: %s: starting the system\n", strategy)
		res, sizes := runStrategy(ctx, cfg, strategy, w, pl)
		if res.Error != "" {
			fmt.Fprintf(cfg.Progress, "bench: %s: failed: %s\n", strategy, res.Error)
		}
		rep.Strategies = append(rep.Strategies, res)
		if sizes != nil {
			rep.TokenSizes = sizes
		}
	}
	rep.Duration = time.Since(rep.Started)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return rep, nil
}

func mustEmployee(w *policytest.World, userID string) policytest.Employee {
	e, _ := w.Employee(userID)
	return e
}

// systemConfig is `up`'s configuration with its defaults, on free loopback
// ports, under dataDir, with strategy; "none" is admitted through
// AllowNoAuthz, which no flag can set.
func systemConfig(dataDir, strategy string) (system.Config, error) {
	var cfg system.Config
	fs := flagSet()
	// An empty environment: a developer's REALGUARDIO_* settings must not
	// change what is measured.
	l := config.NewLoader(fs, func(string) string { return "" })
	cfg.Bind(l)
	if err := l.Parse(nil); err != nil {
		return cfg, err
	}
	cfg.DataDir, cfg.Authz, cfg.AllowNoAuthz = dataDir, strategy, true
	cfg.NATSEmbeddedAddr, cfg.OpenFGAEmbeddedAddr = "127.0.0.1:0", "127.0.0.1:0"
	for _, ep := range cfg.Endpoints {
		ep.Addr, ep.URL = "127.0.0.1:0", ""
	}
	return cfg, nil
}

// runner holds one strategy's running system and clients.
type runner struct {
	cfg      Config
	strategy string
	sys      *system.System
	hc       *http.Client
	ep       apiclient.Endpoints
	provider *apiclient.Provider
	admin    *apiclient.Client
	password string
	// initial is the password the organization services' accounts are
	// created with: it is someone else's choice, so the IAM has each
	// replace it with password at its first login. owed holds the
	// usernames whose first login is still to come.
	initial string
	owedMu  sync.Mutex
	owed    map[string]bool
}

// initialFor returns the initial password to create the organization
// account username with, and remembers that its first login must change it.
func (r *runner) initialFor(username string) string {
	r.owedMu.Lock()
	defer r.owedMu.Unlock()
	r.owed[username] = true
	return r.initial
}

// runStrategy starts the system with strategy, measures it and stops it;
// it returns the token sizes too when the strategy is provide.
func runStrategy(ctx context.Context, cfg Config, strategy string, w *policytest.World, pl plan) (res StrategyResult, sizes []TokenSize) {
	res.Strategy = strategy
	ctx, cancel := context.WithTimeout(ctx, cfg.StrategyTimeout)
	defer cancel()
	started := time.Now()
	r, stop, err := start(ctx, cfg, strategy)
	if err != nil {
		res.Error = err.Error()
		return res, nil
	}
	defer stop()
	fail := func(err error) (StrategyResult, []TokenSize) {
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w (after %s: %v)", err, cfg.StrategyTimeout, ctx.Err())
		}
		res.Error = err.Error()
		return res, nil
	}
	r.progress("loading the world")
	l, err := r.loadWorld(ctx, w)
	if err != nil {
		return fail(fmt.Errorf("load the world: %w", err))
	}
	r.progress("logging users in and waiting for convergence")
	fx, err := r.prepare(ctx, l, pl)
	if err != nil {
		return fail(err)
	}
	res.Setup = time.Since(started)

	r.progress(fmt.Sprintf("disarm: %d requests + %d warm-up, concurrency %d", cfg.Requests, cfg.Warmup, cfg.Concurrency))
	_ = r.disarmLoad(ctx, fx, cfg.Warmup)
	res.Disarm = r.disarmLoad(ctx, fx, cfg.Requests)
	r.progress(fmt.Sprintf("list: %d requests", cfg.ListRequests))
	res.List = Drive(ctx, cfg.ListRequests, cfg.Concurrency, func(ctx context.Context, _, _ int) error {
		list, err := fx.lister.ListSecuritySystems(ctx)
		if err == nil && len(list) != fx.listWant {
			err = fmt.Errorf("listed %d systems, want %d", len(list), fx.listWant)
		}
		return err
	})
	if strategy != StrategyNone && cfg.Revocations > 0 {
		r.progress(fmt.Sprintf("revocation: %d trials", cfg.Revocations))
		rv := r.revocations(ctx, fx)
		res.Revocation = &rv
	}
	if strategy == "provide" && len(cfg.TokenSizeRoles) > 0 {
		r.progress("access-token sizes (the IAM logs its refusal of a token over the limit: expected)")
		sizes, err = r.tokenSizes(ctx)
		if err != nil {
			return fail(fmt.Errorf("token sizes: %w", err))
		}
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	return res, sizes
}

func (r *runner) progress(msg string) {
	fmt.Fprintf(r.cfg.Progress, "bench: %s: %s\n", r.strategy, msg)
}

// start runs the whole system for strategy in a fresh temporary directory
// and logs the bootstrap admin in. stop ends the system and removes the
// directory.
func start(ctx context.Context, cfg Config, strategy string) (*runner, func(), error) {
	dir, err := os.MkdirTemp("", "realguardio-bench-")
	if err != nil {
		return nil, nil, err
	}
	scfg, err := systemConfig(dir, strategy)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	r := &runner{cfg: cfg, strategy: strategy, password: "bench-" + randomHex(12), initial: "bench-initial-" + randomHex(12), owed: map[string]bool{}}
	scfg.AdminPassword = r.password
	scfg.AccessTokenLifetime = cfg.AccessTokenLifetime
	scfg.MaxAccessTokenBytes = cfg.MaxAccessTokenBytes
	if cfg.OpenFGATimeout > 0 {
		scfg.OpenFGATimeout = cfg.OpenFGATimeout
	}
	if err := scfg.Validate(); err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	sys, err := system.Start(ctx, scfg, cfg.Logger.With("strategy", strategy))
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("start the system: %w", err)
	}
	r.sys = sys
	r.hc = loopbackClient(cfg.Concurrency)
	stop := func() {
		r.hc.CloseIdleConnections()
		if err := sys.Stop(); err != nil {
			cfg.Logger.Warn("stop the system", "strategy", strategy, "err", err)
		}
		os.RemoveAll(dir)
	}
	r.ep = loopbackEndpoints(apiclient.EndpointsFrom(sys.URLs))
	if err := r.waitReady(ctx); err != nil {
		stop()
		return nil, nil, err
	}
	if r.provider, err = apiclient.Discover(ctx, sys.URLs[system.ServiceIAM], r.hc); err != nil {
		stop()
		return nil, nil, err
	}
	if r.admin, _, err = r.login(ctx, "admin", r.password); err != nil {
		stop()
		return nil, nil, err
	}
	return r, stop, nil
}

// clientTimeout bounds one request of the benchmark. A measured request
// takes milliseconds; the bound is for the loads, where one bulk import of
// thousands of systems on a shared 2-core machine under other work took
// longer than 30 s, and a timeout there fails the whole strategy.
const clientTimeout = 2 * time.Minute

// loopbackClient is the benchmark's HTTP client: enough idle connections
// per service for every worker (the default keeps two, so eight workers
// would open and close connections all the time and measure that), and a
// dialer that refuses anything but a loopback address, so the benchmark
// can never send its traffic elsewhere.
func loopbackClient(concurrency int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.MaxIdleConns = 4 * (concurrency + 8)
	t.MaxIdleConnsPerHost = concurrency + 8
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if host == "localhost" {
			host = "127.0.0.1"
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("bench: refusing to connect to %s: the benchmark talks only to 127.0.0.1", addr)
		}
		return dialer.DialContext(ctx, network, net.JoinHostPort(host, port))
	}
	return &http.Client{Timeout: clientTimeout, Transport: t}
}

// loopbackEndpoints spells every URL with 127.0.0.1, where the services
// listen, rather than localhost, which may resolve to ::1 first.
func loopbackEndpoints(e apiclient.Endpoints) apiclient.Endpoints {
	fix := func(u string) string { return strings.Replace(u, "//localhost:", "//127.0.0.1:", 1) }
	return apiclient.Endpoints{IAM: fix(e.IAM), Customer: fix(e.Customer), Dealer: fix(e.Dealer), Monitoring: fix(e.Monitoring), SecuritySystem: fix(e.SecuritySystem)}
}

// waitReady waits until every running service answers /readyz with 200.
func (r *runner) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, name := range system.ServiceNames() {
		u := strings.Replace(r.sys.URLs[name], "//localhost:", "//127.0.0.1:", 1)
		if u == "" {
			continue
		}
		var last string
		err := poll(ctx, 10*time.Millisecond, func() bool {
			resp, err := r.hc.Get(u + "/readyz")
			if err != nil {
				last = err.Error()
				return false
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			last = resp.Status
			return resp.StatusCode == http.StatusOK
		})
		if err != nil {
			return fmt.Errorf("%s not ready at %s within a minute: last %s", name, u, last)
		}
	}
	return nil
}

// login logs username in through the IAM's OIDC flow and returns a client
// acting as the user and its session. The first login of an account
// created with initialFor replaces the initial password with password on
// the IAM's change page, as the person would.
func (r *runner) login(ctx context.Context, username, password string) (*apiclient.Client, *apiclient.Session, error) {
	r.owedMu.Lock()
	first := r.owed[username]
	delete(r.owed, username)
	r.owedMu.Unlock()
	var se *apiclient.Session
	var err error
	if first {
		se, err = r.provider.LoginChangingPassword(ctx, username, r.initial, password)
	} else {
		se, err = r.provider.Login(ctx, username, password)
	}
	if err != nil {
		return nil, nil, err
	}
	return apiclient.New(r.ep, se, r.hc), se, nil
}

// poll calls cond every interval until it returns true or ctx ends
// (apiclient.PollEvery): the interval is fixed because the revocation
// trials measure with it.
func poll(ctx context.Context, interval time.Duration, cond func() bool) error {
	return apiclient.PollEvery(ctx, interval, cond)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// actor is one (user, system) pair of the disarm load with the next action
// to send. Workers sharing a system take turns through mu, so every
// request really changes the state.
type actor struct {
	mu     sync.Mutex
	client *apiclient.Client
	system string
	arm    bool
}

// fixtures are the logged-in users and ids the measurements use.
type fixtures struct {
	actors   []*actor
	lister   *apiclient.Client
	listWant int
	// The revocation trials' employee, its client and session, and where
	// it holds the role.
	revokeClient                                   *apiclient.Client
	revokeSession                                  *apiclient.Session
	revokeCustomer, revokeLocation, revokeEmployee string
	revokeSystem                                   string
	revokeAdmin                                    *apiclient.Client
}

// prepare logs in the users the measurements need, creates the revocation
// trials' employee, and waits until the Security System Service decides
// as the rule says for every pair of the load and for the list: the
// benchmark's own convergence barrier.
func (r *runner) prepare(ctx context.Context, l *policytest.Loaded, pl plan) (*fixtures, error) {
	fx := &fixtures{}
	clients := map[string]*apiclient.Client{}
	for _, p := range pl.pairs {
		c := clients[p.user]
		if c == nil {
			var err error
			if c, _, err = r.login(ctx, l.Users[p.user].Username, l.Users[p.user].Password); err != nil {
				return nil, err
			}
			clients[p.user] = c
		}
		fx.actors = append(fx.actors, &actor{client: c, system: l.Real(p.system)})
	}
	if c := clients[pl.listUser]; c != nil {
		fx.lister = c
	} else {
		var err error
		if fx.lister, _, err = r.login(ctx, l.Users[pl.listUser].Username, l.Users[pl.listUser].Password); err != nil {
			return nil, err
		}
	}
	fx.listWant = pl.listVisible
	if r.strategy == StrategyNone {
		fx.listWant = len(l.World.SecuritySystems) // the baseline shows everything to everyone
	}

	// The revocation trials' own employee: no organization role and no
	// team, so the location role the trials grant and revoke is the only
	// thing that lets it disarm.
	fx.revokeAdmin = l.OrgAdmins[pl.revokeCustomer]
	fx.revokeCustomer, fx.revokeLocation, fx.revokeSystem = l.Real(pl.revokeCustomer), l.Real(pl.revokeLocation), l.Real(pl.revokeSystem)
	email := emailOf("revoked", 0)
	emp, err := fx.revokeAdmin.CreateEmployee(ctx, policy.OrgCustomer, fx.revokeCustomer, apiclient.NewEmployee{Email: email, FirstName: "Revoked", LastName: "Employee", Password: r.initialFor(email)})
	if err != nil {
		return nil, fmt.Errorf("create the revocation employee: %w", err)
	}
	fx.revokeEmployee = emp.ID
	if fx.revokeClient, fx.revokeSession, err = r.login(ctx, email, r.password); err != nil {
		return nil, err
	}

	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, a := range fx.actors {
		var last string
		err := poll(cctx, 20*time.Millisecond, func() bool {
			ss, err := a.client.GetSecuritySystem(cctx, a.system)
			if err != nil {
				last = err.Error()
				return false
			}
			a.arm = ss.State != "ARMED"
			last = fmt.Sprintf("actions %v", ss.Actions)
			return slices.Contains(ss.Actions, apiclient.ActionArm) && slices.Contains(ss.Actions, apiclient.ActionDisarm)
		})
		if err != nil {
			return nil, fmt.Errorf("converge: a load user is not allowed to arm and disarm its system within a minute: last %s", last)
		}
	}
	var last string
	if err := poll(cctx, 20*time.Millisecond, func() bool {
		list, err := fx.lister.ListSecuritySystems(cctx)
		last = fmt.Sprintf("%d systems (%v)", len(list), err)
		return err == nil && len(list) == fx.listWant
	}); err != nil {
		return nil, fmt.Errorf("converge: the list user does not see the %d systems the rule allows within a minute: last %s", fx.listWant, last)
	}
	return fx, nil
}

// disarmLoad sends n arm/disarm requests. Each worker keeps to its own
// actor (worker w uses actor w mod len), so with as many systems as
// workers there is no contention in the benchmark itself.
func (r *runner) disarmLoad(ctx context.Context, fx *fixtures, n int) Throughput {
	if n == 0 {
		return Throughput{}
	}
	return Drive(ctx, n, r.cfg.Concurrency, func(ctx context.Context, w, _ int) error {
		a := fx.actors[w%len(fx.actors)]
		a.mu.Lock()
		defer a.mu.Unlock()
		var (
			ss   apiclient.SecuritySystem
			err  error
			want = "DISARMED"
		)
		if a.arm {
			ss, err = a.client.Arm(ctx, a.system)
			want = "ARMED"
		} else {
			ss, err = a.client.Disarm(ctx, a.system)
		}
		if err != nil {
			return err
		}
		if ss.State != want {
			return fmt.Errorf("state %s after the request, want %s", ss.State, want)
		}
		a.arm = !a.arm
		return nil
	})
}
