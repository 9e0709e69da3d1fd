package policy_test

import (
	"math/rand"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/policytest"
)

// TestFixedCases runs AUTHZ.md's fixed conformance cases through the rule.
func TestFixedCases(t *testing.T) {
	for _, fc := range policytest.FixedCases() {
		t.Run(fc.Name, func(t *testing.T) {
			w := policytest.FixedWorld()
			for _, ch := range fc.Before {
				if err := w.Apply(ch); err != nil {
					t.Fatal(err)
				}
			}
			if got := policytest.Expected(w, fc.Case); got != fc.Want {
				t.Fatalf("%v: got %+v, want %+v", fc.Case, got, fc.Want)
			}
		})
	}
}

func TestRuleEdges(t *testing.T) {
	now := time.Date(2026, 3, 3, 12, 0, 0, 0, time.UTC)
	r := policy.Resource{SecuritySystemID: "ss", LocationID: "loc", CustomerID: "c", DealerID: "d", MonitoringProviderID: "p"}
	allow := policy.Decision{Allowed: true}
	noRole := policy.Decision{Reason: policy.ReasonNoRole}
	outside := policy.Decision{Reason: policy.ReasonOutsideSchedule}
	never := &policy.Schedule{TimeZone: "UTC", Shifts: []policy.Shift{{Weekdays: []string{"SUN"}, Start: "00:00", End: "00:01"}}}
	tests := []struct {
		name string
		s    policy.Subject
		op   policy.Op
		r    policy.Resource
		want policy.Decision
	}{
		{"customer admin role grants nothing on systems",
			policy.Subject{Org: &policy.Membership{Kind: policy.OrgCustomer, ID: "c", Roles: []string{policy.RoleCustomerEmployeeAdministrator}}}, policy.OpView, r, noRole},
		{"viewer may not arm", policy.Subject{Org: &policy.Membership{Kind: policy.OrgCustomer, ID: "c", Roles: []string{policy.RoleViewer}}}, policy.OpArm, r, noRole},
		{"armer may view", policy.Subject{Org: &policy.Membership{Kind: policy.OrgCustomer, ID: "c", Roles: []string{policy.RoleArmer}}}, policy.OpView, r, allow},
		{"disarmer may view", policy.Subject{LocationRoles: map[string][]string{"loc": {policy.RoleDisarmer}}}, policy.OpView, r, allow},
		{"role in another organization of the same kind", policy.Subject{Org: &policy.Membership{Kind: policy.OrgDealer, ID: "other", Roles: []string{policy.RoleArmer}}}, policy.OpArm, r, noRole},
		{"organization kind must match: a customer id equal to the dealer id does not count",
			policy.Subject{Org: &policy.Membership{Kind: policy.OrgCustomer, ID: "d", Roles: []string{policy.RoleArmer}}}, policy.OpArm, r, noRole},
		{"dealer role, location without dealer", policy.Subject{Org: &policy.Membership{Kind: policy.OrgDealer, ID: "", Roles: []string{policy.RoleArmer}}},
			policy.OpArm, policy.Resource{LocationID: "loc", CustomerID: "c"}, noRole},
		{"provider role", policy.Subject{Org: &policy.Membership{Kind: policy.OrgMonitoringProvider, ID: "p", Roles: []string{policy.RoleDisarmer}}}, policy.OpDisarm, r, allow},
		{"schedule restricts arm", policy.Subject{Org: &policy.Membership{Kind: policy.OrgCustomer, ID: "c", Roles: []string{policy.RoleArmer}}, Schedule: never}, policy.OpArm, r, outside},
		{"schedule does not restrict view", policy.Subject{Org: &policy.Membership{Kind: policy.OrgCustomer, ID: "c", Roles: []string{policy.RoleArmer}}, Schedule: never}, policy.OpView, r, allow},
		{"no role is reported before the schedule", policy.Subject{Schedule: never}, policy.OpArm, r, noRole},
		{"invalid schedule fails closed", policy.Subject{Org: &policy.Membership{Kind: policy.OrgCustomer, ID: "c", Roles: []string{policy.RoleArmer}},
			Schedule: &policy.Schedule{TimeZone: "Nowhere/Else", Shifts: []policy.Shift{{Weekdays: []string{"TUE"}, Start: "00:00", End: "00:00"}}}}, policy.OpArm, r, outside},
		{"admin app role views", policy.Subject{AppRoles: []string{policy.AppRoleAdmin}}, policy.OpView, r, allow},
		{"admin app role does not arm", policy.Subject{AppRoles: []string{policy.AppRoleAdmin}}, policy.OpArm, r, noRole},
		{"other app roles grant nothing", policy.Subject{AppRoles: []string{"REALGUARDIO_DEALER_ADMINISTRATOR", "CUSTOMER_EMPLOYEE"}}, policy.OpView, r, noRole},
		{"unknown op", policy.Subject{AppRoles: []string{policy.AppRoleAdmin}, Org: &policy.Membership{Kind: policy.OrgCustomer, ID: "c", Roles: []string{policy.RoleArmer}}}, policy.Op("delete"), r, noRole},
		{"location role at another location", policy.Subject{LocationRoles: map[string][]string{"elsewhere": {policy.RoleArmer}}}, policy.OpArm, r, noRole},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := policy.IsAllowed(tt.s, tt.op, tt.r, now); got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	s := policy.Subject{Org: &policy.Membership{Kind: policy.OrgCustomer, ID: "c", Roles: []string{policy.RoleArmer, policy.RoleDisarmer}}}
	if got := policy.Actions(s, r, now); len(got) != 2 || got[0] != "ARM" || got[1] != "DISARM" {
		t.Fatalf("Actions = %v", got)
	}
	if got := policy.Actions(policy.Subject{}, r, now); got == nil || len(got) != 0 {
		t.Fatalf("Actions of nobody = %#v, want an empty non-nil list", got)
	}
	w := policy.Wanted(policy.OpView)
	w[0] = "MUTATED"
	if policy.Wanted(policy.OpView)[0] == "MUTATED" {
		t.Fatal("Wanted returns shared state")
	}
}

func TestScheduleValidate(t *testing.T) {
	week := []string{"MON"}
	tests := []struct {
		name, field string
		s           policy.Schedule
	}{
		{"missing time zone", "timezone", policy.Schedule{Shifts: []policy.Shift{{Weekdays: week, Start: "09:00", End: "17:00"}}}},
		{"unknown time zone", "timezone", policy.Schedule{TimeZone: "Mars/Olympus_Mons", Shifts: []policy.Shift{{Weekdays: week, Start: "09:00", End: "17:00"}}}},
		{"Local", "timezone", policy.Schedule{TimeZone: "Local", Shifts: []policy.Shift{{Weekdays: week, Start: "09:00", End: "17:00"}}}},
		{"no shifts", "shifts", policy.Schedule{TimeZone: "UTC"}},
		{"empty shifts", "shifts", policy.Schedule{TimeZone: "UTC", Shifts: []policy.Shift{}}},
		{"no weekdays", "shifts[0].weekdays", policy.Schedule{TimeZone: "UTC", Shifts: []policy.Shift{{Start: "09:00", End: "17:00"}}}},
		{"bad weekday", "shifts[0].weekdays", policy.Schedule{TimeZone: "UTC", Shifts: []policy.Shift{{Weekdays: []string{"MONDAY"}, Start: "09:00", End: "17:00"}}}},
		{"lower-case weekday", "shifts[0].weekdays", policy.Schedule{TimeZone: "UTC", Shifts: []policy.Shift{{Weekdays: []string{"mon"}, Start: "09:00", End: "17:00"}}}},
		{"duplicate weekday", "shifts[1].weekdays", policy.Schedule{TimeZone: "UTC", Shifts: []policy.Shift{
			{Weekdays: week, Start: "09:00", End: "17:00"}, {Weekdays: []string{"TUE", "WED", "TUE"}, Start: "09:00", End: "17:00"}}}},
		{"24:00", "shifts[0].end", policy.Schedule{TimeZone: "UTC", Shifts: []policy.Shift{{Weekdays: week, Start: "09:00", End: "24:00"}}}},
		{"9:00", "shifts[0].start", policy.Schedule{TimeZone: "UTC", Shifts: []policy.Shift{{Weekdays: week, Start: "9:00", End: "17:00"}}}},
		{"signed hour", "shifts[0].start", policy.Schedule{TimeZone: "UTC", Shifts: []policy.Shift{{Weekdays: week, Start: "+9:00", End: "17:00"}}}},
		{"seconds", "shifts[0].end", policy.Schedule{TimeZone: "UTC", Shifts: []policy.Shift{{Weekdays: week, Start: "09:00", End: "17:00:00"}}}},
		{"minute 60", "shifts[0].end", policy.Schedule{TimeZone: "UTC", Shifts: []policy.Shift{{Weekdays: week, Start: "09:00", End: "16:60"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate()
			e := apperr.As(err)
			if e == nil || e.Code != apperr.Invalid || e.Field != tt.field {
				t.Fatalf("Validate() = %v, want Invalid on %s", err, tt.field)
			}
		})
	}
	for _, ok := range []policy.Schedule{
		{TimeZone: "Europe/Berlin", Shifts: []policy.Shift{{Weekdays: policy.Weekdays, Start: "00:00", End: "23:59"}}},
		{TimeZone: "UTC", Shifts: []policy.Shift{{Weekdays: week, Start: "22:00", End: "06:00"}, {Weekdays: week, Start: "08:00", End: "08:00"}}},
		{TimeZone: "America/New_York", Shifts: []policy.Shift{{Weekdays: week, Start: "09:00", End: "17:00"}}},
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", ok, err)
		}
	}
}

// TestScheduleCovers checks shift edges, night shifts and daylight-saving
// changes. Wall-clock times are compared in the schedule's zone, so a
// skipped hour is never covered and a repeated hour is covered twice.
func TestScheduleCovers(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	newYork, _ := time.LoadLocation("America/New_York")
	sched := func(tz, days, start, end string) policy.Schedule {
		var wd []string
		for i := 0; i+3 <= len(days); i += 4 {
			wd = append(wd, days[i:i+3])
		}
		return policy.Schedule{TimeZone: tz, Shifts: []policy.Shift{{Weekdays: wd, Start: start, End: end}}}
	}
	utc := func(y int, m time.Month, d, h, mi, s int) time.Time { return time.Date(y, m, d, h, mi, s, 0, time.UTC) }
	tests := []struct {
		name string
		s    policy.Schedule
		at   time.Time
		want bool
	}{
		{"day shift start inclusive", sched("UTC", "TUE", "09:00", "17:00"), utc(2026, 3, 3, 9, 0, 0), true},
		{"day shift before start", sched("UTC", "TUE", "09:00", "17:00"), utc(2026, 3, 3, 8, 59, 59), false},
		{"day shift last second", sched("UTC", "TUE", "09:00", "17:00"), utc(2026, 3, 3, 16, 59, 59), true},
		{"day shift end exclusive", sched("UTC", "TUE", "09:00", "17:00"), utc(2026, 3, 3, 17, 0, 0), false},
		{"day shift other weekday", sched("UTC", "TUE", "09:00", "17:00"), utc(2026, 3, 4, 10, 0, 0), false},
		{"night shift before midnight", sched("UTC", "FRI", "22:00", "06:00"), utc(2026, 3, 6, 23, 59, 59), true},
		{"night shift at midnight", sched("UTC", "FRI", "22:00", "06:00"), utc(2026, 3, 7, 0, 0, 0), true},
		{"night shift next morning", sched("UTC", "FRI", "22:00", "06:00"), utc(2026, 3, 7, 5, 59, 59), true},
		{"night shift end exclusive", sched("UTC", "FRI", "22:00", "06:00"), utc(2026, 3, 7, 6, 0, 0), false},
		{"night shift does not start on the next day", sched("UTC", "FRI", "22:00", "06:00"), utc(2026, 3, 7, 22, 0, 0), false},
		{"night shift morning before its day", sched("UTC", "FRI", "22:00", "06:00"), utc(2026, 3, 6, 5, 0, 0), false},
		{"SAT night shift ends Sunday (wraps the week)", sched("UTC", "SAT", "22:00", "06:00"), utc(2026, 3, 8, 5, 59, 0), true},
		{"24-hour shift start", sched("UTC", "MON", "08:00", "08:00"), utc(2026, 3, 2, 8, 0, 0), true},
		{"24-hour shift before start", sched("UTC", "MON", "08:00", "08:00"), utc(2026, 3, 2, 7, 59, 59), false},
		{"24-hour shift last second", sched("UTC", "MON", "08:00", "08:00"), utc(2026, 3, 3, 7, 59, 59), true},
		{"24-hour shift end exclusive", sched("UTC", "MON", "08:00", "08:00"), utc(2026, 3, 3, 8, 0, 0), false},
		{"midnight to midnight is the whole day", sched("UTC", "MON", "00:00", "00:00"), utc(2026, 3, 2, 23, 59, 59), true},
		{"midnight to midnight not the next", sched("UTC", "MON", "00:00", "00:00"), utc(2026, 3, 3, 0, 0, 0), false},
		{"time zone is the schedule's", sched("Europe/Berlin", "TUE", "09:00", "17:00"), utc(2026, 3, 3, 8, 0, 0), true},
		{"time zone is the schedule's, end", sched("Europe/Berlin", "TUE", "09:00", "17:00"), utc(2026, 3, 3, 16, 0, 0), false},
		{"weekday is the schedule zone's", sched("Asia/Tokyo", "WED", "00:00", "06:00"), utc(2026, 3, 3, 16, 0, 0), true},

		// Berlin springs forward on 2026-03-29: 02:00 CET becomes 03:00 CEST.
		{"spring forward 01:59:59 local", sched("Europe/Berlin", "SUN", "01:00", "03:00"), time.Date(2026, 3, 29, 1, 59, 59, 0, berlin), true},
		{"spring forward 03:00 local excluded", sched("Europe/Berlin", "SUN", "01:00", "03:00"), utc(2026, 3, 29, 1, 0, 0), false},
		{"spring forward 03:00 is one second after 01:59:59", sched("Europe/Berlin", "SUN", "01:00", "03:00"), utc(2026, 3, 29, 0, 59, 59), true},
		{"spring forward shift from 02:00 starts at 03:00", sched("Europe/Berlin", "SUN", "02:00", "04:00"), utc(2026, 3, 29, 0, 59, 59), false},
		{"spring forward shift from 02:00 is on at 03:00", sched("Europe/Berlin", "SUN", "02:00", "04:00"), utc(2026, 3, 29, 1, 0, 0), true},
		{"spring forward night shift, before the change", sched("Europe/Berlin", "SAT", "22:00", "06:00"), utc(2026, 3, 28, 21, 0, 0), true},
		{"spring forward night shift, before its start", sched("Europe/Berlin", "SAT", "22:00", "06:00"), utc(2026, 3, 28, 20, 59, 59), false},
		{"spring forward night shift, last second (7 hours long)", sched("Europe/Berlin", "SAT", "22:00", "06:00"), utc(2026, 3, 29, 3, 59, 59), true},
		{"spring forward night shift, end in CEST", sched("Europe/Berlin", "SAT", "22:00", "06:00"), utc(2026, 3, 29, 4, 0, 0), false},
		// Berlin falls back on 2026-10-25: 03:00 CEST becomes 02:00 CET.
		{"fall back first 02:30", sched("Europe/Berlin", "SUN", "02:00", "03:00"), utc(2026, 10, 25, 0, 30, 0), true},
		{"fall back second 02:30", sched("Europe/Berlin", "SUN", "02:00", "03:00"), utc(2026, 10, 25, 1, 30, 0), true},
		{"fall back first 02:00", sched("Europe/Berlin", "SUN", "02:00", "03:00"), utc(2026, 10, 25, 0, 0, 0), true},
		{"fall back 01:59:59 CEST", sched("Europe/Berlin", "SUN", "02:00", "03:00"), utc(2026, 10, 24, 23, 59, 59), false},
		{"fall back 03:00 CET", sched("Europe/Berlin", "SUN", "02:00", "03:00"), utc(2026, 10, 25, 2, 0, 0), false},
		{"fall back night shift, last second (9 hours long)", sched("Europe/Berlin", "SAT", "22:00", "06:00"), utc(2026, 10, 25, 4, 59, 59), true},
		{"fall back night shift, end in CET", sched("Europe/Berlin", "SAT", "22:00", "06:00"), utc(2026, 10, 25, 5, 0, 0), false},
		{"fall back night shift, start in CEST", sched("Europe/Berlin", "SAT", "22:00", "06:00"), utc(2026, 10, 24, 20, 0, 0), true},
		// New York springs forward on 2026-03-08 and falls back on 2026-11-01.
		{"New York spring forward, 09:00 EDT", sched("America/New_York", "SUN", "09:00", "17:00"), utc(2026, 3, 8, 13, 0, 0), true},
		{"New York spring forward, 08:59:59 EDT", sched("America/New_York", "SUN", "09:00", "17:00"), utc(2026, 3, 8, 12, 59, 59), false},
		{"New York spring forward, 01:59:59 EST", sched("America/New_York", "SUN", "01:00", "03:00"), time.Date(2026, 3, 8, 1, 59, 59, 0, newYork), true},
		{"New York spring forward, 03:00 EDT", sched("America/New_York", "SUN", "01:00", "03:00"), utc(2026, 3, 8, 7, 0, 0), false},
		{"New York fall back, first 01:30", sched("America/New_York", "SUN", "01:00", "02:00"), utc(2026, 11, 1, 5, 30, 0), true},
		{"New York fall back, second 01:30", sched("America/New_York", "SUN", "01:00", "02:00"), utc(2026, 11, 1, 6, 30, 0), true},
		{"New York fall back, 02:00 EST", sched("America/New_York", "SUN", "01:00", "02:00"), utc(2026, 11, 1, 7, 0, 0), false},
		{"New York night shift across fall back", sched("America/New_York", "SAT", "22:00", "06:00"), utc(2026, 11, 1, 10, 59, 59), true},
		{"New York night shift across fall back, end", sched("America/New_York", "SAT", "22:00", "06:00"), utc(2026, 11, 1, 11, 0, 0), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Covers(tt.at); got != tt.want {
				t.Fatalf("Covers(%s = %s) = %v, want %v", tt.at.UTC().Format(time.RFC3339), tt.at.In(mustLoad(tt.s.TimeZone)).Format(time.RFC3339), got, tt.want)
			}
		})
	}

	// A shift entirely inside the skipped hour covers nothing that day.
	skipped := sched("Europe/Berlin", "SUN", "02:30", "02:45")
	for at := time.Date(2026, 3, 28, 22, 0, 0, 0, time.UTC); at.Before(time.Date(2026, 3, 29, 23, 0, 0, 0, time.UTC)); at = at.Add(time.Minute) {
		if skipped.Covers(at) {
			t.Fatalf("02:30-02:45 covers %s on the day 02:00-03:00 does not exist", at.In(berlin))
		}
	}
	// The repeated hour is covered in full, twice: 2 hours of instants.
	repeated := sched("Europe/Berlin", "SUN", "02:00", "03:00")
	covered := 0
	for at := time.Date(2026, 10, 24, 22, 0, 0, 0, time.UTC); at.Before(time.Date(2026, 10, 25, 23, 0, 0, 0, time.UTC)); at = at.Add(time.Minute) {
		if repeated.Covers(at) {
			covered++
		}
	}
	if covered != 120 {
		t.Fatalf("02:00-03:00 on the fall-back day covers %d minutes, want 120", covered)
	}
}

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC
	}
	return loc
}

// TestGeneratedWorldsAgreeWithSubjectDerivation is a smoke test that the
// rule and the generator's derivation fit together: outsiders never get
// anything and admins view everything.
func TestGeneratedWorldsAgreeWithSubjectDerivation(t *testing.T) {
	w := policytest.Generate(11, policytest.Medium)
	for _, c := range w.Cases(rand.New(rand.NewSource(11)), 2000) {
		d := policytest.Expected(w, c)
		for _, o := range w.Outsiders {
			if c.UserID == o && d.Allowed {
				t.Fatalf("outsider allowed: %v", c)
			}
		}
		for _, a := range w.Admins {
			if c.UserID == a && d.Allowed != (c.Op == policy.OpView) {
				t.Fatalf("admin: %v -> %+v", c, d)
			}
		}
	}
}

// BenchmarkIsAllowed decides for a realistic customer employee: 50 location
// roles, an organization membership and a two-shift schedule, with the
// granting role found at the last location checked.
func BenchmarkIsAllowed(b *testing.B) {
	s := policy.Subject{
		UserID:        "u",
		AppRoles:      []string{"CUSTOMER_EMPLOYEE"},
		Org:           &policy.Membership{Kind: policy.OrgCustomer, ID: "other", Roles: []string{policy.RoleViewer}},
		LocationRoles: map[string][]string{},
		Schedule: &policy.Schedule{TimeZone: "Europe/Berlin", Shifts: []policy.Shift{
			{Weekdays: []string{"MON", "TUE", "WED", "THU", "FRI"}, Start: "09:00", End: "17:00"},
			{Weekdays: []string{"SAT"}, Start: "22:00", End: "06:00"},
		}},
	}
	for i := range 50 {
		s.LocationRoles[policytest.FixedID("bench-loc-"+string(rune('A'+i)))] = []string{policy.RoleViewer, policy.RoleArmer}
	}
	r := policy.Resource{SecuritySystemID: "ss", LocationID: policytest.FixedID("bench-loc-A"), CustomerID: "c", DealerID: "d", MonitoringProviderID: "p"}
	now := time.Date(2026, 3, 7, 23, 30, 0, 0, time.UTC) // Saturday night, on shift
	if d := policy.IsAllowed(s, policy.OpArm, r, now); !d.Allowed {
		b.Fatalf("benchmark subject denied: %+v", d)
	}
	b.ReportAllocs()
	for b.Loop() {
		policy.IsAllowed(s, policy.OpArm, r, now)
	}
}
