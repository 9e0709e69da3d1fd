package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/authzsync"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/eventstest"
	"github.com/realguardio/realguardio/internal/platform/fga"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/securitysystem"
	"github.com/realguardio/realguardio/internal/securitysystem/sstest"
)

// TestRebuildReplicaRefusedWhileServiceRuns: with a Security System
// Service running on the data directory's database, rebuild-replica exits
// with a failure naming the running service and what to do; stopped, the
// rebuild runs and prints its progress as plain lines (the output is no
// terminal).
func TestRebuildReplicaRefusedWhileServiceRuns(t *testing.T) {
	dir := t.TempDir()
	args := []string{"rebuild-replica", "--data-dir", dir, "--nats-embedded-addr", "127.0.0.1:0", "--log-level", "error"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, err := sqldb.Open(ctx, filepath.Join(dir, "securitysystem.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc, err := securitysystem.New(ctx, securitysystem.Config{Strategy: "replicate"}, securitysystem.Deps{DB: db, Authenticate: sstest.Authenticate})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM securitysystem_leases WHERE kind = 'service'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the service took no lease")
		}
		time.Sleep(10 * time.Millisecond)
	}

	code, out, errOut := runCLI(t, nil, args...)
	if code != ExitFailure || !strings.Contains(errOut, "realguardio rebuild-replica: the Security System Service is running (lease held by ") ||
		!strings.Contains(errOut, "s ago); stop it first") || strings.Contains(out, "Done in") {
		t.Fatalf("with the service running: code %d, out %q, stderr %q", code, out, errOut)
	}

	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	code, out, errOut = runCLI(t, nil, args...)
	if code != ExitOK || !strings.Contains(out, "\n  0 of 0 events (100%), done\n") || strings.ContainsAny(out, "\r\x1b") || !strings.Contains(out, "Done in") {
		t.Fatalf("with the service stopped: code %d, out %q, stderr %q", code, out, errOut)
	}
}

// TestRebuildOpenFGARefusedWhileSyncRuns: with an authorization sync
// running on the data directory's database (it holds its stream leases),
// rebuild-openfga exits with a failure saying so and what to do; with the
// sync stopped the rebuild runs and prints its progress as plain lines.
func TestRebuildOpenFGARefusedWhileSyncRuns(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	natsURL := eventstest.NATS(t)
	_, js := eventstest.Connect(t, natsURL)
	if err := events.EnsureStreams(ctx, js, events.StreamOptions{MaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	srv, err := fga.StartEmbedded(ctx, fga.EmbeddedOptions{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	client, err := fga.New(fga.Config{URL: srv.URL(), Timeout: 15 * time.Second}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqldb.Open(ctx, filepath.Join(dir, "authzsync.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	syncer, err := authzsync.New(ctx, authzsync.Config{}, authzsync.Deps{DB: db, JS: js, FGA: client})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- syncer.Run(runCtx) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM event_consumer_streams WHERE consumer = ? AND holder <> ''`,
			authzsync.DefaultConsumerName).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sync took no stream lease")
		}
		time.Sleep(10 * time.Millisecond)
	}

	args := []string{"rebuild-openfga", "--data-dir", dir, "--nats-url", natsURL, "--openfga-url", srv.URL(), "--log-level", "error"}
	code, out, errOut := runCLI(t, nil, args...)
	if code != ExitFailure || !strings.Contains(errOut, "realguardio rebuild-openfga: the authorization sync is running (lease held by ") ||
		!strings.Contains(errOut, "); stop it first") || strings.Contains(out, "Done in") {
		t.Fatalf("with the sync running: code %d, out %q, stderr %q", code, out, errOut)
	}

	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	code, out, errOut = runCLI(t, nil, args...)
	if code != ExitOK || !strings.Contains(out, "\n  0 of 0 events (100%), done\n") || strings.ContainsAny(out, "\r\x1b") || !strings.Contains(out, "Done in") {
		t.Fatalf("with the sync stopped: code %d, out %q, stderr %q", code, out, errOut)
	}
}
