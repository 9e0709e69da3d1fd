package securitysystem_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/policytest"
	"github.com/realguardio/realguardio/internal/securitysystem"
)

var strategies = []string{"fetch", "replicate", "provide"}

var id = policytest.FixedID

type listJSON struct {
	SecuritySystems []struct {
		ID, Name, LocationID, State string
		Actions                     []string
	} `json:"securitySystems"`
}

func TestEndpoints(t *testing.T) {
	for _, strategy := range strategies {
		t.Run(strategy, func(t *testing.T) {
			h := newHarness(t, strategy, policytest.FixedWorld())
			alice, ss1, ss2, ss3 := id("alice"), h.ids[id("ss1")], h.ids[id("ss2")], h.ids[id("ss3")]

			// alice (DISARMER in acme) sees acme's systems with DISARM only.
			var list listJSON
			h.do(alice, "GET", "/securitysystems", nil, http.StatusOK, &list)
			var seen []string
			for _, s := range list.SecuritySystems {
				seen = append(seen, s.ID)
				if !slices.Equal(s.Actions, []string{"DISARM"}) || s.State != "DISARMED" {
					t.Errorf("alice sees %s with state %s actions %v, want DISARMED [DISARM]", s.ID, s.State, s.Actions)
				}
			}
			slices.Sort(seen)
			want := []string{ss1, ss3}
			slices.Sort(want)
			if !slices.Equal(seen, want) {
				t.Errorf("alice lists %v, want %v", seen, want)
			}
			// The admin views everything and may do nothing.
			h.do(id("admin"), "GET", "/securitysystems", nil, http.StatusOK, &list)
			if len(list.SecuritySystems) != 3 || len(list.SecuritySystems[0].Actions) != 0 {
				t.Errorf("admin list = %+v, want 3 systems without actions", list)
			}

			// GET one: 200 viewable, 403 not viewable, 404 unknown, 400 bad id.
			h.do(alice, "GET", "/securitysystems/"+ss1, nil, http.StatusOK, nil)
			var p problem
			h.do(alice, "GET", "/securitysystems/"+ss2, nil, http.StatusForbidden, &p)
			if p.Reason != policy.ReasonNoRole {
				t.Errorf("reason %q, want no_role", p.Reason)
			}
			h.do(alice, "GET", "/securitysystems/"+id("nothing"), nil, http.StatusNotFound, nil)
			h.do(alice, "GET", "/securitysystems/x", nil, http.StatusBadRequest, nil)
			h.do("", "GET", "/securitysystems", nil, http.StatusUnauthorized, nil)

			// Denied arm changes nothing and is audited.
			h.do(id("admin"), "PUT", "/securitysystems/"+ss1, map[string]any{"action": "ARM"}, http.StatusForbidden, nil)
			h.do(alice, "PUT", "/securitysystems/"+ss1, map[string]any{"action": "ARM"}, http.StatusForbidden, &p)
			if p.Reason != policy.ReasonNoRole || h.state(ss1) != "DISARMED" {
				t.Errorf("denied arm: reason %q state %s", p.Reason, h.state(ss1))
			}
			// Disarming a disarmed system is an authorized no-op: no event.
			outbox := h.count(`SELECT COUNT(*) FROM event_outbox`)
			var got map[string]any
			h.do(alice, "PUT", "/securitysystems/"+ss1, map[string]any{"action": "DISARM"}, http.StatusOK, &got)
			if got["state"] != "DISARMED" || h.count(`SELECT COUNT(*) FROM event_outbox`) != outbox {
				t.Errorf("no-op disarm: %v, events %d -> %d", got, outbox, h.count(`SELECT COUNT(*) FROM event_outbox`))
			}
			// A no-op is still authorized first: mary may not disarm ss1.
			h.do(id("mary"), "PUT", "/securitysystems/"+ss1, map[string]any{"action": "DISARM"}, http.StatusForbidden, nil)

			// Bad actions name the field.
			h.do(alice, "PUT", "/securitysystems/"+ss1, map[string]any{"action": "EXPLODE"}, http.StatusUnprocessableEntity, &p)
			if p.Field != "action" {
				t.Errorf("field %q, want action", p.Field)
			}
			h.do(alice, "PUT", "/securitysystems/"+ss1, map[string]any{}, http.StatusUnprocessableEntity, nil)
			h.do(alice, "PUT", "/securitysystems/"+ss1, map[string]any{"action": "ARM", "x": 1}, http.StatusBadRequest, nil)

			// grace (ARMER at loc1, SAT 22:00-06:00 UTC) arms within her shift.
			h.clock.Set(time.Date(2026, 3, 15, 5, 59, 0, 0, time.UTC)) // Sunday
			h.do(id("grace"), "PUT", "/securitysystems/"+ss1, map[string]any{"action": "ARM"}, http.StatusOK, &got)
			if got["state"] != "ARMED" || h.state(ss1) != "ARMED" {
				t.Fatalf("grace arm: %v", got)
			}
			var ev struct{ Type, Payload string }
			if err := h.db.QueryRowContext(context.Background(), `SELECT event_type, payload FROM event_outbox ORDER BY pos DESC LIMIT 1`).Scan(&ev.Type, &ev.Payload); err != nil {
				t.Fatal(err)
			}
			if ev.Type != "securitysystem.armed" || !contains(ev.Payload, id("grace")) || !contains(ev.Payload, ss1) {
				t.Errorf("last event %s %s", ev.Type, ev.Payload)
			}
			// frank (DISARMER at loc1, MON-FRI 09-17 Berlin) is outside his
			// schedule on Sunday: 403 outside_schedule, still ARMED.
			h.do(id("frank"), "PUT", "/securitysystems/"+ss1, map[string]any{"action": "DISARM"}, http.StatusForbidden, &p)
			if p.Reason != policy.ReasonOutsideSchedule || h.state(ss1) != "ARMED" {
				t.Errorf("frank on Sunday: reason %q state %s", p.Reason, h.state(ss1))
			}
			h.clock.Set(tuesday10Berlin.AddDate(0, 0, 7))
			h.do(id("frank"), "PUT", "/securitysystems/"+ss1, map[string]any{"action": "DISARM"}, http.StatusOK, nil)
			if h.state(ss1) != "DISARMED" {
				t.Errorf("frank on Tuesday did not disarm")
			}

			// Audit: admin only; every decision recorded, newest first.
			h.do(alice, "GET", "/audit", nil, http.StatusForbidden, nil)
			var audit struct {
				Entries []struct {
					UserID, SecuritySystemID, Action, Decision, Reason, Strategy string
					At                                                           time.Time
				} `json:"entries"`
			}
			h.do(id("admin"), "GET", "/audit?securitySystemId="+ss1+"&limit=100", nil, http.StatusOK, &audit)
			var decisions []string
			for _, e := range audit.Entries {
				if e.Strategy != strategy || e.At.IsZero() {
					t.Errorf("audit entry %+v", e)
				}
				decisions = append(decisions, e.Action+":"+e.Decision+":"+e.Reason)
			}
			wantAudit := []string{"DISARM:allowed:", "DISARM:denied:outside_schedule", "ARM:allowed:", "DISARM:denied:no_role", "DISARM:allowed:", "ARM:denied:no_role", "ARM:denied:no_role"}
			if !slices.Equal(decisions, wantAudit) {
				t.Errorf("audit = %v\nwant    %v", decisions, wantAudit)
			}
			h.do(id("admin"), "GET", "/audit?limit=2", nil, http.StatusOK, &audit)
			if len(audit.Entries) != 2 {
				t.Errorf("limit 2 gave %d entries", len(audit.Entries))
			}
			h.do(id("admin"), "GET", "/audit?limit=0", nil, http.StatusUnprocessableEntity, nil)
			h.do(id("admin"), "GET", "/audit?securitySystemId=zz", nil, http.StatusUnprocessableEntity, nil)
		})
	}
}

func contains(s, sub string) bool {
	return len(sub) > 0 && len(s) >= len(sub) && (func() bool { return indexOf(s, sub) >= 0 })()
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestCreate(t *testing.T) {
	for _, strategy := range strategies {
		t.Run(strategy, func(t *testing.T) {
			w := policytest.FixedWorld()
			// Make alice an administrator of acme.
			c := policytest.Change{Kind: policytest.ChangeOrgRoles, OrgKind: policy.OrgCustomer, OrgID: id("acme"), UserID: id("alice"),
				Roles: []string{policy.RoleCustomerEmployeeAdministrator}}
			h := newHarness(t, strategy, w)
			h.change(c)
			var out map[string]any
			h.do(id("alice"), "POST", "/securitysystems", map[string]any{"locationId": id("loc3"), "name": " Back door "}, http.StatusCreated, &out)
			if out["name"] != "Back door" || out["state"] != "DISARMED" || out["locationId"] != id("loc3") || out["id"] == "" {
				t.Errorf("created %v", out)
			}
			var payload string
			if err := h.db.QueryRowContext(context.Background(), `SELECT payload FROM event_outbox WHERE event_type = 'securitysystem.created' AND aggregate_id = ?`, out["id"]).Scan(&payload); err != nil {
				t.Fatalf("created event: %v", err)
			}
			for _, want := range []string{id("alice"), id("acme"), id("loc3")} {
				if !contains(payload, want) {
					t.Errorf("payload %s lacks %s", payload, want)
				}
			}
			var p problem
			// Not an administrator of foo, which owns loc2.
			h.do(id("alice"), "POST", "/securitysystems", map[string]any{"locationId": id("loc2"), "name": "x"}, http.StatusForbidden, &p)
			if p.Reason != policy.ReasonNoRole {
				t.Errorf("reason %q", p.Reason)
			}
			// A DISARMER is not an administrator.
			h.do(id("dave"), "POST", "/securitysystems", map[string]any{"locationId": id("loc1"), "name": "x"}, http.StatusForbidden, nil)
			h.do(id("alice"), "POST", "/securitysystems", map[string]any{"locationId": id("nowhere"), "name": "x"}, http.StatusUnprocessableEntity, &p)
			if p.Field != "locationId" {
				t.Errorf("unknown location: field %q", p.Field)
			}
			h.do(id("alice"), "POST", "/securitysystems", map[string]any{"locationId": "nope", "name": "x"}, http.StatusUnprocessableEntity, &p)
			h.do(id("alice"), "POST", "/securitysystems", map[string]any{"locationId": id("loc3"), "name": "  "}, http.StatusUnprocessableEntity, &p)
			if p.Field != "name" {
				t.Errorf("empty name: field %q", p.Field)
			}
			h.do(id("alice"), "POST", "/securitysystems", map[string]any{"locationId": 5}, http.StatusBadRequest, nil)
		})
	}
}

// TestFixedCases runs AUTHZ.md's fixed cases through the HTTP API with
// each strategy, applying each case's changes the way the strategy learns
// of them (facts servers for fetch, events for replicate).
func TestFixedCases(t *testing.T) {
	for _, strategy := range strategies {
		t.Run(strategy, func(t *testing.T) {
			for _, fc := range policytest.FixedCases() {
				t.Run(fc.Name, func(t *testing.T) {
					h := newHarness(t, strategy, policytest.FixedWorld())
					for _, c := range fc.Before {
						h.change(c)
					}
					h.clock.Set(fc.Case.At)
					ssID := h.ids[fc.Case.SecuritySystemID]
					var status int
					var raw []byte
					switch fc.Case.Op {
					case policy.OpView:
						status, raw = h.callAs(fc.Case.UserID, fc.Case.AppRoles, "GET", "/securitysystems/"+ssID, nil)
					case policy.OpArm:
						status, raw = h.callAs(fc.Case.UserID, fc.Case.AppRoles, "PUT", "/securitysystems/"+ssID, map[string]any{"action": "ARM"})
					case policy.OpDisarm:
						status, raw = h.callAs(fc.Case.UserID, fc.Case.AppRoles, "PUT", "/securitysystems/"+ssID, map[string]any{"action": "DISARM"})
					}
					if fc.Want.Allowed != (status == http.StatusOK) || (!fc.Want.Allowed && (status != http.StatusForbidden || !contains(string(raw), `"reason":"`+fc.Want.Reason+`"`))) {
						t.Errorf("%s: status %d %s, want %+v", fc.Case, status, raw, fc.Want)
					}
				})
			}
		})
	}
}

func TestNoneNeedsExplicitOptIn(t *testing.T) {
	_, err := securitysystem.New(context.Background(), securitysystem.Config{Strategy: "none"}, securitysystem.Deps{})
	if err == nil || !contains(err.Error(), "benchmarks") {
		t.Fatalf("strategy none without AllowNoAuthz: err = %v", err)
	}
	for _, bad := range []string{"", "provide-ish"} {
		if _, err := securitysystem.New(context.Background(), securitysystem.Config{Strategy: bad}, securitysystem.Deps{}); err == nil {
			t.Errorf("strategy %q accepted", bad)
		}
	}
	h := newHarness(t, "none", policytest.FixedWorld())
	h.do(id("mary"), "PUT", "/securitysystems/"+h.ids[id("ss2")], map[string]any{"action": "ARM"}, http.StatusOK, nil)
}
