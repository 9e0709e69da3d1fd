package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// Organization is the event vocabulary of one kind of organization. The
// customer, dealer and monitoring provider services publish the same
// organization and employee events, differing only in their names and in
// the key of the organization id, so the organization kit, the replica,
// the authorization sync and the test builders treat the three kinds with
// one code path through an Organization: its Type fields name the events,
// its payload methods build the kind's payload structs and its decoders
// read them back in a kind-independent form.
type Organization struct {
	// Kind is the kind of organization as AUTHZ.md names it ("customer",
	// "dealer", "monitoring_provider"), the value of policy.OrgKind.
	Kind string
	// Producer is the service name of the envelope and the prefix of every
	// event type.
	Producer string
	// AggregateType is the aggregate type of every event of the kind.
	AggregateType string
	// IDField is the payload key of the organization id ("dealerId").
	IDField string
	// Created is the organization-created event, whose name does not
	// follow the prefix rule for monitoring providers.
	Created Type
	// The employee events.
	EmployeeCreated         Type
	EmployeeRemoved         Type
	EmployeeRolesSet        Type
	EmployeeScheduleSet     Type
	EmployeeScheduleCleared Type
}

// The three kinds of organization.
var (
	Customer = Organization{
		Kind: "customer", Producer: CustomerCreated.Producer(), AggregateType: AggregateCustomer, IDField: "customerId",
		Created: CustomerCreated, EmployeeCreated: CustomerEmployeeCreated, EmployeeRemoved: CustomerEmployeeRemoved,
		EmployeeRolesSet: CustomerEmployeeRolesSet, EmployeeScheduleSet: CustomerEmployeeScheduleSet,
		EmployeeScheduleCleared: CustomerEmployeeScheduleCleared,
	}
	Dealer = Organization{
		Kind: "dealer", Producer: DealerCreated.Producer(), AggregateType: AggregateDealer, IDField: "dealerId",
		Created: DealerCreated, EmployeeCreated: DealerEmployeeCreated, EmployeeRemoved: DealerEmployeeRemoved,
		EmployeeRolesSet: DealerEmployeeRolesSet, EmployeeScheduleSet: DealerEmployeeScheduleSet,
		EmployeeScheduleCleared: DealerEmployeeScheduleCleared,
	}
	MonitoringProvider = Organization{
		Kind: "monitoring_provider", Producer: MonitoringProviderCreated.Producer(), AggregateType: AggregateMonitoringProvider, IDField: "monitoringProviderId",
		Created: MonitoringProviderCreated, EmployeeCreated: MonitoringEmployeeCreated, EmployeeRemoved: MonitoringEmployeeRemoved,
		EmployeeRolesSet: MonitoringEmployeeRolesSet, EmployeeScheduleSet: MonitoringEmployeeScheduleSet,
		EmployeeScheduleCleared: MonitoringEmployeeScheduleCleared,
	}
)

// OrganizationOf returns the kind of organization whose service emits
// events of type t, and false for the Security System Service's events and
// unknown producers.
func OrganizationOf(t Type) (Organization, bool) {
	switch t.Producer() {
	case Customer.Producer:
		return Customer, true
	case Dealer.Producer:
		return Dealer, true
	case MonitoringProvider.Producer:
		return MonitoringProvider, true
	}
	return Organization{}, false
}

// OrganizationOfKind returns the Organization of kind ("dealer"; see
// Organization.Kind), and false for anything else.
func OrganizationOfKind(kind string) (Organization, bool) {
	for _, o := range []Organization{Customer, Dealer, MonitoringProvider} {
		if o.Kind == kind {
			return o, true
		}
	}
	return Organization{}, false
}

// DecodePayload decodes payload into a P, the payload struct of the
// caller's event type. An empty payload gives the zero P, as the replica
// and the authorization sync have always read it.
func DecodePayload[P any](payload []byte) (P, error) {
	var p P
	if len(payload) == 0 {
		return p, nil
	}
	err := json.Unmarshal(payload, &p)
	return p, err
}

// Employee names the employee an employee event is about, whatever the
// kind of organization: the organization's id (under the kind's IDField on
// the wire), the employee's id and the IAM user id.
type Employee struct {
	OrgID      string
	EmployeeID string
	UserID     string
}

// EmployeePayload is implemented by the payload of every employee event of
// every kind of organization.
type EmployeePayload interface {
	// Employee returns whom the event is about.
	Employee() Employee
}

// Employee implements EmployeePayload.
func (p CustomerEmployeeCreatedPayload) Employee() Employee {
	return Employee{p.CustomerID, p.EmployeeID, p.UserID}
}

// Employee implements EmployeePayload.
func (p CustomerEmployeeRemovedPayload) Employee() Employee {
	return Employee{p.CustomerID, p.EmployeeID, p.UserID}
}

// Employee implements EmployeePayload.
func (p CustomerEmployeeRolesSetPayload) Employee() Employee {
	return Employee{p.CustomerID, p.EmployeeID, p.UserID}
}

// Employee implements EmployeePayload.
func (p CustomerEmployeeScheduleSetPayload) Employee() Employee {
	return Employee{p.CustomerID, p.EmployeeID, p.UserID}
}

// Employee implements EmployeePayload.
func (p CustomerEmployeeScheduleClearedPayload) Employee() Employee {
	return Employee{p.CustomerID, p.EmployeeID, p.UserID}
}

// Employee implements EmployeePayload.
func (p DealerEmployeeCreatedPayload) Employee() Employee {
	return Employee{p.DealerID, p.EmployeeID, p.UserID}
}

// Employee implements EmployeePayload.
func (p DealerEmployeeRemovedPayload) Employee() Employee {
	return Employee{p.DealerID, p.EmployeeID, p.UserID}
}

// Employee implements EmployeePayload.
func (p DealerEmployeeRolesSetPayload) Employee() Employee {
	return Employee{p.DealerID, p.EmployeeID, p.UserID}
}

// Employee implements EmployeePayload.
func (p DealerEmployeeScheduleSetPayload) Employee() Employee {
	return Employee{p.DealerID, p.EmployeeID, p.UserID}
}

// Employee implements EmployeePayload.
func (p DealerEmployeeScheduleClearedPayload) Employee() Employee {
	return Employee{p.DealerID, p.EmployeeID, p.UserID}
}

// Employee implements EmployeePayload.
func (p MonitoringEmployeeCreatedPayload) Employee() Employee {
	return Employee{p.MonitoringProviderID, p.EmployeeID, p.UserID}
}

// Employee implements EmployeePayload.
func (p MonitoringEmployeeRemovedPayload) Employee() Employee {
	return Employee{p.MonitoringProviderID, p.EmployeeID, p.UserID}
}

// Employee implements EmployeePayload.
func (p MonitoringEmployeeRolesSetPayload) Employee() Employee {
	return Employee{p.MonitoringProviderID, p.EmployeeID, p.UserID}
}

// Employee implements EmployeePayload.
func (p MonitoringEmployeeScheduleSetPayload) Employee() Employee {
	return Employee{p.MonitoringProviderID, p.EmployeeID, p.UserID}
}

// Employee implements EmployeePayload.
func (p MonitoringEmployeeScheduleClearedPayload) Employee() Employee {
	return Employee{p.MonitoringProviderID, p.EmployeeID, p.UserID}
}

// kindOf panics on an Organization that is not one of the three kinds:
// only Customer, Dealer and MonitoringProvider exist, so anything else is
// a programming error that must not write an event of no kind.
func (o Organization) kindOf() string {
	switch o.Producer {
	case Customer.Producer, Dealer.Producer, MonitoringProvider.Producer:
		return o.Producer
	}
	panic(fmt.Sprintf("catalog: %q is not a kind of organization", o.Producer))
}

// CreatedPayload returns the payload of the kind's Created event.
func (o Organization) CreatedPayload(orgID, name string) any {
	switch o.kindOf() {
	case Customer.Producer:
		return CustomerCreatedPayload{CustomerID: orgID, Name: name}
	case Dealer.Producer:
		return DealerCreatedPayload{DealerID: orgID, Name: name}
	}
	return MonitoringProviderCreatedPayload{MonitoringProviderID: orgID, Name: name}
}

// EmployeeCreatedPayload returns the payload of the kind's EmployeeCreated
// event.
func (o Organization) EmployeeCreatedPayload(e Employee, email, firstName, lastName string) any {
	switch o.kindOf() {
	case Customer.Producer:
		return CustomerEmployeeCreatedPayload{CustomerID: e.OrgID, Email: email, EmployeeID: e.EmployeeID, FirstName: firstName, LastName: lastName, UserID: e.UserID}
	case Dealer.Producer:
		return DealerEmployeeCreatedPayload{DealerID: e.OrgID, Email: email, EmployeeID: e.EmployeeID, FirstName: firstName, LastName: lastName, UserID: e.UserID}
	}
	return MonitoringEmployeeCreatedPayload{MonitoringProviderID: e.OrgID, Email: email, EmployeeID: e.EmployeeID, FirstName: firstName, LastName: lastName, UserID: e.UserID}
}

// EmployeeRemovedPayload returns the payload of the kind's EmployeeRemoved
// event.
func (o Organization) EmployeeRemovedPayload(e Employee) any {
	switch o.kindOf() {
	case Customer.Producer:
		return CustomerEmployeeRemovedPayload{CustomerID: e.OrgID, EmployeeID: e.EmployeeID, UserID: e.UserID}
	case Dealer.Producer:
		return DealerEmployeeRemovedPayload{DealerID: e.OrgID, EmployeeID: e.EmployeeID, UserID: e.UserID}
	}
	return MonitoringEmployeeRemovedPayload{MonitoringProviderID: e.OrgID, EmployeeID: e.EmployeeID, UserID: e.UserID}
}

// EmployeeRolesSetPayload returns the payload of the kind's
// EmployeeRolesSet event; roles is the whole new set, written as given (a
// nil slice is null on the wire, so producers pass [] to revoke).
func (o Organization) EmployeeRolesSetPayload(e Employee, roles []string) any {
	switch o.kindOf() {
	case Customer.Producer:
		return CustomerEmployeeRolesSetPayload{CustomerID: e.OrgID, EmployeeID: e.EmployeeID, Roles: roles, UserID: e.UserID}
	case Dealer.Producer:
		return DealerEmployeeRolesSetPayload{DealerID: e.OrgID, EmployeeID: e.EmployeeID, Roles: roles, UserID: e.UserID}
	}
	return MonitoringEmployeeRolesSetPayload{MonitoringProviderID: e.OrgID, EmployeeID: e.EmployeeID, Roles: roles, UserID: e.UserID}
}

// EmployeeScheduleSetPayload returns the payload of the kind's
// EmployeeScheduleSet event.
func (o Organization) EmployeeScheduleSetPayload(e Employee, s *Schedule) any {
	switch o.kindOf() {
	case Customer.Producer:
		return CustomerEmployeeScheduleSetPayload{CustomerID: e.OrgID, EmployeeID: e.EmployeeID, Schedule: s, UserID: e.UserID}
	case Dealer.Producer:
		return DealerEmployeeScheduleSetPayload{DealerID: e.OrgID, EmployeeID: e.EmployeeID, Schedule: s, UserID: e.UserID}
	}
	return MonitoringEmployeeScheduleSetPayload{MonitoringProviderID: e.OrgID, EmployeeID: e.EmployeeID, Schedule: s, UserID: e.UserID}
}

// EmployeeScheduleClearedPayload returns the payload of the kind's
// EmployeeScheduleCleared event.
func (o Organization) EmployeeScheduleClearedPayload(e Employee) any {
	switch o.kindOf() {
	case Customer.Producer:
		return CustomerEmployeeScheduleClearedPayload{CustomerID: e.OrgID, EmployeeID: e.EmployeeID, UserID: e.UserID}
	case Dealer.Producer:
		return DealerEmployeeScheduleClearedPayload{DealerID: e.OrgID, EmployeeID: e.EmployeeID, UserID: e.UserID}
	}
	return MonitoringEmployeeScheduleClearedPayload{MonitoringProviderID: e.OrgID, EmployeeID: e.EmployeeID, UserID: e.UserID}
}

// Decode decodes payload into the payload struct of event type t and
// returns it (the struct, not a pointer). An empty payload gives the zero
// struct, as the replica and the authorization sync have always read it;
// a type outside the catalogue is an error.
func Decode(t Type, payload []byte) (any, error) {
	e, ok := Lookup(string(t))
	if !ok {
		return nil, fmt.Errorf("catalog: %q is not an event type of docs/events.md", t)
	}
	v := reflect.New(reflect.TypeOf(e.Payload))
	if len(payload) > 0 {
		if err := json.Unmarshal(payload, v.Interface()); err != nil {
			return nil, err
		}
	}
	return v.Elem().Interface(), nil
}

// IsEmployeeEvent reports whether t is one of the kind's employee events.
func (o Organization) IsEmployeeEvent(t Type) bool {
	switch t {
	case o.EmployeeCreated, o.EmployeeRemoved, o.EmployeeRolesSet, o.EmployeeScheduleSet, o.EmployeeScheduleCleared:
		return t != ""
	}
	return false
}

// DecodeEmployee decodes the payload of any of the kind's employee events
// (t) and returns whom it is about; see Decode for an empty payload.
func (o Organization) DecodeEmployee(t Type, payload []byte) (Employee, error) {
	if !o.IsEmployeeEvent(t) {
		return Employee{}, fmt.Errorf("catalog: %q is not an employee event of %s", t, o.Producer)
	}
	v, err := Decode(t, payload)
	if err != nil {
		return Employee{}, err
	}
	return v.(EmployeePayload).Employee(), nil
}

// DecodeEmployeeRolesSet decodes the payload of the kind's
// EmployeeRolesSet event: whom it is about and the whole new set of roles
// (nil when the payload has none or null).
func (o Organization) DecodeEmployeeRolesSet(payload []byte) (Employee, []string, error) {
	v, err := Decode(o.EmployeeRolesSet, payload)
	if err != nil {
		return Employee{}, nil, err
	}
	switch p := v.(type) {
	case CustomerEmployeeRolesSetPayload:
		return p.Employee(), p.Roles, nil
	case DealerEmployeeRolesSetPayload:
		return p.Employee(), p.Roles, nil
	case MonitoringEmployeeRolesSetPayload:
		return p.Employee(), p.Roles, nil
	}
	return Employee{}, nil, fmt.Errorf("catalog: %s has no roles payload", o.EmployeeRolesSet)
}

// DecodeEmployeeScheduleSet decodes the payload of the kind's
// EmployeeScheduleSet event: whom it is about and the schedule (nil when
// the payload has none or null).
func (o Organization) DecodeEmployeeScheduleSet(payload []byte) (Employee, *Schedule, error) {
	v, err := Decode(o.EmployeeScheduleSet, payload)
	if err != nil {
		return Employee{}, nil, err
	}
	switch p := v.(type) {
	case CustomerEmployeeScheduleSetPayload:
		return p.Employee(), p.Schedule, nil
	case DealerEmployeeScheduleSetPayload:
		return p.Employee(), p.Schedule, nil
	case MonitoringEmployeeScheduleSetPayload:
		return p.Employee(), p.Schedule, nil
	}
	return Employee{}, nil, fmt.Errorf("catalog: %s has no schedule payload", o.EmployeeScheduleSet)
}

// Validate reports whether payload is exactly the catalogue's payload of
// type t: every field of the struct present (null where the field may be
// null), no other field, each of its JSON type. Producers always write
// every field, so a payload missing one was not written from the
// catalogue's struct; the tests of the test builders check their events
// with it.
func Validate(t Type, payload []byte) error {
	e, ok := Lookup(string(t))
	if !ok {
		return fmt.Errorf("catalog: %q is not an event type of docs/events.md", t)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(reflect.New(reflect.TypeOf(e.Payload)).Interface()); err != nil {
		return fmt.Errorf("catalog: payload of %s: %w", t, err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(payload, &keys); err != nil {
		return fmt.Errorf("catalog: payload of %s: %w", t, err)
	}
	rt := reflect.TypeOf(e.Payload)
	for i := 0; i < rt.NumField(); i++ {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		if _, ok := keys[name]; !ok {
			return fmt.Errorf("catalog: payload of %s lacks %s", t, name)
		}
	}
	return nil
}
