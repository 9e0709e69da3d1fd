// Package pagingtest shows how the database runs a query, for the tests
// that prove the organization services' hot queries use their indexes on
// both stores.
package pagingtest

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// Plan returns the plan of query with args written in as literals, one
// line per plan node: EXPLAIN QUERY PLAN on SQLite, EXPLAIN on PostgreSQL.
// On PostgreSQL the plan is taken with sequential scans disabled, because a
// test's tables hold a handful of rows and the planner would rightly scan
// them; what the test asks is whether an index can serve the query.
func Plan(t testing.TB, db *sqldb.DB, query string, args ...any) string {
	t.Helper()
	q := inline(t, query, args)
	ctx := context.Background()
	var lines []string
	err := db.InTx(ctx, func(tx *sqldb.Tx) error {
		lines = nil
		explain := "EXPLAIN QUERY PLAN "
		if db.Dialect() == sqldb.Postgres {
			if _, err := tx.ExecContext(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
				return err
			}
			explain = "EXPLAIN "
		}
		rows, err := tx.QueryContext(ctx, explain+q)
		if err != nil {
			return err
		}
		defer rows.Close()
		cols, err := rows.Columns()
		if err != nil {
			return err
		}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				return err
			}
			// The detail is the last column on SQLite (id, parent,
			// notused, detail) and the only one on PostgreSQL.
			lines = append(lines, fmt.Sprint(vals[len(vals)-1]))
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatalf("explain %s: %v", q, err)
	}
	return strings.Join(lines, "\n")
}

// RequireIndex fails the test unless the plan of query uses index (or one
// of the names separated by "|", for a primary key that SQLite and
// PostgreSQL name differently), and on
// SQLite also when it sorts for the ORDER BY (the index must give the
// order, or a page would cost a sort of every matching row).
func RequireIndex(t testing.TB, db *sqldb.DB, index string, sorted bool, query string, args ...any) {
	t.Helper()
	plan := Plan(t, db, query, args...)
	used := false
	for _, name := range strings.Split(index, "|") {
		used = used || strings.Contains(plan, name)
	}
	if !used {
		t.Errorf("%s: plan does not use %s:\n%s\nquery: %s", db.Dialect(), index, plan, query)
	}
	if sorted && db.Dialect() == sqldb.SQLite && strings.Contains(plan, "TEMP B-TREE FOR ORDER BY") {
		t.Errorf("%s: plan sorts instead of reading %s in order:\n%s", db.Dialect(), index, plan)
	}
}

func inline(t testing.TB, query string, args []any) string {
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r != '?' {
			b.WriteRune(r)
			continue
		}
		if n >= len(args) {
			t.Fatalf("query has more placeholders than the %d arguments", len(args))
		}
		if v := reflect.ValueOf(args[n]); v.Kind() == reflect.String {
			b.WriteString("'" + strings.ReplaceAll(v.String(), "'", "''") + "'")
		} else {
			fmt.Fprint(&b, args[n])
		}
		n++
	}
	if n != len(args) {
		t.Fatalf("query has %d placeholders for %d arguments", n, len(args))
	}
	return b.String()
}

// Recorder is a sqldb.Querier that runs every statement on Q and records
// it, so a test can ask for the plan of exactly the queries a repository
// ran.
type Recorder struct {
	Q       sqldb.Querier
	Queries []Recorded
}

// Recorded is one statement a Recorder ran.
type Recorded struct {
	Query string
	Args  []any
}

// ExecContext records and runs the statement.
func (r *Recorder) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	r.Queries = append(r.Queries, Recorded{q, args})
	return r.Q.ExecContext(ctx, q, args...)
}

// QueryContext records and runs the query.
func (r *Recorder) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	r.Queries = append(r.Queries, Recorded{q, args})
	return r.Q.QueryContext(ctx, q, args...)
}

// QueryRowContext records and runs the query.
func (r *Recorder) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	r.Queries = append(r.Queries, Recorded{q, args})
	return r.Q.QueryRowContext(ctx, q, args...)
}

// Dialect is Q's dialect.
func (r *Recorder) Dialect() sqldb.Dialect { return r.Q.Dialect() }

// Last returns the last statement recorded and forgets all of them.
func (r *Recorder) Last(t testing.TB) Recorded {
	t.Helper()
	if len(r.Queries) == 0 {
		t.Fatal("no statement was recorded")
	}
	last := r.Queries[len(r.Queries)-1]
	r.Queries = nil
	return last
}
