package customer_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/customer"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

// subjectsService answers GET /authz/subjects/{userId} as the Dealer or
// Monitoring Provider Service would for a caller reading its own facts:
// members maps a user id to its organization, and only the user's own
// token (tokens maps it) is accepted, as the real services do.
func subjectsService(t *testing.T, kind string, members, tokens map[string]string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := strings.CutPrefix(r.URL.Path, "/authz/subjects/")
		if !ok || r.Header.Get("Authorization") != "Bearer "+tokens[id] {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		var org any
		if m, ok := members[id]; ok {
			org = map[string]any{"kind": kind, "id": m, "roles": []string{}}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"userId": id, "organization": org})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestLocationNames checks GET /location-names: each caller gets the names
// of the asked locations it may see (its customer's; those its dealer
// services; those serviced by a dealer using its monitoring provider; all
// for the platform administrator), the dealers' and providers' membership
// read with the caller's own token, the provider link from
// dealer.monitoring_provider_set.
func TestLocationNames(t *testing.T) {
	dealerUser, providerUser, stranger := uuid.NewString(), uuid.NewString(), uuid.NewString()
	d1, p1 := uuid.NewString(), uuid.NewString()
	tokens := map[string]string{}
	dealers := map[string]string{dealerUser: d1}
	providers := map[string]string{providerUser: p1}
	dealerURL := subjectsService(t, "dealer", dealers, tokens)
	monitoringURL := subjectsService(t, "monitoring_provider", providers, tokens)
	w := newWorldOn(t, newEnv(t, sqldbtest.OpenSQLite(t), func(d *customer.Deps) {
		d.Memberships = customer.RelayMemberships{DealerURL: dealerURL, MonitoringURL: monitoringURL}
	}))
	for _, u := range []string{dealerUser, providerUser, stranger} {
		tokens[u] = w.iss.user(t, u, "SECURITY_SYSTEM_DEALER_EMPLOYEE")
	}
	tokens[w.bob.UserID] = w.bob.Token
	w.publishDealer(d1, "Dealer One")
	acme := "/customers/" + w.acme
	hq := w.must(201, "POST", acme+"/locations", w.alice.Token, map[string]any{"name": "HQ", "dealerId": d1})["id"].(string)
	depot := w.must(201, "POST", acme+"/locations", w.alice.Token, map[string]any{"name": "Depot"})["id"].(string)
	fooHQ := w.must(201, "POST", "/customers/"+w.foo+"/locations", w.bob.Token, map[string]any{"name": "Foo HQ"})["id"].(string)
	// The events of dealer d1 after its dealer.created (sequence 1).
	seq := int64(1)
	setProvider := func(provider any) {
		seq++
		payload, _ := json.Marshal(map[string]any{"dealerId": d1, "monitoringProviderId": provider, "previousMonitoringProviderId": nil})
		w.publishEvent(events.Event{ID: uuid.NewString(), Type: "dealer.monitoring_provider_set", AggregateType: "dealer", AggregateID: d1,
			Sequence: seq, OccurredAt: time.Now().UTC(), Producer: "dealer", Payload: payload}, "the provider of "+d1, func() bool {
			var n int
			_ = w.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM customer_dealer_providers WHERE dealer_id = ? AND COALESCE(monitoring_provider_id, '') = ?`, d1, nonNull(provider)).Scan(&n)
			return n == 1
		})
	}
	setProvider(p1)

	path := "/location-names?ids=" + strings.Join([]string{hq, depot, fooHQ, uuid.NewString()}, ",")
	names := func(token string) []string {
		t.Helper()
		var out []string
		for _, l := range w.must(200, "GET", path, token, nil)["locations"].([]any) {
			out = append(out, l.(map[string]any)["name"].(string))
		}
		slices.Sort(out)
		return out
	}
	for _, c := range []struct {
		who   string
		token string
		want  []string
	}{
		{"Acme's employee", w.carol.Token, []string{"Depot", "HQ"}},
		{"Foo's administrator", w.bob.Token, []string{"Foo HQ"}},
		{"the dealer's employee", tokens[dealerUser], []string{"HQ"}},
		{"the provider's employee", tokens[providerUser], []string{"HQ"}},
		{"a user of no organization", tokens[stranger], nil},
		{"the platform administrator", w.platform, []string{"Depot", "Foo HQ", "HQ"}},
	} {
		if got := names(c.token); !slices.Equal(got, c.want) {
			t.Errorf("%s sees %v, want %v", c.who, got, c.want)
		}
	}
	// The dealer no longer uses the provider: its employees lose the name.
	setProvider(nil)
	if got := names(tokens[providerUser]); got != nil {
		t.Errorf("the former provider's employee sees %v", got)
	}
	if got := names(tokens[dealerUser]); !slices.Equal(got, []string{"HQ"}) {
		t.Errorf("the dealer's employee sees %v", got)
	}

	w.expect(422, "ids", "GET", "/location-names?ids=nope", w.alice.Token, nil)
	many := make([]string, 201)
	for i := range many {
		many[i] = uuid.NewString()
	}
	w.expect(422, "ids", "GET", "/location-names?ids="+strings.Join(many, ","), w.alice.Token, nil)
	if got := w.must(200, "GET", "/location-names", w.alice.Token, nil)["locations"].([]any); len(got) != 0 {
		t.Errorf("no ids answer %v", got)
	}
	w.expect(403, "", "GET", path, w.iss.service(t, "realguardio-securitysystem", "authz:read"), nil)
	w.expect(401, "", "GET", path, "", nil)
}

func nonNull(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}
