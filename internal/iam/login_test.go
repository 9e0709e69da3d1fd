package iam

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func TestLoginThrottle(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.createUser(t, "gina", "gina-password")
	cfg := e.bffConfig()
	c := browser(t)
	attempt := func(username, password string) (*http.Response, string) {
		f, _, _ := startLogin(t, c, cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		return submitLogin(t, c, f, username, password)
	}
	for i := 0; i < 5; i++ {
		resp, body := attempt("gina", "wrong-password")
		m := errorRe.FindStringSubmatch(body)
		if resp.StatusCode != http.StatusUnauthorized || m == nil || m[1] != invalidCredentials {
			t.Fatalf("attempt %d: %d %v", i, resp.StatusCode, m)
		}
	}
	// Unknown users get exactly the same answer.
	if resp, body := attempt("nobody-here", "whatever-pw"); resp.StatusCode != http.StatusUnauthorized || errorRe.FindStringSubmatch(body)[1] != invalidCredentials {
		t.Fatalf("unknown user: %d", resp.StatusCode)
	}
	e.mu.Lock()
	sleeps := append([]time.Duration(nil), e.sleeps...)
	e.mu.Unlock()
	if len(sleeps) < 4 || !(sleeps[0] < sleeps[1] && sleeps[1] < sleeps[2] && sleeps[2] < sleeps[3]) {
		t.Fatalf("delays are not progressive: %v", sleeps)
	}
	// Locked: even the right password is refused, with a clear message.
	resp, body := attempt("GINA", "gina-password")
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed attempts; try again in 15 minutes") {
		t.Fatalf("locked: %d %s", resp.StatusCode, errorRe.FindStringSubmatch(body))
	}
	e.clock.advance(16 * time.Minute)
	resp, body = attempt("gina", "gina-password")
	if resp.StatusCode != http.StatusOK || body != "callback received" {
		t.Fatalf("after lockout: %d %s", resp.StatusCode, body)
	}
	<-e.codes

	// Per address: 20 failures over many usernames lock the address.
	for i := 0; i < 20; i++ {
		attempt("spray-"+strings.Repeat("x", i+1), "wrong-password")
	}
	resp, body = attempt("gina", "gina-password")
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed attempts") {
		t.Fatalf("address lock: %d", resp.StatusCode)
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
		if resp, _ := submitLogin(t, c, bad, "hank", "hank-password"); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d", resp.StatusCode)
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
// once. At most the limit of them may reach the password check, however
// they interleave: the checks are held until every request has either
// reached one or been refused, so an attempt counted only after its check
// would let all of them through.
func TestLoginThrottleParallel(t *testing.T) {
	const n, limit = 15, 5
	var (
		mu      sync.Mutex
		checked int
		arrived = make(chan struct{}, n)
		release = make(chan struct{})
	)
	e := newEnv(t, envOpts{login: func(l *loginUI) {
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
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.PostForm(f.action, form)
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
	// The failures were recorded: the username is locked now.
	f2, _, _ := startLogin(t, c, cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if resp, _ := submitLogin(t, c, f2, "ivan", "ivan-password"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("after %d failures: %d", got, resp.StatusCode)
	}
}

// TestThrottleReservations checks the reservation accounting: attempts in
// flight count against the per-address limit too, a success releases its
// slot, and a failure turns it into a recorded failure.
func TestThrottleReservations(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	th := newThrottle(func() time.Time { return now }, 5, 20, 15*time.Minute, 15*time.Minute)
	var held []*reservation
	for i := range 20 {
		r, _, _ := th.begin(fmt.Sprintf("user-%d", i), "10.0.0.1")
		if r == nil {
			t.Fatalf("attempt %d refused", i)
		}
		held = append(held, r)
	}
	if r, _, wait := th.begin("user-x", "10.0.0.1"); r != nil || wait <= 0 {
		t.Fatalf("21st parallel attempt from one address admitted (%v)", wait)
	}
	if r, _, _ := th.begin("user-x", "10.0.0.2"); r == nil {
		t.Fatal("another address refused")
	} else {
		r.succeeded()
	}
	held[0].succeeded()
	held[0].failed() // a finished reservation stays finished
	r, _, _ := th.begin("user-y", "10.0.0.1")
	if r == nil {
		t.Fatal("slot of a succeeded attempt not released")
	}
	held[0] = r
	for _, h := range held {
		h.failed()
	}
	if r, _, locked := th.begin("user-z", "10.0.0.1"); r != nil || locked != 15*time.Minute {
		t.Fatalf("address not locked after 20 failures: %v", locked)
	}
	now = now.Add(16 * time.Minute)
	r, delay, _ := th.begin("user-z", "10.0.0.1")
	if r == nil || delay != 0 {
		t.Fatalf("after the lockout: %v %v", r, delay)
	}
	r.abandon()
	th.mu.Lock()
	defer th.mu.Unlock()
	for _, m := range []map[string]*attempts{th.users, th.ips} {
		for k, e := range m {
			if e.inFlight != 0 {
				t.Fatalf("%s still has %d attempts in flight", k, e.inFlight)
			}
		}
	}
}
