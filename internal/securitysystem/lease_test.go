package securitysystem_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/eventstest"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/policy/policytest"
	"github.com/realguardio/realguardio/internal/securitysystem"
	"github.com/realguardio/realguardio/internal/securitysystem/sstest"
)

// TestRebuildRefusedWhileServiceRuns: a rebuild against the database of a
// running service refuses, naming the lease's holder, and leaves the
// running consumer's durables, applied events and replica as they were; a
// service refuses to start while a rebuild holds its lease; a lease left by
// a process that died stops counting once expired; with the service
// stopped, the rebuild replays every event and reports its progress. On
// SQLite and PostgreSQL.
func TestRebuildRefusedWhileServiceRuns(t *testing.T) {
	sqldbtest.ForEachStore(t, securitysystem.Migrations(), func(t *testing.T, db *sqldb.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		url := eventstest.NATS(t)
		_, js := eventstest.Connect(t, url)
		prefix := eventstest.Streams(t, js)
		cfg := securitysystem.Config{Strategy: "replicate", EventPrefix: prefix}
		deps := securitysystem.Deps{DB: db, JS: js, Authenticate: sstest.Authenticate}
		b := sstest.NewEvents(time.Now().Add(-time.Minute))
		b.World(policytest.FixedWorld())
		for _, ev := range b.List() {
			body, _ := json.Marshal(ev)
			msg := nats.NewMsg(events.Subject(prefix, ev.Type))
			msg.Data = body
			msg.Header.Set(nats.MsgIdHdr, ev.ID)
			if _, err := js.PublishMsg(ctx, msg); err != nil {
				t.Fatal(err)
			}
		}
		total := int64(len(b.List()))

		svc, err := securitysystem.New(ctx, cfg, deps)
		if err != nil {
			t.Fatal(err)
		}
		runCtx, stopRun := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- svc.Run(runCtx) }()
		eventually(t, "every event applied", func() bool {
			return int64(countRows(t, db, `SELECT COUNT(*) FROM event_applied`)) == total
		})
		before := replicaSnapshot(t, db)

		_, err = securitysystem.RebuildReplica(ctx, cfg, deps)
		var busy *securitysystem.BusyError
		if !errors.As(err, &busy) {
			t.Fatalf("rebuild while the service runs: %v, want a BusyError", err)
		}
		host, _ := os.Hostname()
		if want := fmt.Sprintf("the Security System Service is running (lease held by %s/%d, renewed ", host, os.Getpid()); !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), " s ago); stop it first") {
			t.Errorf("message %q, want %q...", err, want)
		}
		for _, stream := range []string{events.StreamName(prefix, events.ProducerCustomer), events.StreamName(prefix, events.ProducerDealer), events.StreamName(prefix, events.ProducerMonitoring)} {
			if _, err := js.Consumer(ctx, stream, securitysystem.ReplicaConsumerName); err != nil {
				t.Errorf("durable on %s after the refused rebuild: %v", stream, err)
			}
		}
		if n := int64(countRows(t, db, `SELECT COUNT(*) FROM event_applied`)); n != total {
			t.Errorf("%d applied events after the refused rebuild, want %d", n, total)
		}
		if got := replicaSnapshot(t, db); got != before {
			t.Errorf("replica changed by the refused rebuild")
		}
		stopRun()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		if n := countRows(t, db, `SELECT COUNT(*) FROM securitysystem_leases`); n != 0 {
			t.Errorf("%d leases left after a clean stop, want 0", n)
		}

		// A rebuild in progress (another process) keeps the service from
		// starting; once its lease expired (the process died), it starts.
		now := time.Now()
		if _, err := db.ExecContext(ctx, `INSERT INTO securitysystem_leases (holder, kind, host, pid, renewed_at, expires_at) VALUES ('other', 'rebuild', 'elsewhere', 42, ?, ?)`,
			sqldb.Micros(now.Add(-2*time.Second)), sqldb.Micros(now.Add(3*time.Second))); err != nil {
			t.Fatal(err)
		}
		err = svc.Run(ctx)
		if !errors.As(err, &busy) || err.Error() != "a rebuild is running against the Security System Service's database (lease held by elsewhere/42, renewed 2 s ago); wait for it to finish" {
			t.Fatalf("service start during a rebuild: %v", err)
		}
		if _, err := db.ExecContext(ctx, `UPDATE securitysystem_leases SET expires_at = ? WHERE holder = 'other'`, sqldb.Micros(now.Add(-time.Second))); err != nil {
			t.Fatal(err)
		}

		// A service that died leaves its lease; expired, it no longer
		// blocks the rebuild.
		if _, err := db.ExecContext(ctx, `INSERT INTO securitysystem_leases (holder, kind, host, pid, renewed_at, expires_at) VALUES ('dead', 'service', 'elsewhere', 43, ?, ?)`,
			sqldb.Micros(now.Add(-10*time.Second)), sqldb.Micros(now.Add(-5*time.Second))); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `DELETE FROM replica_locations`); err != nil { // damage it
			t.Fatal(err)
		}
		var reports []securitysystem.RebuildProgress
		rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
		defer rcancel()
		if _, err := securitysystem.RebuildReplica(rctx, cfg, deps, securitysystem.WithRebuildProgress(10*time.Millisecond, func(p securitysystem.RebuildProgress) {
			reports = append(reports, p)
		})); err != nil {
			t.Fatalf("rebuild with the service stopped: %v", err)
		}
		if got := replicaSnapshot(t, db); got != before {
			t.Errorf("rebuilt replica differs")
		}
		if len(reports) == 0 {
			t.Fatal("no progress reported")
		}
		last := reports[len(reports)-1]
		if !last.Final || last.Done != total || last.Total != total {
			t.Errorf("final progress %+v, want %d of %d", last, total, total)
		}
		for _, p := range reports {
			if p.Done > p.Total || p.Total != total {
				t.Errorf("progress %+v, want done <= total = %d", p, total)
			}
		}
		if n := countRows(t, db, `SELECT COUNT(*) FROM securitysystem_leases WHERE kind = 'rebuild' AND holder <> 'other'`); n != 0 {
			t.Errorf("%d rebuild leases left after the rebuild, want 0", n)
		}

		// Past the streams' horizon: the oldest event of a stream gone (as
		// the age limit removes it), the rebuild refuses before changing
		// anything, naming the stream.
		customer := events.StreamName(prefix, events.ProducerCustomer)
		st, err := js.Stream(ctx, customer)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Purge(ctx, jetstream.WithPurgeSequence(2)); err != nil {
			t.Fatal(err)
		}
		_, err = securitysystem.RebuildReplica(ctx, cfg, deps)
		var horizon *securitysystem.HorizonError
		if !errors.As(err, &horizon) || horizon.Stream != customer || horizon.FirstSeq != 2 ||
			!strings.Contains(err.Error(), "restore the Security System Service's database from a backup") {
			t.Fatalf("rebuild past the horizon: %v", err)
		}
		if _, err := js.Consumer(ctx, customer, securitysystem.ReplicaConsumerName); err != nil {
			t.Errorf("durable after the refused rebuild: %v", err)
		}
		if got := replicaSnapshot(t, db); got != before {
			t.Errorf("replica changed by the refused rebuild")
		}
	})
}
