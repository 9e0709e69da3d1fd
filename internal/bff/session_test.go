package bff

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func mustCodec(t *testing.T, keys ...string) *codec {
	t.Helper()
	k, err := parseKeys(keys)
	if err != nil {
		t.Fatal(err)
	}
	return newCodec(k, time.Now)
}

func TestCodecRoundTripAndRotation(t *testing.T) {
	oldKey, newKeyS := newKey(t), newKey(t)
	old := mustCodec(t, oldKey)
	rotated := mustCodec(t, newKeyS, oldKey)

	v, err := old.seal(purposeSession, testSession("at"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var got session
	if err := rotated.open(purposeSession, v, &got); err != nil {
		t.Fatalf("rotated codec must open a value sealed with the old key: %v", err)
	}
	if got.Access != "at" || got.Subject != "user-1" {
		t.Fatalf("round trip lost data: %+v", got)
	}
	// The new key encrypts: the old-only codec cannot open a new value.
	v2, _ := rotated.seal(purposeSession, testSession("at2"), time.Hour)
	if err := old.open(purposeSession, v2, &got); err == nil {
		t.Fatal("a value sealed with the new key opened with only the old key")
	}
	if err := mustCodec(t, newKeyS).open(purposeSession, v2, &got); err != nil || got.Access != "at2" {
		t.Fatalf("new key must open its own value: %v", err)
	}
}

func TestCodecRefusesTamperingPurposeAndExpiry(t *testing.T) {
	c := mustCodec(t, newKey(t))
	v, _ := c.seal(purposeSession, testSession("at"), time.Hour)
	var s session
	// Flip one character of the ciphertext part.
	parts := strings.Split(v, ".")
	ct := []byte(parts[3])
	if ct[0] == 'A' {
		ct[0] = 'B'
	} else {
		ct[0] = 'A'
	}
	parts[3] = string(ct)
	for name, bad := range map[string]string{
		"tampered": strings.Join(parts, "."),
		"garbage":  "not-a-jwe",
		"empty":    "",
		"foreign": func() string {
			v, _ := mustCodec(t, newKey(t)).seal(purposeSession, testSession("x"), time.Hour)
			return v
		}(),
	} {
		if err := c.open(purposeSession, bad, &s); err == nil {
			t.Errorf("%s value opened", name)
		}
	}
	if err := c.open(purposeLogin, v, &s); err == nil {
		t.Error("a session value opened as login state")
	}
	expired, _ := c.seal(purposeSession, testSession("at"), -time.Second)
	if err := c.open(purposeSession, expired, &s); err == nil {
		t.Error("an expired value opened")
	}
}

func TestParseKeys(t *testing.T) {
	if _, err := parseKeys(nil); err == nil {
		t.Error("no keys accepted")
	}
	if _, err := parseKeys([]string{"c2hvcnQ="}); err == nil {
		t.Error("short key accepted")
	}
	if _, err := parseKeys([]string{"!!!"}); err == nil {
		t.Error("non-base64 key accepted")
	}
}

func TestChunkingSplitsReassemblesAndDeletesStaleChunks(t *testing.T) {
	jar := cookieJar{}
	big := strings.Repeat("x", 3*chunkSize+10)
	rec := httptest.NewRecorder()
	jar.writeChunks(rec, httptest.NewRequest("GET", "/", nil), big, 60)
	cookies := rec.Result().Cookies()
	if len(cookies) != 4 {
		t.Fatalf("want 4 chunks, got %d", len(cookies))
	}
	for _, c := range cookies {
		if len(c.String()) > 4096 {
			t.Errorf("cookie %s is %d bytes, over the browser limit", c.Name, len(c.String()))
		}
		if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
			t.Errorf("cookie %s lacks HttpOnly or SameSite=Lax", c.Name)
		}
	}
	req := httptest.NewRequest("GET", "/", nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	if got := jar.readChunks(req); got != big {
		t.Fatalf("reassembled %d bytes, want %d", len(got), len(big))
	}
	// Shrinking to one chunk deletes chunks 1..3.
	rec = httptest.NewRecorder()
	jar.writeChunks(rec, req, "small", 60)
	var set, deleted int
	for _, c := range rec.Result().Cookies() {
		if c.MaxAge < 0 {
			deleted++
		} else {
			set++
		}
	}
	if set != 1 || deleted != 3 {
		t.Fatalf("shrinking: set %d deleted %d, want 1 and 3", set, deleted)
	}
}

// TestBigSessionStaysInTheStore: however large the tokens (the provide
// strategy's claims grow with a user's locations), the cookie only names the
// session, so it fits one chunk, and the tokens read back from the store.
func TestBigSessionStaysInTheStore(t *testing.T) {
	b := startBFF(t, "", "", backendURLs{}, []string{newKey(t)}, nil)
	sess := testSession("")
	roles := make([]string, 400)
	for i := range roles {
		roles[i] = "LOCATION_ROLE_" + strings.Repeat("Z", 10)
	}
	sess.Access = fakeJWT(map[string]any{"sub": "user-1", "roles": roles, "exp": time.Now().Add(time.Hour).Unix()})
	sess.Roles = roles
	cookies := b.mintSession(t, sess)
	if len(cookies) != 1 || len(cookies[0].Value) > 1000 {
		t.Fatalf("a %d-byte token made %d cookies (first %d bytes), want one small cookie", len(sess.Access), len(cookies), len(cookies[0].Value))
	}
	if strings.Contains(cookies[0].Value, sess.Access[:40]) {
		t.Fatal("the cookie carries the access token")
	}
	req := httptest.NewRequest("GET", "/", nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	got, err := b.svc.readSession(req)
	if err != nil || got.Access != sess.Access || len(got.Roles) != 400 {
		t.Fatalf("big session did not read back: %v", err)
	}
}

func TestSafeReturnTo(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "/",
		"/admin/platform":       "/admin/platform",
		"/token?x=1":            "/token?x=1",
		"//evil.example":        "/",
		"/\\evil.example":       "/",
		"https://evil.example/": "/",
		"javascript:alert(1)":   "/",
		"evil.example":          "/",
		"/ok\r\nSet-Cookie: x":  "/",
	} {
		if got := safeReturnTo(in); got != want {
			t.Errorf("safeReturnTo(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSecureCookieRule(t *testing.T) {
	for u, local := range map[string]bool{
		"http://localhost:3000": true, "http://127.0.0.1:3000": true, "http://[::1]:3000": true,
		"https://localhost": false, "http://bff.example": false, "https://bff.example": false,
	} {
		b := startBFF(t, "", "", backendURLs{}, []string{newKey(t)}, func(c *Config, _ *Deps) { c.PublicURL = u })
		if b.svc.jar.secure == local {
			t.Errorf("%s: Secure=%v", u, b.svc.jar.secure)
		}
	}
}

// fakeDiscovery serves just the discovery document the BFF needs to start
// a login.
func fakeDiscovery(t *testing.T) string {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"issuer":"` + srv.URL + `","authorization_endpoint":"` + srv.URL + `/authorize",` +
			`"token_endpoint":"` + srv.URL + `/oauth/token","jwks_uri":"` + srv.URL + `/jwks"}`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// serve runs one request through the BFF's handler with cookies, recorded
// (the handler does not care that the test speaks plain HTTP to it).
func (b *testBFF) serve(method, target string, cookies []*http.Cookie) *http.Response {
	req := httptest.NewRequest(method, target, nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	b.srv.Config.Handler.ServeHTTP(rec, req)
	return rec.Result()
}

// renamed returns cookies with name rewritten by f.
func renamed(cookies []*http.Cookie, f func(string) string) []*http.Cookie {
	out := make([]*http.Cookie, 0, len(cookies))
	for _, c := range cookies {
		cc := *c
		cc.Name = f(c.Name)
		out = append(out, &cc)
	}
	return out
}

// TestHostPrefixedCookiesWhenSecure: behind an https public URL every
// cookie of the BFF carries the __Host- prefix with the attributes the
// prefix requires (Secure, Path=/, no Domain), so a sibling subdomain
// cannot plant a session or a login state: cookies under the old,
// unprefixed names (all a sibling could set) are not read. Without the
// prefix, a valid session cookie set for the parent domain by
// evil.example.com would log the victim into the attacker's account.
func TestHostPrefixedCookiesWhenSecure(t *testing.T) {
	issuer := fakeDiscovery(t)
	b := startBFF(t, issuer, "", backendURLs{}, []string{newKey(t)}, func(c *Config, _ *Deps) { c.PublicURL = "https://bff.example" })
	if !b.svc.jar.secure {
		t.Fatal("https public URL without Secure cookies")
	}
	check := func(what string, c *http.Cookie, prefix string) {
		t.Helper()
		if !strings.HasPrefix(c.Name, hostPrefix+prefix) || !c.Secure || c.Path != "/" || c.Domain != "" || !c.HttpOnly {
			t.Errorf("%s cookie %s: Secure=%v Path=%q Domain=%q HttpOnly=%v, want %s%s*, Secure, Path=/, no Domain, HttpOnly",
				what, c.Name, c.Secure, c.Path, c.Domain, c.HttpOnly, hostPrefix, prefix)
		}
	}

	// The session.
	sess := b.mintSession(t, testSession(fakeJWT(map[string]any{"sub": "user-1"})))
	if len(sess) == 0 {
		t.Fatal("no session cookie")
	}
	for _, c := range sess {
		check("session", c, sessionCookie+".")
	}
	req := httptest.NewRequest("GET", "/", nil)
	for _, c := range sess {
		req.AddCookie(c)
	}
	if _, err := b.svc.readSession(req); err != nil {
		t.Fatalf("prefixed session not read back: %v", err)
	}
	planted := renamed(sess, func(n string) string { return strings.TrimPrefix(n, hostPrefix) })
	req = httptest.NewRequest("GET", "/", nil)
	for _, c := range planted {
		req.AddCookie(c)
	}
	if _, err := b.svc.readSession(req); err == nil {
		t.Fatal("an unprefixed (plantable) session cookie was accepted")
	}
	if resp := b.serve("GET", "/api/securitysystems", planted); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/api with an unprefixed session: %d, want 401", resp.StatusCode)
	}
	// Writing the session deletes unprefixed chunks the browser still
	// carries from before, so they stop riding along.
	rec := httptest.NewRecorder()
	b.svc.jar.writeChunks(rec, req, "value", 60)
	var deleted []string
	for _, c := range rec.Result().Cookies() {
		if c.MaxAge < 0 {
			deleted = append(deleted, c.Name)
		}
	}
	if len(deleted) != len(planted) || !strings.HasPrefix(deleted[0], sessionCookie+".") {
		t.Errorf("deleted %v, want the %d unprefixed chunks", deleted, len(planted))
	}

	// The login state.
	resp := b.serve("GET", "/login", nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("/login: %d", resp.StatusCode)
	}
	var login *http.Cookie
	for _, c := range resp.Cookies() {
		if strings.Contains(c.Name, loginCookiePrefix) {
			login = c
		}
	}
	if login == nil {
		t.Fatal("/login set no login state cookie")
	}
	check("login state", login, loginCookiePrefix)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	state := loc.Query().Get("state")
	// The state cookie under its own name is the login started here: the
	// callback gets past the state check to the IAM's refusal (403).
	if resp := b.serve("GET", "/auth/callback?error=access_denied&state="+url.QueryEscape(state), []*http.Cookie{login}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("callback with the prefixed login state: %d, want 403 (past the state check)", resp.StatusCode)
	}
	// The same value under the unprefixed name, as a sibling could set
	// it, is no login state (400 "not started here").
	plantedLogin := renamed([]*http.Cookie{login}, func(n string) string { return strings.TrimPrefix(n, hostPrefix) })
	if resp := b.serve("GET", "/auth/callback?error=access_denied&state="+url.QueryEscape(state), plantedLogin); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("callback with an unprefixed login state: %d, want 400", resp.StatusCode)
	}
}

// TestUnprefixedCookiesOnLocalHTTP: browsers refuse __Host- cookies
// without Secure, and Secure cookies over plain HTTP, so on a localhost
// http public URL the names stay rg_session.N and rg_login.*, not Secure.
func TestUnprefixedCookiesOnLocalHTTP(t *testing.T) {
	issuer := fakeDiscovery(t)
	b := startBFF(t, issuer, "", backendURLs{}, []string{newKey(t)}, func(c *Config, _ *Deps) { c.PublicURL = "http://localhost:3000" })
	cookies := b.mintSession(t, testSession(fakeJWT(map[string]any{"sub": "user-1"})))
	resp := b.serve("GET", "/login", nil)
	cookies = append(cookies, resp.Cookies()...)
	if len(cookies) < 2 {
		t.Fatalf("want a session and a login cookie, got %d", len(cookies))
	}
	for _, c := range cookies {
		if strings.HasPrefix(c.Name, hostPrefix) || c.Secure || c.Path != "/" || c.Domain != "" ||
			!(strings.HasPrefix(c.Name, sessionCookie+".") || strings.HasPrefix(c.Name, loginCookiePrefix)) {
			t.Errorf("cookie %s Secure=%v Path=%q Domain=%q, want an unprefixed, non-Secure, host-only cookie", c.Name, c.Secure, c.Path, c.Domain)
		}
	}
}
