package customer_test

import (
	"fmt"
	"net/url"
	"reflect"
	"testing"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

// pageAll follows nextCursor from path (which may carry a query) and
// returns every item of key, failing on a repeated id.
func (w *world) pageAll(path, token, key string, limit int) []map[string]any {
	w.t.Helper()
	var out []map[string]any
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		q := url.Values{"limit": {fmt.Sprint(limit)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		sep := "?"
		if u, _ := url.Parse(path); u.RawQuery != "" {
			sep = "&"
		}
		body := w.must(200, "GET", path+sep+q.Encode(), token, nil)
		items, _ := body[key].([]any)
		if len(items) > limit {
			w.t.Fatalf("%s: page of %d items for limit %d", path, len(items), limit)
		}
		for _, it := range items {
			m := it.(map[string]any)
			id, _ := m["id"].(string)
			if id == "" {
				id, _ = m["employeeId"].(string)
			}
			if seen[id] {
				w.t.Fatalf("%s: %s listed twice", path, id)
			}
			seen[id] = true
			out = append(out, m)
		}
		next, _ := body["nextCursor"].(string)
		if next == "" {
			return out
		}
		if pages > 1000 {
			w.t.Fatalf("%s: paging does not end", path)
		}
		cursor = next
	}
}

func TestImports(t *testing.T) {
	sqldbtest.ForEachStore(t, nil, func(t *testing.T, db *sqldb.DB) {
		testImports(t, newWorldOn(t, newEnv(t, db)))
	})
}

func testImports(t *testing.T, w *world) {
	acme := "/customers/" + w.acme
	d1 := uuid.NewString()
	w.publishDealer(d1, "Dealer One")

	items := make([]map[string]any, 30)
	for i := range items {
		items[i] = map[string]any{"name": fmt.Sprintf("Site %02d", 29-i)}
		if i%3 == 0 {
			items[i]["dealerId"] = d1
		}
	}
	items[5]["dealerId"] = nil
	bad := func(i int, k string, v any) []map[string]any {
		c := make([]map[string]any, len(items))
		for j := range items {
			c[j] = map[string]any{}
			for kk, vv := range items[j] {
				c[j][kk] = vv
			}
		}
		c[i][k] = v
		return c
	}

	// One invalid item is a 422 naming it, and nothing is created.
	pos := w.lastPos()
	w.expect(422, "locations[17].name", "POST", acme+"/locations/import", w.alice.Token, map[string]any{"locations": bad(17, "name", " ")})
	w.expect(422, "locations[4].dealerId", "POST", acme+"/locations/import", w.alice.Token, map[string]any{"locations": bad(4, "dealerId", "nope")})
	w.expect(422, "locations[29].dealerId", "POST", acme+"/locations/import", w.alice.Token, map[string]any{"locations": bad(29, "dealerId", uuid.NewString())})
	w.expect(422, "locations", "POST", acme+"/locations/import", w.alice.Token, map[string]any{})
	w.expect(400, "extra", "POST", acme+"/locations/import", w.alice.Token, map[string]any{"locations": []any{map[string]any{"name": "x", "extra": 1}}})
	tooMany := make([]map[string]any, 10001)
	for i := range tooMany {
		tooMany[i] = map[string]any{"name": "x"}
	}
	w.expect(422, "locations", "POST", acme+"/locations/import", w.alice.Token, map[string]any{"locations": tooMany})
	// Authorization as for POST .../locations.
	w.expect(403, "", "POST", acme+"/locations/import", w.dave.Token, map[string]any{"locations": items})
	w.expect(403, "", "POST", acme+"/locations/import", w.bob.Token, map[string]any{"locations": items})
	if evs, _ := w.eventsSince(pos); len(evs) != 0 {
		t.Fatalf("refused imports wrote events: %v", evs)
	}

	out := w.must(201, "POST", acme+"/locations/import", w.alice.Token, map[string]any{"locations": items})
	ids, _ := out["ids"].([]any)
	if len(ids) != len(items) {
		t.Fatalf("ids = %v", out)
	}
	evs, _ := w.eventsSince(pos)
	if len(evs) != len(items) {
		t.Fatalf("%d events for %d locations", len(evs), len(items))
	}
	for i, ev := range evs {
		want := map[string]any{"customerId": w.acme, "locationId": ids[i], "name": items[i]["name"], "dealerId": items[i]["dealerId"]}
		if ev.Type != "customer.location_created" || ev.AggregateID != w.acme || !reflect.DeepEqual(ev.Payload, want) {
			t.Fatalf("event %d = %+v; want customer.location_created %v", i, ev, want)
		}
	}
	// Each id is the item at its index.
	for _, i := range []int{0, 5, 29} {
		l := w.must(200, "GET", acme+"/locations/"+ids[i].(string), w.carol.Token, nil)
		if l["name"] != items[i]["name"] || l["dealerId"] != items[i]["dealerId"] {
			t.Fatalf("location %d = %v; want %v", i, l, items[i])
		}
	}

	// Paging: every location once, in name order; the filter; errors.
	all := w.pageAll(acme+"/locations", w.carol.Token, "locations", 7)
	if len(all) != 30 || all[0]["name"] != "Site 00" || all[29]["name"] != "Site 29" {
		t.Fatalf("paged locations: %d, first %v", len(all), all[0])
	}
	if got := w.pageAll(acme+"/locations?q=site+1", w.carol.Token, "locations", 3); len(got) != 10 {
		t.Fatalf("q=site 1: %d locations", len(got))
	}
	first := w.must(200, "GET", acme+"/locations?limit=2", w.carol.Token, nil)
	w.expect(400, "cursor", "GET", acme+"/locations?q=x&cursor="+first["nextCursor"].(string), w.carol.Token, nil)
	w.expect(400, "cursor", "GET", acme+"/teams?cursor="+first["nextCursor"].(string), w.carol.Token, nil)
	w.expect(400, "limit", "GET", acme+"/locations?limit=ten", w.carol.Token, nil)
	w.expect(422, "limit", "GET", acme+"/locations?limit=0", w.carol.Token, nil)
	w.expect(422, "limit", "GET", acme+"/locations?limit=501", w.carol.Token, nil)
	if last := w.must(200, "GET", acme+"/locations?limit=500", w.carol.Token, nil); last["nextCursor"] != nil {
		t.Fatalf("last page nextCursor = %v", last["nextCursor"])
	}
	w.expect(403, "", "GET", acme+"/locations", w.fred.Token, nil)

	// Location roles.
	grant := func(loc any, emp string, roles ...string) map[string]any {
		if roles == nil {
			roles = []string{}
		}
		return map[string]any{"locationId": loc, "employeeId": emp, "roles": roles}
	}
	grants := []map[string]any{
		grant(ids[0], w.carol.EmployeeID, disarmer, viewer),
		grant(ids[1], w.carol.EmployeeID, viewer),
		grant(ids[0], w.dave.EmployeeID, viewer),
	}
	fooLoc := w.must(201, "POST", "/customers/"+w.foo+"/locations", w.bob.Token, map[string]any{"name": "Foo HQ"})["id"].(string)
	pos = w.lastPos()
	path := acme + "/location-roles/import"
	with := func(i int, g map[string]any) map[string]any {
		c := append([]map[string]any{}, grants...)
		c[i] = g
		return map[string]any{"grants": c}
	}
	w.expect(422, "grants[1].roles[0]", "POST", path, w.alice.Token, with(1, grant(ids[1], w.carol.EmployeeID, "ROOT")))
	w.expect(422, "grants[1].roles", "POST", path, w.alice.Token, with(1, map[string]any{"locationId": ids[1], "employeeId": w.carol.EmployeeID}))
	w.expect(422, "grants[2].locationId", "POST", path, w.alice.Token, with(2, grant(fooLoc, w.dave.EmployeeID, viewer)))
	w.expect(422, "grants[2].locationId", "POST", path, w.alice.Token, with(2, grant("x", w.dave.EmployeeID, viewer)))
	w.expect(422, "grants[2].employeeId", "POST", path, w.alice.Token, with(2, grant(ids[0], w.fred.EmployeeID, viewer)))
	w.expect(422, "grants[2]", "POST", path, w.alice.Token, with(2, grant(ids[0], w.carol.EmployeeID)))
	w.expect(403, "", "POST", path, w.carol.Token, map[string]any{"grants": grants})
	if evs, _ := w.eventsSince(pos); len(evs) != 0 {
		t.Fatalf("refused imports wrote events: %v", evs)
	}
	if out := w.must(200, "POST", path, w.alice.Token, map[string]any{"grants": grants}); out["imported"] != float64(3) {
		t.Fatalf("import answer = %v", out)
	}
	evs, _ = w.eventsSince(pos)
	if len(evs) != 3 {
		t.Fatalf("%d events for 3 grants", len(evs))
	}
	for i, ev := range evs {
		g := grants[i]
		userID := w.carol.UserID
		if g["employeeId"] == w.dave.EmployeeID {
			userID = w.dave.UserID
		}
		roles := []any{}
		for _, r := range g["roles"].([]string) {
			roles = append(roles, r)
		}
		if i == 0 {
			roles = []any{disarmer, viewer}
		}
		want := map[string]any{"customerId": w.acme, "locationId": g["locationId"], "employeeId": g["employeeId"], "userId": userID, "roles": roles}
		if ev.Type != "customer.location_employee_roles_set" || !reflect.DeepEqual(ev.Payload, want) {
			t.Fatalf("event %d = %+v; want %v", i, ev, want)
		}
	}
	l := w.must(200, "GET", acme+"/locations/"+ids[0].(string), w.alice.Token, nil)
	if n := len(l["employeeRoles"].([]any)); n != 2 {
		t.Fatalf("grants at the location after import: %v", l)
	}
	// A second import replaces each pair's roles; [] revokes.
	w.must(200, "POST", path, w.alice.Token, map[string]any{"grants": []map[string]any{grant(ids[0], w.carol.EmployeeID), grant(ids[0], w.dave.EmployeeID, disarmer)}})
	l = w.must(200, "GET", acme+"/locations/"+ids[0].(string), w.alice.Token, nil)
	want := []any{map[string]any{"employeeId": w.dave.EmployeeID, "roles": []any{disarmer}}}
	if !reflect.DeepEqual(l["employeeRoles"], want) {
		t.Fatalf("grants after the second import = %v; want %v", l["employeeRoles"], want)
	}
	e := w.must(200, "GET", acme+"/employees/"+w.carol.EmployeeID, w.alice.Token, nil)
	if lr := e["locationRoles"].(map[string]any); len(lr) != 1 || lr[ids[1].(string)] == nil {
		t.Fatalf("carol's location roles = %v", lr)
	}

	// Team members, paged in name order.
	team := w.must(201, "POST", acme+"/teams", w.alice.Token, map[string]any{"name": "Night"})["id"].(string)
	for _, p := range []person{w.dave, w.carol, w.alice} {
		w.must(204, "PUT", acme+"/teams/"+team+"/members/"+p.EmployeeID, w.alice.Token, nil)
	}
	members := w.pageAll(acme+"/teams/"+team+"/members", w.carol.Token, "members", 1)
	if len(members) != 3 || members[0]["employeeId"] != w.carol.EmployeeID || members[2]["lastName"] != "Min" {
		t.Fatalf("members = %v", members)
	}
	w.expect(404, "", "GET", acme+"/teams/"+uuid.NewString()+"/members", w.carol.Token, nil)
	if teams := w.pageAll(acme+"/teams", w.carol.Token, "teams", 1); len(teams) != 1 || len(teams[0]["members"].([]any)) != 3 {
		t.Fatalf("teams = %v", teams)
	}

	// Employees and customers, paged.
	emps := w.pageAll(acme+"/employees", w.carol.Token, "employees", 2)
	if len(emps) != 3 || emps[0]["firstName"] != "Carol" || emps[2]["lastName"] != "Min" {
		t.Fatalf("employees = %v", emps)
	}
	if got := w.pageAll("/customers?q=ACM", w.platform, "customers", 1); len(got) != 1 || got[0]["id"] != w.acme {
		t.Fatalf("customers?q=ACM = %v", got)
	}
	if got := w.pageAll("/customers", w.platform, "customers", 1); len(got) != 2 {
		t.Fatalf("customers for the platform administrator = %v", got)
	}
	if got := w.pageAll("/customers", w.carol.Token, "customers", 1); len(got) != 1 || got[0]["id"] != w.acme {
		t.Fatalf("customers for an employee = %v", got)
	}
	if got := w.pageAll("/customers?q=foo", w.carol.Token, "customers", 1); len(got) != 0 {
		t.Fatalf("customers?q=foo for an Acme employee = %v", got)
	}
}
