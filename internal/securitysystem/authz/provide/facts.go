package provide

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/catalog"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/securitysystem/app"
	"github.com/realguardio/realguardio/internal/securitysystem/authz"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations returns the schema of the strategy's location and dealer
// facts. It runs after the security systems' own migrations (it indexes
// security_systems.dealer_id).
func Migrations() sqldb.Migrations {
	return sqldb.Migrations{Set: "securitysystem_provide", FS: migrationFS, Dir: "migrations"}
}

// Handle is the handler of the resource facts consumer: it runs inside the
// consumer's transaction (which records the event as applied) and keeps the
// facts tables and the facts on every security system record at the
// affected location or dealer current. It reads the events that change
// resource facts (catalog.LocationCreated, catalog.LocationDealerChanged,
// catalog.DealerMonitoringProviderSet) and catalog.LocationDeleted, which
// deletes the location's facts (a location is deleted only without
// security systems, so no record's facts change); other events are
// accepted and ignored; an unreadable payload is an error, so the event is retried and
// eventually parked instead of silently lost.
//
// Concurrency: the consumer may apply a customer event and a dealer event
// at the same time, and a system may be created meanwhile. Every writer
// takes the row of the location or dealer it depends on first (an update,
// or a shared lock on PostgreSQL; SQLite runs one writer at a time), so a
// record is always written after, and with, the newest committed facts.
func Handle(ctx context.Context, tx *sqldb.Tx, ev events.Event) error {
	var apply func() error
	switch catalog.Type(ev.Type) {
	case catalog.LocationCreated:
		var p catalog.LocationCreatedPayload
		if err := decode(ev, &p); err != nil {
			return err
		}
		apply = func() error { return setLocation(ctx, tx, p.LocationID, p.CustomerID, deref(p.DealerID)) }
	case catalog.LocationDealerChanged:
		var p catalog.LocationDealerChangedPayload
		if err := decode(ev, &p); err != nil {
			return err
		}
		apply = func() error { return setLocation(ctx, tx, p.LocationID, p.CustomerID, deref(p.DealerID)) }
	case catalog.DealerMonitoringProviderSet:
		var p catalog.DealerMonitoringProviderSetPayload
		if err := decode(ev, &p); err != nil {
			return err
		}
		apply = func() error { return setProvider(ctx, tx, p.DealerID, deref(p.MonitoringProviderID)) }
	case catalog.LocationDeleted:
		var p catalog.LocationDeletedPayload
		if err := decode(ev, &p); err != nil {
			return err
		}
		apply = func() error { return deleteLocation(ctx, tx, p.LocationID) }
	default:
		return nil
	}
	if err := apply(); err != nil {
		return fmt.Errorf("provide facts: apply %s %s: %w", ev.Type, ev.ID, err)
	}
	return nil
}

// decode reads ev's payload into p, the payload struct of its type.
func decode(ev events.Event, p any) error {
	if err := json.Unmarshal(ev.Payload, p); err != nil {
		return fmt.Errorf("provide facts: payload of %s %s: %w", ev.Type, ev.ID, err)
	}
	return nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func setLocation(ctx context.Context, tx *sqldb.Tx, locationID, customerID, dealer string) error {
	if locationID == "" {
		return errors.New("no locationId")
	}
	// location_dealer_changed carries the customer too; a location never
	// changes customer, so the upsert keeps the first one it saw when a
	// payload omits it.
	if _, err := tx.ExecContext(ctx, `INSERT INTO provide_locations (location_id, customer_id, dealer_id) VALUES (?, ?, ?)
		ON CONFLICT (location_id) DO UPDATE SET dealer_id = excluded.dealer_id,
			customer_id = CASE WHEN excluded.customer_id = '' THEN provide_locations.customer_id ELSE excluded.customer_id END`,
		locationID, customerID, dealer); err != nil {
		return err
	}
	provider, err := dealerProvider(ctx, tx, dealer)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE security_systems SET
			customer_id = (SELECT customer_id FROM provide_locations WHERE location_id = ?),
			dealer_id = ?, monitoring_provider_id = ?
		WHERE location_id = ?`, locationID, dealer, provider, locationID)
	return err
}

// deleteLocation deletes a deleted location's facts; the records at it,
// if any, keep the facts they have.
func deleteLocation(ctx context.Context, tx *sqldb.Tx, locationID string) error {
	if locationID == "" {
		return errors.New("no locationId")
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM provide_locations WHERE location_id = ?`, locationID)
	return err
}

func setProvider(ctx context.Context, tx *sqldb.Tx, dealer, provider string) error {
	if dealer == "" {
		return errors.New("no dealerId")
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO provide_dealers (dealer_id, monitoring_provider_id) VALUES (?, ?)
		ON CONFLICT (dealer_id) DO UPDATE SET monitoring_provider_id = excluded.monitoring_provider_id`, dealer, provider); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `UPDATE security_systems SET monitoring_provider_id = ? WHERE dealer_id = ?`, provider, dealer)
	return err
}

func dealerProvider(ctx context.Context, tx *sqldb.Tx, dealer string) (string, error) {
	if dealer == "" {
		return "", nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO provide_dealers (dealer_id, monitoring_provider_id) VALUES (?, '')
		ON CONFLICT (dealer_id) DO NOTHING`, dealer); err != nil {
		return "", err
	}
	q := `SELECT monitoring_provider_id FROM provide_dealers WHERE dealer_id = ?`
	if tx.Dialect() == sqldb.Postgres {
		q += ` FOR SHARE`
	}
	var p string
	err := tx.QueryRowContext(ctx, q, dealer).Scan(&p)
	return p, err
}

// location reads a location's facts with its dealer's provider; ok is
// false when no event named the location yet.
func location(ctx context.Context, q sqldb.Querier, id string) (authz.Location, bool, error) {
	l := authz.Location{LocationID: id}
	err := q.QueryRowContext(ctx, `SELECT l.customer_id, l.dealer_id, COALESCE(d.monitoring_provider_id, '')
		FROM provide_locations l LEFT JOIN provide_dealers d ON d.dealer_id = l.dealer_id
		WHERE l.location_id = ?`, id).Scan(&l.CustomerID, &l.DealerID, &l.MonitoringProviderID)
	if errors.Is(err, sql.ErrNoRows) {
		return authz.Location{}, false, nil
	}
	if err != nil {
		return authz.Location{}, false, err
	}
	return l, true, nil
}

// KnownLocations returns a lookup of the locations' facts held in db (the
// tables the resource facts consumer keeps), each with its dealer's
// provider, for a strategy that decides creation elsewhere: delegate's
// import reads them here in one statement per 200 locations instead of one
// OpenFGA Read per location. A location no event has named yet is absent
// from the answer.
func KnownLocations(db *sqldb.DB) func(ctx context.Context, ids []string) (map[string]authz.Location, error) {
	return func(ctx context.Context, ids []string) (map[string]authz.Location, error) {
		return locations(ctx, db, ids)
	}
}

// locations reads the facts of those of ids that an event has named, in
// statements of at most rowsPerStatement ids.
func locations(ctx context.Context, q sqldb.Querier, ids []string) (map[string]authz.Location, error) {
	out := make(map[string]authz.Location, len(ids))
	for start := 0; start < len(ids); start += rowsPerStatement {
		part := ids[start:min(start+rowsPerStatement, len(ids))]
		args := make([]any, len(part))
		for i, id := range part {
			args[i] = id
		}
		rows, err := q.QueryContext(ctx, `SELECT l.location_id, l.customer_id, l.dealer_id, COALESCE(d.monitoring_provider_id, '')
			FROM provide_locations l LEFT JOIN provide_dealers d ON d.dealer_id = l.dealer_id
			WHERE l.location_id IN (`+strings.TrimSuffix(strings.Repeat("?,", len(part)), ",")+`)`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var l authz.Location
			if err := rows.Scan(&l.LocationID, &l.CustomerID, &l.DealerID, &l.MonitoringProviderID); err != nil {
				rows.Close()
				return nil, err
			}
			out[l.LocationID] = l
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// FillFacts sets a new record's resource facts from the current location
// and dealer facts inside the transaction that inserts it (the store's
// create hook). The facts read by AuthorizeCreate moments earlier may have
// changed since; reading them again here, with the location's and dealer's
// rows held, means an event applied concurrently either is seen here or
// waits and then updates the new record too.
func FillFacts(ctx context.Context, tx *sqldb.Tx, ss *app.SecuritySystem) error {
	q := `SELECT customer_id, dealer_id FROM provide_locations WHERE location_id = ?`
	if tx.Dialect() == sqldb.Postgres {
		q += ` FOR SHARE`
	}
	var customer, dealer string
	err := tx.QueryRowContext(ctx, q, ss.LocationID).Scan(&customer, &dealer)
	if errors.Is(err, sql.ErrNoRows) {
		// AuthorizeCreate found the location moments ago: it has been
		// deleted since (customer.location_deleted), and is unknown now.
		return apperr.InvalidField("locationId", "location %s no longer exists", ss.LocationID)
	}
	return fillFrom(ctx, tx, ss, customer, dealer, err)
}

// FillKnownFacts is FillFacts for a strategy that authorizes creation from
// another source (delegate asks OpenFGA) and runs the resource facts
// consumer only to keep the records' dealer and provider current: a
// location the consumer has not seen yet keeps the facts the creation
// check found, and the consumer's location_created, when it comes, sets
// them on the record again.
func FillKnownFacts(ctx context.Context, tx *sqldb.Tx, ss *app.SecuritySystem) error {
	q := `SELECT customer_id, dealer_id FROM provide_locations WHERE location_id = ?`
	if tx.Dialect() == sqldb.Postgres {
		q += ` FOR SHARE`
	}
	var customer, dealer string
	err := tx.QueryRowContext(ctx, q, ss.LocationID).Scan(&customer, &dealer)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	return fillFrom(ctx, tx, ss, customer, dealer, err)
}

func fillFrom(ctx context.Context, tx *sqldb.Tx, ss *app.SecuritySystem, customer, dealer string, err error) error {
	if err != nil {
		return err
	}
	provider, err := dealerProvider(ctx, tx, dealer)
	if err != nil {
		return err
	}
	ss.CustomerID, ss.DealerID, ss.MonitoringProviderID = customer, dealer, provider
	return nil
}
