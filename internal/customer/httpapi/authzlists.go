package httpapi

import (
	"net/http"

	"github.com/realguardio/realguardio/internal/orgkit"
)

// locationsByDealers is POST /authz/locations:byDealers
// (docs/fetch-api.md): {"dealerIds":[…],"cursor"?} → {"locationIds":[…],
// "nextCursor"}, for the fetch strategy's lists.
func (h *Handlers) locationsByDealers(w http.ResponseWriter, r *http.Request) error {
	if err := orgkit.RequireFactsReader(r.Context()); err != nil {
		return err
	}
	ids, cursor, err := orgkit.DecodeIDListRequest(r, "dealerIds")
	if err != nil {
		return err
	}
	page, next, err := h.app.LocationIDsByDealers(r.Context(), ids, cursor)
	if err != nil {
		return err
	}
	orgkit.WriteIDPage(w, "locationIds", page, next)
	return nil
}
