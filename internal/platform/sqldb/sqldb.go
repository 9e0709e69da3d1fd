// Package sqldb is the persistence layer every RealGuardIO service shares:
// one *DB over SQLite (pure Go, the embedded default, one file per service)
// or PostgreSQL (production), numbered migrations embedded in each service
// and applied at start, and transactions owned by the repository.
//
// Queries are written once with '?' placeholders in the SQL both engines
// understand; DB rebinds them to $n for PostgreSQL. Portable types only:
// TEXT for ids, strings and JSON, BIGINT for integers and instants (Unix
// microseconds), INTEGER 0/1 for booleans. A migration that must differ per
// engine ships as NNNN_name.sqlite.sql and NNNN_name.postgres.sql.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/realguardio/realguardio/internal/platform/fsperm"
)

// Dialect names the SQL engine behind a DB.
type Dialect string

// The supported engines.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is a database handle that knows its dialect.
type DB struct {
	sql     *sql.DB
	dialect Dialect
	url     string
}

// Querier is what both *DB and *Tx offer, so repository code can run the
// same statements inside or outside a transaction.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	Dialect() Dialect
}

// Open connects to url: "postgres://..." or "postgresql://..." selects
// PostgreSQL; "sqlite:PATH", "file:PATH" or a plain path selects SQLite, whose
// parent directory is created. The connection is verified before returning.
func Open(ctx context.Context, rawURL string) (*DB, error) {
	switch {
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		db, err := sql.Open("pgx", rawURL)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		db.SetMaxOpenConns(20)
		db.SetMaxIdleConns(10)
		db.SetConnMaxIdleTime(5 * time.Minute)
		if err := pingRetry(ctx, db); err != nil {
			db.Close()
			return nil, fmt.Errorf("connect to postgres %s: %w", Redact(rawURL), err)
		}
		return &DB{sql: db, dialect: Postgres, url: rawURL}, nil
	case rawURL == "":
		return nil, errors.New("database URL is empty")
	default:
		path := strings.TrimPrefix(strings.TrimPrefix(rawURL, "sqlite:"), "file:")
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
		if path != ":memory:" {
			if err := sealSQLite(path); err != nil {
				return nil, err
			}
		}
		// WAL lets readers proceed during a write; busy_timeout makes
		// concurrent writers wait instead of failing; _txlock=immediate takes
		// the write lock at BEGIN so two transactions never deadlock while
		// upgrading from read to write. temp_store(MEMORY) keeps the
		// statement journals of multi-row statements in a transaction (an
		// events consumer's batch, a replica's upserts) in memory: on disk
		// every such statement wrote its pages to a temporary file, 7 % of
		// a rebuild's CPU time. cache_size (16 MB a connection, allocated
		// as pages are read) and wal_autocheckpoint (8 000 pages, 32 MB of
		// WAL) serve the same rebuilds: with 2 MB the growing indexes'
		// pages were evicted and read again, and a checkpoint every 1 000
		// pages copied the same hot pages to the database file again and
		// again (docs/events.md, "Rebuild speed").
		dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_pragma=temp_store(MEMORY)&_pragma=cache_size(-16000)&_pragma=wal_autocheckpoint(8000)&_txlock=immediate"
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
		if path == ":memory:" {
			db.SetMaxOpenConns(1)
		} else {
			db.SetMaxOpenConns(8)
		}
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
		if path != ":memory:" {
			// SQLite gives the -wal and -shm files it just created the
			// database file's mode; check them anyway.
			if err := sealSQLite(path); err != nil {
				db.Close()
				return nil, err
			}
		}
		return &DB{sql: db, dialect: SQLite, url: rawURL}, nil
	}
}

// sealSQLite makes a SQLite database private: its directory 0700 (created
// when missing), the database file created 0600 before SQLite opens it, so
// no umask widens it, and the file and its -wal and -shm companions 0600
// whatever modes they had. The file holds password hashes and signing
// keys.
func sealSQLite(path string) error {
	if err := fsperm.Dir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("database %s: %w", path, err)
	}
	if err := fsperm.CreateFile(path); err != nil {
		return fmt.Errorf("database %s: %w", path, err)
	}
	for _, f := range []string{path + "-wal", path + "-shm", path + "-journal"} {
		if err := fsperm.File(f); err != nil {
			return fmt.Errorf("database %s: %w", path, err)
		}
	}
	return nil
}

func pingRetry(ctx context.Context, db *sql.DB) error {
	var err error
	for i := 0; i < 5; i++ {
		if err = db.PingContext(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(i+1) * 200 * time.Millisecond):
		}
	}
	return err
}

// Redact hides the password of a database URL for logs and errors.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return rawURL
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Dialect returns the engine behind db.
func (db *DB) Dialect() Dialect { return db.dialect }

// SQL returns the underlying *sql.DB for the rare caller that needs it.
func (db *DB) SQL() *sql.DB { return db.sql }

// Close closes the pool.
func (db *DB) Close() error { return db.sql.Close() }

// Ping checks the connection; it is the readiness check of a service's store.
func (db *DB) Ping(ctx context.Context) error { return db.sql.PingContext(ctx) }

// ExecContext runs a statement written with '?' placeholders.
func (db *DB) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return db.sql.ExecContext(ctx, Rebind(db.dialect, q), args...)
}

// QueryContext runs a query written with '?' placeholders.
func (db *DB) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return db.sql.QueryContext(ctx, Rebind(db.dialect, q), args...)
}

// QueryRowContext runs a single-row query written with '?' placeholders.
func (db *DB) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return db.sql.QueryRowContext(ctx, Rebind(db.dialect, q), args...)
}

// Tx is a transaction that rebinds placeholders like DB. AfterCommit hooks
// run only once the commit succeeded, which is how an outbox wakes its relay
// without ever publishing from inside the transaction.
type Tx struct {
	tx          *sql.Tx
	dialect     Dialect
	afterCommit []func()
}

// Dialect returns the engine behind the transaction.
func (tx *Tx) Dialect() Dialect { return tx.dialect }

// ExecContext runs a statement written with '?' placeholders.
func (tx *Tx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return tx.tx.ExecContext(ctx, Rebind(tx.dialect, q), args...)
}

// QueryContext runs a query written with '?' placeholders.
func (tx *Tx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return tx.tx.QueryContext(ctx, Rebind(tx.dialect, q), args...)
}

// QueryRowContext runs a single-row query written with '?' placeholders.
func (tx *Tx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return tx.tx.QueryRowContext(ctx, Rebind(tx.dialect, q), args...)
}

// AfterCommit registers f to run after a successful commit.
func (tx *Tx) AfterCommit(f func()) { tx.afterCommit = append(tx.afterCommit, f) }

// InTx runs fn in a transaction, committing when fn returns nil and rolling
// back otherwise (also on panic). PostgreSQL serialization failures and
// SQLite busy errors are retried a few times, so callers see them only when
// contention persists.
func (db *DB) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	_, end := db.traceTx(ctx)
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = db.inTxOnce(ctx, fn)
		if err == nil || !retryable(err) {
			end(attempt+1, err)
			return err
		}
		select {
		case <-ctx.Done():
			end(attempt+1, err)
			return err
		case <-time.After(time.Duration(attempt+1) * 10 * time.Millisecond):
		}
	}
	end(5, err)
	return err
}

func (db *DB) inTxOnce(ctx context.Context, fn func(tx *Tx) error) (err error) {
	stx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	tx := &Tx{tx: stx, dialect: db.dialect}
	defer func() {
		if p := recover(); p != nil {
			_ = stx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		_ = stx.Rollback()
		return err
	}
	if err := stx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	for _, f := range tx.afterCommit {
		f()
	}
	return nil
}

func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		code := sqErr.Code() & 0xff
		return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
	}
	return false
}

// IsUniqueViolation reports whether err is a unique or primary-key
// constraint violation on either engine, so repositories can turn it into a
// Conflict without parsing messages.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		c := sqErr.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// Rebind rewrites '?' placeholders to $1, $2, ... for PostgreSQL. Question
// marks inside single-quoted literals are left alone.
func Rebind(d Dialect, q string) string {
	if d != Postgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	inQuote := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			inQuote = !inQuote
			b.WriteByte(c)
		case c == '?' && !inQuote:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Micros converts t to the Unix-microsecond integer stored in the database.
func Micros(t time.Time) int64 { return t.UnixMicro() }

// FromMicros converts a stored Unix-microsecond integer back to UTC time.
func FromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// Bool converts b to the 0/1 integer stored in the database.
func Bool(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
