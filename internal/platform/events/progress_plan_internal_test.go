package events

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

// TestProgressQueryLooksUpEachKey checks, on both stores, that a batch's
// read of its aggregates' progress looks each aggregate up by the whole
// primary key, on a table that grew since its statistics were taken (as
// during a rebuild, from empty): PostgreSQL had served the IN list of ids
// from the key's first two columns and filtered every row of the type, so
// every batch of a rebuild cost more than the one before.
func TestProgressQueryLooksUpEachKey(t *testing.T) {
	sqldbtest.ForEachStore(t, []sqldb.Migrations{Migrations()}, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		if db.Dialect() == sqldb.Postgres {
			// Statistics of the empty table, then rows the planner does
			// not know about, as autovacuum leaves them between runs.
			if _, err := db.ExecContext(ctx, `ANALYZE event_consumer_progress`); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, `INSERT INTO event_consumer_progress (consumer, aggregate_type, aggregate_id, last_sequence, last_event_id, updated_at)
				SELECT 'c', 'customer', 'id-' || g, 1, 'e', 0 FROM generate_series(0, 19999) AS g`); err != nil {
				t.Fatal(err)
			}
		} else {
			for start := 0; start < 20000; start += 500 {
				var b strings.Builder
				var args []any
				for i := start; i < start+500; i++ {
					if i > start {
						b.WriteString(", ")
					}
					b.WriteString("('c', 'customer', ?, 1, 'e', 0)")
					args = append(args, fmt.Sprintf("id-%d", i))
				}
				if _, err := db.ExecContext(ctx, `INSERT INTO event_consumer_progress (consumer, aggregate_type, aggregate_id, last_sequence, last_event_id, updated_at) VALUES `+b.String(), args...); err != nil {
					t.Fatal(err)
				}
			}
		}
		ids := make([]any, 170)
		for i := range ids {
			ids[i] = fmt.Sprintf("id-%d", i*97)
		}
		q, args := progressQuery(db.Dialect(), "c", "customer", ids)
		explain := `EXPLAIN QUERY PLAN `
		if db.Dialect() == sqldb.Postgres {
			explain = `EXPLAIN `
		}
		rows, err := db.QueryContext(ctx, explain+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		var plan strings.Builder
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(&plan, vals...)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		p := plan.String()
		var whole bool
		if db.Dialect() == sqldb.Postgres {
			whole = strings.Contains(p, "aggregate_id = ") && strings.Contains(p, "Index Cond") && !strings.Contains(p, "Filter") && !strings.Contains(p, "Hash")
		} else {
			whole = strings.Contains(p, "aggregate_id=?")
		}
		if !whole {
			t.Errorf("the progress query does not look each aggregate up by its whole key:\n%s", p)
		}
		got, err := db.QueryContext(ctx, q, args...)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for got.Next() {
			n++
		}
		got.Close()
		if n != len(ids) {
			t.Errorf("read the progress of %d aggregates, want %d", n, len(ids))
		}
	})
}
