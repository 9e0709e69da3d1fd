package orgkithost_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/iam"
	"github.com/realguardio/realguardio/internal/monitoring"
	"github.com/realguardio/realguardio/internal/orgkit/orgkittest"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/eventstest"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

// TestReadinessFollowsTheRelay runs an organization service (the
// monitoring provider service, whose Run is its relay) connected to NATS
// through a proxy. Ready while its relay publishes; once the proxy is cut
// and a change is committed, /readyz is 503 and names the relay; once the
// proxy is back, the event is published and /readyz is 200 again.
func TestReadinessFollowsTheRelay(t *testing.T) {
	i := orgkittest.StartIAM(t, iam.AudienceMonitoring)
	admin := i.Login(t, "admin", orgkittest.AdminPassword)
	url := eventstest.NATS(t)
	_, js := eventstest.Connect(t, url)
	prefix := eventstest.Streams(t, js)
	proxy := eventstest.StartProxy(t, url)
	_, jsSvc := eventstest.Connect(t, proxy.URL())

	db := sqldbtest.OpenSQLite(t)
	svc, err := monitoring.New(context.Background(), monitoring.Config{Issuer: i.URL, IAMClientSecret: orgkittest.ClientSecret, EventPrefix: prefix},
		monitoring.Deps{DB: db, JS: jsSvc})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()

	published := func() uint64 {
		s, err := js.Stream(context.Background(), events.StreamName(prefix, events.ProducerMonitoring))
		if err != nil {
			t.Fatalf("stream info: %v", err)
		}
		return s.CachedInfo().State.Msgs
	}
	// relayCheck waits until /readyz answers status with a relay check
	// that contains want.
	relayCheck := func(what string, status int, want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		var last orgkittest.Response
		for time.Now().Before(deadline) {
			last = orgkittest.Do(t, "GET", srv.URL+"/readyz", "", nil)
			checks, _ := last.JSON["checks"].(map[string]any)
			got, _ := checks["outbox-relay"].(string)
			if last.Status == status && strings.Contains(got, want) {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("timed out waiting for %s: /readyz %d %s", what, last.Status, last.Raw)
	}
	create := func(name string) {
		t.Helper()
		orgkittest.Do(t, "POST", srv.URL+"/monitoring-providers", admin,
			map[string]any{"name": name, "administrator": map[string]any{"email": strings.ToLower(name) + "@watch.example", "firstName": "B", "lastName": "B"}}).
			Want(t, http.StatusCreated)
	}

	create("First")
	relayCheck("ready with the relay publishing", http.StatusOK, "ok")
	eventstest.WaitOutboxDrained(t, db, "the first change published")
	first := published()
	if first == 0 {
		t.Fatal("nothing published")
	}

	proxy.Cut()
	create("Second")
	relayCheck("not ready while the relay cannot publish", http.StatusServiceUnavailable, "publishing has failed")
	if n := published(); n != first {
		t.Fatalf("%d events in the stream while the relay was cut off, want %d", n, first)
	}

	proxy.Restore()
	relayCheck("ready again once the relay publishes", http.StatusOK, "ok")
	eventstest.WaitOutboxDrained(t, db, "the second change published")
	if n := published(); n <= first {
		t.Fatalf("%d events in the stream after the relay is back, want more than %d", n, first)
	}
}
