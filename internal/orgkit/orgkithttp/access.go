package orgkithttp

import (
	"net/http"
	"strconv"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/orgkit"
	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/httpx"
)

// RegisterAccessFacts adds GET /authz/organizations/{organizationId}/role-holders,
// the organization-role part of the access review's facts
// (docs/fetch-api.md, "Access review").
func (h *Handlers) RegisterAccessFacts(mux httpx.Router) {
	mux.Handle("GET /authz/organizations/{organizationId}/role-holders", httpx.HandlerFunc(h.roleHolders))
}

// ParseAccessPage reads limit, afterUsername, afterUserId and userId from
// the query of an access-facts request.
func ParseAccessPage(r *http.Request) (orgkit.AccessPage, error) {
	q := r.URL.Query()
	p := orgkit.AccessPage{AfterUsername: q.Get("afterUsername")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return p, apperr.MalformedField("limit", "must be an integer")
		}
		if n == 0 {
			n = -1 // an explicit 0 is out of range, not "the default"
		}
		p.Limit = n
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"afterUserId", &p.AfterUserID}, {"userId", &p.UserID}} {
		s := q.Get(f.name)
		if s == "" {
			continue
		}
		id, err := uuid.Parse(s)
		if err != nil {
			return p, apperr.MalformedField(f.name, "must be a UUID")
		}
		*f.dst = id.String()
	}
	return p, orgkit.CheckAccessPage(&p)
}

func (h *Handlers) roleHolders(w http.ResponseWriter, r *http.Request) error {
	if err := orgkit.RequireFactsReader(r.Context()); err != nil {
		return err
	}
	orgID, err := pathID(r, "organizationId")
	if err != nil {
		return err
	}
	p, err := ParseAccessPage(r)
	if err != nil {
		return err
	}
	out, err := h.svc.RoleHolders(r.Context(), orgID, p)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}
