package customer_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/realguardio/realguardio/internal/customer"
	"github.com/realguardio/realguardio/internal/orgkit"
	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/eventstest"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

// issuer is a stand-in for the IAM Service's token side: discovery and a
// JWKS over HTTP, and RS256 at+jwt access tokens signed with its key, so
// the service validates real tokens through its real validator.
type issuer struct {
	srv *httptest.Server
	key *rsa.PrivateKey
	kid string
}

var signingKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func newIssuer(t *testing.T) *issuer {
	iss := &issuer{key: signingKey(), kid: "test-key-1"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": iss.srv.URL, "jwks_uri": iss.srv.URL + "/keys"})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		jwks := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &iss.key.PublicKey, KeyID: iss.kid, Algorithm: "RS256", Use: "sig"}}}
		_ = json.NewEncoder(w).Encode(jwks)
	})
	iss.srv = httptest.NewServer(mux)
	t.Cleanup(iss.srv.Close)
	return iss
}

func (iss *issuer) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", iss.kid)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: iss.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(claims)
	jws, err := signer.Sign(body)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (iss *issuer) claims(sub, clientID string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": iss.srv.URL, "sub": sub, "aud": []string{customer.DefaultAudience},
		"exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "jti": uuid.NewString(),
		"client_id": clientID,
	}
}

// user returns a user access token of sub holding the application roles.
func (iss *issuer) user(t *testing.T, sub string, roles ...string) string {
	c := iss.claims(sub, "realguardio-bff")
	if roles == nil {
		roles = []string{}
	}
	c["roles"], c["scope"] = roles, "openid profile"
	return iss.sign(t, c)
}

// service returns a client-credentials token of client with scope.
func (iss *issuer) service(t *testing.T, client, scope string) string {
	c := iss.claims(client, client)
	c["roles"], c["scope"] = []string{}, scope
	return iss.sign(t, c)
}

// accounts records the IAM accounts the kit asks for.
type accounts struct {
	mu       sync.Mutex
	created  map[string]string // user id -> username
	disabled map[string]bool
}

func (a *accounts) CreateUser(_ context.Context, id, username, _ string, _ []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.created == nil {
		a.created = map[string]string{}
	}
	for other, u := range a.created {
		if u == username && other != id {
			return apperr.New(apperr.Conflict, "username taken")
		}
	}
	a.created[id] = username
	return nil
}

func (a *accounts) DisableUser(_ context.Context, id string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.disabled == nil {
		a.disabled = map[string]bool{}
	}
	a.disabled[id] = true
	return nil
}

func (a *accounts) EnableUser(_ context.Context, id string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.disabled, id)
	return nil
}

// ResetPassword is not exercised by these tests (orgkit's are about it);
// it says so instead of answering.
func (a *accounts) ResetPassword(context.Context, string) (orgkit.PasswordReset, error) {
	return orgkit.PasswordReset{}, apperr.New(apperr.Unavailable, "password resets are not part of the customer tests' accounts double")
}

func (a *accounts) UserExists(_ context.Context, id string) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.created[id]
	return ok, nil
}

// env is one running Customer Service with its issuer, database and NATS.
type env struct {
	t      *testing.T
	iss    *issuer
	db     *sqldb.DB
	url    string
	js     jetstream.JetStream
	prefix string
}

func newEnv(t *testing.T, db *sqldb.DB, opts ...func(*customer.Deps)) *env {
	t.Helper()
	iss := newIssuer(t)
	_, js := eventstest.Connect(t, eventstest.NATS(t))
	prefix := eventstest.Streams(t, js)
	logger := slog.New(slog.DiscardHandler)
	v, err := auth.NewValidator(auth.Options{Issuer: iss.srv.URL, Audience: customer.DefaultAudience, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	deps := customer.Deps{Logger: logger, DB: db, JS: js, Validator: v, Accounts: &accounts{}}
	for _, o := range opts {
		o(&deps)
	}
	svc, err := customer.New(ctx, customer.Config{Issuer: iss.srv.URL, EventPrefix: prefix}, deps)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(func() {
		srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		_ = svc.Close()
	})
	return &env{t: t, iss: iss, db: db, url: srv.URL, js: js, prefix: prefix}
}

func newSQLiteEnv(t *testing.T) *env { return newEnv(t, sqldbtest.OpenSQLite(t)) }

// call sends a request and decodes a JSON answer into a map (nil for an
// empty body), failing the test on transport errors.
func (e *env) call(method, path, token string, body any) (int, map[string]any) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		if s, ok := body.(string); ok {
			rd = strings.NewReader(s)
		} else {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if len(bytes.TrimSpace(raw)) == 0 {
		return resp.StatusCode, nil
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		e.t.Fatalf("%s %s: answer is not a JSON object: %s", method, path, raw)
	}
	return resp.StatusCode, out
}

// must sends a request that must answer want and returns the body.
func (e *env) must(want int, method, path, token string, body any) map[string]any {
	e.t.Helper()
	status, out := e.call(method, path, token, body)
	if status != want {
		e.t.Fatalf("%s %s = %d %v; want %d", method, path, status, out, want)
	}
	return out
}

// expect checks the status (and for problems the field) of a request.
func (e *env) expect(want int, field, method, path, token string, body any) {
	e.t.Helper()
	status, out := e.call(method, path, token, body)
	if status != want {
		e.t.Fatalf("%s %s = %d %v; want %d", method, path, status, out, want)
	}
	if field != "" && out["field"] != field {
		e.t.Fatalf("%s %s: problem field = %v (%v); want %q", method, path, out["field"], out["detail"], field)
	}
}

// outboxEvent is one row of the outbox.
type outboxEvent struct {
	Type        string
	AggregateID string
	Payload     map[string]any
}

// eventsSince returns the outbox rows after position pos and the new last
// position.
func (e *env) eventsSince(pos int64) ([]outboxEvent, int64) {
	e.t.Helper()
	rows, err := e.db.QueryContext(context.Background(), `SELECT pos, event_type, aggregate_type, aggregate_id, payload FROM event_outbox WHERE pos > ? ORDER BY pos`, pos)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []outboxEvent
	for rows.Next() {
		var ev outboxEvent
		var aggType, payload string
		if err := rows.Scan(&pos, &ev.Type, &aggType, &ev.AggregateID, &payload); err != nil {
			e.t.Fatal(err)
		}
		if aggType != "customer" {
			e.t.Fatalf("event %s has aggregate type %q", ev.Type, aggType)
		}
		if err := json.Unmarshal([]byte(payload), &ev.Payload); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out, pos
}

func (e *env) lastPos() int64 {
	e.t.Helper()
	var pos int64
	if err := e.db.QueryRowContext(context.Background(), `SELECT COALESCE(MAX(pos), 0) FROM event_outbox`).Scan(&pos); err != nil {
		e.t.Fatal(err)
	}
	return pos
}

// publishDealer publishes the Dealer Service's dealer.created event and
// waits until the replica has it.
func (e *env) publishDealer(dealerID, name string) {
	e.t.Helper()
	payload, _ := json.Marshal(map[string]string{"dealerId": dealerID, "name": name})
	ev := events.Event{ID: uuid.NewString(), Type: "dealer.created", AggregateType: "dealer", AggregateID: dealerID,
		Sequence: 1, OccurredAt: time.Now().UTC(), Producer: "dealer", Payload: payload}
	data, _ := json.Marshal(ev)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.js.Publish(ctx, events.Subject(e.prefix, ev.Type), data, jetstream.WithMsgID(ev.ID)); err != nil {
		e.t.Fatal(err)
	}
	e.waitFor("dealer "+dealerID+" in the replica", func() bool {
		var n int
		_ = e.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM customer_dealers WHERE id = ?`, dealerID).Scan(&n)
		return n == 1
	})
}

// publishEvent publishes ev on its subject and waits until done says it
// was applied.
func (e *env) publishEvent(ev events.Event, what string, done func() bool) {
	e.t.Helper()
	data, _ := json.Marshal(ev)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.js.Publish(ctx, events.Subject(e.prefix, ev.Type), data, jetstream.WithMsgID(ev.ID)); err != nil {
		e.t.Fatal(err)
	}
	e.waitFor(what, done)
}

// publishSystem publishes the Security System Service's
// securitysystem.created event for a system at locationID and waits until
// the service recorded it.
func (e *env) publishSystem(systemID, locationID string) {
	e.t.Helper()
	payload, _ := json.Marshal(map[string]string{"securitySystemId": systemID, "name": "Door", "locationId": locationID, "customerId": "", "actorUserId": ""})
	ev := events.Event{ID: uuid.NewString(), Type: "securitysystem.created", AggregateType: "security_system", AggregateID: systemID,
		Sequence: 1, OccurredAt: time.Now().UTC(), Producer: "securitysystem", Payload: payload}
	data, _ := json.Marshal(ev)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.js.Publish(ctx, events.Subject(e.prefix, ev.Type), data, jetstream.WithMsgID(ev.ID)); err != nil {
		e.t.Fatal(err)
	}
	e.waitFor("system "+systemID+" recorded", func() bool {
		var n int
		_ = e.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM customer_location_systems WHERE system_id = ?`, systemID).Scan(&n)
		return n == 1
	})
}

// waitFor polls cond for a bounded time: convergence of asynchronous
// delivery, never a timing assertion.
func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
