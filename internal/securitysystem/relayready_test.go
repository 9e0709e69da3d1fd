package securitysystem_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/eventstest"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/securitysystem"
	"github.com/realguardio/realguardio/internal/securitysystem/sstest"
)

// TestReadinessFollowsTheRelay runs the service (strategy none: no
// consumer, so the relay is the only thing on NATS) connected to NATS
// through a proxy. Ready while the relay publishes; once the proxy is cut
// and a security system is created, /readyz is 503 and names the relay;
// once the proxy is back the event is published and /readyz is 200.
func TestReadinessFollowsTheRelay(t *testing.T) {
	url := eventstest.NATS(t)
	_, js := eventstest.Connect(t, url)
	prefix := eventstest.Streams(t, js)
	proxy := eventstest.StartProxy(t, url)
	_, jsSvc := eventstest.Connect(t, proxy.URL())
	db := sqldbtest.OpenSQLite(t)
	svc, err := securitysystem.New(context.Background(), securitysystem.Config{Strategy: "none", AllowNoAuthz: true, EventPrefix: prefix},
		securitysystem.Deps{DB: db, JS: jsSvc, Authenticate: sstest.Authenticate})
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
		s, err := js.Stream(context.Background(), events.StreamName(prefix, events.ProducerSecuritySystem))
		if err != nil {
			t.Fatalf("stream info: %v", err)
		}
		return s.CachedInfo().State.Msgs
	}
	create := func() {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"locationId": uuid.NewString(), "name": "system"})
		req, _ := http.NewRequest("POST", srv.URL+"/securitysystems", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer admin|REALGUARDIO_ADMIN")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("create a security system: %d", resp.StatusCode)
		}
	}
	// relayCheck waits until /readyz answers status with a relay check
	// that contains want.
	relayCheck := func(what string, status int, want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		var last string
		for time.Now().Before(deadline) {
			resp, err := http.Get(srv.URL + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			var out struct {
				Checks map[string]string `json:"checks"`
			}
			err = json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if err == nil && resp.StatusCode == status && strings.Contains(out.Checks["outbox-relay"], want) {
				return
			}
			last = resp.Status + " " + out.Checks["outbox-relay"]
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("timed out waiting for %s: /readyz %s", what, last)
	}

	create()
	relayCheck("ready with the relay publishing", http.StatusOK, "ok")
	eventstest.WaitOutboxDrained(t, db, "the first change published")
	first := published()
	if first == 0 {
		t.Fatal("nothing published")
	}
	proxy.Cut()
	create()
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
