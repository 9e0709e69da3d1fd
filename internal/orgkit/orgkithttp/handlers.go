// Package orgkithttp is the HTTP adapter of package orgkit: the routes every
// organization service serves for its organizations, employees, roles,
// schedules and subject facts, under the kind's path prefix and parameter
// names (API.md). Each handler does the same steps: read the caller, decode,
// call the use case, write the answer or the error.
package orgkithttp

import (
	"context"
	"net/http"

	"github.com/realguardio/realguardio/internal/orgkit"
	"github.com/realguardio/realguardio/internal/orgkit/paging"
	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/policy"
)

// Options customizes the handlers for one service.
type Options struct {
	// OrganizationView, when set, turns an organization into the JSON of
	// GET {prefix}/{id}, so a service can add the data it owns beside the
	// kit's (the dealer adds its monitoring provider). The default is the
	// organization itself, {"id","name"}.
	OrganizationView func(ctx context.Context, o orgkit.Organization) (any, error)
}

// Handlers serves the kit's routes for one kind.
type Handlers struct {
	svc  *orgkit.Service
	kind orgkit.Kind
	opts Options
}

// New returns the handlers of svc.
func New(svc *orgkit.Service, opts Options) *Handlers {
	return &Handlers{svc: svc, kind: svc.Kind(), opts: opts}
}

// Register adds the organization and employee routes to mux. Every route
// expects the auth middleware in front of it.
func (h *Handlers) Register(mux httpx.Router) {
	p := h.kind.PathPrefix
	org := p + "/{" + h.kind.PathParam + "}"
	emp := org + "/employees/{employeeId}"
	mux.Handle("POST "+p, httpx.HandlerFunc(h.createOrganization))
	mux.Handle("GET "+p, httpx.HandlerFunc(h.listOrganizations))
	mux.Handle("GET "+org, httpx.HandlerFunc(h.getOrganization))
	mux.Handle("POST "+org+"/employees", httpx.HandlerFunc(h.createEmployee))
	mux.Handle("GET "+org+"/employees", httpx.HandlerFunc(h.listEmployees))
	mux.Handle("GET "+emp, httpx.HandlerFunc(h.getEmployee))
	mux.Handle("DELETE "+emp, httpx.HandlerFunc(h.removeEmployee))
	mux.Handle("POST "+emp+"/password-reset", httpx.HandlerFunc(h.resetPassword))
	mux.Handle("PUT "+emp+"/roles", httpx.HandlerFunc(h.setRoles))
	mux.Handle("GET "+emp+"/account", httpx.HandlerFunc(h.getAccount))
	mux.Handle("PUT "+emp+"/account", httpx.HandlerFunc(h.setAccount))
	mux.Handle("PUT "+emp+"/schedule", httpx.HandlerFunc(h.setSchedule))
	mux.Handle("DELETE "+emp+"/schedule", httpx.HandlerFunc(h.clearSchedule))
}

// RegisterSubjectFacts adds GET /authz/subjects/{userId}. It is separate
// from Register because the customer service answers it with location
// roles the kit does not know.
func (h *Handlers) RegisterSubjectFacts(mux httpx.Router) {
	mux.Handle("GET /authz/subjects/{userId}", httpx.HandlerFunc(h.subjectFacts))
}

// OrgID returns the organization id of the request's path, parsed as a
// UUID and in canonical lower-case form.
func (h *Handlers) OrgID(r *http.Request) (string, error) {
	id, err := httpx.PathUUID(r, h.kind.PathParam)
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

func pathID(r *http.Request, name string) (string, error) {
	id, err := httpx.PathUUID(r, name)
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

// orgAndEmployee reads the caller and both path ids.
func (h *Handlers) orgAndEmployee(r *http.Request) (*auth.Caller, string, string, error) {
	caller, err := auth.MustCaller(r.Context())
	if err != nil {
		return nil, "", "", err
	}
	orgID, err := h.OrgID(r)
	if err != nil {
		return nil, "", "", err
	}
	empID, err := pathID(r, "employeeId")
	if err != nil {
		return nil, "", "", err
	}
	return caller, orgID, empID, nil
}

type createOrganizationRequest struct {
	Name          string              `json:"name"`
	Administrator *orgkit.NewEmployee `json:"administrator"`
}

func (h *Handlers) createOrganization(w http.ResponseWriter, r *http.Request) error {
	caller, err := auth.MustCaller(r.Context())
	if err != nil {
		return err
	}
	// The role is checked before the body is read so that the RBAC answer
	// does not depend on what an unauthorized caller sent.
	if !caller.HasRole(h.kind.CreatorRole) {
		return apperr.Denied(policy.ReasonNoRole, "the application role %s is required", h.kind.CreatorRole)
	}
	var req createOrganizationRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.Administrator == nil {
		return apperr.InvalidField("administrator", "is required")
	}
	out, err := h.svc.CreateOrganization(r.Context(), caller, req.Name, *req.Administrator)
	if err != nil {
		return err
	}
	w.Header().Set("Location", h.kind.PathPrefix+"/"+out.ID)
	httpx.WriteJSON(w, http.StatusCreated, out)
	return nil
}

func (h *Handlers) view(ctx context.Context, o orgkit.Organization) (any, error) {
	if h.opts.OrganizationView == nil {
		return o, nil
	}
	return h.opts.OrganizationView(ctx, o)
}

func (h *Handlers) listOrganizations(w http.ResponseWriter, r *http.Request) error {
	caller, err := auth.MustCaller(r.Context())
	if err != nil {
		return err
	}
	req, err := paging.Parse(r.URL.Query(), h.kind.PathPrefix, 2, true)
	if err != nil {
		return err
	}
	page, err := h.svc.ListOrganizations(r.Context(), caller, req)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, paging.Body(h.kind.CollectionKey, page))
	return nil
}

func (h *Handlers) getOrganization(w http.ResponseWriter, r *http.Request) error {
	caller, err := auth.MustCaller(r.Context())
	if err != nil {
		return err
	}
	orgID, err := h.OrgID(r)
	if err != nil {
		return err
	}
	o, err := h.svc.GetOrganization(r.Context(), caller, orgID)
	if err != nil {
		return err
	}
	v, err := h.view(r.Context(), o)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, v)
	return nil
}

func (h *Handlers) createEmployee(w http.ResponseWriter, r *http.Request) error {
	caller, err := auth.MustCaller(r.Context())
	if err != nil {
		return err
	}
	orgID, err := h.OrgID(r)
	if err != nil {
		return err
	}
	var req orgkit.NewEmployee
	if err := httpx.DecodeJSON(r, &req); err != nil {
		return err
	}
	out, err := h.svc.CreateEmployee(r.Context(), caller, orgID, req)
	if err != nil {
		return err
	}
	w.Header().Set("Location", h.kind.PathPrefix+"/"+orgID+"/employees/"+out.ID)
	httpx.WriteJSON(w, http.StatusCreated, out)
	return nil
}

func (h *Handlers) listEmployees(w http.ResponseWriter, r *http.Request) error {
	caller, err := auth.MustCaller(r.Context())
	if err != nil {
		return err
	}
	orgID, err := h.OrgID(r)
	if err != nil {
		return err
	}
	req, err := paging.Parse(r.URL.Query(), h.kind.PathPrefix+"/"+orgID+"/employees", 3, true)
	if err != nil {
		return err
	}
	page, err := h.svc.ListEmployees(r.Context(), caller, orgID, req)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, paging.Body("employees", page))
	return nil
}

func (h *Handlers) getEmployee(w http.ResponseWriter, r *http.Request) error {
	caller, orgID, empID, err := h.orgAndEmployee(r)
	if err != nil {
		return err
	}
	e, err := h.svc.GetEmployee(r.Context(), caller, orgID, empID)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, e)
	return nil
}

func (h *Handlers) removeEmployee(w http.ResponseWriter, r *http.Request) error {
	caller, orgID, empID, err := h.orgAndEmployee(r)
	if err != nil {
		return err
	}
	if err := h.svc.RemoveEmployee(r.Context(), caller, orgID, empID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// resetPassword answers a one-time reset code of the employee's account
// (201), never a password; the answer is not to be cached.
func (h *Handlers) resetPassword(w http.ResponseWriter, r *http.Request) error {
	caller, orgID, empID, err := h.orgAndEmployee(r)
	if err != nil {
		return err
	}
	out, err := h.svc.ResetEmployeePassword(r.Context(), caller, orgID, empID)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusCreated, out)
	return nil
}

type rolesBody struct {
	Roles []string `json:"roles"`
}

func (h *Handlers) setRoles(w http.ResponseWriter, r *http.Request) error {
	caller, orgID, empID, err := h.orgAndEmployee(r)
	if err != nil {
		return err
	}
	var req rolesBody
	if err := httpx.DecodeJSON(r, &req); err != nil {
		return err
	}
	roles, err := h.svc.SetEmployeeRoles(r.Context(), caller, orgID, empID, req.Roles)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, rolesBody{Roles: roles})
	return nil
}

func (h *Handlers) setSchedule(w http.ResponseWriter, r *http.Request) error {
	caller, orgID, empID, err := h.orgAndEmployee(r)
	if err != nil {
		return err
	}
	var req policy.Schedule
	if err := httpx.DecodeJSON(r, &req); err != nil {
		return err
	}
	sch, err := h.svc.SetSchedule(r.Context(), caller, orgID, empID, req)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, sch)
	return nil
}

func (h *Handlers) clearSchedule(w http.ResponseWriter, r *http.Request) error {
	caller, orgID, empID, err := h.orgAndEmployee(r)
	if err != nil {
		return err
	}
	if err := h.svc.ClearSchedule(r.Context(), caller, orgID, empID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handlers) subjectFacts(w http.ResponseWriter, r *http.Request) error {
	caller, err := auth.MustCaller(r.Context())
	if err != nil {
		return err
	}
	userID, err := pathID(r, "userId")
	if err != nil {
		return err
	}
	facts, err := h.svc.SubjectFacts(r.Context(), caller, userID)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, facts)
	return nil
}

func (h *Handlers) getAccount(w http.ResponseWriter, r *http.Request) error {
	caller, orgID, empID, err := h.orgAndEmployee(r)
	if err != nil {
		return err
	}
	out, err := h.svc.EmployeeAccount(r.Context(), caller, orgID, empID)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}

// accountBody is PUT .../account: enabled is required, so an empty body
// is refused rather than read as "disable".
type accountBody struct {
	Enabled *bool `json:"enabled"`
}

func (h *Handlers) setAccount(w http.ResponseWriter, r *http.Request) error {
	caller, orgID, empID, err := h.orgAndEmployee(r)
	if err != nil {
		return err
	}
	var req accountBody
	if err := httpx.DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.Enabled == nil {
		return apperr.InvalidField("enabled", "is required (true or false)")
	}
	out, err := h.svc.SetEmployeeAccountEnabled(r.Context(), caller, orgID, empID, *req.Enabled)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}
