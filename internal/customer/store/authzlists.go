package store

import (
	"context"

	"github.com/realguardio/realguardio/internal/orgkit"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// LocationIDsByDealers returns one page of the locations the dealers
// service, through the (dealer_id, id) index.
func (Store) LocationIDsByDealers(ctx context.Context, q sqldb.Querier, dealerIDs []string, cursor string) ([]string, string, error) {
	ids, next, err := orgkit.QueryIDPage(ctx, q, dialect(q), `SELECT id FROM customer_locations
		WHERE dealer_id IN (`+orgkit.IDSet(dialect(q))+`) AND id > ? ORDER BY id`, dealerIDs, cursor)
	if err != nil {
		return nil, "", internal(err, "read the locations of dealers")
	}
	return ids, next, nil
}

// dialect is the engine behind q.
func dialect(q sqldb.Querier) sqldb.Dialect {
	if d, ok := q.(interface{ Dialect() sqldb.Dialect }); ok {
		return d.Dialect()
	}
	return sqldb.SQLite
}
