package bff

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

// newKey returns a random base64 session key.
func newKey(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// swappable lets a test server exist (and so know its URL) before the
// handler that needs that URL is built.
type swappable struct {
	mu sync.RWMutex
	h  http.Handler
}

func (s *swappable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	h := s.h
	s.mu.RUnlock()
	h.ServeHTTP(w, r)
}

func (s *swappable) set(h http.Handler) {
	s.mu.Lock()
	s.h = h
	s.mu.Unlock()
}

// testBFF is a BFF on a real HTTP server.
type testBFF struct {
	svc *Service
	srv *httptest.Server
	cfg Config
}

// backendURLs names the four backends; an empty one is served by a 404.
type backendURLs struct{ ss, customer, dealer, monitoring string }

func startBFF(t testing.TB, issuer, secret string, be backendURLs, keys []string, mod func(*Config, *Deps)) *testBFF {
	t.Helper()
	sw := &swappable{h: http.NotFoundHandler()}
	srv := httptest.NewServer(sw)
	t.Cleanup(srv.Close)
	nf := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(nf.Close)
	or := func(s string) string {
		if s == "" {
			return nf.URL
		}
		return s
	}
	if issuer == "" {
		issuer = "http://127.0.0.1:1"
	}
	if secret == "" {
		secret = "test-secret"
	}
	cfg := Config{
		PublicURL: srv.URL, Issuer: issuer, ClientSecret: secret, SessionKeys: keys,
		SecuritySystemURL: or(be.ss), CustomerURL: or(be.customer), DealerURL: or(be.dealer), MonitoringURL: or(be.monitoring),
		Strategy: "fetch", BackendTimeout: 5 * time.Second, IAMTimeout: 5 * time.Second,
	}
	deps := Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if mod != nil {
		mod(&cfg, &deps)
	}
	if deps.DB == nil {
		deps.DB = sqldbtest.OpenSQLite(t)
	}
	svc, err := New(context.Background(), cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	sw.set(svc.Handler())
	return &testBFF{svc: svc, srv: srv, cfg: svc.cfg}
}

// fakeJWT builds an unsigned compact JWT with the given claims, enough for
// everything the BFF reads from an access token.
func fakeJWT(claims map[string]any) string {
	h, _ := json.Marshal(map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": "k1"})
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + ".c2ln"
}

// mintSession stores sess as a new session and returns its cookies, as the
// BFF would set them at login.
func (b *testBFF) mintSession(t testing.TB, sess *session) []*http.Cookie {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	if err := b.svc.startSession(context.Background(), rec, req, sess); err != nil {
		t.Fatal(err)
	}
	return rec.Result().Cookies()
}

func testSession(access string) *session {
	return &session{ID: randomToken(18), CSRF: "csrf-token-1", Access: access, Refresh: "rt-1",
		Expiry: time.Now().Add(time.Hour).Unix(), Subject: "user-1", Name: "Alice", Created: time.Now().Unix()}
}

// client returns an HTTP client with a cookie jar holding cookies for the
// BFF, that does not follow redirects.
func (b *testBFF) client(t testing.TB, cookies []*http.Cookie) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	req, _ := http.NewRequest("GET", b.srv.URL, nil)
	jar.SetCookies(req.URL, cookies)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (b *testBFF) do(t testing.TB, c *http.Client, method, path, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, b.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

// sessionCookieNames lists the session chunk cookies the response set with
// a value (not deletions).
func setChunks(resp *http.Response) (set, deleted []string) {
	for _, c := range resp.Cookies() {
		if !strings.HasPrefix(c.Name, sessionCookie+".") {
			continue
		}
		if c.MaxAge < 0 || c.Value == "" {
			deleted = append(deleted, c.Name)
		} else {
			set = append(set, c.Name)
		}
	}
	return
}
