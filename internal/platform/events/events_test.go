package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/eventstest"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// TestDeliveredOnceInOrder writes events of several aggregates from
// concurrent writers, with two relays on the producer database, and checks
// that the consumer applies every committed event exactly once, in order
// per aggregate, and that a rolled-back transaction publishes nothing.
func TestDeliveredOnceInOrder(t *testing.T) {
	forEach(t, func(t *testing.T, url string, prod, cons *sqldb.DB) {
		ctx := context.Background()
		_, js := eventstest.Connect(t, url)
		prefix := eventstest.Streams(t, js)
		log := testLogger(t)

		o1, o2 := events.NewOutbox("customer"), events.NewOutbox("customer")
		run(t, "relay 1", events.NewRelay(prod, js, o1, log, fastRelay(prefix)...).Run)
		run(t, "relay 2", events.NewRelay(prod, js, o2, log, fastRelay(prefix)...).Run)
		c, err := events.NewConsumer(events.ConsumerConfig{
			Name: "replica", Streams: customerStream(prefix), DB: cons, JS: js,
			Handler: logHandler("replica"), Logger: log,
		})
		if err != nil {
			t.Fatal(err)
		}
		run(t, "consumer", c.Run)

		// A rolled-back transaction leaves no trace.
		rollback := errors.New("rollback")
		err = prod.InTx(ctx, func(tx *sqldb.Tx) error {
			if _, err := o1.Append(ctx, tx, "customer", "agg-rolled-back", "customer.thing_happened", map[string]int{"n": 1}); err != nil {
				return err
			}
			return rollback
		})
		if !errors.Is(err, rollback) {
			t.Fatalf("rollback: %v", err)
		}

		const writers, perWriter = 4, 15
		aggregates := []string{"agg-a", "agg-b", "agg-c"}
		var mu sync.Mutex
		want := map[string]events.Event{}
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perWriter {
					ev, err := write(ctx, prod, o1, aggregates[(w+i)%len(aggregates)], i)
					if err != nil {
						t.Errorf("write: %v", err)
						return
					}
					mu.Lock()
					want[ev.ID] = ev
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		total := writers * perWriter
		waitFor(t, 30*time.Second, "every event applied", func() (bool, string) {
			n := countLog(t, cons)
			return n >= total, fmt.Sprintf("%d of %d applied", n, total)
		})
		checkLog(t, cons, want)
		if got := streamMsgs(t, js, prefix); got != uint64(total) {
			t.Errorf("stream holds %d messages, want %d (no rolled-back event, no duplicate)", got, total)
		}
		// Sequences are dense per aggregate, and the rolled-back event did
		// not consume one.
		var seq int64
		if err := prod.QueryRowContext(ctx, `SELECT COUNT(*) FROM event_sequences WHERE aggregate_id = ?`, "agg-rolled-back").Scan(&seq); err != nil || seq != 0 {
			t.Errorf("rolled-back aggregate has a sequence row (%d, %v)", seq, err)
		}
		waitFor(t, 10*time.Second, "the consumer to report no lag", func() (bool, string) {
			return c.Lag() == 0, fmt.Sprintf("lag %v", c.Lag())
		})
		if evTime, appliedAt := c.LastApplied(); evTime.IsZero() || appliedAt.Before(evTime) {
			t.Errorf("LastApplied = %v, %v", evTime, appliedAt)
		}
	})
}

// TestOutboxDrainsAfterNATSOutage stops the embedded server, keeps writing,
// restarts it on the same port and store, and expects everything to arrive.
func TestOutboxDrainsAfterNATSOutage(t *testing.T) {
	forEachStore(t, func(t *testing.T, prod, cons *sqldb.DB) {
		ctx := context.Background()
		dir := t.TempDir()
		srv, err := events.StartEmbeddedNATS(events.EmbeddedOptions{StoreDir: dir, Port: -1})
		if err != nil {
			t.Fatal(err)
		}
		port := srv.Port()
		t.Cleanup(func() { srv.Shutdown() })
		_, js := eventstest.Connect(t, srv.ClientURL())
		prefix := eventstest.Prefix(t)
		if err := events.EnsureStreams(ctx, js, events.StreamOptions{Prefix: prefix}); err != nil {
			t.Fatal(err)
		}
		log := testLogger(t)
		o := events.NewOutbox("customer")
		run(t, "relay", events.NewRelay(prod, js, o, log, fastRelay(prefix)...).Run)
		c, err := events.NewConsumer(events.ConsumerConfig{
			Name: "replica", Streams: customerStream(prefix), DB: cons, JS: js,
			Handler: logHandler("replica"), Logger: log, Backoff: []time.Duration{50 * time.Millisecond},
		})
		if err != nil {
			t.Fatal(err)
		}
		run(t, "consumer", c.Run)

		want := map[string]events.Event{}
		for i := range 5 {
			ev, err := write(ctx, prod, o, "agg-a", i)
			if err != nil {
				t.Fatal(err)
			}
			want[ev.ID] = ev
		}
		waitFor(t, 20*time.Second, "events before the outage", func() (bool, string) {
			n := countLog(t, cons)
			return n == 5, fmt.Sprintf("%d applied", n)
		})

		srv.Shutdown()
		for i := 5; i < 25; i++ {
			ev, err := write(ctx, prod, o, []string{"agg-a", "agg-b"}[i%2], i)
			if err != nil {
				t.Fatalf("write while NATS is down: %v", err)
			}
			want[ev.ID] = ev
		}
		time.Sleep(300 * time.Millisecond) // let the relay fail and back off
		var unsent int
		if err := prod.QueryRowContext(ctx, `SELECT COUNT(*) FROM event_outbox WHERE sent_at IS NULL`).Scan(&unsent); err != nil || unsent == 0 {
			t.Fatalf("expected unsent rows while NATS is down, got %d (%v)", unsent, err)
		}

		srv, err = events.StartEmbeddedNATS(events.EmbeddedOptions{StoreDir: dir, Port: port})
		if err != nil {
			t.Fatalf("restart NATS: %v", err)
		}
		waitFor(t, 30*time.Second, "the outbox to drain after NATS returned", func() (bool, string) {
			n := countLog(t, cons)
			return n == len(want), fmt.Sprintf("%d of %d applied", n, len(want))
		})
		checkLog(t, cons, want)
	})
}

// TestRestartNoLossNoDoubleApply replaces relay and consumer mid-stream,
// forces republishing of sent rows, and publishes a duplicate outside
// JetStream's de-duplication: nothing is lost and nothing applied twice.
func TestRestartNoLossNoDoubleApply(t *testing.T) {
	forEach(t, func(t *testing.T, url string, prod, cons *sqldb.DB) {
		ctx := context.Background()
		_, js := eventstest.Connect(t, url)
		prefix := eventstest.Streams(t, js)
		log := testLogger(t)
		o := events.NewOutbox("customer")
		newConsumer := func() *events.Consumer {
			c, err := events.NewConsumer(events.ConsumerConfig{
				Name: "replica", Streams: customerStream(prefix), DB: cons, JS: js,
				Handler: logHandler("replica"), Logger: log,
			})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		want := map[string]events.Event{}
		writeN := func(from, to int) {
			for i := from; i < to; i++ {
				ev, err := write(ctx, prod, o, []string{"agg-a", "agg-b"}[i%2], i)
				if err != nil {
					t.Fatal(err)
				}
				want[ev.ID] = ev
			}
		}
		stopRelay := run(t, "relay 1", events.NewRelay(prod, js, o, log, fastRelay(prefix)...).Run)
		stopConsumer := run(t, "consumer 1", newConsumer().Run)
		writeN(0, 10)
		waitFor(t, 20*time.Second, "first events", func() (bool, string) {
			n := countLog(t, cons)
			return n == 10, fmt.Sprintf("%d applied", n)
		})
		stopRelay()
		stopConsumer()
		writeN(10, 20)

		// As if the relay had crashed after publishing but before marking:
		// the republished rows are de-duplicated by their message id.
		if _, err := prod.ExecContext(ctx, `UPDATE event_outbox SET sent_at = NULL WHERE pos IN (SELECT pos FROM event_outbox ORDER BY pos LIMIT 3)`); err != nil {
			t.Fatal(err)
		}
		// A duplicate JetStream cannot recognise (published without the id,
		// as after the de-duplication window): the consumer must skip it.
		var first events.Event
		for _, ev := range want {
			if ev.Sequence == 1 && ev.AggregateID == "agg-a" {
				first = ev
			}
		}
		data, _ := json.Marshal(first)
		if _, err := js.Publish(ctx, events.Subject(prefix, first.Type), data); err != nil {
			t.Fatal(err)
		}

		run(t, "relay 2", events.NewRelay(prod, js, o, log, fastRelay(prefix)...).Run)
		c2 := newConsumer()
		run(t, "consumer 2", c2.Run)
		writeN(20, 30)
		// A restarted consumer continues at once: what the stopped one held
		// was handed back, and the ack wait (a second) bounds the rest.
		waitFor(t, 10*time.Second, "every event after the restart", func() (bool, string) {
			n := countLog(t, cons)
			return n == len(want), fmt.Sprintf("%d of %d applied", n, len(want))
		})
		waitFor(t, 10*time.Second, "the duplicate to be consumed", func() (bool, string) {
			return c2.Lag() == 0, fmt.Sprintf("lag %v", c2.Lag())
		})
		checkLog(t, cons, want)
		if got := streamMsgs(t, js, prefix); got != uint64(len(want)+1) {
			t.Errorf("stream holds %d messages, want %d (the republished rows de-duplicated, plus the one manual duplicate)", got, len(want)+1)
		}
	})
}

// TestCrashedConsumerResumesAtOnce kills a consumer's NATS connection
// while it holds a message, so it can neither ack nor nak it (a crash), and
// starts another on its own connection: the message it held is applied
// within about a second (the ack wait), not after tens of seconds.
func TestCrashedConsumerResumesAtOnce(t *testing.T) {
	forEach(t, func(t *testing.T, url string, prod, cons *sqldb.DB) {
		ctx := context.Background()
		_, js := eventstest.Connect(t, url)
		prefix := eventstest.Streams(t, js)
		log := testLogger(t)
		o := events.NewOutbox("customer")
		run(t, "relay", events.NewRelay(prod, js, o, log, fastRelay(prefix)...).Run)

		nc1, js1 := eventstest.Connect(t, url)
		var crashedAt atomic.Int64
		crash := func(ctx context.Context, tx *sqldb.Tx, ev events.Event) error {
			if crashedAt.Load() == 0 {
				crashedAt.Store(time.Now().UnixNano())
				nc1.Close()
			}
			return errors.New("crashed")
		}
		c1, err := events.NewConsumer(events.ConsumerConfig{Name: "replica", Streams: customerStream(prefix), DB: cons, JS: js1, Handler: crash, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		stop1 := run(t, "crashing consumer", c1.Run)
		ev, err := write(ctx, prod, o, "agg-a", 0)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, "the first consumer to crash", func() (bool, string) {
			return crashedAt.Load() != 0, "not yet"
		})
		stop1()

		_, js2 := eventstest.Connect(t, url)
		c2, err := events.NewConsumer(events.ConsumerConfig{Name: "replica", Streams: customerStream(prefix), DB: cons, JS: js2, Handler: logHandler("replica"), Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		run(t, "restarted consumer", c2.Run)
		waitFor(t, 20*time.Second, "the held event applied by the restarted consumer", func() (bool, string) {
			return countLog(t, cons) == 1, "not yet"
		})
		took := time.Since(time.Unix(0, crashedAt.Load()))
		t.Logf("the restarted consumer applied the crashed one's event %v after the crash", took.Round(time.Millisecond))
		// The ack wait is a second; the rest is slack for a loaded machine.
		if took > 4*time.Second {
			t.Errorf("the held event took %v to be applied after the crash, want about a second", took)
		}
		checkLog(t, cons, map[string]events.Event{ev.ID: ev})
	})
}

// TestPoisonedMessageParkedAndReplayed makes the handler fail for one
// event: it is retried, parked, later events go on, and Replay applies it.
func TestPoisonedMessageParkedAndReplayed(t *testing.T) {
	forEach(t, func(t *testing.T, url string, prod, cons *sqldb.DB) {
		ctx := context.Background()
		_, js := eventstest.Connect(t, url)
		prefix := eventstest.Streams(t, js)
		log := testLogger(t)
		o := events.NewOutbox("customer")
		run(t, "relay", events.NewRelay(prod, js, o, log, fastRelay(prefix)...).Run)

		var poisoned atomic.Value
		poisoned.Store("")
		var attempts atomic.Int32
		base := logHandler("replica")
		handler := func(ctx context.Context, tx *sqldb.Tx, ev events.Event) error {
			if ev.ID == poisoned.Load().(string) {
				attempts.Add(1)
				// A partial write must be rolled back with the failure.
				if err := base(ctx, tx, ev); err != nil {
					return err
				}
				return errors.New("poisoned")
			}
			return base(ctx, tx, ev)
		}
		reg := prometheus.NewRegistry()
		c, err := events.NewConsumer(events.ConsumerConfig{
			Name: "replica", Streams: customerStream(prefix), DB: cons, JS: js, Handler: handler, Logger: log,
			MaxDeliver: 3, Backoff: []time.Duration{20 * time.Millisecond, 40 * time.Millisecond}, Registry: reg,
		})
		if err != nil {
			t.Fatal(err)
		}

		// Write the events first so the poisoned id is known before delivery.
		want := map[string]events.Event{}
		var bad events.Event
		for i := range 6 {
			ev, err := write(ctx, prod, o, "agg-a", i)
			if err != nil {
				t.Fatal(err)
			}
			want[ev.ID] = ev
			if i == 2 {
				bad = ev
			}
		}
		poisoned.Store(bad.ID)
		run(t, "consumer", c.Run)

		waitFor(t, 20*time.Second, "the poisoned event parked and the rest applied", func() (bool, string) {
			parked, err := events.ListParked(ctx, cons, "replica")
			if err != nil {
				t.Fatal(err)
			}
			n := countLog(t, cons)
			return len(parked) == 1 && n == 5, fmt.Sprintf("%d parked, %d applied", len(parked), n)
		})
		parked, _ := events.ListParked(ctx, cons, "replica")
		if p := parked[0]; p.EventID != bad.ID || p.Attempts != 3 || p.Error != "poisoned" || p.Consumer != "replica" {
			t.Errorf("parked = %+v", p)
		}
		if got := attempts.Load(); got != 3 {
			t.Errorf("handler tried %d times, want 3 (MaxDeliver)", got)
		}
		if v := metricSum(t, reg, "realguardio_events_parked_total"); v != 1 {
			t.Errorf("parked metric = %v, want 1", v)
		}

		// Later events of its aggregate were applied meanwhile, so the
		// parked event is stale: only the operator's ApplyStale replays it
		// (TestStaleEventsNeverApplied covers the default). Replay while
		// still failing keeps it parked and counts the attempt.
		if err := c.Replay(ctx, bad.ID, events.ApplyStale()); err == nil {
			t.Fatal("replay of a still-failing event succeeded")
		}
		parked, _ = events.ListParked(ctx, cons, "replica")
		if len(parked) != 1 || parked[0].Attempts != 4 {
			t.Fatalf("after a failed replay: %+v", parked)
		}
		poisoned.Store("")
		if err := c.Replay(ctx, bad.ID, events.ApplyStale()); err != nil {
			t.Fatalf("replay: %v", err)
		}
		if parked, _ = events.ListParked(ctx, cons, "replica"); len(parked) != 0 {
			t.Fatalf("still parked after replay: %+v", parked)
		}
		if err := c.Replay(ctx, bad.ID, events.ApplyStale()); !errors.Is(err, events.ErrNotParked) {
			t.Fatalf("second replay: %v, want ErrNotParked", err)
		}
		var n int
		if err := cons.QueryRowContext(ctx, `SELECT COUNT(*) FROM test_log WHERE event_id = ?`, bad.ID).Scan(&n); err != nil || n != 1 {
			t.Fatalf("replayed event applied %d times (%v)", n, err)
		}
	})
}

// TestResetRebuilds replays a stream from the start after Reset, with the
// derived table cleared in the same transaction.
func TestResetRebuilds(t *testing.T) {
	forEach(t, func(t *testing.T, url string, prod, cons *sqldb.DB) {
		ctx := context.Background()
		_, js := eventstest.Connect(t, url)
		prefix := eventstest.Streams(t, js)
		log := testLogger(t)
		o := events.NewOutbox("customer")
		run(t, "relay", events.NewRelay(prod, js, o, log, fastRelay(prefix)...).Run)
		cfg := events.ConsumerConfig{
			Name: "replica", Streams: customerStream(prefix), DB: cons, JS: js, Handler: logHandler("replica"), Logger: log,
			ResetState: func(ctx context.Context, tx *sqldb.Tx) error {
				_, err := tx.ExecContext(ctx, `DELETE FROM test_log`)
				return err
			},
		}
		c, err := events.NewConsumer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]events.Event{}
		for i := range 8 {
			ev, err := write(ctx, prod, o, []string{"agg-a", "agg-b"}[i%2], i)
			if err != nil {
				t.Fatal(err)
			}
			want[ev.ID] = ev
		}
		stop := run(t, "consumer", c.Run)
		waitFor(t, 20*time.Second, "events applied", func() (bool, string) {
			n := countLog(t, cons)
			return n == 8, fmt.Sprintf("%d applied", n)
		})
		stop()
		if err := c.Reset(ctx); err != nil {
			t.Fatal(err)
		}
		if n := countLog(t, cons); n != 0 {
			t.Fatalf("ResetState did not clear the table: %d rows", n)
		}
		run(t, "consumer after reset", c.Run)
		waitFor(t, 20*time.Second, "the rebuild", func() (bool, string) {
			n := countLog(t, cons)
			return n == 8, fmt.Sprintf("%d applied", n)
		})
		checkLog(t, cons, want)
	})
}

func TestAppendRejectsForeignTypes(t *testing.T) {
	forEachStore(t, func(t *testing.T, prod, _ *sqldb.DB) {
		ctx := context.Background()
		o := events.NewOutbox("customer")
		for _, typ := range []string{"dealer.created", "customer.", "customer", ""} {
			err := prod.InTx(ctx, func(tx *sqldb.Tx) error {
				_, err := o.Append(ctx, tx, "customer", "c1", typ, nil)
				return err
			})
			if err == nil {
				t.Errorf("Append accepted type %q for producer customer", typ)
			}
		}
		var ev events.Event
		err := prod.InTx(ctx, func(tx *sqldb.Tx) error {
			var err error
			ev, err = o.Append(ctx, tx, "customer", "c1", "customer.created", map[string]string{"customerId": "c1", "name": "Acme"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if ev.Sequence != 1 || ev.Producer != "customer" || ev.ID == "" || string(ev.Payload) != `{"customerId":"c1","name":"Acme"}` {
			t.Errorf("event = %+v", ev)
		}
	})
}

// metricSum returns the sum of the counter and gauge values of every series
// of the metric name in reg (0 when it has none).
func metricSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// TestResetRefusedWhileAnotherInstanceRuns: while an instance of a
// consumer (here another Consumer value, as in another process) consumes a
// stream, Reset of the same consumer refuses with a *RunningError naming
// it and changes nothing; once that instance stopped (releasing its
// lease), Reset goes through.
func TestResetRefusedWhileAnotherInstanceRuns(t *testing.T) {
	forEach(t, func(t *testing.T, url string, prod, cons *sqldb.DB) {
		ctx := context.Background()
		_, js := eventstest.Connect(t, url)
		prefix := eventstest.Streams(t, js)
		log := testLogger(t)
		o := events.NewOutbox("customer")
		run(t, "relay", events.NewRelay(prod, js, o, log, fastRelay(prefix)...).Run)
		cfg := events.ConsumerConfig{Name: "replica", Streams: customerStream(prefix), DB: cons, JS: js, Handler: logHandler("replica"), Logger: log}
		running, err := events.NewConsumer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		other, err := events.NewConsumer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := write(ctx, prod, o, "agg-a", 0); err != nil {
			t.Fatal(err)
		}
		stop := run(t, "consumer", running.Run)
		waitFor(t, 20*time.Second, "the event applied", func() (bool, string) {
			n := countLog(t, cons)
			return n == 1, fmt.Sprintf("%d applied", n)
		})
		err = other.Reset(ctx)
		var busy *events.RunningError
		if !errors.As(err, &busy) || busy.Stream != customerStream(prefix)[0] ||
			!strings.Contains(err.Error(), "events consumer replica is running: an instance consumes stream "+busy.Stream) {
			t.Fatalf("Reset while another instance runs: %v, want a RunningError", err)
		}
		if _, err := js.Consumer(ctx, customerStream(prefix)[0], "replica"); err != nil {
			t.Errorf("durable after the refused Reset: %v", err)
		}
		if n := countLog(t, cons); n != 1 {
			t.Errorf("%d rows after the refused Reset, want 1", n)
		}
		stop()
		if err := other.Reset(ctx); err != nil {
			t.Fatalf("Reset after the instance stopped: %v", err)
		}
	})
}

// TestFailureInsideABatch writes ten events before the consumer starts, so
// they arrive as one batch, and fails the handler twice on the fourth
// (under Block): the three before it apply, the fourth applies on its third
// attempt, and the six after it wait and then apply; each exactly once and
// in order, nothing lost.
func TestFailureInsideABatch(t *testing.T) {
	forEach(t, func(t *testing.T, url string, prod, cons *sqldb.DB) {
		ctx := context.Background()
		_, js := eventstest.Connect(t, url)
		prefix := eventstest.Streams(t, js)
		log := testLogger(t)
		o := events.NewOutbox("customer")
		want := map[string]events.Event{}
		var bad events.Event
		for i := range 10 {
			ev, err := write(ctx, prod, o, []string{"agg-a", "agg-b"}[i%2], i)
			if err != nil {
				t.Fatal(err)
			}
			want[ev.ID] = ev
			if i == 3 {
				bad = ev
			}
		}
		var attempts atomic.Int32
		base := logHandler("replica")
		handler := func(ctx context.Context, tx *sqldb.Tx, ev events.Event) error {
			if ev.ID == bad.ID && attempts.Add(1) <= 2 {
				return errors.New("transient")
			}
			return base(ctx, tx, ev)
		}
		c, err := events.NewConsumer(events.ConsumerConfig{
			Name: "replica", Streams: customerStream(prefix), DB: cons, JS: js, Handler: handler, Logger: log,
			OnFailure: events.Block, MaxDeliver: 5, Backoff: []time.Duration{20 * time.Millisecond},
		})
		if err != nil {
			t.Fatal(err)
		}
		run(t, "relay", events.NewRelay(prod, js, o, log, fastRelay(prefix)...).Run)
		waitFor(t, 20*time.Second, "the events in the stream", func() (bool, string) {
			s, err := js.Stream(ctx, customerStream(prefix)[0])
			if err != nil {
				return false, err.Error()
			}
			n := s.CachedInfo().State.Msgs
			return n == 10, fmt.Sprintf("%d stored", n)
		})
		run(t, "consumer", c.Run)
		waitFor(t, 20*time.Second, "every event applied", func() (bool, string) {
			n := countLog(t, cons)
			return n == 10, fmt.Sprintf("%d of 10 applied", n)
		})
		checkLog(t, cons, want)
		if got := attempts.Load(); got != 3 {
			t.Errorf("the failing event was tried %d times, want 3", got)
		}
		if err := c.Err(); err != nil {
			t.Errorf("consumer after the failure passed: %v", err)
		}
	})
}

// TestBatchHandler writes ten events before the consumer starts, so they
// arrive as one batch, to a consumer with a BatchHandler: the batch is
// applied in one call with the events in order. The first call fails, and
// the consumer then applies the batch with Handler, one event at a time:
// every event exactly once, nothing lost.
func TestBatchHandler(t *testing.T) {
	forEach(t, func(t *testing.T, url string, prod, cons *sqldb.DB) {
		ctx := context.Background()
		_, js := eventstest.Connect(t, url)
		prefix := eventstest.Streams(t, js)
		log := testLogger(t)
		o := events.NewOutbox("customer")
		want := map[string]events.Event{}
		for i := range 10 {
			ev, err := write(ctx, prod, o, []string{"agg-a", "agg-b"}[i%2], i)
			if err != nil {
				t.Fatal(err)
			}
			want[ev.ID] = ev
		}
		base := logHandler("replica")
		var calls, singles atomic.Int32
		var largest atomic.Int32
		batch := func(ctx context.Context, tx *sqldb.Tx, evs []events.Event) error {
			if calls.Add(1) == 1 {
				return errors.New("transient")
			}
			largest.Store(max(largest.Load(), int32(len(evs))))
			for _, ev := range evs {
				if err := base(ctx, tx, ev); err != nil {
					return err
				}
			}
			return nil
		}
		single := func(ctx context.Context, tx *sqldb.Tx, ev events.Event) error {
			singles.Add(1)
			return base(ctx, tx, ev)
		}
		run(t, "relay", events.NewRelay(prod, js, o, log, fastRelay(prefix)...).Run)
		waitFor(t, 20*time.Second, "the events in the stream", func() (bool, string) {
			s, err := js.Stream(ctx, customerStream(prefix)[0])
			if err != nil {
				return false, err.Error()
			}
			n := s.CachedInfo().State.Msgs
			return n == 10, fmt.Sprintf("%d stored", n)
		})
		c, err := events.NewConsumer(events.ConsumerConfig{
			Name: "replica", Streams: customerStream(prefix), DB: cons, JS: js, Handler: single, BatchHandler: batch,
			Logger: log, OnFailure: events.Block, MaxDeliver: 5, Backoff: []time.Duration{20 * time.Millisecond},
		})
		if err != nil {
			t.Fatal(err)
		}
		run(t, "consumer", c.Run)
		waitFor(t, 20*time.Second, "every event applied", func() (bool, string) {
			n := countLog(t, cons)
			return n == 10, fmt.Sprintf("%d of 10 applied", n)
		})
		checkLog(t, cons, want)
		if calls.Load() < 1 {
			t.Error("the batch handler was never called")
		}
		if got := singles.Load(); got < 1 {
			t.Errorf("after the batch handler failed, Handler applied %d events, want the batch", got)
		}
		// Events written now reach the batch handler again.
		for i := 10; i < 20; i++ {
			ev, err := write(ctx, prod, o, "agg-a", i)
			if err != nil {
				t.Fatal(err)
			}
			want[ev.ID] = ev
		}
		waitFor(t, 20*time.Second, "the later events applied", func() (bool, string) {
			n := countLog(t, cons)
			return n == 20, fmt.Sprintf("%d of 20 applied", n)
		})
		checkLog(t, cons, want)
		if largest.Load() < 1 {
			t.Error("no batch was applied by the batch handler")
		}
		if err := c.Err(); err != nil {
			t.Errorf("consumer: %v", err)
		}
	})
}

// TestStreamCreatedAgain: after a consumer applied events, its stream is
// deleted and created again (numbering from 1 once more); the events
// published on the new stream are applied, not taken for copies of the
// settled ones whose sequences they reuse.
func TestStreamCreatedAgain(t *testing.T) {
	forEach(t, func(t *testing.T, url string, prod, cons *sqldb.DB) {
		ctx := context.Background()
		_, js := eventstest.Connect(t, url)
		prefix := eventstest.Streams(t, js)
		log := testLogger(t)
		o := events.NewOutbox("customer")
		stopRelay := run(t, "relay", events.NewRelay(prod, js, o, log, fastRelay(prefix)...).Run)
		c, err := events.NewConsumer(events.ConsumerConfig{Name: "replica", Streams: customerStream(prefix), DB: cons, JS: js,
			Handler: logHandler("replica"), Logger: log, OnFailure: events.Park})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]events.Event{}
		for i := range 3 {
			ev, err := write(ctx, prod, o, "agg-a", i)
			if err != nil {
				t.Fatal(err)
			}
			want[ev.ID] = ev
		}
		stop := run(t, "consumer", c.Run)
		waitFor(t, 20*time.Second, "the first events applied", func() (bool, string) {
			n := countLog(t, cons)
			return n == 3, fmt.Sprintf("%d applied", n)
		})
		stop()
		stopRelay()
		eventstest.DeleteStreams(t, js, prefix)
		if err := events.EnsureStreams(ctx, js, events.StreamOptions{Prefix: prefix, MaxAge: time.Hour}); err != nil {
			t.Fatal(err)
		}
		run(t, "relay again", events.NewRelay(prod, js, o, log, fastRelay(prefix)...).Run)
		for i := range 2 {
			ev, err := write(ctx, prod, o, "agg-b", i)
			if err != nil {
				t.Fatal(err)
			}
			want[ev.ID] = ev
		}
		run(t, "consumer again", c.Run)
		waitFor(t, 20*time.Second, "the new stream's events applied", func() (bool, string) {
			n := countLog(t, cons)
			return n == 5, fmt.Sprintf("%d of 5 applied", n)
		})
		checkLog(t, cons, want)
	})
}
