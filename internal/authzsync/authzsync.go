// Package authzsync is the authorization sync of the delegate strategy
// (AUTHZ.md, docs/delegate.md): it consumes the events of the organization
// services and of the Security System Service and keeps OpenFGA's tuples
// equal to the facts they describe, writing grants and deleting
// revocations, through the mapping of internal/policy/openfga. It is the
// counterpart of the article's Oso integration service.
//
// Each event is applied once in effect: the events consumer records it in
// the sync's own database in the same transaction as the sync's memory of
// what it wrote (needed to compute deletes), and the OpenFGA calls are
// idempotent, so a crash anywhere, a redelivery or a restart never applies
// anything twice in effect. While OpenFGA is unreachable the sync pauses
// instead of failing events, and resumes where it stopped.
package authzsync

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"github.com/realguardio/realguardio/internal/platform/metrics"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	openfgav1 "github.com/openfga/api/proto/openfga/v1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/config"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/fga"
	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// Name is the component's name in logs, metrics and the data directory.
const Name = "authzsync"

// DefaultConsumerName is the durable consumer name on every source stream.
const DefaultConsumerName = "authzsync-openfga"

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations returns every migration set the sync's database needs: the
// consumer bookkeeping and the sync's own tables.
func Migrations() []sqldb.Migrations {
	return []sqldb.Migrations{events.Migrations(), {Set: "authzsync", FS: migrationFS, Dir: "migrations"}}
}

// Config configures the sync.
type Config struct {
	// ConsumerName is the durable consumer name (DefaultConsumerName when
	// empty).
	ConsumerName string
	// EventPrefix replaces events.DefaultPrefix in stream names; tests use a
	// unique one.
	EventPrefix string
	// MaxReadyLag, when positive, makes /readyz fail while the newest
	// applied event of a stream with pending events is older than this: the
	// sync is then running but not keeping up. Zero reports lag in /metrics
	// only.
	MaxReadyLag time.Duration
	// RetryInterval is how often a paused sync probes OpenFGA (1s when
	// zero).
	RetryInterval time.Duration
	// Holder names this instance in the stream leases, which a refused
	// rebuild reports: HolderName(Name) when empty, and
	// HolderName("rebuild-openfga") for a rebuild.
	Holder string
}

// HolderName is a lease holder name that tells an operator what holds a
// stream and where: what, the host and the process id, and a random
// suffix, so that two runs never share a name (a restarted container has
// the same host name and process id).
func HolderName(what string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown host"
	}
	return fmt.Sprintf("%s on %s (pid %d, run %s)", what, host, os.Getpid(), uuid.NewString()[:8])
}

// Validate checks the configuration and names every wrong setting.
func (c Config) Validate() error {
	var p config.Problems
	if c.MaxReadyLag < 0 {
		p.Addf("authzsync-max-ready-lag", "must not be negative")
	}
	if c.RetryInterval < 0 {
		p.Addf("authzsync-retry-interval", "must not be negative")
	}
	return p.Err()
}

// Deps are what the wiring opens for the sync.
type Deps struct {
	// Logger receives the sync's logs (slog.Default() when nil).
	Logger *slog.Logger
	// DB is the sync's own database.
	DB *sqldb.DB
	// JS is the JetStream handle.
	JS jetstream.JetStream
	// FGA is the client of the OpenFGA server the tuples go to.
	FGA *fga.Client
	// Registry receives the metrics (a new one when nil).
	Registry *prometheus.Registry
	// Clock is the time of lag figures (time.Now when nil).
	Clock func() time.Time
}

// Syncer is the running authorization sync.
type Syncer struct {
	cfg      Config
	deps     Deps
	log      *slog.Logger
	consumer *events.Consumer
	streams  []string
	handler  http.Handler

	// sink, during a rebuild, collects the tuples instead of OpenFGA
	// (nil for the live sync).
	sink *tupleSet

	mu     sync.Mutex
	pause  context.CancelFunc // stops the current consumer run
	paused bool
}

// New migrates the database and builds the sync; Run starts it.
func New(ctx context.Context, cfg Config, deps Deps) (*Syncer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.DB == nil || deps.JS == nil || deps.FGA == nil {
		return nil, errors.New("authzsync: a database, JetStream and an OpenFGA client are required")
	}
	if cfg.ConsumerName == "" {
		cfg.ConsumerName = DefaultConsumerName
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = time.Second
	}
	if cfg.Holder == "" {
		cfg.Holder = HolderName(Name)
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
	if err := deps.DB.Migrate(ctx, Migrations()...); err != nil {
		return nil, fmt.Errorf("authzsync: %w", err)
	}
	s := &Syncer{cfg: cfg, deps: deps, log: deps.Logger.With("service", Name)}
	for _, p := range events.Producers {
		s.streams = append(s.streams, events.StreamName(cfg.EventPrefix, p))
	}
	c, err := events.NewConsumer(events.ConsumerConfig{
		Name:    cfg.ConsumerName,
		Holder:  cfg.Holder,
		Streams: s.streams,
		DB:      deps.DB,
		JS:      deps.JS,
		Handler: s.handle,
		// A batch's events go to OpenFGA as their net change, in a few
		// Writes (batch.go); Handler applies them one at a time when the
		// batch falls back.
		BatchHandler: s.handleBatch,
		Logger:       deps.Logger,
		ResetState:   truncate,
		Registry:     deps.Registry,
		// The tuples decide who may disarm: an event that keeps failing
		// must hold the stream back (and make the sync not ready), never be
		// parked and skipped, which would keep a revoked grant alive. One
		// retry absorbs a passing error before readiness reports it.
		OnFailure:  events.Block,
		MaxDeliver: 2,
	})
	if err != nil {
		return nil, fmt.Errorf("authzsync: %w", err)
	}
	s.consumer = c
	if err := metrics.Replace(deps.Registry, &lagCollector{s: s, desc: prometheus.NewDesc(
		"realguardio_authzsync_lag_seconds",
		"How far OpenFGA is behind, per source stream: 0 while nothing is pending, else the age of the newest event applied (absent before the first event).",
		[]string{"stream"}, nil)}); err != nil {
		return nil, fmt.Errorf("authzsync: register metrics: %w", err)
	}
	mux := httpx.NewMux(Name)
	mux.HandleFunc("GET /authzsync/status", s.status)
	ops := &httpx.Ops{Service: Name, Registry: deps.Registry, Logger: s.log, Ready: s.readyChecks()}
	s.handler = ops.Handler(mux)
	return s, nil
}

// tables are emptied by a rebuild (Consumer.Reset), which then replays
// every stream from the start.
var tables = []string{
	"authzsync_employees", "authzsync_on_duty", "authzsync_team_members", "authzsync_location_roles",
	"authzsync_locations", "authzsync_dealers", "authzsync_team_roles",
}

func truncate(ctx context.Context, tx *sqldb.Tx) error {
	for _, t := range tables {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+t); err != nil {
			return fmt.Errorf("authzsync: empty %s: %w", t, err)
		}
	}
	return nil
}

// Consumer returns the events consumer, for operations such as Reset
// (replay every stream from the start after emptying the sync's tables).
func (s *Syncer) Consumer() *events.Consumer { return s.consumer }

// ListParked returns the events that kept failing and were set aside.
// OpenFGA outages never park events (the sync pauses instead); a parked
// event is one the sync cannot apply, such as a malformed payload.
func (s *Syncer) ListParked(ctx context.Context) ([]events.ParkedEvent, error) {
	return events.ListParked(ctx, s.deps.DB, s.cfg.ConsumerName)
}

// Replay applies a parked event again, with the same bookkeeping as a
// delivered one, and removes it from the parked events.
func (s *Syncer) Replay(ctx context.Context, eventID string) error {
	return events.Replay(ctx, s.deps.DB, s.cfg.ConsumerName, eventID, s.handle)
}

// Handler returns the HTTP surface: /healthz, /readyz, /metrics and
// GET /authzsync/status.
func (s *Syncer) Handler() http.Handler { return s.handler }

// Close releases what New built. The database, NATS and the OpenFGA client
// belong to the wiring.
func (s *Syncer) Close() error { return nil }

// Run applies events until ctx ends and returns nil then. It first waits
// for OpenFGA (bootstrapping the store and model), and whenever OpenFGA
// becomes unreachable while an event is applied it stops consuming (the
// event is handed back to JetStream untouched, not counted as a failure and
// never parked), waits until OpenFGA answers again, and resumes.
func (s *Syncer) Run(ctx context.Context) error {
	for {
		if err := s.waitForFGA(ctx); err != nil {
			return nil
		}
		runCtx, cancel := context.WithCancel(ctx)
		s.mu.Lock()
		s.pause, s.paused = cancel, false
		s.mu.Unlock()
		err := s.consumer.Run(runCtx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("authzsync: %w", err)
		}
		s.log.Warn("authzsync paused: OpenFGA is unavailable; resuming when it answers")
	}
}

// waitForFGA returns once the OpenFGA store and model are ready, or an
// error when ctx ends first.
func (s *Syncer) waitForFGA(ctx context.Context) error {
	logged := false
	for {
		err := s.deps.FGA.Ready(ctx)
		if err == nil {
			if logged {
				s.log.Info("OpenFGA is reachable again; the sync resumes")
			}
			return nil
		}
		if !logged {
			s.log.Warn("waiting for OpenFGA", "err", err)
			logged = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.cfg.RetryInterval):
		}
	}
}

// handle is the consumer's handler: it plans the event against the SQL
// state in tx and only then changes OpenFGA, so nothing but the commit can
// fail after OpenFGA changed (and a redelivery then repeats the same
// idempotent calls).
func (s *Syncer) handle(ctx context.Context, tx *sqldb.Tx, ev events.Event) error {
	p, err := planEvent(ctx, tx, ev)
	if err != nil {
		return fmt.Errorf("authzsync: %s %s: %w", ev.Type, ev.ID, err)
	}
	if s.sink != nil {
		// A rebuild applies the plan to its tuple set where the live sync
		// calls OpenFGA, with the same idempotence: a rolled-back attempt
		// is redelivered and applies the same plan again. Once the set is
		// being written the event is handed back, as in an outage, for the
		// live sync to apply after the rebuild.
		if !s.sink.apply(p) {
			s.pauseConsumer()
			return fmt.Errorf("authzsync: %s %s: the rebuild is writing its tuples; handed back", ev.Type, ev.ID)
		}
		return nil
	}
	if err := s.execute(ctx, p); err != nil {
		s.pauseIfUnavailable(err)
		return fmt.Errorf("authzsync: %s %s: %w", ev.Type, ev.ID, err)
	}
	return nil
}

// pauseIfUnavailable pauses the sync when err says OpenFGA cannot answer.
// It is called before the handler returns, so the consumer sees its
// context ended and hands the events back instead of counting a failure
// towards parking them.
func (s *Syncer) pauseIfUnavailable(err error) {
	if apperr.Is(err, apperr.Unavailable) {
		s.log.Warn("authzsync: OpenFGA did not answer; pausing the sync", "err", err)
		s.pauseConsumer()
	}
}

func (s *Syncer) pauseConsumer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pause != nil {
		s.pause()
		s.paused = true
	}
}

// execute applies a plan to OpenFGA: deletes and writes (idempotent), then
// the upserts, then each replacement as a delete followed by a write.
func (s *Syncer) execute(ctx context.Context, p *plan) error {
	if p.empty() {
		return nil
	}
	writes, deletes := dedupe(p.writes, p.deletes)
	if err := s.deps.FGA.Write(ctx, writes, deletes); err != nil {
		return err
	}
	for _, t := range p.upsert {
		err := s.deps.FGA.Write(ctx, []*openfgav1.TupleKey{t}, nil)
		if fga.IsConflict(err) {
			err = s.replace(ctx, t)
		}
		if err != nil {
			return err
		}
	}
	for _, t := range p.replace {
		if err := s.replace(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// replace deletes t's key, then writes t: two calls, since OpenFGA refuses
// one request that deletes and writes a key. In between the key is absent,
// which can only deny (an employee briefly not on duty), never allow.
func (s *Syncer) replace(ctx context.Context, t *openfgav1.TupleKey) error {
	del := []*openfgav1.TupleKeyWithoutCondition{{Object: t.GetObject(), Relation: t.GetRelation(), User: t.GetUser()}}
	if err := s.deps.FGA.Write(ctx, nil, del); err != nil {
		return err
	}
	return s.deps.FGA.Write(ctx, []*openfgav1.TupleKey{t}, nil)
}

// dedupe drops repeated keys: OpenFGA refuses a request naming a tuple
// twice.
func dedupe(writes []*openfgav1.TupleKey, deletes []*openfgav1.TupleKeyWithoutCondition) ([]*openfgav1.TupleKey, []*openfgav1.TupleKeyWithoutCondition) {
	seen := map[string]bool{}
	key := func(o, r, u string) string { return o + "\x00" + r + "\x00" + u }
	var w []*openfgav1.TupleKey
	for _, t := range writes {
		if k := key(t.GetObject(), t.GetRelation(), t.GetUser()); !seen[k] {
			seen[k] = true
			w = append(w, t)
		}
	}
	var d []*openfgav1.TupleKeyWithoutCondition
	for _, t := range deletes {
		if k := key(t.GetObject(), t.GetRelation(), t.GetUser()); !seen[k] {
			seen[k] = true
			d = append(d, t)
		}
	}
	return w, d
}

// StreamLag is the sync's progress on one source stream.
type StreamLag struct {
	Stream string `json:"stream"`
	// NewestEvent is when the newest applied event occurred (zero before
	// the first).
	NewestEvent time.Time `json:"newestEvent"`
	// Pending is the number of events still to apply, as JetStream last
	// reported it (-1 while unknown).
	Pending int64 `json:"pending"`
	// LagSeconds is the age of NewestEvent, or 0 when nothing is pending:
	// how stale OpenFGA's view of the stream may be, as for the replica.
	LagSeconds float64 `json:"lagSeconds"`
}

// Lag reports the progress of every source stream, from the events
// consumer's own bookkeeping (event_consumer_streams, loaded when the
// consumer takes a stream's lease, so it survives a restart).
func (s *Syncer) Lag() []StreamLag {
	now := s.deps.Clock()
	progress := map[string]events.StreamProgress{}
	for _, p := range s.consumer.Progress() {
		progress[p.Stream] = p
	}
	out := make([]StreamLag, 0, len(s.streams))
	for _, stream := range s.streams {
		p := progress[stream]
		l := StreamLag{Stream: stream, NewestEvent: p.LastEventTime, Pending: -1}
		if p.Known {
			l.Pending = int64(p.Pending)
		}
		if l.Pending != 0 && !l.NewestEvent.IsZero() {
			l.LagSeconds = now.Sub(l.NewestEvent).Seconds()
		}
		out = append(out, l)
	}
	return out
}

func (s *Syncer) status(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	paused := s.paused
	s.mu.Unlock()
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"paused": paused, "streams": s.Lag()})
}

// readyChecks are the /readyz checks: the database answers, OpenFGA
// answers with the store and model in place, the consumer reached every
// stream, and, with MaxReadyLag, no stream lags further behind.
func (s *Syncer) readyChecks() []httpx.ReadyCheck {
	return []httpx.ReadyCheck{
		{Name: "database", Check: s.deps.DB.Ping},
		{Name: "openfga", Check: s.deps.FGA.Ready},
		{Name: "events", Check: s.eventsReady},
	}
}

func (s *Syncer) eventsReady(context.Context) error {
	if conn := s.deps.JS.Conn(); conn != nil && !conn.IsConnected() {
		return errors.New("not connected to NATS")
	}
	var missing, behind []string
	for _, l := range s.Lag() {
		switch {
		case l.Pending < 0:
			missing = append(missing, l.Stream)
		case s.cfg.MaxReadyLag > 0 && l.LagSeconds > s.cfg.MaxReadyLag.Seconds():
			behind = append(behind, fmt.Sprintf("%s (%.0fs)", l.Stream, l.LagSeconds))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("not yet connected to stream(s) %s", strings.Join(missing, ", "))
	}
	if len(behind) > 0 {
		return fmt.Errorf("lagging on %s", strings.Join(behind, ", "))
	}
	// A blocked stream (an event that keeps failing) stops the tuples
	// from following the owners' changes.
	return s.consumer.Err()
}

// lagCollector exports Lag as realguardio_authzsync_lag_seconds: like the
// replica's lag, the age of the newest event applied per stream, but 0
// while nothing is pending, so an idle, caught-up sync reads 0.
type lagCollector struct {
	s    *Syncer
	desc *prometheus.Desc
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	for _, l := range c.s.Lag() {
		if !l.NewestEvent.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, l.LagSeconds, l.Stream)
		}
	}
}
