package securitysystem_test

import (
	"encoding/json"
	"math/rand"
	"net/url"
	"reflect"
	"strconv"
	"testing"

	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/policytest"
)

// expectedAccess is policy.AccessReview over the World's facts of system,
// in the JSON form of GET /securitysystems/{id}/access's users.
func expectedAccess(t *testing.T, h *harness, system string) []any {
	t.Helper()
	entries, err := policy.AccessReview(h.world.AccessFacts(system), h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	type user struct {
		UserID     string           `json:"userId"`
		Username   string           `json:"username"`
		Actions    []string         `json:"actions"`
		AllowedNow []string         `json:"allowedNow"`
		Grants     []policy.Grant   `json:"grants"`
		Schedule   *policy.Schedule `json:"schedule,omitempty"`
	}
	us := make([]user, len(entries))
	for i, e := range entries {
		us[i] = user{e.UserID, e.Username, e.Actions, e.AllowedNow, e.Grants, e.Schedule}
	}
	b, _ := json.Marshal(us)
	var out []any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

type accessPage struct {
	SecuritySystemID string  `json:"securitySystemId"`
	Users            []any   `json:"users"`
	NextCursor       *string `json:"nextCursor"`
}

// reviewAll reads every page of a system's review as userID, limit users
// a page, and returns the users and the number of pages.
func reviewAll(t *testing.T, h *harness, userID, system string, limit int) ([]any, int) {
	t.Helper()
	var all []any
	cursor := ""
	for pages := 1; ; pages++ {
		path := "/securitysystems/" + h.ids[system] + "/access?limit=" + strconv.Itoa(limit)
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		var p accessPage
		h.do(userID, "GET", path, nil, 200, &p)
		if p.SecuritySystemID != h.ids[system] {
			t.Fatalf("securitySystemId %q, want %q", p.SecuritySystemID, h.ids[system])
		}
		if len(p.Users) > limit {
			t.Fatalf("page of %d users, limit %d", len(p.Users), limit)
		}
		all = append(all, p.Users...)
		if p.NextCursor == nil {
			return all, pages
		}
		cursor = *p.NextCursor
		if pages > 100 {
			t.Fatal("paging does not end")
		}
	}
}

// TestAccessReviewConformance compares GET /securitysystems/{id}/access,
// read page by page, with policy.AccessReview over the World's facts for
// every system under three strategies, before and after changes the
// strategy itself has not been told about (the review reads the owners,
// not the strategy's copy), and checks who may ask, ?userId=me and the
// bounded number of owner calls.
func TestAccessReviewConformance(t *testing.T) {
	for _, strategy := range []string{"fetch", "replicate", "provide"} {
		t.Run(strategy, func(t *testing.T) {
			w := policytest.Generate(7, policytest.Small)
			h := newHarness(t, strategy, w)
			rng := rand.New(rand.NewSource(7))
			admin := w.Admins[0]
			check := func(round string, limits ...int) {
				t.Helper()
				for _, ss := range w.SecuritySystems {
					want := expectedAccess(t, h, ss.ID)
					for _, limit := range limits {
						got, _ := reviewAll(t, h, admin, ss.ID, limit)
						if !reflect.DeepEqual(nonNilSlice(got), nonNilSlice(want)) {
							t.Fatalf("%s: system %s, limit %d:\n got %v\nwant %v", round, ss.ID, limit, got, want)
						}
					}
				}
			}
			check("initial", 1, 2, 50)
			for i := 0; i < 5; i++ {
				c := w.Mutate(rng)
				// Only the owners know: no event reaches the strategy.
				h.facts.SetWorld(w)
				check("after "+c.String(), 1, 50)
			}

			// Who may ask.
			ss := w.SecuritySystems[0]
			res := w.Resource(ss.ID)
			path := "/securitysystems/" + h.ids[ss.ID] + "/access"
			var custAdmin, other string
			for _, e := range w.Employees {
				if e.OrgID == res.CustomerID && custAdmin == "" && len(e.Roles) > 0 && e.Roles[0] == policy.RoleCustomerEmployeeAdministrator {
					custAdmin = e.UserID
				}
				if e.OrgKind == policy.OrgDealer && other == "" {
					other = e.UserID
				}
			}
			h.do(custAdmin, "GET", path, nil, 200, nil)
			if status, _ := h.call(other, "GET", path, nil); status != 403 {
				t.Fatalf("a dealer employee reads the whole review: %d", status)
			}
			if status, _ := h.call(w.Outsiders[0], "GET", path, nil); status != 403 {
				t.Fatalf("an outsider reads the whole review: %d", status)
			}
			// ?userId=me: the caller's own entry when it may view, else 403.
			for _, u := range w.Users() {
				s := w.Subject(u, nil)
				mayView := policy.IsAllowed(s, policy.OpView, res, h.clock.Now()).Allowed
				status, raw := h.call(u, "GET", path+"?userId=me", nil)
				isAdmin := len(w.AppRoles(u)) > 0 && w.AppRoles(u)[0] == policy.AppRoleAdmin
				switch {
				case mayView || isAdmin || u == custAdmin:
					var p accessPage
					if status != 200 || json.Unmarshal(raw, &p) != nil {
						t.Fatalf("userId=me as %s: %d %s", u, status, raw)
					}
					wantN := 0
					if mayView {
						wantN = 1
					}
					if len(p.Users) != wantN || (wantN == 1 && p.Users[0].(map[string]any)["userId"] != u) {
						t.Fatalf("userId=me as %s: %s", u, raw)
					}
				case status != 403:
					t.Fatalf("userId=me as %s, who may not view: %d %s", u, status, raw)
				}
			}

			// A page costs a bounded number of owner calls: the location
			// access, the dealer's holders and facts, the provider's holders.
			h.facts.ResetCounts()
			for _, s := range w.SecuritySystems {
				h.facts.ResetCounts()
				h.do(admin, "GET", "/securitysystems/"+h.ids[s.ID]+"/access?limit=500", nil, 200, nil)
				if n := h.facts.Total(); n > 4 {
					t.Fatalf("one page cost %d owner calls", n)
				}
			}

			// Faults.
			for q, want := range map[string]int{"?limit=0": 422, "?limit=501": 422, "?limit=x": 400, "?cursor=nope": 400, "?userId=nope": 400} {
				if status, raw := h.call(admin, "GET", path+q, nil); status != want {
					t.Fatalf("%s: %d %s, want %d", q, status, raw, want)
				}
			}
			if status, _ := h.call(admin, "GET", "/securitysystems/"+w.Admins[0]+"/access", nil); status != 404 {
				t.Fatalf("unknown system: %d", status)
			}
			h.facts.Down(policy.OrgDealer, true)
			var withDealer string
			for _, s := range w.SecuritySystems {
				if w.Resource(s.ID).DealerID != "" {
					withDealer = s.ID
				}
			}
			if status, raw := h.call(admin, "GET", "/securitysystems/"+h.ids[withDealer]+"/access", nil); status != 503 {
				t.Fatalf("dealer down: %d %s, want 503", status, raw)
			}
			h.facts.Down(policy.OrgDealer, false)
		})
	}
}

func nonNilSlice(s []any) []any {
	if s == nil {
		return []any{}
	}
	return s
}
