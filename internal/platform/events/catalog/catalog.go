// Package catalog is the event contract of docs/events.md, written once:
// every event type the services publish as a typed constant, and the
// payload of each as a struct whose JSON tags are the wire names.
// Producers build these structs, consumers decode into them and the test
// builders use them, so searching for an event's constant finds its
// producer and every consumer. catalog_test.go checks docs/events.md
// against this package.
//
// The three kinds of organization publish the same organization and
// employee events under their own names (customer.employee_roles_set,
// dealer.employee_roles_set, ...). Code that treats the kinds alike reaches
// them through an Organization (Customer, Dealer, MonitoringProvider), so
// a search for the field (EmployeeRolesSet) finds it.
//
// The package depends only on the standard library, so every service and
// every use case can import it without importing another service or the
// event machinery.
//
// Wire compatibility: the field order of each struct is the order in which
// the payload's keys have always been written. The organization kit and the
// Dealer Service used to build their payloads as maps, which encoding/json
// writes in key order, so the payloads of the organization events
// (*.created, *.employee_*, dealer.monitoring_provider_set) list their
// fields alphabetically; the Customer Service's own events and the
// Security System Service's keep the order their structs always had.
package catalog

import "strings"

// Type is the type of an event, for example "customer.employee_roles_set".
// Its prefix up to the first dot is the producer.
type Type string

// String returns the type's name.
func (t Type) String() string { return string(t) }

// Producer returns the service that emits events of type t ("customer" for
// "customer.created"): the prefix up to the first dot, which the outbox
// and the consumers' attribution check require to be the producer.
func (t Type) Producer() string {
	p, _, _ := strings.Cut(string(t), ".")
	return p
}

// The aggregate types of docs/events.md, one per producer: an organization
// service's events belong to the organization, the Security System
// Service's to the security system.
const (
	AggregateCustomer           = "customer"
	AggregateDealer             = "dealer"
	AggregateMonitoringProvider = "monitoring_provider"
	AggregateSecuritySystem     = "security_system"
)

// AggregateTypeOf returns the aggregate type of every event of producer,
// and false for a producer the catalogue does not know.
func AggregateTypeOf(producer string) (string, bool) {
	switch producer {
	case Customer.Producer:
		return AggregateCustomer, true
	case Dealer.Producer:
		return AggregateDealer, true
	case MonitoringProvider.Producer:
		return AggregateMonitoringProvider, true
	case SecuritySystemCreated.Producer():
		return AggregateSecuritySystem, true
	}
	return "", false
}

// The Customer Service's events.
const (
	CustomerCreated                 Type = "customer.created"
	CustomerEmployeeCreated         Type = "customer.employee_created"
	CustomerEmployeeRemoved         Type = "customer.employee_removed"
	CustomerEmployeeRolesSet        Type = "customer.employee_roles_set"
	CustomerEmployeeScheduleSet     Type = "customer.employee_schedule_set"
	CustomerEmployeeScheduleCleared Type = "customer.employee_schedule_cleared"
	LocationCreated                 Type = "customer.location_created"
	LocationDealerChanged           Type = "customer.location_dealer_changed"
	LocationEmployeeRolesSet        Type = "customer.location_employee_roles_set"
	TeamCreated                     Type = "customer.team_created"
	TeamMemberAdded                 Type = "customer.team_member_added"
	TeamMemberRemoved               Type = "customer.team_member_removed"
	LocationTeamRolesSet            Type = "customer.location_team_roles_set"
	TeamDeleted                     Type = "customer.team_deleted"
	LocationDeleted                 Type = "customer.location_deleted"
)

// The Security System Dealer Service's events.
const (
	DealerCreated                 Type = "dealer.created"
	DealerEmployeeCreated         Type = "dealer.employee_created"
	DealerEmployeeRemoved         Type = "dealer.employee_removed"
	DealerEmployeeRolesSet        Type = "dealer.employee_roles_set"
	DealerEmployeeScheduleSet     Type = "dealer.employee_schedule_set"
	DealerEmployeeScheduleCleared Type = "dealer.employee_schedule_cleared"
	DealerMonitoringProviderSet   Type = "dealer.monitoring_provider_set"
)

// The Monitoring Provider Service's events. The organization-created event
// is "provider_created", not "created".
const (
	MonitoringProviderCreated         Type = "monitoring.provider_created"
	MonitoringEmployeeCreated         Type = "monitoring.employee_created"
	MonitoringEmployeeRemoved         Type = "monitoring.employee_removed"
	MonitoringEmployeeRolesSet        Type = "monitoring.employee_roles_set"
	MonitoringEmployeeScheduleSet     Type = "monitoring.employee_schedule_set"
	MonitoringEmployeeScheduleCleared Type = "monitoring.employee_schedule_cleared"
)

// The Security System Service's events.
const (
	SecuritySystemCreated  Type = "securitysystem.created"
	SecuritySystemArmed    Type = "securitysystem.armed"
	SecuritySystemDisarmed Type = "securitysystem.disarmed"
)

// Entry is one event type of the catalogue with its payload.
type Entry struct {
	Type Type
	// Payload is the zero value of the type's payload struct (not a
	// pointer); its JSON tags are the payload's fields.
	Payload any
}

// entries is the catalogue in the order of docs/events.md.
var entries = []Entry{
	{CustomerCreated, CustomerCreatedPayload{}},
	{CustomerEmployeeCreated, CustomerEmployeeCreatedPayload{}},
	{CustomerEmployeeRemoved, CustomerEmployeeRemovedPayload{}},
	{CustomerEmployeeRolesSet, CustomerEmployeeRolesSetPayload{}},
	{CustomerEmployeeScheduleSet, CustomerEmployeeScheduleSetPayload{}},
	{CustomerEmployeeScheduleCleared, CustomerEmployeeScheduleClearedPayload{}},
	{LocationCreated, LocationCreatedPayload{}},
	{LocationDealerChanged, LocationDealerChangedPayload{}},
	{LocationEmployeeRolesSet, LocationEmployeeRolesSetPayload{}},
	{TeamCreated, TeamCreatedPayload{}},
	{TeamMemberAdded, TeamMemberPayload{}},
	{TeamMemberRemoved, TeamMemberPayload{}},
	{LocationTeamRolesSet, LocationTeamRolesSetPayload{}},
	{TeamDeleted, TeamDeletedPayload{}},
	{LocationDeleted, LocationDeletedPayload{}},

	{DealerCreated, DealerCreatedPayload{}},
	{DealerEmployeeCreated, DealerEmployeeCreatedPayload{}},
	{DealerEmployeeRemoved, DealerEmployeeRemovedPayload{}},
	{DealerEmployeeRolesSet, DealerEmployeeRolesSetPayload{}},
	{DealerEmployeeScheduleSet, DealerEmployeeScheduleSetPayload{}},
	{DealerEmployeeScheduleCleared, DealerEmployeeScheduleClearedPayload{}},
	{DealerMonitoringProviderSet, DealerMonitoringProviderSetPayload{}},

	{MonitoringProviderCreated, MonitoringProviderCreatedPayload{}},
	{MonitoringEmployeeCreated, MonitoringEmployeeCreatedPayload{}},
	{MonitoringEmployeeRemoved, MonitoringEmployeeRemovedPayload{}},
	{MonitoringEmployeeRolesSet, MonitoringEmployeeRolesSetPayload{}},
	{MonitoringEmployeeScheduleSet, MonitoringEmployeeScheduleSetPayload{}},
	{MonitoringEmployeeScheduleCleared, MonitoringEmployeeScheduleClearedPayload{}},

	{SecuritySystemCreated, SecuritySystemCreatedPayload{}},
	{SecuritySystemArmed, SecuritySystemStateChangedPayload{}},
	{SecuritySystemDisarmed, SecuritySystemStateChangedPayload{}},
}

// Entries returns every event type of the catalogue with its payload, in
// the order of docs/events.md.
func Entries() []Entry { return append([]Entry(nil), entries...) }

// byType indexes entries: consumers look a type up for every event.
var byType = func() map[string]Entry {
	m := make(map[string]Entry, len(entries))
	for _, e := range entries {
		m[string(e.Type)] = e
	}
	return m
}()

// Lookup returns the entry of event type t, and false when t is not in the
// catalogue.
func Lookup(t string) (Entry, bool) {
	e, ok := byType[t]
	return e, ok
}
