package faulttest

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/eventstest"
)

// TestFaultsDelegate runs the delegate strategy as separate processes with
// an OpenFGA server of its own (on PostgreSQL) and the authorization sync,
// and takes OpenFGA, the sync and a NATS node away in turn.
func TestFaultsDelegate(t *testing.T) {
	s := startSystem(t, Options{Strategy: "delegate"})
	w := s.seed(t, 2)
	s.logRSS(t, "idle")

	t.Run("OpenFGAKilled", func(t *testing.T) { openFGAKilled(t, s, w) })
	t.Run("AuthzSyncKilled", func(t *testing.T) { authzSyncKilled(t, s, w) })
	t.Run("NATSNodeLost", func(t *testing.T) { natsNodeLost(t, s, w) })
}

// openFGAKilled kills OpenFGA: every decision is a 503 that changes
// nothing (fail closed), and decisions are served again once it is back.
func openFGAKilled(t *testing.T, s *System, w *World) {
	user := s.client(w.User, "securitysystem")
	id := w.Systems[0]
	before := state(t, user, id)
	s.FGA.kill()
	down := time.Now()
	n := 0
	for ; n < 4 || time.Since(down) < 3*time.Second; n++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := act(ctx, user, id, before)
		cancel()
		if st := status(err); st != http.StatusServiceUnavailable {
			t.Fatalf("act with OpenFGA down: %d (%v), want 503", st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, body := s.Proc("securitysystem").readyz(); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz of the Security System Service with OpenFGA down: %d %v, want 503", code, body)
	} else if checks, _ := body["checks"].(map[string]any); checks["openfga"] == "ok" {
		t.Errorf("/readyz says the dead OpenFGA is ok: %v", body)
	}
	s.FGA.start(t)
	healthy := s.FGA.waitFGA(t, 60*time.Second)
	d := waitFor(t, 60*time.Second, "delegate decisions served again", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := user.GetSecuritySystem(ctx, id)
		return err == nil
	})
	recovered(t, "OpenFGA killed (delegate): decisions served again after it is healthy", d)
	t.Logf("%d attempts while down, all 503; OpenFGA healthy %s after its restart", n, healthy.Round(time.Millisecond))
	if got := state(t, user, id); got != before {
		t.Fatalf("state after the 503s: %s, want %s", got, before)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := act(ctx, user, id, before); err != nil {
		t.Fatalf("act after recovery: %v", err)
	}
	if _, err := act(ctx, user, id, flip(before)); err != nil {
		t.Fatalf("act back after recovery: %v", err)
	}
}

// authzSyncKilled kills the authorization sync and grants a new employee
// its roles meanwhile: the grant is not decided by (fail closed, never
// allowed early), and once the sync is back its tuples catch up.
func authzSyncKilled(t *testing.T, s *System, w *World) {
	sync := s.Proc("authzsync")
	sync.kill()
	username := s.addEmployee(t, w, "while-sync-down")
	se := s.mustFirstLogin(t, username, w.Initial, w.Password)
	c := s.client(se, "securitysystem")
	id := w.Systems[1]
	end := time.Now().Add(3 * time.Second)
	for time.Now().Before(end) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := c.Disarm(ctx, id)
		cancel()
		if st := status(err); st != http.StatusForbidden && st != http.StatusNotFound {
			t.Fatalf("disarm by a grant the sync has not written: %d (%v), want 403 or 404", st, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	back := time.Now()
	sync.start(t)
	ready := sync.waitReady(t, 60*time.Second)
	d := waitFor(t, 90*time.Second, "the grant made while the sync was down is decided by", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := c.Disarm(ctx, id)
		return err == nil
	})
	recovered(t, "authzsync killed (delegate): tuples of a grant made meanwhile caught up after its restart", time.Since(back))
	t.Logf("authzsync ready %s after its start; the grant decided %s after that", ready.Round(time.Millisecond), d.Round(time.Millisecond))
}

// natsNodeLost kills the NATS server leading the Customer Service's stream:
// events still flow (the stream has three replicas, clients reconnect to
// the others), measured as the time from a grant to its decision.
func natsNodeLost(t *testing.T, s *System, w *World) {
	propagation := func(what string) time.Duration {
		start := time.Now()
		username := s.addEmployee(t, w, what)
		se := s.mustFirstLogin(t, username, w.Initial, w.Password)
		c := s.client(se, "securitysystem")
		waitFor(t, 90*time.Second, "a grant "+what+" is decided by", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := c.GetSecuritySystem(ctx, w.Systems[0])
			return err == nil
		})
		return time.Since(start)
	}
	t.Logf("grant to decision with every NATS node up: %s", propagation("all-nodes-up").Round(time.Millisecond))

	nc, js := eventstest.Connect(t, s.NATS.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	st, err := js.Stream(ctx, events.StreamName("", events.ProducerCustomer))
	must(t, err)
	info, err := st.Info(ctx)
	cancel()
	must(t, err)
	nc.Close()
	leader := 0
	if info.Cluster != nil {
		if i := s.NATS.Index(info.Cluster.Leader); i >= 0 {
			leader = i
		}
	}
	s.NATS.Kill(leader)
	d := propagation("node-lost")
	recovered(t, "NATS node (stream leader) lost: grant to decision", d)
	s.NATS.Start(leader)
	t.Logf("grant to decision after the node is back: %s", propagation("node-back").Round(time.Millisecond))
}
