package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/eventstest"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

// BenchmarkConsumerApply measures how many events per second one consumer
// applies from a stream already holding them (a replica catching up or
// being rebuilt), with a handler that inserts one row per event, on each
// store. (The tests' logHandler also reads MAX(ord) of a growing table,
// which would measure that scan rather than the consumer.) Run it with
//
//	go test -run '^$' -bench BenchmarkConsumerApply -benchtime 2000x ./internal/platform/events
//
// and read events/s.
func BenchmarkConsumerApply(b *testing.B) {
	for _, store := range []string{"sqlite", "postgres"} {
		b.Run(store, func(b *testing.B) {
			var db *sqldb.DB
			if store == "sqlite" {
				db = sqldbtest.OpenSQLite(b, allSets...)
			} else {
				db = sqldbtest.OpenPostgres(b, allSets...)
			}
			ctx := context.Background()
			_, js := eventstest.Connect(b, eventstest.NATS(b))
			prefix := eventstest.Streams(b, js)
			aggregates := 50
			seq := map[string]int64{}
			for i := range b.N {
				agg := fmt.Sprintf("agg-%d", i%aggregates)
				seq[agg]++
				data, _ := json.Marshal(events.Event{ID: uuid.NewString(), Type: "customer.thing_happened", AggregateType: "customer",
					AggregateID: agg, Sequence: seq[agg], OccurredAt: time.Now().UTC(), Producer: "customer", Payload: json.RawMessage(`{}`)})
				if _, err := js.PublishAsync(events.Subject(prefix, "customer.thing_happened"), data); err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(time.Minute):
				b.Fatal("publishing did not complete")
			}
			done := make(chan struct{})
			var applied int
			var ord atomic.Int64
			handler := func(ctx context.Context, tx *sqldb.Tx, ev events.Event) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO test_log (ord, consumer, event_id, aggregate_id, sequence) VALUES (?, ?, ?, ?, ?)`,
					ord.Add(1), "bench", ev.ID, ev.AggregateID, ev.Sequence); err != nil {
					return err
				}
				tx.AfterCommit(func() {
					applied++
					if applied == b.N {
						close(done)
					}
				})
				return nil
			}
			c, err := events.NewConsumer(events.ConsumerConfig{Name: "bench", Streams: customerStream(prefix), DB: db, JS: js,
				Handler: handler, OnFailure: events.Block})
			if err != nil {
				b.Fatal(err)
			}
			runCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			b.ResetTimer()
			start := time.Now()
			go func() { _ = c.Run(runCtx) }()
			select {
			case <-done:
			case <-time.After(10 * time.Minute):
				b.Fatalf("applied %d of %d", applied, b.N)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}
