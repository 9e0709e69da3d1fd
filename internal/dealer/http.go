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

func (h *handlers) setMonitoringProvider(w http.ResponseWriter, r *http.Request) error {
	caller, err := auth.MustCaller(r.Context())
	if err != nil {
		return err
	}
	dealerID, err := h.kit.OrgID(r)
	if err != nil {
		return err
	}
	var body monitoringProviderBody
	if err := httpx.DecodeJSON(r, &body); err != nil {
		return err
	}
	var providerID *string
	switch string(body.MonitoringProviderID) {
	case "":
		return apperr.InvalidField("monitoringProviderId", "is required (null clears it)")
	case "null":
	default:
		var s string
		if err := json.Unmarshal(body.MonitoringProviderID, &s); err != nil {
			return apperr.MalformedField("monitoringProviderId", "must be a UUID string or null")
		}
		providerID = &s
	}
	facts, err := h.providers.setMonitoringProvider(r.Context(), caller, dealerID, providerID)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, facts)
	return nil
}

func (h *handlers) dealerFacts(w http.ResponseWriter, r *http.Request) error {
	if err := orgkit.RequireFactsReader(r.Context()); err != nil {
		return err
	}
	dealerID, err := h.kit.OrgID(r)
	if err != nil {
		return err
	}
	facts, err := h.providers.dealerFacts(r.Context(), []string{dealerID})
	if err != nil {
		return err
	}
	if len(facts) == 0 {
		return apperr.New(apperr.NotFound, "dealer not found")
	}
	httpx.WriteJSON(w, http.StatusOK, facts[0])
	return nil
}

type batchBody struct {
	DealerIDs []string `json:"dealerIds"`
}

func (h *handlers) dealerFactsBatch(w http.ResponseWriter, r *http.Request) error {
	if err := orgkit.RequireFactsReader(r.Context()); err != nil {
		return err
	}
	var body batchBody
	if err := httpx.DecodeJSON(r, &body); err != nil {
		return err
	}
	if body.DealerIDs == nil {
		return apperr.InvalidField("dealerIds", "is required")
	}
	if len(body.DealerIDs) > MaxBatch {
		return apperr.InvalidField("dealerIds", "must hold at most %d ids", MaxBatch)
	}
	ids := make([]string, len(body.DealerIDs))
	for i, s := range body.DealerIDs {
		id, err := uuid.Parse(s)
		if err != nil || len(s) != 36 {
			return apperr.MalformedField(fmt.Sprintf("dealerIds[%d]", i), "must be a UUID")
		}
		ids[i] = id.String()
	}
	facts, err := h.providers.dealerFacts(r.Context(), ids)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"dealers": facts})
	return nil
}
