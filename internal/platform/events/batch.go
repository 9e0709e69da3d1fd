package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// This file holds the consumer's batch path: the messages a pull has
// delivered are applied in one transaction (the handlers' changes, the
// applied-event records, the per-aggregate progress and the stream's
// progress row), and acknowledged after the commit. The rules of the
// one-at-a-time path hold for every event of a batch (duplicates skipped,
// stale events skipped, a sequence gap refused); anything the batch cannot
// settle by itself (a handler error, a gap, an undecodable or unattributable
// message) makes it fall back to the one-at-a-time path, which retries,
// blocks or parks exactly as before, without losing or applying twice any
// other event of the batch: the batch transaction is rolled back as a
// whole, and its messages are handled one by one, in order.

// DefaultBatchSize is how many events a consumer applies in one
// transaction when ConsumerConfig.BatchSize is zero.
const DefaultBatchSize = 500

// errLeaseLost ends a stream's consumption when another instance took the
// stream's lease over (this one stalled past it).
var errLeaseLost = errors.New("another instance took over the stream's lease")

// aggKey names an aggregate.
type aggKey struct{ typ, id string }

// batchItem is one delivered message of a batch with what the checks
// before the transaction found out.
type batchItem struct {
	msg jetstream.Msg
	md  *jetstream.MsgMetadata
	ev  Event
	// redelivered marks a second copy of a message already in the batch
	// or already settled: it is only acknowledged.
	redelivered bool
	// copy marks a second message carrying an event already in the batch
	// (the relay republished it after the duplicate window).
	copy bool
	res  applyResult
	ctx  context.Context
	end  func(error)
}

// prepareBatch decodes and attributes msgs in order and returns the
// longest prefix that the batch path can apply. A message that needs the
// one-at-a-time path (no metadata, undecodable, not attributable) ends the
// prefix.
func (c *Consumer) prepareBatch(ctx context.Context, stream string, msgs []jetstream.Msg, settledSeq uint64) []batchItem {
	items := make([]batchItem, 0, len(msgs))
	seen := make(map[string]bool, len(msgs))
	maxSeq := settledSeq
	for _, msg := range msgs {
		md, err := msg.Metadata()
		if err != nil {
			break
		}
		if md.Sequence.Stream <= maxSeq {
			items = append(items, batchItem{msg: msg, md: md, redelivered: true})
			continue
		}
		var ev Event
		if err := json.Unmarshal(msg.Data(), &ev); err != nil || ev.ID == "" {
			break
		}
		if attribute(stream, msg.Subject(), ev) != nil {
			break
		}
		maxSeq = md.Sequence.Stream
		if seen[ev.ID] {
			// The relay republished an event the stream already holds
			// (after the duplicate window): the first copy applies.
			items = append(items, batchItem{msg: msg, md: md, ev: ev, copy: true})
			continue
		}
		seen[ev.ID] = true
		items = append(items, batchItem{msg: msg, md: md, ev: ev})
	}
	return items
}

// handlerError is applyBatch's failure when the handler of items[index]
// failed: that was the event's attempt, and the events before it can be
// applied without it.
type handlerError struct {
	index int
	err   error
}

func (e handlerError) Error() string { return e.err.Error() }
func (e handlerError) Unwrap() error { return e.err }

// applyBatch applies items in one transaction. It returns an error, and
// changes nothing, when any event cannot be applied by the batch path; the
// caller then handles the batch one message at a time.
func (c *Consumer) applyBatch(ctx context.Context, stream string, items []batchItem, gaps *gapPolicy) error {
	start := time.Now()
	err := c.applyBatchTx(ctx, stream, items, gaps)
	if err == nil {
		c.traceBatchTx(items, start, time.Now())
	}
	return err
}

// applyBatchTx is applyBatch's transaction.
func (c *Consumer) applyBatchTx(ctx context.Context, stream string, items []batchItem, gaps *gapPolicy) error {
	return c.cfg.DB.InTx(ctx, func(tx *sqldb.Tx) error {
		// InTx may run this again (a busy database): start afresh.
		for i := range items {
			if items[i].end != nil {
				items[i].end(errors.New("transaction retried"))
			}
			items[i].res, items[i].ctx, items[i].end = applyResult{duplicate: items[i].copy}, nil, nil
		}
		fresh, err := c.recordApplied(ctx, tx, items)
		if err != nil {
			return err
		}
		last, err := c.aggregateProgress(ctx, tx, items)
		if err != nil {
			return err
		}
		firstAllowed := func() bool { return false }
		if gaps != nil {
			var known, allowed bool
			firstAllowed = func() bool {
				if !known {
					allowed, known = gaps.firstAllowed(), true
				}
				return allowed
			}
		}
		changed := map[aggKey]*Event{}
		var batch []Event
		var newest time.Time
		var lastSeq uint64
		applied := 0
		for i := range items {
			it := &items[i]
			if it.redelivered {
				continue
			}
			lastSeq = it.md.Sequence.Stream
			if it.res.duplicate || !fresh[it.ev.ID] {
				it.res.duplicate = true
				continue
			}
			key := aggKey{it.ev.AggregateType, it.ev.AggregateID}
			prev, ok := last[key]
			switch {
			case !ok:
				if it.ev.Sequence != 1 {
					if gaps != nil && !firstAllowed() {
						return errGap{fmt.Errorf("first event of aggregate %s %s has sequence %d", it.ev.AggregateType, it.ev.AggregateID, it.ev.Sequence)}
					}
					it.res.anomaly = "first event seen of the aggregate is not its first (earlier events expired from the stream, were filtered, or are parked)"
				}
			case it.ev.Sequence <= prev:
				it.res.previous, it.res.stale = prev, true
				continue
			case it.ev.Sequence != prev+1:
				if gaps != nil {
					return errGap{fmt.Errorf("aggregate %s %s: sequence %d follows %d", it.ev.AggregateType, it.ev.AggregateID, it.ev.Sequence, prev)}
				}
				it.res.anomaly = "gap in the aggregate's sequence (events missing, filtered or parked)"
			}
			it.res.previous = prev
			it.ctx, it.end = c.startApplySpan(ctx, stream, it.msg, it.md, it.ev)
			if c.cfg.BatchHandler != nil {
				batch = append(batch, it.ev)
			} else if err := c.cfg.Handler(it.ctx, tx, it.ev); err != nil {
				return handlerError{index: i, err: err}
			}
			last[key] = it.ev.Sequence
			changed[key] = &it.ev
			if it.ev.OccurredAt.After(newest) {
				newest = it.ev.OccurredAt
			}
			applied++
		}
		if len(batch) > 0 {
			// Which event failed is not known: the caller applies the
			// batch again one event at a time, and Handler finds it.
			if err := c.cfg.BatchHandler(ctx, tx, batch); err != nil {
				return fmt.Errorf("batch handler: %w", err)
			}
		}
		if err := c.writeAggregateProgress(ctx, tx, changed); err != nil {
			return err
		}
		if lastSeq == 0 {
			return nil // only redeliveries of settled messages
		}
		return c.recordStream(ctx, tx, stream, lastSeq, newest, applied)
	})
}

// recordApplied inserts the applied-event records of items in one
// statement and returns the ids that were new (the others were applied
// before: duplicates).
func (c *Consumer) recordApplied(ctx context.Context, tx *sqldb.Tx, items []batchItem) (map[string]bool, error) {
	var b strings.Builder
	args := make([]any, 0, 6*len(items))
	now := sqldb.Micros(time.Now())
	b.WriteString(`INSERT INTO event_applied (consumer, event_id, aggregate_type, aggregate_id, sequence, applied_at) VALUES `)
	n := 0
	for _, it := range items {
		if it.redelivered || it.copy {
			continue
		}
		if n > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?)")
		args = append(args, c.cfg.Name, it.ev.ID, it.ev.AggregateType, it.ev.AggregateID, it.ev.Sequence, now)
		n++
	}
	fresh := make(map[string]bool, n)
	if n == 0 {
		return fresh, nil
	}
	b.WriteString(` ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id`)
	rows, err := tx.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("record applied events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("record applied events: %w", err)
		}
		fresh[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("record applied events: %w", err)
	}
	return fresh, nil
}

// aggregateProgress reads the last applied sequence of every aggregate of
// items, with one query per aggregate type (usually one per batch). On
// SQLite the ids are listed with IN on the last column of the primary key,
// which the index serves; an OR of (type, id) pairs made SQLite scan the
// table, so every batch cost more as the table grew. PostgreSQL, whose
// statistics of a table that grew since its last ANALYZE (a rebuild's,
// from empty) are stale, served that IN list from the key's first two
// columns and filtered every row of the type (0.4 s a batch at 6·10⁴
// aggregates); a lateral lookup per id of a VALUES list is one index
// lookup of the whole key per aggregate whatever the statistics.
func (c *Consumer) aggregateProgress(ctx context.Context, tx *sqldb.Tx, items []batchItem) (map[aggKey]int64, error) {
	out := map[aggKey]int64{}
	byType := map[string][]any{}
	var types []string
	seen := map[aggKey]bool{}
	for _, it := range items {
		key := aggKey{it.ev.AggregateType, it.ev.AggregateID}
		if it.redelivered || seen[key] {
			continue
		}
		seen[key] = true
		if _, ok := byType[key.typ]; !ok {
			types = append(types, key.typ)
		}
		byType[key.typ] = append(byType[key.typ], key.id)
	}
	for _, typ := range types {
		ids := byType[typ]
		q, args := progressQuery(tx.Dialect(), c.cfg.Name, typ, ids)
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("read consumer progress: %w", err)
		}
		for rows.Next() {
			var id string
			var last int64
			if err := rows.Scan(&id, &last); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read consumer progress: %w", err)
			}
			out[aggKey{typ, id}] = last
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("read consumer progress: %w", err)
		}
	}
	return out, nil
}

// progressQuery is aggregateProgress's query of the aggregates ids of
// type typ, and its arguments.
func progressQuery(d sqldb.Dialect, consumer, typ string, ids []any) (string, []any) {
	if d == sqldb.Postgres {
		// OFFSET 0 keeps the planner from flattening the lateral
		// subquery into a join it may hash over the whole type.
		return `SELECT p.aggregate_id, p.last_sequence FROM (VALUES ` + strings.TrimSuffix(strings.Repeat("(?),", len(ids)), ",") + `) AS k (id)
			CROSS JOIN LATERAL (SELECT aggregate_id, last_sequence FROM event_consumer_progress
				WHERE consumer = ? AND aggregate_type = ? AND aggregate_id = k.id OFFSET 0) p`,
			append(append([]any{}, ids...), consumer, typ)
	}
	return `SELECT aggregate_id, last_sequence FROM event_consumer_progress WHERE consumer = ? AND aggregate_type = ? AND aggregate_id IN (` +
		strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",") + `)`, append([]any{consumer, typ}, ids...)
}

// writeAggregateProgress upserts the last applied sequence of every
// aggregate the batch changed, in one statement.
func (c *Consumer) writeAggregateProgress(ctx context.Context, tx *sqldb.Tx, changed map[aggKey]*Event) error {
	if len(changed) == 0 {
		return nil
	}
	var b strings.Builder
	args := make([]any, 0, 6*len(changed))
	now := sqldb.Micros(time.Now())
	b.WriteString(`INSERT INTO event_consumer_progress (consumer, aggregate_type, aggregate_id, last_sequence, last_event_id, updated_at) VALUES `)
	n := 0
	for _, ev := range changed {
		if n > 0 {
			b.WriteString(", ")
		}
		n++
		b.WriteString("(?, ?, ?, ?, ?, ?)")
		args = append(args, c.cfg.Name, ev.AggregateType, ev.AggregateID, ev.Sequence, ev.ID, now)
	}
	b.WriteString(` ON CONFLICT (consumer, aggregate_type, aggregate_id) DO UPDATE SET
		last_sequence = CASE WHEN excluded.last_sequence > event_consumer_progress.last_sequence THEN excluded.last_sequence ELSE event_consumer_progress.last_sequence END,
		last_event_id = CASE WHEN excluded.last_sequence > event_consumer_progress.last_sequence THEN excluded.last_event_id ELSE event_consumer_progress.last_event_id END,
		updated_at = excluded.updated_at`)
	if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
		return fmt.Errorf("record consumer progress: %w", err)
	}
	return nil
}

// recordStream advances the stream's progress row in tx (renewing the
// lease with it: on SQLite a long batch keeps the separate renewal
// waiting on the write lock), and is the lease's fence: it changes the row only while this instance holds the
// lease, so an instance that stalled past its lease cannot commit events
// another instance is applying too.
func (c *Consumer) recordStream(ctx context.Context, tx *sqldb.Tx, stream string, seq uint64, newest time.Time, applied int) error {
	var at int64
	if !newest.IsZero() {
		at = sqldb.Micros(newest)
	}
	now := time.Now()
	res, err := tx.ExecContext(ctx, `UPDATE event_consumer_streams SET
			last_stream_sequence = CASE WHEN ? > last_stream_sequence THEN ? ELSE last_stream_sequence END,
			last_event_at = CASE WHEN ? > last_event_at THEN ? ELSE last_event_at END,
			last_applied_at = ?, applied_events = applied_events + ?, lease_until = ?
		WHERE consumer = ? AND stream = ? AND holder = ?`,
		int64(seq), int64(seq), at, at, sqldb.Micros(now), applied, sqldb.Micros(now.Add(consumerLeaseTTL)), c.cfg.Name, stream, c.holder)
	if err != nil {
		return fmt.Errorf("record stream progress: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("record stream progress: %w", err)
	} else if n == 0 {
		return errLeaseLost
	}
	return nil
}

// settleBatch acknowledges the messages of a committed batch and records
// their outcome (progress, metrics, log lines).
func (c *Consumer) settleBatch(ctx context.Context, stream string, items []batchItem) {
	for _, it := range items {
		if it.end != nil {
			it.end(nil)
		}
		if !it.redelivered {
			ectx := ctx
			if it.ctx != nil {
				ectx = it.ctx
			}
			c.settled(ectx, stream, it.ev, it.res, it.md)
		}
		_ = it.msg.Ack()
		c.moved(stream, it.md.Sequence.Stream)
	}
}

// endSpans finishes the apply spans of a batch that did not commit.
func endSpans(items []batchItem, err error) {
	for _, it := range items {
		if it.end != nil {
			it.end(err)
		}
	}
}
