package events_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/eventstest"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// TestMeasureLatency measures end-to-end commit-to-applied latency (from
// the producer's commit to the consumer's commit) and throughput through
// the embedded NATS server, on each store. It is a measurement, not a
// check, so it runs only with REALGUARDIO_BENCH=1:
//
//	REALGUARDIO_BENCH=1 REALGUARDIO_TEST_POSTGRES_URL=... go test -run TestMeasureLatency -v ./internal/platform/events/
func TestMeasureLatency(t *testing.T) {
	if os.Getenv("REALGUARDIO_BENCH") != "1" {
		t.Skip("measurement: set REALGUARDIO_BENCH=1 to run")
	}
	url := eventstest.NATS(t)
	forEachStore(t, func(t *testing.T, prod, cons *sqldb.DB) {
		ctx := context.Background()
		_, js := eventstest.Connect(t, url)
		prefix := eventstest.Streams(t, js)
		o := events.NewOutbox("customer")
		run(t, "relay", events.NewRelay(prod, js, o, testLogger(t), events.WithSubjectPrefix(prefix)).Run)

		var mu sync.Mutex
		committed := map[string]time.Time{}
		var latencies []time.Duration
		var lastApplied time.Time
		applied := 0
		base := logHandler("bench")
		c, err := events.NewConsumer(events.ConsumerConfig{
			Name: "bench", Streams: customerStream(prefix), DB: cons, JS: js, Logger: testLogger(t),
			Handler: func(ctx context.Context, tx *sqldb.Tx, ev events.Event) error {
				tx.AfterCommit(func() {
					now := time.Now()
					mu.Lock()
					defer mu.Unlock()
					if at, ok := committed[ev.ID]; ok {
						latencies = append(latencies, now.Sub(at))
					}
					applied++
					lastApplied = now
				})
				return base(ctx, tx, ev)
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		run(t, "consumer", c.Run)

		writeOne := func(agg string, n int) {
			var id string
			err := prod.InTx(ctx, func(tx *sqldb.Tx) error {
				tx.AfterCommit(func() {
					mu.Lock()
					committed[id] = time.Now()
					mu.Unlock()
				})
				ev, err := o.Append(ctx, tx, "customer", agg, "customer.thing_happened", map[string]int{"n": n})
				id = ev.ID
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		waitApplied := func(n int) {
			waitFor(t, 120*time.Second, "events applied", func() (bool, string) {
				mu.Lock()
				defer mu.Unlock()
				return applied >= n, fmt.Sprintf("%d of %d", applied, n)
			})
		}

		// Latency at a moderate, paced rate (100 events/s).
		const paced = 300
		for i := range paced {
			writeOne(fmt.Sprintf("agg-%d", i%10), i)
			time.Sleep(10 * time.Millisecond)
		}
		waitApplied(paced)
		mu.Lock()
		lat := slices.Clone(latencies)
		mu.Unlock()
		slices.Sort(lat)
		pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(float64(len(lat))*p))] }
		t.Logf("%s paced 100/s, %d events: commit-to-applied p50 %v, p99 %v, max %v",
			prod.Dialect(), len(lat), pct(0.50).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond))

		// Throughput: a burst from 4 concurrent writers.
		const writers, perWriter = 4, 500
		start := time.Now()
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perWriter {
					writeOne(fmt.Sprintf("agg-%d", (w*perWriter+i)%10), i)
				}
			}()
		}
		wg.Wait()
		written := time.Since(start)
		waitApplied(paced + writers*perWriter)
		mu.Lock()
		end := lastApplied
		mu.Unlock()
		total := end.Sub(start)
		t.Logf("%s burst of %d events: written at %.0f events/s, applied end to end at %.0f events/s (%v)",
			prod.Dialect(), writers*perWriter, float64(writers*perWriter)/written.Seconds(), float64(writers*perWriter)/total.Seconds(), total.Round(time.Millisecond))
	})
}
