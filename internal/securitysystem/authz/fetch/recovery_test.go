package fetch_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/policytest"
	"github.com/realguardio/realguardio/internal/securitysystem/authz"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/fetch"
	"github.com/realguardio/realguardio/internal/securitysystem/sstest"
)

// owner is a real HTTP server on a fixed address that can be killed
// (listener and connections closed), started again on the same port, and
// frozen (every request held until it is thawed or the client gives up),
// as a process stopped with SIGSTOP would.
type owner struct {
	t       *testing.T
	addr    string
	handler http.Handler
	frozen  atomic.Bool
	thaw    chan struct{}

	mu  sync.Mutex
	srv *http.Server
}

func newOwner(t *testing.T, h http.Handler) *owner {
	o := &owner{t: t, handler: h, thaw: make(chan struct{})}
	o.start("127.0.0.1:0")
	t.Cleanup(o.kill)
	return o
}

func (o *owner) URL() string { return "http://" + o.addr }

func (o *owner) start(addr string) {
	o.t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		o.t.Fatalf("listen on %s: %v", addr, err)
	}
	o.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o.frozen.Load() {
			o.mu.Lock()
			thaw := o.thaw
			o.mu.Unlock()
			select {
			case <-thaw:
			case <-r.Context().Done():
				return
			}
		}
		o.handler.ServeHTTP(w, r)
	})}
	o.mu.Lock()
	o.srv = srv
	o.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// kill closes the listener and every connection at once.
func (o *owner) kill() {
	o.mu.Lock()
	srv := o.srv
	o.srv = nil
	o.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// restart starts the server again on the port it had.
func (o *owner) restart() { o.start(o.addr) }

func (o *owner) freeze() { o.frozen.Store(true) }

func (o *owner) unfreeze() {
	o.frozen.Store(false)
	o.mu.Lock()
	close(o.thaw)
	o.thaw = make(chan struct{})
	o.mu.Unlock()
}

// recoveryFixture is the fetch strategy over three owners, the customer's
// a killable server, with breakers that open after three failures for
// half a second.
type recoveryFixture struct {
	customer *owner
	fa       *fetch.Authorizer
	alice    *auth.Caller
	ss1      authz.SystemRef
	all      []authz.SystemRef
}

func newRecoveryFixture(t *testing.T) *recoveryFixture {
	w := policytest.FixedWorld()
	f := sstest.NewFacts(t, w)
	customer := newOwner(t, f.Customer.Config.Handler)
	fa, err := fetch.New(fetch.Config{
		CustomerURL: customer.URL(), DealerURL: f.Dealer.URL, MonitoringURL: f.Monitoring.URL,
		TokenSource:     oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "service"}),
		Timeout:         time.Second,
		BreakerFailures: 3,
		BreakerOpen:     500 * time.Millisecond,
	}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	byID, all := refs(w)
	return &recoveryFixture{customer: customer, fa: fa,
		alice: &auth.Caller{Subject: id("alice"), Roles: w.AppRoles(id("alice"))}, ss1: byID[id("ss1")], all: all}
}

// decide makes one disarm decision and one list for alice, as a request
// of the Security System Service would.
func (x *recoveryFixture) decide(ctx context.Context) error {
	d, err := x.fa.Decide(ctx, x.alice, policy.OpDisarm, x.ss1, time.Now())
	if err != nil {
		return err
	}
	if !d.Allowed {
		return errors.New("alice denied disarming ss1")
	}
	_, err = x.fa.Filter(ctx, x.alice, x.all, time.Now())
	return err
}

// untilDown decides until the decisions fail (Unavailable, never anything
// else) and the breaker is open: calls fail fast.
func (x *recoveryFixture) untilDown(t *testing.T) {
	t.Helper()
	for i := 0; ; i++ {
		start := time.Now()
		err := x.decide(context.Background())
		if err == nil {
			if i > 50 {
				t.Fatal("the strategy still serves with the customer owner down")
			}
			continue
		}
		if !apperr.Is(err, apperr.Unavailable) {
			t.Fatalf("decision with the owner down: %v, want Unavailable", err)
		}
		if time.Since(start) < 50*time.Millisecond && i >= 3 {
			return // the breaker refuses at once
		}
		if i > 50 {
			t.Fatal("the breaker never opened")
		}
	}
}

// recovers drives decisions from several concurrent callers after the
// owner is back and returns how long until each caller was served twice
// in a row; it fails the test past 5 s.
func (x *recoveryFixture) recovers(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(5 * time.Second)
	var wg sync.WaitGroup
	var worst atomic.Int64
	var last atomic.Value
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok := 0
			for ok < 2 {
				if time.Now().After(deadline) {
					return
				}
				if err := x.decide(context.Background()); err != nil {
					last.Store(err.Error())
					ok = 0
					time.Sleep(20 * time.Millisecond)
					continue
				}
				ok++
			}
			d := int64(time.Since(start))
			for {
				w := worst.Load()
				if d <= w || worst.CompareAndSwap(w, d) {
					break
				}
			}
		}()
	}
	wg.Wait()
	if time.Now().After(deadline) || worst.Load() == 0 {
		t.Fatalf("the fetch strategy did not serve again within 5 s of the owner's return; last error: %v", last.Load())
	}
	return time.Duration(worst.Load())
}

// TestOwnerKilledAndRestarted: the customer owner is killed (connections
// refused) until the breakers open, then started again on the same port;
// the strategy serves every caller again within 5 s. Before the shared
// breaker policy it stayed 503 forever: each decision's two concurrent
// calls to the customer met a half-open breaker admitting one, and the
// refused one cancelled the other.
func TestOwnerKilledAndRestarted(t *testing.T) {
	x := newRecoveryFixture(t)
	if err := x.decide(context.Background()); err != nil {
		t.Fatalf("healthy: %v", err)
	}
	for round := range 2 {
		x.customer.kill()
		x.untilDown(t)
		x.customer.restart()
		t.Logf("round %d: served again %s after the restart", round, x.recovers(t))
	}
}

// TestOwnerFrozen: the customer owner stops answering (requests held, as
// under SIGSTOP) until the breakers open, then answers again; the strategy
// serves again within 5 s.
func TestOwnerFrozen(t *testing.T) {
	x := newRecoveryFixture(t)
	if err := x.decide(context.Background()); err != nil {
		t.Fatalf("healthy: %v", err)
	}
	x.customer.freeze()
	x.untilDown(t)
	// Requests arrive while it is frozen after the breaker opened too.
	time.Sleep(600 * time.Millisecond)
	if err := x.decide(context.Background()); !apperr.Is(err, apperr.Unavailable) {
		t.Fatalf("frozen owner, half-open breaker: %v, want Unavailable", err)
	}
	x.customer.unfreeze()
	t.Logf("served again %s after the thaw", x.recovers(t))
}
