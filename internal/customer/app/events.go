package app

import "github.com/realguardio/realguardio/internal/platform/events/catalog"

// AggregateType is the aggregate of every Customer Service event: the
// customer, so that all changes inside one customer are totally ordered
// (docs/events.md).
const AggregateType = catalog.AggregateCustomer

// Some of the catalogue's customer events (package catalog,
// docs/events.md) as plain strings, the eventType of the Outbox port, for
// callers that compare what the port recorded. The use cases write the
// catalogue's types and payloads directly.
const (
	EventLocationEmployeeRolesSet = string(catalog.LocationEmployeeRolesSet)
	EventTeamMemberAdded          = string(catalog.TeamMemberAdded)
	EventTeamMemberRemoved        = string(catalog.TeamMemberRemoved)
)

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
