// Package store is the SQL repository of the Security System Service, on
// SQLite or PostgreSQL through sqldb. It owns its transactions: a change,
// its outbox events and the audit entry of the decision that allowed it
// commit together or not at all.
package store

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

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
// AppendMany is the bulk import's: the events of many aggregates (each
// created system is one) in a few multi-row statements.
type EventAppender interface {
	Append(ctx context.Context, tx *sqldb.Tx, aggregateType, aggregateID, eventType string, payload any) (events.Event, error)
	AppendMany(ctx context.Context, tx *sqldb.Tx, batch []events.AggregatePending) ([]events.Event, error)
}

// Store is the repository. It is safe for concurrent use.
type Store struct {
	db         *sqldb.DB
	outbox     EventAppender
	beforeSave func(ctx context.Context, tx *sqldb.Tx, ss *app.SecuritySystem) error
	orgs       OrganizationLocations
}

// OrganizationLocations are subqueries over tables of the store's own
// database that turn a dealer's or a monitoring provider's grant roots
// into the locations they reach, for a strategy that keeps those facts
// beside the records instead of on them (replicate). Each is a SELECT of
// location ids ending with the column compared to the organization ids,
// for example "SELECT location_id FROM replica_locations WHERE dealer_id";
// the store appends the comparison with the set, one parameter. Empty, the
// branch matches the record's own dealer_id or monitoring_provider_id.
type OrganizationLocations struct {
	Dealers, MonitoringProviders string
}

var _ app.Repository = (*Store)(nil)

// Option configures a Store.
type Option func(*Store)

// WithCreateHook runs fn inside the transaction that creates a system,
// before the row is inserted; fn sets the record's resource facts
// (customer, dealer, monitoring provider) from its location, and
// CreateMany runs it once per location of the import. The provide
// strategy uses it to set the record's resource facts from the newest
// facts under the same locks its event consumer takes, so a concurrent
// event can never leave a new record with stale facts.
func WithCreateHook(fn func(ctx context.Context, tx *sqldb.Tx, ss *app.SecuritySystem) error) Option {
	return func(s *Store) { s.beforeSave = fn }
}

// WithOrganizationLocations makes the list match dealer and monitoring
// provider roots through o's subqueries, inside the page query: the
// database reads the organization's locations from its index and the
// systems at them, where the strategy would otherwise read thousands of
// location ids out and send them back as one list per page.
func WithOrganizationLocations(o OrganizationLocations) Option {
	return func(s *Store) { s.orgs = o }
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

// importBatch is the number of rows of one multi-row INSERT of CreateMany:
// few enough statements to be fast, few enough parameters (10 per row) for
// every engine's limit.
const importBatch = 500

// CreateMany stores new systems and their events in one transaction, all
// or nothing (API.md, "Bulk import"): rows go in multi-row INSERTs of
// importBatch, and each chunk's events, every system its own aggregate,
// into the outbox with one AppendMany in the same transaction, so the
// relay publishes every created event, and none when anything fails. The
// create hook runs for every system, as for Create.
func (s *Store) CreateMany(ctx context.Context, systems []app.SecuritySystem, evs [][]app.Event) error {
	if len(evs) != len(systems) {
		return apperr.New(apperr.Internal, "create security systems: %d systems but %d event lists", len(systems), len(evs))
	}
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		filled := map[string]app.SecuritySystem{}
		for start := 0; start < len(systems); start += importBatch {
			part := systems[start:min(start+importBatch, len(systems))]
			args := make([]any, 0, 10*len(part))
			for i := range part {
				ss := &part[i]
				if s.beforeSave != nil {
					if err := s.fillOnce(ctx, tx, ss, filled); err != nil {
						return err
					}
				}
				args = append(args, ss.ID, ss.Name, ss.LocationID, string(ss.State), ss.CustomerID, ss.DealerID, ss.MonitoringProviderID,
					sqldb.Micros(ss.CreatedAt), sqldb.Micros(ss.UpdatedAt), ss.Version)
			}
			q := `INSERT INTO security_systems (` + columns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)` +
				strings.Repeat(`, (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, len(part)-1)
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				if sqldb.IsUniqueViolation(err) {
					return apperr.Wrap(err, apperr.Conflict, "a security system with one of these ids exists")
				}
				return err
			}
			var pending []events.AggregatePending
			for i := range part {
				for _, ev := range evs[start+i] {
					pending = append(pending, events.AggregatePending{AggregateType: app.AggregateType, AggregateID: part[i].ID, Type: ev.Type, Payload: ev.Payload})
				}
			}
			if _, err := s.outbox.AppendMany(ctx, tx, pending); err != nil {
				return fmt.Errorf("append the created events: %w", err)
			}
		}
		return nil
	})
	return internal(err, "create security systems")
}

// fillOnce runs the create hook for the first system of each location of
// one CreateMany and gives the others at that location the same resource
// facts. The hook's facts are a function of the location alone, read
// under locks the transaction keeps until it commits, so a second read in
// the same transaction would answer the same; an import of thousands of
// systems over a few locations then reads the facts a few times, not
// thousands.
func (s *Store) fillOnce(ctx context.Context, tx *sqldb.Tx, ss *app.SecuritySystem, filled map[string]app.SecuritySystem) error {
	if f, ok := filled[ss.LocationID]; ok {
		ss.CustomerID, ss.DealerID, ss.MonitoringProviderID = f.CustomerID, f.DealerID, f.MonitoringProviderID
		return nil
	}
	if err := s.beforeSave(ctx, tx, ss); err != nil {
		return err
	}
	filled[ss.LocationID] = *ss
	return nil
}

// Get returns one system or NotFound.
func (s *Store) Get(ctx context.Context, id string) (app.SecuritySystem, error) {
	ss, err := scan(s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM security_systems WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return app.SecuritySystem{}, apperr.New(apperr.NotFound, "no security system %s", id)
	}
	return ss, internal(err, "read security system")
}

// ListPage returns one page of the systems in q's scope, in (name, id)
// order after q.After. The scope is a union of branches, one per kind of
// grant root (locations, customers, dealers, monitoring providers), each
// read through its (root, name, id) index in list order and cut at the
// page size, so a branch costs at most a page of rows per root in scope,
// whatever the platform holds; REALGUARDIO_ADMIN's All reads (name, id)
// itself. Id sets travel as one JSON parameter, however large.
func (s *Store) ListPage(ctx context.Context, q app.PageQuery) (app.Page, error) {
	if q.Limit <= 0 {
		return app.Page{}, apperr.New(apperr.Internal, "list page: no limit")
	}
	if q.Scope.Empty() {
		return app.Page{Systems: []app.SecuritySystem{}}, nil
	}
	query, args := listQuery(s.db.Dialect(), s.orgs, q)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return app.Page{}, internal(err, "list security systems")
	}
	defer rows.Close()
	out := app.Page{Systems: make([]app.SecuritySystem, 0, q.Limit)}
	for rows.Next() {
		ss, err := scan(rows)
		if err != nil {
			return app.Page{}, internal(err, "list security systems")
		}
		if len(out.Systems) == q.Limit {
			out.More = true
			break
		}
		out.Systems = append(out.Systems, ss)
	}
	return out, internal(rows.Err(), "list security systems")
}

// listQuery builds the page query: the filters and the keyset condition
// apply inside every branch, so each branch can stop after Limit+1 rows.
func listQuery(d sqldb.Dialect, orgs OrganizationLocations, q app.PageQuery) (string, []any) {
	var cond []string
	var condArgs []any
	if q.LocationID != "" {
		cond, condArgs = append(cond, "location_id = ?"), append(condArgs, q.LocationID)
	}
	if q.CustomerID != "" {
		cond, condArgs = append(cond, "customer_id = ?"), append(condArgs, q.CustomerID)
	}
	if q.State != "" {
		cond, condArgs = append(cond, "state = ?"), append(condArgs, string(q.State))
	}
	if q.NameContains != "" {
		cond = append(cond, `LOWER(name) LIKE ? ESCAPE '\'`)
		condArgs = append(condArgs, "%"+likeEscaper.Replace(strings.ToLower(q.NameContains))+"%")
	}
	if q.After != nil {
		cond = append(cond, "(name, id) > (?, ?)")
		condArgs = append(condArgs, q.After.Name, q.After.ID)
	}
	where := func(extra string) string {
		all := cond
		if extra != "" {
			all = append([]string{extra}, cond...)
		}
		if len(all) == 0 {
			return ""
		}
		return " WHERE " + strings.Join(all, " AND ")
	}
	limit := q.Limit + 1
	if q.Scope.All {
		return `SELECT ` + columns + ` FROM security_systems` + where("") + ` ORDER BY name, id LIMIT ?`,
			append(condArgs, limit)
	}
	var branches []string
	var args []any
	branch := func(column string, ids []string, through string) {
		if len(ids) == 0 {
			return
		}
		in, set := setCondition(d, column, ids)
		if through != "" {
			// The organization's locations, read by the database itself.
			// PostgreSQL evaluates ARRAY(subquery) once, before the scan
			// (an InitPlan), and reads the systems of each location from
			// (location_id, name, id) as for a list of locations; as a
			// semi-join it may hash the whole table instead.
			cond, _ := setCondition(d, "", ids)
			in = `location_id IN (` + through + cond + `)`
			if d == sqldb.Postgres {
				in = `location_id = ANY(ARRAY(` + through + cond + `))`
			}
		}
		branches = append(branches, `SELECT * FROM (SELECT `+columns+` FROM security_systems`+
			where(in)+` ORDER BY name, id LIMIT ?) b`+strconv.Itoa(len(branches)))
		args = append(args, set)
		args = append(args, condArgs...)
		args = append(args, limit)
	}
	branch("location_id", q.Scope.LocationIDs, "")
	branch("customer_id", q.Scope.CustomerIDs, "")
	branch("dealer_id", q.Scope.DealerIDs, orgs.Dealers)
	branch("monitoring_provider_id", q.Scope.MonitoringProviderIDs, orgs.MonitoringProviders)
	if len(branches) == 1 {
		return branches[0] + ` ORDER BY name, id`, args
	}
	// UNION, not UNION ALL: a system reached through two roots is listed
	// once.
	return `SELECT ` + columns + ` FROM (` + strings.Join(branches, ` UNION `) + `) u ORDER BY name, id LIMIT ?`,
		append(args, limit)
}

// setCondition compares column with the id set, one parameter. SQLite
// reads the set from a JSON array; PostgreSQL from an array parameter,
// whose size its planner knows (it takes a set-returning function for 100
// rows and may then prefer a scan).
func setCondition(d sqldb.Dialect, column string, ids []string) (string, any) {
	switch {
	case len(ids) == 1:
		// The common case (one organization, one location): an
		// equality, which both planners read in (root, name, id) index
		// order and stop after a page, whatever the root's size.
		return column + ` = ?`, ids[0]
	case d == sqldb.Postgres:
		return column + ` = ANY(CAST(? AS text[]))`, pgArray(ids)
	default:
		return column + ` IN (SELECT value FROM json_each(?))`, jsonArray(ids)
	}
}

// likeEscaper escapes LIKE's wildcards in a search term, so "50%" finds
// names containing "50%" rather than everything starting with "50".
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// pgArray is the PostgreSQL array literal of ids: JSON's string quoting is
// also the array literal's, so only the brackets change.
func pgArray(ids []string) string {
	j := jsonArray(ids)
	return "{" + j[1:len(j)-1] + "}"
}

func jsonArray(ids []string) string {
	b, err := json.Marshal(ids)
	if err != nil {
		// A []string always marshals.
		panic(err)
	}
	return string(b)
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

// internal passes application errors through and wraps anything else as
// Internal, keeping the cause for the logs only.
func internal(err error, what string) error {
	if err == nil || apperr.As(err) != nil {
		return err
	}
	return apperr.Wrap(err, apperr.Internal, "%s failed", what)
}
