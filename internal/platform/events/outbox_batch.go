package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// Pending is one event of an AppendBatch: its type and payload.
type Pending struct {
	Type    string
	Payload any
}

// batchRows bounds the rows of one multi-row outbox insert: eight values a
// row stay far under SQLite's and PostgreSQL's limits on bound values.
const batchRows = 500

// AppendBatch writes the events of one aggregate into the outbox inside tx,
// exactly as that many Append calls in order would (same ids, consecutive
// sequences, same rows, one relay wake-up), but with one sequence update
// for all of them and multi-row inserts, so a bulk import of thousands of
// items writes its events in a handful of statements instead of two per
// event. Consumers cannot tell the difference.
func (o *Outbox) AppendBatch(ctx context.Context, tx *sqldb.Tx, aggregateType, aggregateID string, batch []Pending) ([]Event, error) {
	if aggregateType == "" || aggregateID == "" {
		return nil, errors.New("outbox append: aggregate type and id are required")
	}
	if len(batch) == 0 {
		return []Event{}, nil
	}
	evs := make([]Event, len(batch))
	now := time.Now().UTC().Truncate(time.Microsecond)
	for i, p := range batch {
		if !strings.HasPrefix(p.Type, o.producer+".") || len(p.Type) == len(o.producer)+1 {
			return nil, fmt.Errorf("outbox append: event type %q must start with %q, the producer's subject space", p.Type, o.producer+".")
		}
		body, err := json.Marshal(p.Payload)
		if err != nil {
			return nil, fmt.Errorf("outbox append %s: marshal payload: %w", p.Type, err)
		}
		evs[i] = Event{ID: uuid.NewString(), Type: p.Type, AggregateType: aggregateType, AggregateID: aggregateID,
			OccurredAt: now, Producer: o.producer, Payload: body}
	}
	n := int64(len(batch))
	var last int64
	err := tx.QueryRowContext(ctx, `INSERT INTO event_sequences (aggregate_type, aggregate_id, last_sequence) VALUES (?, ?, ?)
		ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET last_sequence = event_sequences.last_sequence + ?
		RETURNING last_sequence`, aggregateType, aggregateID, n, n).Scan(&last)
	if err != nil {
		return nil, fmt.Errorf("outbox append: next sequences: %w", err)
	}
	for i := range evs {
		evs[i].Sequence = last - n + 1 + int64(i)
	}
	for start := 0; start < len(evs); start += batchRows {
		part := evs[start:min(start+batchRows, len(evs))]
		args := make([]any, 0, 8*len(part))
		for _, ev := range part {
			args = append(args, ev.ID, ev.Type, ev.AggregateType, ev.AggregateID, ev.Sequence, sqldb.Micros(ev.OccurredAt), ev.Producer, string(ev.Payload))
		}
		// Rows of one multi-row INSERT take their pos in VALUES order on
		// both engines, so the publish order is the order of batch.
		q := `INSERT INTO event_outbox (id, event_type, aggregate_type, aggregate_id, sequence, occurred_at, producer, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)` +
			strings.Repeat(", (?, ?, ?, ?, ?, ?, ?, ?)", len(part)-1)
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return nil, fmt.Errorf("outbox append: insert: %w", err)
		}
	}
	tx.AfterCommit(o.notify)
	return evs, nil
}

// AggregatePending is one event of an AppendMany: the aggregate it belongs
// to, its type and its payload.
type AggregatePending struct {
	AggregateType string
	AggregateID   string
	Type          string
	Payload       any
}

// sequenceRows bounds the aggregates of one multi-row sequence upsert
// (three values a row).
const sequenceRows = 500

// AppendMany writes the events of many aggregates into the outbox inside
// tx, exactly as that many Append calls in order would: each aggregate's
// events get the next consecutive sequences of that aggregate, in the
// order they appear in batch, and the outbox rows keep the order of batch.
// It is the bulk import's path, where every created item is its own
// aggregate: one multi-row sequence upsert per sequenceRows aggregates and
// one multi-row insert per batchRows events, instead of two statements per
// event. The sequence rows are taken in key order, so two concurrent
// batches over overlapping aggregates cannot deadlock on PostgreSQL.
func (o *Outbox) AppendMany(ctx context.Context, tx *sqldb.Tx, batch []AggregatePending) ([]Event, error) {
	if len(batch) == 0 {
		return []Event{}, nil
	}
	type key struct{ typ, id string }
	counts := map[key]int64{}
	evs := make([]Event, len(batch))
	now := time.Now().UTC().Truncate(time.Microsecond)
	for i, p := range batch {
		if p.AggregateType == "" || p.AggregateID == "" {
			return nil, fmt.Errorf("outbox append: event %d: aggregate type and id are required", i)
		}
		if !strings.HasPrefix(p.Type, o.producer+".") || len(p.Type) == len(o.producer)+1 {
			return nil, fmt.Errorf("outbox append: event type %q must start with %q, the producer's subject space", p.Type, o.producer+".")
		}
		body, err := json.Marshal(p.Payload)
		if err != nil {
			return nil, fmt.Errorf("outbox append %s: marshal payload: %w", p.Type, err)
		}
		evs[i] = Event{ID: uuid.NewString(), Type: p.Type, AggregateType: p.AggregateType, AggregateID: p.AggregateID,
			OccurredAt: now, Producer: o.producer, Payload: body}
		counts[key{p.AggregateType, p.AggregateID}]++
	}
	keys := make([]key, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		if c := strings.Compare(a.typ, b.typ); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	// next is the first sequence of each aggregate's events in this batch;
	// it moves on as the events are numbered below.
	next := make(map[key]int64, len(keys))
	for start := 0; start < len(keys); start += sequenceRows {
		part := keys[start:min(start+sequenceRows, len(keys))]
		args := make([]any, 0, 3*len(part))
		for _, k := range part {
			args = append(args, k.typ, k.id, counts[k])
		}
		// One statement holds each aggregate once (PostgreSQL refuses to
		// update a row twice in one INSERT … ON CONFLICT), and RETURNING
		// names its rows, since neither engine promises their order.
		q := `INSERT INTO event_sequences (aggregate_type, aggregate_id, last_sequence) VALUES (?, ?, ?)` +
			strings.Repeat(", (?, ?, ?)", len(part)-1) +
			` ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET last_sequence = event_sequences.last_sequence + excluded.last_sequence
			RETURNING aggregate_type, aggregate_id, last_sequence`
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("outbox append: next sequences: %w", err)
		}
		for rows.Next() {
			var k key
			var last int64
			if err := rows.Scan(&k.typ, &k.id, &last); err != nil {
				rows.Close()
				return nil, fmt.Errorf("outbox append: next sequences: %w", err)
			}
			next[k] = last - counts[k] + 1
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("outbox append: next sequences: %w", err)
		}
	}
	if len(next) != len(keys) {
		return nil, fmt.Errorf("outbox append: next sequences: %d of %d aggregates answered", len(next), len(keys))
	}
	for i := range evs {
		k := key{evs[i].AggregateType, evs[i].AggregateID}
		evs[i].Sequence = next[k]
		next[k]++
	}
	trace := traceContextOf(ctx)
	for start := 0; start < len(evs); start += batchRows {
		part := evs[start:min(start+batchRows, len(evs))]
		args := make([]any, 0, 9*len(part))
		for _, ev := range part {
			args = append(args, ev.ID, ev.Type, ev.AggregateType, ev.AggregateID, ev.Sequence, sqldb.Micros(ev.OccurredAt), ev.Producer, string(ev.Payload), trace)
		}
		// Rows of one multi-row INSERT take their pos in VALUES order on
		// both engines, so the publish order is the order of batch.
		q := `INSERT INTO event_outbox (id, event_type, aggregate_type, aggregate_id, sequence, occurred_at, producer, payload, trace_context) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)` +
			strings.Repeat(", (?, ?, ?, ?, ?, ?, ?, ?, ?)", len(part)-1)
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return nil, fmt.Errorf("outbox append: insert: %w", err)
		}
	}
	tx.AfterCommit(o.notify)
	return evs, nil
}
