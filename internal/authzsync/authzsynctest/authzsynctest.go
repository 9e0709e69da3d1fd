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
	"github.com/realguardio/realguardio/internal/platform/events/catalog"
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

// orgOf is the catalogue's event vocabulary of an organization kind.
func orgOf(kind policy.OrgKind) catalog.Organization {
	o, ok := catalog.OrganizationOfKind(string(kind))
	if !ok {
		panic(fmt.Sprintf("authzsynctest: %q is not a kind of organization", kind))
	}
	return o
}

// Event builds one event of an aggregate with the next sequence number.
// payload is marshalled as it is: the catalogue's payload struct of the
// type, or a map for an event outside the catalogue or a malformed one.
func (b *Builder) Event(producer, aggregateType, aggregateID, eventType string, payload any) events.Event {
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

// Typed builds an event of the catalogue: type t, of the aggregate
// aggregateID of t's producer, with p, t's payload struct.
func (b *Builder) Typed(t catalog.Type, aggregateID string, p any) events.Event {
	aggType, _ := catalog.AggregateTypeOf(t.Producer())
	return b.Event(t.Producer(), aggType, aggregateID, string(t), p)
}

// OrgEvent builds an event of an organization from an untyped payload, for
// tests that need one outside the catalogue or a malformed one: the
// payload gets the organization's id field (customerId, dealerId or
// monitoringProviderId) and the type is the kind's producer, a dot and
// name.
func (b *Builder) OrgEvent(kind policy.OrgKind, orgID, name string, payload map[string]any) events.Event {
	o := orgOf(kind)
	if payload == nil {
		payload = map[string]any{}
	}
	payload[o.IDField] = orgID
	return b.Event(o.Producer, o.AggregateType, orgID, o.Producer+"."+name, payload)
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func roles(rs []string) []string {
	if rs == nil {
		return []string{}
	}
	return rs
}

// EmployeeEvent builds an employee event (employee_created, _removed,
// _roles_set, _schedule_set, _schedule_cleared) from an untyped payload
// with employeeId and userId, for tests that need a malformed one; extra
// adds fields such as roles or schedule.
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
		out = append(out, b.Typed(catalog.MonitoringProviderCreated, p.ID, catalog.MonitoringProvider.CreatedPayload(p.ID, "provider")))
	}
	for _, d := range w.Dealers {
		out = append(out, b.Typed(catalog.DealerCreated, d.ID, catalog.Dealer.CreatedPayload(d.ID, "dealer")))
		if d.MonitoringProviderID != "" {
			out = append(out, b.DealerProvider(d.ID, d.MonitoringProviderID))
		}
	}
	for _, c := range w.Customers {
		out = append(out, b.Typed(catalog.CustomerCreated, c.ID, catalog.Customer.CreatedPayload(c.ID, "customer")))
	}
	for _, e := range w.Employees {
		o, emp := orgOf(e.OrgKind), employee(e.OrgKind, e.OrgID, e.UserID)
		out = append(out, b.Typed(o.EmployeeCreated, e.OrgID, o.EmployeeCreatedPayload(emp, e.UserID+"@example.com", "F", "L")))
		out = append(out, b.OrgRoles(e.OrgKind, e.OrgID, e.UserID, e.Roles))
		if e.Schedule != nil {
			out = append(out, b.Schedule(e.OrgKind, e.OrgID, e.UserID, e.Schedule))
		}
	}
	for _, l := range w.Locations {
		b.custOf[l.ID] = l.CustomerID
		b.dealerOf[l.ID] = l.DealerID
		out = append(out, b.Typed(catalog.LocationCreated, l.CustomerID, catalog.LocationCreatedPayload{
			CustomerID: l.CustomerID, LocationID: l.ID, Name: "location", DealerID: nullable(l.DealerID),
		}))
	}
	for _, t := range w.Teams {
		out = append(out, b.Typed(catalog.TeamCreated, t.CustomerID, catalog.TeamCreatedPayload{CustomerID: t.CustomerID, TeamID: t.ID, Name: "team"}))
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
	return b.Typed(catalog.DealerMonitoringProviderSet, dealerID, catalog.DealerMonitoringProviderSetPayload{
		DealerID: dealerID, MonitoringProviderID: nullable(providerID), PreviousMonitoringProviderID: nullable(prev),
	})
}

// LocationDealer builds customer.location_dealer_changed ("" clears) with
// the previous dealer the builder remembers.
func (b *Builder) LocationDealer(customerID, locationID, dealerID string) events.Event {
	prev := b.dealerOf[locationID]
	b.dealerOf[locationID] = dealerID
	b.custOf[locationID] = customerID
	return b.Typed(catalog.LocationDealerChanged, customerID, catalog.LocationDealerChangedPayload{
		CustomerID: customerID, LocationID: locationID, DealerID: nullable(dealerID), PreviousDealerID: nullable(prev),
	})
}

// Schedule builds employee_schedule_set, or employee_schedule_cleared when
// s is nil.
func (b *Builder) Schedule(kind policy.OrgKind, orgID, userID string, s *policy.Schedule) events.Event {
	o, emp := orgOf(kind), employee(kind, orgID, userID)
	if s == nil {
		return b.Typed(o.EmployeeScheduleCleared, orgID, o.EmployeeScheduleClearedPayload(emp))
	}
	return b.Typed(o.EmployeeScheduleSet, orgID, o.EmployeeScheduleSetPayload(emp, catalog.ScheduleOf(s.TimeZone, s.Shifts)))
}

// OrgRoles builds the kind's employee_roles_set with the whole set rs
// (nil is [], a revocation).
func (b *Builder) OrgRoles(kind policy.OrgKind, orgID, userID string, rs []string) events.Event {
	o := orgOf(kind)
	return b.Typed(o.EmployeeRolesSet, orgID, o.EmployeeRolesSetPayload(employee(kind, orgID, userID), roles(rs)))
}

// employee names the builder's employee of userID in an organization.
func employee(kind policy.OrgKind, orgID, userID string) catalog.Employee {
	return catalog.Employee{OrgID: orgID, EmployeeID: EmployeeID(kind, orgID, userID), UserID: userID}
}

// TeamMember builds customer.team_member_added or _removed.
func (b *Builder) TeamMember(customerID, teamID, userID string, added bool) events.Event {
	t := catalog.TeamMemberRemoved
	if added {
		t = catalog.TeamMemberAdded
	}
	return b.Typed(t, customerID, catalog.TeamMemberPayload{
		CustomerID: customerID, TeamID: teamID, EmployeeID: EmployeeID(policy.OrgCustomer, customerID, userID), UserID: userID,
	})
}

// EmployeeLocationRoles builds customer.location_employee_roles_set.
func (b *Builder) EmployeeLocationRoles(customerID, locationID, userID string, rs []string) events.Event {
	return b.Typed(catalog.LocationEmployeeRolesSet, customerID, catalog.LocationEmployeeRolesSetPayload{
		CustomerID: customerID, LocationID: locationID, EmployeeID: EmployeeID(policy.OrgCustomer, customerID, userID), UserID: userID, Roles: roles(rs),
	})
}

// TeamLocationRoles builds customer.location_team_roles_set.
func (b *Builder) TeamLocationRoles(customerID, locationID, teamID string, rs []string) events.Event {
	return b.Typed(catalog.LocationTeamRolesSet, customerID, catalog.LocationTeamRolesSetPayload{
		CustomerID: customerID, LocationID: locationID, TeamID: teamID, Roles: roles(rs),
	})
}

// SystemCreated builds securitysystem.created.
func (b *Builder) SystemCreated(systemID, locationID, customerID string) events.Event {
	return b.Typed(catalog.SecuritySystemCreated, systemID, catalog.SecuritySystemCreatedPayload{
		SecuritySystemID: systemID, Name: "system", LocationID: locationID, CustomerID: customerID, ActorUserID: uuid.NewString(),
	})
}

// Change returns the events of one policytest change, as the owning
// service would publish them.
func (b *Builder) Change(c policytest.Change) []events.Event {
	switch c.Kind {
	case policytest.ChangeOrgRoles:
		return []events.Event{b.OrgRoles(c.OrgKind, c.OrgID, c.UserID, c.Roles)}
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
