package faulttest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/realguardio/realguardio/internal/apiclient"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/eventstest"
)

// TestFaultsFetch runs the fetch strategy as separate processes, with two
// instances of the Security System Service and of the BFF, and attacks
// them one fault at a time; each case leaves the system as it found it.
func TestFaultsFetch(t *testing.T) {
	s := startSystem(t, Options{Strategy: "fetch", SecondInstances: true})
	w := s.seed(t, 6)
	s.logRSS(t, "idle")

	t.Run("OwnerKilled", func(t *testing.T) { ownerFault(t, s, w, "killed") })
	t.Run("OwnerFrozen", func(t *testing.T) { ownerFault(t, s, w, "frozen") })
	t.Run("OwnerRestarted", func(t *testing.T) { ownerFault(t, s, w, "restarted") })
	t.Run("DatabaseConnectionsTerminated", func(t *testing.T) { databaseConnectionsLost(t, s, w) })
	t.Run("IAMDown", func(t *testing.T) { iamDown(t, s, w) })
	t.Run("SecuritySystemKilledUnderLoad", func(t *testing.T) { killedUnderLoad(t, s, w) })
	t.Run("TwoBFFInstances", func(t *testing.T) { twoBFFs(t, s, w) })
}

// logRSS logs every process's resident memory (the Kubernetes requests in
// deploy/ follow these figures).
func (s *System) logRSS(t *testing.T, when string) {
	t.Helper()
	var parts []string
	for _, name := range s.names() {
		parts = append(parts, fmt.Sprintf("%s=%.0fMiB", name, s.procs[name].rssMiB()))
	}
	t.Logf("RSS %s: %s", when, strings.Join(parts, " "))
}

// state reads system id's state through c, retrying while the service
// cannot decide (the callers use it only once the fault is over).
func state(t *testing.T, c *apiclient.Client, id string) string {
	t.Helper()
	var st string
	waitFor(t, 60*time.Second, "read the state of "+id, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ss, err := c.GetSecuritySystem(ctx, id)
		st = ss.State
		return err == nil
	})
	return st
}

// act arms a disarmed system and disarms an armed one.
func act(ctx context.Context, c *apiclient.Client, id, from string) (apiclient.SecuritySystem, error) {
	if from == apiclient.StateArmed {
		return c.Disarm(ctx, id)
	}
	return c.Arm(ctx, id)
}

func flip(st string) string {
	if st == apiclient.StateArmed {
		return apiclient.StateDisarmed
	}
	return apiclient.StateArmed
}

// ownerFault takes the Customer Service away (killed with SIGKILL, frozen
// with SIGSTOP, or stopped with SIGTERM), checks that every decision is a
// 503 that changes nothing, brings it back and measures how long until the
// fetch strategy serves again.
func ownerFault(t *testing.T, s *System, w *World, mode string) {
	user := s.client(w.User, "securitysystem")
	id := w.Systems[0]
	before := state(t, user, id)
	owner := s.Proc("customer")
	switch mode {
	case "killed":
		owner.kill()
	case "frozen":
		owner.signal(t, syscall.SIGSTOP)
	case "restarted":
		owner.stop()
	}
	// Frozen, the first calls wait for --fetch-timeout (2 s) before the
	// breaker opens; a few attempts cover both phases.
	down := time.Now()
	var codes []int
	for n := 0; n < 4 || time.Since(down) < 3*time.Second; n++ {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		_, err := act(ctx, user, id, before)
		cancel()
		if st := status(err); st != http.StatusServiceUnavailable {
			t.Fatalf("act on %s with the Customer Service %s: %d (%v), want 503", id, mode, st, err)
		}
		codes = append(codes, http.StatusServiceUnavailable)
		time.Sleep(100 * time.Millisecond)
	}
	back := time.Now()
	if mode == "frozen" {
		owner.signal(t, syscall.SIGCONT)
	} else {
		owner.start(t)
	}
	ready := owner.waitReady(t, 60*time.Second)
	waitFor(t, 60*time.Second, "the fetch strategy serves again", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := user.GetSecuritySystem(ctx, id)
		return err == nil
	})
	total := time.Since(back)
	recovered(t, "customer service "+mode+" (fetch): decisions served again after its restart/thaw", total)
	t.Logf("%d attempts while down, all 503; the Customer Service was ready %s after its restart/thaw, decisions served %s after that",
		len(codes), ready.Round(time.Millisecond), (total - ready).Round(time.Millisecond))
	if got := state(t, user, id); got != before {
		t.Fatalf("state of %s after the 503s: %s, want %s (nothing changed)", id, got, before)
	}
	// The strategy serves every kind of request again.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := act(ctx, user, id, before); err != nil {
		t.Fatalf("act after recovery: %v", err)
	}
	if _, err := act(ctx, user, id, flip(before)); err != nil {
		t.Fatalf("act back after recovery: %v", err)
	}
	if _, err := user.ListSecuritySystems(ctx); err != nil {
		t.Fatalf("list after recovery: %v", err)
	}
}

// databaseConnectionsLost ends every PostgreSQL connection of the Security
// System Service, then of the Customer Service (its owner under fetch): a
// request is then served (the pool reconnects) or refused with 503 that
// changed nothing, never 500, and the next requests succeed.
func databaseConnectionsLost(t *testing.T, s *System, w *World) {
	user := s.client(w.User, "securitysystem")
	id := w.Systems[1]
	for _, svc := range []string{"securitysystem", "customer"} {
		before := state(t, user, id)
		n := s.terminateBackends(t, svc)
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err := act(ctx, user, id, before)
		cancel()
		first := status(err)
		switch first {
		case http.StatusOK:
		case http.StatusServiceUnavailable:
			if got := state(t, user, id); got != before {
				t.Fatalf("state after a 503 with %s's connections terminated: %s, want %s", svc, got, before)
			}
		default:
			t.Fatalf("act with %s's database connections terminated: %d (%v), want 200 or 503", svc, first, err)
		}
		d := waitFor(t, 60*time.Second, "requests succeed again after "+svc+"'s connections were terminated", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cur, err := user.GetSecuritySystem(ctx, id)
			if err != nil {
				if st := status(err); st != http.StatusServiceUnavailable {
					t.Fatalf("read with %s's connections terminated: %d (%v), want 200 or 503", svc, st, err)
				}
				return false
			}
			_, err = act(ctx, user, id, cur.State)
			if st := status(err); err != nil && st != http.StatusServiceUnavailable {
				t.Fatalf("act with %s's connections terminated: %d (%v), want 200 or 503", svc, st, err)
			}
			return err == nil
		})
		recovered(t, "database connections of the "+svc+" terminated: first request "+fmt.Sprint(first)+", served again", d)
		t.Logf("%d connections of %s terminated; recovered %s after", n, svc, time.Since(start).Round(time.Millisecond))
		waitFor(t, 30*time.Second, svc+" ready again", func() bool { code, _ := s.Proc(svc).readyz(); return code == http.StatusOK })
	}
}

// iamDown kills the IAM: tokens already issued are still served (the
// services hold the keys), new logins fail, and the BFF answers /login
// with its own 503 page. After the restart logins work again.
func iamDown(t *testing.T, s *System, w *World) {
	user := s.client(w.User, "securitysystem")
	id := w.Systems[0]
	iam := s.Proc("iam")
	iam.kill()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before := state(t, user, id)
	if _, err := act(ctx, user, id, before); err != nil {
		t.Fatalf("act with an existing token while the IAM is down: %v", err)
	}
	if _, err := act(ctx, user, id, flip(before)); err != nil {
		t.Fatalf("act back with an existing token while the IAM is down: %v", err)
	}
	if _, err := user.ListSecuritySystems(ctx); err != nil {
		t.Fatalf("list with an existing token while the IAM is down: %v", err)
	}
	if _, err := s.login(ctx, w.Username, w.Password); err == nil {
		t.Fatal("a new login succeeded while the IAM is down")
	}
	code, ctype, body := bffLogin(t, s.URL("bff"))
	if code != http.StatusServiceUnavailable || !strings.HasPrefix(ctype, "text/html") {
		t.Fatalf("BFF /login with the IAM down: %d %s, want a 503 HTML page: %s", code, ctype, body)
	}
	if rc, rb := s.Proc("bff").readyz(); rc != http.StatusOK || rb["status"] != "degraded" {
		t.Fatalf("BFF /readyz with the IAM down: %d %v, want 200 degraded", rc, rb)
	} else if checks, _ := rb["checks"].(map[string]any); checks["iam"] == "ok" {
		t.Fatalf("BFF /readyz says the dead IAM is ok: %v", rb)
	}
	iam.start(t)
	d := waitFor(t, 60*time.Second, "new logins work again", func() bool {
		lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
		defer lcancel()
		_, err := s.login(lctx, w.Username, w.Password)
		return err == nil
	})
	recovered(t, "IAM killed: new logins work after its restart", d)
	d = waitFor(t, 60*time.Second, "the BFF's /login redirects to the IAM again", func() bool {
		code, _, _ := bffLogin(t, s.URL("bff"))
		return code == http.StatusFound || code == http.StatusSeeOther
	})
	recovered(t, "IAM killed: the BFF's /login redirects to it again", d)
}

// bffLogin opens the BFF's /login without following redirects.
func bffLogin(t *testing.T, base string) (int, string, string) {
	t.Helper()
	hc := &http.Client{Timeout: 15 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(base + "/login")
	if err != nil {
		t.Fatalf("GET /login: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), apiclient.Snippet(b)
}

// killedUnderLoad runs workers that flip systems through both Security
// System Service instances, kills one with SIGKILL mid-load and restarts
// it, then checks the event stream: every state change that happened is
// published exactly once (none lost, none doubled), in order.
func killedUnderLoad(t *testing.T, s *System, w *World) {
	clients := []*apiclient.Client{s.client(w.User, "securitysystem"), s.client(w.User, "securitysystem-2")}
	systems := w.Systems[2:]
	final := make([]string, len(systems))
	changes := make([]int, len(systems))
	var confirmed, resolved, refused, unavailable int
	var mu sync.Mutex
	for i, id := range systems {
		final[i] = state(t, clients[1], id)
	}
	// Every event committed before now is older than the load.
	loadStart := time.Now().Add(-time.Millisecond)
	stop := make(chan struct{})
	errs := make(chan error, len(systems))
	var wg sync.WaitGroup
	for i, id := range systems {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cur := final[i]
			for n := i; ; n++ {
				select {
				case <-stop:
					final[i] = cur
					return
				default:
				}
				c := clients[n%2]
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				_, err := act(ctx, c, id, cur)
				cancel()
				switch st := status(err); {
				case st == http.StatusOK:
					cur = flip(cur)
					changes[i]++
					mu.Lock()
					confirmed++
					mu.Unlock()
				case st == 0 && errors.Is(err, syscall.ECONNREFUSED):
					// Nothing was sent: the instance is down.
					mu.Lock()
					refused++
					mu.Unlock()
				case st == 0 || st == http.StatusServiceUnavailable:
					// The answer was lost with the instance, or it
					// refused while stopping: read what happened
					// through the other one.
					got := ""
					giveUp := time.Now().Add(60 * time.Second)
					for k := 1; got == ""; k++ {
						if time.Now().After(giveUp) {
							errs <- fmt.Errorf("%s cannot be read through either instance for 60 s", id)
							return
						}
						ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						ss, gerr := clients[(n+k)%2].GetSecuritySystem(ctx, id)
						cancel()
						if gerr == nil {
							got = ss.State
						} else {
							time.Sleep(50 * time.Millisecond)
						}
					}
					mu.Lock()
					if st == http.StatusServiceUnavailable {
						unavailable++
						if got != cur {
							mu.Unlock()
							errs <- fmt.Errorf("a 503 on %s changed its state to %s", id, got)
							return
						}
					} else {
						resolved++
					}
					mu.Unlock()
					if got != cur {
						cur = got
						changes[i]++
					}
				default:
					errs <- fmt.Errorf("act on %s: %d (%v)", id, st, err)
					return
				}
			}
		}()
	}
	time.Sleep(2 * time.Second)
	a := s.Proc("securitysystem")
	a.kill()
	killed := time.Now()
	time.Sleep(2 * time.Second)
	a.start(t)
	d := a.waitReady(t, 60*time.Second)
	recovered(t, "securitysystem instance killed with -9 under load: restarted instance ready", d)
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	total := 0
	for _, n := range changes {
		total += n
	}
	t.Logf("load: %d state changes (%d confirmed by 200, %d lost answers resolved by reading, %d refused connections, %d 503s that changed nothing); instance down %s",
		total, confirmed, resolved, refused, unavailable, time.Since(killed).Round(time.Millisecond))
	if confirmed == 0 {
		t.Fatal("no request succeeded under load")
	}

	// The stream holds exactly the changes, each once and in order.
	nc, js := eventstest.Connect(t, s.NATS.URL())
	defer nc.Close()
	var last string
	start := time.Now()
	for {
		got, problem := stateEvents(t, js, systems, loadStart)
		ok := problem == ""
		for i, id := range systems {
			evs := got[id]
			if len(evs) != changes[i] {
				ok = false
				last = fmt.Sprintf("%s: %d state events since the load began, want %d", id, len(evs), changes[i])
				if len(evs) > changes[i] {
					t.Fatalf("%s (an event doubled)", last)
				}
				break
			}
			if n := len(evs); n > 0 && stateOf(evs[n-1].Type) != final[i] {
				ok = false
				last = fmt.Sprintf("%s: last event %s, final state %s", id, evs[n-1].Type, final[i])
				break
			}
		}
		if problem != "" {
			t.Fatal(problem)
		}
		if ok {
			break
		}
		if time.Since(start) > 60*time.Second {
			t.Fatalf("the event stream does not hold every state change: %s", last)
		}
		time.Sleep(200 * time.Millisecond)
	}
	recovered(t, "securitysystem killed with -9 under load: every change published once", time.Since(start))
	s.logRSS(t, "after load")
}

// stateEvents reads the Security System Service's stream and returns the
// armed and disarmed events of systems that occurred at or after since, in
// stream order; problem describes an event seen twice or out of order.
func stateEvents(t *testing.T, js jetstream.JetStream, systems []string, since time.Time) (map[string][]events.Event, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, events.StreamName("", events.ProducerSecuritySystem))
	must(t, err)
	info, err := st.Info(ctx)
	must(t, err)
	want := map[string]bool{}
	for _, id := range systems {
		want[id] = true
	}
	out := map[string][]events.Event{}
	ids := map[string]bool{}
	lastSeq := map[string]int64{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			t.Fatal(err)
		}
		var ev events.Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatalf("event %d: %v", seq, err)
		}
		if !want[ev.AggregateID] {
			continue
		}
		if ids[ev.ID] {
			return nil, fmt.Sprintf("event %s (%s of %s) is in the stream twice", ev.ID, ev.Type, ev.AggregateID)
		}
		ids[ev.ID] = true
		if prev, ok := lastSeq[ev.AggregateID]; ok && ev.Sequence != prev+1 {
			return nil, fmt.Sprintf("%s: event sequence %d after %d (lost or doubled)", ev.AggregateID, ev.Sequence, prev)
		}
		lastSeq[ev.AggregateID] = ev.Sequence
		if stateOf(ev.Type) == "" || ev.OccurredAt.Before(since) {
			continue
		}
		if evs := out[ev.AggregateID]; len(evs) > 0 && evs[len(evs)-1].Type == ev.Type {
			return nil, fmt.Sprintf("%s: two %s events in a row", ev.AggregateID, ev.Type)
		}
		out[ev.AggregateID] = append(out[ev.AggregateID], ev)
	}
	return out, ""
}

// stateOf is the state an event leaves its system in, "" for other events.
func stateOf(eventType string) string {
	switch eventType {
	case "securitysystem.armed":
		return apiclient.StateArmed
	case "securitysystem.disarmed":
		return apiclient.StateDisarmed
	}
	return ""
}

// csrfMeta is the dashboard's anti-forgery token.
var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

// twoBFFs logs in through the balancer in front of two BFF instances and
// uses the one session on both at once, with one instance killed, and
// after a logout on one of them.
func twoBFFs(t *testing.T, s *System, w *World) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	jar, err := cookiejar.New(nil)
	must(t, err)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	page, err := apiclient.SubmitLoginForm(ctx, browser, s.BFFURL+"/login", w.Username, w.Password)
	must(t, err)
	if page.Status != http.StatusOK || !strings.HasPrefix(page.URL, s.BFFURL+"/") {
		t.Fatalf("login through the BFFs ended at %d %s: %s", page.Status, page.URL, page.Snippet)
	}
	get := func(base, path string) (int, string) {
		req, err := http.NewRequestWithContext(ctx, "GET", base+path, nil)
		must(t, err)
		resp, err := browser.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	bases := []string{s.BFFURL, s.URL("bff"), s.Proc("bff-2").url}
	var wg sync.WaitGroup
	codes := make(chan string, 60)
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, body := get(bases[i%3], "/api/securitysystems"); code != http.StatusOK {
				codes <- fmt.Sprintf("%s: %d %s", bases[i%3], code, apiclient.Snippet([]byte(body)))
			}
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		t.Errorf("one session on both BFF instances at once: %s", c)
	}
	// One instance dies: the session lives on the other.
	s.Proc("bff").kill()
	if code, body := get(s.Proc("bff-2").url, "/api/securitysystems"); code != http.StatusOK {
		t.Fatalf("the session on the surviving BFF: %d %s", code, apiclient.Snippet([]byte(body)))
	}
	s.Proc("bff").start(t)
	d := s.Proc("bff").waitReady(t, 60*time.Second)
	recovered(t, "BFF instance killed: restarted instance ready (sessions never lost)", d)
	if code, body := get(s.URL("bff"), "/api/securitysystems"); code != http.StatusOK {
		t.Fatalf("the session on the restarted BFF: %d %s", code, apiclient.Snippet([]byte(body)))
	}
	// A logout on one instance ends the session on every instance.
	_, home := get(s.Proc("bff-2").url, "/")
	m := csrfMeta.FindStringSubmatch(home)
	if m == nil {
		t.Fatal("the dashboard carries no csrf-token")
	}
	saved := jar.Cookies(mustURL(t, s.BFFURL))
	req, err := http.NewRequestWithContext(ctx, "POST", s.Proc("bff-2").url+"/logout", nil)
	must(t, err)
	req.Header.Set("X-CSRF-Token", html.UnescapeString(m[1]))
	req.Header.Set("Origin", s.BFFURL)
	noFollow := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		t.Fatalf("logout on the second BFF: %d", resp.StatusCode)
	}
	// The copy of the cookie another tab holds is dead on the other
	// instance too: the session row is gone for all of them.
	plain := &http.Client{Timeout: 30 * time.Second}
	req, err = http.NewRequestWithContext(ctx, "GET", s.URL("bff")+"/api/securitysystems", nil)
	must(t, err)
	for _, c := range saved {
		req.AddCookie(c)
	}
	resp, err = plain.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the first BFF with the session's cookie after a logout on the second: %d, want 401", resp.StatusCode)
	}
}
