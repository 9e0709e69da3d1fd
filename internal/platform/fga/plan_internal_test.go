package fga

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadPlansUseUserIndex shows, with EXPLAIN QUERY PLAN on the embedded
// SQLite datastore, that OpenFGA's Read of a user's tuples (the query its
// SQLite datastore builds, with and without a relation) reads
// idx_reverse_lookup_user, the user's own tuples, and a Check's lookup by
// object its object index: never idx_store_ulid, which walks every tuple
// of the store in ulid order. Without the seeded planner statistics
// (seedPlannerStats) SQLite chose idx_store_ulid for both Reads, so every
// Read cost the whole store.
func TestReadPlansUseUserIndex(t *testing.T) {
	dir := t.TempDir()
	ds, err := openDatastore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, dbFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const cols = `SELECT store, object_type, object_id, relation, user_object_type, user_object_id, user_relation, condition_name, condition_context, ulid, inserted_at FROM tuple `
	for _, c := range []struct {
		name, index, query string
		args               []any
	}{
		{"read of a user's tuples of a type and relation", "idx_reverse_lookup_user",
			cols + `WHERE store = ? AND object_type = ? AND relation = ? AND user_object_type = ? AND user_object_id = ? ORDER BY ulid LIMIT 51`,
			[]any{"s", "location", "viewer", "user", "u"}},
		{"read of a user's tuples of a type", "idx_reverse_lookup_user",
			cols + `WHERE store = ? AND object_type = ? AND user_object_type = ? AND user_object_id = ? ORDER BY ulid LIMIT 51`,
			[]any{"s", "customer", "user", "u"}},
		{"read of an object's tuples", "sqlite_autoindex_tuple_1|idx_tuple_partial",
			cols + `WHERE store = ? AND object_type = ? AND object_id = ? ORDER BY ulid LIMIT 51`,
			[]any{"s", "location", "l"}},
	} {
		rows, err := db.Query(`EXPLAIN QUERY PLAN `+c.query, c.args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan strings.Builder
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan.WriteString(detail + "\n")
		}
		rows.Close()
		ok := false
		for _, idx := range strings.Split(c.index, "|") {
			ok = ok || strings.Contains(plan.String(), idx)
		}
		if !ok || strings.Contains(plan.String(), "idx_store_ulid") {
			t.Errorf("%s: plan does not use %s:\n%s", c.name, c.index, plan.String())
		}
	}
}
