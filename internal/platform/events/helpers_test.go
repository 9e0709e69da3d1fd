package events_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/eventstest"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

var testMigrations = sqldb.Migrations{Set: "eventstest", FS: os.DirFS("testdata/migrations")}

var allSets = []sqldb.Migrations{events.Migrations(), testMigrations}

// forEach runs fn for every combination of store (SQLite, PostgreSQL) and
// NATS server (embedded, external), with a producer and a consumer
// database of that store.
func forEach(t *testing.T, fn func(t *testing.T, url string, prod, cons *sqldb.DB)) {
	eventstest.ForEachNATS(t, func(t *testing.T, url string) {
		sqldbtest.ForEachStore(t, allSets, func(t *testing.T, prod *sqldb.DB) {
			fn(t, url, prod, secondDB(t, prod))
		})
	})
}

// forEachStore runs fn for every store, with a producer and a consumer
// database.
func forEachStore(t *testing.T, fn func(t *testing.T, prod, cons *sqldb.DB)) {
	sqldbtest.ForEachStore(t, allSets, func(t *testing.T, prod *sqldb.DB) {
		fn(t, prod, secondDB(t, prod))
	})
}

func secondDB(t *testing.T, like *sqldb.DB) *sqldb.DB {
	if like.Dialect() == sqldb.Postgres {
		return sqldbtest.OpenPostgres(t, allSets...)
	}
	return sqldbtest.OpenSQLite(t, allSets...)
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("REALGUARDIO_TEST_VERBOSE") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// tWriter sends log lines to t.Log so they show only for failing tests.
type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // a late line after the test ended
	w.t.Log(string(p))
	return len(p), nil
}

// run starts fn in the background and returns a stop function that
// cancels it and waits, failing the test if it returned an error.
func run(t *testing.T, name string, fn func(ctx context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("%s returned %v", name, err)
				}
			case <-time.After(20 * time.Second):
				t.Errorf("%s did not stop", name)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s (last state: %s)", timeout, what, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// write commits one business row and one event for aggregate in a
// transaction.
func write(ctx context.Context, db *sqldb.DB, o *events.Outbox, aggregate string, n int) (events.Event, error) {
	var ev events.Event
	err := db.InTx(ctx, func(tx *sqldb.Tx) error {
		id := fmt.Sprintf("%s-%d-%d", aggregate, n, time.Now().UnixNano())
		if _, err := tx.ExecContext(ctx, `INSERT INTO test_business (id) VALUES (?)`, id); err != nil {
			return err
		}
		var err error
		ev, err = o.Append(ctx, tx, "customer", aggregate, "customer.thing_happened", map[string]any{"aggregate": aggregate, "n": n})
		return err
	})
	return ev, err
}

// logHandler records every applied event in test_log, with its position
// in the consumer's apply order.
func logHandler(consumer string) events.Handler {
	return func(ctx context.Context, tx *sqldb.Tx, ev events.Event) error {
		var ord int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(ord), 0) + 1 FROM test_log`).Scan(&ord); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO test_log (ord, consumer, event_id, aggregate_id, sequence) VALUES (?, ?, ?, ?, ?)`,
			ord, consumer, ev.ID, ev.AggregateID, ev.Sequence)
		return err
	}
}

func countLog(t *testing.T, db *sqldb.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM test_log`).Scan(&n); err != nil {
		t.Fatalf("count test_log: %v", err)
	}
	return n
}

// checkLog verifies that every id in want was applied exactly once, nothing
// else was applied, and each aggregate's events were applied in sequence
// order 1, 2, 3, ....
func checkLog(t *testing.T, db *sqldb.DB, want map[string]events.Event) {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), `SELECT event_id, aggregate_id, sequence FROM test_log ORDER BY ord`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := map[string]int{}
	next := map[string]int64{}
	for rows.Next() {
		var id, agg string
		var seq int64
		if err := rows.Scan(&id, &agg, &seq); err != nil {
			t.Fatal(err)
		}
		seen[id]++
		if seen[id] > 1 {
			t.Errorf("event %s applied %d times", id, seen[id])
		}
		if _, ok := want[id]; !ok {
			t.Errorf("event %s applied but never committed", id)
		}
		if next[agg] == 0 {
			next[agg] = 1
		}
		if seq != next[agg] {
			t.Errorf("aggregate %s: applied sequence %d, want %d", agg, seq, next[agg])
		}
		next[agg] = seq + 1
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for id := range want {
		if seen[id] == 0 {
			t.Errorf("event %s committed but never applied", id)
		}
	}
}

// streamMsgs returns the number of messages in the customer stream.
func streamMsgs(t *testing.T, js jetstream.JetStream, prefix string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), events.StreamName(prefix, events.ProducerCustomer))
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	return s.CachedInfo().State.Msgs
}

// fastRelay returns relay options for tests: quick polling and retries.
func fastRelay(prefix string) []events.RelayOption {
	return []events.RelayOption{
		events.WithSubjectPrefix(prefix),
		events.WithPollInterval(50 * time.Millisecond),
		events.WithBackoff(20*time.Millisecond, 200*time.Millisecond),
		events.WithPublishTimeout(time.Second),
		events.WithLease(2 * time.Second),
	}
}

func customerStream(prefix string) []string {
	return []string{events.StreamName(prefix, events.ProducerCustomer)}
}
