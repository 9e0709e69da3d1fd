package bff

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

// TestSessionStore checks the store's statements on both engines: the
// lease is a compare-and-swap on the generation, a commit needs the lease,
// and deleted, expired or pruned sessions are gone.
func TestSessionStore(t *testing.T) {
	sqldbtest.ForEachStore(t, []sqldb.Migrations{Migrations()}, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		st := sessionStore{db: db}
		now := time.Now().Truncate(time.Microsecond)
		row := &sessionRow{IDHash: hashID("s1"), Subject: "user-1", Generation: 1, Data: "sealed", AccessExpiry: now.Add(5 * time.Minute), ExpiresAt: now.Add(time.Hour)}
		if err := st.insert(ctx, row, now); err != nil {
			t.Fatal(err)
		}
		if err := st.insert(ctx, row, now); err == nil {
			t.Fatal("a second session with the same id was stored")
		}
		got, err := st.get(ctx, row.IDHash, now)
		if err != nil || got.Generation != 1 || got.Data != "sealed" || got.Subject != "user-1" || !got.ExpiresAt.Equal(now.Add(time.Hour)) {
			t.Fatalf("get: %+v %v", got, err)
		}
		if _, err := st.get(ctx, hashID("nope"), now); err != errSessionGone {
			t.Fatalf("unknown session: %v", err)
		}
		if _, err := st.get(ctx, row.IDHash, now.Add(time.Hour)); err != errSessionGone {
			t.Fatalf("expired session: %v", err)
		}

		// One lease at a time, on the current generation only.
		if ok, err := st.tryLease(ctx, row.IDHash, 1, "a", now, now.Add(10*time.Second)); !ok || err != nil {
			t.Fatalf("first lease: %v %v", ok, err)
		}
		if ok, _ := st.tryLease(ctx, row.IDHash, 1, "b", now.Add(time.Second), now.Add(11*time.Second)); ok {
			t.Fatal("a second lease while the first is live")
		}
		if ok, _ := st.commitRefresh(ctx, row.IDHash, 1, "b", "stolen", now, now); ok {
			t.Fatal("a commit without the lease")
		}
		// An expired lease may be taken over; the old holder can no
		// longer commit.
		if ok, _ := st.tryLease(ctx, row.IDHash, 1, "b", now.Add(11*time.Second), now.Add(21*time.Second)); !ok {
			t.Fatal("an expired lease was not taken over")
		}
		if ok, _ := st.commitRefresh(ctx, row.IDHash, 1, "a", "late", now, now); ok {
			t.Fatal("the old holder committed after losing the lease")
		}
		if ok, err := st.commitRefresh(ctx, row.IDHash, 1, "b", "gen2", now.Add(5*time.Minute), now); !ok || err != nil {
			t.Fatalf("commit: %v %v", ok, err)
		}
		got, _ = st.get(ctx, row.IDHash, now)
		if got.Generation != 2 || got.Data != "gen2" || got.LeaseOwner != "" {
			t.Fatalf("after commit: %+v", got)
		}
		if ok, _ := st.tryLease(ctx, row.IDHash, 1, "c", now, now.Add(time.Second)); ok {
			t.Fatal("a lease on an old generation")
		}
		// A released lease is free at once.
		if ok, _ := st.tryLease(ctx, row.IDHash, 2, "c", now, now.Add(time.Minute)); !ok {
			t.Fatal("lease on generation 2")
		}
		if err := st.releaseLease(ctx, row.IDHash, "c"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := st.tryLease(ctx, row.IDHash, 2, "d", now, now.Add(time.Minute)); !ok {
			t.Fatal("a released lease is still held")
		}

		if err := st.delete(ctx, row.IDHash); err != nil {
			t.Fatal(err)
		}
		if _, err := st.get(ctx, row.IDHash, now); err != errSessionGone {
			t.Fatalf("deleted session: %v", err)
		}

		// Back-channel logout ends every session of the user; pruning
		// ends the expired ones.
		for i, id := range []string{"u1", "u2", "other"} {
			sub := "user-2"
			if id == "other" {
				sub = "user-3"
			}
			r := &sessionRow{IDHash: hashID(id), Subject: sub, Generation: 1, Data: "x", AccessExpiry: now, ExpiresAt: now.Add(time.Duration(i+1) * time.Hour)}
			if err := st.insert(ctx, r, now); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := st.deleteSubject(ctx, "user-2"); n != 2 || err != nil {
			t.Fatalf("deleteSubject: %d %v", n, err)
		}
		if n, err := st.prune(ctx, now.Add(4*time.Hour)); n != 1 || err != nil {
			t.Fatalf("prune: %d %v", n, err)
		}
	})
}

// TestCopiedCookieDiesAtLogoutAndRevocation: a copy of the session cookie
// taken before a logout, or before an IAM-side revocation is noticed, gets
// 401 afterwards, although its access token would still be valid.
func TestCopiedCookieDiesAtLogoutAndRevocation(t *testing.T) {
	world := newFakeWorld("")
	clock := &offsetClock{}
	b, _ := startWithIAM(t, world.start(t), clock)
	u, _ := url.Parse(b.srv.URL)

	t.Run("logout", func(t *testing.T) {
		c := b.client(t, nil)
		login(t, b, c, "/")
		copied := c.Jar.Cookies(u)
		sess := sessionOf(t, b, copied)
		form := url.Values{"csrf_token": {sess.CSRF}}.Encode()
		resp, _ := b.do(t, c, "POST", "/logout", form, map[string]string{"Origin": b.srv.URL, "Content-Type": "application/x-www-form-urlencoded"})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("logout: %d", resp.StatusCode)
		}
		for _, path := range []string{"/api/securitysystems", "/api/me"} {
			if resp, _ := b.do(t, b.client(t, copied), "GET", path, "", nil); resp.StatusCode != 401 {
				t.Fatalf("%s with a cookie copied before logout: %d, want 401", path, resp.StatusCode)
			}
		}
		if resp, body := b.do(t, b.client(t, copied), "GET", "/", "", nil); resp.StatusCode != 200 || !strings.Contains(body, `id="login"`) {
			t.Fatalf("home page with a copied cookie: %d, want the sign-in page", resp.StatusCode)
		}
	})

	t.Run("revocation at the IAM", func(t *testing.T) {
		c := b.client(t, nil)
		login(t, b, c, "/")
		copied := c.Jar.Cookies(u)
		sess := sessionOf(t, b, copied)
		d, err := b.svc.iam.get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		b.svc.iam.revoke(context.Background(), d, sess.Refresh, "refresh_token")
		clock.offset.Add(int64(10 * time.Minute))
		if resp, _ := b.do(t, c, "GET", "/api/securitysystems", "", nil); resp.StatusCode != 401 {
			t.Fatalf("refused refresh: %d, want 401", resp.StatusCode)
		}
		// Back before the expiry, the copy's access token would be valid;
		// the session is gone all the same.
		clock.offset.Add(-int64(10 * time.Minute))
		if resp, _ := b.do(t, b.client(t, copied), "GET", "/api/securitysystems", "", nil); resp.StatusCode != 401 {
			t.Fatalf("copy after the refused refresh: %d, want 401", resp.StatusCode)
		}
	})
}

// sessionOf opens the session the cookies name.
func sessionOf(t *testing.T, b *testBFF, cookies []*http.Cookie) *session {
	t.Helper()
	req := httptest.NewRequest("GET", "/", nil)
	for _, ck := range cookies {
		req.AddCookie(ck)
	}
	sess, err := b.svc.readSession(req)
	if err != nil {
		t.Fatal(err)
	}
	return sess
}

// TestTwoInstancesShareSessions runs two BFF servers on one store against a
// real IAM: concurrent requests on both at refresh time refresh once and
// keep the session; both then refuse the pre-refresh cookie, and a logout
// at one ends the session at the other.
func TestTwoInstancesShareSessions(t *testing.T) {
	sqldbtest.ForEachStore(t, []sqldb.Migrations{Migrations()}, func(t *testing.T, db *sqldb.DB) {
		world := newFakeWorld("")
		be := world.start(t)
		clock := &offsetClock{}
		a, ri := startWithIAM(t, be, clock, func(_ *Config, d *Deps) { d.DB = db })
		b := startBFF(t, ri.issuer, iamBFFSecret, be, a.cfg.SessionKeys, func(c *Config, d *Deps) {
			c.PublicURL = a.cfg.PublicURL // both behind one load balancer
			d.DB = db
			d.Now = clock.now
		})
		c := a.client(t, nil)
		login(t, a, c, "/")
		u, _ := url.Parse(a.srv.URL)
		old := c.Jar.Cookies(u)
		if resp, _ := b.do(t, b.client(t, old), "GET", "/api/securitysystems", "", nil); resp.StatusCode != 200 {
			t.Fatalf("the other instance does not know the session: %d", resp.StatusCode)
		}

		// At refresh time, twelve concurrent requests, half on each, all
		// reaching the BFFs while the refresh is under way: the IAM holds
		// the refresh until every request has read its session. (One that
		// arrives with the old cookie after the refresh is stored is a
		// superseded copy: 401, see TestRefreshOnceWhenExpired.)
		const n = 12
		release := holdRefresh(ri, n, a, b)
		clock.offset.Store(int64(10 * time.Minute))
		var wg sync.WaitGroup
		statuses := make([]int, n)
		fresh := make([][]*http.Cookie, n)
		for i := range n {
			inst := a
			if i%2 == 1 {
				inst = b
			}
			wg.Go(func() {
				req, _ := http.NewRequest("GET", inst.srv.URL+"/api/securitysystems", nil)
				resp, err := inst.client(t, old).Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				statuses[i] = resp.StatusCode
				fresh[i] = resp.Cookies()
			})
		}
		wg.Wait()
		release()
		for i, s := range statuses {
			if s != 200 || len(fresh[i]) == 0 {
				t.Fatalf("request %d: %d with %d cookies, want 200 and the refreshed cookie", i, s, len(fresh[i]))
			}
		}
		if got := ri.refreshes.Load(); got != 1 {
			t.Fatalf("%d refreshes at the IAM, want 1 (one lease per generation)", got)
		}
		// The new access token is fresh in real time; back to it, so that
		// the checks below do not refresh again.
		clock.offset.Store(0)
		// Every response carried the same new generation.
		want := sessionOf(t, a, fresh[0])
		for i := range n {
			if got := sessionOf(t, a, fresh[i]); got.Gen != want.Gen || got.Gen != 2 {
				t.Fatalf("request %d got generation %d, want %d", i, got.Gen, want.Gen)
			}
		}
		for _, inst := range []*testBFF{a, b} {
			if resp, _ := inst.do(t, inst.client(t, old), "GET", "/api/securitysystems", "", nil); resp.StatusCode != 401 {
				t.Fatalf("pre-refresh cookie after the refresh: %d, want 401", resp.StatusCode)
			}
			if resp, _ := inst.do(t, inst.client(t, fresh[0]), "GET", "/api/securitysystems", "", nil); resp.StatusCode != 200 {
				t.Fatalf("refreshed cookie: %d", resp.StatusCode)
			}
		}

		// Logout at one instance ends the session at the other at once.
		form := url.Values{"csrf_token": {want.CSRF}}.Encode()
		resp, _ := a.do(t, a.client(t, fresh[0]), "POST", "/logout", form, map[string]string{"Origin": a.cfg.PublicURL, "Content-Type": "application/x-www-form-urlencoded"})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("logout: %d", resp.StatusCode)
		}
		if resp, _ := b.do(t, b.client(t, fresh[1]), "GET", "/api/securitysystems", "", nil); resp.StatusCode != 401 {
			t.Fatalf("other instance after logout: %d, want 401", resp.StatusCode)
		}
	})
}

// TestRefreshTakesOverFromADeadInstance: an instance took the lease and
// rotated the refresh token at the IAM, then died before storing the
// result. Once its lease lapses another instance refreshes with the same
// refresh token, and the IAM's reuse grace window answers with the same
// successor instead of revoking the family: the session lives on.
func TestRefreshTakesOverFromADeadInstance(t *testing.T) {
	world := newFakeWorld("")
	clock := &offsetClock{}
	b, ri := startWithIAM(t, world.start(t), clock, func(c *Config, _ *Deps) { c.IAMTimeout = time.Second })
	c := b.client(t, nil)
	login(t, b, c, "/")
	u, _ := url.Parse(b.srv.URL)
	sess := sessionOf(t, b, c.Jar.Cookies(u))
	clock.offset.Store(int64(10 * time.Minute))

	// The dead instance: lease taken, refresh redeemed, nothing stored.
	now := b.svc.now()
	if ok, err := b.svc.store.tryLease(context.Background(), hashID(sess.ID), sess.Gen, "dead", now, now.Add(2*time.Second)); !ok || err != nil {
		t.Fatalf("lease: %v %v", ok, err)
	}
	d, err := b.svc.iam.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	lost, err := d.oauth.TokenSource(b.svc.iam.ctx(context.Background()), &oauth2.Token{RefreshToken: sess.Refresh, Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	resp, _ := b.do(t, c, "GET", "/api/securitysystems", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("after the dead instance's lease: %d, want 200", resp.StatusCode)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Fatalf("did not wait for the lease (%v)", waited)
	}
	if ri.refreshes.Load() != 2 {
		t.Fatalf("%d refreshes, want 2 (the dead one and the takeover)", ri.refreshes.Load())
	}
	next := sessionOf(t, b, c.Jar.Cookies(u))
	if next.Refresh != lost.RefreshToken || next.Gen != sess.Gen+1 {
		t.Fatal("the takeover did not get the same successor refresh token")
	}
	// The family is intact: the next refresh works.
	clock.offset.Store(int64(20 * time.Minute))
	if resp, _ := b.do(t, c, "GET", "/api/securitysystems", "", nil); resp.StatusCode != 200 {
		t.Fatalf("next refresh: %d", resp.StatusCode)
	}
}

// TestSessionStoreDownIs503: without its store the BFF serves no session
// (503, not 401, so the browser keeps its cookie) and refuses to pretend a
// logout happened.
func TestSessionStoreDownIs503(t *testing.T) {
	db := sqldbtest.OpenSQLite(t)
	ss := securitySystemBackend(t)
	b := startBFF(t, fakeDiscovery(t), "", backendURLs{ss: ss.srv.URL}, []string{newKey(t)}, func(_ *Config, d *Deps) { d.DB = db })
	sess := testSession(fakeJWT(map[string]any{"sub": "user-1"}))
	cookies := b.mintSession(t, sess)
	if resp, _ := b.do(t, b.client(t, cookies), "GET", "/api/securitysystems", "", nil); resp.StatusCode != 200 {
		t.Fatalf("before: %d", resp.StatusCode)
	}
	db.Close()
	resp, body := b.do(t, b.client(t, cookies), "GET", "/api/securitysystems", "", nil)
	if resp.StatusCode != 503 {
		t.Fatalf("store down: %d %s, want 503", resp.StatusCode, body)
	}
	if _, deleted := setChunks(resp); len(deleted) != 0 {
		t.Fatal("a store outage cleared the cookies")
	}
	form := url.Values{"csrf_token": {sess.CSRF}}.Encode()
	if resp, _ := b.do(t, b.client(t, cookies), "POST", "/logout", form, map[string]string{"Origin": b.srv.URL, "Content-Type": "application/x-www-form-urlencoded"}); resp.StatusCode != 503 {
		t.Fatalf("logout with the store down: %d, want 503", resp.StatusCode)
	}
}

// TestShortTokensAreNotRefreshedAtEveryRequest: the leeway is at most a
// third of the access token's lifetime, so a 12-second token is used for
// 8 seconds before it is refreshed, not refreshed at every request.
func TestShortTokensAreNotRefreshedAtEveryRequest(t *testing.T) {
	b := startBFF(t, "", "", backendURLs{}, []string{newKey(t)}, nil)
	now := time.Now().Unix()
	short := &session{Issued: now, Expiry: now + 12}
	if got := b.svc.leeway(short); got != 4*time.Second {
		t.Fatalf("leeway of a 12s token: %v, want 4s", got)
	}
	long := &session{Issued: now, Expiry: now + 300}
	if got := b.svc.leeway(long); got != DefaultRefreshLeeway {
		t.Fatalf("leeway of a 5m token: %v, want %v", got, DefaultRefreshLeeway)
	}
	if got := b.svc.leeway(&session{Expiry: now + 12}); got != DefaultRefreshLeeway {
		t.Fatalf("leeway without an issue time: %v", got)
	}
}
