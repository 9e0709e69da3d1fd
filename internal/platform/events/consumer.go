package events

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/realguardio/realguardio/internal/platform/metrics"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// Handler applies one event inside tx, the transaction in which the
// consumer also records the event as applied, so the change and the record
// commit together or not at all. A returned error rolls both back and the
// event is retried, and eventually parked or blocked (see FailurePolicy).
type Handler func(ctx context.Context, tx *sqldb.Tx, ev Event) error

// BatchHandler applies, inside tx, the events of one batch that the
// consumer has decided to apply, in stream order: duplicates, stale events
// and redeliveries are already removed, and the sequence checks have
// passed. It exists so that a consumer whose handler does a few statements
// per event can do a few statements per batch instead (multi-row upserts,
// one write to a remote store), which is what makes a rebuild from a
// million events take minutes rather than an hour. Later events of evs may
// depend on earlier ones (a role set, then cleared): the handler must
// leave the state the events applied one at a time would leave.
//
// A returned error rolls the batch back and the consumer falls back to
// applying the batch's events one at a time with Handler, which retries,
// parks or blocks exactly as without a BatchHandler. Handler is therefore
// still required, and both must make the same change.
type BatchHandler func(ctx context.Context, tx *sqldb.Tx, evs []Event) error

// FailurePolicy says what a consumer does with an event its handler keeps
// failing on after MaxDeliver attempts.
type FailurePolicy int

const (
	// Park records the event in event_parked, acknowledges it and moves on
	// to the stream's next event; an operator replays it later. It suits
	// consumers whose state is informational: skipping one event leaves it
	// wrong in one place, but everything else stays current.
	Park FailurePolicy = iota
	// Block never skips the event: it is retried for ever (the last
	// Backoff entry repeating, so the retries are capped) and later events
	// of the stream wait behind it, keeping the stream in order. The
	// consumer reports itself failing (Err, the blocked gauge, an error
	// log) so readiness checks take the service out of rotation. Use it
	// for consumers whose state decides authorization: parking a
	// revocation would keep the access it revokes (fail open), and
	// applying later events without it would grant on a state that never
	// existed.
	Block
)

// String names the policy for logs.
func (p FailurePolicy) String() string {
	if p == Block {
		return "block"
	}
	return "park"
}

// ConsumerConfig configures a Consumer.
type ConsumerConfig struct {
	// Name is the durable consumer name on every stream and the key of the
	// consumer's bookkeeping rows; letters, digits, '-' and '_' only, unique
	// per purpose (for example "securitysystem-replica").
	Name string
	// Streams are the streams to consume (StreamName(prefix, producer)),
	// each through its own durable consumer, processed concurrently with
	// each other but sequentially within a stream.
	Streams []string
	// FilterSubjects optionally limits the events: each stream gets those
	// filters that fall inside its subjects. Empty means every event.
	FilterSubjects []string
	// DB is the consumer's own database, migrated with Migrations().
	DB *sqldb.DB
	// JS is the JetStream handle (from Connect).
	JS jetstream.JetStream
	// Handler applies an event.
	Handler Handler
	// BatchHandler, when set, applies the events of a batch in one call
	// instead of one Handler call per event; Handler still applies them
	// when the consumer falls back to one event at a time.
	BatchHandler BatchHandler
	// Holder names this instance in the stream leases, which a refused
	// rebuild or Reset reports (*RunningError); a random id when empty. It
	// must differ between instances and between runs: a holder that
	// finds its own name on a lease takes it over without waiting for the
	// messages the previous holder left outstanding.
	Holder string
	// Logger receives progress and failures; nil discards them.
	Logger *slog.Logger
	// MaxDeliver is how many times an event is tried before it is parked,
	// or before the consumer reports itself blocked under OnFailure Block
	// (5 when zero).
	MaxDeliver int
	// OnFailure says what happens after MaxDeliver failed attempts: Park
	// (the zero value) or Block.
	OnFailure FailurePolicy
	// Backoff lists the waits before the 2nd, 3rd, ... attempt; the last
	// entry repeats (1 s, 5 s, 30 s, 60 s when empty).
	Backoff []time.Duration
	// AckWait is how long JetStream waits for an acknowledgement before it
	// redelivers (1 s when zero). It is short so that a message left
	// outstanding by a consumer that crashed, or by a pull request of a
	// stopped one, is delivered again within about a second; a slow
	// handler is not affected, because the consumer tells JetStream it is
	// still working on the message (InProgress) every AckWait/4.
	AckWait time.Duration
	// AppliedRetention is how long the record of an applied event is kept
	// (45 days when zero, longer than DefaultStreamMaxAge so that every event
	// still in a stream is recognised as applied; negative keeps them
	// forever).
	AppliedRetention time.Duration
	// ResetState, when set, is called by Reset inside the transaction that
	// forgets the applied events, so the consumer's derived tables are
	// emptied atomically with the bookkeeping before a rebuild.
	ResetState func(ctx context.Context, tx *sqldb.Tx) error
	// Registry, when set, receives the consumer's metrics: applied, failed
	// and parked events, sequence anomalies, lag and pending per stream.
	Registry prometheus.Registerer
	// BatchSize is the most events applied in one transaction
	// (DefaultBatchSize when zero; 1 applies one event per transaction).
	// A batch is what a pull has delivered, so at a low rate batches hold
	// one event and nothing waits for a batch to fill.
	BatchSize int
}

var consumerName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Consumer applies the events of one or more streams to its database
// exactly once in effect: JetStream delivers at least once, and the consumer
// records each applied event id in the same transaction as the handler's
// changes, skipping ids it has seen. Events of one stream are applied in
// stream order, in batches of what a pull delivered (one transaction each,
// acknowledged after the commit, see batch.go), which keeps every
// aggregate's events in order. A failing event is retried by the consumer
// itself while the events after it wait in memory, so nothing overtakes it;
// instances of a service sharing the durable consumer take turns per
// stream through a lease (lease.go), so they never apply events of one
// stream at the same time.
type Consumer struct {
	cfg     ConsumerConfig
	log     *slog.Logger
	metrics *consumerMetrics
	running atomic.Bool
	// holder names this instance in the stream leases (lease.go).
	holder string
	// holding is set while HoldLeases holds every stream lease.
	holding atomic.Bool

	mu       sync.Mutex
	progress map[string]*StreamProgress
}

// StreamProgress is how far a consumer got in one stream, for lag metrics
// and readiness.
type StreamProgress struct {
	// Stream names the stream.
	Stream string
	// LastEventTime is the OccurredAt of the newest event applied (zero
	// before the first).
	LastEventTime time.Time
	// LastAppliedAt is when that event was applied.
	LastAppliedAt time.Time
	// Pending is the number of events of the stream still to be applied, as
	// last reported by JetStream (with a message or a periodic query).
	Pending uint64
	// Known tells whether Pending has been reported at all.
	Known bool
	// BlockedEventID is, under OnFailure Block, the event the stream is
	// stuck on ("" while not blocked): after MaxDeliver failed attempts of
	// its handler, or at once for an alarm (a sequence gap, a message not
	// attributable to the stream's owner, an undecodable one). It is
	// cleared when the stream moves on.
	BlockedEventID string
	// BlockedType is the type of that event ("" when undecodable).
	BlockedType string
	// BlockedSince is when the stream was found blocked.
	BlockedSince time.Time
	// BlockedAttempts is how many times the blocking event was tried.
	BlockedAttempts uint64
	// BlockedReason says why the stream is blocked: "handler failing", or
	// an alarm found before the handler ran ("sequence gap", "not from the
	// stream's owner", "undecodable").
	BlockedReason string
	// UnreachableSince is when the consumer last had contact with the
	// stream before losing it (no consumer, no leader, no connection), zero
	// while it follows it.
	UnreachableSince time.Time
	// LastContact is when the consumer last received a message of the
	// stream or its consumer's state.
	LastContact time.Time
	// LastProgress is when the stream last moved for this consumer: an
	// event settled here, the durable's acknowledged floor advanced (any
	// instance's work counts), or nothing was pending. Err reports a
	// stream whose events wait while it has not moved for stallBound:
	// contact alone proves nothing, since a pull lost with a server
	// leaves the consumer in contact with JetStream and receiving nothing.
	LastProgress time.Time

	// ackFloor is the durable's acknowledged floor (stream sequence) at
	// the last consumer info, to tell progress from standing still.
	ackFloor uint64
}

// unreachableGrace is how long a stream may be out of reach before Err
// reports it: a NATS reconnect or a stream leader election takes a moment
// and should not flap readiness, but a replica that cannot follow its
// streams for longer decides on a state that may be out of date.
const unreachableGrace = 2 * time.Second

// stallGrace is how long a consumer with events pending and none
// outstanding may receive nothing before it pulls again.
const stallGrace = 2 * time.Second

// stallBound is how long a stream with events pending may go without
// moving (see StreamProgress.LastProgress) before Err reports it. It is
// longer than a batch takes and than the pull's own recovery (a missed
// heartbeat after pullHeartbeat twice, then a new pull), so a healthy
// consumer never flaps, and short enough that a service whose replica has
// stopped following leaves the rotation within seconds.
const stallBound = 5 * time.Second

// pullHeartbeat is the idle heartbeat asked of the server holding a pull:
// two missed ones (a server lost with the pull, a consumer leader gone)
// end the pull with an error within about two seconds, and the consumer
// pulls again from whichever server now leads.
const pullHeartbeat = time.Second

// apiTimeout bounds each JetStream API call the consumer makes to set a
// stream up (create the durable, read its state): a call sent while a
// leader is being elected gets no answer, and a short bound lets the retry
// reach the new leader soon after it is elected.
const apiTimeout = 2 * time.Second

// Lag is the replica's staleness: zero when nothing is pending, otherwise
// the age of the newest applied event (or -1 before anything is known).
func (p StreamProgress) Lag() time.Duration {
	switch {
	case !p.Known:
		return -1
	case p.Pending == 0:
		return 0
	case p.LastEventTime.IsZero():
		return -1
	default:
		return time.Since(p.LastEventTime)
	}
}

// stalled reports whether, at now, events of the stream are pending and
// the stream has not moved for stallBound.
func (p StreamProgress) stalled(now time.Time) bool {
	return p.Known && p.Pending > 0 && !p.LastProgress.IsZero() && now.Sub(p.LastProgress) >= stallBound
}

// observe records what a consumer info says about stream: the pending
// count (plus ahead, the events the stream holds after the last one
// settled here that the info does not count, see streamAhead), contact,
// and whether the stream moved (nothing pending, or the durable's
// acknowledged floor advanced since the last info, whichever instance
// acknowledged). The first info that finds events pending starts the wait
// readiness measures. Only following (the stream set up and its pull
// made, or another instance holding it) ends an outage: the durable's
// leader may answer while the stream's does not, and the attempts to
// follow the stream keep failing meanwhile.
func (c *Consumer) observe(stream string, info *jetstream.ConsumerInfo, ahead uint64, following bool) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.progress[stream]
	p.Pending, p.Known = info.NumPending+uint64(info.NumAckPending)+ahead, true
	p.LastContact = now
	if following {
		p.UnreachableSince = time.Time{}
	}
	if p.Pending == 0 || info.AckFloor.Stream > p.ackFloor || p.LastProgress.IsZero() {
		p.LastProgress = now
	}
	p.ackFloor = max(p.ackFloor, info.AckFloor.Stream)
}

// streamAhead returns how many events the stream holds after settled, the
// stream sequence of the last message settled here (-1: not known yet),
// as its leader says. pollPending asks when the durable's info counts
// nothing pending: a durable whose new leader (after a server was lost)
// has a replica of the stream that is behind counts nothing, delivers
// nothing, and would otherwise make a stopped consumer look caught up. It
// returns 0 for a consumer with FilterSubjects (the stream's later events
// need not be its), on an error, and when the later sequences were all
// deleted.
func (c *Consumer) streamAhead(ctx context.Context, stream string, settled int64) uint64 {
	if settled < 0 || len(c.cfg.FilterSubjects) > 0 {
		return 0
	}
	sctx, cancel := context.WithTimeout(ctx, apiTimeout)
	s, err := c.cfg.JS.Stream(sctx, stream)
	cancel()
	if err != nil {
		return 0
	}
	last := s.CachedInfo().State.LastSeq
	if last <= uint64(settled) || c.holdsNothingBefore(ctx, stream, last+1, uint64(settled)+1) {
		return 0
	}
	return last - uint64(settled)
}

// clusterLeader names the leader in info, for logs ("" when not clustered).
func clusterLeader(info *jetstream.ClusterInfo) string {
	if info == nil {
		return ""
	}
	return info.Leader
}

// moved records that stream moved: its message at stream sequence seq was
// settled here (so an acknowledged floor up to seq is no news).
func (c *Consumer) moved(stream string, seq uint64) {
	c.mu.Lock()
	p := c.progress[stream]
	p.LastProgress, p.ackFloor = time.Now(), max(p.ackFloor, seq)
	c.mu.Unlock()
}

// NewConsumer validates cfg and returns a consumer; Run starts it.
func NewConsumer(cfg ConsumerConfig) (*Consumer, error) {
	var problems []string
	if !consumerName.MatchString(cfg.Name) {
		problems = append(problems, fmt.Sprintf("name %q must be letters, digits, '-' or '_'", cfg.Name))
	}
	if len(cfg.Streams) == 0 {
		problems = append(problems, "at least one stream is required")
	}
	if cfg.DB == nil || cfg.JS == nil || cfg.Handler == nil {
		problems = append(problems, "DB, JS and Handler are required")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("events consumer: %s", strings.Join(problems, "; "))
	}
	if cfg.MaxDeliver <= 0 {
		cfg.MaxDeliver = 5
	}
	if len(cfg.Backoff) == 0 {
		cfg.Backoff = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, time.Minute}
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = time.Second
	}
	if cfg.AppliedRetention == 0 {
		cfg.AppliedRetention = 45 * 24 * time.Hour
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Holder == "" {
		cfg.Holder = uuid.NewString()
	}
	c := &Consumer{
		cfg:      cfg,
		log:      logger.With("component", "events-consumer", "consumer", cfg.Name),
		metrics:  newConsumerMetrics(cfg.Registry),
		progress: map[string]*StreamProgress{},
		holder:   cfg.Holder,
	}
	for _, s := range cfg.Streams {
		c.progress[s] = &StreamProgress{Stream: s}
	}
	if cfg.Registry != nil {
		// A consumer of the same name may have been built before (a
		// service restarted in one process): the newest one reports.
		if err := metrics.Replace(cfg.Registry, newConsumerCollector(c)); err != nil {
			return nil, fmt.Errorf("events consumer %s: register metrics: %w", cfg.Name, err)
		}
	}
	return c, nil
}

// Name returns the consumer's durable name.
func (c *Consumer) Name() string { return c.cfg.Name }

// Run consumes every configured stream until ctx ends and then returns nil.
// Lost connections, missing streams and database errors are logged and
// retried with backoff; only a configuration error ends Run early.
func (c *Consumer) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return fmt.Errorf("events consumer %s: already running", c.cfg.Name)
	}
	defer c.running.Store(false)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(c.cfg.Streams))
	for _, stream := range c.cfg.Streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.runStream(ctx, stream); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.pruneLoop(ctx)
	}()
	wg.Wait()
	close(errs)
	return <-errs // nil when every stream ended because ctx did
}

// errConfig marks errors retrying cannot fix.
type errConfig struct{ error }

func (c *Consumer) runStream(ctx context.Context, stream string) error {
	backoff := time.Duration(0)
	// cons is the durable once created. After a lost pull the next
	// attempt pulls from it again without creating it anew: creating goes
	// through the JetStream meta leader, which may be the very server that
	// was lost, while pulling needs only the consumer's own leader. The
	// attempt after one that got nothing creates it again (it may have
	// been deleted), and so does one after an error saying it is gone.
	var cons jetstream.Consumer
	create := true
	for {
		used, progressed, err := c.consumeStream(ctx, stream, cons, create)
		if ctx.Err() != nil {
			return nil
		}
		cons = used
		create = cons == nil || consumerGone(err) || !progressed && !create
		var cfgErr errConfig
		if errors.As(err, &cfgErr) {
			c.log.Error("events consumer: configuration error", "stream", stream, "err", err)
			return err
		}
		c.setReachable(stream, false)
		// The cap is short: after a leader loss the new leader is elected
		// within seconds, and each attempt is itself bounded (apiTimeout).
		if progressed || backoff == 0 {
			backoff = 250 * time.Millisecond
		} else {
			backoff = min(backoff*2, time.Second)
		}
		c.log.Warn("events consumer: stream interrupted; retrying", "stream", stream, "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
}

// consumerGone reports whether err says the durable consumer no longer
// exists, so it must be created again.
func consumerGone(err error) bool {
	return errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) ||
		errors.Is(err, jetstream.ErrConsumerDoesNotExist)
}

// consumeStream creates (or updates) the durable consumer on stream, unless
// create is false and known is the durable already, and processes its
// messages in batches until an error or ctx ends. It returns the durable it
// used (known when creating it failed).
func (c *Consumer) consumeStream(ctx context.Context, stream string, known jetstream.Consumer, create bool) (used jetstream.Consumer, progressed bool, err error) {
	if !create && known != nil {
		progressed, err = c.follow(ctx, stream, known, true)
		return known, progressed, err
	}
	fctx, cancel := context.WithTimeout(ctx, apiTimeout)
	filters, err := c.filtersFor(fctx, stream)
	cancel()
	if err != nil {
		return known, false, err
	}
	cctx, cancelCreate := context.WithTimeout(ctx, apiTimeout)
	defer cancelCreate()
	cons, err := c.cfg.JS.CreateOrUpdateConsumer(cctx, stream, jetstream.ConsumerConfig{
		Durable:       c.cfg.Name,
		Description:   "RealGuardIO events consumer " + c.cfg.Name,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.cfg.AckWait,
		MaxDeliver:    -1, // parking is ours: the server must never drop a message
		// A batch being applied and the next one delivered meanwhile. The
		// order is the consumer's: it applies what it received in stream
		// order and retries a failing event itself, holding the later ones,
		// and the lease keeps other instances away.
		MaxAckPending:  2 * c.cfg.BatchSize,
		FilterSubjects: filters,
	})
	cancelCreate()
	if err != nil {
		return known, false, fmt.Errorf("create consumer on %s: %w", stream, err)
	}
	progressed, err = c.follow(ctx, stream, cons, false)
	return cons, progressed, err
}

// follow consumes stream through its durable cons while this instance
// holds the stream's lease, until an error or ctx ends; resumed says an
// earlier pull of this run was lost (its messages may be outstanding).
func (c *Consumer) follow(ctx context.Context, stream string, cons jetstream.Consumer, resumed bool) (progressed bool, err error) {
	takeover, err := c.acquireLease(ctx, stream, cons)
	if err != nil || ctx.Err() != nil {
		return false, err
	}
	defer c.releaseLease(stream)
	leaseCtx, loseLease := context.WithCancelCause(ctx)
	defer loseLease(nil)
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		c.renewLease(leaseCtx, stream, loseLease)
	}()
	defer func() { loseLease(nil); <-renewDone }()
	// Messages still outstanding from an earlier pull (this instance's
	// before a restart or a lost pull, or a holder's that stopped without
	// giving them back) must come before any later message of the stream:
	// wait until JetStream offers them again (at most the ack wait from
	// now, the earlier pull having ended), or a new pull would receive
	// later messages first. After a lost pull (resumed) they are likely,
	// and the consumer's leader may be the server just lost, so the wait
	// is not made longer by asking it first.
	offered := time.Now().Add(c.cfg.AckWait + 250*time.Millisecond)
	wait := takeover || resumed
	if !wait {
		ictx, cancel := context.WithTimeout(leaseCtx, apiTimeout)
		info, ierr := cons.Info(ictx)
		cancel()
		wait = ierr != nil || info.NumAckPending > 0
	}
	if wait {
		select {
		case <-leaseCtx.Done():
			return false, context.Cause(leaseCtx)
		case <-time.After(time.Until(offered)):
		}
	}
	// Pull requests expire after 5 s (not the default 30 s): a request of a
	// stopped consumer that a server still holds (servers before 2.10 do not
	// notice that nobody listens any more) can take messages only that
	// long, and AckWait gives each back a second later. Shorter expiries
	// cost throughput: at 1 s the consumer applied ten times fewer events.
	// The heartbeat, though, is short (pullHeartbeat): a pull whose
	// server or consumer leader is lost would otherwise wait silently for
	// its expiry (and the library's default heartbeat is half of it); two
	// missed heartbeats end it with an error and the stream is set up
	// again on whichever server leads now.
	it, err := cons.Messages(jetstream.PullMaxMessages(c.cfg.BatchSize), jetstream.PullExpiry(5*time.Second),
		jetstream.PullHeartbeat(pullHeartbeat))
	if err != nil {
		return false, fmt.Errorf("consume %s: %w", stream, err)
	}
	defer drainAndNak(it)
	// held are the messages taken from the iterator and not settled yet, in
	// stream order; they are given back first when consumption stops.
	var held []jetstream.Msg
	defer func() {
		for _, m := range held {
			_ = m.Nak()
		}
	}()

	infoDone := make(chan struct{})
	infoCtx, stopInfo := context.WithCancel(leaseCtx)
	// pullCtx ends when pollPending finds the pull stalled (messages
	// pending, none outstanding, none received): the pull is then made
	// again, which a stream or consumer leader change can require.
	pullCtx, restartPull := context.WithCancel(leaseCtx)
	defer restartPull()
	var lastMsg atomic.Int64
	lastMsg.Store(time.Now().UnixNano())
	// processing is set while messages taken from the pull are being
	// settled (applied, or held behind a failing one).
	var processing atomic.Bool
	// settled mirrors settledSeq for pollPending (-1 until it is known,
	// that is until the stream is set up and followed).
	var settled atomic.Int64
	settled.Store(-1)
	go func() {
		defer close(infoDone)
		c.pollPending(infoCtx, stream, cons, &lastMsg, &processing, &settled, restartPull)
	}()
	defer func() { stopInfo(); <-infoDone }()

	// settledSeq is the stream sequence of the last message settled; a
	// message at or below it is a copy, only acknowledged.
	settledSeq, err := c.loadStreamProgress(leaseCtx, stream)
	if err != nil {
		return false, err
	}
	if settledSeq > 0 {
		// A stream deleted and created again numbers its messages from 1:
		// the recorded sequence then says nothing about them.
		sctx, cancel := context.WithTimeout(leaseCtx, apiTimeout)
		s, serr := c.cfg.JS.Stream(sctx, stream)
		cancel()
		if serr != nil {
			return false, fmt.Errorf("stream %s: %w", stream, serr)
		}
		if last := s.CachedInfo().State.LastSeq; last < settledSeq {
			c.log.Warn("events consumer: the stream ends before the last message recorded as settled (it was created again); relying on the applied events alone",
				"stream", stream, "stream_last_sequence", last, "recorded_sequence", settledSeq)
			settledSeq = 0
			if _, err := c.cfg.DB.ExecContext(leaseCtx, `UPDATE event_consumer_streams SET last_stream_sequence = 0 WHERE consumer = ? AND stream = ? AND holder = ?`,
				c.cfg.Name, stream, c.holder); err != nil {
				return false, fmt.Errorf("stream row of %s: %w", stream, err)
			}
		}
	}
	settled.Store(int64(settledSeq))
	for {
		msg, err := it.Next(jetstream.NextContext(pullCtx))
		if err != nil {
			if errors.Is(context.Cause(leaseCtx), errLeaseLost) {
				return progressed, fmt.Errorf("stream %s: %w", stream, errLeaseLost)
			}
			if pullCtx.Err() != nil && ctx.Err() == nil {
				return progressed, fmt.Errorf("pull of %s stalled with events pending; pulling again", stream)
			}
			return progressed, fmt.Errorf("next message of %s: %w", stream, err)
		}
		held = append(held[:0], msg)
		// Whatever else the pull has delivered joins the batch; nothing
		// waits for a batch to fill.
		for len(held) < c.cfg.BatchSize {
			m, err := it.Next(jetstream.NextMaxWait(200 * time.Microsecond))
			if err != nil {
				break
			}
			held = append(held, m)
		}
		lastMsg.Store(time.Now().UnixNano())
		processing.Store(true)
		err = c.process(leaseCtx, stream, &held, &settledSeq, &lastMsg)
		settled.Store(int64(settledSeq))
		processing.Store(false)
		lastMsg.Store(time.Now().UnixNano())
		if err != nil {
			return true, err
		}
		progressed = true
	}
}

// process settles every message of held, in order, and removes each from
// held once settled (acknowledged, or parked and acknowledged). It returns
// an error only when consumption must stop (ctx ended, the lease lost);
// the messages still held are then given back by the caller.
func (c *Consumer) process(ctx context.Context, stream string, held *[]jetstream.Msg, settledSeq *uint64, lastMsg *atomic.Int64) error {
	if n := c.inOrder(ctx, stream, *held, *settledSeq); n < len(*held) {
		*held = (*held)[:len(*held):len(*held)]
		front, rest := (*held)[:n], (*held)[n:]
		if err := c.process(ctx, stream, &front, settledSeq, lastMsg); err != nil {
			*held = append(front, rest...)
			return err
		}
		*held = rest
		return fmt.Errorf("stream %s: %w", stream, errOutOfOrder)
	}
	// Under Park a gap is what parking an event leaves behind: the batch
	// applies it as an anomaly, as the one-at-a-time path does.
	var gaps *gapPolicy
	if c.cfg.OnFailure == Block {
		gaps = c.gapCheck(ctx, stream)
	}
	for len(*held) > 0 {
		items := c.prepareBatch(ctx, stream, *held, *settledSeq)
		if len(items) > 0 {
			msgs := make([]jetstream.Msg, len(items))
			for i, it := range items {
				msgs[i] = it.msg
			}
			stop := c.keepAlive(msgs...)
			err := c.applyBatch(ctx, stream, items, gaps)
			stop()
			if err == nil {
				c.settleBatch(ctx, stream, items)
				for _, it := range items {
					*settledSeq = max(*settledSeq, it.md.Sequence.Stream)
				}
				*held = (*held)[len(items):]
				continue
			}
			endSpans(items, err)
			if errors.Is(err, errLeaseLost) || ctx.Err() != nil {
				return fmt.Errorf("stream %s: %w", stream, err)
			}
			var herr handlerError
			if errors.As(err, &herr) {
				// The events before the failing one apply without it (in
				// a batch of their own); the failed call was the failing
				// event's attempt, settled as on the one-at-a-time path.
				if herr.index > 0 {
					*held = (*held)[:len(*held):len(*held)]
					rest := (*held)[herr.index:]
					front := (*held)[:herr.index]
					if err := c.process(ctx, stream, &front, settledSeq, lastMsg); err != nil {
						*held = append(front, rest...)
						return err
					}
					*held = rest
				}
				it := items[herr.index]
				actx := ctx
				if it.ctx != nil {
					actx = it.ctx
				}
				first := c.failure(actx, stream, it.msg, it.md, it.md.NumDelivered, it.ev, herr.err)
				if err := c.processOne(ctx, stream, held, settledSeq, lastMsg, &first); err != nil {
					return err
				}
				continue
			}
			// Otherwise fall back to one at a time for this batch: the
			// events before the failing one apply, the failing one is
			// retried, parked or blocks the stream as the policy says.
			for len(*held) > 0 {
				if err := c.processOne(ctx, stream, held, settledSeq, lastMsg, nil); err != nil {
					return err
				}
			}
			return nil
		}
		// The first message needs the one-at-a-time path (undecodable,
		// not from the stream's owner, no metadata).
		if err := c.processOne(ctx, stream, held, settledSeq, lastMsg, nil); err != nil {
			return err
		}
	}
	return nil
}

// processOne settles the first message of held, retrying it after the
// backoff as often as the policy says while the later ones wait (kept in
// progress with JetStream, so they are not redelivered meanwhile). first,
// when set, is the outcome of an attempt already made (in a batch).
func (c *Consumer) processOne(ctx context.Context, stream string, held *[]jetstream.Msg, settledSeq *uint64, lastMsg *atomic.Int64, first *outcome) error {
	msg := (*held)[0]
	for extra := uint64(0); ; extra++ {
		var out outcome
		if first != nil {
			out, first = *first, nil
		} else {
			out = c.handle(ctx, stream, msg, extra)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(out.err, errLeaseLost) {
			return fmt.Errorf("stream %s: %w", stream, errLeaseLost)
		}
		if out.settled {
			if md, err := msg.Metadata(); err == nil {
				*settledSeq = max(*settledSeq, md.Sequence.Stream)
			}
			*held = (*held)[1:]
			return nil
		}
		stop := c.keepAlive(*held...)
		select {
		case <-ctx.Done():
		case <-time.After(out.retryIn):
		}
		stop()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		lastMsg.Store(time.Now().UnixNano())
		if c.removedFromStream(ctx, stream, msg) {
			*held = (*held)[1:]
			return nil
		}
	}
}

// removedFromStream reports whether msg is no longer in its stream (an
// operator deleted the event the stream was blocked on): it is then
// dropped, and the stream no longer held back. Errors count as no: the
// event is retried rather than skipped.
func (c *Consumer) removedFromStream(ctx context.Context, stream string, msg jetstream.Msg) bool {
	md, err := msg.Metadata()
	if err != nil {
		return false
	}
	info, err := c.streamState(ctx, stream)
	if err != nil {
		return false
	}
	seq := md.Sequence.Stream
	gone := seq < info.State.FirstSeq
	for _, d := range info.State.Deleted {
		if d == seq {
			gone = true
			break
		}
	}
	if !gone {
		return false
	}
	c.mu.Lock()
	p := c.progress[stream]
	unblocked := p.BlockedEventID
	p.BlockedEventID, p.BlockedType, p.BlockedSince, p.BlockedAttempts, p.BlockedReason = "", "", time.Time{}, 0, ""
	c.mu.Unlock()
	c.log.Info("events consumer: stream unblocked: the event it waited on is no longer in the stream", "stream", stream,
		"event_id", unblocked, "stream_sequence", seq)
	return true
}

// setReachable records whether the consumer is in contact with stream.
func (c *Consumer) setReachable(stream string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.progress[stream]
	switch {
	case ok:
		p.UnreachableSince, p.LastContact = time.Time{}, time.Now()
	case p.UnreachableSince.IsZero() && !p.LastContact.IsZero():
		// Contact was lost after the last sign of it, not when a request
		// finally timed out.
		p.UnreachableSince = p.LastContact
	case p.UnreachableSince.IsZero():
		p.UnreachableSince = time.Now()
	}
}

// drainAndNak stops it and hands every message it had already received
// back to JetStream at once (Nak), so a restarted consumer, here or in
// another process, gets them without waiting for the ack wait.
func drainAndNak(it jetstream.MessagesContext) {
	it.Drain()
	for {
		msg, err := it.Next(jetstream.NextMaxWait(250 * time.Millisecond))
		if err != nil {
			return
		}
		_ = msg.Nak()
	}
}

// pollPending refreshes the pending count while no message arrives, so an
// idle, caught-up consumer reports lag 0 and a stuck one is visible.
//
// It also watches for a stalled pull: events pending, none being
// processed and none received for stallGrace (plus the ack wait while
// JetStream counts messages outstanding that this instance does not
// hold). The stream is then reported out of reach since the last message
// and the pull is made again (restart); readiness does not depend on this
// detection, since Err reports any stream with events pending that has
// not moved for stallBound (observe).
func (c *Consumer) pollPending(ctx context.Context, stream string, cons jetstream.Consumer, lastMsg *atomic.Int64, processing *atomic.Bool, settled *atomic.Int64, restart func()) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, apiTimeout)
		info, err := cons.Info(ictx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			c.setReachable(stream, false)
		} else {
			var ahead uint64
			if info.NumPending == 0 && info.NumAckPending == 0 {
				ahead = c.streamAhead(ctx, stream, settled.Load())
				// Only a lasting difference is news: an event published
				// between the two infos is one too.
				if ahead > 0 && !processing.Load() && time.Since(time.Unix(0, lastMsg.Load())) > stallGrace {
					c.log.Warn("events consumer: the durable reports nothing pending, yet the stream holds events after the last one settled", "stream", stream,
						"settled_sequence", settled.Load(), "events_after", ahead, "delivered_sequence", info.Delivered.Stream,
						"ack_floor", info.AckFloor.Stream, "consumer_leader", clusterLeader(info.Cluster))
				}
			}
			c.observe(stream, info, ahead, settled.Load() >= 0)
			c.mu.Lock()
			p := c.progress[stream]
			unblocked := ""
			if info.NumAckPending == 0 && info.NumPending == 0 && info.NumRedelivered == 0 && p.BlockedEventID != "" {
				// Nothing is outstanding, so the event the stream was
				// blocked on is gone (an operator removed it from the
				// stream): the stream is no longer held back.
				unblocked = p.BlockedEventID
				p.BlockedEventID, p.BlockedType, p.BlockedSince, p.BlockedAttempts, p.BlockedReason = "", "", time.Time{}, 0, ""
			}
			c.mu.Unlock()
			if unblocked != "" {
				c.log.Info("events consumer: stream unblocked: the event it waited on is no longer in the stream", "stream", stream, "event_id", unblocked)
			}
			// Messages outstanding that this instance does not hold
			// (delivered to a pull a lost server had, after a leader
			// change) come back after the ack wait; nothing for longer
			// than that is a stall too.
			grace := stallGrace
			if info.NumAckPending > 0 {
				grace += c.cfg.AckWait
			}
			if info.NumPending+uint64(info.NumAckPending)+ahead > 0 && !processing.Load() {
				if last := time.Unix(0, lastMsg.Load()); time.Since(last) > grace {
					c.mu.Lock()
					c.progress[stream].UnreachableSince = last
					c.mu.Unlock()
					c.log.Warn("events consumer: events pending but none delivered; pulling again", "stream", stream,
						"pending", info.NumPending, "ack_pending", info.NumAckPending, "events_after", ahead, "last_message", last)
					restart()
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Consumer) filtersFor(ctx context.Context, stream string) ([]string, error) {
	if len(c.cfg.FilterSubjects) == 0 {
		return nil, nil
	}
	s, err := c.cfg.JS.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	var out []string
	for _, f := range c.cfg.FilterSubjects {
		for _, subj := range s.CachedInfo().Config.Subjects {
			if subjectWithin(f, subj) {
				out = append(out, f)
				break
			}
		}
	}
	if len(out) == 0 {
		return nil, errConfig{fmt.Errorf("none of the filter subjects %v falls inside stream %s", c.cfg.FilterSubjects, stream)}
	}
	return out, nil
}

// subjectWithin reports whether every subject matching filter also matches
// pattern (NATS wildcards '*' and '>').
func subjectWithin(filter, pattern string) bool {
	ft, pt := strings.Split(filter, "."), strings.Split(pattern, ".")
	for i, p := range pt {
		if p == ">" {
			return len(ft) > i
		}
		if i >= len(ft) {
			return false
		}
		switch {
		case p == "*":
			if ft[i] == ">" {
				return false
			}
		case ft[i] != p:
			return false
		}
	}
	return len(ft) == len(pt)
}

// outcome is how handle left a message: settled (acknowledged: applied,
// skipped or parked), or to be retried by the caller after retryIn. err is
// the failure, if any.
type outcome struct {
	settled bool
	retryIn time.Duration
	err     error
}

// handle applies one message and settles it: ack after commit, or parking
// (and ack) after MaxDeliver attempts; otherwise it says when to try again.
// A message is acknowledged only once its outcome is durable. extra counts
// the attempts the consumer made itself since JetStream delivered msg.
func (c *Consumer) handle(ctx context.Context, stream string, msg jetstream.Msg, extra uint64) outcome {
	md, err := msg.Metadata()
	if err != nil {
		c.log.Error("events consumer: message without metadata", "stream", stream, "err", err)
		return outcome{retryIn: c.cfg.Backoff[0], err: err}
	}
	attempts := md.NumDelivered + extra
	c.mu.Lock()
	c.progress[stream].Pending = md.NumPending + 1
	c.progress[stream].Known = true
	c.progress[stream].UnreachableSince = time.Time{}
	c.progress[stream].LastContact = time.Now()
	c.mu.Unlock()

	var ev Event
	if err := json.Unmarshal(msg.Data(), &ev); err != nil || ev.ID == "" {
		if err == nil {
			err = errors.New("event has no id")
		}
		id := fmt.Sprintf("%s:%d", stream, md.Sequence.Stream)
		return c.refuse(messageContext(ctx, msg), stream, msg, md, attempts, Event{ID: id}, "undecodable", fmt.Errorf("undecodable event: %w", err))
	}
	if err := attribute(stream, msg.Subject(), ev); err != nil {
		// Whoever published it was not the stream's owner (or the owner
		// is broken): nothing it says may change the state.
		c.metrics.refused.WithLabelValues(c.cfg.Name, stream).Inc()
		return c.refuse(messageContext(ctx, msg), stream, msg, md, attempts, ev, "not from the stream's owner", err)
	}
	record := func(tx *sqldb.Tx, res applyResult) error {
		applied, newest := 0, time.Time{}
		if !res.duplicate && !res.stale {
			applied, newest = 1, ev.OccurredAt
		}
		return c.recordStream(ctx, tx, stream, md.Sequence.Stream, newest, applied)
	}
	stop := c.keepAlive(msg)
	// actx carries the apply span (when the event is traced) to the end of
	// the delivery, so every log line about this event, the retries and
	// the block included, carries its trace_id and span_id.
	actx, endSpan := c.startApplySpan(ctx, stream, msg, md, ev)
	res, err := apply(actx, c.cfg.DB, c.cfg.Name, c.cfg.Handler, ev, staleSkip, c.gapCheck(ctx, stream), record)
	endSpan(err)
	stop()
	var gap errGap
	if errors.As(err, &gap) {
		c.metrics.anomalies.WithLabelValues(c.cfg.Name, stream).Inc()
		if c.cfg.OnFailure == Block {
			return c.blockNow(actx, stream, md, attempts, ev, "sequence gap", err)
		}
		// Under Park a gap is what parking an event leaves behind, so it
		// is applied as before (logged and counted).
		res, err = apply(ctx, c.cfg.DB, c.cfg.Name, c.cfg.Handler, ev, staleSkip, nil, record)
	}
	if err == nil {
		c.settled(actx, stream, ev, res, md)
		if err := msg.Ack(); err != nil {
			// The event is recorded as applied, so a redelivery is skipped.
			c.log.WarnContext(actx, "events consumer: ack failed", "stream", stream, "event_id", ev.ID, "err", err)
		}
		return outcome{settled: true}
	}
	return c.failure(actx, stream, msg, md, attempts, ev, err)
}

// failure settles a failed attempt at applying ev: retried after the
// backoff, parked after MaxDeliver attempts under Park, reported blocked
// under Block.
func (c *Consumer) failure(ctx context.Context, stream string, msg jetstream.Msg, md *jetstream.MsgMetadata, attempts uint64, ev Event, err error) outcome {
	if ctx.Err() != nil || errors.Is(err, errLeaseLost) {
		return outcome{err: err} // shutting down or handing over: the caller gives it back
	}
	if c.cfg.OnFailure == Block {
		return c.failed(ctx, stream, md, attempts, ev, err)
	}
	c.metrics.failures.WithLabelValues(c.cfg.Name, stream).Inc()
	if attempts >= uint64(c.cfg.MaxDeliver) {
		return c.park(ctx, stream, msg, ev.ID, msg.Data(), err, attempts)
	}
	return c.retry(ctx, stream, ev, attempts, err)
}

// refuse settles a message that can never apply as it is (undecodable, or
// not attributable to the stream's owner): under Block the stream stops on
// it at once and reports why (an operator looks at it and deletes it from
// the stream once understood: skipping it silently could skip a
// revocation); under Park it is parked, never applied. ctx carries the
// message's trace context, if any, for the log lines.
func (c *Consumer) refuse(ctx context.Context, stream string, msg jetstream.Msg, md *jetstream.MsgMetadata, attempts uint64, ev Event, reason string, cause error) outcome {
	if c.cfg.OnFailure == Block {
		return c.blockNow(ctx, stream, md, attempts, ev, reason, cause)
	}
	return c.park(ctx, stream, msg, ev.ID, msg.Data(), cause, attempts)
}

// keepAlive tells JetStream every AckWait/4 that msgs are still being
// worked on, so a slow handler (or a batch waiting behind a failing
// event) never has its messages redelivered while AckWait stays short;
// the returned function stops it.
func (c *Consumer) keepAlive(msgs ...jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(max(c.cfg.AckWait/4, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, m := range msgs {
					_ = m.InProgress()
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// gapCheck returns the apply option that refuses a sequence gap, or nil
// when gaps are expected: a consumer with FilterSubjects sees only some of
// an aggregate's events.
func (c *Consumer) gapCheck(ctx context.Context, stream string) *gapPolicy {
	if len(c.cfg.FilterSubjects) > 0 {
		return nil
	}
	return &gapPolicy{firstAllowed: func() bool { return c.streamLostEvents(ctx, stream) }}
}

// streamLostEvents reports whether stream no longer holds every event it
// ever stored (the age limit removed the oldest, or an operator deleted
// some): only then may the first event a consumer sees of an aggregate be
// other than its first. An error counts as no (the stream is blocked and
// retried rather than a forged jump accepted).
func (c *Consumer) streamLostEvents(ctx context.Context, stream string) bool {
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := c.cfg.JS.Stream(ictx, stream)
	if err != nil {
		c.log.Warn("events consumer: stream info for a gap check", "stream", stream, "err", err)
		return false
	}
	st := s.CachedInfo().State
	return st.FirstSeq > 1 || st.NumDeleted > 0
}

// blockNow reports stream blocked on ev from this attempt on (an alarm, not
// a failure that may pass) and retries it after the backoff. ctx is the
// event's (its apply span's when traced), for the log lines.
func (c *Consumer) blockNow(ctx context.Context, stream string, md *jetstream.MsgMetadata, attempts uint64, ev Event, reason string, cause error) outcome {
	c.metrics.failures.WithLabelValues(c.cfg.Name, stream).Inc()
	c.markBlocked(ctx, stream, md, attempts, ev, reason, cause)
	return c.retry(ctx, stream, ev, attempts, cause)
}

func (c *Consumer) markBlocked(ctx context.Context, stream string, md *jetstream.MsgMetadata, attempts uint64, ev Event, reason string, cause error) {
	c.mu.Lock()
	p := c.progress[stream]
	first := p.BlockedEventID != ev.ID
	if first {
		p.BlockedEventID, p.BlockedType, p.BlockedSince, p.BlockedReason = ev.ID, ev.Type, time.Now(), reason
	}
	p.BlockedAttempts = attempts
	c.mu.Unlock()
	if first {
		c.log.ErrorContext(ctx, "events consumer: stream BLOCKED ("+reason+"); later events wait until it applies or an operator removes it from the stream (the consumer reports itself failing meanwhile)",
			"stream", stream, "event_id", ev.ID, "type", ev.Type, "aggregate_type", ev.AggregateType, "aggregate_id", ev.AggregateID,
			"sequence", ev.Sequence, "stream_sequence", md.Sequence.Stream, "attempts", attempts, "err", cause)
	}
}

// attribute checks that ev can only have come from the owner of stream:
// the stream is the one of ev.Producer, and the subject is the one the
// owner's relay publishes ev on. NATS permissions let only the owner
// publish on its subjects; this check keeps a message that got in another
// way (a misconfigured server, a stream sourcing another) from changing
// anything.
func attribute(stream, subject string, ev Event) error {
	if ev.Producer == "" || strings.ContainsAny(ev.Producer, ". *>") {
		return fmt.Errorf("event %s names no valid producer (%q)", ev.ID, ev.Producer)
	}
	suffix := "_" + strings.ToUpper(ev.Producer)
	if !strings.HasSuffix(stream, suffix) || len(stream) == len(suffix) {
		return fmt.Errorf("event %s of producer %q arrived on stream %s, which belongs to another producer", ev.ID, ev.Producer, stream)
	}
	if !strings.HasPrefix(ev.Type, ev.Producer+".") {
		return fmt.Errorf("event %s: type %q is not one of producer %q", ev.ID, ev.Type, ev.Producer)
	}
	prefix := stream[:len(stream)-len(suffix)]
	if !strings.EqualFold(subject, prefix+"."+ev.Type) {
		return fmt.Errorf("event %s of type %q arrived on subject %q, not the one its producer publishes it on", ev.ID, ev.Type, subject)
	}
	return nil
}

// retry says when to try a failed message again: after the backoff of its
// attempt (the last Backoff entry once they run out). The caller holds the
// stream's later messages behind it meanwhile. ctx is the event's (its
// apply span's when traced), so the log lines join its trace.
func (c *Consumer) retry(ctx context.Context, stream string, ev Event, attempts uint64, cause error) outcome {
	delay := c.cfg.Backoff[min(max(int(attempts), 1)-1, len(c.cfg.Backoff)-1)]
	c.log.WarnContext(ctx, "events consumer: handler failed; will retry", "stream", stream, "event_id", ev.ID, "type", ev.Type,
		"attempt", attempts, "max_deliver", c.cfg.MaxDeliver, "on_failure", c.cfg.OnFailure, "retry_in", delay, "err", cause)
	return outcome{retryIn: delay, err: cause}
}

// failed settles a failed attempt under OnFailure Block: the message is
// always retried, never parked, and from the MaxDeliver-th attempt on the
// stream is reported blocked until an event of it applies.
func (c *Consumer) failed(ctx context.Context, stream string, md *jetstream.MsgMetadata, attempts uint64, ev Event, cause error) outcome {
	c.metrics.failures.WithLabelValues(c.cfg.Name, stream).Inc()
	if attempts >= uint64(c.cfg.MaxDeliver) {
		c.markBlocked(ctx, stream, md, attempts, ev, "handler failing", cause)
	}
	return c.retry(ctx, stream, ev, attempts, cause)
}

func (c *Consumer) settled(ctx context.Context, stream string, ev Event, res applyResult, md *jetstream.MsgMetadata) {
	now := time.Now()
	c.mu.Lock()
	p := c.progress[stream]
	p.Pending = md.NumPending
	p.Known = true
	if ev.OccurredAt.After(p.LastEventTime) {
		p.LastEventTime = ev.OccurredAt
	}
	p.LastAppliedAt, p.LastProgress = now, now
	p.ackFloor = max(p.ackFloor, md.Sequence.Stream)
	unblocked := p.BlockedEventID
	p.BlockedEventID, p.BlockedType, p.BlockedSince, p.BlockedAttempts, p.BlockedReason = "", "", time.Time{}, 0, ""
	c.mu.Unlock()
	if unblocked != "" {
		c.log.InfoContext(ctx, "events consumer: stream unblocked", "stream", stream, "event_id", unblocked)
	}
	if res.duplicate {
		c.log.DebugContext(ctx, "events consumer: event already applied; skipped", "event_id", ev.ID)
		return
	}
	if res.stale {
		c.metrics.stale.WithLabelValues(c.cfg.Name, stream).Inc()
		c.log.WarnContext(ctx, "events consumer: stale event skipped: its aggregate already has a later event applied", "stream", stream,
			"event_id", ev.ID, "type", ev.Type, "aggregate_type", ev.AggregateType, "aggregate_id", ev.AggregateID,
			"sequence", ev.Sequence, "last_applied_sequence", res.previous)
		return
	}
	c.metrics.applied.WithLabelValues(c.cfg.Name, stream).Inc()
	if res.anomaly != "" {
		c.metrics.anomalies.WithLabelValues(c.cfg.Name, stream).Inc()
		c.log.WarnContext(ctx, "events consumer: "+res.anomaly, "stream", stream, "event_id", ev.ID, "type", ev.Type,
			"aggregate_type", ev.AggregateType, "aggregate_id", ev.AggregateID, "sequence", ev.Sequence, "previous_sequence", res.previous)
	}
}

// park records a failing event in the parked table and acknowledges it, so
// the stream moves on but the event is never dropped silently. If the
// record cannot be written the message is retried later instead.
func (c *Consumer) park(ctx context.Context, stream string, msg jetstream.Msg, id string, data []byte, cause error, attempts uint64) outcome {
	var seq uint64
	if md, err := msg.Metadata(); err == nil {
		seq = md.Sequence.Stream
	}
	// The stream's row moves past the parked message in the same
	// transaction, so a restart knows it settled.
	err := c.cfg.DB.InTx(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO event_parked (consumer, event_id, event, error, attempts, parked_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (consumer, event_id) DO UPDATE SET event = excluded.event, error = excluded.error, attempts = excluded.attempts, parked_at = excluded.parked_at`,
			c.cfg.Name, id, string(data), cause.Error(), int64(attempts), sqldb.Micros(time.Now())); err != nil {
			return err
		}
		if seq == 0 {
			return nil
		}
		return c.recordStream(ctx, tx, stream, seq, time.Time{}, 0)
	})
	if errors.Is(err, errLeaseLost) {
		return outcome{err: err}
	}
	if err != nil {
		c.log.ErrorContext(ctx, "events consumer: cannot park failing event; will retry", "stream", stream, "event_id", id, "err", err, "cause", cause)
		return outcome{retryIn: c.cfg.Backoff[len(c.cfg.Backoff)-1], err: err}
	}
	c.moved(stream, seq)
	c.metrics.parked.WithLabelValues(c.cfg.Name, stream).Inc()
	c.log.ErrorContext(ctx, "events consumer: event parked after repeated failures; see ListParked and Replay", "stream", stream,
		"event_id", id, "attempts", attempts, "err", cause)
	if err := msg.Ack(); err != nil {
		c.log.WarnContext(ctx, "events consumer: ack of parked event failed", "event_id", id, "err", err)
	}
	return outcome{settled: true}
}

type applyResult struct {
	duplicate bool
	stale     bool
	anomaly   string
	previous  int64
}

// staleMode says what apply does with a stale event: one whose sequence is
// not above the last one applied to its aggregate.
type staleMode int

const (
	// staleSkip records the event as handled without running the handler:
	// normal delivery, where a stale event would roll the aggregate back.
	staleSkip staleMode = iota
	// staleRefuse fails with ErrStale: Replay's default.
	staleRefuse
	// staleApply runs the handler anyway: Replay with ApplyStale.
	staleApply
	// staleDiscard records it as handled without running the handler and
	// runs extra (which removes it from the parked events): Replay with
	// DiscardStale.
	staleDiscard
)

// ErrStale is returned by Replay for an event older than one already
// applied to its aggregate, unless ApplyStale or DiscardStale says what to
// do with it.
var ErrStale = errors.New("event is older than one already applied to its aggregate")

// apply runs h for ev in one transaction with the bookkeeping: skip if the
// consumer applied ev already, check the aggregate sequence (stale events
// are handled as mode says; with gaps set, a gap in the sequence is
// refused with errGap), record the event and the progress. extra, when
// set, runs in the same transaction with the outcome so far.
//
// The progress row (the last applied sequence per aggregate) is written in
// the handler's transaction, so the stale check always sees exactly the
// state the handler's effects are in.
func apply(ctx context.Context, db *sqldb.DB, consumer string, h Handler, ev Event, mode staleMode, gaps *gapPolicy, extra func(tx *sqldb.Tx, res applyResult) error) (applyResult, error) {
	var res applyResult
	err := db.InTx(ctx, func(tx *sqldb.Tx) error {
		res = applyResult{}
		// Recording first makes the duplicate check and the claim one
		// statement; on PostgreSQL a concurrent apply of the same id waits
		// on the key and then finds it taken.
		r, err := tx.ExecContext(ctx, `INSERT INTO event_applied (consumer, event_id, aggregate_type, aggregate_id, sequence, applied_at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (consumer, event_id) DO NOTHING`,
			consumer, ev.ID, ev.AggregateType, ev.AggregateID, ev.Sequence, sqldb.Micros(time.Now()))
		if err != nil {
			return fmt.Errorf("record applied event: %w", err)
		}
		if n, err := r.RowsAffected(); err != nil {
			return fmt.Errorf("record applied event: %w", err)
		} else if n == 0 {
			res.duplicate = true
			if extra != nil {
				return extra(tx, res)
			}
			return nil
		}
		var last int64
		err = tx.QueryRowContext(ctx, `SELECT last_sequence FROM event_consumer_progress WHERE consumer = ? AND aggregate_type = ? AND aggregate_id = ?`,
			consumer, ev.AggregateType, ev.AggregateID).Scan(&last)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if ev.Sequence != 1 {
				if gaps != nil && !gaps.firstAllowed() {
					return errGap{fmt.Errorf("first event of aggregate %s %s has sequence %d, and the stream still holds every event it stored", ev.AggregateType, ev.AggregateID, ev.Sequence)}
				}
				res.anomaly = "first event seen of the aggregate is not its first (earlier events expired from the stream, were filtered, or are parked)"
			}
		case err != nil:
			return fmt.Errorf("read consumer progress: %w", err)
		case ev.Sequence <= last:
			// A later state of the aggregate is already applied; applying
			// this one would roll it back (for example re-grant a role a
			// later event revoked).
			res.previous = last
			switch mode {
			case staleRefuse:
				return fmt.Errorf("sequence %d, last applied %d: %w", ev.Sequence, last, ErrStale)
			case staleSkip, staleDiscard:
				res.stale = true
				if extra != nil {
					return extra(tx, res)
				}
				return nil
			}
			res.anomaly = "stale event applied by operator request (ApplyStale): older than one already applied"
		case ev.Sequence != last+1:
			if gaps != nil {
				// The events in between can never come (a stream is in
				// order): either they were lost, or this one is not what
				// its owner published. Applying it would make the owner's
				// next real events look stale.
				return errGap{fmt.Errorf("aggregate %s %s: sequence %d follows %d", ev.AggregateType, ev.AggregateID, ev.Sequence, last)}
			}
			res.anomaly = "gap in the aggregate's sequence (events missing, filtered or parked)"
		}
		res.previous = last
		if err := h(ctx, tx, ev); err != nil {
			return err
		}
		now := sqldb.Micros(time.Now())
		if _, err := tx.ExecContext(ctx, `INSERT INTO event_consumer_progress (consumer, aggregate_type, aggregate_id, last_sequence, last_event_id, updated_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (consumer, aggregate_type, aggregate_id) DO UPDATE SET
				last_sequence = CASE WHEN excluded.last_sequence > event_consumer_progress.last_sequence THEN excluded.last_sequence ELSE event_consumer_progress.last_sequence END,
				last_event_id = CASE WHEN excluded.last_sequence > event_consumer_progress.last_sequence THEN excluded.last_event_id ELSE event_consumer_progress.last_event_id END,
				updated_at = excluded.updated_at`,
			consumer, ev.AggregateType, ev.AggregateID, ev.Sequence, ev.ID, now); err != nil {
			return fmt.Errorf("record consumer progress: %w", err)
		}
		if extra != nil {
			return extra(tx, res)
		}
		return nil
	})
	return res, err
}

// gapPolicy makes apply refuse a gap in an aggregate's sequence with
// errGap instead of applying the event.
type gapPolicy struct {
	// firstAllowed reports whether the first event seen of an aggregate
	// may be other than its first (the stream lost its oldest events).
	firstAllowed func() bool
}

// errGap is apply's refusal of a sequence gap; the transaction is rolled
// back, so nothing changed.
type errGap struct{ error }

func (e errGap) Unwrap() error { return e.error }

// pruneLoop deletes applied-event records older than AppliedRetention once
// an hour, keeping the table bounded.
func (c *Consumer) pruneLoop(ctx context.Context) {
	if c.cfg.AppliedRetention < 0 {
		return
	}
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		cutoff := sqldb.Micros(time.Now().Add(-c.cfg.AppliedRetention))
		if _, err := c.cfg.DB.ExecContext(ctx, `DELETE FROM event_applied WHERE consumer = ? AND applied_at < ?`, c.cfg.Name, cutoff); err != nil && ctx.Err() == nil {
			c.log.Warn("events consumer: prune applied events", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Progress returns the consumer's progress per stream, in configuration
// order.
func (c *Consumer) Progress() []StreamProgress {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]StreamProgress, 0, len(c.cfg.Streams))
	for _, s := range c.cfg.Streams {
		out = append(out, *c.progress[s])
	}
	return out
}

// LastApplied returns the OccurredAt of the newest event applied from any
// stream and when it was applied (zero times before the first), the basis of
// a service's replica-lag metric.
func (c *Consumer) LastApplied() (eventTime, appliedAt time.Time) {
	for _, p := range c.Progress() {
		if p.LastEventTime.After(eventTime) {
			eventTime, appliedAt = p.LastEventTime, p.LastAppliedAt
		}
	}
	return eventTime, appliedAt
}

// Lag returns the largest lag over the consumer's streams (see
// StreamProgress.Lag); -1 means not known yet, for example before the
// first contact with JetStream.
func (c *Consumer) Lag() time.Duration {
	lag := time.Duration(0)
	for _, p := range c.Progress() {
		l := p.Lag()
		if l < 0 {
			return -1
		}
		lag = max(lag, l)
	}
	return lag
}

// Reset prepares a rebuild: it deletes the durable consumer from every
// stream and, in one transaction, the consumer's applied, progress and
// parked rows together with whatever ResetState clears. The next Run then
// replays every stream from its start. The consumer must not be running,
// here or in another process: Reset returns a *RunningError, changing
// nothing, while an instance holds the lease of one of its streams.
//
// The durable consumers go first: if Reset stops half-way, either nothing
// was forgotten (the old records skip every replayed event) or everything
// was, so the state never mixes.
func (c *Consumer) Reset(ctx context.Context) error {
	if c.running.Load() {
		return fmt.Errorf("events consumer %s: stop it before Reset", c.cfg.Name)
	}
	if err := c.checkNotRunningElsewhere(ctx); err != nil {
		return err
	}
	for _, s := range c.cfg.Streams {
		err := c.cfg.JS.DeleteConsumer(ctx, s, c.cfg.Name)
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("events consumer %s: delete durable consumer on %s: %w", c.cfg.Name, s, err)
		}
	}
	err := c.cfg.DB.InTx(ctx, func(tx *sqldb.Tx) error {
		for _, table := range []string{"event_applied", "event_consumer_progress", "event_parked"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE consumer = ?`, c.cfg.Name); err != nil {
				return fmt.Errorf("clear %s: %w", table, err)
			}
		}
		// The leases this instance holds (HoldLeases) stay; only the
		// progress goes.
		if _, err := tx.ExecContext(ctx, `DELETE FROM event_consumer_streams WHERE consumer = ? AND holder <> ?`, c.cfg.Name, c.holder); err != nil {
			return fmt.Errorf("clear event_consumer_streams: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE event_consumer_streams SET last_stream_sequence = 0, last_event_at = 0, last_applied_at = 0, applied_events = 0
			WHERE consumer = ? AND holder = ?`, c.cfg.Name, c.holder); err != nil {
			return fmt.Errorf("clear event_consumer_streams: %w", err)
		}
		if c.cfg.ResetState != nil {
			return c.cfg.ResetState(ctx, tx)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("events consumer %s: reset: %w", c.cfg.Name, err)
	}
	c.mu.Lock()
	for _, s := range c.cfg.Streams {
		c.progress[s] = &StreamProgress{Stream: s}
	}
	c.mu.Unlock()
	c.log.Info("events consumer: reset; the next run replays every stream from the start")
	return nil
}

// Replay re-runs the consumer's handler for a parked event (see the
// package function Replay).
func (c *Consumer) Replay(ctx context.Context, eventID string, opts ...ReplayOption) error {
	return Replay(ctx, c.cfg.DB, c.cfg.Name, eventID, c.cfg.Handler, opts...)
}

// Err returns nil while the consumer follows every stream, and otherwise
// an error naming each stream blocked (and the event it waits on), out of
// reach for more than two seconds (NATS down, the stream without a
// leader), or with events pending that none has been applied of for
// stallBound (a pull lost with a server: the consumer is in contact, yet
// nothing arrives). Only OnFailure Block blocks; readiness checks of
// consumers that use it must report this error, because the consumer's
// state no longer follows its streams. The message holds no handler error (it may reach /readyz); the
// log has it.
func (c *Consumer) Err() error {
	var blocked []string
	for _, p := range c.Progress() {
		if !p.UnreachableSince.IsZero() && time.Since(p.UnreachableSince) >= unreachableGrace {
			blocked = append(blocked, fmt.Sprintf("stream %s out of reach since %s", p.Stream, p.UnreachableSince.UTC().Format(time.RFC3339)))
		}
		if p.BlockedEventID != "" {
			blocked = append(blocked, fmt.Sprintf("stream %s blocked (%s) since %s on event %s (%s) after %d attempts",
				p.Stream, p.BlockedReason, p.BlockedSince.UTC().Format(time.RFC3339), p.BlockedEventID, p.BlockedType, p.BlockedAttempts))
		} else if p.stalled(time.Now()) {
			blocked = append(blocked, fmt.Sprintf("stream %s not progressing: %d events pending, none applied since %s",
				p.Stream, p.Pending, p.LastProgress.UTC().Format(time.RFC3339)))
		}
	}
	if len(blocked) == 0 {
		return nil
	}
	return fmt.Errorf("events consumer %s: %s", c.cfg.Name, strings.Join(blocked, "; "))
}
