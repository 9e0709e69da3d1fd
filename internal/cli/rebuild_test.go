package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
