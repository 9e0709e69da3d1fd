package sqldb

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Migrations is one named, ordered set of schema migrations, embedded in the
// package that owns the tables. A service applies its own set plus the sets
// of the shared components it uses (the outbox, the consumer bookkeeping).
type Migrations struct {
	// Set names the migration set; versions are tracked per set.
	Set string
	// FS holds the files NNNN_name.sql, or NNNN_name.sqlite.sql and
	// NNNN_name.postgres.sql where the engines need different SQL.
	FS fs.FS
	// Dir is the directory inside FS, "." when the files are at its root.
	Dir string
}

var migrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+?)(?:\.(sqlite|postgres))?\.sql$`)

type migration struct {
	version int
	name    string
	sql     string
}

func (m Migrations) load(d Dialect) ([]migration, error) {
	dir := m.Dir
	if dir == "" {
		dir = "."
	}
	entries, err := fs.ReadDir(m.FS, dir)
	if err != nil {
		return nil, fmt.Errorf("migrations %s: %w", m.Set, err)
	}
	generic := map[int]migration{}
	specific := map[int]migration{}
	for _, e := range entries {
		match := migrationName.FindStringSubmatch(e.Name())
		if match == nil {
			if strings.HasSuffix(e.Name(), ".sql") {
				return nil, fmt.Errorf("migrations %s: file %s is not named NNNN_name[.sqlite|.postgres].sql", m.Set, e.Name())
			}
			continue
		}
		v, _ := strconv.Atoi(match[1])
		engine := match[3]
		if engine != "" && engine != string(d) {
			continue
		}
		body, err := fs.ReadFile(m.FS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("migrations %s: %w", m.Set, err)
		}
		target := generic
		if engine != "" {
			target = specific
		}
		if _, dup := target[v]; dup {
			return nil, fmt.Errorf("migrations %s: version %04d defined twice", m.Set, v)
		}
		target[v] = migration{version: v, name: match[2], sql: string(body)}
	}
	byVersion := generic
	for v, mg := range specific {
		byVersion[v] = mg // an engine-specific file replaces the generic one
	}
	out := make([]migration, 0, len(byVersion))
	for _, mg := range byVersion {
		out = append(out, mg)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, mg := range out {
		if mg.version != i+1 {
			return nil, fmt.Errorf("migrations %s: expected version %04d, found %04d (versions must be 1, 2, 3, ...)", m.Set, i+1, mg.version)
		}
	}
	return out, nil
}

// migrateLockKey is the PostgreSQL advisory lock that serializes
// migrations of one database across processes.
const migrateLockKey int64 = 0x7265616c677561 // "realgua"

// Migrate applies every migration of each set that the database has not
// applied yet, each in its own transaction together with its bookkeeping
// row, so a failed migration leaves the schema at the previous version.
//
// On PostgreSQL it first takes a session advisory lock on a connection of
// its own, held until it is done: instances of a service starting together
// (two replicas of a deployment) would otherwise both read the same
// version and both run its DDL, and the second fails ("relation ...
// already exists"), which the fault suite hit. SQLite serializes writers
// by itself, and `up` runs one process per data directory.
func (db *DB) Migrate(ctx context.Context, sets ...Migrations) error {
	if db.dialect == Postgres {
		conn, err := db.sql.Conn(ctx)
		if err != nil {
			return fmt.Errorf("migrations: %w", err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrateLockKey); err != nil {
			return fmt.Errorf("migrations: take the migration lock: %w", err)
		}
		defer func() {
			// A failed unlock ends with the connection: Close discards
			// a connection whose context ended, and the server drops
			// a session's locks with it.
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrateLockKey)
		}()
	}
	return db.migrate(ctx, sets)
}

func (db *DB) migrate(ctx context.Context, sets []Migrations) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		migration_set TEXT NOT NULL,
		version BIGINT NOT NULL,
		name TEXT NOT NULL,
		PRIMARY KEY (migration_set, version))`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for _, set := range sets {
		migs, err := set.load(db.dialect)
		if err != nil {
			return err
		}
		var current int
		if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE migration_set = ?`, set.Set).Scan(&current); err != nil {
			return fmt.Errorf("read schema version of %s: %w", set.Set, err)
		}
		if current > len(migs) {
			return fmt.Errorf("database has %s schema version %d but this binary knows only %d: refusing to run an older binary on a newer schema", set.Set, current, len(migs))
		}
		for _, mg := range migs[current:] {
			err := db.InTx(ctx, func(tx *Tx) error {
				for _, stmt := range splitStatements(mg.sql) {
					if _, err := tx.ExecContext(ctx, stmt); err != nil {
						return fmt.Errorf("statement %q: %w", firstLine(stmt), err)
					}
				}
				_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (migration_set, version, name) VALUES (?, ?, ?)`, set.Set, mg.version, mg.name)
				return err
			})
			if err != nil {
				return fmt.Errorf("migration %s %04d_%s: %w", set.Set, mg.version, mg.name, err)
			}
		}
	}
	return nil
}

// splitStatements splits a migration file on semicolons that end a line.
// Migrations are plain DDL, so this simple rule is enough and keeps the
// files readable.
func splitStatements(s string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(s, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			if stmt := strings.TrimSpace(cur.String()); stmt != ";" {
				out = append(out, strings.TrimSuffix(stmt, ";"))
			}
			cur.Reset()
		}
	}
	if rest := strings.TrimSpace(cur.String()); rest != "" {
		out = append(out, rest)
	}
	return out
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
