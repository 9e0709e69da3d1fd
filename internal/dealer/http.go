package dealer

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/orgkit"
	"github.com/realguardio/realguardio/internal/orgkit/orgkithttp"
	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/httpx"
)

// handlers serves the dealer's own routes next to the kit's.
type handlers struct {
	kit       *orgkithttp.Handlers
	providers *providers
}

type monitoringProviderBody struct {
	// MonitoringProviderID is raw so that an absent field (a mistake) can be
	// told apart from null (clear).
	MonitoringProviderID json.RawMessage `json:"monitoringProviderId"`
}

func (h *handlers) setMonitoringProvider(w http.ResponseWriter, r *http.Request) {
	caller, err := auth.MustCaller(r.Context())
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	dealerID, err := h.kit.OrgID(r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	var body monitoringProviderBody
	if err := httpx.DecodeJSON(r, &body); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	var providerID *string
	switch string(body.MonitoringProviderID) {
	case "":
		httpx.WriteError(w, r, apperr.InvalidField("monitoringProviderId", "is required (null clears it)"))
		return
	case "null":
	default:
		var s string
		if err := json.Unmarshal(body.MonitoringProviderID, &s); err != nil {
			httpx.WriteError(w, r, apperr.MalformedField("monitoringProviderId", "must be a UUID string or null"))
			return
		}
		providerID = &s
	}
	facts, err := h.providers.setMonitoringProvider(r.Context(), caller, dealerID, providerID)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, facts)
}

func (h *handlers) dealerFacts(w http.ResponseWriter, r *http.Request) {
	if err := orgkit.RequireFactsReader(r.Context()); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	dealerID, err := h.kit.OrgID(r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	facts, err := h.providers.dealerFacts(r.Context(), []string{dealerID})
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if len(facts) == 0 {
		httpx.WriteError(w, r, apperr.New(apperr.NotFound, "dealer not found"))
		return
	}
	httpx.WriteJSON(w, http.StatusOK, facts[0])
}

type batchBody struct {
	DealerIDs []string `json:"dealerIds"`
}

func (h *handlers) dealerFactsBatch(w http.ResponseWriter, r *http.Request) {
	if err := orgkit.RequireFactsReader(r.Context()); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	var body batchBody
	if err := httpx.DecodeJSON(r, &body); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if body.DealerIDs == nil {
		httpx.WriteError(w, r, apperr.InvalidField("dealerIds", "is required"))
		return
	}
	if len(body.DealerIDs) > MaxBatch {
		httpx.WriteError(w, r, apperr.InvalidField("dealerIds", "must hold at most %d ids", MaxBatch))
		return
	}
	ids := make([]string, len(body.DealerIDs))
	for i, s := range body.DealerIDs {
		id, err := uuid.Parse(s)
		if err != nil || len(s) != 36 {
			httpx.WriteError(w, r, apperr.MalformedField(fmt.Sprintf("dealerIds[%d]", i), "must be a UUID"))
			return
		}
		ids[i] = id.String()
	}
	facts, err := h.providers.dealerFacts(r.Context(), ids)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"dealers": facts})
}
