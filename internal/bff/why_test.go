package bff

import (
	"testing"

	"github.com/realguardio/realguardio/internal/policy"
)

// TestExplainAccess checks the dashboard's explanations of rows without a
// button, in the words of issue 13, for AUTHZ.md's fixed cases.
func TestExplainAccess(t *testing.T) {
	berlin := &policy.Schedule{TimeZone: "Europe/Berlin", Shifts: []policy.Shift{{Weekdays: []string{"MON", "TUE", "WED", "THU", "FRI"}, Start: "09:00", End: "17:00"}}}
	armed := securitySystem{ID: "s1", State: "ARMED"}
	disarmed := securitySystem{ID: "s1", State: "DISARMED"}
	for _, c := range []struct {
		name  string
		ss    securitySystem
		users []accessUser
		admin bool
		want  string
	}{
		{"frank outside his shift", armed, []accessUser{{Actions: []string{"VIEW", "DISARM"}, AllowedNow: []string{"VIEW"}, Schedule: berlin,
			Grants: []policy.Grant{{Role: policy.RoleDisarmer, Via: policy.ViaLocation, ID: "l1", Name: "HQ"}}}}, false,
			"Outside your shift: Mon–Fri 09:00–17:00 Europe/Berlin (role DISARMER at HQ)."},
		{"frank in his shift, nothing to disarm", disarmed, []accessUser{{Actions: []string{"VIEW", "DISARM"}, AllowedNow: []string{"VIEW", "DISARM"}, Schedule: berlin,
			Grants: []policy.Grant{{Role: policy.RoleDisarmer, Via: policy.ViaLocation, ID: "l1", Name: "HQ"}}}}, false,
			"Already disarmed; you may disarm but not arm. Role DISARMER at HQ. Your shift: Mon–Fri 09:00–17:00 Europe/Berlin."},
		{"charlie through his team", disarmed, []accessUser{{Actions: []string{"VIEW", "DISARM"}, AllowedNow: []string{"VIEW", "DISARM"},
			Grants: []policy.Grant{{Role: policy.RoleDisarmer, Via: policy.ViaTeam, ID: "t1", Name: "Night Watch"}}}}, false,
			"Already disarmed; you may disarm but not arm. Granted through team Night Watch (DISARMER)."},
		{"a viewer at a location", armed, []accessUser{{Actions: []string{"VIEW"}, AllowedNow: []string{"VIEW"},
			Grants: []policy.Grant{{Role: policy.RoleViewer, Via: policy.ViaLocation, ID: "l2", Name: "Lab"}}}}, false,
			"View only: role VIEWER at Lab."},
		{"erin through the dealer's provider", armed, []accessUser{{Actions: []string{"VIEW"}, AllowedNow: []string{"VIEW"},
			Grants: []policy.Grant{{Role: policy.RoleViewer, Via: policy.ViaMonitoringProvider, ID: "p1", Name: "WatchTower"}}}}, false,
			"View only: role VIEWER at monitoring provider WatchTower."},
		{"the platform administrator", armed, nil, true,
			"View only: as platform administrator you see every system and may arm or disarm none."},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := explainAccess(c.ss, c.users, c.admin, nil); got != c.want {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}

func TestDescribeSchedule(t *testing.T) {
	for _, c := range []struct {
		s    policy.Schedule
		want string
	}{
		{policy.Schedule{TimeZone: "UTC", Shifts: []policy.Shift{{Weekdays: []string{"SAT"}, Start: "22:00", End: "06:00"}}}, "Sat 22:00–06:00 UTC"},
		{policy.Schedule{TimeZone: "UTC", Shifts: []policy.Shift{{Weekdays: []string{"SUN", "MON", "WED"}, Start: "08:00", End: "12:00"}, {Weekdays: policy.Weekdays, Start: "13:00", End: "14:00"}}},
			"Mon, Wed, Sun 08:00–12:00, Every day 13:00–14:00 UTC"},
		{policy.Schedule{TimeZone: "Europe/Berlin", Shifts: []policy.Shift{{Weekdays: []string{"FRI", "SAT", "SUN", "MON"}, Start: "09:00", End: "17:00"}}}, "Mon, Fri–Sun 09:00–17:00 Europe/Berlin"},
	} {
		if got := describeSchedule(c.s); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}
