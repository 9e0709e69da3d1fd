package bff

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

// recordingBackend answers like a RealGuardIO service and remembers the last
// request it got.
type recordingBackend struct {
	mu   sync.Mutex
	last *http.Request
	body string
	srv  *httptest.Server
}

func newRecordingBackend(t *testing.T, h http.HandlerFunc) *recordingBackend {
	rb := &recordingBackend{}
	rb.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rb.mu.Lock()
		rb.last, rb.body = r.Clone(r.Context()), string(b)
		rb.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(rb.srv.Close)
	return rb
}

func (rb *recordingBackend) lastRequest() (*http.Request, string) {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	return rb.last, rb.body
}

const denial = `{"type":"https://realguardio.dev/problems/forbidden","title":"Forbidden","status":403,"detail":"outside your shift","reason":"outside_schedule"}`

func securitySystemBackend(t *testing.T) *recordingBackend {
	return newRecordingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == "GET" && r.URL.Path == "/securitysystems":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"securitySystems":[{"id":"11111111-1111-1111-1111-111111111111","name":"Main entrance","locationId":"22222222-2222-2222-2222-222222222222","state":"ARMED","actions":["DISARM"]}]}`)
		case r.Method == "PUT" && strings.HasPrefix(r.URL.Path, "/securitysystems/"):
			w.Header().Set("Content-Type", "application/problem+json")
			w.Header().Set("Connection", "X-Secret-Hop")
			w.Header().Set("X-Secret-Hop", "must-not-pass")
			w.Header().Set("Set-Cookie", "evil=1")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, denial)
		default:
			http.NotFound(w, r)
		}
	})
}

func TestAPIWithoutSessionIs401(t *testing.T) {
	ss := securitySystemBackend(t)
	b := startBFF(t, "", "", backendURLs{ss: ss.srv.URL}, []string{newKey(t)}, nil)
	resp, body := b.do(t, b.client(t, nil), "GET", "/api/securitysystems", "", nil)
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("Content-Type"), "problem+json") {
		t.Fatalf("got %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if r, _ := ss.lastRequest(); r != nil {
		t.Fatal("an anonymous request reached the backend")
	}
}

func TestBadCookiesAreNoSession(t *testing.T) {
	ss := securitySystemBackend(t)
	b := startBFF(t, "", "", backendURLs{ss: ss.srv.URL}, []string{newKey(t)}, nil)
	good := b.mintSession(t, testSession(fakeJWT(map[string]any{"sub": "user-1"})))
	tampered := *good[0]
	tampered.Value = tampered.Value[:len(tampered.Value)-4] + "AAAA"
	foreign := startBFF(t, "", "", backendURLs{}, []string{newKey(t)}, nil).mintSession(t, testSession("x"))
	cases := map[string][]*http.Cookie{
		"tampered": {&tampered},
		"foreign":  foreign,
		"garbage":  {{Name: sessionCookie + ".0", Value: "garbage.garbage"}},
	}
	for name, cookies := range cases {
		c := b.client(t, cookies)
		resp, _ := b.do(t, c, "GET", "/api/securitysystems", "", nil)
		if resp.StatusCode != 401 {
			t.Errorf("%s cookie: /api got %d, want 401", name, resp.StatusCode)
		}
		resp, body := b.do(t, c, "GET", "/", "", nil)
		if resp.StatusCode != 200 || !strings.Contains(body, `href="/login"`) {
			t.Errorf("%s cookie: / got %d without a sign-in link", name, resp.StatusCode)
		}
		resp, _ = b.do(t, c, "GET", "/token", "", nil)
		if resp.StatusCode != 302 || !strings.HasPrefix(resp.Header.Get("Location"), "/login?returnTo=") {
			t.Errorf("%s cookie: /token got %d %s, want a redirect to the login", name, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// The genuine cookie works.
	resp, _ := b.do(t, b.client(t, good), "GET", "/api/securitysystems", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("good cookie: got %d", resp.StatusCode)
	}
}

func TestKeyRotationKeepsSessions(t *testing.T) {
	oldKey := newKey(t)
	ss := securitySystemBackend(t)
	db := sqldbtest.OpenSQLite(t)
	shared := func(_ *Config, d *Deps) { d.DB = db }
	before := startBFF(t, "", "", backendURLs{ss: ss.srv.URL}, []string{oldKey}, shared)
	cookies := before.mintSession(t, testSession(fakeJWT(map[string]any{"sub": "user-1"})))
	after := startBFF(t, "", "", backendURLs{ss: ss.srv.URL}, []string{newKey(t), oldKey}, shared)
	resp, _ := after.do(t, after.client(t, cookies), "GET", "/api/securitysystems", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("old-key session after rotation: got %d", resp.StatusCode)
	}
	// A session written after rotation does not open with the old key only.
	fresh := after.mintSession(t, testSession("at"))
	resp, _ = before.do(t, before.client(t, fresh), "GET", "/api/securitysystems", "", nil)
	if resp.StatusCode != 401 {
		t.Fatalf("new-key session opened by a BFF with only the old key: %d", resp.StatusCode)
	}
}

func TestProxyForwardsTokenAndPassesProblemsThrough(t *testing.T) {
	ss := securitySystemBackend(t)
	b := startBFF(t, "", "", backendURLs{ss: ss.srv.URL}, []string{newKey(t)}, nil)
	access := fakeJWT(map[string]any{"sub": "user-1"})
	c := b.client(t, b.mintSession(t, testSession(access)))

	resp, body := b.do(t, c, "GET", "/api/securitysystems", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "Main entrance") {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	r, _ := ss.lastRequest()
	if got := r.Header.Get("Authorization"); got != "Bearer "+access {
		t.Errorf("backend got Authorization %q", got)
	}
	if r.Header.Get("Cookie") != "" {
		t.Error("the session cookie was forwarded to the backend")
	}

	resp, body = b.do(t, c, "PUT", "/api/securitysystems/11111111-1111-1111-1111-111111111111", `{"action":"DISARM"}`,
		map[string]string{"Origin": b.srv.URL, "X-CSRF-Token": "csrf-token-1"})
	if resp.StatusCode != 403 || strings.TrimSpace(body) != denial {
		t.Fatalf("problem not passed through unchanged: %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("content type %q", resp.Header.Get("Content-Type"))
	}
	if resp.Header.Get("X-Secret-Hop") != "" {
		t.Error("a hop-by-hop header named in Connection passed through")
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == "evil" {
			t.Error("a backend cookie reached the browser")
		}
	}
	r, reqBody := ss.lastRequest()
	if reqBody != `{"action":"DISARM"}` || r.Header.Get("X-CSRF-Token") != "" {
		t.Errorf("backend got body %q and CSRF header %q", reqBody, r.Header.Get("X-CSRF-Token"))
	}
}

func TestCSRFRefusals(t *testing.T) {
	ss := securitySystemBackend(t)
	b := startBFF(t, "", "", backendURLs{ss: ss.srv.URL}, []string{newKey(t)}, nil)
	c := b.client(t, b.mintSession(t, testSession(fakeJWT(map[string]any{"sub": "user-1"}))))
	path := "/api/securitysystems/11111111-1111-1111-1111-111111111111"
	for name, hdr := range map[string]map[string]string{
		"missing token":     {"Origin": b.srv.URL},
		"wrong token":       {"Origin": b.srv.URL, "X-CSRF-Token": "nope"},
		"wrong origin":      {"Origin": "http://evil.example", "X-CSRF-Token": "csrf-token-1"},
		"no origin nor ref": {"X-CSRF-Token": "csrf-token-1"},
		"wrong referer":     {"Referer": "http://evil.example/page", "X-CSRF-Token": "csrf-token-1"},
		"null origin":       {"Origin": "null", "X-CSRF-Token": "csrf-token-1"},
	} {
		resp, body := b.do(t, c, "PUT", path, `{"action":"ARM"}`, hdr)
		var p struct{ Reason string }
		_ = json.Unmarshal([]byte(body), &p)
		if resp.StatusCode != 403 || p.Reason != "csrf" {
			t.Errorf("%s: got %d %s, want 403 csrf", name, resp.StatusCode, body)
		}
	}
	if r, _ := ss.lastRequest(); r != nil {
		t.Fatal("a refused request reached the backend")
	}
	// Referer from the BFF's own origin stands in for a missing Origin.
	resp, _ := b.do(t, c, "PUT", path, `{"action":"ARM"}`, map[string]string{"Referer": b.srv.URL + "/", "X-CSRF-Token": "csrf-token-1"})
	if resp.StatusCode != 403 { // the backend's own denial, passed through
		t.Fatalf("same-origin referer: %d", resp.StatusCode)
	}
	if r, _ := ss.lastRequest(); r == nil {
		t.Fatal("a same-origin request did not reach the backend")
	}
	// POST /logout without the token is refused too.
	resp, _ = b.do(t, c, "POST", "/logout", "", map[string]string{"Origin": "http://evil.example"})
	if resp.StatusCode != 403 {
		t.Fatalf("cross-site logout: %d", resp.StatusCode)
	}
}

func TestBackendDownAndSlowAre503(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	b := startBFF(t, "", "", backendURLs{ss: slow.URL, customer: down.URL}, []string{newKey(t)},
		func(c *Config, _ *Deps) { c.BackendTimeout = 200 * time.Millisecond })
	c := b.client(t, b.mintSession(t, testSession(fakeJWT(map[string]any{"sub": "user-1"}))))
	for _, path := range []string{"/api/securitysystems", "/api/profiles"} {
		resp, body := b.do(t, c, "GET", path, "", nil)
		if resp.StatusCode != 503 || !strings.Contains(body, "nothing was changed") {
			t.Errorf("%s: got %d %s", path, resp.StatusCode, body)
		}
	}
	resp, _ := b.do(t, c, "GET", "/api/unknown", "", nil)
	if resp.StatusCode != 404 {
		t.Errorf("unknown API: %d", resp.StatusCode)
	}
}

func TestRoutingTable(t *testing.T) {
	for path, want := range map[string]string{
		"/securitysystems": backendSecuritySystem, "/securitysystems/x": backendSecuritySystem, "/audit": backendSecuritySystem,
		"/customers": backendCustomer, "/customers/x/employees": backendCustomer, "/profiles": backendCustomer,
		"/dealers/x": backendDealer, "/monitoring-providers": backendMonitoring,
		"/securitysystemsX": "", "/authz/subjects/x": "", "/": "",
	} {
		if got := backendFor(path); got != want {
			t.Errorf("backendFor(%q) = %q, want %q", path, got, want)
		}
	}
}
