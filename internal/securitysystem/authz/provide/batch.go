package provide

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/catalog"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// HandleBatch is the resource facts consumer's BatchHandler: it applies
// evs, the events of one batch in stream order, in tx with a few
// multi-row statements instead of Handle's three or four per event.
//
// It leaves exactly the state Handle applied to each event in turn leaves
// (TestBatchHandlersMatchHandlers compares them): a location's facts end
// as its last event set them (the customer as the last one that named
// it), a dealer's provider as its last event set it, and a record ends
// with the facts current at the end of the batch when an event of the
// batch moved its location, or with its dealer's last provider when only
// the dealer changed. So the facts tables are written first, then the
// records of the dealers that changed, then those of the locations that
// changed, from the tables. A location deleted in the batch (and not
// named again after it) loses its facts row, and its records keep the
// facts of its last event before the deletion, as Handle leaves them.
//
// Concurrency is Handle's: the location and dealer rows are written (or,
// for a dealer only read, share-locked on PostgreSQL) before any record,
// in key order, so a record is written after, and with, the newest
// committed facts, and two batches take the rows' locks in one order.
// An unreadable payload, or one without its id, is an error: the consumer
// then applies the batch one event at a time, and Handle reports the
// event at fault.
func HandleBatch(ctx context.Context, tx *sqldb.Tx, evs []events.Event) error {
	locations := map[string][2]string{} // location → customer ("" keeps the stored one), dealer
	providers := map[string]string{}    // dealer → provider set
	var gone deletions
	// Every dealer a location event names gets a row (dealerProvider),
	// the dealers of locations moved again later in the batch too.
	namedByEvents := map[string]bool{}
	for _, ev := range evs {
		switch catalog.Type(ev.Type) {
		case catalog.LocationCreated:
			var p catalog.LocationCreatedPayload
			if err := decode(ev, &p); err != nil {
				return err
			}
			if err := foldLocation(locations, p.LocationID, p.CustomerID, deref(p.DealerID)); err != nil {
				return fmt.Errorf("provide facts: %s %s: %w", ev.Type, ev.ID, err)
			}
			namedByEvents[deref(p.DealerID)] = true
			delete(gone.orphans, p.LocationID)
		case catalog.LocationDealerChanged:
			var p catalog.LocationDealerChangedPayload
			if err := decode(ev, &p); err != nil {
				return err
			}
			if err := foldLocation(locations, p.LocationID, p.CustomerID, deref(p.DealerID)); err != nil {
				return fmt.Errorf("provide facts: %s %s: %w", ev.Type, ev.ID, err)
			}
			namedByEvents[deref(p.DealerID)] = true
			delete(gone.orphans, p.LocationID)
		case catalog.LocationDeleted:
			var p catalog.LocationDeletedPayload
			if err := decode(ev, &p); err != nil {
				return err
			}
			if p.LocationID == "" {
				return fmt.Errorf("provide facts: %s %s: no locationId", ev.Type, ev.ID)
			}
			gone.add(locations, p.LocationID)
		case catalog.DealerMonitoringProviderSet:
			var p catalog.DealerMonitoringProviderSetPayload
			if err := decode(ev, &p); err != nil {
				return err
			}
			if p.DealerID == "" {
				return fmt.Errorf("provide facts: %s %s: no dealerId", ev.Type, ev.ID)
			}
			providers[p.DealerID] = deref(p.MonitoringProviderID)
		}
	}
	if err := writeBatch(ctx, tx, locations, providers, namedByEvents, &gone); err != nil {
		return fmt.Errorf("provide facts: apply a batch of %d events: %w", len(evs), err)
	}
	return nil
}

// foldLocation records a location event's facts over the earlier ones of
// the batch: the dealer is the event's, the customer the event's unless it
// omits it (setLocation's rule).
func foldLocation(locations map[string][2]string, id, customer, dealer string) error {
	if id == "" {
		return errors.New("no locationId")
	}
	if customer == "" {
		customer = locations[id][0]
	}
	locations[id] = [2]string{customer, dealer}
	return nil
}

// deletions are the locations a batch deleted.
type deletions struct {
	ids map[string]bool // deleted: their rows go before the upserts
	// orphans are the deleted locations whose last event in the batch is
	// the deletion and which an earlier event of the batch moved: their
	// records take that event's facts (customer "" keeps the stored one
	// unless fresh: after a deletion of the batch there is none).
	orphans map[string]orphan
	// fresh are the locations deleted earlier in the batch: a customer
	// "" folded after it is "" indeed, not the stored one.
	fresh map[string]bool
}

type orphan struct {
	customer, dealer string
	fresh            bool
}

// add folds the deletion of id in: the facts folded so far go to its
// records only, and what follows starts from no row.
func (g *deletions) add(locations map[string][2]string, id string) {
	if g.ids == nil {
		g.ids, g.orphans, g.fresh = map[string]bool{}, map[string]orphan{}, map[string]bool{}
	}
	if l, moved := locations[id]; moved {
		g.orphans[id] = orphan{customer: l[0], dealer: l[1], fresh: g.fresh[id]}
	}
	delete(locations, id)
	g.ids[id] = true
	g.fresh[id] = true
}

// rowsPerStatement bounds the rows of one multi-row statement.
const rowsPerStatement = 200

func writeBatch(ctx context.Context, tx *sqldb.Tx, locations map[string][2]string, providers map[string]string, namedByEvents map[string]bool, gone *deletions) error {
	// The stored customer of the orphans whose events omitted it, read
	// before their rows go.
	orphanIDs := sortedKeys(gone.orphans)
	for _, id := range orphanIDs {
		o := gone.orphans[id]
		if o.customer != "" || o.fresh {
			continue
		}
		err := tx.QueryRowContext(ctx, `SELECT customer_id FROM provide_locations WHERE location_id = ?`, id).Scan(&o.customer)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		gone.orphans[id] = o
	}
	if err := inList(ctx, tx, `DELETE FROM provide_locations WHERE location_id IN `, sortedKeys(gone.ids), ""); err != nil {
		return err
	}
	locIDs := sortedKeys(locations)
	var rows [][]any
	for _, id := range locIDs {
		rows = append(rows, []any{id, locations[id][0], locations[id][1]})
	}
	if err := sqldb.ExecRows(ctx, tx, `INSERT INTO provide_locations (location_id, customer_id, dealer_id) VALUES `, rows, `
		ON CONFLICT (location_id) DO UPDATE SET dealer_id = excluded.dealer_id,
			customer_id = CASE WHEN excluded.customer_id = '' THEN provide_locations.customer_id ELSE excluded.customer_id END`); err != nil {
		return err
	}
	changedDealers := sortedKeys(providers)
	rows = rows[:0]
	for _, d := range changedDealers {
		rows = append(rows, []any{d, providers[d]})
	}
	if err := sqldb.ExecRows(ctx, tx, `INSERT INTO provide_dealers (dealer_id, monitoring_provider_id) VALUES `, rows,
		` ON CONFLICT (dealer_id) DO UPDATE SET monitoring_provider_id = excluded.monitoring_provider_id`); err != nil {
		return err
	}
	// The dealers the location events named: a row for each (as
	// dealerProvider makes), held shared while the records are written.
	named := map[string]bool{}
	for d := range namedByEvents {
		if _, set := providers[d]; d != "" && !set {
			named[d] = true
		}
	}
	namedIDs := sortedKeys(named)
	rows = rows[:0]
	for _, d := range namedIDs {
		rows = append(rows, []any{d, ""})
	}
	if err := sqldb.ExecRows(ctx, tx, `INSERT INTO provide_dealers (dealer_id, monitoring_provider_id) VALUES `, rows,
		` ON CONFLICT (dealer_id) DO NOTHING`); err != nil {
		return err
	}
	if tx.Dialect() == sqldb.Postgres {
		if err := inList(ctx, tx, `SELECT dealer_id FROM provide_dealers WHERE dealer_id IN `, namedIDs, ` ORDER BY dealer_id FOR SHARE`); err != nil {
			return err
		}
	}
	if err := inList(ctx, tx, `UPDATE security_systems SET
			monitoring_provider_id = (SELECT d.monitoring_provider_id FROM provide_dealers d WHERE d.dealer_id = security_systems.dealer_id)
		WHERE dealer_id IN `, changedDealers, ""); err != nil {
		return err
	}
	if err := inList(ctx, tx, `UPDATE security_systems SET
			customer_id = (SELECT l.customer_id FROM provide_locations l WHERE l.location_id = security_systems.location_id),
			dealer_id = (SELECT l.dealer_id FROM provide_locations l WHERE l.location_id = security_systems.location_id),
			monitoring_provider_id = COALESCE((SELECT d.monitoring_provider_id FROM provide_locations l JOIN provide_dealers d ON d.dealer_id = l.dealer_id
				WHERE l.location_id = security_systems.location_id AND l.dealer_id <> ''), '')
		WHERE location_id IN `, locIDs, ""); err != nil {
		return err
	}
	// A deleted location has no records (the Customer Service refuses to
	// delete one with systems), so this is one statement in a rare batch.
	for _, id := range orphanIDs {
		o := gone.orphans[id]
		if _, err := tx.ExecContext(ctx, `UPDATE security_systems SET customer_id = ?, dealer_id = ?,
				monitoring_provider_id = COALESCE((SELECT d.monitoring_provider_id FROM provide_dealers d WHERE d.dealer_id = ? AND d.dealer_id <> ''), '')
			WHERE location_id = ?`, o.customer, o.dealer, o.dealer, id); err != nil {
			return err
		}
	}
	return nil
}

// inList runs head, an IN list of ids and tail, in bounded statements
// (a query's rows are read and dropped: it is run for its locks).
func inList(ctx context.Context, tx *sqldb.Tx, head string, ids []string, tail string) error {
	for start := 0; start < len(ids); start += rowsPerStatement {
		part := ids[start:min(start+rowsPerStatement, len(ids))]
		args := make([]any, len(part))
		for i, id := range part {
			args[i] = id
		}
		q := head + `(` + strings.TrimSuffix(strings.Repeat("?,", len(part)), ",") + `)` + tail
		if strings.HasPrefix(q, "SELECT") {
			rows, err := tx.QueryContext(ctx, q, args...)
			if err != nil {
				return err
			}
			for rows.Next() {
			}
			err = rows.Err()
			rows.Close()
			if err != nil {
				return err
			}
			continue
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
