package iam

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

// testClock is real time plus an offset the test can advance, so that
// tokens stay valid for real-time verifiers (go-oidc) while the IAM's own
// expiry decisions can be jumped over.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().UTC().Add(c.offset)
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

const (
	testBFFSecret  = "bff-secret-0123456789abcdefghijklmnopqrstuvwxyz"
	testSvcSecret  = "svc-secret-0123456789abcdefghijklmnopqrstuvwxyz"
	testAdminPW    = "admin-password-1"
	testPostLogout = "http://127.0.0.1:1/logged-out"
)

// env is one running IAM Service and the relying party's callback.
type env struct {
	t        *testing.T
	svc      *Service
	issuer   string
	clock    *testClock
	callback *httptest.Server
	codes    chan url.Values
	sleeps   []time.Duration
	mu       sync.Mutex
}

type envOpts struct {
	cfg   func(*Config)
	authz AuthorizationClaims
	db    *sqldb.DB
	// login, when set, adjusts the login UI before the server starts
	// (so that the handlers see the change without a data race).
	login func(*loginUI)
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	e := &env{clock: &testClock{}, codes: make(chan url.Values, 4)}
	if tt, ok := t.(*testing.T); ok {
		e.t = tt
	}
	e.callback = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case e.codes <- r.URL.Query():
		default:
		}
		_, _ = io.WriteString(w, "callback received")
	}))
	t.Cleanup(e.callback.Close)
	srv := httptest.NewUnstartedServer(nil)
	e.issuer = "http://" + srv.Listener.Addr().String()
	db := o.db
	if db == nil {
		db = sqldbtest.OpenSQLite(t)
	}
	cfg := Config{
		Issuer:          e.issuer,
		AdminPassword:   testAdminPW,
		KeyPublishAhead: -1,
		Clients: DefaultClients(e.callback.URL+"/auth/callback", testPostLogout,
			map[string]string{AudienceCustomer: testSvcSecret, AudienceDealer: testSvcSecret, AudienceSecuritySystem: testSvcSecret}, testBFFSecret),
	}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	svc, err := New(context.Background(), cfg, Deps{DB: db, Clock: e.clock.now, AuthorizationClaims: o.authz})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	svc.login.sleep = func(_ context.Context, d time.Duration) {
		e.mu.Lock()
		e.sleeps = append(e.sleeps, d)
		e.mu.Unlock()
	}
	if o.login != nil {
		o.login(svc.login)
	}
	e.svc = svc
	srv.Config.Handler = svc.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	return e
}

func (e *env) bffConfig() *oauth2.Config {
	return &oauth2.Config{
		ClientID:     ClientBFF,
		ClientSecret: testBFFSecret,
		RedirectURL:  e.callback.URL + "/auth/callback",
		Scopes:       []string{"openid", "profile", "offline_access"},
		Endpoint: oauth2.Endpoint{
			AuthURL:   e.issuer + "/authorize",
			TokenURL:  e.issuer + "/oauth/token",
			AuthStyle: oauth2.AuthStyleInHeader,
		},
	}
}

// browser is an HTTP client with cookies, as a browser would be.
func browser(t testing.TB) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second}
}

var (
	hiddenRe = regexp.MustCompile(`<input type="hidden" name="([a-zA-Z]+)" value="([^"]*)">`)
	errorRe  = regexp.MustCompile(`<p class="error"[^>]*>([^<]*)</p>`)
)

type loginForm struct {
	action string
	fields url.Values
}

func parseLoginForm(t testing.TB, base *url.URL, body string) loginForm {
	t.Helper()
	if !strings.Contains(body, `name="username"`) || !strings.Contains(body, `name="password"`) {
		t.Fatalf("no login form in page:\n%s", body)
	}
	f := loginForm{fields: url.Values{}}
	for _, m := range hiddenRe.FindAllStringSubmatch(body, -1) {
		f.fields.Set(m[1], htmlUnescape(m[2]))
	}
	act := regexp.MustCompile(`<form method="post" action="([^"]*)"`).FindStringSubmatch(body)
	if act == nil {
		t.Fatalf("no form action")
	}
	u, _ := base.Parse(htmlUnescape(act[1]))
	f.action = u.String()
	return f
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">", "&#43;", "+", "&#x2B;", "+").Replace(s)
}

// startLogin follows the authorization URL to the login page.
func startLogin(t testing.TB, c *http.Client, authURL string) (loginForm, *http.Response, string) {
	t.Helper()
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatalf("GET auth URL: %v", err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("auth URL answered %d: %s", resp.StatusCode, body)
	}
	return parseLoginForm(t, resp.Request.URL, body), resp, body
}

func submitLogin(t testing.TB, c *http.Client, f loginForm, username, password string) (*http.Response, string) {
	t.Helper()
	v := url.Values{}
	for k := range f.fields {
		v.Set(k, f.fields.Get(k))
	}
	v.Set("username", username)
	v.Set("password", password)
	resp, err := c.PostForm(f.action, v)
	if err != nil {
		t.Fatalf("POST login: %v", err)
	}
	return resp, readBody(t, resp)
}

func readBody(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

// pkce returns a verifier and its S256 challenge.
func pkce() (verifier, challenge string) {
	verifier = oauth2.GenerateVerifier()
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// loginCode runs the browser part of the code flow and returns the code
// the callback received.
func (e *env) loginCode(t testing.TB, cfg *oauth2.Config, username, password string, opts ...oauth2.AuthCodeOption) (code, verifier string) {
	t.Helper()
	verifier = oauth2.GenerateVerifier()
	opts = append(opts, oauth2.S256ChallengeOption(verifier))
	c := browser(t)
	f, _, _ := startLogin(t, c, cfg.AuthCodeURL("st4te", opts...))
	resp, body := submitLogin(t, c, f, username, password)
	if resp.StatusCode != http.StatusOK || body != "callback received" {
		t.Fatalf("login ended with %d %s: %s", resp.StatusCode, resp.Request.URL, body)
	}
	q := <-e.codes
	if q.Get("state") != "st4te" || q.Get("code") == "" {
		t.Fatalf("callback query = %v", q)
	}
	return q.Get("code"), verifier
}

// jwtParts decodes the header and claims of a JWT without verifying it.
func jwtParts(t testing.TB, raw string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", raw)
	}
	dec := func(s string) map[string]any {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("decode JWT part: %v", err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("JWT part: %v", err)
		}
		return m
	}
	return dec(parts[0]), dec(parts[1])
}

// createUser makes a user directly through the use case, as an
// administrator (any roles, owned by no service client).
func (e *env) createUser(t testing.TB, username, password string, roles ...string) string {
	t.Helper()
	u, _, err := e.svc.createUser(context.Background(), &auth.Caller{Subject: "test-admin", ClientID: ClientBFF, Roles: []string{auth.RoleAdmin}},
		createUserBody{Username: username, Password: password, Roles: roles})
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	return u.ID
}

// postForm posts to the token-style endpoints with client authentication.
func postForm(t testing.TB, u, clientID, secret string, v url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	} else if clientID != "" {
		q := req.URL.Query()
		_ = q
		v.Set("client_id", clientID)
		req, _ = http.NewRequest(http.MethodPost, u, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	body := readBody(t, resp)
	var m map[string]any
	_ = json.Unmarshal([]byte(body), &m)
	if m == nil {
		m = map[string]any{"raw": body}
	}
	return resp.StatusCode, m
}

// eachStore runs fn on SQLite and PostgreSQL with a fresh IAM database.
func eachStore(t *testing.T, fn func(t *testing.T, db *sqldb.DB)) {
	sqldbtest.ForEachStore(t, []sqldb.Migrations{Migrations}, fn)
}

// stringsOf reads a claim that is a string or an array of strings.
func stringsOf(v any) []string {
	switch t := v.(type) {
	case string:
		return []string{t}
	case []any:
		out := make([]string, 0, len(t))
		for _, e := range t {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
