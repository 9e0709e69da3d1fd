package systemtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/system"
)

// Problem is an RFC 9457 problem body as API.md describes it; Reason is
// set on authorization denials (no_role, outside_schedule, ...).
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Reason string `json:"reason,omitempty"`
	Field  string `json:"field,omitempty"`
}

// Response is what one API call returned: the status, the raw body and,
// for problem+json answers, the decoded problem. Err is set, with Status 0,
// when no answer arrived at all.
type Response struct {
	Method, URL string
	Status      int
	Header      http.Header
	Body        []byte
	Problem     *Problem
	Err         error
}

// String describes the exchange for failure messages.
func (r *Response) String() string {
	if r.Err != nil {
		return fmt.Sprintf("%s %s: %v", r.Method, r.URL, r.Err)
	}
	return fmt.Sprintf("%s %s → %d %s", r.Method, r.URL, r.Status, snippet(r.Body))
}

// Reason returns the problem's reason, "" when there is none.
func (r *Response) Reason() string {
	if r.Problem == nil {
		return ""
	}
	return r.Problem.Reason
}

// Want fails the test unless the status is one of want.
func (r *Response) Want(tb testing.TB, want ...int) *Response {
	tb.Helper()
	if r.Err != nil || !slices.Contains(want, r.Status) {
		tb.Fatalf("%s (want %v)", r, want)
	}
	return r
}

// Client calls the public API of every service with one user's access
// token, the way a command-line tool or script would (Bearer tokens
// straight to the backends, not through the BFF).
type Client struct {
	sys     *System
	session *Session
}

// Client returns an API client acting as the session's user.
func (s *System) Client(se *Session) *Client { return &Client{sys: s, session: se} }

// Session returns the session the client acts as.
func (c *Client) Session() *Session { return c.session }

// Do sends one request to a service and decodes a JSON answer into out
// (when out is non-nil and the status is 2xx).
func (c *Client) Do(ctx context.Context, service, method, path string, in, out any) *Response {
	r := &Response{Method: method, URL: c.sys.URL(service) + path}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			r.Err = err
			return r
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.URL, body)
	if err != nil {
		r.Err = err
		return r
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.session != nil {
		req.Header.Set("Authorization", "Bearer "+c.session.AccessToken())
	}
	resp, err := c.sys.http.Do(req)
	if err != nil {
		r.Err = err
		return r
	}
	defer resp.Body.Close()
	r.Status, r.Header = resp.StatusCode, resp.Header
	r.Body, r.Err = io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if r.Err != nil {
		return r
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/problem+json" {
		var p Problem
		if err := json.Unmarshal(r.Body, &p); err != nil {
			r.Err = fmt.Errorf("undecodable problem body: %w", err)
			return r
		}
		r.Problem = &p
	}
	if out != nil && r.Status >= 200 && r.Status < 300 && len(r.Body) > 0 {
		if err := json.Unmarshal(r.Body, out); err != nil {
			r.Err = fmt.Errorf("decode the answer: %w", err)
		}
	}
	return r
}

// roles returns a non-nil copy so an empty set is sent as [] (revoke),
// never null.
func roles(rs []string) []string {
	if rs == nil {
		return []string{}
	}
	return slices.Clone(rs)
}

// IAMUser is an IAM account as POST /api/users returns it.
type IAMUser struct {
	ID       string   `json:"id"`
	Username string   `json:"username"`
	Roles    []string `json:"roles"`
}

// CreateUser creates an IAM account (POST /api/users); the caller must hold
// REALGUARDIO_ADMIN.
func (c *Client) CreateUser(ctx context.Context, username, password string, appRoles []string) (IAMUser, *Response) {
	var out IAMUser
	r := c.Do(ctx, system.ServiceIAM, "POST", "/api/users", map[string]any{"username": username, "password": password, "roles": roles(appRoles)}, &out)
	return out, r
}

// SetUserRoles replaces an IAM account's application roles (PUT
// /api/users/{id}/roles); the caller must hold REALGUARDIO_ADMIN. Tokens
// issued afterwards carry the new roles.
func (c *Client) SetUserRoles(ctx context.Context, userID string, appRoles []string) (IAMUser, *Response) {
	var out IAMUser
	r := c.Do(ctx, system.ServiceIAM, "PUT", "/api/users/"+userID+"/roles", map[string]any{"roles": roles(appRoles)}, &out)
	return out, r
}

// WithToken returns a client sending raw as its bearer token ("" sends no
// Authorization header), for tests of token handling.
func (s *System) WithToken(raw string) *Client {
	if raw == "" {
		return &Client{sys: s}
	}
	return &Client{sys: s, session: &Session{Username: "(raw token)", token: &oauth2.Token{AccessToken: raw}}}
}

// NewEmployee is the person part of creating an organization's
// administrator or an employee.
type NewEmployee struct {
	Email     string `json:"email"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
	Password  string `json:"password,omitempty"`
}

// CreatedAdministrator is the administrator an organization was created
// with.
type CreatedAdministrator struct {
	EmployeeID      string `json:"employeeId"`
	UserID          string `json:"userId"`
	InitialPassword string `json:"initialPassword,omitempty"`
}

// Organization is a created customer, dealer or monitoring provider.
type Organization struct {
	ID            string               `json:"id"`
	Name          string               `json:"name"`
	Administrator CreatedAdministrator `json:"administrator"`
}

// Employee is a created employee.
type Employee struct {
	ID              string `json:"id"`
	UserID          string `json:"userId"`
	InitialPassword string `json:"initialPassword,omitempty"`
}

// orgAPI says where each kind of organization lives.
type orgAPI struct{ service, prefix string }

func apiOf(kind policy.OrgKind) orgAPI {
	switch kind {
	case policy.OrgDealer:
		return orgAPI{system.ServiceDealer, "/dealers"}
	case policy.OrgMonitoringProvider:
		return orgAPI{system.ServiceMonitoring, "/monitoring-providers"}
	}
	return orgAPI{system.ServiceCustomer, "/customers"}
}

// CreateOrganization creates a customer, dealer or monitoring provider with
// its administrator (POST /customers, /dealers, /monitoring-providers).
func (c *Client) CreateOrganization(ctx context.Context, kind policy.OrgKind, name string, admin NewEmployee) (Organization, *Response) {
	a := apiOf(kind)
	var out Organization
	r := c.Do(ctx, a.service, "POST", a.prefix, map[string]any{"name": name, "administrator": admin}, &out)
	return out, r
}

// CreateCustomer is CreateOrganization for a customer.
func (c *Client) CreateCustomer(ctx context.Context, name string, admin NewEmployee) (Organization, *Response) {
	return c.CreateOrganization(ctx, policy.OrgCustomer, name, admin)
}

// CreateDealer is CreateOrganization for a dealer (the caller needs
// REALGUARDIO_DEALER_ADMINISTRATOR).
func (c *Client) CreateDealer(ctx context.Context, name string, admin NewEmployee) (Organization, *Response) {
	return c.CreateOrganization(ctx, policy.OrgDealer, name, admin)
}

// CreateMonitoringProvider is CreateOrganization for a monitoring provider.
func (c *Client) CreateMonitoringProvider(ctx context.Context, name string, admin NewEmployee) (Organization, *Response) {
	return c.CreateOrganization(ctx, policy.OrgMonitoringProvider, name, admin)
}

// GetOrganization reads an organization (GET {prefix}/{id}) into out.
func (c *Client) GetOrganization(ctx context.Context, kind policy.OrgKind, orgID string, out any) *Response {
	a := apiOf(kind)
	return c.Do(ctx, a.service, "GET", a.prefix+"/"+orgID, nil, out)
}

// CreateEmployee adds an employee to an organization (POST
// {prefix}/{id}/employees).
func (c *Client) CreateEmployee(ctx context.Context, kind policy.OrgKind, orgID string, e NewEmployee) (Employee, *Response) {
	a := apiOf(kind)
	var out Employee
	r := c.Do(ctx, a.service, "POST", a.prefix+"/"+orgID+"/employees", e, &out)
	return out, r
}

// SetEmployeeRoles replaces an employee's organization roles (PUT
// {prefix}/{id}/employees/{employeeId}/roles).
func (c *Client) SetEmployeeRoles(ctx context.Context, kind policy.OrgKind, orgID, employeeID string, rs []string) *Response {
	a := apiOf(kind)
	return c.Do(ctx, a.service, "PUT", a.prefix+"/"+orgID+"/employees/"+employeeID+"/roles", map[string]any{"roles": roles(rs)}, nil)
}

// SetSchedule sets an employee's schedule (PUT .../schedule).
func (c *Client) SetSchedule(ctx context.Context, kind policy.OrgKind, orgID, employeeID string, s policy.Schedule) *Response {
	a := apiOf(kind)
	return c.Do(ctx, a.service, "PUT", a.prefix+"/"+orgID+"/employees/"+employeeID+"/schedule", s, nil)
}

// ClearSchedule makes an employee unrestricted (DELETE .../schedule).
func (c *Client) ClearSchedule(ctx context.Context, kind policy.OrgKind, orgID, employeeID string) *Response {
	a := apiOf(kind)
	return c.Do(ctx, a.service, "DELETE", a.prefix+"/"+orgID+"/employees/"+employeeID+"/schedule", nil, nil)
}

// Location is a customer's location.
type Location struct {
	ID       string  `json:"id"`
	Name     string  `json:"name"`
	DealerID *string `json:"dealerId"`
}

// nullable turns "" into JSON null.
func nullable(id string) *string {
	if id == "" {
		return nil
	}
	return &id
}

// CreateLocation creates a location of a customer, serviced by dealerID
// ("" for none) (POST /customers/{id}/locations).
func (c *Client) CreateLocation(ctx context.Context, customerID, name, dealerID string) (Location, *Response) {
	body := map[string]any{"name": name}
	if dealerID != "" {
		body["dealerId"] = dealerID
	}
	var out Location
	r := c.Do(ctx, system.ServiceCustomer, "POST", "/customers/"+customerID+"/locations", body, &out)
	return out, r
}

// SetLocationDealer changes the dealer servicing a location, "" clearing
// it (PUT /customers/{id}/locations/{locationId}/dealer).
func (c *Client) SetLocationDealer(ctx context.Context, customerID, locationID, dealerID string) *Response {
	return c.Do(ctx, system.ServiceCustomer, "PUT", "/customers/"+customerID+"/locations/"+locationID+"/dealer",
		map[string]any{"dealerId": nullable(dealerID)}, nil)
}

// SetLocationEmployeeRoles replaces an employee's roles at a location, []
// revoking (PUT .../locations/{locationId}/employee-roles/{employeeId}).
func (c *Client) SetLocationEmployeeRoles(ctx context.Context, customerID, locationID, employeeID string, rs []string) *Response {
	return c.Do(ctx, system.ServiceCustomer, "PUT", "/customers/"+customerID+"/locations/"+locationID+"/employee-roles/"+employeeID,
		map[string]any{"roles": roles(rs)}, nil)
}

// Team is a customer's team.
type Team struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// CreateTeam creates a team of a customer (POST /customers/{id}/teams).
func (c *Client) CreateTeam(ctx context.Context, customerID, name string) (Team, *Response) {
	var out Team
	r := c.Do(ctx, system.ServiceCustomer, "POST", "/customers/"+customerID+"/teams", map[string]any{"name": name}, &out)
	return out, r
}

// AddTeamMember adds an employee to a team (PUT .../teams/{teamId}/members/{employeeId}).
func (c *Client) AddTeamMember(ctx context.Context, customerID, teamID, employeeID string) *Response {
	return c.Do(ctx, system.ServiceCustomer, "PUT", "/customers/"+customerID+"/teams/"+teamID+"/members/"+employeeID, nil, nil)
}

// RemoveTeamMember removes an employee from a team (DELETE .../members/{employeeId}).
func (c *Client) RemoveTeamMember(ctx context.Context, customerID, teamID, employeeID string) *Response {
	return c.Do(ctx, system.ServiceCustomer, "DELETE", "/customers/"+customerID+"/teams/"+teamID+"/members/"+employeeID, nil, nil)
}

// SetLocationTeamRoles replaces a team's roles at a location, [] revoking
// (PUT .../locations/{locationId}/team-roles/{teamId}).
func (c *Client) SetLocationTeamRoles(ctx context.Context, customerID, locationID, teamID string, rs []string) *Response {
	return c.Do(ctx, system.ServiceCustomer, "PUT", "/customers/"+customerID+"/locations/"+locationID+"/team-roles/"+teamID,
		map[string]any{"roles": roles(rs)}, nil)
}

// SetDealerMonitoringProvider sets the monitoring provider a dealer uses,
// "" clearing it (PUT /dealers/{id}/monitoring-provider).
func (c *Client) SetDealerMonitoringProvider(ctx context.Context, dealerID, providerID string) *Response {
	return c.Do(ctx, system.ServiceDealer, "PUT", "/dealers/"+dealerID+"/monitoring-provider",
		map[string]any{"monitoringProviderId": nullable(providerID)}, nil)
}

// Profile is a customer employee's own profile.
type Profile struct {
	FirstName   string `json:"firstName"`
	LastName    string `json:"lastName"`
	PhoneNumber string `json:"phoneNumber"`
}

// GetProfile reads the caller's profile (GET /profiles).
func (c *Client) GetProfile(ctx context.Context) (Profile, *Response) {
	var out Profile
	r := c.Do(ctx, system.ServiceCustomer, "GET", "/profiles", nil, &out)
	return out, r
}

// PutProfile replaces the caller's profile (PUT /profiles).
func (c *Client) PutProfile(ctx context.Context, p Profile) (Profile, *Response) {
	var out Profile
	r := c.Do(ctx, system.ServiceCustomer, "PUT", "/profiles", p, &out)
	return out, r
}

// SecuritySystem is a security system as the Security System Service shows
// it; Actions is present on list and get answers.
type SecuritySystem struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	LocationID string   `json:"locationId"`
	State      string   `json:"state"`
	Actions    []string `json:"actions"`
}

// CreateSecuritySystem creates a system at a location (POST /securitysystems).
func (c *Client) CreateSecuritySystem(ctx context.Context, locationID, name string) (SecuritySystem, *Response) {
	var out SecuritySystem
	r := c.Do(ctx, system.ServiceSecuritySystem, "POST", "/securitysystems", map[string]any{"locationId": locationID, "name": name}, &out)
	return out, r
}

// ListSecuritySystems lists the systems the caller may view, each with the
// actions the caller may take now (GET /securitysystems).
func (c *Client) ListSecuritySystems(ctx context.Context) ([]SecuritySystem, *Response) {
	var out struct {
		SecuritySystems []SecuritySystem `json:"securitySystems"`
	}
	r := c.Do(ctx, system.ServiceSecuritySystem, "GET", "/securitysystems", nil, &out)
	return out.SecuritySystems, r
}

// GetSecuritySystem reads one system (GET /securitysystems/{id}); 403 when
// the caller may not view it.
func (c *Client) GetSecuritySystem(ctx context.Context, id string) (SecuritySystem, *Response) {
	var out SecuritySystem
	r := c.Do(ctx, system.ServiceSecuritySystem, "GET", "/securitysystems/"+id, nil, &out)
	return out, r
}

// Arm arms a system (PUT /securitysystems/{id} {"action":"ARM"}).
func (c *Client) Arm(ctx context.Context, id string) (SecuritySystem, *Response) {
	return c.act(ctx, id, "ARM")
}

// Disarm disarms a system (PUT /securitysystems/{id} {"action":"DISARM"}).
func (c *Client) Disarm(ctx context.Context, id string) (SecuritySystem, *Response) {
	return c.act(ctx, id, "DISARM")
}

// Act performs op (view is GET, arm and disarm are PUT) and returns the
// answer, so a table of decisions can be checked with one call.
func (c *Client) Act(ctx context.Context, op policy.Op, id string) *Response {
	switch op {
	case policy.OpArm:
		_, r := c.Arm(ctx, id)
		return r
	case policy.OpDisarm:
		_, r := c.Disarm(ctx, id)
		return r
	}
	_, r := c.GetSecuritySystem(ctx, id)
	return r
}

func (c *Client) act(ctx context.Context, id, action string) (SecuritySystem, *Response) {
	var out SecuritySystem
	r := c.Do(ctx, system.ServiceSecuritySystem, "PUT", "/securitysystems/"+id, map[string]any{"action": action}, &out)
	return out, r
}

// RetryUnknownReference repeats call while it answers 422: a reference to
// an entity of another service (a dealer named by a location, a provider
// named by a dealer, a location named by a new security system) is checked
// against a replica fed by events, so it is briefly unknown right after
// the entity was created. Any other answer (another 422 included), or the
// bound of 30 seconds, ends the wait.
func RetryUnknownReference(ctx context.Context, call func() *Response) *Response {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var r *Response
	_ = poll(ctx, func() bool {
		r = call()
		return !unknownReference(r)
	})
	return r
}

// unknownReference reports whether r refuses a request because a
// referenced entity is not known (yet): a 422 whose detail says "... is
// known" ("no dealer ... is known"). Other 422s are real mistakes and are
// returned at once.
func unknownReference(r *Response) bool {
	return r.Status == http.StatusUnprocessableEntity && r.Problem != nil && strings.Contains(r.Problem.Detail, " is known")
}
