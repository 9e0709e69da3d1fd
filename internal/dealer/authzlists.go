package dealer

import (
	"net/http"

	"github.com/realguardio/realguardio/internal/orgkit"
	"github.com/realguardio/realguardio/internal/platform/apperr"
)

// dealersByProviders is POST /authz/dealers:byMonitoringProviders
// (docs/fetch-api.md): {"monitoringProviderIds":[…],"cursor"?} →
// {"dealerIds":[…],"nextCursor"}: the active dealers using the providers,
// for the fetch strategy's lists of a monitoring provider's employee.
func (h *handlers) dealersByProviders(w http.ResponseWriter, r *http.Request) error {
	if err := orgkit.RequireFactsReader(r.Context()); err != nil {
		return err
	}
	ids, cursor, err := orgkit.DecodeIDListRequest(r, "monitoringProviderIds")
	if err != nil {
		return err
	}
	db := h.providers.kit.DB()
	page, next, err := orgkit.QueryIDPage(r.Context(), db, db.Dialect(), `SELECT m.dealer_id FROM dealer_monitoring_providers m
		JOIN organizations o ON o.id = m.dealer_id AND o.status = '`+string(orgkit.StatusActive)+`'
		WHERE m.monitoring_provider_id IN (`+orgkit.IDSet(db.Dialect())+`) AND m.dealer_id > ? ORDER BY m.dealer_id`, ids, cursor)
	if err != nil {
		return apperr.Wrap(err, apperr.Internal, "read the dealers of monitoring providers")
	}
	orgkit.WriteIDPage(w, "dealerIds", page, next)
	return nil
}
