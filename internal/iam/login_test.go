package iam

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// throttleEnv is an IAM behind a trusted proxy on the loopback network,
// so that tests choose each request's client address with
// X-Forwarded-For.
func throttleEnv(t *testing.T, o envOpts) *env {
	cfg := o.cfg
	o.cfg = func(c *Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
		if cfg != nil {
			cfg(c)
		}
	}
	return newEnv(t, o)
}

// forwardedFor adds the X-Forwarded-For of a trusted proxy that saw the
// client at addr.
type forwardedFor struct {
	addr string
	next http.RoundTripper
}

func (f forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.addr)
	return f.next.RoundTrip(r)
}

// browserAt is a browser whose requests reach the IAM from addr.
func browserAt(t testing.TB, addr string) *http.Client {
	c := browser(t)
	c.Transport = forwardedFor{addr: addr, next: http.DefaultTransport}
	return c
}

// tryLogin starts an authorization request in c and submits the login
// form; it returns the status and, for a success, consumes the code.
// prompt=login makes the IAM show the form even to a browser with an IAM
// session, so every attempt proves a password.
func tryLogin(t *testing.T, e *env, c *http.Client, username, password string) (int, string) {
	t.Helper()
	cfg := e.bffConfig()
	f, _, _ := startLogin(t, c, cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", "login")))
	resp, body := submitLogin(t, c, f, username, password)
	if resp.StatusCode == http.StatusOK && body == "callback received" {
		<-e.codes
	}
	return resp.StatusCode, body
}

func TestLoginThrottle(t *testing.T) {
	e := throttleEnv(t, envOpts{cfg: func(c *Config) { c.LoginMaxFailuresPerIP = 10 }})
	e.createUser(t, "gina", "gina-password")
	c := browserAt(t, "192.0.2.10")
	for i := 0; i < 5; i++ {
		st, body := tryLogin(t, e, c, "gina", "wrong-password")
		m := errorRe.FindStringSubmatch(body)
		if st != http.StatusUnauthorized || m == nil || m[1] != invalidCredentials {
			t.Fatalf("attempt %d: %d %v", i, st, m)
		}
	}
	// Unknown users get exactly the same answer.
	if st, body := tryLogin(t, e, c, "nobody-here", "whatever-pw"); st != http.StatusUnauthorized || errorRe.FindStringSubmatch(body)[1] != invalidCredentials {
		t.Fatalf("unknown user: %d", st)
	}
	e.mu.Lock()
	sleeps := append([]time.Duration(nil), e.sleeps...)
	e.mu.Unlock()
	if len(sleeps) < 4 || !(sleeps[0] < sleeps[1] && sleeps[1] < sleeps[2] && sleeps[2] < sleeps[3]) {
		t.Fatalf("delays are not progressive: %v", sleeps)
	}
	// Locked for this address: even the right password is refused, with
	// a clear message.
	st, body := tryLogin(t, e, c, "GINA", "gina-password")
	if st != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed attempts; try again in 15 minutes") {
		t.Fatalf("locked: %d %s", st, errorRe.FindStringSubmatch(body))
	}
	// The stranger's failures do not lock gina out from anywhere else:
	// the sequence (five wrong passwords from one address, the
	// real one from another) logs in.
	if st, _ := tryLogin(t, e, browserAt(t, "198.51.100.20"), "gina", "gina-password"); st != http.StatusOK {
		t.Fatalf("right password from another address after a stranger's failures: %d", st)
	}
	e.clock.advance(16 * time.Minute)
	if st, body := tryLogin(t, e, c, "gina", "gina-password"); st != http.StatusOK {
		t.Fatalf("after lockout: %d %s", st, body)
	}

	// Per address over all accounts: 10 failures (this test's limit)
	// over many usernames lock the address for strangers.
	sprayer := browserAt(t, "192.0.2.99")
	for i := 0; i < 10; i++ {
		tryLogin(t, e, sprayer, "spray-"+strings.Repeat("x", i+1), "wrong-password")
	}
	if st, body := tryLogin(t, e, sprayer, "gina", "gina-password"); st != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed attempts") {
		t.Fatalf("address lock: %d", st)
	}
	// A browser behind the same address that logged in to gina before
	// keeps logging in: its device cookie gives it its own budget.
	known := browserAt(t, "192.0.2.99")
	known.Jar = c.Jar
	if st, _ := tryLogin(t, e, known, "gina", "gina-password"); st != http.StatusOK {
		t.Fatalf("known browser behind a locked address: %d", st)
	}
}

// TestLoginStrangerCannotLockOut is the audit's lockout sequence against
// admin, made as strong as the throttle allows a stranger: failures from
// the stranger's address, from the admin's own address (a shared NAT) and
// from many addresses together. The admin's browser, which logged in
// before, still logs in; strangers stay bounded; the device cookie's own
// budget still protects the account from whoever steals the browser.
func TestLoginStrangerCannotLockOut(t *testing.T) {
	// The account bound is 12 here (20 by default) to keep the test short.
	e := throttleEnv(t, envOpts{cfg: func(c *Config) { c.LoginMaxFailuresPerAccount = 12 }})
	const home = "198.51.100.7"
	admin := browserAt(t, home)
	if st, body := tryLogin(t, e, admin, AdminUsername, testAdminPW); st != http.StatusOK {
		t.Fatalf("first login: %d %s", st, body)
	}
	var deviceCookie *http.Cookie
	u, _ := url.Parse(e.issuer + loginPath)
	for _, ck := range admin.Jar.Cookies(u) {
		if strings.HasPrefix(ck.Name, deviceCookiePrefix) {
			deviceCookie = ck
		}
	}
	if deviceCookie == nil {
		t.Fatal("no device cookie after a successful login")
	}

	for i := 0; i < 5; i++ {
		tryLogin(t, e, browserAt(t, "203.0.113.1"), AdminUsername, "guess-"+strconv.Itoa(i))
		tryLogin(t, e, browserAt(t, home), AdminUsername, "nat-guess-"+strconv.Itoa(i))
	}
	for i := 0; i < 4; i++ {
		tryLogin(t, e, browserAt(t, fmt.Sprintf("203.0.113.%d", 10+i)), AdminUsername, "spread-guess")
	}
	// Strangers are now refused everywhere, even with the right password.
	for _, addr := range []string{"203.0.113.1", home, "203.0.113.200"} {
		if st, _ := tryLogin(t, e, browserAt(t, addr), AdminUsername, testAdminPW); st != http.StatusTooManyRequests {
			t.Fatalf("stranger at %s with the right password after the attack: %d, want 429", addr, st)
		}
	}
	// The known browser logs in, at once (no delay) and repeatedly.
	e.mu.Lock()
	before := len(e.sleeps)
	e.mu.Unlock()
	for i := 0; i < 3; i++ {
		if st, body := tryLogin(t, e, admin, AdminUsername, testAdminPW); st != http.StatusOK {
			t.Fatalf("known browser after the attack (%d): %d %s", i, st, errorRe.FindStringSubmatch(body))
		}
	}
	e.mu.Lock()
	slowed := len(e.sleeps) - before
	e.mu.Unlock()
	if slowed != 0 {
		t.Fatalf("the known browser was slowed down %d times", slowed)
	}
	// From another address too: the cookie, not the address, is trusted.
	moved := browserAt(t, "203.0.113.250")
	moved.Jar = admin.Jar
	if st, _ := tryLogin(t, e, moved, AdminUsername, testAdminPW); st != http.StatusOK {
		t.Fatalf("known browser from another address: %d", st)
	}
	// A tampered cookie is a stranger's.
	forged := browserAt(t, "203.0.113.251")
	forged.Jar.SetCookies(u, []*http.Cookie{{Name: deviceCookie.Name, Value: deviceCookie.Value + "x", Path: loginPath}})
	if st, _ := tryLogin(t, e, forged, AdminUsername, testAdminPW); st != http.StatusTooManyRequests {
		t.Fatalf("tampered device cookie: %d, want 429", st)
	}
	// The device cookie has a budget of its own: whoever holds the
	// browser gets five guesses, then the cookie is locked.
	for i := 0; i < 5; i++ {
		if st, _ := tryLogin(t, e, admin, AdminUsername, "thief-"+strconv.Itoa(i)); st != http.StatusUnauthorized {
			t.Fatalf("guess %d with the device cookie: %d", i, st)
		}
	}
	if st, _ := tryLogin(t, e, admin, AdminUsername, testAdminPW); st != http.StatusTooManyRequests {
		t.Fatalf("device cookie after its own five failures: %d, want 429", st)
	}
	// An expired device cookie is a stranger's too.
	e.clock.advance(16 * time.Minute)
	if st, _ := tryLogin(t, e, admin, AdminUsername, testAdminPW); st != http.StatusOK {
		t.Fatalf("device cookie after its lockout: %d", st)
	}
	e.clock.advance(31 * 24 * time.Hour)
	for i := 0; i < 12; i++ {
		tryLogin(t, e, browserAt(t, fmt.Sprintf("203.0.113.%d", 100+i)), AdminUsername, "late-guess")
	}
	if st, _ := tryLogin(t, e, admin, AdminUsername, testAdminPW); st != http.StatusTooManyRequests {
		t.Fatalf("expired device cookie during an attack: %d, want 429", st)
	}
}

// TestLoginDistributedGuessing guesses one account from 30 addresses, one
// guess each: at most LoginMaxFailuresPerAccount (10 here) reach the
// password check in a window.
func TestLoginDistributedGuessing(t *testing.T) {
	var checked atomic.Int32
	e := throttleEnv(t, envOpts{cfg: func(c *Config) { c.LoginMaxFailuresPerAccount = 10 }, login: func(l *loginUI) {
		check := l.authenticate
		l.authenticate = func(ctx context.Context, username, password string) (*user, bool) {
			checked.Add(1)
			return check(ctx, username, password)
		}
	}})
	e.createUser(t, "jane", "jane-password")
	for i := 0; i < 30; i++ {
		tryLogin(t, e, browserAt(t, fmt.Sprintf("2001:db8:%x::1", i)), "jane", "guess")
	}
	if got := checked.Load(); got != 10 {
		t.Fatalf("%d distributed guesses reached the password check, want 10", got)
	}
}

func TestLoginCSRF(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.createUser(t, "hank", "hank-password")
	cfg := e.bffConfig()
	c := browser(t)
	f, _, _ := startLogin(t, c, cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))

	t.Run("wrong token", func(t *testing.T) {
		bad := loginForm{action: f.action, fields: url.Values{"authRequestID": {f.fields.Get("authRequestID")}, "csrf": {"forged"}}}
		resp, body := submitLogin(t, c, bad, "hank", "hank-password")
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if !strings.Contains(body, "Your password was not checked") {
			t.Fatalf("the refusal does not say what happened: %s", body)
		}
	})
	t.Run("no cookie (cross-site post)", func(t *testing.T) {
		if resp, _ := submitLogin(t, browser(t), f, "hank", "hank-password"); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("token of another request", func(t *testing.T) {
		other, _, _ := startLogin(t, c, cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		mixed := loginForm{action: f.action, fields: url.Values{"authRequestID": {f.fields.Get("authRequestID")}, "csrf": {other.fields.Get("csrf")}}}
		if resp, _ := submitLogin(t, c, mixed, "hank", "hank-password"); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("cookie is SameSite", func(t *testing.T) {
		resp, err := http.Get(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var found bool
		for _, ck := range resp.Cookies() {
			if ck.Name == csrfCookie {
				found = ck.SameSite == http.SameSiteStrictMode && ck.HttpOnly
			}
		}
		if !found {
			t.Fatalf("csrf cookie missing or not SameSite=Strict HttpOnly: %v", resp.Header["Set-Cookie"])
		}
	})
}

// TestLoginThrottleParallel sends many wrong passwords for one username at
// once, from one address and from as many addresses as requests. At most
// the limit of them may reach the password check, however they
// interleave: the checks are held until every request has either reached
// one or been refused, so an attempt counted only after its check would
// let all of them through.
func TestLoginThrottleParallel(t *testing.T) {
	t.Run("one address", func(t *testing.T) { parallelGuesses(t, 15, 5, func(int) string { return "192.0.2.1" }) })
	t.Run("distributed", func(t *testing.T) {
		parallelGuesses(t, 24, 8, func(i int) string { return fmt.Sprintf("198.51.100.%d", i+1) })
	})
}

// parallelGuesses sends n guesses at once from addr(i); limit is the bound
// that must hold (the per-pair limit for one address, the per-account
// limit, set to limit here, for distinct addresses).
func parallelGuesses(t *testing.T, n, limit int, addr func(int) string) {
	var (
		mu      sync.Mutex
		checked int
		arrived = make(chan struct{}, n)
		release = make(chan struct{})
	)
	e := throttleEnv(t, envOpts{cfg: func(c *Config) { c.LoginMaxFailuresPerAccount = max(limit, c.LoginMaxFailuresPerUser+1) }, login: func(l *loginUI) {
		check := l.authenticate
		l.authenticate = func(ctx context.Context, username, password string) (*user, bool) {
			mu.Lock()
			checked++
			mu.Unlock()
			arrived <- struct{}{}
			<-release
			return check(ctx, username, password)
		}
	}})
	e.createUser(t, "ivan", "ivan-password")
	cfg := e.bffConfig()
	c := browser(t)
	f, _, _ := startLogin(t, c, cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	form := url.Values{}
	for k := range f.fields {
		form.Set(k, f.fields.Get(k))
	}
	form.Set("username", "ivan")
	form.Set("password", "wrong-password")

	statuses := make(chan int, n)
	refused := make(chan struct{}, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		req, _ := http.NewRequest(http.MethodPost, f.action, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", addr(i))
		go func() {
			defer wg.Done()
			resp, err := c.Do(req)
			if err != nil {
				statuses <- 0
				refused <- struct{}{}
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses <- resp.StatusCode
			if resp.StatusCode != http.StatusUnauthorized {
				refused <- struct{}{}
			}
		}()
	}
	// Every request either reaches the (held) password check or is
	// answered without one; wait for all of them before letting the
	// checks finish.
	deadline := time.After(30 * time.Second)
	for done := 0; done < n; done++ {
		select {
		case <-arrived:
		case <-refused:
		case <-deadline:
			close(release)
			t.Fatalf("only %d of %d requests reached the check or were refused", done, n)
		}
	}
	close(release)
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for st := range statuses {
		count[st]++
	}
	mu.Lock()
	got := checked
	mu.Unlock()
	if got > limit {
		t.Fatalf("%d parallel attempts reached the password check, limit %d (answers %v)", got, limit, count)
	}
	if count[http.StatusUnauthorized] != got || count[http.StatusTooManyRequests] != n-got {
		t.Fatalf("answers %v for %d password checks", count, got)
	}
	// The failures were recorded: the username is locked now for the
	// first address.
	if st, _ := tryLogin(t, e, browserAt(t, addr(0)), "ivan", "ivan-password"); st != http.StatusTooManyRequests {
		t.Fatalf("after %d failures: %d", got, st)
	}
}

// TestThrottleReservations checks the reservation accounting: attempts in
// flight count against the per-address limit too, a success releases its
// slot, and a failure turns it into a recorded failure.
func TestThrottleReservations(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	th := newThrottle(func() time.Time { return now }, throttleLimits{client: 5, account: 20, address: 20, window: 15 * time.Minute, lockout: 15 * time.Minute})
	a1 := netip.MustParseAddr("10.0.0.1")
	a2 := netip.MustParseAddr("10.0.0.2")
	var held []*reservation
	for i := range 20 {
		r, _, _ := th.begin(attempt{account: fmt.Sprintf("user-%d", i), address: a1})
		if r == nil {
			t.Fatalf("attempt %d refused", i)
		}
		held = append(held, r)
	}
	if r, _, wait := th.begin(attempt{account: "user-x", address: a1}); r != nil || wait <= 0 {
		t.Fatalf("21st parallel attempt from one address admitted (%v)", wait)
	}
	if r, _, _ := th.begin(attempt{account: "user-x", address: a2}); r == nil {
		t.Fatal("another address refused")
	} else {
		r.succeeded()
	}
	// A device cookie's attempts do not count against the address.
	if r, _, _ := th.begin(attempt{account: "user-x", address: a1, device: "nonce"}); r == nil {
		t.Fatal("device cookie refused for its address's attempts in flight")
	} else {
		r.succeeded()
	}
	held[0].succeeded()
	held[0].failed() // a finished reservation stays finished
	r, _, _ := th.begin(attempt{account: "user-y", address: a1})
	if r == nil {
		t.Fatal("slot of a succeeded attempt not released")
	}
	held[0] = r
	for _, h := range held {
		h.failed()
	}
	if r, _, locked := th.begin(attempt{account: "user-z", address: a1}); r != nil || locked != 15*time.Minute {
		t.Fatalf("address not locked after 20 failures: %v", locked)
	}
	now = now.Add(16 * time.Minute)
	r, delay, _ := th.begin(attempt{account: "user-z", address: a1})
	if r == nil || delay != 0 {
		t.Fatalf("after the lockout: %v %v", r, delay)
	}
	r.abandon()
	th.mu.Lock()
	defer th.mu.Unlock()
	for k, e := range th.buckets {
		if e.inFlight != 0 {
			t.Fatalf("%q still has %d attempts in flight", k, e.inFlight)
		}
	}
}

// TestClientAddr checks where the client address comes from: the peer,
// unless it is a trusted proxy, then the rightmost X-Forwarded-For entry
// that is not a trusted proxy.
func TestClientAddr(t *testing.T) {
	s := &Service{cfg: Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}}}
	for _, c := range []struct {
		peer string
		xff  []string
		want string
	}{
		{"192.0.2.1:5000", nil, "192.0.2.1"},
		{"192.0.2.1:5000", []string{"203.0.113.9"}, "192.0.2.1"}, // untrusted peer: header ignored
		{"10.1.1.1:5000", []string{"203.0.113.9"}, "203.0.113.9"},
		{"10.1.1.1:5000", []string{"6.6.6.6, 203.0.113.9"}, "203.0.113.9"},             // spoofed left entry ignored
		{"10.1.1.1:5000", []string{"6.6.6.6", "203.0.113.9, 10.2.2.2"}, "203.0.113.9"}, // proxy chain, two headers
		{"10.1.1.1:5000", []string{"10.2.2.2"}, "10.2.2.2"},                            // all trusted: the leftmost
		{"10.1.1.1:5000", []string{"203.0.113.9, garbage"}, "10.1.1.1"},                // junk from the proxy: the proxy
		{"10.1.1.1:5000", nil, "10.1.1.1"},
		{"[fd00::1]:5000", []string{"[2001:db8::5]:443"}, "2001:db8::5"},
		{"[::ffff:10.1.1.1]:5000", []string{"203.0.113.9"}, "203.0.113.9"},
	} {
		r := httptest.NewRequest(http.MethodPost, "/login", nil)
		r.RemoteAddr = c.peer
		for _, v := range c.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := s.clientAddr(r); got.String() != c.want {
			t.Errorf("peer %s XFF %q: %s, want %s", c.peer, c.xff, got, c.want)
		}
	}
	if a, b := addressKey(netip.MustParseAddr("2001:db8:1:2::1")), addressKey(netip.MustParseAddr("2001:db8:1:2:ffff::9")); a != b {
		t.Errorf("one IPv6 /64 counts as %s and %s", a, b)
	}
}
