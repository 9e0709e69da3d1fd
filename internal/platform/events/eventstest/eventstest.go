// Package eventstest gives tests a NATS JetStream server and isolated
// streams: an embedded server by default, and the external server named by
// REALGUARDIO_TEST_NATS_URL when it is set. Under CI=true a missing external
// server fails the test instead of skipping it, like sqldbtest does for
// PostgreSQL.
package eventstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/realguardio/realguardio/internal/platform/events"
)

// NATSURLEnv names the variable holding the URL of an external NATS server
// with JetStream, shared by every test run on the machine.
const NATSURLEnv = "REALGUARDIO_TEST_NATS_URL"

// NATS starts an embedded NATS server with JetStream for the test, stopped
// when the test ends, and returns its client URL.
func NATS(t testing.TB) string {
	t.Helper()
	return Embedded(t).ClientURL()
}

// Embedded starts an embedded NATS server with JetStream on a free port with
// its store in a temporary directory, stopped when the test ends. Tests that
// stop and restart the server use the returned value.
func Embedded(t testing.TB) *events.EmbeddedNATS {
	t.Helper()
	srv, err := events.StartEmbeddedNATS(events.EmbeddedOptions{StoreDir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatalf("start embedded NATS: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// ExternalNATS returns the URL of the external server, skipping the test
// when none is configured (failing it under CI=true).
func ExternalNATS(t testing.TB) string {
	t.Helper()
	u := os.Getenv(NATSURLEnv)
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set, and CI=true forbids skipping the external NATS tests", NATSURLEnv)
		}
		t.Skipf("external NATS tests skipped: set %s (for example nats://127.0.0.1:4222)", NATSURLEnv)
	}
	return u
}

// ForEachNATS runs fn as a subtest "embedded" against a new embedded server
// and "external" against the external server (skipped or failed as
// ExternalNATS says). Tests on the external server share its streams with
// everyone, so fn should use Streams for a private prefix.
func ForEachNATS(t *testing.T, fn func(t *testing.T, url string)) {
	t.Helper()
	t.Run("embedded", func(t *testing.T) { fn(t, NATS(t)) })
	t.Run("external", func(t *testing.T) { fn(t, ExternalNATS(t)) })
}

// Connect connects to url for the test and closes the connection when the
// test ends.
func Connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	nc, js, err := events.Connect(ctx, url, "test-"+t.Name(), nil)
	if err != nil {
		t.Fatalf("connect to NATS: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc, js
}

// Prefix returns a subject prefix unique to this test ("t" and random hex),
// so tests sharing a server never see each other's events.
func Prefix(t testing.TB) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:])
}

// Streams creates the producers' streams under a new unique prefix on js,
// deletes them when the test ends, and returns the prefix; pass it to
// events.WithSubjectPrefix and events.StreamName. The streams keep events for an hour only,
// so a test that dies before its cleanup leaves little behind on a shared
// server.
func Streams(t testing.TB, js jetstream.JetStream) string {
	t.Helper()
	prefix := Prefix(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := events.EnsureStreams(ctx, js, events.StreamOptions{Prefix: prefix, MaxAge: time.Hour}); err != nil {
		t.Fatalf("create test streams: %v", err)
	}
	t.Cleanup(func() { DeleteStreams(t, js, prefix) })
	return prefix
}

// DeleteStreams deletes the producers' streams under prefix, ignoring those
// that do not exist.
func DeleteStreams(t testing.TB, js jetstream.JetStream, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, p := range events.Producers {
		if err := js.DeleteStream(ctx, events.StreamName(prefix, p)); err != nil && !isNotFound(err) {
			t.Logf("delete test stream %s: %v", events.StreamName(prefix, p), err)
		}
	}
}

func isNotFound(err error) bool { return errors.Is(err, jetstream.ErrStreamNotFound) }
