// Package app holds the Security System Service's domain (a security system
// and its state, the audit record of decisions) and its use cases. The
// ports it needs (Repository, authz.Authorizer) are small interfaces owned
// here or in package authz; SQL and HTTP live in adapters around it.
package app

import (
	"strings"
	"time"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/events/catalog"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/securitysystem/authz"
)

// State is the state of a security system.
type State string

// The states of a security system; a new one is disarmed.
const (
	StateArmed    State = "ARMED"
	StateDisarmed State = "DISARMED"
)

// SecuritySystem is the alarm system of one location.
type SecuritySystem struct {
	ID         string
	Name       string
	LocationID string
	State      State
	// CustomerID, DealerID and MonitoringProviderID are the resource facts
	// kept on the record (AUTHZ.md, provide): set at creation from the
	// location, and kept current from events by the strategies that use
	// them.
	CustomerID           string
	DealerID             string
	MonitoringProviderID string
	CreatedAt            time.Time
	UpdatedAt            time.Time
	// Version counts the record's changes; it grows by one per update.
	Version int64
}

// Ref returns what an authorization strategy needs to know of the system.
func (s SecuritySystem) Ref() authz.SystemRef {
	return authz.SystemRef{
		ID:                   s.ID,
		LocationID:           s.LocationID,
		CustomerID:           s.CustomerID,
		DealerID:             s.DealerID,
		MonitoringProviderID: s.MonitoringProviderID,
	}
}

// Action is a state change a caller asks for.
type Action string

// The actions of PUT /securitysystems/{id}.
const (
	ActionArm    Action = authz.ActionArm
	ActionDisarm Action = authz.ActionDisarm
)

// ParseAction reads the "action" field of a request.
func ParseAction(s string) (Action, error) {
	switch Action(s) {
	case ActionArm, ActionDisarm:
		return Action(s), nil
	case "":
		return "", apperr.InvalidField("action", "is required (ARM or DISARM)")
	}
	return "", apperr.InvalidField("action", "must be ARM or DISARM, got %q", truncate(s, 32))
}

// Op returns the operation of the rule the action needs.
func (a Action) Op() policy.Op {
	if a == ActionArm {
		return policy.OpArm
	}
	return policy.OpDisarm
}

// Target returns the state the action leads to.
func (a Action) Target() State {
	if a == ActionArm {
		return StateArmed
	}
	return StateDisarmed
}

// MaxNameLength bounds a system's name.
const MaxNameLength = 200

func validateName(name string) (string, error) {
	n := strings.TrimSpace(name)
	if n == "" {
		return "", apperr.InvalidField("name", "is required")
	}
	if len([]rune(n)) > MaxNameLength {
		return "", apperr.InvalidField("name", "must be at most %d characters", MaxNameLength)
	}
	return n, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Decision outcomes recorded in the audit.
const (
	DecisionAllowed     = "allowed"
	DecisionDenied      = "denied"
	DecisionUnavailable = "unavailable"
)

// AuditEntry records one arm or disarm decision, whatever its outcome.
type AuditEntry struct {
	ID               string
	At               time.Time
	UserID           string
	SecuritySystemID string
	Action           Action
	// Decision is DecisionAllowed, DecisionDenied or DecisionUnavailable.
	Decision string
	// Reason is the denial reason (no_role, outside_schedule), or
	// "unavailable" when no decision could be made; empty when allowed.
	Reason   string
	Strategy string
}

// Event is a domain event to be written to the outbox in the same
// transaction as the change it describes (docs/events.md).
type Event struct {
	Type    string
	Payload any
}

// The Security System Service's event types as plain strings (the form of
// Event.Type and of the outbox's event_type column), and their payloads,
// for the adapters' tests that write events through the repository. The
// names and payloads are the catalogue's (package catalog,
// docs/events.md), which the use cases write directly.
const (
	EventCreated  = string(catalog.SecuritySystemCreated)
	EventArmed    = string(catalog.SecuritySystemArmed)
	EventDisarmed = string(catalog.SecuritySystemDisarmed)
)

// AggregateType is the aggregate type of the service's events.
const AggregateType = catalog.AggregateSecuritySystem

// CreatedPayload is the payload of securitysystem.created.
type CreatedPayload = catalog.SecuritySystemCreatedPayload

// StateChangedPayload is the payload of securitysystem.armed and
// securitysystem.disarmed.
type StateChangedPayload = catalog.SecuritySystemStateChangedPayload

// Key is a position in the list order (name, then id): the last row of a
// page, from which the next page continues.
type Key struct {
	Name string
	ID   string
}

// PageQuery selects one page of the systems in a scope, in (name, id)
// order, strictly after After. The filters narrow the scope; empty ones
// select everything.
type PageQuery struct {
	// Scope is the caller's view: its DealerIDs and MonitoringProviderIDs
	// match the record's own dealer_id and monitoring_provider_id (or, in
	// a store built WithOrganizationLocations, the locations its
	// subqueries select), so only a strategy that keeps those current may
	// use them.
	Scope      policy.Scope
	LocationID string
	CustomerID string
	State      State
	// NameContains keeps the systems whose name contains it, ignoring
	// case (ASCII).
	NameContains string
	// Limit is the largest number of systems returned (1 to MaxListLimit).
	Limit int
	// After is the key of the previous page's last row; nil for the first
	// page.
	After *Key
}

// Page is one page of systems and whether more follow.
type Page struct {
	Systems []SecuritySystem
	// More is true when at least one system follows the last one.
	More bool
}
