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
