// Package securitysystem is the Security System Service (API.md): it keeps
// the security systems, arms and disarms them, and authorizes every request
// with one pluggable strategy (AUTHZ.md, "The four strategies") chosen by
// Config.Strategy. Whatever the strategy, the decision is policy.IsAllowed;
// a decision that cannot be made is a 503 with nothing changed, and every
// arm and disarm decision is audited in the service's database.
//
// Layout: app (domain and use cases), store (SQL repository and audit),
// httpapi (handlers), authz and one package per strategy below it; this
// package wires them in one place.
package securitysystem

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/config"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/fga"
	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/platform/principal"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/securitysystem/app"
	"github.com/realguardio/realguardio/internal/securitysystem/authz"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/delegate"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/fetch"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/none"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/observed"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/provide"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/replicate"
	"github.com/realguardio/realguardio/internal/securitysystem/httpapi"
	"github.com/realguardio/realguardio/internal/securitysystem/store"
)

// Name is the service's name in logs, metrics and events.
const Name = "securitysystem"

// DefaultAudience is the audience access tokens must carry for this
// service.
const DefaultAudience = principal.AudienceSecuritySystem

// ReplicaConsumerName is the durable consumer name of the replica.
const ReplicaConsumerName = "securitysystem-replica"

// ResourceFactsConsumerName is the durable consumer name of the provide
// strategy's resource facts (the facts kept on each record).
const ResourceFactsConsumerName = "securitysystem-resource-facts"

// Config configures the Security System Service.
type Config struct {
	// Issuer is the IAM Service's issuer URL: it validates access tokens
	// and, for the fetch strategy, issues the service's own token.
	Issuer string
	// Audience is the audience of this service's access tokens
	// (DefaultAudience when empty).
	Audience string
	// Strategy is "fetch", "replicate" or "provide" ("delegate" once it
	// exists); "none" only together with AllowNoAuthz. "provide" needs the
	// IAM to put the authorization claims in user tokens
	// (internal/iam/authzclaims) and JetStream for the resource facts.
	Strategy string
	// AllowNoAuthz permits Strategy "none", which authorizes nothing and
	// allows everything. It exists for benchmark baselines only; nothing in
	// `up` or `serve` sets it.
	AllowNoAuthz bool

	// CustomerURL, DealerURL and MonitoringURL are the base URLs of the
	// organization services' facts endpoints (fetch strategy).
	CustomerURL   string
	DealerURL     string
	MonitoringURL string
	// ClientID and ClientSecret are this service's client credentials at
	// the IAM (fetch strategy: a token with scope authz:read).
	ClientID     string
	ClientSecret string
	// FetchTimeout bounds every remote call of the fetch strategy (2s when
	// zero).
	FetchTimeout time.Duration
	// BreakerFailures consecutive failures open a dependency's circuit
	// breaker (5 when zero) for BreakerOpen (5s when zero).
	BreakerFailures int
	BreakerOpen     time.Duration

	// EventPrefix replaces events.DefaultPrefix in subjects and stream
	// names; tests use a unique one.
	EventPrefix string
}

// Validate checks the configuration and names every wrong setting.
func (c Config) Validate() error {
	var p config.Problems
	switch c.Strategy {
	case authz.StrategyFetch:
		p.CheckHTTPURL("customer-url", c.CustomerURL)
		p.CheckHTTPURL("dealer-url", c.DealerURL)
		p.CheckHTTPURL("monitoring-url", c.MonitoringURL)
		if c.ClientID == "" {
			p.Addf("client-secrets", "the fetch strategy needs client credentials of the %s service", Name)
		}
	case authz.StrategyReplicate, authz.StrategyProvide, authz.StrategyDelegate:
	case authz.StrategyNone:
		if !c.AllowNoAuthz {
			p.Addf("authz", `"none" disables authorization and is accepted only for benchmarks`)
		}
	default:
		p.Addf("authz", "the Security System Service supports provide, fetch, replicate and delegate, got %q", c.Strategy)
	}
	if c.Issuer != "" {
		p.CheckHTTPURL("iam-url", c.Issuer)
	}
	if c.FetchTimeout < 0 {
		p.Addf("fetch-timeout", "must not be negative")
	}
	return p.Err()
}

// Deps are what the wiring opens for the service.
type Deps struct {
	// Logger receives the service's logs (slog.Default() when nil).
	Logger *slog.Logger
	// DB is the service's own database.
	DB *sqldb.DB
	// JS is the JetStream handle. Without it (some tests) the outbox
	// still records events but nothing relays them, and the replica has no
	// consumer.
	JS jetstream.JetStream
	// Validator validates access tokens. Tests may set Authenticate
	// instead.
	Validator *auth.Validator
	// Authenticate, when set, replaces Validator.Middleware: it must put
	// the caller in the request context (auth.WithCaller). Tests and
	// benchmarks use it to measure authorization without JWT validation.
	Authenticate func(http.Handler) http.Handler
	// HTTPClient carries the fetch strategy's calls (a default client when
	// nil).
	HTTPClient *http.Client
	// FGA is the OpenFGA client the delegate strategy asks; required with
	// it, unused otherwise.
	FGA *fga.Client
	// Registry receives the service's metrics (a new one when nil).
	Registry *prometheus.Registry
	// Clock is the time of decisions (time.Now when nil).
	Clock func() time.Time
}

// Service is the running Security System Service.
type Service struct {
	cfg        Config
	deps       Deps
	logger     *slog.Logger
	authorizer authz.Authorizer
	outbox     *events.Outbox
	relay      *events.Relay
	consumer   *events.Consumer
	handler    http.Handler
}

// Migrations returns every migration set the service's database needs: the
// systems and audit, the outbox and consumer bookkeeping, the replica
// tables and the provide strategy's location and dealer facts (present
// whatever the strategy, so switching strategy or rebuilding needs no
// schema change).
func Migrations() []sqldb.Migrations {
	return []sqldb.Migrations{store.Migrations(), events.Migrations(), replicate.Migrations(), provide.Migrations()}
}

// New migrates the database and builds the service with the configured
// strategy.
func New(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	if cfg.Audience == "" {
		cfg.Audience = DefaultAudience
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.DB == nil {
		return nil, errors.New("securitysystem: a database is required")
	}
	if deps.Validator == nil && deps.Authenticate == nil {
		return nil, errors.New("securitysystem: a token validator is required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Registry == nil {
		deps.Registry = httpx.NewRegistry()
	}
	if deps.Clock == nil {
		deps.Clock = time.Now
	}
	if deps.HTTPClient == nil {
		deps.HTTPClient = &http.Client{}
	}
	if err := deps.DB.Migrate(ctx, Migrations()...); err != nil {
		return nil, fmt.Errorf("securitysystem: %w", err)
	}
	s := &Service{cfg: cfg, deps: deps, logger: deps.Logger.With("service", Name)}

	// The one switch between strategies.
	var storeOpts []store.Option
	switch cfg.Strategy {
	case authz.StrategyFetch:
		a, err := fetch.New(fetch.Config{
			CustomerURL: cfg.CustomerURL, DealerURL: cfg.DealerURL, MonitoringURL: cfg.MonitoringURL,
			Issuer: cfg.Issuer, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
			Timeout: cfg.FetchTimeout, BreakerFailures: uint32(max(cfg.BreakerFailures, 0)), BreakerOpen: cfg.BreakerOpen,
			Logger: s.logger,
		}, deps.HTTPClient, deps.Registry)
		if err != nil {
			return nil, fmt.Errorf("securitysystem: %w", err)
		}
		s.authorizer = a
	case authz.StrategyReplicate:
		s.authorizer = replicate.New(deps.DB)
		// A dealer's or provider's list reads the organization's locations
		// from the replica inside the page query.
		storeOpts = append(storeOpts, store.WithOrganizationLocations(store.OrganizationLocations(replicate.ScopeLocations)))
		if deps.JS != nil {
			c, err := newReplicaConsumer(cfg, deps)
			if err != nil {
				return nil, err
			}
			s.consumer = c
		}
	case authz.StrategyProvide:
		s.authorizer = provide.New(deps.DB, s.logger)
		storeOpts = append(storeOpts, store.WithCreateHook(provide.FillFacts))
		if deps.JS != nil {
			c, err := newResourceFactsConsumer(cfg, deps)
			if err != nil {
				return nil, err
			}
			s.consumer = c
		} else {
			// Without events the records' facts and the locations known
			// for creation never change: fine for tests, wrong in service.
			s.logger.Warn("provide strategy without JetStream: resource facts will not follow the organization services' changes")
		}
	case authz.StrategyDelegate:
		if deps.FGA == nil {
			return nil, errors.New("securitysystem: the delegate strategy needs an OpenFGA client")
		}
		// An import reads its locations' facts from the tables the
		// resource facts consumer keeps, not one OpenFGA Read each.
		s.authorizer = delegate.New(deps.FGA, delegate.WithKnownLocations(provide.KnownLocations(deps.DB)))
		// A list matches the caller's dealer and provider grants against
		// the records' own dealer and provider, which the resource facts
		// consumer keeps current (delegate.Authorizer.Scope).
		storeOpts = append(storeOpts, store.WithCreateHook(provide.FillKnownFacts))
		if deps.JS != nil {
			c, err := newResourceFactsConsumer(cfg, deps)
			if err != nil {
				return nil, err
			}
			s.consumer = c
		}
	case authz.StrategyNone:
		s.logger.Warn("authorization is DISABLED (strategy none): every caller may do everything; for benchmarks only")
		s.authorizer = none.New()
	}

	s.outbox = events.NewOutbox(events.ProducerSecuritySystem)
	if deps.JS != nil {
		s.relay = events.NewRelay(deps.DB, deps.JS, s.outbox, s.logger,
			events.WithSubjectPrefix(cfg.EventPrefix), events.WithRelayMetrics(deps.Registry))
	}
	if s.consumer != nil && cfg.Strategy == authz.StrategyReplicate {
		if err := deps.Registry.Register(newLagCollector(s.consumer, cfg.EventPrefix, deps.Clock)); err != nil {
			return nil, fmt.Errorf("securitysystem: register metrics: %w", err)
		}
	}

	repo := store.New(deps.DB, s.outbox, storeOpts...)
	// Every decision gets a span and its metrics; s.authorizer stays the
	// bare strategy, which readiness checks inspect.
	decisions, err := observed.New(s.authorizer, deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("securitysystem: register metrics: %w", err)
	}
	uc := app.NewService(repo, decisions, deps.Clock, s.logger)
	facts, err := accessFacts(cfg, deps, s)
	if err != nil {
		return nil, err
	}
	reviews := app.Reviews{
		Access: app.NewAccessReviewer(repo, facts, deps.Clock, s.logger),
		Audit:  app.NewAuditReader(repo, facts, s.logger),
	}
	authenticate := deps.Authenticate
	if authenticate == nil {
		authenticate = deps.Validator.Middleware
	}
	ops := &httpx.Ops{Service: Name, Registry: deps.Registry, Logger: s.logger, Ready: s.readyChecks()}
	s.handler = ops.Handler(httpapi.Handler(uc, reviews, authenticate))
	return s, nil
}

// The replica and the resource facts decide who may arm and disarm, so
// their consumers block instead of parking: a parked revocation would keep
// the access it revokes, and the events after it would be applied to a
// state that never existed. A blocked consumer makes /readyz fail.
const authzConsumerOnFailure = events.Block

// authzConsumerMaxDeliver is the attempt from which a failing event makes
// the consumer report itself blocked: one retry (after a second) absorbs a
// transient error such as a busy database without flapping readiness; a
// second failure means the events behind it (possibly revocations) wait,
// and decisions must stop being made from this instance.
const authzConsumerMaxDeliver = 2

func newReplicaConsumer(cfg Config, deps Deps) (*events.Consumer, error) {
	proj := replicate.NewProjection()
	c, err := events.NewConsumer(events.ConsumerConfig{
		Name:    ReplicaConsumerName,
		Streams: replicaStreams(cfg.EventPrefix),
		DB:      deps.DB,
		JS:      deps.JS,
		Handler: proj.Handle,
		// A batch's events in a few multi-row statements: a rebuild
		// replays a million events in a minute or two.
		BatchHandler: proj.HandleBatch,
		Logger:       deps.Logger,
		// A rebuild empties the replica in the very transaction that
		// forgets the applied events, so the two never disagree.
		ResetState: replicate.TruncateTx,
		Registry:   deps.Registry,
		OnFailure:  authzConsumerOnFailure,
		MaxDeliver: authzConsumerMaxDeliver,
	})
	if err != nil {
		return nil, fmt.Errorf("securitysystem: replica consumer: %w", err)
	}
	return c, nil
}

// newResourceFactsConsumer feeds the records' resource facts: it must run
// whenever the strategy is provide (which decides on them) or delegate
// (whose lists select by them), or the records' dealer and provider go
// stale without bound.
func newResourceFactsConsumer(cfg Config, deps Deps) (*events.Consumer, error) {
	c, err := events.NewConsumer(events.ConsumerConfig{
		Name: ResourceFactsConsumerName,
		// Locations belong to the customer stream, a dealer's provider to
		// the dealer stream; nothing of the monitoring stream matters.
		Streams: []string{
			events.StreamName(cfg.EventPrefix, events.ProducerCustomer),
			events.StreamName(cfg.EventPrefix, events.ProducerDealer),
		},
		DB:           deps.DB,
		JS:           deps.JS,
		Handler:      provide.Handle,
		BatchHandler: provide.HandleBatch,
		Logger:       deps.Logger,
		Registry:     deps.Registry,
		OnFailure:    authzConsumerOnFailure,
		MaxDeliver:   authzConsumerMaxDeliver,
	})
	if err != nil {
		return nil, fmt.Errorf("securitysystem: resource facts consumer: %w", err)
	}
	return c, nil
}

func replicaStreams(prefix string) []string {
	return []string{
		events.StreamName(prefix, events.ProducerCustomer),
		events.StreamName(prefix, events.ProducerDealer),
		events.StreamName(prefix, events.ProducerMonitoring),
	}
}

// Strategy returns the name of the authorization strategy in use.
func (s *Service) Strategy() string { return s.authorizer.Name() }

// Handler returns the whole HTTP surface, with /healthz, /readyz and
// /metrics.
func (s *Service) Handler() http.Handler { return s.handler }

// Run relays the outbox and, for the replicate strategy, feeds the replica
// (for provide, the records' resource facts) from the organization
// services' events, until ctx ends; it returns nil on
// cancellation. While it runs it holds a service lease in its database, so
// that a rebuild refuses to start (it would delete the running consumers'
// durables); it refuses to start itself, with a *BusyError, while a
// rebuild holds one.
func (s *Service) Run(ctx context.Context) error {
	l, err := acquireLease(ctx, s.deps.DB, leaseService, s.logger)
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return l.keep(ctx) })
	if s.relay != nil {
		g.Go(func() error { return s.relay.Run(ctx) })
	}
	if s.consumer != nil {
		g.Go(func() error { return s.consumer.Run(ctx) })
	}
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// Close releases what New built. The database and the NATS connection
// belong to the wiring, which closes them itself.
func (s *Service) Close() error { return nil }

// readyChecks are the /readyz checks. The database must answer and tokens
// must be verifiable, and the outbox relay must publish (events.Relay.Err).
// For replicate (and provide, whose records' facts are
// fed the same way), the consumer must have reached every
// source stream: a replica that cannot receive events silently goes stale,
// so that is "not ready". A large lag is still ready (decisions are merely
// as stale as the lag, and refusing traffic would not make them fresher);
// the lag is in /metrics. A consumer blocked on an event that keeps failing
// is not ready: the events behind it, revocations among them, are not
// applied, so its decisions may grant what was withdrawn. For fetch, the organization services are not
// checked: their outage makes decisions 503 individually, and a readiness
// that cascaded through dependencies would take healthy paths (audit,
// listing for admins) out of rotation too.
func (s *Service) readyChecks() []httpx.ReadyCheck {
	checks := []httpx.ReadyCheck{{Name: "database", Check: s.deps.DB.Ping}}
	if s.deps.Validator != nil {
		checks = append(checks, httpx.ReadyCheck{Name: "token-validation", Check: s.deps.Validator.Ready})
	}
	if s.consumer != nil {
		name := "replica-consumer"
		if s.cfg.Strategy == authz.StrategyProvide || s.cfg.Strategy == authz.StrategyDelegate {
			name = "resource-facts-consumer"
		}
		checks = append(checks, httpx.ReadyCheck{Name: name, Check: s.consumerReady})
	}
	if s.relay != nil {
		// A relay that cannot publish leaves arming and disarming
		// committed but unknown to every consumer.
		checks = append(checks, httpx.ReadyCheck{Name: "outbox-relay", Check: func(context.Context) error { return s.relay.Err() }})
	}
	if d, ok := s.authorizer.(*delegate.Authorizer); ok {
		// Every decision of the delegate strategy is OpenFGA's: without it
		// the service can only answer 503.
		checks = append(checks, httpx.ReadyCheck{Name: "openfga", Check: d.Ready})
	}
	return checks
}

func (s *Service) consumerReady(context.Context) error {
	if conn := s.deps.JS.Conn(); conn != nil && !conn.IsConnected() {
		return errors.New("not connected to NATS")
	}
	var missing []string
	for _, p := range s.consumer.Progress() {
		if !p.Known {
			missing = append(missing, p.Stream)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("not yet connected to stream(s) %s", strings.Join(missing, ", "))
	}
	return s.consumer.Err()
}

// lagCollector exports, per source stream, how far the replica is behind:
// zero while the consumer has nothing pending on the stream, otherwise the
// age of the newest event applied (the replica's view is at most that old).
// An idle, caught-up replica therefore reports 0, not the time since the
// last change. It reads the consumer's in-memory progress (loaded from
// event_consumer_streams when it starts, then kept by every commit), so a
// scrape costs no query; the stream label is the replica's name of the
// stream (replicate.Streams), without the subject prefix.
type lagCollector struct {
	consumer *events.Consumer
	names    map[string]string // the consumer's stream name → the label
	now      func() time.Time
	desc     *prometheus.Desc
}

func newLagCollector(c *events.Consumer, prefix string, now func() time.Time) *lagCollector {
	return &lagCollector{consumer: c, names: replicaStreamLabels(prefix), now: now, desc: prometheus.NewDesc(
		"realguardio_securitysystem_replica_lag_seconds",
		"How far the authorization replica is behind, per source stream: 0 while nothing is pending, else the age of the newest event applied (absent before the first event).",
		[]string{"stream"}, nil)}
}

// replicaStreamLabels maps the replica consumer's stream names (with the
// subject prefix) to replicate.Streams.
func replicaStreamLabels(prefix string) map[string]string {
	names := map[string]string{}
	for i, s := range replicaStreams(prefix) {
		names[s] = replicate.Streams[i]
	}
	return names
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.consumer.Progress() {
		if p.LastEventTime.IsZero() {
			continue
		}
		lag := c.now().Sub(p.LastEventTime).Seconds()
		if p.Known && p.Pending == 0 {
			lag = 0
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, lag, c.names[p.Stream])
	}
}

// RebuildReport says what a rebuild replayed.
type RebuildReport struct {
	// Applied is the number of events applied per source stream.
	Applied map[string]int64
	// Took is the duration of the rebuild.
	Took time.Duration
}

// RebuildProgress is how far a rebuild is, as reported while it runs.
type RebuildProgress = events.RebuildProgress

// RebuildOption configures a rebuild.
type RebuildOption = events.RebuildOption

// WithRebuildProgress calls fn about every interval with the rebuild's
// progress, and once more when the replay has caught up.
func WithRebuildProgress(every time.Duration, fn func(RebuildProgress)) RebuildOption {
	return events.WithRebuildProgress(every, fn)
}

// HorizonError says a rebuild was refused, before anything changed,
// because a source stream lost its oldest events; the replica would then
// deny what its owners still grant.
type HorizonError = events.HorizonError

// restoreAdvice is what an operator does past the streams' retention.
const restoreAdvice = "the Security System Service's database from a backup younger than the streams' age limit and start the service"

// RebuildReplica rebuilds the replicate strategy's replica from scratch:
// it empties the replica tables and forgets the consumer's applied events
// in one transaction, deletes the durable consumers, and replays every
// source stream from its start until the replica has caught up (or ctx
// ends). It first takes the rebuild lease of the service's database and
// returns a *BusyError, changing nothing, while a running instance of the
// service holds its lease: the running consumer would lose its durables
// and compete with the replay. Holding the lease, it also keeps the service
// from starting until it is done. Events are replayed through the same
// projection as normal delivery, so the rebuilt replica equals one fed
// live.
func RebuildReplica(ctx context.Context, cfg Config, deps Deps, opts ...RebuildOption) (RebuildReport, error) {
	start := time.Now()
	if deps.DB == nil || deps.JS == nil {
		return RebuildReport{}, errors.New("rebuild replica: a database and a JetStream connection are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	o := events.RebuildOptionsOf(opts)
	if err := deps.DB.Migrate(ctx, Migrations()...); err != nil {
		return RebuildReport{}, fmt.Errorf("rebuild replica: %w", err)
	}
	l, err := acquireLease(ctx, deps.DB, leaseRebuild, deps.Logger)
	if err != nil {
		return RebuildReport{}, err
	}
	leaseCtx, stopLease := context.WithCancel(ctx)
	leaseDone := make(chan error, 1)
	go func() { leaseDone <- l.keep(leaseCtx) }()
	defer func() { stopLease(); <-leaseDone }()

	// Rebuild metrics are of no interest: a private registry keeps the
	// consumer from colliding with a running service's.
	deps.Registry = prometheus.NewRegistry()
	c, err := newReplicaConsumer(cfg, deps)
	if err != nil {
		return RebuildReport{}, err
	}
	streams := replicaStreams(cfg.EventPrefix)
	if err := events.CheckHorizon(ctx, deps.JS, "rebuild replica", streams, restoreAdvice); err != nil {
		return RebuildReport{}, err
	}
	if err := c.Reset(ctx); err != nil {
		return RebuildReport{}, fmt.Errorf("rebuild replica: reset: %w", err)
	}
	replayStart := time.Now()
	report := func(final bool) {
		if o.Progress == nil {
			return
		}
		p := RebuildProgress{Elapsed: time.Since(replayStart), Final: final}
		pending := map[string]uint64{}
		for _, sp := range c.Progress() {
			if sp.Known {
				pending[sp.Stream] = sp.Pending
			}
		}
		for _, name := range streams {
			st, err := deps.JS.Stream(ctx, name)
			if err != nil {
				continue // reported again at the next tick
			}
			msgs := int64(st.CachedInfo().State.Msgs)
			p.Total += msgs
			if n, ok := pending[name]; ok {
				p.Done += max(msgs-int64(n), 0)
			}
		}
		o.Progress(p)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	lastReport := time.Now()
	for caughtUp := false; !caughtUp; {
		select {
		case <-ctx.Done():
			stop()
			<-done
			// The replica consumer blocks on an event that keeps failing
			// rather than skip it; say so, or the rebuild just looks slow.
			return RebuildReport{}, fmt.Errorf("rebuild replica: %w", errors.Join(ctx.Err(), c.Err()))
		case err := <-done:
			stop()
			return RebuildReport{}, fmt.Errorf("rebuild replica: consumer stopped: %v", err)
		case err := <-leaseDone:
			// Lost to a service that took over an expired lease: stop
			// rather than replay beside its consumer.
			if err == nil {
				err = ctx.Err() // the lease stops only with ctx
			}
			leaseDone <- err
			stop()
			<-done
			return RebuildReport{}, fmt.Errorf("rebuild replica: lease lost: %w", err)
		case <-tick.C:
			caughtUp = true
			for _, p := range c.Progress() {
				if !p.Known || p.Pending > 0 {
					caughtUp = false
				}
			}
			if !caughtUp && o.Every > 0 && time.Since(lastReport) >= o.Every {
				lastReport = time.Now()
				report(false)
			}
		}
	}
	stop()
	if err := <-done; err != nil {
		return RebuildReport{}, fmt.Errorf("rebuild replica: %w", err)
	}
	report(true)
	counts, err := appliedCounts(ctx, deps.DB, cfg.EventPrefix)
	if err != nil {
		return RebuildReport{}, err
	}
	return RebuildReport{Applied: counts, Took: time.Since(start)}, nil
}

// appliedCounts returns the events the replica consumer applied per source
// stream (named as replicate.Streams) since its reset, from the consumer's
// bookkeeping; streams without events are left out.
func appliedCounts(ctx context.Context, db *sqldb.DB, prefix string) (map[string]int64, error) {
	rows, err := db.QueryContext(ctx, `SELECT stream, applied_events FROM event_consumer_streams WHERE consumer = ?`, ReplicaConsumerName)
	if err != nil {
		return nil, fmt.Errorf("rebuild replica: applied counts: %w", err)
	}
	defer rows.Close()
	labels := replicaStreamLabels(prefix)
	out := map[string]int64{}
	for rows.Next() {
		var stream string
		var n int64
		if err := rows.Scan(&stream, &n); err != nil {
			return nil, fmt.Errorf("rebuild replica: applied counts: %w", err)
		}
		if name, ok := labels[stream]; ok && n > 0 {
			out[name] = n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rebuild replica: applied counts: %w", err)
	}
	return out, nil
}
