// Package sqldbtest runs repository test suites against every supported
// store: a fresh SQLite file always, and a fresh PostgreSQL database when
// REALGUARDIO_TEST_POSTGRES_URL says where a server is. Under CI=true a
// missing PostgreSQL fails the test instead of skipping it.
package sqldbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// PostgresURLEnv names the variable holding the URL of a PostgreSQL server
// (any database on it) on which tests may create and drop databases.
const PostgresURLEnv = "REALGUARDIO_TEST_POSTGRES_URL"

// ForEachStore runs fn as a subtest named "sqlite" and, when PostgreSQL is
// configured, "postgres", each with a new empty database migrated with sets.
func ForEachStore(t *testing.T, sets []sqldb.Migrations, fn func(t *testing.T, db *sqldb.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		db := OpenSQLite(t, sets...)
		fn(t, db)
	})
	t.Run("postgres", func(t *testing.T) {
		db := OpenPostgres(t, sets...)
		fn(t, db)
	})
}

// OpenSQLite returns a migrated SQLite database in a temporary directory,
// closed when the test ends.
func OpenSQLite(t testing.TB, sets ...sqldb.Migrations) *sqldb.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sqldb.Open(ctx, filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx, sets...); err != nil {
		t.Fatalf("migrate sqlite: %v", err)
	}
	return db
}

// PostgresURL returns a URL of a new, empty PostgreSQL database dropped when
// the test ends. It skips the test when no server is configured, or fails it
// under CI=true, where everything must run.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(PostgresURLEnv)
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set, and CI=true forbids skipping the PostgreSQL tests", PostgresURLEnv)
		}
		t.Skipf("PostgreSQL tests skipped: set %s (for example postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)", PostgresURLEnv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := sqldb.Open(ctx, base)
	if err != nil {
		t.Fatalf("connect to %s: %v", PostgresURLEnv, err)
	}
	defer admin.Close()
	var buf [6]byte
	_, _ = rand.Read(buf[:])
	name := "rgtest_" + strings.ToLower(sanitize(t.Name())) + "_" + hex.EncodeToString(buf[:])
	if len(name) > 63 {
		name = "rgtest_" + hex.EncodeToString(buf[:]) + "_" + strings.ToLower(sanitize(t.Name()))[:40]
	}
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE "`+name+`"`); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := sqldb.Open(ctx, base)
		if err != nil {
			t.Logf("drop test database %s: %v", name, err)
			return
		}
		defer admin.Close()
		if _, err := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", PostgresURLEnv, err)
	}
	u.Path = "/" + name
	return u.String()
}

// OpenPostgres returns a migrated, new PostgreSQL database (see PostgresURL).
func OpenPostgres(t testing.TB, sets ...sqldb.Migrations) *sqldb.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sqldb.Open(ctx, PostgresURL(t))
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx, sets...); err != nil {
		t.Fatalf("migrate postgres: %v", err)
	}
	return db
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		if (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	out := b.String()
	if len(out) > 30 {
		out = out[len(out)-30:]
	}
	return out
}
