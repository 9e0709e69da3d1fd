// Package httpapi is the HTTP surface of the Security System Service
// (API.md, "Security System Service"; api/securitysystem.yaml). Every
// handler does the same steps: decode, read the caller, call the use case,
// write the answer; an error at any step is returned to httpx.HandlerFunc,
// which writes it as problem+json.
package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/securitysystem/app"
)

// Handler returns the routes of the service, each behind authenticate
// (the token validator's middleware); reviews answer the access reviews
// and the audit.
func Handler(svc *app.Service, reviews app.Reviews, authenticate func(http.Handler) http.Handler) http.Handler {
	h := &handlers{svc: svc}
	mux := httpx.NewMux("securitysystem")
	mux.Handle("POST /securitysystems", httpx.HandlerFunc(h.create))
	mux.Handle("POST /securitysystems/import", httpx.HandlerFunc(h.importSystems))
	mux.Handle("GET /securitysystems", httpx.HandlerFunc(h.list))
	mux.Handle("GET /securitysystems/{id}", httpx.HandlerFunc(h.get))
	mux.Handle("PUT /securitysystems/{id}", httpx.HandlerFunc(h.act))
	mux.Handle("GET /securitysystems/{id}/access", httpx.HandlerFunc(accessHandlers{reviews.Access}.access))
	mux.Handle("GET /audit", httpx.HandlerFunc(auditHandlers{reviews.Audit}.search))
	return authenticate(httpx.Routes(mux))
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

func (h *handlers) create(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		LocationID string `json:"locationId"`
		Name       string `json:"name"`
	}
	if err := httpx.DecodeJSON(r, &in); err != nil {
		return err
	}
	caller, err := auth.MustCaller(r.Context())
	if err != nil {
		return err
	}
	ss, err := h.svc.Create(r.Context(), caller, in.LocationID, in.Name)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/securitysystems/"+ss.ID)
	httpx.WriteJSON(w, http.StatusCreated, toJSON(ss, nil))
	return nil
}

// maxImportBytes bounds the body of an import: 10 000 systems with names
// of 200 characters (up to four bytes each) and their location ids.
const maxImportBytes = 10 << 20

func (h *handlers) importSystems(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		SecuritySystems []struct {
			LocationID string `json:"locationId"`
			Name       string `json:"name"`
		} `json:"securitySystems"`
	}
	if err := decodeLarge(r, &in, maxImportBytes); err != nil {
		return err
	}
	caller, err := auth.MustCaller(r.Context())
	if err != nil {
		return err
	}
	var items []app.ImportItem
	if in.SecuritySystems != nil {
		items = make([]app.ImportItem, len(in.SecuritySystems))
		for i, it := range in.SecuritySystems {
			items[i] = app.ImportItem{LocationID: it.LocationID, Name: it.Name}
		}
	}
	ids, err := h.svc.Import(r.Context(), caller, items)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusCreated, map[string]any{"ids": ids})
	return nil
}

// decodeLarge is httpx.DecodeJSON for a body larger than its bound: the
// body is limited to max bytes and then decoded by httpx.DecodeJSON's rules
// (content type, unknown fields, one value).
func decodeLarge(r *http.Request, dst any, max int64) error {
	raw, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, max))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return apperr.New(apperr.TooLarge, "request body exceeds %d bytes", max)
		}
		return apperr.Wrap(err, apperr.Malformed, "request body could not be read")
	}
	if int64(len(raw)) <= httpx.MaxBodyBytes {
		r2 := r.Clone(r.Context())
		r2.Body = io.NopCloser(bytes.NewReader(raw))
		return httpx.DecodeJSON(r2, dst)
	}
	// Past DecodeJSON's own bound: decode in parts of at most that size
	// is not possible for one value, so decode directly with its rules.
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return apperr.New(apperr.Malformed, "Content-Type must be application/json")
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return apperr.Wrap(err, apperr.Malformed, "request body is not the JSON this endpoint takes")
	}
	if dec.More() {
		return apperr.New(apperr.Malformed, "request body must hold a single JSON value")
	}
	return nil
}

// listParams are the query parameters of GET /securitysystems.
var listParams = []string{"limit", "cursor", "locationId", "customerId", "state", "q"}

func (h *handlers) list(w http.ResponseWriter, r *http.Request) error {
	qs := r.URL.Query()
	for _, p := range listParams {
		if len(qs[p]) > 1 {
			return apperr.MalformedField(p, "must be given at most once")
		}
	}
	q := app.ListQuery{
		Cursor: qs.Get("cursor"), LocationID: qs.Get("locationId"), CustomerID: qs.Get("customerId"),
		State: qs.Get("state"), Q: qs.Get("q"),
	}
	limit, err := limitParam(qs.Get("limit"))
	if err != nil {
		return err
	}
	q.Limit = limit
	caller, err := auth.MustCaller(r.Context())
	if err != nil {
		return err
	}
	page, err := h.svc.List(r.Context(), caller, q)
	if err != nil {
		return err
	}
	out := make([]systemJSON, len(page.Systems))
	for i, v := range page.Systems {
		out[i] = viewJSON(v)
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"securitySystems": out, "nextCursor": nullable(page.NextCursor)})
	return nil
}

// limitParam reads a limit parameter: absent is 0 (the default), an
// explicit 0 is out of range rather than the default, and anything but an
// integer is malformed.
func limitParam(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, apperr.MalformedField("limit", "must be an integer")
	}
	if n == 0 {
		n = -1
	}
	return n, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (h *handlers) get(w http.ResponseWriter, r *http.Request) error {
	id, err := httpx.PathUUID(r, "id")
	if err != nil {
		return err
	}
	caller, err := auth.MustCaller(r.Context())
	if err != nil {
		return err
	}
	v, err := h.svc.Get(r.Context(), caller, id.String())
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, viewJSON(v))
	return nil
}

func (h *handlers) act(w http.ResponseWriter, r *http.Request) error {
	id, err := httpx.PathUUID(r, "id")
	if err != nil {
		return err
	}
	var in struct {
		Action string `json:"action"`
	}
	if err := httpx.DecodeJSON(r, &in); err != nil {
		return err
	}
	action, err := app.ParseAction(in.Action)
	if err != nil {
		return err
	}
	caller, err := auth.MustCaller(r.Context())
	if err != nil {
		return err
	}
	ss, err := h.svc.Act(r.Context(), caller, id.String(), action)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, toJSON(ss, nil))
	return nil
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
