package securitysystem_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/policytest"
)

type auditAnswer struct {
	Entries []struct {
		ID, UserID, SecuritySystemID, SecuritySystemName, Action, Decision, Reason string
		At                                                                         time.Time
	} `json:"entries"`
	NextCursor *string `json:"nextCursor"`
}

// TestAuditForCustomerAdministrators checks GET /audit for a customer's
// administrator (only its customer's systems, known from the owners'
// current facts), its filters and paging, and who may not read it.
func TestAuditForCustomerAdministrators(t *testing.T) {
	for _, strategy := range []string{"fetch", "replicate"} {
		t.Run(strategy, func(t *testing.T) {
			w := policytest.FixedWorld()
			id := policytest.FixedID
			h := newHarness(t, strategy, w)
			// mary administers acme.
			h.change(policytest.Change{Kind: policytest.ChangeOrgRoles, OrgKind: policy.OrgCustomer, OrgID: id("acme"), UserID: id("mary"),
				Roles: []string{policy.RoleCustomerEmployeeAdministrator}})
			ss1, ss2, ss3 := h.ids[id("ss1")], h.ids[id("ss2")], h.ids[id("ss3")]
			act := func(user, ss, action string, want int) {
				h.do(id(user), "PUT", "/securitysystems/"+ss, map[string]any{"action": action}, want, nil)
				h.clock.Set(h.clock.Now().Add(time.Minute))
			}
			start := h.clock.Now()
			act("alice", ss1, "DISARM", http.StatusOK)
			act("alice", ss2, "DISARM", http.StatusForbidden) // foo's system
			act("alice", ss1, "ARM", http.StatusForbidden)
			act("grace", ss3, "ARM", http.StatusForbidden)
			act("alice", ss3, "DISARM", http.StatusOK)

			read := func(user, query string, want int) auditAnswer {
				t.Helper()
				var a auditAnswer
				h.do(id(user), "GET", "/audit"+query, nil, want, &a)
				return a
			}
			all := read("admin", "", http.StatusOK)
			if len(all.Entries) != 5 || all.NextCursor != nil {
				t.Fatalf("admin reads %d entries (next %v), want 5", len(all.Entries), all.NextCursor)
			}
			mine := read("mary", "", http.StatusOK)
			if len(mine.Entries) != 4 {
				t.Fatalf("mary reads %d entries, want acme's 4: %+v", len(mine.Entries), mine.Entries)
			}
			for _, e := range mine.Entries {
				if e.SecuritySystemID == ss2 {
					t.Fatalf("mary reads foo's entry %+v", e)
				}
				if e.SecuritySystemName == "" {
					t.Fatalf("entry without the system's name: %+v", e)
				}
			}
			if got := read("mary", "?decision=denied&action=ARM", http.StatusOK); len(got.Entries) != 2 {
				t.Fatalf("denied arms: %+v", got.Entries)
			}
			if got := read("mary", "?userId="+id("grace"), http.StatusOK); len(got.Entries) != 1 || got.Entries[0].Reason != "no_role" {
				t.Fatalf("grace's: %+v", got.Entries)
			}
			since := url.QueryEscape(start.Add(90 * time.Second).Format(time.RFC3339))
			until := url.QueryEscape(start.Add(4 * time.Minute).Format(time.RFC3339))
			if got := read("admin", "?since="+since+"&until="+until, http.StatusOK); len(got.Entries) != 2 {
				t.Fatalf("since/until: %+v", got.Entries)
			}
			if got := read("mary", "?securitySystemId="+ss2, http.StatusOK); len(got.Entries) != 0 {
				t.Fatalf("mary filters for foo's system: %+v", got.Entries)
			}
			// Paging: newest first, no repeats, no gaps.
			var ids []string
			cursor := ""
			for pages := 0; ; pages++ {
				q := "?limit=2"
				if cursor != "" {
					q += "&cursor=" + url.QueryEscape(cursor)
				}
				p := read("mary", q, http.StatusOK)
				for _, e := range p.Entries {
					ids = append(ids, e.ID)
				}
				if p.NextCursor == nil {
					break
				}
				cursor = *p.NextCursor
				if pages > 5 {
					t.Fatal("paging does not end")
				}
			}
			for i, e := range mine.Entries {
				if i >= len(ids) || ids[i] != e.ID {
					t.Fatalf("paged ids %v, want %v", ids, mine.Entries)
				}
			}
			if len(ids) != len(mine.Entries) {
				t.Fatalf("paged %d, want %d", len(ids), len(mine.Entries))
			}
			// Who may not, and bad filters.
			read("alice", "", http.StatusForbidden)
			read("dave", "", http.StatusForbidden)
			for q, want := range map[string]int{"?action=FLY": 422, "?decision=maybe": 422, "?since=yesterday": 400, "?cursor=x": 400, "?userId=x": 422, "?limit=1001": 422} {
				if status, raw := h.call(id("admin"), "GET", "/audit"+q, nil); status != want {
					t.Fatalf("%s: %d %s, want %d", q, status, raw, want)
				}
			}
			// An owner down: a customer administrator cannot be told from
			// anyone else, the platform administrator still reads.
			h.facts.Down(policy.OrgDealer, true)
			read("mary", "", http.StatusServiceUnavailable)
			read("admin", "", http.StatusOK)
			h.facts.Down(policy.OrgDealer, false)
		})
	}
}
