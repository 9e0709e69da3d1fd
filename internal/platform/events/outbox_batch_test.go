package events_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// TestAppendBatch checks that a batch writes the rows single appends
// would: consecutive sequences continuing the aggregate's, the outbox
// order of the batch, the payloads; and that a foreign type refuses the
// whole batch.
func TestAppendBatch(t *testing.T) {
	forEachStore(t, func(t *testing.T, prod, _ *sqldb.DB) {
		ctx := context.Background()
		o := events.NewOutbox("customer")
		if err := prod.InTx(ctx, func(tx *sqldb.Tx) error {
			_, err := o.Append(ctx, tx, "customer", "c1", "customer.created", map[string]string{"n": "first"})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		batch := make([]events.Pending, 1203) // more than one multi-row insert
		for i := range batch {
			batch[i] = events.Pending{Type: "customer.location_created", Payload: map[string]int{"i": i}}
		}
		var evs []events.Event
		if err := prod.InTx(ctx, func(tx *sqldb.Tx) error {
			var err error
			evs, err = o.AppendBatch(ctx, tx, "customer", "c1", batch)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if len(evs) != len(batch) || evs[0].Sequence != 2 || evs[len(evs)-1].Sequence != int64(len(batch)+1) {
			t.Fatalf("sequences %d..%d of %d events", evs[0].Sequence, evs[len(evs)-1].Sequence, len(evs))
		}
		rows, err := prod.QueryContext(ctx, `SELECT id, sequence, payload FROM event_outbox WHERE event_type = ? ORDER BY pos`, "customer.location_created")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		i := 0
		for rows.Next() {
			var id, payload string
			var seq int64
			if err := rows.Scan(&id, &seq, &payload); err != nil {
				t.Fatal(err)
			}
			if id != evs[i].ID || seq != evs[i].Sequence || payload != fmt.Sprintf(`{"i":%d}`, i) {
				t.Fatalf("row %d = %s %d %s; want %+v", i, id, seq, payload, evs[i])
			}
			i++
		}
		if i != len(batch) {
			t.Fatalf("%d rows, want %d", i, len(batch))
		}
		// The next single append continues the sequence.
		var next events.Event
		if err := prod.InTx(ctx, func(tx *sqldb.Tx) error {
			var err error
			next, err = o.Append(ctx, tx, "customer", "c1", "customer.team_created", nil)
			return err
		}); err != nil || next.Sequence != int64(len(batch)+2) {
			t.Fatalf("next sequence %d, %v", next.Sequence, err)
		}
		err = prod.InTx(ctx, func(tx *sqldb.Tx) error {
			_, err := o.AppendBatch(ctx, tx, "customer", "c1", []events.Pending{{Type: "customer.x"}, {Type: "dealer.created"}})
			return err
		})
		if err == nil {
			t.Fatal("a batch with a foreign type was accepted")
		}
	})
}

// TestAppendMany checks the multi-aggregate batch: every aggregate's
// events continue its own sequence in batch order (an aggregate with
// earlier events, aggregates new to the outbox, one aggregate's events
// interleaved with others', more aggregates and events than one
// statement takes), the outbox keeps the batch order, the next single
// append continues each sequence, and a bad item refuses the whole batch.
func TestAppendMany(t *testing.T) {
	forEachStore(t, func(t *testing.T, prod, _ *sqldb.DB) {
		ctx := context.Background()
		o := events.NewOutbox("securitysystem")
		if err := prod.InTx(ctx, func(tx *sqldb.Tx) error {
			for range 3 {
				if _, err := o.Append(ctx, tx, "securitysystem", "old", "securitysystem.armed", nil); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		// 1 203 new aggregates of one event each, and "old" and "twice"
		// every 400th item.
		var batch []events.AggregatePending
		want := map[string]int64{}
		var wantSeq []int64
		for i := range 1203 {
			id := fmt.Sprintf("s%04d", i)
			batch = append(batch, events.AggregatePending{AggregateType: "securitysystem", AggregateID: id, Type: "securitysystem.created", Payload: map[string]int{"i": i}})
			want[id]++
			wantSeq = append(wantSeq, want[id])
			if i%400 == 0 {
				for _, id := range []string{"old", "twice"} {
					batch = append(batch, events.AggregatePending{AggregateType: "securitysystem", AggregateID: id, Type: "securitysystem.armed", Payload: map[string]int{"i": i}})
					if want[id] == 0 && id == "old" {
						want[id] = 3
					}
					want[id]++
					wantSeq = append(wantSeq, want[id])
				}
			}
		}
		var evs []events.Event
		if err := prod.InTx(ctx, func(tx *sqldb.Tx) error {
			var err error
			evs, err = o.AppendMany(ctx, tx, batch)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if len(evs) != len(batch) {
			t.Fatalf("%d events of %d", len(evs), len(batch))
		}
		for i, ev := range evs {
			if ev.AggregateID != batch[i].AggregateID || ev.Sequence != wantSeq[i] || ev.Producer != "securitysystem" {
				t.Fatalf("event %d = %s #%d; want %s #%d", i, ev.AggregateID, ev.Sequence, batch[i].AggregateID, wantSeq[i])
			}
		}
		rows, err := prod.QueryContext(ctx, `SELECT id, aggregate_id, sequence, payload FROM event_outbox WHERE aggregate_id <> 'old' OR sequence > 3 ORDER BY pos`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		i := 0
		for rows.Next() {
			var id, agg, payload string
			var seq int64
			if err := rows.Scan(&id, &agg, &seq, &payload); err != nil {
				t.Fatal(err)
			}
			if id != evs[i].ID || agg != evs[i].AggregateID || seq != evs[i].Sequence || payload != string(evs[i].Payload) {
				t.Fatalf("row %d = %s %s %d %s; want %+v", i, id, agg, seq, payload, evs[i])
			}
			i++
		}
		if i != len(batch) {
			t.Fatalf("%d rows, want %d", i, len(batch))
		}
		for id, last := range map[string]int64{"old": want["old"], "twice": want["twice"], "s0007": 1} {
			var next events.Event
			if err := prod.InTx(ctx, func(tx *sqldb.Tx) error {
				var err error
				next, err = o.Append(ctx, tx, "securitysystem", id, "securitysystem.disarmed", nil)
				return err
			}); err != nil || next.Sequence != last+1 {
				t.Fatalf("%s: next sequence %d, want %d (%v)", id, next.Sequence, last+1, err)
			}
		}
		for _, bad := range [][]events.AggregatePending{
			{{AggregateType: "securitysystem", AggregateID: "x", Type: "securitysystem.created"}, {AggregateType: "securitysystem", AggregateID: "y", Type: "dealer.created"}},
			{{AggregateType: "securitysystem", AggregateID: "", Type: "securitysystem.created"}},
		} {
			err := prod.InTx(ctx, func(tx *sqldb.Tx) error {
				_, err := o.AppendMany(ctx, tx, bad)
				return err
			})
			if err == nil {
				t.Fatalf("a bad batch was accepted: %+v", bad)
			}
		}
		var n int
		if err := prod.QueryRowContext(ctx, `SELECT count(*) FROM event_outbox WHERE aggregate_id IN ('x', 'y')`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d rows of a refused batch (%v)", n, err)
		}
	})
}
