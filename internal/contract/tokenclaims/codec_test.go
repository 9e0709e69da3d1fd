package tokenclaims

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/policytest"
)

// roundTrip encodes s, passes the claims through JSON as a token does, and
// decodes them.
func roundTrip(t *testing.T, s policy.Subject) Facts {
	t.Helper()
	c, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(c)
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	f, err := Decode(back)
	if err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return f
}

// TestRoundTripWorlds: every subject of generated Worlds comes back with
// the same organization, location roles and schedule.
func TestRoundTripWorlds(t *testing.T) {
	for seed := int64(1); seed <= 5; seed++ {
		w := policytest.Generate(seed, policytest.Small)
		for _, u := range w.Users() {
			s := w.Subject(u, w.AppRoles(u))
			f := roundTrip(t, s)
			if !sameRoles(orgRoles(s.Org), orgRoles(f.Org)) || (s.Org == nil) != (f.Org == nil) ||
				(s.Org != nil && (s.Org.Kind != f.Org.Kind || s.Org.ID != f.Org.ID)) {
				t.Fatalf("%s: org %+v, got %+v", u, s.Org, f.Org)
			}
			n := 0
			for loc, roles := range s.LocationRoles {
				if len(roles) == 0 {
					continue
				}
				n++
				if !sameRoles(roles, f.LocationRoles[loc]) {
					t.Fatalf("%s at %s: %v, got %v", u, loc, roles, f.LocationRoles[loc])
				}
			}
			if n != len(f.LocationRoles) || !reflect.DeepEqual(s.Schedule, f.Schedule) {
				t.Fatalf("%s: %+v / %+v, got %+v / %+v", u, s.LocationRoles, s.Schedule, f.LocationRoles, f.Schedule)
			}
		}
	}
}

func orgRoles(m *policy.Membership) []string {
	if m == nil {
		return nil
	}
	return m.Roles
}

func sameRoles(a, b []string) bool {
	a, b = slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// TestExample is the example of docs/provide.md.
func TestExample(t *testing.T) {
	s := policy.Subject{
		Org: &policy.Membership{Kind: policy.OrgCustomer, ID: "9d0e6f0a-1111-4c4c-8888-0123456789ab",
			Roles: []string{policy.RoleCustomerEmployeeAdministrator, policy.RoleViewer}},
		LocationRoles: map[string][]string{"5b1f2c3d-2222-4d4d-9999-0123456789ab": {policy.RoleDisarmer, policy.RoleArmer, policy.RoleDisarmer}},
		Schedule:      &policy.Schedule{TimeZone: "Europe/Berlin", Shifts: []policy.Shift{{Weekdays: []string{"MON", "FRI"}, Start: "22:00", End: "06:00"}}},
	}
	c, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(c)
	want := `{"az":1,"loc":{"5b1f2c3d-2222-4d4d-9999-0123456789ab":"AD"},"org":{"id":"9d0e6f0a-1111-4c4c-8888-0123456789ab","r":"XV","t":"c"},"sch":{"s":[["MON,FRI","22:00","06:00"]],"tz":"Europe/Berlin"}}`
	if string(b) != want {
		t.Fatalf("encoded\n%s\nwant\n%s", b, want)
	}
	if _, err := Encode(policy.Subject{LocationRoles: map[string][]string{"x": {policy.RoleCustomerEmployeeAdministrator}}}); err == nil {
		t.Fatal("an administrator role at a location was encoded")
	}
}
