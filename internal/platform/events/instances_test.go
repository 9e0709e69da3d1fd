package events_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/eventstest"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

// handles opens n independent connection pools on one new database of the
// store of like, as n instances of a service would.
func handles(t *testing.T, like *sqldb.DB, n int) []*sqldb.DB {
	t.Helper()
	u := filepath.Join(t.TempDir(), "shared.db")
	if like.Dialect() == sqldb.Postgres {
		u = sqldbtest.PostgresURL(t)
	}
	var out []*sqldb.DB
	for range n {
		db, err := sqldb.Open(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		out = append(out, db)
	}
	if err := out[0].Migrate(context.Background(), allSets...); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTwoInstancesFailoverInOrder runs two instances of a producer (two
// relays, each with its own database pool and NATS connection, default
// lease and polling) and two instances of a consumer sharing one durable.
// The relay holding the lease crashes (its database and NATS connection
// vanish without releasing the lease): the other publishes within five
// seconds. One consumer instance crashes mid-stream. Through it all, no
// two events of one aggregate are ever applied at the same time, every
// aggregate's events are applied in order, and each exactly once.
func TestTwoInstancesFailoverInOrder(t *testing.T) {
	forEach(t, func(t *testing.T, url string, like, _ *sqldb.DB) {
		ctx := context.Background()
		_, admin := eventstest.Connect(t, url)
		prefix := eventstest.Streams(t, admin)
		log := testLogger(t)
		prod := handles(t, like, 3) // relay A, relay B, the writer
		cons := handles(t, like, 3) // consumer A, consumer B, the checks

		// In flight per aggregate, across both consumer instances.
		var mu sync.Mutex
		inFlight := map[string]int{}
		var overlaps atomic.Int64
		base := logHandler("replica")
		handler := func(ctx context.Context, tx *sqldb.Tx, ev events.Event) error {
			mu.Lock()
			inFlight[ev.AggregateID]++
			if inFlight[ev.AggregateID] > 1 {
				overlaps.Add(1)
			}
			mu.Unlock()
			defer func() { mu.Lock(); inFlight[ev.AggregateID]--; mu.Unlock() }()
			time.Sleep(2 * time.Millisecond) // widen the window a second apply would need
			return base(ctx, tx, ev)
		}
		ncCA, jsCA := eventstest.Connect(t, url)
		_, jsCB := eventstest.Connect(t, url)
		newConsumer := func(db *sqldb.DB, js jetstream.JetStream) *events.Consumer {
			c, err := events.NewConsumer(events.ConsumerConfig{Name: "replica", Streams: customerStream(prefix), DB: db,
				JS: js, Handler: handler, Logger: log, OnFailure: events.Block})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		stopCA := run(t, "consumer A", newConsumer(cons[0], jsCA).Run)
		run(t, "consumer B", newConsumer(cons[1], jsCB).Run)

		ncA, jsA := eventstest.Connect(t, url)
		_, jsB := eventstest.Connect(t, url)
		o := events.NewOutbox("customer")
		stopA := run(t, "relay A", events.NewRelay(prod[0], jsA, events.NewOutbox("customer"), log, events.WithSubjectPrefix(prefix)).Run)

		want := map[string]events.Event{}
		writeN := func(from, to int) {
			for i := from; i < to; i++ {
				ev, err := write(ctx, prod[2], o, []string{"agg-a", "agg-b", "agg-c"}[i%3], i)
				if err != nil {
					t.Fatal(err)
				}
				want[ev.ID] = ev
			}
		}
		writeN(0, 30)
		waitFor(t, 20*time.Second, "relay A publishing", func() (bool, string) {
			n := countLog(t, cons[2])
			return n == 30, fmt.Sprintf("%d of 30 applied", n)
		})
		run(t, "relay B", events.NewRelay(prod[1], jsB, events.NewOutbox("customer"), log, events.WithSubjectPrefix(prefix)).Run)

		// Relay A crashes: its pool and its connection are gone, the lease
		// row still names it.
		crashed := time.Now()
		prod[0].Close()
		ncA.Close()
		writeN(30, 31)
		waitFor(t, 20*time.Second, "relay B to take over", func() (bool, string) {
			n := countLog(t, cons[2])
			return n == 31, fmt.Sprintf("%d of 31 applied", n)
		})
		failover := time.Since(crashed)
		t.Logf("relay failover: the first event after the crash applied %v after it", failover.Round(time.Millisecond))
		if failover > 5*time.Second {
			t.Errorf("relay failover took %v, want at most 5s", failover)
		}
		stopA()

		// Consumer A crashes mid-stream; B carries on with the durable.
		writeN(31, 80)
		waitFor(t, 20*time.Second, "some events applied", func() (bool, string) {
			n := countLog(t, cons[2])
			return n >= 40, fmt.Sprintf("%d applied", n)
		})
		ncCA.Close()
		stopCA()
		writeN(80, 100)
		waitFor(t, 30*time.Second, "every event applied", func() (bool, string) {
			n := countLog(t, cons[2])
			return n == len(want), fmt.Sprintf("%d of %d applied", n, len(want))
		})
		checkLog(t, cons[2], want)
		if n := overlaps.Load(); n != 0 {
			t.Errorf("%d times two events of one aggregate were applied at once", n)
		}
	})
}
