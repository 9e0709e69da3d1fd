package httpapi

import (
	"net/http"

	"github.com/realguardio/realguardio/internal/orgkit"
	"github.com/realguardio/realguardio/internal/platform/httpx"
)

// locationsByDealers is POST /authz/locations:byDealers
// (docs/fetch-api.md): {"dealerIds":[…],"cursor"?} → {"locationIds":[…],
// "nextCursor"}, for the fetch strategy's lists.
func (h *Handlers) locationsByDealers(w http.ResponseWriter, r *http.Request) {
	if err := orgkit.RequireFactsReader(r.Context()); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	ids, cursor, err := orgkit.DecodeIDListRequest(r, "dealerIds")
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	page, next, err := h.app.LocationIDsByDealers(r.Context(), ids, cursor)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	orgkit.WriteIDPage(w, "locationIds", page, next)
}
