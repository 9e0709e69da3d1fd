// Package httpapi is the HTTP adapter of the Customer Service: its own
// routes (locations, dealers of locations, teams, location roles, profiles,
// location facts), composed with the organization kit's routes (customers,
// employees, roles, schedules), whose employee read and subject facts it
// extends with the data the kit does not own.
package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/realguardio/realguardio/internal/customer/app"
	"github.com/realguardio/realguardio/internal/orgkit"
	"github.com/realguardio/realguardio/internal/orgkit/orgkithttp"
	"github.com/realguardio/realguardio/internal/orgkit/paging"
	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/httpx"
)

// Handlers serves the Customer Service's HTTP API.
type Handlers struct {
	app *app.Service
	org *orgkit.Service
	kit *orgkithttp.Handlers
	// memberships answers GET /location-names for dealers' and
	// providers' employees (WithMemberships).
	memberships app.Memberships
}

// New returns the handlers over the service's use cases and the kit's.
func New(a *app.Service, org *orgkit.Service) *Handlers {
	return &Handlers{app: a, org: org, kit: orgkithttp.New(org, orgkithttp.Options{})}
}

// Routes returns the whole API of service (its name, for httpx.NewMux); every route expects the auth middleware in
// front of it. The kit's routes live on their own mux, reached for every
// path this mux does not claim, so that this service can take over single
// kit routes (the more specific pattern wins) without editing the kit.
func (h *Handlers) Routes(service string) http.Handler {
	kitMux := httpx.NewMux(service)
	h.kit.Register(kitMux)
	kit := http.Handler(kitMux)

	mux := httpx.NewMux(service)
	mux.Handle("/", kit)

	const cust = "/customers/{customerId}"
	const emp = cust + "/employees/{employeeId}"
	// The kit's changes (employees, roles, schedules) are served by the kit
	// as they are: its administrator check is the rule of every change
	// inside a customer, CUSTOMER_EMPLOYEE application role included.
	mux.Handle("GET "+emp, httpx.HandlerFunc(h.getEmployee))

	mux.Handle("POST "+cust+"/locations", httpx.HandlerFunc(h.createLocation))
	mux.Handle("POST "+cust+"/locations/import", httpx.HandlerFunc(h.importLocations))
	mux.Handle("POST "+cust+"/location-roles/import", httpx.HandlerFunc(h.importLocationRoles))
	mux.Handle("GET "+cust+"/locations", httpx.HandlerFunc(h.listLocations))
	mux.Handle("GET "+cust+"/locations/{locationId}", httpx.HandlerFunc(h.getLocation))
	mux.Handle("GET "+cust+"/locations/{locationId}/access", httpx.HandlerFunc(h.locationHolders))
	mux.Handle("DELETE "+cust+"/locations/{locationId}", httpx.HandlerFunc(h.deleteLocation))
	mux.Handle("PUT "+cust+"/locations/{locationId}/dealer", httpx.HandlerFunc(h.setLocationDealer))
	mux.Handle("PUT "+cust+"/locations/{locationId}/employee-roles/{employeeId}", httpx.HandlerFunc(h.setEmployeeLocationRoles))
	mux.Handle("PUT "+cust+"/locations/{locationId}/team-roles/{teamId}", httpx.HandlerFunc(h.setTeamLocationRoles))
	mux.Handle("POST "+cust+"/teams", httpx.HandlerFunc(h.createTeam))
	mux.Handle("GET "+cust+"/teams", httpx.HandlerFunc(h.listTeams))
	mux.Handle("GET "+cust+"/teams/{teamId}", httpx.HandlerFunc(h.getTeam))
	mux.Handle("DELETE "+cust+"/teams/{teamId}", httpx.HandlerFunc(h.deleteTeam))
	mux.Handle("GET "+cust+"/teams/{teamId}/members", httpx.HandlerFunc(h.listTeamMembers))
	mux.Handle("PUT "+cust+"/teams/{teamId}/members/{employeeId}", httpx.HandlerFunc(h.addTeamMember))
	mux.Handle("DELETE "+cust+"/teams/{teamId}/members/{employeeId}", httpx.HandlerFunc(h.removeTeamMember))

	mux.Handle("GET /location-names", httpx.HandlerFunc(h.locationNames))
	mux.Handle("GET /profiles", httpx.HandlerFunc(h.getProfile))
	mux.Handle("PUT /profiles", httpx.HandlerFunc(h.putProfile))

	mux.Handle("GET /authz/subjects/{userId}", httpx.HandlerFunc(h.subjectFacts))
	mux.Handle("GET /authz/locations/{locationId}", httpx.HandlerFunc(h.locationFacts))
	mux.Handle("POST /authz/locations:batch", httpx.HandlerFunc(h.locationFactsBatch))
	mux.Handle("POST /authz/locations:byDealers", httpx.HandlerFunc(h.locationsByDealers))
	h.RegisterAccessFacts(mux)
	return mux
}

// ids reads the caller and the named path ids (as canonical UUID strings).
func ids(r *http.Request, names ...string) (*auth.Caller, []string, error) {
	caller, err := auth.MustCaller(r.Context())
	if err != nil {
		return nil, nil, err
	}
	out := make([]string, len(names))
	for i, n := range names {
		id, err := httpx.PathUUID(r, n)
		if err != nil {
			return nil, nil, err
		}
		out[i] = id.String()
	}
	return caller, out, nil
}

// optionalID is a JSON string-or-null that remembers whether it was
// present, because for a location's dealer null means "clear" while a
// missing field is a mistake.
type optionalID struct {
	Set   bool
	Value string
}

// UnmarshalJSON accepts a string or null.
func (o *optionalID) UnmarshalJSON(b []byte) error {
	o.Set = true
	if bytes.Equal(b, []byte("null")) {
		o.Value = ""
		return nil
	}
	return json.Unmarshal(b, &o.Value)
}

// locationJSON is a location as the API returns it.
type locationJSON struct {
	ID       string  `json:"id"`
	Name     string  `json:"name"`
	DealerID *string `json:"dealerId"`
}

type grantJSON struct {
	EmployeeID string   `json:"employeeId"`
	Roles      []string `json:"roles"`
}

type teamGrant struct {
	TeamID string   `json:"teamId"`
	Roles  []string `json:"roles"`
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func toLocationJSON(l app.Location) locationJSON {
	return locationJSON{ID: l.ID, Name: l.Name, DealerID: nullable(l.DealerID)}
}

// locationViewJSON always carries both grant lists, [] when empty, so a
// client can tell "no grants" from an older server.
type locationViewJSON struct {
	ID            string      `json:"id"`
	CustomerID    string      `json:"customerId"`
	Name          string      `json:"name"`
	DealerID      *string     `json:"dealerId"`
	EmployeeRoles []grantJSON `json:"employeeRoles"`
	TeamRoles     []teamGrant `json:"teamRoles"`
}

func toLocationView(v app.LocationView) locationViewJSON {
	out := locationViewJSON{ID: v.ID, CustomerID: v.CustomerID, Name: v.Name, DealerID: nullable(v.DealerID),
		EmployeeRoles: []grantJSON{}, TeamRoles: []teamGrant{}}
	for _, g := range v.EmployeeRoles {
		out.EmployeeRoles = append(out.EmployeeRoles, grantJSON{EmployeeID: g.HolderID, Roles: g.Roles})
	}
	for _, g := range v.TeamRoles {
		out.TeamRoles = append(out.TeamRoles, teamGrant{TeamID: g.HolderID, Roles: g.Roles})
	}
	return out
}

type createLocationRequest struct {
	Name     string     `json:"name"`
	DealerID optionalID `json:"dealerId"`
}

func (h *Handlers) createLocation(w http.ResponseWriter, r *http.Request) error {
	caller, p, err := ids(r, "customerId")
	if err != nil {
		return err
	}
	var req createLocationRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		return err
	}
	l, err := h.app.CreateLocation(r.Context(), caller, p[0], req.Name, req.DealerID.Value)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/customers/"+p[0]+"/locations/"+l.ID)
	httpx.WriteJSON(w, http.StatusCreated, toLocationJSON(l))
	return nil
}

func (h *Handlers) listLocations(w http.ResponseWriter, r *http.Request) error {
	caller, p, err := ids(r, "customerId")
	if err != nil {
		return err
	}
	req, err := paging.Parse(r.URL.Query(), "/customers/"+p[0]+"/locations", 2, true)
	if err != nil {
		return err
	}
	page, err := h.app.Locations(r.Context(), caller, p[0], req)
	if err != nil {
		return err
	}
	out := make([]locationViewJSON, 0, len(page.Items))
	for _, v := range page.Items {
		out = append(out, toLocationView(v))
	}
	httpx.WriteJSON(w, http.StatusOK, paging.Body("locations", paging.Page[locationViewJSON]{Items: out, Next: page.Next}))
	return nil
}

func (h *Handlers) getLocation(w http.ResponseWriter, r *http.Request) error {
	caller, p, err := ids(r, "customerId", "locationId")
	if err != nil {
		return err
	}
	v, err := h.app.Location(r.Context(), caller, p[0], p[1])
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, toLocationView(v))
	return nil
}

type dealerRequest struct {
	DealerID optionalID `json:"dealerId"`
}

func (h *Handlers) setLocationDealer(w http.ResponseWriter, r *http.Request) error {
	caller, p, err := ids(r, "customerId", "locationId")
	if err != nil {
		return err
	}
	var req dealerRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		return err
	}
	if !req.DealerID.Set {
		return apperr.InvalidField("dealerId", "is required (null removes the dealer)")
	}
	l, err := h.app.SetLocationDealer(r.Context(), caller, p[0], p[1], req.DealerID.Value)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, toLocationJSON(l))
	return nil
}

type rolesBody struct {
	Roles []string `json:"roles"`
}

func (h *Handlers) setEmployeeLocationRoles(w http.ResponseWriter, r *http.Request) error {
	caller, p, err := ids(r, "customerId", "locationId", "employeeId")
	if err != nil {
		return err
	}
	var req rolesBody
	if err := httpx.DecodeJSON(r, &req); err != nil {
		return err
	}
	roles, err := h.app.SetEmployeeLocationRoles(r.Context(), caller, p[0], p[1], p[2], req.Roles)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, rolesBody{Roles: roles})
	return nil
}

func (h *Handlers) setTeamLocationRoles(w http.ResponseWriter, r *http.Request) error {
	caller, p, err := ids(r, "customerId", "locationId", "teamId")
	if err != nil {
		return err
	}
	var req rolesBody
	if err := httpx.DecodeJSON(r, &req); err != nil {
		return err
	}
	roles, err := h.app.SetTeamLocationRoles(r.Context(), caller, p[0], p[1], p[2], req.Roles)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, rolesBody{Roles: roles})
	return nil
}

type teamJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type teamViewJSON struct {
	ID         string   `json:"id"`
	CustomerID string   `json:"customerId"`
	Name       string   `json:"name"`
	Members    []string `json:"members"`
	// LocationRoles is present on GET of one team only.
	LocationRoles map[string][]string `json:"locationRoles,omitzero"`
}

func toTeamView(v app.TeamView) teamViewJSON {
	return teamViewJSON{ID: v.ID, CustomerID: v.CustomerID, Name: v.Name, Members: v.Members, LocationRoles: v.LocationRoles}
}

// employeeTeamJSON is a team of an employee with the roles the team holds
// by location id: the employee's location roles through that team.
type employeeTeamJSON struct {
	ID            string              `json:"id"`
	Name          string              `json:"name"`
	LocationRoles map[string][]string `json:"locationRoles"`
}

type createTeamRequest struct {
	Name string `json:"name"`
}

func (h *Handlers) createTeam(w http.ResponseWriter, r *http.Request) error {
	caller, p, err := ids(r, "customerId")
	if err != nil {
		return err
	}
	var req createTeamRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		return err
	}
	t, err := h.app.CreateTeam(r.Context(), caller, p[0], req.Name)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/customers/"+p[0]+"/teams/"+t.ID)
	httpx.WriteJSON(w, http.StatusCreated, teamJSON{ID: t.ID, Name: t.Name})
	return nil
}

func (h *Handlers) listTeams(w http.ResponseWriter, r *http.Request) error {
	caller, p, err := ids(r, "customerId")
	if err != nil {
		return err
	}
	req, err := paging.Parse(r.URL.Query(), "/customers/"+p[0]+"/teams", 2, true)
	if err != nil {
		return err
	}
	page, err := h.app.Teams(r.Context(), caller, p[0], req)
	if err != nil {
		return err
	}
	out := make([]teamViewJSON, 0, len(page.Items))
	for _, v := range page.Items {
		out = append(out, toTeamView(v))
	}
	httpx.WriteJSON(w, http.StatusOK, paging.Body("teams", paging.Page[teamViewJSON]{Items: out, Next: page.Next}))
	return nil
}

func (h *Handlers) getTeam(w http.ResponseWriter, r *http.Request) error {
	caller, p, err := ids(r, "customerId", "teamId")
	if err != nil {
		return err
	}
	v, err := h.app.Team(r.Context(), caller, p[0], p[1])
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, toTeamView(v))
	return nil
}

// memberJSON is a team member as GET .../members lists it.
type memberJSON struct {
	EmployeeID string `json:"employeeId"`
	UserID     string `json:"userId"`
	Email      string `json:"email"`
	FirstName  string `json:"firstName"`
	LastName   string `json:"lastName"`
}

func (h *Handlers) listTeamMembers(w http.ResponseWriter, r *http.Request) error {
	caller, p, err := ids(r, "customerId", "teamId")
	if err != nil {
		return err
	}
	req, err := paging.Parse(r.URL.Query(), "/customers/"+p[0]+"/teams/"+p[1]+"/members", 3, false)
	if err != nil {
		return err
	}
	page, err := h.app.Members(r.Context(), caller, p[0], p[1], req)
	if err != nil {
		return err
	}
	out := make([]memberJSON, 0, len(page.Items))
	for _, e := range page.Items {
		out = append(out, memberJSON{EmployeeID: e.ID, UserID: e.UserID, Email: e.Email, FirstName: e.FirstName, LastName: e.LastName})
	}
	httpx.WriteJSON(w, http.StatusOK, paging.Body("members", paging.Page[memberJSON]{Items: out, Next: page.Next}))
	return nil
}

// maxImportBytes bounds the body of a bulk import: 10 000 items of two
// UUIDs and a few roles are about 1.5 MB, so 8 MiB leaves room for
// formatting while still refusing a runaway upload before it is read.
const maxImportBytes = 8 << 20

type importLocationsRequest struct {
	Locations []createLocationRequest `json:"locations"`
}

func (h *Handlers) importLocations(w http.ResponseWriter, r *http.Request) error {
	caller, p, err := ids(r, "customerId")
	if err != nil {
		return err
	}
	var req importLocationsRequest
	if err := httpx.DecodeJSONMax(r, &req, maxImportBytes); err != nil {
		return err
	}
	var items []app.NewLocation
	if req.Locations != nil {
		items = make([]app.NewLocation, len(req.Locations))
		for i, l := range req.Locations {
			items[i] = app.NewLocation{Name: l.Name, DealerID: l.DealerID.Value}
		}
	}
	out, err := h.app.ImportLocations(r.Context(), caller, p[0], items)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusCreated, map[string]any{"ids": out})
	return nil
}

type grantItem struct {
	LocationID string   `json:"locationId"`
	EmployeeID string   `json:"employeeId"`
	Roles      []string `json:"roles"`
}

type importGrantsRequest struct {
	Grants []grantItem `json:"grants"`
}

func (h *Handlers) importLocationRoles(w http.ResponseWriter, r *http.Request) error {
	caller, p, err := ids(r, "customerId")
	if err != nil {
		return err
	}
	var req importGrantsRequest
	if err := httpx.DecodeJSONMax(r, &req, maxImportBytes); err != nil {
		return err
	}
	var items []app.GrantInput
	if req.Grants != nil {
		items = make([]app.GrantInput, len(req.Grants))
		for i, g := range req.Grants {
			items[i] = app.GrantInput{LocationID: g.LocationID, EmployeeID: g.EmployeeID, Roles: g.Roles}
		}
	}
	n, err := h.app.ImportEmployeeLocationRoles(r.Context(), caller, p[0], items)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"imported": n})
	return nil
}

func (h *Handlers) addTeamMember(w http.ResponseWriter, r *http.Request) error {
	caller, p, err := ids(r, "customerId", "teamId", "employeeId")
	if err != nil {
		return err
	}
	if err := h.app.AddTeamMember(r.Context(), caller, p[0], p[1], p[2]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handlers) removeTeamMember(w http.ResponseWriter, r *http.Request) error {
	caller, p, err := ids(r, "customerId", "teamId", "employeeId")
	if err != nil {
		return err
	}
	if err := h.app.RemoveTeamMember(r.Context(), caller, p[0], p[1], p[2]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// employeeJSON is the kit's employee with this service's grants beside it.
type employeeJSON struct {
	orgkit.EmployeeDetails
	LocationRoles map[string][]string `json:"locationRoles"`
	Teams         []employeeTeamJSON  `json:"teams"`
}

func (h *Handlers) getEmployee(w http.ResponseWriter, r *http.Request) error {
	caller, p, err := ids(r, "customerId", "employeeId")
	if err != nil {
		return err
	}
	d, err := h.org.GetEmployee(r.Context(), caller, p[0], p[1])
	if err != nil {
		return err
	}
	g, err := h.app.EmployeeGrants(r.Context(), d.ID)
	if err != nil {
		return err
	}
	out := employeeJSON{EmployeeDetails: d, LocationRoles: g.LocationRoles, Teams: []employeeTeamJSON{}}
	for _, t := range g.Teams {
		roles := g.TeamLocationRoles[t.ID]
		if roles == nil {
			roles = map[string][]string{}
		}
		out.Teams = append(out.Teams, employeeTeamJSON{ID: t.ID, Name: t.Name, LocationRoles: roles})
	}
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}

type profileJSON struct {
	FirstName   string `json:"firstName"`
	LastName    string `json:"lastName"`
	PhoneNumber string `json:"phoneNumber"`
}

func (h *Handlers) getProfile(w http.ResponseWriter, r *http.Request) error {
	caller, err := auth.MustCaller(r.Context())
	if err != nil {
		return err
	}
	p, err := h.app.Profile(r.Context(), caller)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, profileJSON{FirstName: p.FirstName, LastName: p.LastName, PhoneNumber: p.PhoneNumber})
	return nil
}

func (h *Handlers) putProfile(w http.ResponseWriter, r *http.Request) error {
	caller, err := auth.MustCaller(r.Context())
	if err != nil {
		return err
	}
	// The role is checked before the body is read so that the answer to
	// a caller without it does not depend on what it sent.
	if _, err := auth.RequireRole(r.Context(), auth.RoleCustomerEmployee); err != nil {
		return err
	}
	var req profileJSON
	if err := httpx.DecodeJSON(r, &req); err != nil {
		return err
	}
	p, err := h.app.UpdateProfile(r.Context(), caller, app.Profile{FirstName: req.FirstName, LastName: req.LastName, PhoneNumber: req.PhoneNumber})
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, profileJSON{FirstName: p.FirstName, LastName: p.LastName, PhoneNumber: p.PhoneNumber})
	return nil
}

// subjectFacts answers the kit's subject facts with the user's location
// roles merged from direct grants and team grants.
func (h *Handlers) subjectFacts(w http.ResponseWriter, r *http.Request) error {
	caller, err := auth.MustCaller(r.Context())
	if err != nil {
		return err
	}
	// The user id is the IAM sub, a UUID; anything else names nobody.
	uid, err := httpx.PathUUID(r, "userId")
	if err != nil {
		return err
	}
	userID := uid.String()
	facts, err := h.org.SubjectFacts(r.Context(), caller, userID)
	if err != nil {
		return err
	}
	facts.LocationRoles = map[string][]string{}
	if facts.Organization != nil {
		roles, err := h.app.SubjectLocationRoles(r.Context(), userID)
		if err != nil {
			return err
		}
		facts.LocationRoles = roles
	}
	httpx.WriteJSON(w, http.StatusOK, facts)
	return nil
}

type locationFactsJSON struct {
	LocationID string  `json:"locationId"`
	CustomerID string  `json:"customerId"`
	DealerID   *string `json:"dealerId"`
}

func toFacts(f app.LocationFacts) locationFactsJSON {
	return locationFactsJSON{LocationID: f.LocationID, CustomerID: f.CustomerID, DealerID: nullable(f.DealerID)}
}

func (h *Handlers) locationFacts(w http.ResponseWriter, r *http.Request) error {
	caller, p, err := ids(r, "locationId")
	if err != nil {
		return err
	}
	if err := orgkit.AuthorizeFacts(caller, ""); err != nil {
		return err
	}
	f, err := h.app.LocationFacts(r.Context(), p[0])
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, toFacts(f))
	return nil
}

type batchRequest struct {
	LocationIDs []string `json:"locationIds"`
}

func (h *Handlers) locationFactsBatch(w http.ResponseWriter, r *http.Request) error {
	if err := orgkit.RequireFactsReader(r.Context()); err != nil {
		return err
	}
	var req batchRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		return err
	}
	facts, err := h.app.LocationFactsBatch(r.Context(), req.LocationIDs)
	if err != nil {
		return err
	}
	out := make([]locationFactsJSON, 0, len(facts))
	for _, f := range facts {
		out = append(out, toFacts(f))
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"locations": out})
	return nil
}

func (h *Handlers) deleteLocation(w http.ResponseWriter, r *http.Request) error {
	caller, p, err := ids(r, "customerId", "locationId")
	if err != nil {
		return err
	}
	if err := h.app.DeleteLocation(r.Context(), caller, p[0], p[1]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handlers) deleteTeam(w http.ResponseWriter, r *http.Request) error {
	caller, p, err := ids(r, "customerId", "teamId")
	if err != nil {
		return err
	}
	if err := h.app.DeleteTeam(r.Context(), caller, p[0], p[1]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// WithMemberships sets how GET /location-names learns the dealer and
// monitoring provider of a caller; without it their employees get no
// names.
func (h *Handlers) WithMemberships(m app.Memberships) *Handlers {
	h.memberships = m
	return h
}

// locationNames is GET /location-names?ids=a,b,c: the names of those
// locations the caller may see (app.Service.LocationNames), for pages
// that show the locations of systems the caller views.
func (h *Handlers) locationNames(w http.ResponseWriter, r *http.Request) error {
	caller, err := auth.MustCaller(r.Context())
	if err != nil {
		return err
	}
	var ids []string
	if v := strings.TrimSpace(r.URL.Query().Get("ids")); v != "" {
		ids = strings.Split(v, ",")
	}
	names, err := h.app.LocationNames(r.Context(), caller, r.Header.Get("Authorization"), h.memberships, ids)
	if err != nil {
		return err
	}
	out := make([]map[string]string, len(names))
	for i, n := range names {
		out[i] = map[string]string{"id": n.ID, "name": n.Name, "customerId": n.CustomerID}
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"locations": out})
	return nil
}
