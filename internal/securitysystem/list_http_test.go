package securitysystem_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/realguardio/realguardio/internal/policy/policytest"
)

type pageJSON struct {
	SecuritySystems []struct {
		ID, Name, LocationID, State string
		Actions                     []string
	} `json:"securitySystems"`
	NextCursor *string `json:"nextCursor"`
}

// TestListHTTP checks GET /securitysystems' paging and filters over HTTP
// and that a bad parameter is a 400 or 422 naming it, for every strategy.
func TestListHTTP(t *testing.T) {
	for _, strategy := range strategies {
		t.Run(strategy, func(t *testing.T) {
			h := newHarness(t, strategy, policytest.FixedWorld())
			admin := id("admin")
			var all pageJSON
			h.do(admin, "GET", "/securitysystems?limit=500", nil, http.StatusOK, &all)
			if all.NextCursor != nil || len(all.SecuritySystems) != len(h.ids) {
				t.Fatalf("one page of everything: %d systems, next %v", len(all.SecuritySystems), all.NextCursor)
			}
			// Pages of two give the same systems in the same order.
			var paged []string
			cursor := ""
			for range 100 {
				var p pageJSON
				h.do(admin, "GET", "/securitysystems?limit=2&cursor="+url.QueryEscape(cursor), nil, http.StatusOK, &p)
				for _, s := range p.SecuritySystems {
					paged = append(paged, s.ID)
				}
				if p.NextCursor == nil {
					break
				}
				cursor = *p.NextCursor
			}
			var want []string
			for _, s := range all.SecuritySystems {
				want = append(want, s.ID)
			}
			if !slices.Equal(paged, want) {
				t.Fatalf("pages of 2 = %v, want %v", paged, want)
			}
			// Filters.
			loc1 := id("loc1")
			var p pageJSON
			h.do(admin, "GET", "/securitysystems?locationId="+loc1+"&state=DISARMED&q=SYS", nil, http.StatusOK, &p)
			if len(p.SecuritySystems) == 0 {
				t.Fatal("no system at loc1")
			}
			for _, s := range p.SecuritySystems {
				if s.LocationID != loc1 || s.State != "DISARMED" || !strings.Contains(strings.ToLower(s.Name), "sys") {
					t.Errorf("filtered list holds %+v", s)
				}
			}
			h.do(admin, "GET", "/securitysystems?customerId="+id("foo"), nil, http.StatusOK, &p)
			for _, s := range p.SecuritySystems {
				if s.LocationID == loc1 {
					t.Errorf("foo's list holds acme's %+v", s)
				}
			}
			for _, c := range []struct {
				query  string
				status int
				field  string
			}{
				{"limit=0", 422, "limit"}, {"limit=501", 422, "limit"}, {"limit=x", 400, "limit"},
				{"limit=1&limit=2", 400, "limit"}, {"cursor=%25%25", 400, "cursor"},
				{"locationId=nope", 422, "locationId"}, {"customerId=nope", 422, "customerId"},
				{"state=OFF", 422, "state"}, {"q=" + strings.Repeat("x", 201), 422, "q"},
			} {
				var pr problem
				h.do(admin, "GET", "/securitysystems?"+c.query, nil, c.status, &pr)
				if pr.Field != c.field {
					t.Errorf("%s: field %q, want %q", c.query, pr.Field, c.field)
				}
			}
		})
	}
}

// TestImportHTTP checks POST /securitysystems/import: ids in input order,
// each system listed afterwards with its created event in the outbox; all
// or nothing on an invalid item (422 naming its index), an unknown
// location or a caller who may not create there (403), for every strategy.
func TestImportHTTP(t *testing.T) {
	for _, strategy := range strategies {
		t.Run(strategy, func(t *testing.T) {
			h := newHarness(t, strategy, policytest.FixedWorld())
			admin, loc1, loc2 := id("admin"), id("loc1"), id("loc2")
			before := h.count(`SELECT COUNT(*) FROM security_systems`)
			item := func(loc, name string) map[string]any { return map[string]any{"locationId": loc, "name": name} }
			var out struct{ IDs []string }
			h.do(admin, "POST", "/securitysystems/import", map[string]any{"securitySystems": []any{
				item(loc1, "Imported A"), item(loc2, "Imported B"), item(loc1, "Imported C"),
			}}, http.StatusCreated, &out)
			if len(out.IDs) != 3 {
				t.Fatalf("ids = %v", out.IDs)
			}
			for i, want := range []struct{ loc, name string }{{loc1, "Imported A"}, {loc2, "Imported B"}, {loc1, "Imported C"}} {
				var s struct{ Name, LocationID, State string }
				h.do(admin, "GET", "/securitysystems/"+out.IDs[i], nil, http.StatusOK, &s)
				if s.Name != want.name || s.LocationID != want.loc || s.State != "DISARMED" {
					t.Errorf("item %d = %+v, want %+v", i, s, want)
				}
				if n := h.count(`SELECT COUNT(*) FROM event_outbox WHERE aggregate_id = ? AND event_type = 'securitysystem.created'`, out.IDs[i]); n != 1 {
					t.Errorf("item %d has %d created events", i, n)
				}
			}
			n := h.count(`SELECT COUNT(*) FROM security_systems`)
			if n != before+3 {
				t.Fatalf("%d systems after importing 3 into %d", n, before)
			}
			for _, c := range []struct {
				body   any
				status int
				field  string
			}{
				{map[string]any{"securitySystems": []any{item(loc1, "ok"), item(loc1, " ")}}, 422, "securitySystems[1].name"},
				{map[string]any{"securitySystems": []any{item(loc1, "ok"), item("x", "n")}}, 422, "securitySystems[1].locationId"},
				{map[string]any{"securitySystems": []any{item(loc1, "ok"), item(id("nowhere"), "n")}}, 422, "securitySystems[1].locationId"},
				{map[string]any{"securitySystems": []any{}}, 422, "securitySystems"},
				{map[string]any{}, 422, "securitySystems"},
				{map[string]any{"securitySystems": []any{map[string]any{"locationId": loc1, "name": "n", "x": 1}}}, 400, "x"},
			} {
				var pr problem
				h.do(admin, "POST", "/securitysystems/import", c.body, c.status, &pr)
				if pr.Field != c.field {
					t.Errorf("%v: field %q (%s), want %q", c.body, pr.Field, pr.Detail, c.field)
				}
			}
			// alice is no administrator of acme: nothing is created.
			var pr problem
			h.do(id("alice"), "POST", "/securitysystems/import", map[string]any{"securitySystems": []any{item(loc1, "x")}}, http.StatusForbidden, &pr)
			big := make([]any, 10001)
			for i := range big {
				big[i] = item(loc1, "n")
			}
			h.do(admin, "POST", "/securitysystems/import", map[string]any{"securitySystems": big}, http.StatusUnprocessableEntity, &pr)
			if got := h.count(`SELECT COUNT(*) FROM security_systems`); got != n {
				t.Fatalf("%d systems after refused imports, want %d", got, n)
			}
		})
	}
}

// TestAuditPaging checks that GET /audit pages with nextCursor: pages of
// two give the entries of one large page, in the same order.
func TestAuditPaging(t *testing.T) {
	h := newHarness(t, "replicate", policytest.FixedWorld())
	admin := id("admin")
	for range 5 {
		h.do(admin, "PUT", "/securitysystems/"+h.ids[id("ss1")], map[string]any{"action": "ARM"}, http.StatusForbidden, nil)
	}
	type auditPage struct {
		Entries    []struct{ ID string }
		NextCursor *string
	}
	var all auditPage
	h.do(admin, "GET", "/audit?limit=100", nil, http.StatusOK, &all)
	if len(all.Entries) != 5 || all.NextCursor != nil {
		t.Fatalf("audit = %+v", all)
	}
	var paged []string
	cursor := ""
	for range 10 {
		var p auditPage
		h.do(admin, "GET", "/audit?limit=2&cursor="+url.QueryEscape(cursor), nil, http.StatusOK, &p)
		for _, e := range p.Entries {
			paged = append(paged, e.ID)
		}
		if p.NextCursor == nil {
			break
		}
		cursor = *p.NextCursor
	}
	var want []string
	for _, e := range all.Entries {
		want = append(want, e.ID)
	}
	if !slices.Equal(paged, want) {
		t.Fatalf("audit pages = %v, want %v", paged, want)
	}
	var pr problem
	h.do(admin, "GET", "/audit?cursor=e30", nil, http.StatusBadRequest, &pr)
	if pr.Field != "cursor" {
		t.Errorf("bad cursor: field %q", pr.Field)
	}
}
