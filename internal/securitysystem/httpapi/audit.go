package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/securitysystem/app"
)

// auditHandlers serves GET /audit.
type auditHandlers struct{ audit *app.AuditReader }

type auditRecordJSON struct {
	auditJSON
	SecuritySystemName string `json:"securitySystemName"`
}

// search answers GET /audit: filters securitySystemId, userId, action,
// decision, since and until (RFC 3339), paged by limit and cursor.
func (h auditHandlers) search(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	s := app.AuditSearch{Cursor: q.Get("cursor"), Filter: app.AuditFilter{
		SecuritySystemID: q.Get("securitySystemId"), UserID: q.Get("userId"),
		Action: app.Action(q.Get("action")), Decision: q.Get("decision"),
	}}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return apperr.MalformedField("limit", "must be an integer")
		}
		if n == 0 {
			n = -1 // an explicit 0 is out of range, not "the default"
		}
		s.Filter.Limit = n
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &s.Filter.Since}, {"until", &s.Filter.Until}} {
		if v := q.Get(t.name); v != "" {
			at, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return apperr.MalformedField(t.name, "must be an RFC 3339 instant such as 2026-03-10T09:00:00Z")
			}
			*t.dst = at
		}
	}
	caller, err := auth.MustCaller(r.Context())
	if err != nil {
		return err
	}
	page, err := h.audit.Read(r.Context(), caller, s)
	if err != nil {
		return err
	}
	out := make([]auditRecordJSON, len(page.Entries))
	for i, e := range page.Entries {
		out[i] = auditRecordJSON{auditJSON: auditJSON{ID: e.ID, At: e.At, UserID: e.UserID, SecuritySystemID: e.SecuritySystemID,
			Action: string(e.Action), Decision: e.Decision, Reason: e.Reason, Strategy: e.Strategy}, SecuritySystemName: e.SecuritySystemName}
	}
	var next *string
	if page.NextCursor != "" {
		next = &page.NextCursor
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"entries": out, "nextCursor": next})
	return nil
}
