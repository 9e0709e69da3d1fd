package securitysystem_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/policytest"
	"github.com/realguardio/realguardio/internal/securitysystem"
)

// TestFetchDependencyDown: when an owner of the facts is down or slow the
// decision is a 503, nothing changes, and the attempt is audited.
func TestFetchDependencyDown(t *testing.T) {
	h := newHarness(t, "fetch", policytest.FixedWorld(), func(c *securitysystem.Config) {
		c.FetchTimeout = 200 * time.Millisecond
		c.BreakerFailures = 3
		c.BreakerOpen = time.Hour
	})
	ss1 := h.ids[id("ss1")]
	h.do(id("alice"), "PUT", "/securitysystems/"+ss1, map[string]any{"action": "DISARM"}, http.StatusOK, nil)
	events := h.count(`SELECT COUNT(*) FROM event_outbox`)

	h.facts.Down(policy.OrgCustomer, true)
	var p problem
	h.do(id("alice"), "PUT", "/securitysystems/"+ss1, map[string]any{"action": "DISARM"}, http.StatusServiceUnavailable, &p)
	h.do(id("alice"), "GET", "/securitysystems", nil, http.StatusServiceUnavailable, nil)
	h.do(id("alice"), "GET", "/securitysystems/"+ss1, nil, http.StatusServiceUnavailable, nil)
	// A slow dependency is cut off by the timeout (the breaker opens on
	// the third failure, after which no request reaches the service).
	h.facts.Hang(true)
	start := time.Now()
	h.do(id("alice"), "PUT", "/securitysystems/"+ss1, map[string]any{"action": "DISARM"}, http.StatusServiceUnavailable, nil)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("slow dependency held the request %s", d)
	}
	reached := h.facts.Count(policy.OrgCustomer, "down")
	h.do(id("alice"), "PUT", "/securitysystems/"+ss1, map[string]any{"action": "DISARM"}, http.StatusServiceUnavailable, nil)
	if after := h.facts.Count(policy.OrgCustomer, "down"); after != reached {
		t.Errorf("open breaker still let %d requests through", after-reached)
	}
	if h.state(ss1) != "DISARMED" || h.count(`SELECT COUNT(*) FROM event_outbox`) != events {
		t.Errorf("something changed while the dependency was down")
	}
	if n := h.count(`SELECT COUNT(*) FROM securitysystem_audit WHERE decision = 'unavailable' AND reason = 'unavailable' AND strategy = 'fetch'`); n != 3 {
		t.Errorf("%d unavailable decisions audited, want 3", n)
	}
	// Every user's employer is asked of all three owners, whatever the
	// token's application roles, so the admin's list (whose arm and
	// disarm actions need the facts) cannot be made either.
	h.do(id("admin"), "GET", "/securitysystems", nil, http.StatusServiceUnavailable, nil)
	// Only the dealer down: nobody can be decided, not even alice (a
	// customer employee), since the dealer's answer could be the one that
	// claims her; and the IAM is asked for one token only in all of this.
	h2 := newHarness(t, "fetch", policytest.FixedWorld())
	h2.facts.Down(policy.OrgDealer, true)
	h2.do(id("dave"), "PUT", "/securitysystems/"+h2.ids[id("ss1")], map[string]any{"action": "DISARM"}, http.StatusServiceUnavailable, nil)
	h2.do(id("alice"), "PUT", "/securitysystems/"+h2.ids[id("ss1")], map[string]any{"action": "DISARM"}, http.StatusServiceUnavailable, nil)
	h2.facts.Down(policy.OrgDealer, false)
	h2.do(id("alice"), "PUT", "/securitysystems/"+h2.ids[id("ss1")], map[string]any{"action": "DISARM"}, http.StatusOK, nil)
	if n := h2.iam.Tokens.Load(); n != 1 {
		t.Errorf("%d tokens fetched, want 1 (cached)", n)
	}
}

// TestFetchRoundTrips: a decision costs at most the calls the rule needs,
// and a list costs a fixed number of calls whatever the number of systems.
func TestFetchRoundTrips(t *testing.T) {
	w := policytest.FixedWorld()
	h := newHarness(t, "fetch", w)
	// Twenty more systems at the World's locations.
	for i := 0; i < 20; i++ {
		loc := w.Locations[i%len(w.Locations)].ID
		h.do(w.Admins[0], "POST", "/securitysystems", map[string]any{"locationId": loc, "name": "extra"}, http.StatusCreated, nil)
	}
	cases := []struct {
		user       string
		list, once int64 // calls for a list, for one disarm
	}{
		// A list page: the scope (3 subjects, then the owners' id lists of a
		// dealer's or provider's employee); the page's actions are decided
		// over the same answers and the records' customers, without a call.
		{id("alice"), 3, 4}, // 3 subjects
		{id("dave"), 4, 4},  // 3 subjects; locations:byDealers
		{id("erin"), 5, 5},  // 3 subjects; dealers:byMonitoringProviders; locations:byDealers
		{id("admin"), 4, 4}, // the scope is everything without a call; the page's actions need the facts
	}
	for _, c := range cases {
		h.facts.ResetCounts()
		var list listJSON
		h.do(c.user, "GET", "/securitysystems", nil, http.StatusOK, &list)
		if n := h.facts.Total(); n != c.list {
			t.Errorf("list of %d systems as %s: %d remote calls, want %d", len(list.SecuritySystems), c.user, n, c.list)
		}
		h.facts.ResetCounts()
		h.call(c.user, "PUT", "/securitysystems/"+h.ids[id("ss1")], map[string]any{"action": "DISARM"})
		if n := h.facts.Total(); n != c.once {
			t.Errorf("disarm as %s: %d remote calls, want %d", c.user, n, c.once)
		}
	}
}
