package bff

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/realguardio/realguardio/internal/iam"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

const (
	iamBFFSecret = "bff-secret-0123456789abcdefghijklmnopqrstuvwxyz"
	iamAdminPW   = "admin-password-1"
	// iamCustomerSecret is the client secret of the IAM's customer
	// service client, which creates (and replays) its employees' accounts.
	iamCustomerSecret = "customer-secret-0123456789abcdefghijklmnopqrstuvwxyz"
)

// realIAM is an IAM Service on 127.0.0.1 that counts the calls the BFF
// makes to its token and revocation endpoints.
type realIAM struct {
	issuer      string
	refreshes   atomic.Int64
	revocations atomic.Int64
	mu          sync.Mutex
	refreshSeen []string // refresh tokens presented, in order
	// gate, when set before the first refresh, holds every refresh
	// request until it is closed.
	gate chan struct{}
	// logoutTokens are the back-channel logout tokens the IAM sent to the
	// BFF, in order; they pass through a recorder on their way.
	logoutTokens []string
	// failLogouts, while set, makes the recorder answer 503 instead of
	// passing a logout token on, as a BFF that cannot be reached; the
	// IAM retries.
	failLogouts atomic.Bool
}

// lastLogoutToken returns the last back-channel logout token the IAM sent,
// or "".
func (ri *realIAM) lastLogoutToken() string {
	ri.mu.Lock()
	defer ri.mu.Unlock()
	if len(ri.logoutTokens) == 0 {
		return ""
	}
	return ri.logoutTokens[len(ri.logoutTokens)-1]
}

// offsetClock is real time plus an offset the test advances to make the
// BFF consider its access token expired, while the IAM and go-oidc keep real
// time.
type offsetClock struct{ offset atomic.Int64 }

func (c *offsetClock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// startWithIAM starts a real IAM Service whose BFF client redirects to the
// BFF test server, and the BFF against it and the fake backends.
// Extra adjusts the BFF's settings after the IAM is set up.
func startWithIAM(t *testing.T, be backendURLs, clock *offsetClock, extra ...func(*Config, *Deps)) (*testBFF, *realIAM) {
	t.Helper()
	ri := &realIAM{}
	b := startBFF(t, "", iamBFFSecret, be, []string{newKey(t)}, func(cfg *Config, deps *Deps) {
		for _, f := range extra {
			defer f(cfg, deps)
		}
		srv := httptest.NewUnstartedServer(nil)
		ri.issuer = "http://" + srv.Listener.Addr().String()
		// The IAM's back-channel logout tokens reach the BFF through a
		// recorder, so tests can replay them.
		bffLogout := cfg.PublicURL + BackchannelLogoutPath
		recorder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			ri.mu.Lock()
			ri.logoutTokens = append(ri.logoutTokens, r.PostForm.Get("logout_token"))
			ri.mu.Unlock()
			if ri.failLogouts.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			resp, err := http.PostForm(bffLogout, r.PostForm)
			if err != nil {
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			resp.Body.Close()
			w.WriteHeader(resp.StatusCode)
		}))
		t.Cleanup(recorder.Close)
		clients := iam.DefaultClients(cfg.PublicURL+"/auth/callback", cfg.PublicURL+"/", map[string]string{iam.AudienceCustomer: iamCustomerSecret}, iamBFFSecret)
		for i := range clients {
			if clients[i].ID == iam.ClientBFF {
				clients[i].BackchannelLogoutURI = recorder.URL
			}
		}
		svc, err := iam.New(context.Background(), iam.Config{
			Issuer:          ri.issuer,
			AdminPassword:   iamAdminPW,
			KeyPublishAhead: -1,
			Clients:         clients,
		}, iam.Deps{DB: sqldbtest.OpenSQLite(t)})
		if err != nil {
			t.Fatalf("iam.New: %v", err)
		}
		t.Cleanup(func() { _ = svc.Close() })
		h := svc.Handler()
		srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == "POST" && (strings.HasSuffix(r.URL.Path, "/oauth/token") || strings.HasSuffix(r.URL.Path, "/oauth/revoke")) {
				_ = r.ParseForm()
				if r.PostForm.Get("grant_type") == "refresh_token" {
					ri.refreshes.Add(1)
					ri.mu.Lock()
					ri.refreshSeen = append(ri.refreshSeen, r.PostForm.Get("refresh_token"))
					gate := ri.gate
					ri.mu.Unlock()
					if gate != nil {
						select {
						case <-gate:
						case <-time.After(10 * time.Second):
						}
					}
				}
				if strings.HasSuffix(r.URL.Path, "/oauth/revoke") {
					ri.revocations.Add(1)
				}
				r.Body = io.NopCloser(strings.NewReader(r.PostForm.Encode()))
				r.ContentLength = int64(len(r.PostForm.Encode()))
			}
			h.ServeHTTP(w, r)
		})
		srv.Start()
		t.Cleanup(srv.Close)
		cfg.Issuer = ri.issuer
		if clock != nil {
			deps.Now = clock.now
		}
	})
	return b, ri
}

// holdRefresh makes the IAM hold refresh requests until n requests have
// read their session on the BFFs bffs, so that a test of concurrent
// requests at refresh time does not depend on the scheduler: every one of
// them sees the generation before the refresh. The returned func removes
// the hold.
func holdRefresh(ri *realIAM, n int64, bffs ...*testBFF) func() {
	var reads atomic.Int64
	var once sync.Once
	gate := make(chan struct{})
	ri.mu.Lock()
	ri.gate = gate
	ri.mu.Unlock()
	hook := func() {
		if reads.Add(1) == n {
			once.Do(func() { close(gate) })
		}
	}
	for _, b := range bffs {
		b.svc.afterRead.Store(&hook)
	}
	return func() {
		for _, b := range bffs {
			b.svc.afterRead.Store(nil)
		}
		once.Do(func() { close(gate) })
		ri.mu.Lock()
		ri.gate = nil
		ri.mu.Unlock()
	}
}

var hiddenInput = regexp.MustCompile(`<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"`)
var formAction = regexp.MustCompile(`<form[^>]*action="([^"]*)"`)

// login signs in through the IAM's real login form, as a browser would,
// and returns the final response (the page the BFF redirected to).
func login(t *testing.T, b *testBFF, c *http.Client, returnTo string) (*http.Response, string) {
	t.Helper()
	return loginAs(t, b, c, returnTo, "admin", iamAdminPW)
}

// loginAs is login as the user username.
func loginAs(t *testing.T, b *testBFF, c *http.Client, returnTo, username, password string) (*http.Response, string) {
	t.Helper()
	follow := *c
	follow.CheckRedirect = nil
	path := "/login"
	if returnTo != "" {
		path += "?returnTo=" + url.QueryEscape(returnTo)
	}
	resp, err := follow.Get(b.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), `name="username"`) {
		t.Fatalf("login page: %d %s", resp.StatusCode, page)
	}
	form := url.Values{"username": {username}, "password": {password}}
	for _, m := range hiddenInput.FindAllStringSubmatch(string(page), -1) {
		form.Set(m[1], htmlUnescape(m[2]))
	}
	action := resp.Request.URL.String()
	if m := formAction.FindStringSubmatch(string(page)); m != nil {
		u, _ := resp.Request.URL.Parse(htmlUnescape(m[1]))
		action = u.String()
	}
	resp, err = follow.PostForm(action, form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">", "&#x2F;", "/").Replace(s)
}

func TestLoginThroughIAM(t *testing.T) {
	world := newFakeWorld("")
	b, ri := startWithIAM(t, world.start(t), nil)
	c := b.client(t, nil)

	resp, body := login(t, b, c, "/token")
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/token" || !strings.Contains(body, "token-claims") {
		t.Fatalf("after login: %d %s", resp.StatusCode, resp.Request.URL)
	}
	if !strings.Contains(body, ri.issuer) || !strings.Contains(body, "realguardio-securitysystem") {
		t.Errorf("token page does not show the IAM's claims")
	}
	u, _ := url.Parse(b.srv.URL)
	var chunks int
	for _, ck := range c.Jar.Cookies(u) {
		if strings.HasPrefix(ck.Name, sessionCookie+".") {
			chunks++
		}
		if strings.HasPrefix(ck.Name, loginCookiePrefix) {
			t.Errorf("login state cookie %s left behind", ck.Name)
		}
	}
	if chunks == 0 {
		t.Fatal("no session cookie")
	}
	// The session works for the API.
	resp, body = b.do(t, c, "GET", "/api/securitysystems", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("api after login: %d %s", resp.StatusCode, body)
	}
	// The dashboard shows the admin's name and a logout button.
	_, body = b.do(t, c, "GET", "/", "", nil)
	if !strings.Contains(body, `data-testid="user-name">admin<`) || !strings.Contains(body, `id="logout"`) {
		i := strings.Index(body, "user-name")
		t.Errorf("dashboard header lacks the user or logout: %.200s", body[max(i, 0):])
	}
	if ri.refreshes.Load() != 0 {
		t.Errorf("a fresh login refreshed %d times", ri.refreshes.Load())
	}
}

func TestCallbackChecksStateAndReturnTo(t *testing.T) {
	b, _ := startWithIAM(t, backendURLs{}, nil)
	c := b.client(t, nil)
	// A callback with a state this browser did not start is refused.
	resp, body := b.do(t, c, "GET", "/auth/callback?state=forged-state-value&code=x", "", nil)
	if resp.StatusCode != 400 || !strings.Contains(body, "sign in again") {
		t.Fatalf("forged state: %d", resp.StatusCode)
	}
	// An absolute returnTo is not followed.
	resp, _ = login(t, b, c, "https://evil.example/")
	if resp.Request.URL.Host != strings.TrimPrefix(b.srv.URL, "http://") || resp.Request.URL.Path != "/" {
		t.Fatalf("open redirect to %s", resp.Request.URL)
	}
	// The login redirect carries PKCE S256, state and nonce.
	resp, _ = b.do(t, b.client(t, nil), "GET", "/login", "", nil)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	q := loc.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" || q.Get("nonce") == "" {
		t.Fatalf("authorization request lacks PKCE/state/nonce: %s", loc)
	}
}

func TestRefreshOnceWhenExpired(t *testing.T) {
	world := newFakeWorld("")
	clock := &offsetClock{}
	b, ri := startWithIAM(t, world.start(t), clock)
	c := b.client(t, nil)
	login(t, b, c, "/")
	u, _ := url.Parse(b.srv.URL)
	old := c.Jar.Cookies(u)

	// Ten minutes later the access token (5 minutes) has expired for the
	// BFF. Eight concurrent requests with the same cookie, all read before
	// the refresh is stored (holdRefresh): one refresh.
	const n = 8
	release := holdRefresh(ri, n, b)
	clock.offset.Store(int64(10 * time.Minute))
	var wg sync.WaitGroup
	statuses := make([]int, n)
	newCookies := make([][]*http.Cookie, n)
	for i := range n {
		wg.Go(func() {
			cc := b.client(t, old)
			req, _ := http.NewRequest("GET", b.srv.URL+"/api/securitysystems", nil)
			resp, err := cc.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
			newCookies[i] = resp.Cookies()
		})
	}
	wg.Wait()
	release()
	for i, s := range statuses {
		if s != 200 {
			t.Errorf("request %d: %d", i, s)
		}
		if len(newCookies[i]) == 0 {
			t.Errorf("request %d: the refreshed session was not written back", i)
		}
	}
	if got := ri.refreshes.Load(); got != 1 {
		t.Fatalf("%d refreshes at the IAM, want exactly 1", got)
	}

	// A late request with the pre-refresh cookie is refused: the refresh
	// bumped the session's generation, so that copy names a generation the
	// store no longer has. It neither refreshes again nor clears cookies
	// (the browser may already hold the new ones).
	resp, _ := b.do(t, b.client(t, old), "GET", "/api/securitysystems", "", nil)
	if resp.StatusCode != 401 || ri.refreshes.Load() != 1 {
		t.Fatalf("late old-cookie request: %d, refreshes %d, want 401 and 1", resp.StatusCode, ri.refreshes.Load())
	}
	if _, deleted := setChunks(resp); len(deleted) != 0 {
		t.Fatalf("a stale copy cleared the cookies: %v", deleted)
	}

	// The new cookie carries the rotated refresh token: the next expiry
	// refreshes with it, successfully (no reuse detection fired).
	c2 := b.client(t, newCookies[0])
	clock.offset.Store(int64(20 * time.Minute))
	resp, _ = b.do(t, c2, "GET", "/api/securitysystems", "", nil)
	if resp.StatusCode != 200 || ri.refreshes.Load() != 2 {
		t.Fatalf("second refresh: %d, refreshes %d", resp.StatusCode, ri.refreshes.Load())
	}
	ri.mu.Lock()
	seen := append([]string(nil), ri.refreshSeen...)
	ri.mu.Unlock()
	if len(seen) != 2 || seen[0] == seen[1] {
		t.Fatalf("the refresh token was not rotated between refreshes")
	}
}

func TestFailedRefreshEndsSession(t *testing.T) {
	world := newFakeWorld("")
	clock := &offsetClock{}
	b, _ := startWithIAM(t, world.start(t), clock)
	c := b.client(t, nil)
	login(t, b, c, "/")
	u, _ := url.Parse(b.srv.URL)
	cookies := c.Jar.Cookies(u)
	sess := func() *session {
		req := httptest.NewRequest("GET", "/", nil)
		for _, ck := range cookies {
			req.AddCookie(ck)
		}
		s, err := b.svc.readSession(req)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	// Revoke the refresh token behind the BFF's back.
	d, err := b.svc.iam.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b.svc.iam.revoke(context.Background(), d, sess.Refresh, "refresh_token")
	clock.offset.Store(int64(10 * time.Minute))
	resp, _ := b.do(t, c, "GET", "/api/securitysystems", "", nil)
	if resp.StatusCode != 401 {
		t.Fatalf("refused refresh: %d, want 401", resp.StatusCode)
	}
	_, deleted := setChunks(resp)
	if len(deleted) == 0 {
		t.Fatal("the session cookies were not cleared")
	}
}

func TestLogoutClearsCookiesAndRevokes(t *testing.T) {
	world := newFakeWorld("")
	b, ri := startWithIAM(t, world.start(t), nil)
	c := b.client(t, nil)
	login(t, b, c, "/")
	u, _ := url.Parse(b.srv.URL)
	cookies := c.Jar.Cookies(u)
	req := httptest.NewRequest("GET", "/", nil)
	for _, ck := range cookies {
		req.AddCookie(ck)
	}
	sess, err := b.svc.readSession(req)
	if err != nil {
		t.Fatal(err)
	}
	// Without the CSRF token logout is refused.
	resp, _ := b.do(t, c, "POST", "/logout", "", map[string]string{"Origin": b.srv.URL})
	if resp.StatusCode != 403 {
		t.Fatalf("logout without CSRF token: %d", resp.StatusCode)
	}
	form := url.Values{"csrf_token": {sess.CSRF}}.Encode()
	resp, _ = b.do(t, c, "POST", "/logout", form, map[string]string{"Origin": b.srv.URL, "Content-Type": "application/x-www-form-urlencoded"})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if !strings.HasPrefix(loc.String(), ri.issuer) || loc.Query().Get("id_token_hint") == "" || loc.Query().Get("post_logout_redirect_uri") != b.srv.URL+"/" {
		t.Fatalf("logout redirect %s", loc)
	}
	if _, deleted := setChunks(resp); len(deleted) == 0 {
		t.Fatal("logout did not clear the session cookies")
	}
	if ri.revocations.Load() != 1 {
		t.Fatalf("%d revocations, want 1", ri.revocations.Load())
	}
	// The refresh token is dead at the IAM.
	d, _ := b.svc.iam.get(context.Background())
	if _, err := d.oauth.TokenSource(b.svc.iam.ctx(context.Background()), &oauth2.Token{RefreshToken: sess.Refresh}).Token(); err == nil {
		t.Fatal("the refresh token still works after logout")
	}
	// Following the redirect ends at the BFF's home page, signed out.
	follow := *c
	follow.CheckRedirect = nil
	resp2, err := follow.Get(loc.String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if resp2.Request.URL.String() != b.srv.URL+"/" || !strings.Contains(string(body), `id="login"`) {
		t.Fatalf("after logout: %s", resp2.Request.URL)
	}
	resp, _ = b.do(t, c, "GET", "/api/securitysystems", "", nil)
	if resp.StatusCode != 401 {
		t.Fatalf("api after logout: %d", resp.StatusCode)
	}
}
