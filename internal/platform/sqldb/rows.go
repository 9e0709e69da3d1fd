package sqldb

import (
	"context"
	"strings"
)

// RowsPerStatement is how many value tuples ExecRows puts in one
// statement: with a handful of columns it stays far below SQLite's bound
// of 32 766 parameters and PostgreSQL's 65 535, and it is large enough
// that a batch of 500 events is a few statements per table.
const RowsPerStatement = 200

// ExecRows runs head, the rows' value tuples ("(?, ?), (?, ?)") and tail,
// in statements of at most RowsPerStatement rows: the multi-row INSERT or
// upsert with which a batch writes many rows in a few round trips. Every
// row has as many values as the first. The rows' keys must be distinct
// when tail is an ON CONFLICT ... DO UPDATE: PostgreSQL refuses to update
// a row twice in one statement.
func ExecRows(ctx context.Context, tx *Tx, head string, rows [][]any, tail string) error {
	for start := 0; start < len(rows); start += RowsPerStatement {
		part := rows[start:min(start+RowsPerStatement, len(rows))]
		var q strings.Builder
		q.WriteString(head)
		tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(part[0])), ", ") + ")"
		args := make([]any, 0, len(part)*len(part[0]))
		for i, r := range part {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString(tuple)
			args = append(args, r...)
		}
		q.WriteString(tail)
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return err
		}
	}
	return nil
}
