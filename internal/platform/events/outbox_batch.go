package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
