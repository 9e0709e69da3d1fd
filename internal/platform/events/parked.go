package events

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// ParkedEvent is an event a consumer gave up on after MaxDeliver failed
// attempts. It stays until an operator replays it, because dropping it
// would leave the consumer's state silently wrong.
type ParkedEvent struct {
	// Consumer is the consumer's name.
	Consumer string
	// EventID is the event's id ("stream:sequence" for an undecodable one).
	EventID string
	// Event is the message as received, normally the Event JSON.
	Event json.RawMessage
	// Error is the last handler error.
	Error string
	// Attempts is how many times the event was tried.
	Attempts int64
	// ParkedAt is when it was parked (UTC).
	ParkedAt time.Time
}

// ListParked returns the events consumer parked, oldest first, for
// operators.
func ListParked(ctx context.Context, db *sqldb.DB, consumer string) ([]ParkedEvent, error) {
	rows, err := db.QueryContext(ctx, `SELECT event_id, event, error, attempts, parked_at FROM event_parked WHERE consumer = ? ORDER BY parked_at, event_id`, consumer)
	if err != nil {
		return nil, fmt.Errorf("list parked events: %w", err)
	}
	defer rows.Close()
	var out []ParkedEvent
	for rows.Next() {
		p := ParkedEvent{Consumer: consumer}
		var body string
		var at int64
		if err := rows.Scan(&p.EventID, &body, &p.Error, &p.Attempts, &at); err != nil {
			return nil, fmt.Errorf("list parked events: %w", err)
		}
		p.Event = json.RawMessage(body)
		p.ParkedAt = sqldb.FromMicros(at)
		out = append(out, p)
	}
	return out, rows.Err()
}

// ErrNotParked is returned by Replay when the consumer has no parked event
// with the given id.
var ErrNotParked = errors.New("no such parked event")

// ReplayOption changes how Replay treats a stale parked event.
type ReplayOption func(*staleMode)

// ApplyStale makes Replay apply a parked event even though a later event
// of its aggregate was applied meanwhile. The handler then runs on state
// newer than the event and may roll it back (re-grant what a later event
// revoked): only for an operator who checked that the event's effect is
// still wanted.
func ApplyStale() ReplayOption { return func(m *staleMode) { *m = staleApply } }

// DiscardStale makes Replay remove a stale parked event without applying
// it: the later events already applied carry the aggregate's newer state.
func DiscardStale() ReplayOption { return func(m *staleMode) { *m = staleDiscard } }

// Replay re-runs h, the consumer's handler, for the parked event eventID,
// with the same bookkeeping as normal delivery, and removes the event from
// the parked table in the same transaction when it succeeds. On failure the
// event stays parked with the new error and one more attempt counted.
//
// A parked event is usually stale by the time it is replayed: later events
// of its aggregate were applied while it was parked. Applying it then would
// undo them, so by default Replay refuses it with ErrStale (the event stays
// parked) and the operator decides: DiscardStale drops it, ApplyStale
// applies it anyway.
func Replay(ctx context.Context, db *sqldb.DB, consumer, eventID string, h Handler, opts ...ReplayOption) error {
	mode := staleRefuse
	for _, o := range opts {
		o(&mode)
	}
	var body string
	err := db.QueryRowContext(ctx, `SELECT event FROM event_parked WHERE consumer = ? AND event_id = ?`, consumer, eventID).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("replay %s for %s: %w", eventID, consumer, ErrNotParked)
	}
	if err != nil {
		return fmt.Errorf("replay %s for %s: %w", eventID, consumer, err)
	}
	var ev Event
	if err := json.Unmarshal([]byte(body), &ev); err != nil || ev.ID == "" {
		return fmt.Errorf("replay %s for %s: the parked message is not an event; delete it by hand once understood", eventID, consumer)
	}
	_, err = apply(ctx, db, consumer, h, ev, mode, nil, func(tx *sqldb.Tx, _ applyResult) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM event_parked WHERE consumer = ? AND event_id = ?`, consumer, eventID)
		return err
	})
	if err != nil {
		if _, uerr := db.ExecContext(ctx, `UPDATE event_parked SET error = ?, attempts = attempts + 1 WHERE consumer = ? AND event_id = ?`, err.Error(), consumer, eventID); uerr != nil {
			return fmt.Errorf("replay %s for %s: %w (and recording the failure: %v)", eventID, consumer, err, uerr)
		}
		return fmt.Errorf("replay %s for %s: %w", eventID, consumer, err)
	}
	return nil
}
