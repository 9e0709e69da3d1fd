package customer_test

import (
	"reflect"
	"testing"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

// TestDeleteTeamAndLocation checks DELETE of a team and of a location: only
// the customer's administrators delete, what the team or location gave is
// revoked in the events consumers already apply before the deletion event,
// and a location with a security system is refused with nothing changed.
func TestDeleteTeamAndLocation(t *testing.T) {
	sqldbtest.ForEachStore(t, nil, func(t *testing.T, db *sqldb.DB) { testDeleteTeamAndLocation(t, newWorldOn(t, newEnv(t, db))) })
}

func testDeleteTeamAndLocation(t *testing.T, w *world) {
	acme := "/customers/" + w.acme
	d1 := uuid.NewString()
	w.publishDealer(d1, "Dealer One")
	loc := w.must(201, "POST", acme+"/locations", w.alice.Token, map[string]any{"name": "HQ", "dealerId": d1})["id"].(string)
	busy := w.must(201, "POST", acme+"/locations", w.alice.Token, map[string]any{"name": "Busy"})["id"].(string)
	team := w.must(201, "POST", acme+"/teams", w.alice.Token, map[string]any{"name": "Night Watch"})["id"].(string)
	w.must(204, "PUT", acme+"/teams/"+team+"/members/"+w.carol.EmployeeID, w.alice.Token, nil)
	w.must(204, "PUT", acme+"/teams/"+team+"/members/"+w.dave.EmployeeID, w.alice.Token, nil)
	w.must(200, "PUT", acme+"/locations/"+loc+"/team-roles/"+team, w.alice.Token, map[string]any{"roles": []string{disarmer}})
	w.must(200, "PUT", acme+"/locations/"+busy+"/team-roles/"+team, w.alice.Token, map[string]any{"roles": []string{viewer}})
	w.must(200, "PUT", acme+"/locations/"+loc+"/employee-roles/"+w.carol.EmployeeID, w.alice.Token, map[string]any{"roles": []string{armer}})

	// Who may delete: the customer's administrators only.
	for _, tok := range []string{w.carol.Token, w.bob.Token, w.platform} {
		w.expect(403, "", "DELETE", acme+"/teams/"+team, tok, nil)
		w.expect(403, "", "DELETE", acme+"/locations/"+loc, tok, nil)
	}
	w.expect(404, "", "DELETE", "/customers/"+w.foo+"/teams/"+team, w.bob.Token, nil)
	w.expect(404, "", "DELETE", acme+"/teams/"+uuid.NewString(), w.alice.Token, nil)

	pos := w.lastPos()
	w.must(204, "DELETE", acme+"/teams/"+team, w.alice.Token, nil)
	evs, pos := w.eventsSince(pos)
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type)
	}
	want := []string{"customer.team_member_removed", "customer.team_member_removed",
		"customer.location_team_roles_set", "customer.location_team_roles_set", "customer.team_deleted"}
	if !reflect.DeepEqual(types, want) {
		t.Fatalf("team deletion events = %v, want %v", types, want)
	}
	for _, ev := range evs[2:4] {
		if !reflect.DeepEqual(ev.Payload["roles"], []any{}) || ev.Payload["teamId"] != team {
			t.Fatalf("revocation %v", ev.Payload)
		}
	}
	w.expect(404, "", "GET", acme+"/teams/"+team, w.alice.Token, nil)
	w.expect(404, "", "DELETE", acme+"/teams/"+team, w.alice.Token, nil)
	if l := w.must(200, "GET", acme+"/locations/"+loc, w.alice.Token, nil); len(l["teamRoles"].([]any)) != 0 {
		t.Fatalf("the deleted team still holds roles: %v", l)
	}

	// A location with a security system is refused, with nothing changed.
	w.publishSystem(uuid.NewString(), busy)
	w.expect(409, "", "DELETE", acme+"/locations/"+busy, w.alice.Token, nil)
	if evs, _ := w.eventsSince(pos); len(evs) != 0 {
		t.Fatalf("a refused deletion wrote %v", evs)
	}
	w.must(200, "GET", acme+"/locations/"+busy, w.alice.Token, nil)

	w.must(204, "DELETE", acme+"/locations/"+loc, w.alice.Token, nil)
	evs, _ = w.eventsSince(pos)
	types = nil
	for _, ev := range evs {
		types = append(types, ev.Type)
	}
	want = []string{"customer.location_employee_roles_set", "customer.location_dealer_changed", "customer.location_deleted"}
	if !reflect.DeepEqual(types, want) {
		t.Fatalf("location deletion events = %v, want %v", types, want)
	}
	if p := evs[0].Payload; p["employeeId"] != w.carol.EmployeeID || p["userId"] != w.carol.UserID || !reflect.DeepEqual(p["roles"], []any{}) {
		t.Fatalf("revocation %v", p)
	}
	if p := evs[1].Payload; p["dealerId"] != nil || p["previousDealerId"] != d1 {
		t.Fatalf("dealer change %v", p)
	}
	w.expect(404, "", "GET", acme+"/locations/"+loc, w.alice.Token, nil)
	// Carol's facts no longer name the location.
	svc := w.iss.service(t, "realguardio-securitysystem", "authz:read")
	if subj := w.must(200, "GET", "/authz/subjects/"+w.carol.UserID, svc, nil); subj["locationRoles"] != nil && len(subj["locationRoles"].(map[string]any)) != 0 {
		t.Fatalf("carol's location roles after the deletion = %v", subj["locationRoles"])
	}
}
