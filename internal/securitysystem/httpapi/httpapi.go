// Package httpapi is the HTTP surface of the Security System Service
// (API.md, "Security System Service"; api/securitysystem.yaml). Every
// handler does the same steps: decode, read the caller, call the use case,
// write the answer or map the error with httpx.WriteError.
package httpapi

import (
	"net/http"
	"time"

	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/securitysystem/app"
)

// Handler returns the routes of the service, each behind authenticate
// (the token validator's middleware); reviews answer the access reviews
// and the audit.
func Handler(svc *app.Service, reviews app.Reviews, authenticate func(http.Handler) http.Handler) http.Handler {
	h := &handlers{svc: svc}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /securitysystems", h.create)
	mux.HandleFunc("GET /securitysystems", h.list)
	mux.HandleFunc("GET /securitysystems/{id}", h.get)
	mux.HandleFunc("PUT /securitysystems/{id}", h.act)
	mux.HandleFunc("GET /securitysystems/{id}/access", accessHandlers{reviews.Access}.access)
	mux.HandleFunc("GET /audit", auditHandlers{reviews.Audit}.search)
	return authenticate(mux)
}

type handlers struct{ svc *app.Service }

// systemJSON is a system as the API shows it. Actions is present on list
// and get answers (what the caller may do now) and absent on create and
// PUT, which would otherwise cost a second authorization round.
type systemJSON struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	LocationID string    `json:"locationId"`
	State      app.State `json:"state"`
	Actions    *[]string `json:"actions,omitempty"`
}

func toJSON(ss app.SecuritySystem, actions []string) systemJSON {
	j := systemJSON{ID: ss.ID, Name: ss.Name, LocationID: ss.LocationID, State: ss.State}
	if actions != nil {
		j.Actions = &actions
	}
	return j
}

func viewJSON(v app.View) systemJSON {
	actions := v.Actions
	if actions == nil {
		actions = []string{}
	}
	return toJSON(v.SecuritySystem, actions)
}

func (h *handlers) create(w http.ResponseWriter, r *http.Request) {
	var in struct {
		LocationID string `json:"locationId"`
		Name       string `json:"name"`
	}
	if err := httpx.DecodeJSON(r, &in); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	caller, err := auth.MustCaller(r.Context())
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	ss, err := h.svc.Create(r.Context(), caller, in.LocationID, in.Name)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	w.Header().Set("Location", "/securitysystems/"+ss.ID)
	httpx.WriteJSON(w, http.StatusCreated, toJSON(ss, nil))
}

func (h *handlers) list(w http.ResponseWriter, r *http.Request) {
	caller, err := auth.MustCaller(r.Context())
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	views, err := h.svc.List(r.Context(), caller)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	out := make([]systemJSON, len(views))
	for i, v := range views {
		out[i] = viewJSON(v)
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"securitySystems": out})
}

func (h *handlers) get(w http.ResponseWriter, r *http.Request) {
	id, err := httpx.PathUUID(r, "id")
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	caller, err := auth.MustCaller(r.Context())
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	v, err := h.svc.Get(r.Context(), caller, id.String())
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, viewJSON(v))
}

func (h *handlers) act(w http.ResponseWriter, r *http.Request) {
	id, err := httpx.PathUUID(r, "id")
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	var in struct {
		Action string `json:"action"`
	}
	if err := httpx.DecodeJSON(r, &in); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	action, err := app.ParseAction(in.Action)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	caller, err := auth.MustCaller(r.Context())
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	ss, err := h.svc.Act(r.Context(), caller, id.String(), action)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, toJSON(ss, nil))
}

type auditJSON struct {
	ID               string    `json:"id"`
	At               time.Time `json:"at"`
	UserID           string    `json:"userId"`
	SecuritySystemID string    `json:"securitySystemId"`
	Action           string    `json:"action"`
	Decision         string    `json:"decision"`
	Reason           string    `json:"reason,omitempty"`
	Strategy         string    `json:"strategy"`
}
