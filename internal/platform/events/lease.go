package events

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// Instances of a service share their consumers' durables. A durable
// consumer delivering batches would hand one instance some events of a
// stream while another still applies earlier ones, so per stream one
// instance at a time consumes: it holds the lease in the stream's row of
// event_consumer_streams, renews it every second, and every transaction
// that applies events checks it still does (recordStream), so an instance
// that stalled past its lease cannot commit. The others stand by and take
// over when the lease expires (at most consumerLeaseTTL after a crash) or
// at once when the holder stops cleanly and releases it.

// consumerLeaseTTL is how long a stream lease lasts without renewal.
const consumerLeaseTTL = 3 * time.Second

// ensureStreamRow creates the stream's progress row if it is missing.
func (c *Consumer) ensureStreamRow(ctx context.Context, stream string) error {
	_, err := c.cfg.DB.ExecContext(ctx, `INSERT INTO event_consumer_streams (consumer, stream, holder, lease_until, last_stream_sequence, last_event_at, last_applied_at, applied_events)
		VALUES (?, ?, '', 0, 0, 0, 0, 0) ON CONFLICT (consumer, stream) DO NOTHING`, c.cfg.Name, stream)
	if err != nil {
		return fmt.Errorf("stream row of %s: %w", stream, err)
	}
	return nil
}

// tryLease takes or renews the lease of stream. It reports whether this
// instance holds it and whether it took it from another holder that never
// released it (whose messages JetStream still counts as outstanding).
func (c *Consumer) tryLease(ctx context.Context, stream string) (held, takeover bool, err error) {
	now := time.Now()
	var prev string
	if err := c.cfg.DB.QueryRowContext(ctx, `SELECT holder FROM event_consumer_streams WHERE consumer = ? AND stream = ?`, c.cfg.Name, stream).Scan(&prev); err != nil {
		return false, false, fmt.Errorf("read the lease of %s: %w", stream, err)
	}
	res, err := c.cfg.DB.ExecContext(ctx, `UPDATE event_consumer_streams SET holder = ?, lease_until = ?
		WHERE consumer = ? AND stream = ? AND (holder = ? OR holder = '' OR lease_until < ?)`,
		c.holder, sqldb.Micros(now.Add(consumerLeaseTTL)), c.cfg.Name, stream, c.holder, sqldb.Micros(now))
	if err != nil {
		return false, false, fmt.Errorf("take the lease of %s: %w", stream, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, false, fmt.Errorf("take the lease of %s: %w", stream, err)
	}
	return n == 1, n == 1 && prev != "" && prev != c.holder, nil
}

// acquireLease waits until this instance holds the lease of stream,
// keeping the stream's pending count current meanwhile (a standby reports
// the lag of the instance applying). It returns with ctx's end too.
func (c *Consumer) acquireLease(ctx context.Context, stream string, cons jetstream.Consumer) (takeover bool, err error) {
	if err := c.ensureStreamRow(ctx, stream); err != nil {
		return false, err
	}
	if _, err := c.loadStreamProgress(ctx, stream); err != nil {
		return false, err
	}
	standby := false
	for {
		held, takeover, err := c.tryLease(ctx, stream)
		if err != nil {
			return false, err
		}
		if held {
			if standby {
				c.log.Info("events consumer: took over the stream from another instance", "stream", stream)
			}
			return takeover, nil
		}
		if !standby {
			c.log.Info("events consumer: another instance consumes the stream; standing by", "stream", stream)
			standby = true
		}
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		info, ierr := cons.Info(ictx)
		cancel()
		if ierr == nil {
			c.observe(stream, info, 0, true)
		}
		select {
		case <-ctx.Done():
			return false, nil
		case <-time.After(consumerLeaseTTL / 3):
		}
	}
}

// renewLease renews the lease of stream every third of its time to live
// until ctx ends; when the lease is lost (another instance holds it) it
// calls lose with errLeaseLost. A renewal that fails (a busy or unreachable
// database: on SQLite another stream's batch holds the write lock) is
// retried and does not stop consumption: whatever this instance applies
// goes through a transaction that checks it still holds the lease
// (recordStream), and renews it.
func (c *Consumer) renewLease(ctx context.Context, stream string, lose context.CancelCauseFunc) {
	t := time.NewTicker(consumerLeaseTTL / 3)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, consumerLeaseTTL)
		now := time.Now()
		res, err := c.cfg.DB.ExecContext(rctx, `UPDATE event_consumer_streams SET lease_until = ? WHERE consumer = ? AND stream = ? AND holder = ?`,
			sqldb.Micros(now.Add(consumerLeaseTTL)), c.cfg.Name, stream, c.holder)
		cancel()
		if ctx.Err() != nil {
			return
		}
		var n int64
		if err == nil {
			n, err = res.RowsAffected()
		}
		switch {
		case err != nil:
			if !failing {
				c.log.Warn("events consumer: cannot renew the stream lease; retrying", "stream", stream, "err", err)
				failing = true
			}
		case n == 1:
			failing = false
		default:
			c.log.Warn("events consumer: another instance took the stream over", "stream", stream)
			lose(errLeaseLost)
			return
		}
	}
}

// releaseLease lets another instance take the stream over at once after a
// clean stop (its messages were given back already).
func (c *Consumer) releaseLease(stream string) {
	if c.holding.Load() {
		// HoldLeases keeps the leases until its release: a run that ends
		// inside a rebuild must not open a gap for another instance.
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := c.cfg.DB.ExecContext(ctx, `UPDATE event_consumer_streams SET holder = '', lease_until = 0 WHERE consumer = ? AND stream = ? AND holder = ?`,
		c.cfg.Name, stream, c.holder); err != nil {
		c.log.Warn("events consumer: release the stream lease", "stream", stream, "err", err)
	}
}

// loadStreamProgress sets the in-memory progress of stream from its row,
// so the lag is right from the start of a run, and returns the stream
// sequence of the last message settled.
func (c *Consumer) loadStreamProgress(ctx context.Context, stream string) (uint64, error) {
	var lastEvent, lastApplied, lastSeq int64
	if err := c.cfg.DB.QueryRowContext(ctx, `SELECT last_event_at, last_applied_at, last_stream_sequence FROM event_consumer_streams WHERE consumer = ? AND stream = ?`,
		c.cfg.Name, stream).Scan(&lastEvent, &lastApplied, &lastSeq); err != nil {
		return 0, fmt.Errorf("stream row of %s: %w", stream, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.progress[stream]
	if lastEvent > 0 && sqldb.FromMicros(lastEvent).After(p.LastEventTime) {
		p.LastEventTime, p.LastAppliedAt = sqldb.FromMicros(lastEvent), sqldb.FromMicros(lastApplied)
	}
	return uint64(max(lastSeq, 0)), nil
}

// errOutOfOrder ends a stream's consumption when a message arrived ahead of
// an earlier one still outstanding (left by an earlier pull): applying it
// would apply events out of order, so the consumer gives its messages back
// and pulls again once JetStream offers the earlier one.
var errOutOfOrder = errors.New("a message arrived ahead of an earlier one still outstanding; pulling again")

// inOrder returns how many messages at the head of msgs follow settled
// without a hole: on a stream the consumer reads whole (no FilterSubjects)
// every stream sequence after settled is its, so a jump is allowed only
// over messages the stream no longer holds (expired or deleted).
func (c *Consumer) inOrder(ctx context.Context, stream string, msgs []jetstream.Msg, settled uint64) int {
	if len(c.cfg.FilterSubjects) > 0 {
		return len(msgs)
	}
	next := settled + 1
	for i, m := range msgs {
		md, err := m.Metadata()
		if err != nil {
			return i
		}
		seq := md.Sequence.Stream
		switch {
		case seq < next:
			continue // a copy of a settled message
		case seq == next || settled == 0 && c.holdsNothingBefore(ctx, stream, seq, 1):
			next = seq + 1
		case c.holdsNothingBefore(ctx, stream, seq, next):
			next = seq + 1
		default:
			return i
		}
	}
	return len(msgs)
}

// holdsNothingBefore reports whether stream holds none of the sequences
// from..seq-1. Errors count as no: the consumer pulls again rather than
// risk applying out of order.
func (c *Consumer) holdsNothingBefore(ctx context.Context, stream string, seq, from uint64) bool {
	if seq <= from {
		return true
	}
	info, err := c.streamState(ctx, stream)
	if err != nil {
		return false
	}
	deleted := make(map[uint64]bool, len(info.State.Deleted))
	for _, d := range info.State.Deleted {
		deleted[d] = true
	}
	for q := from; q < seq; q++ {
		if q >= info.State.FirstSeq && !deleted[q] {
			return false
		}
	}
	return true
}

// streamState reads stream's state with the sequences deleted from it,
// bounded by 5 s: the two questions about what the stream still holds
// (removedFromStream, holdsNothingBefore) answer from it.
func (c *Consumer) streamState(ctx context.Context, stream string) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := c.cfg.JS.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	return s.Info(ctx, jetstream.WithDeletedDetails(true))
}

// RunningError is Reset's refusal while an instance of the consumer (in
// this process or another) consumes one of its streams: deleting the
// durables and the bookkeeping under it would make it apply events twice
// or lose them.
type RunningError struct {
	// Consumer is the consumer's name.
	Consumer string
	// Holder is the id of the instance holding the lease.
	Holder string
	// Stream is a stream whose lease is held.
	Stream string
	// Until is when that lease expires unless renewed.
	Until time.Time
}

// Error says what runs and what to do.
func (e *RunningError) Error() string {
	return fmt.Sprintf("events consumer %s is running: an instance consumes stream %s (its lease runs until %s); stop the service that runs it first",
		e.Consumer, e.Stream, e.Until.UTC().Format(time.RFC3339))
}

// checkNotRunningElsewhere returns a *RunningError when a live lease of
// one of the consumer's streams is held by another instance (this one
// holds them during a rebuild, HoldLeases). A lease left by an instance that
// died stops counting once expired (at most consumerLeaseTTL).
func (c *Consumer) checkNotRunningElsewhere(ctx context.Context) error {
	now := sqldb.Micros(time.Now())
	for _, stream := range c.cfg.Streams {
		var holder string
		var until int64
		err := c.cfg.DB.QueryRowContext(ctx, `SELECT holder, lease_until FROM event_consumer_streams WHERE consumer = ? AND stream = ?`,
			c.cfg.Name, stream).Scan(&holder, &until)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return fmt.Errorf("events consumer %s: read the lease of %s: %w", c.cfg.Name, stream, err)
		}
		if holder != "" && holder != c.holder && until >= now {
			return &RunningError{Consumer: c.cfg.Name, Holder: holder, Stream: stream, Until: sqldb.FromMicros(until)}
		}
	}
	return nil
}
