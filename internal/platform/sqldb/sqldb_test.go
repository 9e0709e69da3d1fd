package sqldb_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"testing/fstest"
	"time"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

var testMigrations = sqldb.Migrations{Set: "test", FS: os.DirFS("testdata/migrations")}

func TestRebind(t *testing.T) {
	got := sqldb.Rebind(sqldb.Postgres, `SELECT ? , '?' FROM t WHERE a = ? AND b = ?`)
	want := `SELECT $1 , '?' FROM t WHERE a = $2 AND b = $3`
	if got != want {
		t.Fatalf("Rebind = %q, want %q", got, want)
	}
	if s := sqldb.Rebind(sqldb.SQLite, "a = ?"); s != "a = ?" {
		t.Fatalf("sqlite rebind changed the query: %q", s)
	}
}

func TestStore(t *testing.T) {
	sqldbtest.ForEachStore(t, []sqldb.Migrations{testMigrations}, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		// Migrating again is a no-op.
		if err := db.Migrate(ctx, testMigrations); err != nil {
			t.Fatalf("second migrate: %v", err)
		}
		now := time.Now().Truncate(time.Microsecond).UTC()
		committed := false
		err := db.InTx(ctx, func(tx *sqldb.Tx) error {
			tx.AfterCommit(func() { committed = true })
			_, err := tx.ExecContext(ctx, `INSERT INTO widgets (id, name, created_at) VALUES (?, ?, ?)`, "w1", "one", sqldb.Micros(now))
			return err
		})
		if err != nil || !committed {
			t.Fatalf("insert: err=%v committed=%v", err, committed)
		}
		// A failing transaction rolls back and does not run its hooks.
		rolledBack := errors.New("boom")
		ran := false
		err = db.InTx(ctx, func(tx *sqldb.Tx) error {
			tx.AfterCommit(func() { ran = true })
			if _, err := tx.ExecContext(ctx, `INSERT INTO widgets (id, name, created_at) VALUES (?, ?, ?)`, "w2", "two", 0); err != nil {
				return err
			}
			return rolledBack
		})
		if !errors.Is(err, rolledBack) || ran {
			t.Fatalf("rollback: err=%v hook ran=%v", err, ran)
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM widgets`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("count = %d, %v; want 1", n, err)
		}
		_, err = db.ExecContext(ctx, `INSERT INTO widgets (id, name, created_at) VALUES (?, ?, ?)`, "w3", "one", 0)
		if !sqldb.IsUniqueViolation(err) {
			t.Fatalf("duplicate name: got %v, want a unique violation", err)
		}
		var at int64
		if err := db.QueryRowContext(ctx, `SELECT created_at FROM widgets WHERE id = ?`, "w1").Scan(&at); err != nil {
			t.Fatal(err)
		}
		if !sqldb.FromMicros(at).Equal(now) {
			t.Fatalf("time round trip: %v != %v", sqldb.FromMicros(at), now)
		}
		// The engine-specific migration ran.
		var id int64
		if err := db.QueryRowContext(ctx, `INSERT INTO counters (label) VALUES (?) RETURNING n`, "x").Scan(&id); err != nil || id != 1 {
			t.Fatalf("engine-specific migration: id=%d err=%v", id, err)
		}
	})
}

func TestMigrationsRejectGaps(t *testing.T) {
	db := sqldbtest.OpenSQLite(t)
	bad := sqldb.Migrations{Set: "gap", FS: os.DirFS("testdata"), Dir: "gap"}
	if err := os.MkdirAll("testdata/gap", 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll("testdata/gap") })
	if err := os.WriteFile("testdata/gap/0002_late.sql", []byte("CREATE TABLE x (a TEXT);"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(context.Background(), bad); err == nil {
		t.Fatal("a migration set starting at 0002 was accepted")
	}
}

// TestConcurrentMigrationsOnPostgres: instances of a service starting at
// once on one PostgreSQL database (each its own pool, as separate
// processes) all migrate without error, and every migration is applied
// once. Without the advisory lock the second instance ran the same DDL and
// failed with "relation ... already exists".
func TestConcurrentMigrationsOnPostgres(t *testing.T) {
	url := sqldbtest.PostgresURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Many small migrations of plain DDL, as the services' are: each
	// instance would find the same version and run the same statements.
	files := fstest.MapFS{}
	for i := 1; i <= 12; i++ {
		files[fmt.Sprintf("%04d_t%d.sql", i, i)] = &fstest.MapFile{Data: []byte(fmt.Sprintf("CREATE TABLE t%d (id TEXT PRIMARY KEY, name TEXT);\nCREATE INDEX t%d_name ON t%d (name);\n", i, i, i))}
	}
	set := sqldb.Migrations{Set: "concurrent", FS: files}
	const n = 6
	errs := make(chan error, n)
	for range n {
		go func() {
			db, err := sqldb.Open(ctx, url)
			if err != nil {
				errs <- err
				return
			}
			defer db.Close()
			errs <- db.Migrate(ctx, set)
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("concurrent migrate: %v", err)
		}
	}
	db, err := sqldb.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows, distinct int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations WHERE migration_set = ?`, set.Set).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != 12 || distinct != 12 {
		t.Errorf("schema_migrations holds %d rows for %d versions", rows, distinct)
	}
}
