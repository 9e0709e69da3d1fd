package sqldb_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

// TestExecRows writes more rows than one statement holds, then upserts
// them again with another name: every row arrives once, across the
// statement boundaries, and the upsert's tail applies to each.
func TestExecRows(t *testing.T) {
	sqldbtest.ForEachStore(t, []sqldb.Migrations{testMigrations}, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		n := 2*sqldb.RowsPerStatement + 7
		rows := func(prefix string) [][]any {
			out := make([][]any, n)
			for i := range out {
				out[i] = []any{fmt.Sprintf("w%04d", i), fmt.Sprintf("%s-%d", prefix, i), int64(i)}
			}
			return out
		}
		head := `INSERT INTO widgets (id, name, created_at) VALUES `
		tail := ` ON CONFLICT (id) DO UPDATE SET name = excluded.name`
		for _, prefix := range []string{"first", "second"} {
			if err := db.InTx(ctx, func(tx *sqldb.Tx) error {
				return sqldb.ExecRows(ctx, tx, head, rows(prefix), tail)
			}); err != nil {
				t.Fatal(err)
			}
			var count, named int
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*), SUM(CASE WHEN name LIKE ? THEN 1 ELSE 0 END) FROM widgets`, prefix+"-%").Scan(&count, &named); err != nil {
				t.Fatal(err)
			}
			if count != n || named != n {
				t.Errorf("after the %s write: %d rows, %d named %s-…, want %d of each", prefix, count, named, prefix, n)
			}
		}
	})
}
