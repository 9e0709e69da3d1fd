// Package store is the SQL repository of the Security System Service, on
// SQLite or PostgreSQL through sqldb. It owns its transactions: a change,
// its outbox events and the audit entry of the decision that allowed it
// commit together or not at all.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/securitysystem/app"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations returns the schema of the security systems and the audit.
func Migrations() sqldb.Migrations {
	return sqldb.Migrations{Set: "securitysystem", FS: migrationFS, Dir: "migrations"}
}

// EventAppender writes events inside a transaction; *events.Outbox is one.
type EventAppender interface {
	Append(ctx context.Context, tx *sqldb.Tx, aggregateType, aggregateID, eventType string, payload any) (events.Event, error)
}

// Store is the repository. It is safe for concurrent use.
type Store struct {
	db         *sqldb.DB
	outbox     EventAppender
	beforeSave func(ctx context.Context, tx *sqldb.Tx, ss *app.SecuritySystem) error
}

var _ app.Repository = (*Store)(nil)

// Option configures a Store.
type Option func(*Store)

// WithCreateHook runs fn inside the transaction that creates a system,
// before the row is inserted; fn may change the record. The provide
// strategy uses it to set the record's resource facts from the newest
// facts under the same locks its event consumer takes, so a concurrent
// event can never leave a new record with stale facts.
func WithCreateHook(fn func(ctx context.Context, tx *sqldb.Tx, ss *app.SecuritySystem) error) Option {
	return func(s *Store) { s.beforeSave = fn }
}

// New returns the repository over db (migrated with Migrations and
// events.Migrations), writing events through outbox.
func New(db *sqldb.DB, outbox EventAppender, opts ...Option) *Store {
	s := &Store{db: db, outbox: outbox}
	for _, o := range opts {
		o(s)
	}
	return s
}

const columns = `id, name, location_id, state, customer_id, dealer_id, monitoring_provider_id, created_at, updated_at, version`

func scan(row interface{ Scan(...any) error }) (app.SecuritySystem, error) {
	var ss app.SecuritySystem
	var state string
	var created, updated int64
	err := row.Scan(&ss.ID, &ss.Name, &ss.LocationID, &state, &ss.CustomerID, &ss.DealerID, &ss.MonitoringProviderID, &created, &updated, &ss.Version)
	ss.State = app.State(state)
	ss.CreatedAt, ss.UpdatedAt = sqldb.FromMicros(created), sqldb.FromMicros(updated)
	return ss, err
}

func (s *Store) appendEvents(ctx context.Context, tx *sqldb.Tx, id string, evs []app.Event) error {
	for _, ev := range evs {
		if _, err := s.outbox.Append(ctx, tx, app.AggregateType, id, ev.Type, ev.Payload); err != nil {
			return fmt.Errorf("append %s: %w", ev.Type, err)
		}
	}
	return nil
}

// Create stores a new system and its events.
func (s *Store) Create(ctx context.Context, ss app.SecuritySystem, evs []app.Event) error {
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if s.beforeSave != nil {
			if err := s.beforeSave(ctx, tx, &ss); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO security_systems (`+columns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			ss.ID, ss.Name, ss.LocationID, string(ss.State), ss.CustomerID, ss.DealerID, ss.MonitoringProviderID,
			sqldb.Micros(ss.CreatedAt), sqldb.Micros(ss.UpdatedAt), ss.Version); err != nil {
			if sqldb.IsUniqueViolation(err) {
				return apperr.Wrap(err, apperr.Conflict, "a security system with this id exists")
			}
			return err
		}
		return s.appendEvents(ctx, tx, ss.ID, evs)
	})
	return internal(err, "create security system")
}

// Get returns one system or NotFound.
func (s *Store) Get(ctx context.Context, id string) (app.SecuritySystem, error) {
	ss, err := scan(s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM security_systems WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return app.SecuritySystem{}, apperr.New(apperr.NotFound, "no security system %s", id)
	}
	return ss, internal(err, "read security system")
}

// List returns every system ordered by name, then id.
func (s *Store) List(ctx context.Context) ([]app.SecuritySystem, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+columns+` FROM security_systems ORDER BY name, id`)
	if err != nil {
		return nil, internal(err, "list security systems")
	}
	defer rows.Close()
	var out []app.SecuritySystem
	for rows.Next() {
		ss, err := scan(rows)
		if err != nil {
			return nil, internal(err, "list security systems")
		}
		out = append(out, ss)
	}
	return out, internal(rows.Err(), "list security systems")
}

// Update applies fn to the current record inside one transaction together
// with its events and the audit entry. The row is re-read inside the
// transaction, so two concurrent changes of one system serialize (SQLite
// takes the write lock at BEGIN; PostgreSQL locks the row FOR UPDATE).
func (s *Store) Update(ctx context.Context, id string, audit app.AuditEntry, fn func(*app.SecuritySystem) ([]app.Event, error)) (app.SecuritySystem, error) {
	var out app.SecuritySystem
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		q := `SELECT ` + columns + ` FROM security_systems WHERE id = ?`
		if tx.Dialect() == sqldb.Postgres {
			q += ` FOR UPDATE`
		}
		cur, err := scan(tx.QueryRowContext(ctx, q, id))
		if errors.Is(err, sql.ErrNoRows) {
			return apperr.New(apperr.NotFound, "no security system %s", id)
		}
		if err != nil {
			return err
		}
		evs, err := fn(&cur)
		if err != nil {
			return err
		}
		if len(evs) > 0 {
			cur.Version++
			if _, err := tx.ExecContext(ctx, `UPDATE security_systems SET name = ?, state = ?, customer_id = ?, dealer_id = ?, monitoring_provider_id = ?, updated_at = ?, version = ? WHERE id = ?`,
				cur.Name, string(cur.State), cur.CustomerID, cur.DealerID, cur.MonitoringProviderID, sqldb.Micros(cur.UpdatedAt), cur.Version, id); err != nil {
				return err
			}
			if err := s.appendEvents(ctx, tx, id, evs); err != nil {
				return err
			}
		}
		if err := insertAudit(ctx, tx, audit); err != nil {
			return err
		}
		out = cur
		return nil
	})
	if err != nil {
		return app.SecuritySystem{}, internal(err, "update security system")
	}
	return out, nil
}

func insertAudit(ctx context.Context, q sqldb.Querier, e app.AuditEntry) error {
	_, err := q.ExecContext(ctx, `INSERT INTO securitysystem_audit (id, at, user_id, security_system_id, action, decision, reason, strategy) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, sqldb.Micros(e.At), e.UserID, e.SecuritySystemID, string(e.Action), e.Decision, e.Reason, e.Strategy)
	if err != nil {
		return fmt.Errorf("insert audit entry: %w", err)
	}
	return nil
}

// AppendAudit records a decision that changed nothing.
func (s *Store) AppendAudit(ctx context.Context, e app.AuditEntry) error {
	return internal(insertAudit(ctx, s.db, e), "write audit entry")
}

// ListAudit returns audit entries, newest first.
func (s *Store) ListAudit(ctx context.Context, q app.AuditQuery) ([]app.AuditEntry, error) {
	query := `SELECT id, at, user_id, security_system_id, action, decision, reason, strategy FROM securitysystem_audit`
	var args []any
	if q.SecuritySystemID != "" {
		query += ` WHERE security_system_id = ?`
		args = append(args, q.SecuritySystemID)
	}
	query += ` ORDER BY at DESC, id DESC LIMIT ?`
	args = append(args, q.Limit)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, internal(err, "read audit")
	}
	defer rows.Close()
	out := []app.AuditEntry{}
	for rows.Next() {
		var e app.AuditEntry
		var at int64
		var action string
		if err := rows.Scan(&e.ID, &at, &e.UserID, &e.SecuritySystemID, &action, &e.Decision, &e.Reason, &e.Strategy); err != nil {
			return nil, internal(err, "read audit")
		}
		e.At, e.Action = sqldb.FromMicros(at), app.Action(action)
		out = append(out, e)
	}
	return out, internal(rows.Err(), "read audit")
}

// internal passes application errors through and wraps anything else as
// Internal, keeping the cause for the logs only.
func internal(err error, what string) error {
	if err == nil || apperr.As(err) != nil {
		return err
	}
	return apperr.Wrap(err, apperr.Internal, "%s failed", what)
}
