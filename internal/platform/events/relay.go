package events

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// Relay publishes the rows of an outbox to NATS JetStream, in outbox order,
// after their transactions committed. It is woken by the outbox's commit
// hook and also polls, so rows written by other processes sharing the
// database are published too.
//
// Sent rows are marked with their send time and deleted after the sent
// retention (WithSentRetention, 24 hours by default), which keeps a recent
// history for diagnosis without letting the table grow.
//
// Several relays on one database coordinate through a lease row: only the
// holder publishes, the others stand by and take over when the lease
// expires, or when the holder gives it up because its publishing has
// failed for twice the lease (WithLeaseSurrender: cut off from NATS but not
// from the database). Even when two publish at once (a holder stalled past its lease)
// the event id is the JetStream message id and consumers record applied ids,
// so a duplicate is harmless.
type Relay struct {
	db     *sqldb.DB
	js     jetstream.JetStream
	outbox *Outbox
	log    *slog.Logger
	cfg    relayConfig
	holder string

	leaseUntil  time.Time
	lastRenew   time.Time
	lastCleanup time.Time
	metrics     *relayMetrics
	// takeoverAt is, while another relay holds the lease, when it expires
	// unless renewed: the standby tries again then rather than at its next
	// poll, so failover takes the lease's time to live and no more.
	takeoverAt time.Time
	// holding is set while this relay holds the lease, for keepLease.
	holding atomic.Bool
	// surrendered is set when this relay gave the lease up because it
	// could not publish (surrenderIfFailing); it takes no lease again
	// until a JetStream round trip succeeds (canPublish).
	surrendered atomic.Bool

	// failingSince is the end of the last successful cycle before
	// publishing started to fail (UnixNano, 0 while it works), for Err;
	// lastOK is the end of the last successful cycle.
	failingSince, lastOK atomic.Int64
	// waitingSince is, while a cycle runs, when it started or last
	// published a batch (UnixNano, 0 between cycles), for Err: a cycle
	// that neither publishes nor fails (a call that hangs) is a stall.
	waitingSince atomic.Int64
}

// relayFailureGrace is how long publishing may fail before Err reports it:
// a NATS reconnect or a stream leader election takes a moment.
const relayFailureGrace = 2 * time.Second

// relayStallBound is how long a cycle may go without publishing a batch or
// failing before Err reports it: longer than a batch of acknowledgements
// takes on a busy machine, so a healthy relay never flaps.
const relayStallBound = 5 * time.Second

// Err returns nil while the relay publishes (or has nothing to publish),
// and an error once publishing has failed without a success for more than
// two seconds (NATS unreachable, a stream without a leader), or once a
// cycle has published nothing and not failed either for relayStallBound (a
// call that hangs): the service's changes are committed but reach nobody,
// which readiness checks report.
func (r *Relay) Err() error {
	if w := r.waitingSince.Load(); w != 0 {
		if t := time.Unix(0, w); time.Since(t) >= relayStallBound {
			return fmt.Errorf("outbox relay of %s: nothing published since %s", r.outbox.producer, t.UTC().Format(time.RFC3339))
		}
	}
	since := r.failingSince.Load()
	if since == 0 {
		return nil
	}
	t := time.Unix(0, since)
	if time.Since(t) < relayFailureGrace {
		return nil
	}
	return fmt.Errorf("outbox relay of %s: publishing has failed since %s", r.outbox.producer, t.UTC().Format(time.RFC3339))
}

type relayConfig struct {
	prefix         string
	poll           time.Duration
	batch          int
	retention      time.Duration
	minBackoff     time.Duration
	maxBackoff     time.Duration
	publishTimeout time.Duration
	leaseTTL       time.Duration
	surrender      time.Duration
	registerer     prometheus.Registerer
}

// RelayOption adjusts a Relay.
type RelayOption func(*relayConfig)

// WithSubjectPrefix replaces DefaultPrefix in the subjects the relay
// publishes on; tests use it to isolate their streams.
func WithSubjectPrefix(prefix string) RelayOption {
	return func(c *relayConfig) { c.prefix = prefixOr(prefix) }
}

// WithPollInterval sets how often the relay looks for rows it was not woken
// for (written by another process); the default is one second.
func WithPollInterval(d time.Duration) RelayOption {
	return func(c *relayConfig) {
		if d > 0 {
			c.poll = d
		}
	}
}

// WithBatchSize sets how many rows the relay reads per query (default 100).
func WithBatchSize(n int) RelayOption {
	return func(c *relayConfig) {
		if n > 0 {
			c.batch = n
		}
	}
}

// WithSentRetention sets how long sent rows are kept before deletion
// (default 24 hours); zero deletes each row as soon as it is published.
func WithSentRetention(d time.Duration) RelayOption {
	return func(c *relayConfig) {
		if d >= 0 {
			c.retention = d
		}
	}
}

// WithBackoff sets the first and the largest wait after a failed publish
// (defaults 100 ms and 2 s); the wait doubles in between. The largest wait
// bounds how long publishing stays stopped after NATS is back (a stream
// leader re-elected after a lost server, say).
func WithBackoff(first, limit time.Duration) RelayOption {
	return func(c *relayConfig) {
		if first > 0 {
			c.minBackoff = first
		}
		if limit >= c.minBackoff {
			c.maxBackoff = limit
		}
	}
}

// WithPublishTimeout bounds the wait for one JetStream acknowledgement
// (default 5 s); a timeout counts as a failure and the row is retried.
func WithPublishTimeout(d time.Duration) RelayOption {
	return func(c *relayConfig) {
		if d > 0 {
			c.publishTimeout = d
		}
	}
}

// WithLease sets the time-to-live of the relay lease (default 3 s, renewed
// every third of it in the background while the holder lives, however
// long a publishing cycle takes; a standby tries again the moment the
// lease it saw expires, so it takes over within the time to live of the
// holder's crash); zero disables the lease, for a database that only ever
// has one relay.
func WithLease(ttl time.Duration) RelayOption {
	return func(c *relayConfig) {
		if ttl >= 0 {
			c.leaseTTL = ttl
		}
	}
}

// WithLeaseSurrender sets how long the lease holder's publishing may fail
// without a success before it gives the lease up (default twice the
// lease's time to live): a relay cut off from NATS but not from the
// database would otherwise renew the lease for ever, and a healthy standby
// would never publish. The relay then takes no lease until a JetStream
// call succeeds again. Zero never gives the lease up.
func WithLeaseSurrender(d time.Duration) RelayOption {
	return func(c *relayConfig) {
		if d >= 0 {
			c.surrender = d
		}
	}
}

// WithRelayMetrics registers the relay's counters (published events,
// publish failures) with reg; without it the relay keeps no metrics.
func WithRelayMetrics(reg prometheus.Registerer) RelayOption {
	return func(c *relayConfig) { c.registerer = reg }
}

// NewRelay returns a relay publishing the rows of o, stored in db, to js.
// Run starts it.
func NewRelay(db *sqldb.DB, js jetstream.JetStream, o *Outbox, logger *slog.Logger, opts ...RelayOption) *Relay {
	cfg := relayConfig{
		prefix:         DefaultPrefix,
		poll:           time.Second,
		batch:          100,
		retention:      24 * time.Hour,
		minBackoff:     100 * time.Millisecond,
		maxBackoff:     2 * time.Second,
		publishTimeout: 5 * time.Second,
		leaseTTL:       3 * time.Second,
		surrender:      -1,
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	if cfg.surrender < 0 {
		cfg.surrender = 2 * cfg.leaseTTL
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	registerBacklog(cfg.registerer, db, o.producer)
	return &Relay{
		db:      db,
		js:      js,
		outbox:  o,
		log:     logger.With("component", "outbox-relay", "producer", o.producer),
		cfg:     cfg,
		holder:  uuid.NewString(),
		metrics: newRelayMetrics(cfg.registerer, o.producer),
	}
}

// Run publishes until ctx ends and then returns nil. Failures (NATS down,
// database errors) are logged and retried with a capped exponential
// backoff, so writes keep succeeding meanwhile and the outbox drains when
// NATS is back.
func (r *Relay) Run(ctx context.Context) error {
	poll := time.NewTicker(r.cfg.poll)
	defer poll.Stop()
	renewCtx, stopRenew := context.WithCancel(ctx)
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		r.keepLease(renewCtx)
	}()
	defer r.releaseLease()
	defer func() { stopRenew(); <-renewDone }()
	backoff := time.Duration(0)
	for {
		err := r.cycle(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			since := r.lastOK.Load()
			if since == 0 {
				since = time.Now().UnixNano()
			}
			r.failingSince.CompareAndSwap(0, since)
			if backoff == 0 {
				backoff = r.cfg.minBackoff
			} else {
				backoff = min(backoff*2, r.cfg.maxBackoff)
			}
			r.log.Warn("outbox relay: publishing failed; retrying", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			continue
		}
		r.failingSince.Store(0)
		r.lastOK.Store(time.Now().UnixNano())
		if backoff > 0 {
			r.log.Info("outbox relay: publishing again")
			backoff = 0
		}
		var takeover <-chan time.Time
		var timer *time.Timer
		if !r.takeoverAt.IsZero() {
			timer = time.NewTimer(time.Until(r.takeoverAt))
			takeover = timer.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.outbox.wake:
		case <-poll.C:
		case <-takeover:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// keepLease renews the lease every third of its time to live while this
// relay holds it, independently of the publishing cycle: a cycle may wait
// longer than the lease lasts (acknowledgements awaited for the publish
// timeout while a stream elects a leader), and a relay that is alive must
// not hand its lease to a standby meanwhile. So the lease expires only
// when its holder is gone (crashed, or cut off from the database), which
// keeps it short, and failover quick, without spurious takeovers; a holder
// whose publishing fails (not merely waits) for the surrender time gives
// it up here (surrenderIfFailing).
func (r *Relay) keepLease(ctx context.Context) {
	if r.cfg.leaseTTL == 0 {
		return
	}
	t := time.NewTicker(r.cfg.leaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !r.holding.Load() {
			continue
		}
		if r.surrenderIfFailing(ctx) {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, r.cfg.leaseTTL/3)
		res, err := r.db.ExecContext(rctx, `UPDATE event_relay_lease SET expires_at = ? WHERE name = ? AND holder = ?`,
			sqldb.Micros(time.Now().Add(r.cfg.leaseTTL)), leaseName, r.holder)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.log.Warn("outbox relay: renew lease", "err", err)
			continue
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			// Another relay holds it now; the next cycle finds out and
			// stands by.
			r.holding.Store(false)
		}
	}
}

// surrenderIfFailing gives the lease up when this relay holds it and its
// publishing has failed without a success for the surrender time: it is
// alive and reaches the database (it would renew the lease for ever) but
// not NATS, while a standby may. It stops renewing first, then expires the
// row so a standby takes over at its next try rather than a time to live
// later; if that write fails the lease simply runs out. It reports whether
// it gave the lease up.
func (r *Relay) surrenderIfFailing(ctx context.Context) bool {
	since := r.failingSince.Load()
	if r.cfg.surrender == 0 || since == 0 || time.Since(time.Unix(0, since)) < r.cfg.surrender {
		return false
	}
	r.surrendered.Store(true)
	r.holding.Store(false)
	r.log.Warn("outbox relay: publishing has failed for too long; giving the lease up to a standby",
		"failing_since", time.Unix(0, since).UTC(), "after", r.cfg.surrender)
	rctx, cancel := context.WithTimeout(ctx, r.cfg.leaseTTL/3)
	defer cancel()
	if _, err := r.db.ExecContext(rctx, `UPDATE event_relay_lease SET expires_at = 0 WHERE name = ? AND holder = ?`, leaseName, r.holder); err != nil {
		r.log.Warn("outbox relay: release lease", "err", err)
	}
	return true
}

// canPublish asks the stream of the relay's producer for its state, a
// JetStream round trip that needs what publishing needs (the connection and
// the stream's leader), bounded by the publish timeout.
func (r *Relay) canPublish(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.publishTimeout)
	defer cancel()
	if _, err := r.js.Stream(ctx, StreamName(r.cfg.prefix, r.outbox.producer)); err != nil {
		return fmt.Errorf("outbox relay: gave the lease up, and JetStream is still out of reach: %w", err)
	}
	return nil
}

// cycle publishes everything unsent if this relay holds the lease. A relay
// that gave the lease up (surrenderIfFailing) first checks that it can
// publish again, and fails the cycle until it can: it stays unready, and
// takes no lease it could not use.
func (r *Relay) cycle(ctx context.Context) error {
	if r.surrendered.Load() {
		if err := r.canPublish(ctx); err != nil {
			return err
		}
		r.surrendered.Store(false)
		r.leaseUntil = time.Time{}
		r.log.Info("outbox relay: JetStream reachable again; taking part in the lease again")
	}
	held, err := r.lease(ctx)
	if err != nil {
		return fmt.Errorf("relay lease: %w", err)
	}
	if !held {
		return nil
	}
	r.waitingSince.Store(time.Now().UnixNano())
	defer r.waitingSince.Store(0)
	for {
		n, err := r.publishBatch(ctx)
		if err != nil {
			return err
		}
		r.waitingSince.Store(time.Now().UnixNano())
		if n < r.cfg.batch {
			break
		}
		held, err := r.lease(ctx)
		if err != nil {
			return fmt.Errorf("relay lease: %w", err)
		}
		if !held {
			if r.surrendered.Load() {
				return errors.New("outbox relay: gave the lease up after failing to publish")
			}
			return nil // another relay holds the lease now and publishes the rest
		}
	}
	if r.cfg.retention > 0 && time.Since(r.lastCleanup) > time.Minute {
		cutoff := sqldb.Micros(time.Now().Add(-r.cfg.retention))
		if _, err := r.db.ExecContext(ctx, `DELETE FROM event_outbox WHERE sent_at IS NOT NULL AND sent_at < ?`, cutoff); err != nil {
			return fmt.Errorf("delete old sent outbox rows: %w", err)
		}
		r.lastCleanup = time.Now()
	}
	return nil
}

type outboxRow struct {
	pos int64
	ev  Event
	// trace is the stored trace context (tracing.go).
	trace sql.NullString
}

// publishBatch publishes up to one batch of unsent rows in outbox order,
// pipelined (publishPipelined), then marks the acknowledged ones sent.
// Publishing stops at the first failure so a later event of an aggregate
// is never stored before an earlier one.
func (r *Relay) publishBatch(ctx context.Context) (int, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT pos, id, event_type, aggregate_type, aggregate_id, sequence, occurred_at, producer, payload, trace_context
		FROM event_outbox WHERE sent_at IS NULL ORDER BY pos LIMIT ?`, r.cfg.batch)
	if err != nil {
		return 0, fmt.Errorf("read outbox: %w", err)
	}
	var batch []outboxRow
	for rows.Next() {
		var row outboxRow
		var at int64
		var payload string
		if err := rows.Scan(&row.pos, &row.ev.ID, &row.ev.Type, &row.ev.AggregateType, &row.ev.AggregateID, &row.ev.Sequence, &at, &row.ev.Producer, &payload, &row.trace); err != nil {
			rows.Close()
			return 0, fmt.Errorf("read outbox: %w", err)
		}
		row.ev.OccurredAt = sqldb.FromMicros(at)
		row.ev.Payload = json.RawMessage(payload)
		batch = append(batch, row)
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return 0, fmt.Errorf("read outbox: %w", err)
	}
	rows.Close()
	if len(batch) == 0 {
		return 0, nil
	}
	sent, pubErr := r.publishPipelined(ctx, batch)
	if len(sent) > 0 {
		// Marking uses a fresh context: the events are in the stream, and
		// failing to record that would only cause harmless republishing.
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err := r.markSent(mctx, sent)
		cancel()
		if err != nil {
			return 0, err
		}
	}
	if pubErr != nil {
		return 0, pubErr
	}
	return len(batch), nil
}

func (r *Relay) markSent(ctx context.Context, positions []int64) error {
	args := make([]any, 0, len(positions)+1)
	var q string
	if r.cfg.retention == 0 {
		q = `DELETE FROM event_outbox WHERE pos IN (`
	} else {
		q = `UPDATE event_outbox SET sent_at = ? WHERE pos IN (`
		args = append(args, sqldb.Micros(time.Now()))
	}
	q += strings.TrimSuffix(strings.Repeat("?,", len(positions)), ",") + ")"
	for _, p := range positions {
		args = append(args, p)
	}
	if _, err := r.db.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("mark outbox rows sent: %w", err)
	}
	return nil
}

const leaseName = "outbox"

// lease acquires or renews the relay lease; it writes only when a third
// of the lease has passed, to keep the idle cost to a write every few
// seconds.
func (r *Relay) lease(ctx context.Context) (bool, error) {
	if r.cfg.leaseTTL == 0 {
		return true, nil
	}
	if r.surrendered.Load() {
		// Given up while this cycle ran: the standby publishes now.
		r.leaseUntil = time.Time{}
		return false, nil
	}
	now := time.Now()
	if now.Before(r.leaseUntil) && now.Sub(r.lastRenew) < r.cfg.leaseTTL/3 {
		return true, nil
	}
	until := now.Add(r.cfg.leaseTTL)
	res, err := r.db.ExecContext(ctx, `UPDATE event_relay_lease SET holder = ?, expires_at = ? WHERE name = ? AND (holder = ? OR expires_at < ?)`,
		r.holder, sqldb.Micros(until), leaseName, r.holder, sqldb.Micros(now))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	if n == 0 {
		res, err = r.db.ExecContext(ctx, `INSERT INTO event_relay_lease (name, holder, expires_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING`,
			leaseName, r.holder, sqldb.Micros(until))
		if err != nil {
			return false, err
		}
		if n, err = res.RowsAffected(); err != nil {
			return false, err
		}
	}
	if n == 0 {
		if !r.leaseUntil.IsZero() {
			r.log.Info("outbox relay: another instance holds the lease; standing by")
		}
		r.leaseUntil = time.Time{}
		r.holding.Store(false)
		var expires int64
		r.takeoverAt = time.Time{}
		if err := r.db.QueryRowContext(ctx, `SELECT expires_at FROM event_relay_lease WHERE name = ?`, leaseName).Scan(&expires); err == nil {
			// Just after the holder's lease ends, unless it renews.
			r.takeoverAt = sqldb.FromMicros(expires).Add(10 * time.Millisecond)
		}
		return false, nil
	}
	if r.leaseUntil.IsZero() {
		r.log.Debug("outbox relay: lease acquired")
	}
	r.leaseUntil, r.lastRenew, r.takeoverAt = until, now, time.Time{}
	r.holding.Store(true)
	return true, nil
}

// releaseLease lets a standby relay take over at once after a clean stop.
func (r *Relay) releaseLease() {
	if r.cfg.leaseTTL == 0 || r.leaseUntil.IsZero() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := r.db.ExecContext(ctx, `UPDATE event_relay_lease SET expires_at = 0 WHERE name = ? AND holder = ?`, leaseName, r.holder); err != nil {
		r.log.Warn("outbox relay: release lease", "err", err)
	}
	r.leaseUntil = time.Time{}
	r.holding.Store(false)
}

// Unsent returns the number of outbox rows not yet published, for
// readiness checks and operators.
func (r *Relay) Unsent(ctx context.Context) (int64, error) {
	var n int64
	err := r.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM event_outbox WHERE sent_at IS NULL`).Scan(&n)
	return n, err
}

// publishPipelined publishes rows without waiting for each
// acknowledgement (JetStream PublishAsync) and returns the positions of
// the rows the stream acknowledged, and the first failure.
//
// Order per aggregate survives failures because a pipeline window holds at
// most one event per aggregate: the rows are taken in outbox order, and a
// row whose aggregate already has one in flight closes the window, whose
// acknowledgements are awaited before the next one starts. If one fails,
// nothing after its window is published; the events of other aggregates
// acknowledged meanwhile are kept (and marked sent), and the failed event
// is the first of its aggregate the next cycle publishes. Events of
// different aggregates may thus reach the stream in another order than the
// outbox's, which no consumer depends on (each checks the sequence per
// aggregate).
func (r *Relay) publishPipelined(ctx context.Context, batch []outboxRow) ([]int64, error) {
	type inflight struct {
		row  outboxRow
		fut  jetstream.PubAckFuture
		done func(error)
	}
	sent := make([]int64, 0, len(batch))
	var window []inflight
	inWindow := map[aggKey]bool{}
	// await collects the acknowledgements of the window in flight.
	await := func() error {
		timeout := time.NewTimer(r.cfg.publishTimeout)
		defer timeout.Stop()
		var first error
		// expired is closed once the timeout fired: the timer's channel
		// delivers once, and every acknowledgement still missing then is
		// as late as the first (they would otherwise wait for ever).
		expired := make(chan struct{})
		for _, p := range window {
			var err error
			var ack *jetstream.PubAck
			select {
			case ack = <-p.fut.Ok():
			case err = <-p.fut.Err():
			case <-expired:
			case <-timeout.C:
				close(expired)
			case <-ctx.Done():
				err = ctx.Err()
			}
			if ack == nil && err == nil {
				// Expired: take an answer that came meanwhile, if any.
				select {
				case ack = <-p.fut.Ok():
				case err = <-p.fut.Err():
				default:
					err = fmt.Errorf("no acknowledgement within %v", r.cfg.publishTimeout)
				}
			}
			if ack != nil && ack.Duplicate {
				r.log.Debug("outbox relay: event was already stored", "event_id", p.row.ev.ID)
			}
			p.done(err)
			if err != nil {
				r.metrics.failed()
				if first == nil {
					first = fmt.Errorf("publish event %s (%s): %w", p.row.ev.ID, p.row.ev.Type, err)
				}
				continue
			}
			r.metrics.published()
			sent = append(sent, p.row.pos)
		}
		window = window[:0]
		clear(inWindow)
		return first
	}
	for _, row := range batch {
		key := aggKey{row.ev.AggregateType, row.ev.AggregateID}
		if inWindow[key] {
			if err := await(); err != nil {
				return sent, err
			}
		}
		data, err := json.Marshal(row.ev)
		if err != nil {
			_ = await()
			return sent, fmt.Errorf("marshal event %s: %w", row.ev.ID, err)
		}
		fut, done, err := r.publishTracedAsync(ctx, Subject(r.cfg.prefix, row.ev.Type), row.ev, row.trace, data)
		if err != nil {
			r.metrics.failed()
			if werr := await(); werr != nil {
				return sent, werr
			}
			return sent, fmt.Errorf("publish event %s (%s): %w", row.ev.ID, row.ev.Type, err)
		}
		window = append(window, inflight{row: row, fut: fut, done: done})
		inWindow[key] = true
	}
	return sent, await()
}
