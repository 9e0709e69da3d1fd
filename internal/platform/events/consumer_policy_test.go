package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/eventstest"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

// poisonHandler wraps logHandler so that the event whose id is in poisoned
// fails (after a partial write that must be rolled back).
func poisonHandler(poisoned *atomic.Value) events.Handler {
	base := logHandler("replica")
	return func(ctx context.Context, tx *sqldb.Tx, ev events.Event) error {
		if ev.ID == poisoned.Load().(string) {
			if err := base(ctx, tx, ev); err != nil {
				return err
			}
			return errors.New("poisoned")
		}
		return base(ctx, tx, ev)
	}
}

// appliedIDs returns the ids in test_log in apply order.
func appliedIDs(t *testing.T, db *sqldb.DB) []string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), `SELECT event_id FROM test_log ORDER BY ord`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// TestBlockNeverParks makes the handler fail on the second of four events
// of a consumer with OnFailure Block: the event is never parked, the events
// after it wait, the consumer reports itself failing, and once the cause is
// gone everything applies in order and the consumer is healthy again.
func TestBlockNeverParks(t *testing.T) {
	forEach(t, func(t *testing.T, url string, prod, cons *sqldb.DB) {
		ctx := context.Background()
		_, js := eventstest.Connect(t, url)
		prefix := eventstest.Streams(t, js)
		log := testLogger(t)
		o := events.NewOutbox("customer")
		run(t, "relay", events.NewRelay(prod, js, o, log, fastRelay(prefix)...).Run)

		var poisoned atomic.Value
		poisoned.Store("")
		reg := prometheus.NewRegistry()
		c, err := events.NewConsumer(events.ConsumerConfig{
			Name: "replica", Streams: customerStream(prefix), DB: cons, JS: js, Handler: poisonHandler(&poisoned), Logger: log,
			MaxDeliver: 2, Backoff: []time.Duration{20 * time.Millisecond, 40 * time.Millisecond}, Registry: reg,
			OnFailure: events.Block,
		})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]events.Event{}
		var ids []string
		for i := range 4 {
			ev, err := write(ctx, prod, o, "agg-a", i)
			if err != nil {
				t.Fatal(err)
			}
			want[ev.ID] = ev
			ids = append(ids, ev.ID)
		}
		poisoned.Store(ids[1])
		if err := c.Err(); err != nil {
			t.Fatalf("Err before running: %v", err)
		}
		run(t, "consumer", c.Run)

		waitFor(t, 20*time.Second, "the consumer to report the blocked stream", func() (bool, string) {
			return c.Err() != nil, fmt.Sprintf("%d applied", countLog(t, cons))
		})
		// Well past MaxDeliver: still retried, never parked, nothing after
		// the failing event applied.
		time.Sleep(300 * time.Millisecond)
		if parked, err := events.ListParked(ctx, cons, "replica"); err != nil || len(parked) != 0 {
			t.Fatalf("parked = %+v (%v), want none under Block", parked, err)
		}
		if got := appliedIDs(t, cons); len(got) != 1 || got[0] != ids[0] {
			t.Fatalf("applied %v, want only the first event while the second blocks", got)
		}
		if p := c.Progress()[0]; p.BlockedEventID != ids[1] || p.BlockedAttempts < 2 {
			t.Errorf("progress = %+v", p)
		}
		if v := metricSum(t, reg, "realguardio_events_consumer_blocked"); v != 1 {
			t.Errorf("blocked gauge = %v, want 1", v)
		}
		if v := metricSum(t, reg, "realguardio_events_parked_total"); v != 0 {
			t.Errorf("parked metric = %v, want 0", v)
		}

		poisoned.Store("")
		waitFor(t, 20*time.Second, "every event applied after the cause is gone", func() (bool, string) {
			n := countLog(t, cons)
			return n == 4, fmt.Sprintf("%d applied", n)
		})
		checkLog(t, cons, want)
		waitFor(t, 5*time.Second, "the consumer healthy again", func() (bool, string) {
			err := c.Err()
			return err == nil, fmt.Sprint(err)
		})
		if v := metricSum(t, reg, "realguardio_events_consumer_blocked"); v != 0 {
			t.Errorf("blocked gauge = %v, want 0", v)
		}
	})
}

// TestStaleEventsNeverApplied checks that an event older than one already
// applied to its aggregate never rolls the aggregate back: a delivered one
// (here an older sequence published under a new id) is skipped and
// counted, and a parked one is refused by Replay unless the operator says
// to discard or apply it.
func TestStaleEventsNeverApplied(t *testing.T) {
	forEach(t, func(t *testing.T, url string, prod, cons *sqldb.DB) {
		ctx := context.Background()
		_, js := eventstest.Connect(t, url)
		prefix := eventstest.Streams(t, js)
		log := testLogger(t)
		o := events.NewOutbox("customer")
		run(t, "relay", events.NewRelay(prod, js, o, log, fastRelay(prefix)...).Run)

		var poisoned atomic.Value
		poisoned.Store("")
		reg := prometheus.NewRegistry()
		c, err := events.NewConsumer(events.ConsumerConfig{
			Name: "replica", Streams: customerStream(prefix), DB: cons, JS: js, Handler: poisonHandler(&poisoned), Logger: log,
			MaxDeliver: 2, Backoff: []time.Duration{20 * time.Millisecond}, Registry: reg,
		})
		if err != nil {
			t.Fatal(err)
		}
		// agg-a: 1, 2 (parked: think of a revocation), 3 applied without it.
		// agg-b: 1, 2, 3.
		var a, b []events.Event
		for i := range 3 {
			ev, err := write(ctx, prod, o, "agg-a", i)
			if err != nil {
				t.Fatal(err)
			}
			a = append(a, ev)
			if ev, err = write(ctx, prod, o, "agg-b", i); err != nil {
				t.Fatal(err)
			}
			b = append(b, ev)
		}
		poisoned.Store(a[1].ID)
		run(t, "consumer", c.Run)
		waitFor(t, 20*time.Second, "the parked event and the rest applied", func() (bool, string) {
			parked, _ := events.ListParked(ctx, cons, "replica")
			n := countLog(t, cons)
			return len(parked) == 1 && n == 5, fmt.Sprintf("%d parked, %d applied", len(parked), n)
		})

		// A delivered stale event: agg-b's sequence 2 again, under a new id
		// (a replay from elsewhere, or a forgery of an old state).
		old := b[1]
		old.ID = "stale-" + old.ID
		body, err := json.Marshal(old)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, events.Subject(prefix, old.Type), body); err != nil {
			t.Fatal(err)
		}
		// A later, current event shows the stale one was handled before it.
		next, err := write(ctx, prod, o, "agg-b", 3)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, "the event after the stale one", func() (bool, string) {
			var n int
			_ = cons.QueryRowContext(ctx, `SELECT COUNT(*) FROM test_log WHERE event_id = ?`, next.ID).Scan(&n)
			return n == 1, fmt.Sprintf("%d", n)
		})
		var n int
		if err := cons.QueryRowContext(ctx, `SELECT COUNT(*) FROM test_log WHERE event_id = ?`, old.ID).Scan(&n); err != nil || n != 0 {
			t.Fatalf("stale delivered event applied %d times (%v)", n, err)
		}
		if v := metricSum(t, reg, "realguardio_events_stale_skipped_total"); v != 1 {
			t.Errorf("stale metric = %v, want 1", v)
		}

		// The parked event is stale now: Replay refuses it by default, even
		// once the handler would succeed, and it stays parked.
		poisoned.Store("")
		if err := c.Replay(ctx, a[1].ID); !errors.Is(err, events.ErrStale) {
			t.Fatalf("replay of a stale parked event: %v, want ErrStale", err)
		}
		if parked, _ := events.ListParked(ctx, cons, "replica"); len(parked) != 1 {
			t.Fatalf("after a refused replay: %+v", parked)
		}
		if err := cons.QueryRowContext(ctx, `SELECT COUNT(*) FROM test_log WHERE event_id = ?`, a[1].ID).Scan(&n); err != nil || n != 0 {
			t.Fatalf("stale parked event applied %d times (%v)", n, err)
		}
		// DiscardStale drops it without applying it.
		if err := c.Replay(ctx, a[1].ID, events.DiscardStale()); err != nil {
			t.Fatalf("discard: %v", err)
		}
		if parked, _ := events.ListParked(ctx, cons, "replica"); len(parked) != 0 {
			t.Fatalf("still parked after discard: %+v", parked)
		}
		if err := cons.QueryRowContext(ctx, `SELECT COUNT(*) FROM test_log WHERE event_id = ?`, a[1].ID).Scan(&n); err != nil || n != 0 {
			t.Fatalf("discarded event applied %d times (%v)", n, err)
		}
	})
}

// TestConsumerNotMovingIsNotReady: a consumer in contact with its stream
// but applying nothing while events wait (here a handler that hangs; after
// a lost pull it is the pull that hangs) reports itself not ready once the
// stream has not moved for the stall bound, and ready again as soon as
// events apply. Contact with JetStream alone is not readiness.
func TestConsumerNotMovingIsNotReady(t *testing.T) {
	ctx := context.Background()
	_, js := eventstest.Connect(t, eventstest.NATS(t))
	prefix := eventstest.Streams(t, js)
	prod, cons := sqldbtest.OpenSQLite(t, allSets...), sqldbtest.OpenSQLite(t, allSets...)
	log := testLogger(t)
	o := events.NewOutbox("customer")
	run(t, "relay", events.NewRelay(prod, js, o, log, fastRelay(prefix)...).Run)
	release := make(chan struct{})
	var hung atomic.Bool
	base := logHandler("replica")
	c, err := events.NewConsumer(events.ConsumerConfig{
		Name: "replica", Streams: customerStream(prefix), DB: cons, JS: js, Logger: log, OnFailure: events.Block,
		Handler: func(ctx context.Context, tx *sqldb.Tx, ev events.Event) error {
			if ev.Sequence == 2 {
				hung.Store(true)
				select {
				case <-release:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return base(ctx, tx, ev)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, "consumer", c.Run)
	want := map[string]events.Event{}
	for i := range 3 {
		ev, err := write(ctx, prod, o, "agg-a", i)
		if err != nil {
			t.Fatal(err)
		}
		want[ev.ID] = ev
	}
	waitFor(t, 20*time.Second, "the handler to hang on the second event", func() (bool, string) {
		return hung.Load(), fmt.Sprintf("%d applied", countLog(t, cons))
	})
	if err := c.Err(); err != nil {
		t.Fatalf("Err as the stall begins: %v", err)
	}
	waitFor(t, 20*time.Second, "the consumer to report the stream not progressing", func() (bool, string) {
		err := c.Err()
		return err != nil && strings.Contains(err.Error(), "not progressing"), fmt.Sprint(err)
	})
	close(release)
	waitFor(t, 20*time.Second, "every event applied", func() (bool, string) {
		n := countLog(t, cons)
		return n == 3, fmt.Sprintf("%d of 3 applied", n)
	})
	checkLog(t, cons, want)
	waitFor(t, 10*time.Second, "the consumer ready again", func() (bool, string) {
		err := c.Err()
		return err == nil, fmt.Sprint(err)
	})
}
