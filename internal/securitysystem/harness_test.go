package securitysystem_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/policy/policytest"
	"github.com/realguardio/realguardio/internal/securitysystem"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/provide"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/replicate"
	"github.com/realguardio/realguardio/internal/securitysystem/sstest"
)

// clock is a settable clock for decisions.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// harness is one Security System Service over HTTP with a World's facts
// available to its strategy: served by facts servers (fetch) or fed as
// events into the replica (replicate).
type harness struct {
	t        testing.TB
	strategy string
	db       *sqldb.DB
	svc      *securitysystem.Service
	srv      *httptest.Server
	world    *policytest.World
	facts    *sstest.Facts
	iam      *sstest.IAM
	events   *sstest.Events
	clock    *clock
	// ids maps a World system id to the id the service gave it.
	ids map[string]string
}

// tuesday10Berlin is inside frank's shift; every fixed case sets its own.
var tuesday10Berlin = time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)

func newHarness(t testing.TB, strategy string, w *policytest.World, opts ...func(*securitysystem.Config)) *harness {
	t.Helper()
	h := &harness{t: t, strategy: strategy, world: w, clock: &clock{t: tuesday10Berlin}, ids: map[string]string{}}
	h.db = sqldbtest.OpenSQLite(t)
	h.iam = sstest.NewIAM(t)
	h.facts = sstest.NewFacts(t, w)
	cfg := securitysystem.Config{
		Issuer: h.iam.URL, Strategy: strategy, AllowNoAuthz: true,
		CustomerURL: h.facts.Customer.URL, DealerURL: h.facts.Dealer.URL, MonitoringURL: h.facts.Monitoring.URL,
		ClientID: "securitysystem", ClientSecret: "secret",
	}
	for _, o := range opts {
		o(&cfg)
	}
	svc, err := securitysystem.New(context.Background(), cfg, securitysystem.Deps{
		DB: h.db, Authenticate: sstest.Authenticate, Clock: h.clock.Now,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.svc = svc
	h.srv = httptest.NewServer(svc.Handler())
	t.Cleanup(h.srv.Close)
	h.events = sstest.NewEvents(time.Now().Add(-time.Hour))
	if h.fedByEvents() {
		h.events.World(w)
		h.apply()
	}
	// The admin creates every system of the World at its location.
	admin := w.Admins[0]
	for _, ss := range w.SecuritySystems {
		var out map[string]any
		h.do(admin, "POST", "/securitysystems", map[string]any{"locationId": ss.LocationID, "name": "sys " + ss.ID[:8]}, http.StatusCreated, &out)
		h.ids[ss.ID] = out["id"].(string)
	}
	h.facts.ResetCounts()
	return h
}

// fedByEvents reports whether the strategy learns facts from events:
// replicate (its replica) and provide (the records' resource facts).
func (h *harness) fedByEvents() bool { return h.strategy == "replicate" || h.strategy == "provide" }

// handler is the events handler of the strategy.
func (h *harness) handler() events.Handler {
	if h.strategy == "provide" {
		return provide.Handle
	}
	return replicate.NewProjection().Handle
}

// applied counts the events already fed to the replica.
var appliedMu sync.Mutex

func (h *harness) apply() {
	h.t.Helper()
	appliedMu.Lock()
	defer appliedMu.Unlock()
	evs := h.events.List()
	sstest.Apply(h.t, h.db, h.handler(), evs)
	*h.events = *sstest.NewEvents(evs[len(evs)-1].OccurredAt)
}

// change applies c to the World and tells the strategy about it.
func (h *harness) change(c policytest.Change) {
	h.t.Helper()
	before := h.world.Clone()
	if err := h.world.Apply(c); err != nil {
		h.t.Fatalf("apply %s: %v", c, err)
	}
	if h.fedByEvents() {
		h.events.Change(before, c)
		h.apply()
	}
	h.facts.SetWorld(h.world)
}

// feed applies raw events (replicate and provide only).
func (h *harness) feed(evs ...events.Event) {
	h.t.Helper()
	sstest.Apply(h.t, h.db, h.handler(), evs)
}

// do sends a request as userID (with the World's application roles) and
// checks the status; out, when not nil, receives the JSON body.
func (h *harness) do(userID, method, path string, body any, want int, out any) {
	h.t.Helper()
	status, raw := h.call(userID, method, path, body)
	if status != want {
		h.t.Fatalf("%s %s as %s: status %d, want %d; body %s", method, path, userID, status, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			h.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
}

func (h *harness) call(userID, method, path string, body any) (int, []byte) {
	h.t.Helper()
	return h.callAs(userID, h.world.AppRoles(userID), method, path, body)
}

// callAs sends a request as userID whose token carries roles.
func (h *harness) callAs(userID string, roles []string, method, path string, body any) (int, []byte) {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, h.srv.URL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if userID != "" {
		tok := sstest.Token(userID, roles...)
		if h.strategy == "provide" {
			// The IAM would put the user's facts in the token.
			tok = sstest.TokenWithClaims(userID, sstest.ProvideClaims(h.world, userID), roles...)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// state reads a system's state directly from the database.
func (h *harness) state(id string) string {
	h.t.Helper()
	var s string
	if err := h.db.QueryRowContext(context.Background(), `SELECT state FROM security_systems WHERE id = ?`, id).Scan(&s); err != nil {
		h.t.Fatalf("read state: %v", err)
	}
	return s
}

func (h *harness) count(q string, args ...any) int {
	h.t.Helper()
	var n int
	if err := h.db.QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil {
		h.t.Fatalf("count: %v", err)
	}
	return n
}

type problem struct {
	Status int    `json:"status"`
	Reason string `json:"reason"`
	Field  string `json:"field"`
	Detail string `json:"detail"`
}
