package events_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/eventstest"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

// TestStreamsSurviveLosingTheirLeader runs a three-server NATS cluster of
// its own (nats-server built from the module cache), creates the streams
// with the replica count chosen for the cluster's size (three), and kills
// the server leading the customer stream while events flow: no event is
// lost, none is applied twice, propagation resumes by itself within
// seconds, and whenever propagation has stopped for longer than the grace
// of the relay and the consumer, one of them says so (readiness).
func TestStreamsSurviveLosingTheirLeader(t *testing.T) {
	cl := eventstest.StartCluster(t, 3)
	ctx := context.Background()
	pnc, pjs := eventstest.Connect(t, cl.URL())
	_, cjs := eventstest.Connect(t, cl.URL())

	// The cluster forms and elects its JetStream meta leader in a moment;
	// until then stream creation fails.
	size := 0
	waitFor(t, 30*time.Second, "the cluster to announce three servers", func() (bool, string) {
		size = events.ClusterSize(pnc)
		return size == 3, fmt.Sprintf("%d servers", size)
	})
	if err := events.CheckServerVersion(pnc); err != nil {
		t.Fatal(err)
	}
	prefix := eventstest.Prefix(t)
	replicas := events.DefaultReplicas(size)
	waitFor(t, 60*time.Second, "the streams created with three replicas", func() (bool, string) {
		err := events.EnsureStreams(ctx, pjs, events.StreamOptions{Prefix: prefix, MaxAge: time.Hour, Replicas: replicas})
		return err == nil, fmt.Sprint(err)
	})
	stream := events.StreamName(prefix, events.ProducerCustomer)
	info := streamInfo(t, pjs, stream)
	if info.Config.Replicas != 3 || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream has %d replicas (%d followers), want 3", info.Config.Replicas, len(info.Cluster.Replicas))
	}

	prod, cons := sqldbtest.OpenSQLite(t, allSets...), sqldbtest.OpenSQLite(t, allSets...)
	log := testLogger(t)
	o := events.NewOutbox("customer")
	relay := events.NewRelay(prod, pjs, o, log, fastRelay(prefix)...)
	run(t, "relay", relay.Run)
	c, err := events.NewConsumer(events.ConsumerConfig{
		Name: "replica", Streams: []string{stream}, DB: cons, JS: cjs, Handler: logHandler("replica"), Logger: log,
		OnFailure: events.Block, MaxDeliver: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, "consumer", c.Run)

	// Writers commit events at a steady pace for the whole test.
	var mu sync.Mutex
	want := map[string]events.Event{}
	var written atomic.Int64
	stopWriting := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stopWriting:
				return
			case <-time.After(10 * time.Millisecond):
			}
			ev, err := write(ctx, prod, o, []string{"agg-a", "agg-b"}[i%2], i)
			if err != nil {
				t.Errorf("write: %v", err)
				return
			}
			mu.Lock()
			want[ev.ID] = ev
			mu.Unlock()
			written.Add(1)
		}
	}()
	waitFor(t, 30*time.Second, "events flowing", func() (bool, string) {
		n := countLog(t, cons)
		return n >= 50, fmt.Sprintf("%d applied", n)
	})

	leader := streamInfo(t, pjs, stream).Cluster.Leader
	victim := cl.Index(leader)
	if victim < 0 {
		t.Fatalf("leader %q is none of the cluster's servers", leader)
	}
	killedAt := time.Now()
	cl.Kill(victim)
	t.Logf("killed %s, the leader of %s, with %d events written", leader, stream, written.Load())

	// Watch the consumer while the cluster recovers: every 50 ms, if the
	// count of applied events has not moved for longer than the
	// consumer's graces plus some slack while written events wait,
	// readiness must say it is not following.
	var lastN int
	lastMove := time.Now()
	var sawNotReady bool
	var resumedAfter time.Duration
	deadline := time.Now().Add(30 * time.Second)
	for resumedAfter == 0 || time.Since(killedAt) < resumedAfter+2*time.Second {
		if time.Now().After(deadline) {
			t.Fatalf("propagation did not resume within 30s of losing the leader (applied %d of %d written); consumer: %v", lastN, written.Load(), c.Err())
		}
		n := countLog(t, cons)
		if n != lastN {
			if resumedAfter == 0 && time.Since(lastMove) > 200*time.Millisecond {
				resumedAfter = time.Since(killedAt)
			}
			lastN, lastMove = n, time.Now()
		}
		stuck := time.Since(lastMove)
		readyErr := errors.Join(relay.Err(), c.Err())
		if readyErr != nil {
			sawNotReady = true
		}
		// The bound adds up the consumer's stall bound (5 s without an
		// event settled while events are pending), its consumer info poll
		// (every second, when the pending count may first show) and slack;
		// a stream out of reach is reported sooner (2 s).
		if stuck > 8*time.Second && readyErr == nil && written.Load() > int64(n) {
			t.Fatalf("no event applied for %v while %d written events wait, yet relay and consumer report themselves healthy (progress %+v)",
				stuck, written.Load()-int64(n), c.Progress())
		}
		if resumedAfter == 0 && time.Since(killedAt) > 2*time.Second && stuck < 200*time.Millisecond {
			// Events never stopped for long: the new leader took over at once.
			resumedAfter = time.Since(killedAt)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("propagation resumed %v after the kill (consumer reported not ready meanwhile: %v)", resumedAfter.Round(time.Millisecond), sawNotReady)
	if resumedAfter > 15*time.Second {
		t.Errorf("propagation resumed only %v after losing the leader, want seconds", resumedAfter)
	}

	close(stopWriting)
	wg.Wait()
	total := int(written.Load())
	waitFor(t, 30*time.Second, "every written event applied", func() (bool, string) {
		n := countLog(t, cons)
		return n == total, fmt.Sprintf("%d of %d applied", n, total)
	})
	mu.Lock()
	checkLog(t, cons, want)
	mu.Unlock()
	waitFor(t, 10*time.Second, "the consumer healthy", func() (bool, string) {
		err := c.Err()
		return err == nil, fmt.Sprint(err)
	})
	if newLeader := streamInfo(t, pjs, stream).Cluster.Leader; newLeader == leader || newLeader == "" {
		t.Errorf("stream leader after the kill = %q", newLeader)
	}

	// The killed server returns and catches up; the stream has three
	// current replicas again.
	cl.Start(victim)
	waitFor(t, 30*time.Second, "the returned server to be a current replica", func() (bool, string) {
		info := streamInfo(t, pjs, stream)
		current := 0
		for _, r := range info.Cluster.Replicas {
			if r.Current {
				current++
			}
		}
		return current == 2, fmt.Sprintf("%d current followers", current)
	})
}

func streamInfo(t *testing.T, js jetstream.JetStream, stream string) *jetstream.StreamInfo {
	t.Helper()
	var info *jetstream.StreamInfo
	waitFor(t, 20*time.Second, "stream info of "+stream, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return false, err.Error()
		}
		info = s.CachedInfo()
		return info.Cluster != nil && info.Cluster.Leader != "", "no leader"
	})
	return info
}
