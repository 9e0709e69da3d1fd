package securitysystem_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/realguardio/realguardio/internal/contract/tokenclaims"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/policytest"
	"github.com/realguardio/realguardio/internal/securitysystem/sstest"
)

// TestProvideClaimsMissingOrMalformed: under provide, a user token without
// the claims (an IAM not configured for provide) or with malformed ones
// holds no security system role, whatever the facts are; an admin still
// views by application role.
func TestProvideClaimsMissingOrMalformed(t *testing.T) {
	w := policytest.FixedWorld()
	h := newHarness(t, "provide", w)
	alice := id("alice")
	ss1 := h.srv.URL + "/securitysystems/" + h.ids[id("ss1")]
	for name, tok := range map[string]string{
		"no claims":     sstest.Token(alice, "CUSTOMER_EMPLOYEE"),
		"bad version":   sstest.TokenWithClaims(alice, map[string]any{"az": 2}, "CUSTOMER_EMPLOYEE"),
		"bad kind":      sstest.TokenWithClaims(alice, map[string]any{"az": 1, "org": map[string]any{"t": "x", "id": id("acme"), "r": "D"}}, "CUSTOMER_EMPLOYEE"),
		"bad letter":    sstest.TokenWithClaims(alice, map[string]any{"az": 1, "org": map[string]any{"t": "c", "id": id("acme"), "r": "DZ"}}, "CUSTOMER_EMPLOYEE"),
		"loc no org":    sstest.TokenWithClaims(alice, map[string]any{"az": 1, "loc": map[string]any{id("loc1"): "D"}}, "CUSTOMER_EMPLOYEE"),
		"extra member":  sstest.TokenWithClaims(alice, map[string]any{"az": 1, "org": map[string]any{"t": "c", "id": id("acme"), "r": "D", "x": 1}}, "CUSTOMER_EMPLOYEE"),
		"bad schedule":  sstest.TokenWithClaims(alice, map[string]any{"az": 1, "org": map[string]any{"t": "c", "id": id("acme"), "r": "D"}, "sch": map[string]any{"tz": "Mars/Base", "s": []any{}}}, "CUSTOMER_EMPLOYEE"),
		"roles as list": sstest.TokenWithClaims(alice, map[string]any{"az": 1, "org": map[string]any{"t": "c", "id": id("acme"), "r": []string{"D"}}}, "CUSTOMER_EMPLOYEE"),
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("PUT", ss1, jsonBody(map[string]any{"action": "DISARM"}))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var p problem
			_ = json.NewDecoder(resp.Body).Decode(&p)
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden || p.Reason != policy.ReasonNoRole {
				t.Fatalf("status %d %+v, want 403 no_role", resp.StatusCode, p)
			}
		})
	}
	// The well-formed token of the same user is allowed.
	h.do(alice, "PUT", "/securitysystems/"+h.ids[id("ss1")], map[string]any{"action": "DISARM"}, http.StatusOK, nil)
	// An admin needs no claims to view.
	status, _ := h.callAs(w.Admins[0], []string{policy.AppRoleAdmin}, "GET", "/securitysystems/"+h.ids[id("ss1")], nil)
	if status != http.StatusOK {
		t.Fatalf("admin view: %d", status)
	}
	if _, err := tokenclaims.Decode(map[string]any{}); err != tokenclaims.ErrAbsent {
		t.Fatalf("Decode of no claims = %v", err)
	}
}

// TestProvideResourceFactsFollowEvents: the facts on every record at a
// location follow its dealer, and on every record of a dealer its
// monitoring provider; a system created later gets the current facts.
func TestProvideResourceFactsFollowEvents(t *testing.T) {
	w := policytest.FixedWorld()
	h := newHarness(t, "provide", w)
	facts := func(ss string) (c, d, p string) {
		t.Helper()
		if err := h.db.QueryRowContext(context.Background(), `SELECT customer_id, dealer_id, monitoring_provider_id FROM security_systems WHERE id = ?`, ss).Scan(&c, &d, &p); err != nil {
			t.Fatal(err)
		}
		return
	}
	ss1 := h.ids[id("ss1")]
	if c, d, p := facts(ss1); c != id("acme") || d != id("d1") || p != id("p1") {
		t.Fatalf("ss1 facts %s %s %s", c, d, p)
	}
	h.change(policytest.Change{Kind: policytest.ChangeLocationDealer, CustomerID: id("acme"), LocationID: id("loc1"), DealerID: id("d2")})
	if c, d, p := facts(ss1); c != id("acme") || d != id("d2") || p != "" {
		t.Fatalf("after dealer change: %s %s %s", c, d, p)
	}
	h.change(policytest.Change{Kind: policytest.ChangeDealerProvider, DealerID: id("d2"), MonitoringProviderID: id("p1")})
	if _, d, p := facts(ss1); d != id("d2") || p != id("p1") {
		t.Fatalf("after provider set: %s %s", d, p)
	}
	var out map[string]any
	h.do(w.Admins[0], "POST", "/securitysystems", map[string]any{"locationId": id("loc1"), "name": "new"}, http.StatusCreated, &out)
	if c, d, p := facts(out["id"].(string)); c != id("acme") || d != id("d2") || p != id("p1") {
		t.Fatalf("new record facts %s %s %s", c, d, p)
	}
	h.change(policytest.Change{Kind: policytest.ChangeLocationDealer, CustomerID: id("acme"), LocationID: id("loc1"), DealerID: ""})
	for _, ss := range []string{ss1, out["id"].(string)} {
		if c, d, p := facts(ss); c != id("acme") || d != "" || p != "" {
			t.Fatalf("after dealer cleared: %s %s %s", c, d, p)
		}
	}
}

func jsonBody(v any) *bytes.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}
