package events

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// Migrations returns the migration set "events": the outbox table, the
// per-aggregate sequence table, the relay lease, and the consumer
// bookkeeping (applied events, per-aggregate progress, parked events). Every
// service that produces or consumes events applies it next to its own set,
// because the outbox rows must live in the same database as the business
// rows they are committed with.
func Migrations() sqldb.Migrations {
	return sqldb.Migrations{Set: "events", FS: migrationsFS, Dir: "migrations"}
}

// Outbox writes a service's events into its own database, inside the
// caller's business transaction, so an event exists if and only if the
// change it describes was committed. A Relay publishes the rows afterwards;
// nothing is ever published from inside the transaction.
type Outbox struct {
	producer string
	wake     chan struct{}
}

// NewOutbox returns the outbox of producer, the service name that becomes
// every event's Producer ("customer", "dealer", "monitoring",
// "securitysystem"). Event types must start with producer + ".", because the
// producer's stream only captures those subjects.
func NewOutbox(producer string) *Outbox {
	return &Outbox{producer: producer, wake: make(chan struct{}, 1)}
}

// Producer returns the producer name the outbox stamps on its events.
func (o *Outbox) Producer() string { return o.producer }

// Append writes one event into the outbox inside tx, the caller's business
// transaction. It assigns the ID (a UUID), the Sequence (the next number of
// the aggregate, taken under a row lock so concurrent writers of one
// aggregate are serialised), OccurredAt and Producer, and marshals payload
// to JSON. It registers an after-commit hook that wakes the relay, so the
// event is published promptly once, and only if, tx commits.
func (o *Outbox) Append(ctx context.Context, tx *sqldb.Tx, aggregateType, aggregateID, eventType string, payload any) (Event, error) {
	if aggregateType == "" || aggregateID == "" {
		return Event{}, errors.New("outbox append: aggregate type and id are required")
	}
	if !strings.HasPrefix(eventType, o.producer+".") || len(eventType) == len(o.producer)+1 {
		return Event{}, fmt.Errorf("outbox append: event type %q must start with %q, the producer's subject space", eventType, o.producer+".")
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return Event{}, fmt.Errorf("outbox append %s: marshal payload: %w", eventType, err)
	}
	var seq int64
	err = tx.QueryRowContext(ctx, `INSERT INTO event_sequences (aggregate_type, aggregate_id, last_sequence) VALUES (?, ?, 1)
		ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET last_sequence = event_sequences.last_sequence + 1
		RETURNING last_sequence`, aggregateType, aggregateID).Scan(&seq)
	if err != nil {
		return Event{}, fmt.Errorf("outbox append %s: next sequence: %w", eventType, err)
	}
	ev := Event{
		ID:            uuid.NewString(),
		Type:          eventType,
		AggregateType: aggregateType,
		AggregateID:   aggregateID,
		Sequence:      seq,
		OccurredAt:    time.Now().UTC().Truncate(time.Microsecond),
		Producer:      o.producer,
		Payload:       body,
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO event_outbox (id, event_type, aggregate_type, aggregate_id, sequence, occurred_at, producer, payload, trace_context)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ev.ID, ev.Type, ev.AggregateType, ev.AggregateID, ev.Sequence, sqldb.Micros(ev.OccurredAt), ev.Producer, string(body), traceContextOf(ctx))
	if err != nil {
		return Event{}, fmt.Errorf("outbox append %s: insert: %w", eventType, err)
	}
	tx.AfterCommit(o.notify)
	return ev, nil
}

// notify wakes the relay without blocking; one pending wake-up is enough
// because the relay drains everything unsent when it wakes.
func (o *Outbox) notify() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}
