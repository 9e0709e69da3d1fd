package httpapi

import (
	"net/http"
	"strconv"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/securitysystem/app"
)

// accessHandlers serves GET /securitysystems/{id}/access.
type accessHandlers struct{ review *app.AccessReviewer }

type accessUserJSON struct {
	UserID     string           `json:"userId"`
	Username   string           `json:"username"`
	Actions    []string         `json:"actions"`
	AllowedNow []string         `json:"allowedNow"`
	Grants     []policy.Grant   `json:"grants"`
	Schedule   *policy.Schedule `json:"schedule,omitempty"`
}

type accessJSON struct {
	SecuritySystemID string           `json:"securitySystemId"`
	Users            []accessUserJSON `json:"users"`
	NextCursor       *string          `json:"nextCursor"`
}

func (h accessHandlers) access(w http.ResponseWriter, r *http.Request) error {
	id, err := httpx.PathUUID(r, "id")
	if err != nil {
		return err
	}
	q := app.AccessQuery{Cursor: r.URL.Query().Get("cursor"), UserID: r.URL.Query().Get("userId")}
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return apperr.MalformedField("limit", "must be an integer")
		}
		if n == 0 {
			n = -1 // an explicit 0 is out of range, not "the default"
		}
		q.Limit = n
	}
	caller, err := auth.MustCaller(r.Context())
	if err != nil {
		return err
	}
	rev, err := h.review.Review(r.Context(), caller, id.String(), q)
	if err != nil {
		return err
	}
	out := accessJSON{SecuritySystemID: rev.SecuritySystemID, Users: make([]accessUserJSON, len(rev.Users))}
	for i, e := range rev.Users {
		out.Users[i] = accessUserJSON{UserID: e.UserID, Username: e.Username, Actions: e.Actions,
			AllowedNow: e.AllowedNow, Grants: e.Grants, Schedule: e.Schedule}
	}
	if rev.NextCursor != "" {
		out.NextCursor = &rev.NextCursor
	}
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}
