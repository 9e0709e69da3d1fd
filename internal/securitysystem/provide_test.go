package securitysystem_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand"
	"net/http"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/contract/tokenclaims"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/policytest"
	"github.com/realguardio/realguardio/internal/securitysystem"
	"github.com/realguardio/realguardio/internal/securitysystem/app"
	"github.com/realguardio/realguardio/internal/securitysystem/authz"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/provide"
	"github.com/realguardio/realguardio/internal/securitysystem/sstest"
	"github.com/realguardio/realguardio/internal/securitysystem/store"
)

// provideCaller is the caller of a token the IAM would issue for u now:
// the claims are made by the IAM's encoder and go through JSON, as they do
// through a real token, so the round trip is tested too.
func provideCaller(t testing.TB, w *policytest.World, u string) *auth.Caller {
	t.Helper()
	b, err := json.Marshal(sstest.ProvideClaims(w, u))
	if err != nil {
		t.Fatal(err)
	}
	c := &auth.Caller{Subject: u, Roles: w.AppRoles(u)}
	if err := json.Unmarshal(b, &c.Claims); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestConformanceProvide checks that provide decides every generated case
// exactly as policy.IsAllowed over the World's facts, before and after
// random changes, for Decide and Filter. The subject facts are the token
// claims made from the World by the IAM's encoder; the resource facts are
// those on the records, which are created through the store (with the
// strategy's create hook) and kept current by the strategy's event handler
// fed the documented events.
func TestConformanceProvide(t *testing.T) {
	seeds := []int64{1, 2, 3}
	if testing.Short() {
		seeds = seeds[:1]
	}
	for _, seed := range seeds {
		t.Run("seed="+itoa(seed), func(t *testing.T) {
			ctx := context.Background()
			w := policytest.Generate(seed, policytest.Small)
			rng := rand.New(rand.NewSource(seed))
			db := sqldbtest.OpenSQLite(t, securitysystem.Migrations()...)
			evs := sstest.NewEvents(time.Now().Add(-time.Hour))
			evs.World(w)
			sstest.Apply(t, db, provide.Handle, evs.List())
			st := store.New(db, discardEvents{}, store.WithCreateHook(provide.FillFacts))
			for _, ss := range w.SecuritySystems {
				if err := st.Create(ctx, app.SecuritySystem{ID: ss.ID, Name: "s", LocationID: ss.LocationID, State: app.StateDisarmed, Version: 1}, nil); err != nil {
					t.Fatal(err)
				}
			}
			pa := provide.New(db, nil)
			refs := func() (map[string]authz.SystemRef, []authz.SystemRef) {
				all := allSystems(t, st)
				byID := map[string]authz.SystemRef{}
				var list []authz.SystemRef
				for _, ss := range all {
					byID[ss.ID] = ss.Ref()
					list = append(list, ss.Ref())
				}
				return byID, list
			}
			check := func(round string, n int) {
				byID, all := refs()
				for _, c := range w.Cases(rng, n) {
					want := policytest.Expected(w, c)
					caller := provideCaller(t, w, c.UserID)
					caller.Roles = c.AppRoles
					got, err := pa.Decide(ctx, caller, c.Op, byID[c.SecuritySystemID], c.At)
					if err != nil || got != want {
						t.Fatalf("%s %s: provide decided %+v (err %v), want %+v", round, c, got, err, want)
					}
				}
				users := w.Users()
				for i := 0; i < 8; i++ {
					u := users[rng.Intn(len(users))]
					at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int63n(int64(365 * 24 * time.Hour))))
					caller := provideCaller(t, w, u)
					subject := w.Subject(u, caller.Roles)
					var want []authz.Permitted
					for _, r := range all {
						if p, ok := authz.Permit(subject, r, w.Resource(r.ID), at); ok {
							want = append(want, p)
						}
					}
					got, err := pa.Filter(ctx, caller, all, at)
					if err != nil || !samePermitted(got, want) {
						t.Fatalf("%s: provide Filter for %s at %s = %v (err %v), want %v", round, u, at, got, err, want)
					}
				}
			}
			check("initial", 300)
			for i := 0; i < 25; i++ {
				before := w.Clone()
				c := w.Mutate(rng)
				evs := sstest.NewEvents(time.Now())
				evs.Change(before, c)
				sstest.Apply(t, db, provide.Handle, evs.List())
				// The callers' tokens are re-issued (as at a refresh): the
				// claims are made from the changed World.
				check("after "+c.String(), 40)
			}
		})
	}
}

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

// discardEvents stands in for the outbox where events do not matter.
type discardEvents struct{}

func (discardEvents) Append(context.Context, *sqldb.Tx, string, string, string, any) (events.Event, error) {
	return events.Event{}, nil
}

func (discardEvents) AppendMany(_ context.Context, _ *sqldb.Tx, batch []events.AggregatePending) ([]events.Event, error) {
	return make([]events.Event, len(batch)), nil
}

func jsonBody(v any) *bytes.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

// allSystems reads every stored system, page by page, in list order.
func allSystems(t testing.TB, st *store.Store) []app.SecuritySystem {
	t.Helper()
	var out []app.SecuritySystem
	q := app.PageQuery{Scope: policy.Scope{All: true}, Limit: app.MaxListLimit}
	for {
		p, err := st.ListPage(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Systems...)
		if !p.More {
			return out
		}
		last := p.Systems[len(p.Systems)-1]
		q.After = &app.Key{Name: last.Name, ID: last.ID}
	}
}
