package sqldb_test

import (
	"context"
	"errors"
	"os"
	"testing"
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
