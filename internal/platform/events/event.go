// Package events is RealGuardIO's event backbone: the one event envelope,
// the transactional outbox every service writes its events to, the relay
// that publishes them to NATS JetStream, and durable, idempotent consumers.
package events

import (
	"encoding/json"
	"time"
)

// Event is the envelope of every domain event (docs/events.md lists the
// types and payloads).
type Event struct {
	// ID is a UUID, unique per event; it is JetStream's de-duplication id
	// and the key consumers record to apply each event once.
	ID string `json:"id"`
	// Type names the event, for example "customer.employee_roles_set".
	Type string `json:"type"`
	// AggregateType and AggregateID name the entity the event is about;
	// events of one aggregate are delivered in order.
	AggregateType string `json:"aggregateType"`
	AggregateID   string `json:"aggregateId"`
	// Sequence is the event's position among its aggregate's events,
	// starting at 1, assigned by the outbox.
	Sequence int64 `json:"sequence"`
	// OccurredAt is when the change was committed (UTC).
	OccurredAt time.Time `json:"occurredAt"`
	// Producer names the service that emitted the event ("customer",
	// "dealer", "monitoring", "securitysystem").
	Producer string `json:"producer"`
	// Payload is the event-type specific body.
	Payload json.RawMessage `json:"payload"`
}
