package customer_test

import (
	"reflect"
	"testing"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

// TestAccessFactsEndpoints checks the Customer Service's access-review
// facts (docs/fetch-api.md, "Access review") on both stores: who holds
// roles at a location directly, through teams and as organization roles,
// in username order, paged by position, for one user, and who may ask.
func TestAccessFactsEndpoints(t *testing.T) {
	sqldbtest.ForEachStore(t, nil, func(t *testing.T, db *sqldb.DB) {
		w := newWorldOn(t, newEnv(t, db))
		acme := "/customers/" + w.acme
		d1 := uuid.NewString()
		w.publishDealer(d1, "Dealer One")
		l1 := w.must(201, "POST", acme+"/locations", w.alice.Token, map[string]any{"name": "HQ", "dealerId": d1})["id"].(string)
		l2 := w.must(201, "POST", acme+"/locations", w.alice.Token, map[string]any{"name": "Warehouse"})["id"].(string)
		team := w.must(201, "POST", acme+"/teams", w.alice.Token, map[string]any{"name": "Night Watch"})["id"].(string)
		// Usernames are the lower-cased e-mail addresses.
		zed := w.createEmployee(w.alice.Token, w.acme, "Zed@acme.test", "Zed")
		erik := w.createEmployee(w.alice.Token, w.acme, "erik@acme.test", "Erik")
		w.must(204, "PUT", acme+"/teams/"+team+"/members/"+w.carol.EmployeeID, w.alice.Token, nil)
		w.must(204, "PUT", acme+"/teams/"+team+"/members/"+w.dave.EmployeeID, w.alice.Token, nil)
		w.must(200, "PUT", acme+"/locations/"+l1+"/employee-roles/"+w.carol.EmployeeID, w.alice.Token, map[string]any{"roles": []string{armer}})
		w.must(200, "PUT", acme+"/locations/"+l1+"/team-roles/"+team, w.alice.Token, map[string]any{"roles": []string{disarmer}})
		w.must(200, "PUT", acme+"/locations/"+l2+"/employee-roles/"+erik.EmployeeID, w.alice.Token, map[string]any{"roles": []string{viewer}})
		w.must(200, "PUT", acme+"/employees/"+zed.EmployeeID+"/roles", w.alice.Token, map[string]any{"roles": []string{viewer, empAdmin}})
		w.must(200, "PUT", acme+"/employees/"+w.dave.EmployeeID+"/schedule", w.alice.Token, map[string]any{
			"timezone": "Europe/Berlin", "shifts": []any{map[string]any{"weekdays": []string{"MON"}, "start": "09:00", "end": "17:00"}}})
		// bob's customer Foo: nothing of it may appear.
		w.must(200, "PUT", "/customers/"+w.foo+"/employees/"+w.fred.EmployeeID+"/roles", w.bob.Token, map[string]any{"roles": []string{disarmer}})

		svc := w.iss.service(t, "realguardio-securitysystem", "authz:read")
		path := "/authz/locations/" + l1 + "/access"
		out := w.must(200, "GET", path, svc, nil)
		if out["locationId"] != l1 || out["locationName"] != "HQ" || out["customerId"] != w.acme || out["customerName"] != "Acme" ||
			out["dealerId"] != d1 || out["more"] != false {
			t.Fatalf("location access = %v", out)
		}
		users := out["users"].([]any)
		var names []string
		for _, u := range users {
			names = append(names, u.(map[string]any)["username"].(string))
		}
		// alice (administrator only) and erik (at the other location) are
		// not holders here; the e-mail is stored lower-cased.
		if want := []string{"carol@acme.test", "dave@acme.test", "zed@acme.test"}; !reflect.DeepEqual(names, want) {
			t.Fatalf("holders = %v, want %v", names, want)
		}
		carol := users[0].(map[string]any)
		wantCarol := map[string]any{"userId": w.carol.UserID, "username": "carol@acme.test", "organizationRoles": []any{},
			"locationRoles": []any{armer}, "teams": []any{map[string]any{"teamId": team, "name": "Night Watch", "roles": []any{disarmer}}}, "schedule": nil}
		if !reflect.DeepEqual(carol, wantCarol) {
			t.Fatalf("carol = %v\nwant %v", carol, wantCarol)
		}
		if dave := users[1].(map[string]any); dave["schedule"] == nil || !reflect.DeepEqual(dave["locationRoles"], []any{}) {
			t.Fatalf("dave = %v", dave)
		}
		if z := users[2].(map[string]any); !reflect.DeepEqual(z["organizationRoles"], []any{viewer}) {
			t.Fatalf("zed's organization roles = %v (the administrator role grants nothing on systems)", z["organizationRoles"])
		}

		// Paging by position: two pages of one and two.
		p1 := w.must(200, "GET", path+"?limit=1", svc, nil)
		if us := p1["users"].([]any); len(us) != 1 || p1["more"] != true || us[0].(map[string]any)["userId"] != w.carol.UserID {
			t.Fatalf("page 1 = %v", p1)
		}
		p2 := w.must(200, "GET", path+"?limit=2&afterUsername=carol@acme.test&afterUserId="+w.carol.UserID, svc, nil)
		if us := p2["users"].([]any); len(us) != 2 || p2["more"] != false || us[0].(map[string]any)["userId"] != w.dave.UserID {
			t.Fatalf("page 2 = %v", p2)
		}
		// One user only.
		if one := w.must(200, "GET", path+"?userId="+w.dave.UserID, svc, nil); len(one["users"].([]any)) != 1 {
			t.Fatalf("userId filter = %v", one)
		}
		if none := w.must(200, "GET", path+"?userId="+w.fred.UserID, svc, nil); len(none["users"].([]any)) != 0 {
			t.Fatalf("another customer's employee = %v", none)
		}
		// The organization role holders of the kit.
		rh := w.must(200, "GET", "/authz/organizations/"+w.acme+"/role-holders", svc, nil)
		if rh["name"] != "Acme" || rh["kind"] != "customer" || len(rh["users"].([]any)) != 1 || rh["users"].([]any)[0].(map[string]any)["userId"] != zed.UserID {
			t.Fatalf("role holders = %v", rh)
		}

		// Faults: bad parameters, unknown ids, callers without the scope.
		w.expect(400, "limit", "GET", path+"?limit=x", svc, nil)
		w.expect(422, "limit", "GET", path+"?limit=0", svc, nil)
		w.expect(422, "limit", "GET", path+"?limit=1001", svc, nil)
		w.expect(400, "afterUserId", "GET", path+"?afterUsername=a&afterUserId=nope", svc, nil)
		w.expect(422, "afterUserId", "GET", path+"?afterUsername=a", svc, nil)
		w.expect(400, "userId", "GET", path+"?userId=me", svc, nil)
		w.expect(404, "", "GET", "/authz/locations/"+uuid.NewString()+"/access", svc, nil)
		w.expect(404, "", "GET", "/authz/organizations/"+uuid.NewString()+"/role-holders", svc, nil)
		w.expect(403, "", "GET", path, w.alice.Token, nil)
		w.expect(403, "", "GET", "/authz/organizations/"+w.acme+"/role-holders", w.alice.Token, nil)
		w.expect(403, "", "GET", path, w.iss.service(t, "realguardio-bff", "users:write"), nil)
		w.expect(401, "", "GET", path, "", nil)

		// The console's read of the same holders: the customer's
		// administrators and the platform administrator, paged by cursor.
		console := acme + "/locations/" + l1 + "/access"
		all := w.must(200, "GET", console, w.alice.Token, nil)
		var got []string
		for _, u := range all["users"].([]any) {
			got = append(got, u.(map[string]any)["employeeId"].(string))
		}
		if want := []string{w.carol.EmployeeID, w.dave.EmployeeID, zed.EmployeeID}; !reflect.DeepEqual(got, want) || all["nextCursor"] != nil || all["dealerId"] != d1 {
			t.Fatalf("console holders = %v (employees %v, want %v)", all, got, want)
		}
		first := w.must(200, "GET", console+"?limit=2", w.platform, nil)
		if us := first["users"].([]any); len(us) != 2 || first["nextCursor"] == nil {
			t.Fatalf("first console page = %v", first)
		}
		rest := w.must(200, "GET", console+"?limit=2&cursor="+first["nextCursor"].(string), w.alice.Token, nil)
		if us := rest["users"].([]any); len(us) != 1 || us[0].(map[string]any)["employeeId"] != zed.EmployeeID || rest["nextCursor"] != nil {
			t.Fatalf("second console page = %v", rest)
		}
		w.expect(400, "cursor", "GET", console+"?cursor=nope", w.alice.Token, nil)
		// An employee who is no administrator, another customer's
		// administrator, and another customer's location.
		w.expect(403, "", "GET", console, w.carol.Token, nil)
		w.expect(403, "", "GET", console, w.bob.Token, nil)
		w.expect(404, "", "GET", "/customers/"+w.foo+"/locations/"+l1+"/access", w.bob.Token, nil)
	})
}
