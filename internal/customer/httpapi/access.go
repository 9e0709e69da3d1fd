package httpapi

import (
	"net/http"

	"github.com/realguardio/realguardio/internal/customer/app"
	"github.com/realguardio/realguardio/internal/orgkit"
	"github.com/realguardio/realguardio/internal/orgkit/orgkithttp"
	"github.com/realguardio/realguardio/internal/orgkit/paging"
	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/policy"
)

// RegisterAccessFacts adds the Customer Service's access-review facts
// (docs/fetch-api.md, "Access review"): the location's holders, and the
// kit's organization role holders.
func (h *Handlers) RegisterAccessFacts(mux httpx.Router) {
	mux.Handle("GET /authz/locations/{locationId}/access", httpx.HandlerFunc(h.locationAccess))
	h.kit.RegisterAccessFacts(mux)
}

type teamGrantJSON struct {
	TeamID string   `json:"teamId"`
	Name   string   `json:"name"`
	Roles  []string `json:"roles"`
}

type accessHolderJSON struct {
	UserID            string           `json:"userId"`
	Username          string           `json:"username"`
	OrganizationRoles []string         `json:"organizationRoles"`
	LocationRoles     []string         `json:"locationRoles"`
	Teams             []teamGrantJSON  `json:"teams"`
	Schedule          *policy.Schedule `json:"schedule"`
}

type locationAccessJSON struct {
	LocationID   string             `json:"locationId"`
	LocationName string             `json:"locationName"`
	CustomerID   string             `json:"customerId"`
	CustomerName string             `json:"customerName"`
	DealerID     *string            `json:"dealerId"`
	Users        []accessHolderJSON `json:"users"`
	More         bool               `json:"more"`
}

func (h *Handlers) locationAccess(w http.ResponseWriter, r *http.Request) error {
	if err := orgkit.RequireFactsReader(r.Context()); err != nil {
		return err
	}
	_, p, err := ids(r, "locationId")
	if err != nil {
		return err
	}
	page, err := orgkithttp.ParseAccessPage(r)
	if err != nil {
		return err
	}
	a, err := h.app.LocationAccess(r.Context(), p[0], app.AccessPage{
		Limit: page.Limit, AfterUsername: page.AfterUsername, AfterUserID: page.AfterUserID, UserID: page.UserID,
	})
	if err != nil {
		return err
	}
	out := locationAccessJSON{
		LocationID: a.Location.ID, LocationName: a.Location.Name, CustomerID: a.Location.CustomerID,
		CustomerName: a.CustomerName, DealerID: nullable(a.Location.DealerID),
		Users: make([]accessHolderJSON, len(a.Holders)), More: a.More,
	}
	for i, ah := range a.Holders {
		teams := make([]teamGrantJSON, len(ah.Teams))
		for j, t := range ah.Teams {
			teams[j] = teamGrantJSON{TeamID: t.TeamID, Name: t.Name, Roles: t.Roles}
		}
		out.Users[i] = accessHolderJSON{UserID: ah.UserID, Username: ah.Username, OrganizationRoles: ah.OrganizationRoles,
			LocationRoles: ah.LocationRoles, Teams: teams, Schedule: ah.Schedule}
	}
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}

// locationHolderJSON is one holder of GET .../locations/{id}/access: the
// access-review facts with the employee's id, so the console links them.
type locationHolderJSON struct {
	EmployeeID string `json:"employeeId"`
	accessHolderJSON
}

// locationHolders is GET /customers/{customerId}/locations/{locationId}/access:
// the customer's employees who hold a security system role at the location
// (directly, through a team, or as an organization role), paged by
// username then user id.
func (h *Handlers) locationHolders(w http.ResponseWriter, r *http.Request) error {
	caller, p, err := ids(r, "customerId", "locationId")
	if err != nil {
		return err
	}
	req, err := paging.Parse(r.URL.Query(), "/customers/"+p[0]+"/locations/"+p[1]+"/access", 2, false)
	if err != nil {
		return err
	}
	page := app.AccessPage{Limit: req.Limit}
	if req.After != nil {
		page.AfterUsername, page.AfterUserID = req.After[0], req.After[1]
	}
	a, err := h.app.LocationHolders(r.Context(), caller, p[0], p[1], page)
	if err != nil {
		return err
	}
	users := make([]locationHolderJSON, len(a.Holders))
	for i, ah := range a.Holders {
		teams := make([]teamGrantJSON, len(ah.Teams))
		for j, t := range ah.Teams {
			teams[j] = teamGrantJSON{TeamID: t.TeamID, Name: t.Name, Roles: t.Roles}
		}
		users[i] = locationHolderJSON{EmployeeID: ah.EmployeeID, accessHolderJSON: accessHolderJSON{UserID: ah.UserID, Username: ah.Username,
			OrganizationRoles: nonNil(ah.OrganizationRoles), LocationRoles: nonNil(ah.LocationRoles), Teams: teams, Schedule: ah.Schedule}}
	}
	var next any
	if a.More && len(a.Holders) > 0 {
		last := a.Holders[len(a.Holders)-1]
		next = req.Cursor([]string{last.Username, last.UserID})
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"locationId": a.Location.ID, "dealerId": nullable(a.Location.DealerID), "users": users, "nextCursor": next})
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
