package events_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/eventstest"
)

// TestEmbeddedNATSRequiresToken checks that an embedded server started
// with a token refuses clients without it (or with a wrong one), so no
// local process can publish forged events, and accepts the token given as
// an option or as the URL's user.
func TestEmbeddedNATSRequiresToken(t *testing.T) {
	const token = "s3cret-token"
	srv, err := events.StartEmbeddedNATS(events.EmbeddedOptions{StoreDir: t.TempDir(), Port: -1, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	if strings.Contains(srv.ClientURL(), token) {
		t.Fatalf("ClientURL %q holds the token", srv.ClientURL())
	}
	connect := func(u string, opts ...events.ConnectOption) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		nc, js, err := events.Connect(ctx, u, "test", nil, opts...)
		if err != nil {
			return err
		}
		defer nc.Close()
		// Prove the connection is usable for JetStream, not merely open.
		return events.EnsureStreams(ctx, js, events.StreamOptions{Prefix: "tauth", MaxAge: time.Hour})
	}

	start := time.Now()
	err = connect(srv.ClientURL())
	if err == nil {
		t.Fatal("connected without the token")
	}
	if strings.Contains(err.Error(), token) {
		t.Errorf("error reveals the token: %v", err)
	}
	if time.Since(start) > 4*time.Second {
		t.Errorf("a refused connection took %v: credentials errors must end the wait at once", time.Since(start))
	}
	if err := connect(srv.ClientURL(), events.WithToken("wrong")); err == nil {
		t.Fatal("connected with a wrong token")
	}
	if err := connect(srv.ClientURL(), events.WithToken(token)); err != nil {
		t.Fatalf("with WithToken: %v", err)
	}
	u, err := url.Parse(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(token)
	if err := connect(u.String()); err != nil {
		t.Fatalf("with the token in the URL: %v", err)
	}
}

// TestEmbeddedNATSRefusesOpenNonLoopback checks that an embedded server
// reachable from other machines cannot be started without a token.
func TestEmbeddedNATSRefusesOpenNonLoopback(t *testing.T) {
	for _, host := range []string{"0.0.0.0", "::", "192.0.2.1", "example.com"} {
		srv, err := events.StartEmbeddedNATS(events.EmbeddedOptions{StoreDir: t.TempDir(), Port: -1, Host: host})
		if err == nil {
			srv.Shutdown()
			t.Errorf("started on %s without a token", host)
		}
	}
	srv, err := events.StartEmbeddedNATS(events.EmbeddedOptions{StoreDir: t.TempDir(), Port: -1, Host: "localhost"})
	if err != nil {
		t.Fatalf("localhost without a token: %v", err)
	}
	srv.Shutdown()
}

// TestServerVersionChecked checks CheckServerVersion against real servers:
// the embedded one (new enough) and the external one, refused with its
// version named when it is older than 2.10 (Debian's 2.9.10 is).
func TestServerVersionChecked(t *testing.T) {
	eventstest.ForEachNATS(t, func(t *testing.T, url string) {
		nc, _ := eventstest.Connect(t, url)
		v := nc.ConnectedServerVersion()
		err := events.CheckServerVersion(nc)
		old := strings.HasPrefix(v, "2.9.") || strings.HasPrefix(v, "2.8.") || strings.HasPrefix(v, "1.")
		switch {
		case old && (err == nil || !strings.Contains(err.Error(), v) || !strings.Contains(err.Error(), "2.10")):
			t.Errorf("server %s: CheckServerVersion = %v, want an error naming %s and 2.10", v, err, v)
		case !old && err != nil:
			t.Errorf("server %s: %v", v, err)
		}
	})
}
