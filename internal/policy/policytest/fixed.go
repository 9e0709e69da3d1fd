package policytest

import (
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/policy"
)

// FixedID returns the stable id of a named entity of FixedWorld ("alice",
// "acme", "loc1", "ss1", ...), so tests can print names and use UUIDs.
func FixedID(name string) string {
	return uuid.NewSHA1(idNamespace, []byte("fixed/"+name)).String()
}

// FixedWorld returns the facts of AUTHZ.md's fixed conformance cases:
// customers acme (loc1 serviced by d1, loc3 without dealer) and foo (loc2);
// dealers d1 (using provider p1) and d2; alice (DISARMER in acme), mary
// (DISARMER at loc3), charlie (member of t1, which holds DISARMER at loc1),
// dave (DISARMER in d1), erin (VIEWER in p1), frank (DISARMER at loc1,
// MON-FRI 09:00-17:00 Europe/Berlin), grace (ARMER at loc1, SAT 22:00-06:00
// UTC), the admin, and systems ss1, ss2, ss3 at loc1, loc2, loc3.
func FixedWorld() *World {
	id := FixedID
	emp := func(name string, kind policy.OrgKind, org string, roles ...string) Employee {
		return Employee{UserID: id(name), OrgKind: kind, OrgID: id(org), Roles: append([]string{}, roles...)}
	}
	w := &World{
		Seed:                -1,
		Customers:           []Customer{{ID: id("acme")}, {ID: id("foo")}},
		MonitoringProviders: []MonitoringProvider{{ID: id("p1")}},
		Dealers:             []Dealer{{ID: id("d1"), MonitoringProviderID: id("p1")}, {ID: id("d2")}},
		Locations: []Location{
			{ID: id("loc1"), CustomerID: id("acme"), DealerID: id("d1")},
			{ID: id("loc2"), CustomerID: id("foo")},
			{ID: id("loc3"), CustomerID: id("acme")},
		},
		Employees: []Employee{
			emp("alice", policy.OrgCustomer, "acme", policy.RoleDisarmer),
			emp("mary", policy.OrgCustomer, "acme"),
			emp("charlie", policy.OrgCustomer, "acme"),
			emp("dave", policy.OrgDealer, "d1", policy.RoleDisarmer),
			emp("erin", policy.OrgMonitoringProvider, "p1", policy.RoleViewer),
			emp("frank", policy.OrgCustomer, "acme"),
			emp("grace", policy.OrgCustomer, "acme"),
		},
		Teams: []Team{{ID: id("t1"), CustomerID: id("acme"), Members: []string{id("charlie")}}},
		SecuritySystems: []SecuritySystem{
			{ID: id("ss1"), LocationID: id("loc1")},
			{ID: id("ss2"), LocationID: id("loc2")},
			{ID: id("ss3"), LocationID: id("loc3")},
		},
		Admins: []string{id("admin")},
	}
	w.reindex()
	w.Employees[w.employee[id("frank")]].Schedule = &policy.Schedule{TimeZone: "Europe/Berlin", Shifts: []policy.Shift{
		{Weekdays: []string{"MON", "TUE", "WED", "THU", "FRI"}, Start: "09:00", End: "17:00"},
	}}
	w.Employees[w.employee[id("grace")]].Schedule = &policy.Schedule{TimeZone: "UTC", Shifts: []policy.Shift{
		{Weekdays: []string{"SAT"}, Start: "22:00", End: "06:00"},
	}}
	w.setEmployeeLocationRoles(id("loc3"), id("mary"), []string{policy.RoleDisarmer})
	w.setEmployeeLocationRoles(id("loc1"), id("frank"), []string{policy.RoleDisarmer})
	w.setEmployeeLocationRoles(id("loc1"), id("grace"), []string{policy.RoleArmer})
	w.setTeamLocationRoles(id("loc1"), id("t1"), []string{policy.RoleDisarmer})
	return w
}

// FixedCase is one of AUTHZ.md's fixed conformance cases over FixedWorld:
// apply Before (in order) to a fresh FixedWorld, then Case must decide Want.
type FixedCase struct {
	Name   string
	Before []Change
	Case   Case
	Want   policy.Decision
}

// FixedCases returns AUTHZ.md's fixed conformance cases, with the reasons
// of the denials. Instants without a schedule in play are a Tuesday noon.
func FixedCases() []FixedCase {
	id := FixedID
	berlin, _ := time.LoadLocation("Europe/Berlin")
	noon := time.Date(2026, 3, 3, 12, 0, 0, 0, time.UTC) // a Tuesday
	allow := policy.Decision{Allowed: true}
	noRole := policy.Decision{Reason: policy.ReasonNoRole}
	outside := policy.Decision{Reason: policy.ReasonOutsideSchedule}
	w := FixedWorld()
	c := func(user string, op policy.Op, system string, at time.Time) Case {
		return Case{UserID: id(user), AppRoles: w.AppRoles(id(user)), Op: op, SecuritySystemID: id(system), At: at}
	}
	removeCharlie := Change{Kind: ChangeTeamMemberRemoved, CustomerID: id("acme"), TeamID: id("t1"), UserID: id("charlie")}
	loc1ToD2 := Change{Kind: ChangeLocationDealer, CustomerID: id("acme"), LocationID: id("loc1"), DealerID: id("d2")}
	tue := func(h, m int) time.Time { return time.Date(2026, 3, 3, h, m, 0, 0, berlin) }
	utc := func(d, h, m int) time.Time { return time.Date(2026, 3, d, h, m, 0, 0, time.UTC) } // 7 = Saturday
	return []FixedCase{
		{Name: "alice disarms ss1 by her customer role", Case: c("alice", policy.OpDisarm, "ss1", noon), Want: allow},
		{Name: "alice views ss1", Case: c("alice", policy.OpView, "ss1", noon), Want: allow},
		{Name: "alice may not arm ss1", Case: c("alice", policy.OpArm, "ss1", noon), Want: noRole},
		{Name: "alice may not disarm ss2 of foo", Case: c("alice", policy.OpDisarm, "ss2", noon), Want: noRole},
		{Name: "mary disarms ss3 by her location role", Case: c("mary", policy.OpDisarm, "ss3", noon), Want: allow},
		{Name: "mary may not disarm ss1", Case: c("mary", policy.OpDisarm, "ss1", noon), Want: noRole},
		{Name: "mary may not disarm ss2", Case: c("mary", policy.OpDisarm, "ss2", noon), Want: noRole},
		{Name: "charlie disarms ss1 through t1", Case: c("charlie", policy.OpDisarm, "ss1", noon), Want: allow},
		{Name: "charlie may not disarm ss2", Case: c("charlie", policy.OpDisarm, "ss2", noon), Want: noRole},
		{Name: "charlie may not disarm ss3", Case: c("charlie", policy.OpDisarm, "ss3", noon), Want: noRole},
		{Name: "charlie removed from t1 may not disarm ss1", Before: []Change{removeCharlie}, Case: c("charlie", policy.OpDisarm, "ss1", noon), Want: noRole},
		{Name: "dave disarms ss1 through dealer d1", Case: c("dave", policy.OpDisarm, "ss1", noon), Want: allow},
		{Name: "dave may not disarm ss1 once loc1 is d2's", Before: []Change{loc1ToD2}, Case: c("dave", policy.OpDisarm, "ss1", noon), Want: noRole},
		{Name: "erin views ss1 through p1", Case: c("erin", policy.OpView, "ss1", noon), Want: allow},
		{Name: "erin may not disarm ss1", Case: c("erin", policy.OpDisarm, "ss1", noon), Want: noRole},
		{Name: "erin may not view ss1 once loc1 is d2's", Before: []Change{loc1ToD2}, Case: c("erin", policy.OpView, "ss1", noon), Want: noRole},
		{Name: "frank disarms ss1 Tuesday 10:00 Berlin", Case: c("frank", policy.OpDisarm, "ss1", tue(10, 0)), Want: allow},
		{Name: "frank may not disarm ss1 Tuesday 18:00 Berlin", Case: c("frank", policy.OpDisarm, "ss1", tue(18, 0)), Want: outside},
		{Name: "frank views ss1 Tuesday 18:00 Berlin", Case: c("frank", policy.OpView, "ss1", tue(18, 0)), Want: allow},
		{Name: "frank views ss1 Sunday 03:00 Berlin", Case: c("frank", policy.OpView, "ss1", time.Date(2026, 3, 8, 3, 0, 0, 0, berlin)), Want: allow},
		{Name: "frank may not arm ss1 within his shift", Case: c("frank", policy.OpArm, "ss1", tue(10, 0)), Want: noRole},
		{Name: "grace arms ss1 Sunday 05:59 UTC", Case: c("grace", policy.OpArm, "ss1", utc(8, 5, 59)), Want: allow},
		{Name: "grace may not arm ss1 Sunday 06:00 UTC", Case: c("grace", policy.OpArm, "ss1", utc(8, 6, 0)), Want: outside},
		{Name: "grace arms ss1 Saturday 22:00 UTC", Case: c("grace", policy.OpArm, "ss1", utc(7, 22, 0)), Want: allow},
		{Name: "grace may not arm ss1 Saturday 21:59 UTC", Case: c("grace", policy.OpArm, "ss1", utc(7, 21, 59)), Want: outside},
		{Name: "grace views ss1 Saturday 21:59 UTC", Case: c("grace", policy.OpView, "ss1", utc(7, 21, 59)), Want: allow},
		{Name: "admin views ss1", Case: c("admin", policy.OpView, "ss1", noon), Want: allow},
		{Name: "admin views ss2", Case: c("admin", policy.OpView, "ss2", noon), Want: allow},
		{Name: "admin views ss3", Case: c("admin", policy.OpView, "ss3", noon), Want: allow},
		{Name: "admin may not disarm ss1", Case: c("admin", policy.OpDisarm, "ss1", noon), Want: noRole},
		{Name: "admin may not arm ss2", Case: c("admin", policy.OpArm, "ss2", noon), Want: noRole},
		{Name: "alice, also holding REALGUARDIO_ADMIN, views ss2 of foo",
			Case: Case{UserID: id("alice"), AppRoles: []string{"CUSTOMER_EMPLOYEE", policy.AppRoleAdmin}, Op: policy.OpView, SecuritySystemID: id("ss2"), At: noon}, Want: allow},
	}
}

// Names returns the FixedWorld name of each id in ids (or the id itself),
// for readable failure messages.
func Names(ids ...string) []string {
	names := []string{"acme", "foo", "loc1", "loc2", "loc3", "d1", "d2", "p1", "alice", "mary", "charlie",
		"dave", "erin", "frank", "grace", "admin", "t1", "ss1", "ss2", "ss3"}
	out := make([]string, len(ids))
	for i, x := range ids {
		out[i] = x
		if j := slices.IndexFunc(names, func(n string) bool { return FixedID(n) == x }); j >= 0 {
			out[i] = names[j]
		}
	}
	return out
}
