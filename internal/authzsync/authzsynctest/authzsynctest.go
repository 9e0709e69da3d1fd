// Package authzsynctest turns a policytest.World and its Changes into the
// events the owning services would publish (docs/events.md), and publishes
// them to JetStream, so tests of event consumers (the authorization sync,
// replicas) can feed a generated world through real streams without
// running the services.
package authzsynctest

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/policytest"
)

// Builder creates events with dense per-aggregate sequences, and remembers
// each location's dealer and each dealer's provider so change events can
// name the previous value as the services do. It is not safe for
// concurrent use.
type Builder struct {
	seq      map[string]int64
	dealerOf map[string]string
	provOf   map[string]string
	custOf   map[string]string
	// Now stamps OccurredAt (time.Now when nil).
	Now func() time.Time
}

// NewBuilder returns an empty builder.
func NewBuilder() *Builder {
	return &Builder{seq: map[string]int64{}, dealerOf: map[string]string{}, provOf: map[string]string{}, custOf: map[string]string{}}
}

// EmployeeID returns the employee id the builder uses for a user in an
// organization: the services assign their own, so any stable id will do.
func EmployeeID(kind policy.OrgKind, orgID, userID string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte(string(kind)+"/"+orgID+"/"+userID)).String()
}

// producerOf gives the producer, event type prefix and aggregate type of
// an organization kind.
func producerOf(kind policy.OrgKind) (producer, prefix, aggregateType, idField string) {
	switch kind {
	case policy.OrgDealer:
		return events.ProducerDealer, "dealer.", "dealer", "dealerId"
	case policy.OrgMonitoringProvider:
		return events.ProducerMonitoring, "monitoring.", "monitoring_provider", "monitoringProviderId"
	}
	return events.ProducerCustomer, "customer.", "customer", "customerId"
}

// Event builds one event of an aggregate with the next sequence number.
func (b *Builder) Event(producer, aggregateType, aggregateID, eventType string, payload map[string]any) events.Event {
	key := aggregateType + "/" + aggregateID
	b.seq[key]++
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		panic(fmt.Sprintf("authzsynctest: payload of %s: %v", eventType, err))
	}
	return events.Event{
		ID: uuid.NewString(), Type: eventType, AggregateType: aggregateType, AggregateID: aggregateID,
		Sequence: b.seq[key], OccurredAt: now().UTC(), Producer: producer, Payload: raw,
	}
}

// OrgEvent builds an event of an organization: the payload gets the
// organization's id field (customerId, dealerId or monitoringProviderId).
func (b *Builder) OrgEvent(kind policy.OrgKind, orgID, name string, payload map[string]any) events.Event {
	producer, prefix, aggType, idField := producerOf(kind)
	if payload == nil {
		payload = map[string]any{}
	}
	payload[idField] = orgID
	return b.Event(producer, aggType, orgID, prefix+name, payload)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func roles(rs []string) []string {
	if rs == nil {
		return []string{}
	}
	return rs
}

// EmployeeEvent builds an employee event (employee_created, _removed,
// _roles_set, _schedule_set, _schedule_cleared) with employeeId and
// userId; extra adds fields such as roles or schedule.
func (b *Builder) EmployeeEvent(kind policy.OrgKind, orgID, userID, name string, extra map[string]any) events.Event {
	payload := map[string]any{"employeeId": EmployeeID(kind, orgID, userID), "userId": userID}
	for k, v := range extra {
		payload[k] = v
	}
	return b.OrgEvent(kind, orgID, name, payload)
}

// World returns the events that build w from nothing, in an order the
// services could have produced them: organizations, then their employees,
// locations, teams and roles, then the security systems.
func (b *Builder) World(w *policytest.World) []events.Event {
	var out []events.Event
	for _, p := range w.MonitoringProviders {
		out = append(out, b.OrgEvent(policy.OrgMonitoringProvider, p.ID, "provider_created", map[string]any{"name": "provider"}))
	}
	for _, d := range w.Dealers {
		out = append(out, b.OrgEvent(policy.OrgDealer, d.ID, "created", map[string]any{"name": "dealer"}))
		if d.MonitoringProviderID != "" {
			out = append(out, b.DealerProvider(d.ID, d.MonitoringProviderID))
		}
	}
	for _, c := range w.Customers {
		out = append(out, b.OrgEvent(policy.OrgCustomer, c.ID, "created", map[string]any{"name": "customer"}))
	}
	for _, e := range w.Employees {
		out = append(out, b.EmployeeEvent(e.OrgKind, e.OrgID, e.UserID, "employee_created",
			map[string]any{"email": e.UserID + "@example.com", "firstName": "F", "lastName": "L"}))
		out = append(out, b.EmployeeEvent(e.OrgKind, e.OrgID, e.UserID, "employee_roles_set", map[string]any{"roles": roles(e.Roles)}))
		if e.Schedule != nil {
			out = append(out, b.Schedule(e.OrgKind, e.OrgID, e.UserID, e.Schedule))
		}
	}
	for _, l := range w.Locations {
		b.custOf[l.ID] = l.CustomerID
		b.dealerOf[l.ID] = l.DealerID
		out = append(out, b.OrgEvent(policy.OrgCustomer, l.CustomerID, "location_created",
			map[string]any{"locationId": l.ID, "name": "location", "dealerId": nullable(l.DealerID)}))
	}
	for _, t := range w.Teams {
		out = append(out, b.OrgEvent(policy.OrgCustomer, t.CustomerID, "team_created", map[string]any{"teamId": t.ID, "name": "team"}))
		for _, m := range t.Members {
			out = append(out, b.TeamMember(t.CustomerID, t.ID, m, true))
		}
	}
	for _, r := range w.EmployeeLocationRoles {
		out = append(out, b.EmployeeLocationRoles(b.custOf[r.LocationID], r.LocationID, r.UserID, r.Roles))
	}
	for _, r := range w.TeamLocationRoles {
		out = append(out, b.TeamLocationRoles(b.custOf[r.LocationID], r.LocationID, r.TeamID, r.Roles))
	}
	for _, s := range w.SecuritySystems {
		out = append(out, b.SystemCreated(s.ID, s.LocationID, b.custOf[s.LocationID]))
	}
	return out
}

// DealerProvider builds dealer.monitoring_provider_set ("" clears) with
// the previous provider the builder remembers.
func (b *Builder) DealerProvider(dealerID, providerID string) events.Event {
	prev := b.provOf[dealerID]
	b.provOf[dealerID] = providerID
	return b.OrgEvent(policy.OrgDealer, dealerID, "monitoring_provider_set",
		map[string]any{"monitoringProviderId": nullable(providerID), "previousMonitoringProviderId": nullable(prev)})
}

// LocationDealer builds customer.location_dealer_changed ("" clears) with
// the previous dealer the builder remembers.
func (b *Builder) LocationDealer(customerID, locationID, dealerID string) events.Event {
	prev := b.dealerOf[locationID]
	b.dealerOf[locationID] = dealerID
	b.custOf[locationID] = customerID
	return b.OrgEvent(policy.OrgCustomer, customerID, "location_dealer_changed",
		map[string]any{"locationId": locationID, "dealerId": nullable(dealerID), "previousDealerId": nullable(prev)})
}

// Schedule builds employee_schedule_set, or employee_schedule_cleared when
// s is nil.
func (b *Builder) Schedule(kind policy.OrgKind, orgID, userID string, s *policy.Schedule) events.Event {
	if s == nil {
		return b.EmployeeEvent(kind, orgID, userID, "employee_schedule_cleared", nil)
	}
	return b.EmployeeEvent(kind, orgID, userID, "employee_schedule_set", map[string]any{"schedule": s})
}

// TeamMember builds customer.team_member_added or _removed.
func (b *Builder) TeamMember(customerID, teamID, userID string, added bool) events.Event {
	name := "team_member_removed"
	if added {
		name = "team_member_added"
	}
	return b.OrgEvent(policy.OrgCustomer, customerID, name, map[string]any{
		"teamId": teamID, "employeeId": EmployeeID(policy.OrgCustomer, customerID, userID), "userId": userID,
	})
}

// EmployeeLocationRoles builds customer.location_employee_roles_set.
func (b *Builder) EmployeeLocationRoles(customerID, locationID, userID string, rs []string) events.Event {
	return b.OrgEvent(policy.OrgCustomer, customerID, "location_employee_roles_set", map[string]any{
		"locationId": locationID, "employeeId": EmployeeID(policy.OrgCustomer, customerID, userID), "userId": userID, "roles": roles(rs),
	})
}

// TeamLocationRoles builds customer.location_team_roles_set.
func (b *Builder) TeamLocationRoles(customerID, locationID, teamID string, rs []string) events.Event {
	return b.OrgEvent(policy.OrgCustomer, customerID, "location_team_roles_set", map[string]any{
		"locationId": locationID, "teamId": teamID, "roles": roles(rs),
	})
}

// SystemCreated builds securitysystem.created.
func (b *Builder) SystemCreated(systemID, locationID, customerID string) events.Event {
	return b.Event(events.ProducerSecuritySystem, "security_system", systemID, "securitysystem.created", map[string]any{
		"securitySystemId": systemID, "name": "system", "locationId": locationID, "customerId": customerID, "actorUserId": uuid.NewString(),
	})
}

// Change returns the events of one policytest change, as the owning
// service would publish them.
func (b *Builder) Change(c policytest.Change) []events.Event {
	switch c.Kind {
	case policytest.ChangeOrgRoles:
		return []events.Event{b.EmployeeEvent(c.OrgKind, c.OrgID, c.UserID, "employee_roles_set", map[string]any{"roles": roles(c.Roles)})}
	case policytest.ChangeSchedule:
		return []events.Event{b.Schedule(c.OrgKind, c.OrgID, c.UserID, c.Schedule)}
	case policytest.ChangeEmployeeLocationRoles:
		return []events.Event{b.EmployeeLocationRoles(c.CustomerID, c.LocationID, c.UserID, c.Roles)}
	case policytest.ChangeTeamLocationRoles:
		return []events.Event{b.TeamLocationRoles(c.CustomerID, c.LocationID, c.TeamID, c.Roles)}
	case policytest.ChangeLocationDealer:
		return []events.Event{b.LocationDealer(c.CustomerID, c.LocationID, c.DealerID)}
	case policytest.ChangeTeamMemberAdded, policytest.ChangeTeamMemberRemoved:
		return []events.Event{b.TeamMember(c.CustomerID, c.TeamID, c.UserID, c.Kind == policytest.ChangeTeamMemberAdded)}
	case policytest.ChangeDealerProvider:
		return []events.Event{b.DealerProvider(c.DealerID, c.MonitoringProviderID)}
	}
	panic(fmt.Sprintf("authzsynctest: unknown change kind %q", c.Kind))
}

// Publish publishes evs in order on the streams under prefix, each with
// its id as the de-duplication id, as the outbox relay does.
func Publish(ctx context.Context, js jetstream.JetStream, prefix string, evs ...events.Event) error {
	for _, ev := range evs {
		if err := PublishAs(ctx, js, prefix, ev, ev.ID); err != nil {
			return err
		}
	}
	return nil
}

// PublishAs publishes ev with msgID as the de-duplication id: a test that
// republishes an applied event under another msgID gets it past
// JetStream's duplicate window, to the consumer's own idempotence.
func PublishAs(ctx context.Context, js jetstream.JetStream, prefix string, ev events.Event, msgID string) error {
	raw, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	if _, err := js.Publish(ctx, events.Subject(prefix, ev.Type), raw, jetstream.WithMsgID(msgID)); err != nil {
		return fmt.Errorf("publish %s: %w", ev.Type, err)
	}
	return nil
}
