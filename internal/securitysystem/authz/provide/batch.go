package provide

import (
	"context"
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
// changed, from the tables.
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
		case catalog.LocationDealerChanged:
			var p catalog.LocationDealerChangedPayload
			if err := decode(ev, &p); err != nil {
				return err
			}
			if err := foldLocation(locations, p.LocationID, p.CustomerID, deref(p.DealerID)); err != nil {
				return fmt.Errorf("provide facts: %s %s: %w", ev.Type, ev.ID, err)
			}
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
	if err := writeBatch(ctx, tx, locations, providers); err != nil {
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

// rowsPerStatement bounds the rows of one multi-row statement.
const rowsPerStatement = 200

func writeBatch(ctx context.Context, tx *sqldb.Tx, locations map[string][2]string, providers map[string]string) error {
	locIDs := sortedKeys(locations)
	var rows [][]any
	for _, id := range locIDs {
		rows = append(rows, []any{id, locations[id][0], locations[id][1]})
	}
	if err := multiRow(ctx, tx, `INSERT INTO provide_locations (location_id, customer_id, dealer_id) VALUES `, rows, `
		ON CONFLICT (location_id) DO UPDATE SET dealer_id = excluded.dealer_id,
			customer_id = CASE WHEN excluded.customer_id = '' THEN provide_locations.customer_id ELSE excluded.customer_id END`); err != nil {
		return err
	}
	changedDealers := sortedKeys(providers)
	rows = rows[:0]
	for _, d := range changedDealers {
		rows = append(rows, []any{d, providers[d]})
	}
	if err := multiRow(ctx, tx, `INSERT INTO provide_dealers (dealer_id, monitoring_provider_id) VALUES `, rows,
		` ON CONFLICT (dealer_id) DO UPDATE SET monitoring_provider_id = excluded.monitoring_provider_id`); err != nil {
		return err
	}
	// The dealers the moved locations name: a row for each (as
	// dealerProvider makes), held shared while the records are written.
	named := map[string]bool{}
	for _, l := range locations {
		if _, set := providers[l[1]]; l[1] != "" && !set {
			named[l[1]] = true
		}
	}
	namedIDs := sortedKeys(named)
	rows = rows[:0]
	for _, d := range namedIDs {
		rows = append(rows, []any{d, ""})
	}
	if err := multiRow(ctx, tx, `INSERT INTO provide_dealers (dealer_id, monitoring_provider_id) VALUES `, rows,
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
	return inList(ctx, tx, `UPDATE security_systems SET
			customer_id = (SELECT l.customer_id FROM provide_locations l WHERE l.location_id = security_systems.location_id),
			dealer_id = (SELECT l.dealer_id FROM provide_locations l WHERE l.location_id = security_systems.location_id),
			monitoring_provider_id = COALESCE((SELECT d.monitoring_provider_id FROM provide_locations l JOIN provide_dealers d ON d.dealer_id = l.dealer_id
				WHERE l.location_id = security_systems.location_id AND l.dealer_id <> ''), '')
		WHERE location_id IN `, locIDs, "")
}

// multiRow runs head, the rows' value tuples and tail, in statements of at
// most rowsPerStatement rows; the rows' keys are distinct (PostgreSQL
// refuses to update a row twice in one statement).
func multiRow(ctx context.Context, tx *sqldb.Tx, head string, rows [][]any, tail string) error {
	for start := 0; start < len(rows); start += rowsPerStatement {
		part := rows[start:min(start+rowsPerStatement, len(rows))]
		var q strings.Builder
		q.WriteString(head)
		tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(part[0])), ", ") + ")"
		args := make([]any, 0, len(part)*len(part[0]))
		for i, r := range part {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString(tuple)
			args = append(args, r...)
		}
		q.WriteString(tail)
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
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
