package events_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
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

// hangingJS is a JetStream handle whose asynchronous publishes get no
// acknowledgement while hang is set, as while a stream elects a leader.
type hangingJS struct {
	jetstream.JetStream
	hang atomic.Bool
}

func (h *hangingJS) PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if h.hang.Load() {
		return unansweredFuture{msg}, nil
	}
	return h.JetStream.PublishMsgAsync(msg, opts...)
}

// unansweredFuture is a publish JetStream never acknowledges.
type unansweredFuture struct{ msg *nats.Msg }

func (f unansweredFuture) Ok() <-chan *jetstream.PubAck { return nil }
func (f unansweredFuture) Err() <-chan error            { return nil }
func (f unansweredFuture) Msg() *nats.Msg               { return f.msg }

// TestStalledRelayKeepsItsLease: the relay holding the lease waits for
// acknowledgements longer than the lease lasts (a publish timeout of 10 s
// against the default lease of 3 s). It is alive, so it keeps the lease
// and the standby publishes nothing meanwhile; its readiness says it is
// stalled; once acknowledgements come again the event is published, once.
func TestStalledRelayKeepsItsLease(t *testing.T) {
	ctx := context.Background()
	url := eventstest.NATS(t)
	_, admin := eventstest.Connect(t, url)
	prefix := eventstest.Streams(t, admin)
	log := testLogger(t)
	prod := handles(t, sqldbtest.OpenSQLite(t, allSets...), 3) // relay A, relay B, the writer
	cons := sqldbtest.OpenSQLite(t, allSets...)
	_, jsC := eventstest.Connect(t, url)
	c, err := events.NewConsumer(events.ConsumerConfig{Name: "replica", Streams: customerStream(prefix), DB: cons,
		JS: jsC, Handler: logHandler("replica"), Logger: log, OnFailure: events.Block})
	if err != nil {
		t.Fatal(err)
	}
	run(t, "consumer", c.Run)

	_, jsA := eventstest.Connect(t, url)
	hangA := &hangingJS{JetStream: jsA}
	relayA := events.NewRelay(prod[0], hangA, events.NewOutbox("customer"), log, events.WithSubjectPrefix(prefix),
		events.WithPublishTimeout(10*time.Second))
	run(t, "relay A", relayA.Run)
	o := events.NewOutbox("customer")
	want := map[string]events.Event{}
	writeOne := func(i int) {
		ev, err := write(ctx, prod[2], o, "agg-a", i)
		if err != nil {
			t.Fatal(err)
		}
		want[ev.ID] = ev
	}
	writeOne(0)
	waitFor(t, 20*time.Second, "relay A publishing", func() (bool, string) {
		n := countLog(t, cons)
		return n == 1, fmt.Sprintf("%d of 1 applied", n)
	})
	_, jsB := eventstest.Connect(t, url)
	run(t, "relay B", events.NewRelay(prod[1], jsB, events.NewOutbox("customer"), log, events.WithSubjectPrefix(prefix)).Run)

	hangA.hang.Store(true)
	writeOne(1)
	waitFor(t, 20*time.Second, "relay A to report itself stalled", func() (bool, string) {
		err := relayA.Err()
		return err != nil, "healthy"
	})
	// Relay A has now waited longer than the lease lasts; a standby that
	// had taken the lease over would have published the event by now.
	time.Sleep(2 * time.Second)
	if n := countLog(t, cons); n != 1 {
		t.Fatalf("%d events applied while the lease holder waited for acknowledgements, want 1: the standby took the lease of a live holder", n)
	}
	hangA.hang.Store(false)
	waitFor(t, 30*time.Second, "the event published once acknowledgements come again", func() (bool, string) {
		n := countLog(t, cons)
		return n == 2, fmt.Sprintf("%d of 2 applied", n)
	})
	checkLog(t, cons, want)
	waitFor(t, 10*time.Second, "relay A healthy again", func() (bool, string) {
		err := relayA.Err()
		return err == nil, fmt.Sprint(err)
	})
}

// TestRelayCutOffFromNATSGivesTheLeaseUp runs two relays on one database,
// the lease holder connected to NATS through a proxy that is then cut: it
// still reaches the database, so without the surrender rule it would renew
// its lease for ever while publishing nothing. Events are written all
// along. The holder gives the lease up once publishing has failed for
// twice the lease (the defaults: 3 s lease, 5 s publish timeout), the
// standby publishes, and every event is applied once and in order per
// aggregate. The cut-off relay reports itself failing meanwhile and
// healthy again once the proxy is back, standing by.
func TestRelayCutOffFromNATSGivesTheLeaseUp(t *testing.T) {
	forEach(t, func(t *testing.T, url string, like, cons *sqldb.DB) {
		ctx := context.Background()
		_, admin := eventstest.Connect(t, url)
		prefix := eventstest.Streams(t, admin)
		log := testLogger(t)
		prod := handles(t, like, 3) // relay A, relay B, the writer
		_, jsC := eventstest.Connect(t, url)
		c, err := events.NewConsumer(events.ConsumerConfig{Name: "replica", Streams: customerStream(prefix), DB: cons,
			JS: jsC, Handler: logHandler("replica"), Logger: log, OnFailure: events.Block})
		if err != nil {
			t.Fatal(err)
		}
		run(t, "consumer", c.Run)

		proxy := eventstest.StartProxy(t, url)
		_, jsA := eventstest.Connect(t, proxy.URL())
		relayA := events.NewRelay(prod[0], jsA, events.NewOutbox("customer"), log, events.WithSubjectPrefix(prefix))
		run(t, "relay A", relayA.Run)

		o := events.NewOutbox("customer")
		var mu sync.Mutex
		want := map[string]events.Event{}
		var written []time.Time // commit time of each event, in order
		writeOne := func(i int) {
			ev, err := write(ctx, prod[2], o, []string{"agg-a", "agg-b", "agg-c"}[i%3], i)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			want[ev.ID] = ev
			written = append(written, time.Now())
			mu.Unlock()
		}
		for i := range 30 {
			writeOne(i)
		}
		waitFor(t, 20*time.Second, "relay A publishing", func() (bool, string) {
			n := countLog(t, cons)
			return n == 30, fmt.Sprintf("%d of 30 applied", n)
		})
		_, jsB := eventstest.Connect(t, url)
		relayB := events.NewRelay(prod[1], jsB, events.NewOutbox("customer"), log, events.WithSubjectPrefix(prefix))
		run(t, "relay B", relayB.Run)

		// Events are written every 20 ms while relay A is cut off.
		stopWriting := make(chan struct{})
		writerDone := make(chan struct{})
		var stopOnce sync.Once
		stopWriter := func() { stopOnce.Do(func() { close(stopWriting) }); <-writerDone }
		t.Cleanup(stopWriter) // before the databases close, should the test fail early
		go func() {
			defer close(writerDone)
			for i := 30; ; i++ {
				select {
				case <-stopWriting:
					return
				case <-time.After(20 * time.Millisecond):
				}
				writeOne(i)
			}
		}()
		time.Sleep(200 * time.Millisecond)
		cut := time.Now()
		proxy.Cut()
		mu.Lock()
		before := len(written)
		mu.Unlock()
		waitFor(t, 30*time.Second, "relay B to publish the events written after the cut", func() (bool, string) {
			n := countLog(t, cons)
			return n > before+5, fmt.Sprintf("%d applied, %d written before the cut", n, before)
		})
		t.Logf("relay failover after a cut from NATS: events written after the cut applied %v after it", time.Since(cut).Round(time.Millisecond))
		if err := relayA.Err(); err == nil {
			t.Error("relay A, cut off from NATS, reports itself healthy")
		}
		if err := relayB.Err(); err != nil {
			t.Errorf("relay B: %v", err)
		}
		stopWriter()

		proxy.Restore()
		waitFor(t, 30*time.Second, "relay A healthy again once NATS is reachable", func() (bool, string) {
			err := relayA.Err()
			return err == nil, fmt.Sprint(err)
		})
		mu.Lock()
		total := len(want)
		mu.Unlock()
		waitFor(t, 30*time.Second, "every event applied", func() (bool, string) {
			n := countLog(t, cons)
			return n == total, fmt.Sprintf("%d of %d applied", n, total)
		})
		checkLog(t, cons, want)
	})
}

// TestTimedOutWindowFails: a pipeline window of several events (two
// aggregates) gets no acknowledgement. Once the publish timeout passes the
// whole window fails and is retried (the relay reports publishing failing,
// not a cycle that hangs for ever waiting for the answers of the window's
// later events); once acknowledgements come again, every event is applied
// once and in order.
func TestTimedOutWindowFails(t *testing.T) {
	ctx := context.Background()
	url := eventstest.NATS(t)
	_, admin := eventstest.Connect(t, url)
	prefix := eventstest.Streams(t, admin)
	log := testLogger(t)
	prod := handles(t, sqldbtest.OpenSQLite(t, allSets...), 1)[0]
	cons := sqldbtest.OpenSQLite(t, allSets...)
	_, jsC := eventstest.Connect(t, url)
	c, err := events.NewConsumer(events.ConsumerConfig{Name: "replica", Streams: customerStream(prefix), DB: cons,
		JS: jsC, Handler: logHandler("replica"), Logger: log, OnFailure: events.Block})
	if err != nil {
		t.Fatal(err)
	}
	run(t, "consumer", c.Run)
	_, js := eventstest.Connect(t, url)
	hang := &hangingJS{JetStream: js}
	hang.hang.Store(true)
	o := events.NewOutbox("customer")
	relay := events.NewRelay(prod, hang, o, log, events.WithSubjectPrefix(prefix), events.WithPublishTimeout(300*time.Millisecond))
	want := map[string]events.Event{}
	for i := range 6 {
		ev, err := write(ctx, prod, o, []string{"agg-a", "agg-b"}[i%2], i)
		if err != nil {
			t.Fatal(err)
		}
		want[ev.ID] = ev
	}
	run(t, "relay", relay.Run)
	waitFor(t, 20*time.Second, "the relay to report publishing failing", func() (bool, string) {
		err := relay.Err()
		return err != nil && strings.Contains(err.Error(), "publishing has failed"), fmt.Sprint(err)
	})
	hang.hang.Store(false)
	waitFor(t, 30*time.Second, "every event applied", func() (bool, string) {
		n := countLog(t, cons)
		return n == len(want), fmt.Sprintf("%d of %d applied", n, len(want))
	})
	checkLog(t, cons, want)
}
