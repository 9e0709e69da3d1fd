package catalog_test

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/catalog"
	"github.com/realguardio/realguardio/internal/policy"
)

// docType is one row of a table of docs/events.md.
type docType struct {
	producer, aggregateType string
	fields                  []string
}

var (
	headingRe = regexp.MustCompile("^## .*\\(`producer: ([a-z_]+)`, `aggregateType: ([a-z_]+)`\\)")
	rowRe     = regexp.MustCompile("^\\| `([a-z_.]+)` \\| (.*) \\|$")
	fieldRe   = regexp.MustCompile("`([A-Za-z]+)`")
)

// readDocs parses the catalogue tables of docs/events.md: under each
// producer's heading, one row per event type whose payload column names the
// fields in backquotes (other backquoted text, such as the shape of a
// schedule, is not a field name).
func readDocs(t *testing.T) map[string]docType {
	t.Helper()
	b, err := os.ReadFile("../../../../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]docType{}
	var producer, aggregateType string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "## ") {
			producer, aggregateType = "", ""
			if m := headingRe.FindStringSubmatch(line); m != nil {
				producer, aggregateType = m[1], m[2]
			}
			continue
		}
		m := rowRe.FindStringSubmatch(line)
		if m == nil || producer == "" {
			continue
		}
		if _, dup := out[m[1]]; dup {
			t.Errorf("docs/events.md lists %s twice", m[1])
		}
		var fields []string
		for _, f := range fieldRe.FindAllStringSubmatch(m[2], -1) {
			fields = append(fields, f[1])
		}
		out[m[1]] = docType{producer: producer, aggregateType: aggregateType, fields: fields}
	}
	if len(out) == 0 {
		t.Fatal("no event tables found in docs/events.md")
	}
	return out
}

// jsonFields returns the JSON names of a payload struct's fields in
// declaration order, failing on anything the wire format does not have
// (an untagged field, omitempty, an ignored field).
func jsonFields(t *testing.T, typ catalog.Type, payload any) []string {
	t.Helper()
	rt := reflect.TypeOf(payload)
	if rt.Kind() != reflect.Struct {
		t.Fatalf("%s: payload %T is not a struct", typ, payload)
	}
	var names []string
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		tag, ok := f.Tag.Lookup("json")
		name, opts, _ := strings.Cut(tag, ",")
		if !ok || name == "" || name == "-" || opts != "" {
			t.Errorf("%s: field %s of %s has json tag %q; every field is named on the wire, without options", typ, f.Name, rt.Name(), tag)
			continue
		}
		names = append(names, name)
	}
	return names
}

// TestDocsMatchCatalog checks docs/events.md against the package: every
// type listed is in the catalogue with the heading's producer and aggregate
// type, its payload fields are exactly the struct's JSON names, and the
// catalogue has nothing the document does not list.
func TestDocsMatchCatalog(t *testing.T) {
	docs := readDocs(t)
	seen := map[string]bool{}
	for _, e := range catalog.Entries() {
		name := string(e.Type)
		seen[name] = true
		d, ok := docs[name]
		if !ok {
			t.Errorf("%s is in the catalogue but not in docs/events.md", name)
			continue
		}
		if e.Type.Producer() != d.producer {
			t.Errorf("%s: producer %q, docs/events.md lists it under %q", name, e.Type.Producer(), d.producer)
		}
		if agg, _ := catalog.AggregateTypeOf(e.Type.Producer()); agg != d.aggregateType {
			t.Errorf("%s: aggregate type %q, docs/events.md says %q", name, agg, d.aggregateType)
		}
		got := jsonFields(t, e.Type, e.Payload)
		want := slices.Clone(d.fields)
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: payload fields %v, docs/events.md lists %v", name, got, want)
		}
	}
	for name := range docs {
		if !seen[name] {
			t.Errorf("docs/events.md lists %s, which the catalogue does not have", name)
		}
	}
	if _, ok := catalog.Lookup("customer.no_such_event"); ok {
		t.Error("Lookup found an unknown type")
	}
}

// TestOrganizations checks the three kinds' vocabularies: every type is in
// the catalogue and of the kind's producer, the id field is the first
// field name the kind's payloads share, and OrganizationOf finds the kind
// from each of its types.
func TestOrganizations(t *testing.T) {
	for _, o := range []catalog.Organization{catalog.Customer, catalog.Dealer, catalog.MonitoringProvider} {
		types := []catalog.Type{o.Created, o.EmployeeCreated, o.EmployeeRemoved, o.EmployeeRolesSet, o.EmployeeScheduleSet, o.EmployeeScheduleCleared}
		for _, typ := range types {
			e, ok := catalog.Lookup(string(typ))
			if !ok {
				t.Errorf("%s: %q is not in the catalogue", o.Producer, typ)
				continue
			}
			if typ.Producer() != o.Producer {
				t.Errorf("%s: %s has producer %s", o.Producer, typ, typ.Producer())
			}
			if !slices.Contains(jsonFields(t, typ, e.Payload), o.IDField) {
				t.Errorf("%s: %s has no %s", o.Producer, typ, o.IDField)
			}
			if got, ok := catalog.OrganizationOf(typ); !ok || got != o {
				t.Errorf("OrganizationOf(%s) = %v, %v", typ, got, ok)
			}
			if agg, _ := catalog.AggregateTypeOf(o.Producer); agg != o.AggregateType {
				t.Errorf("%s: aggregate type %s, the catalogue says %s", o.Producer, o.AggregateType, agg)
			}
		}
		if got, ok := catalog.OrganizationOfKind(o.Kind); !ok || got != o {
			t.Errorf("OrganizationOfKind(%s) = %v, %v", o.Kind, got, ok)
		}
		if len(policy.OrganizationRoles(policy.OrgKind(o.Kind))) == 0 {
			t.Errorf("%s: kind %q is no policy.OrgKind", o.Producer, o.Kind)
		}
		for _, typ := range types[1:] {
			if !o.IsEmployeeEvent(typ) {
				t.Errorf("%s is not an employee event of %s", typ, o.Producer)
			}
		}
		if o.IsEmployeeEvent(o.Created) || o.IsEmployeeEvent("") {
			t.Errorf("%s: IsEmployeeEvent accepts a non-employee event", o.Producer)
		}
	}
	for producer, o := range map[string]catalog.Organization{events.ProducerCustomer: catalog.Customer, events.ProducerDealer: catalog.Dealer, events.ProducerMonitoring: catalog.MonitoringProvider} {
		if o.Producer != producer {
			t.Errorf("the catalogue names producer %s %q", producer, o.Producer)
		}
	}
	if catalog.SecuritySystemCreated.Producer() != events.ProducerSecuritySystem {
		t.Errorf("securitysystem.created has producer %q", catalog.SecuritySystemCreated.Producer())
	}
	if _, ok := catalog.OrganizationOfKind("security_system"); ok {
		t.Error("OrganizationOfKind found a kind that is no organization")
	}
	if _, ok := catalog.OrganizationOf(catalog.SecuritySystemArmed); ok {
		t.Error("the Security System Service is no kind of organization")
	}
}

// TestMapOrderedPayloads pins the wire format of the payloads the
// organization kit and the Dealer Service used to build as maps: their
// fields must stay in JSON-name order, the order encoding/json wrote the
// maps in, so the bytes on the wire are unchanged.
func TestMapOrderedPayloads(t *testing.T) {
	types := []catalog.Type{catalog.DealerMonitoringProviderSet}
	for _, o := range []catalog.Organization{catalog.Customer, catalog.Dealer, catalog.MonitoringProvider} {
		types = append(types, o.Created, o.EmployeeCreated, o.EmployeeRemoved, o.EmployeeRolesSet, o.EmployeeScheduleSet, o.EmployeeScheduleCleared)
	}
	for _, typ := range types {
		e, _ := catalog.Lookup(string(typ))
		names := jsonFields(t, typ, e.Payload)
		if !sort.StringsAreSorted(names) {
			t.Errorf("%s: fields %v are not in the order its map payload had", typ, names)
		}
	}
}

// TestPayloadBytes pins a few payloads byte for byte as the services wrote
// them before the catalogue existed.
func TestPayloadBytes(t *testing.T) {
	emp := catalog.Employee{OrgID: "o1", EmployeeID: "e1", UserID: "u1"}
	sched := &catalog.Schedule{TimeZone: "Europe/Berlin", Shifts: []catalog.Shift{{Weekdays: []string{"MON"}, Start: "08:00", End: "17:00"}}}
	mp := "m1"
	for _, c := range []struct {
		payload any
		want    string
	}{
		{catalog.Customer.CreatedPayload("o1", "Acme"), `{"customerId":"o1","name":"Acme"}`},
		{catalog.MonitoringProvider.CreatedPayload("o1", "Watch"), `{"monitoringProviderId":"o1","name":"Watch"}`},
		{catalog.Dealer.EmployeeCreatedPayload(emp, "a@b", "A", "B"), `{"dealerId":"o1","email":"a@b","employeeId":"e1","firstName":"A","lastName":"B","userId":"u1"}`},
		{catalog.MonitoringProvider.EmployeeCreatedPayload(emp, "a@b", "A", "B"), `{"email":"a@b","employeeId":"e1","firstName":"A","lastName":"B","monitoringProviderId":"o1","userId":"u1"}`},
		{catalog.Customer.EmployeeRolesSetPayload(emp, []string{}), `{"customerId":"o1","employeeId":"e1","roles":[],"userId":"u1"}`},
		{catalog.MonitoringProvider.EmployeeRolesSetPayload(emp, nil), `{"employeeId":"e1","monitoringProviderId":"o1","roles":null,"userId":"u1"}`},
		{catalog.Dealer.EmployeeScheduleSetPayload(emp, sched), `{"dealerId":"o1","employeeId":"e1","schedule":{"timezone":"Europe/Berlin","shifts":[{"weekdays":["MON"],"start":"08:00","end":"17:00"}]},"userId":"u1"}`},
		{catalog.Customer.EmployeeScheduleClearedPayload(emp), `{"customerId":"o1","employeeId":"e1","userId":"u1"}`},
		{catalog.Dealer.EmployeeRemovedPayload(emp), `{"dealerId":"o1","employeeId":"e1","userId":"u1"}`},
		{catalog.DealerMonitoringProviderSetPayload{DealerID: "o1", MonitoringProviderID: &mp}, `{"dealerId":"o1","monitoringProviderId":"m1","previousMonitoringProviderId":null}`},
		{catalog.LocationCreatedPayload{CustomerID: "o1", LocationID: "l1", Name: "L"}, `{"customerId":"o1","locationId":"l1","name":"L","dealerId":null}`},
	} {
		b, err := json.Marshal(c.payload)
		if err != nil || string(b) != c.want {
			t.Errorf("%T = %s, %v\nwant %s", c.payload, b, err, c.want)
		}
	}
}

// TestDecode checks the decoders: each gives back what the payload
// builders wrote, an empty payload is the zero value, and a malformed one
// or a type outside the catalogue is an error.
func TestDecode(t *testing.T) {
	emp := catalog.Employee{OrgID: "o1", EmployeeID: "e1", UserID: "u1"}
	sched := &catalog.Schedule{TimeZone: "UTC", Shifts: []catalog.Shift{{Weekdays: []string{"SUN"}, Start: "22:00", End: "06:00"}}}
	for _, o := range []catalog.Organization{catalog.Customer, catalog.Dealer, catalog.MonitoringProvider} {
		b, _ := json.Marshal(o.EmployeeRolesSetPayload(emp, []string{"R"}))
		if e, roles, err := o.DecodeEmployeeRolesSet(b); err != nil || e != emp || !slices.Equal(roles, []string{"R"}) {
			t.Errorf("%s roles: %v %v %v", o.Producer, e, roles, err)
		}
		b, _ = json.Marshal(o.EmployeeScheduleSetPayload(emp, sched))
		if e, s, err := o.DecodeEmployeeScheduleSet(b); err != nil || e != emp || !reflect.DeepEqual(s, sched) {
			t.Errorf("%s schedule: %v %v %v", o.Producer, e, s, err)
		}
		b, _ = json.Marshal(o.EmployeeCreatedPayload(emp, "a@b", "A", "B"))
		if e, err := o.DecodeEmployee(o.EmployeeCreated, b); err != nil || e != emp {
			t.Errorf("%s created: %v %v", o.Producer, e, err)
		}
		if e, err := o.DecodeEmployee(o.EmployeeRemoved, nil); err != nil || e != (catalog.Employee{}) {
			t.Errorf("%s empty payload: %v %v", o.Producer, e, err)
		}
		if _, _, err := o.DecodeEmployeeRolesSet([]byte(`{"roles":"not a list"}`)); err == nil {
			t.Errorf("%s: malformed roles accepted", o.Producer)
		}
		if _, err := o.DecodeEmployee(o.Created, b); err == nil {
			t.Errorf("%s: DecodeEmployee accepted %s", o.Producer, o.Created)
		}
	}
	if _, err := catalog.Decode("customer.no_such_event", []byte(`{}`)); err == nil {
		t.Error("Decode accepted an unknown type")
	}
	v, err := catalog.Decode(catalog.TeamMemberAdded, []byte(`{"teamId":"t1"}`))
	if p, ok := v.(catalog.TeamMemberPayload); err != nil || !ok || p.TeamID != "t1" {
		t.Errorf("Decode = %#v, %v", v, err)
	}
}

// TestScheduleConversion checks that a policy.Schedule converts to the
// catalogue's form and back unchanged, and writes the same JSON.
func TestScheduleConversion(t *testing.T) {
	in := policy.Schedule{TimeZone: "Europe/Berlin", Shifts: []policy.Shift{{Weekdays: []string{"MON", "TUE"}, Start: "08:00", End: "17:00"}}}
	s := catalog.ScheduleOf(in.TimeZone, in.Shifts)
	want, _ := json.Marshal(in)
	if got, _ := json.Marshal(s); string(got) != string(want) {
		t.Errorf("catalogue schedule %s, policy schedule %s", got, want)
	}
	back := policy.Schedule{TimeZone: s.TimeZone, Shifts: catalog.ConvertShifts[policy.Shift](s.Shifts)}
	if !reflect.DeepEqual(back, in) {
		t.Errorf("round trip = %+v, want %+v", back, in)
	}
	if catalog.ScheduleOf[policy.Shift]("UTC", nil).Shifts != nil {
		t.Error("nil shifts became non-nil")
	}
}

// TestValidate checks that Validate accepts the payloads the builders
// write and refuses a missing, an unknown or a mistyped field.
func TestValidate(t *testing.T) {
	emp := catalog.Employee{OrgID: "o1", EmployeeID: "e1", UserID: "u1"}
	good, _ := json.Marshal(catalog.Dealer.EmployeeRolesSetPayload(emp, []string{}))
	if err := catalog.Validate(catalog.DealerEmployeeRolesSet, good); err != nil {
		t.Errorf("Validate(%s) = %v", good, err)
	}
	for _, bad := range []string{
		`{"dealerId":"o1","employeeId":"e1","userId":"u1"}`,
		`{"dealerId":"o1","employeeId":"e1","roles":[],"userId":"u1","extra":1}`,
		`{"dealerId":"o1","employeeId":"e1","roles":"R","userId":"u1"}`,
		`[]`,
	} {
		if err := catalog.Validate(catalog.DealerEmployeeRolesSet, []byte(bad)); err == nil {
			t.Errorf("Validate accepted %s", bad)
		}
	}
	if err := catalog.Validate("dealer.no_such_event", good); err == nil {
		t.Error("Validate accepted an unknown type")
	}
}
