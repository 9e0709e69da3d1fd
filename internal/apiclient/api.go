package apiclient

import (
	"context"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/realguardio/realguardio/internal/policy"
)

// roles returns a non-nil copy so an empty set is sent as [] (revoke),
// never null.
func roles(rs []string) []string {
	if rs == nil {
		return []string{}
	}
	return slices.Clone(rs)
}

// nullable turns "" into JSON null, which clears a reference.
func nullable(id string) *string {
	if id == "" {
		return nil
	}
	return &id
}

// seg escapes one path segment: ids are UUIDs, but a caller's typo must
// not turn into another path.
func seg(s string) string { return url.PathEscape(s) }

// IAMUser is an IAM account as /api/users returns it.
type IAMUser struct {
	ID       string   `json:"id"`
	Username string   `json:"username"`
	Roles    []string `json:"roles"`
}

// CreateUser creates an IAM account (POST /api/users); the caller must hold
// REALGUARDIO_ADMIN. A username that exists is refused with 409.
func (c *Client) CreateUser(ctx context.Context, username, password string, appRoles []string) (IAMUser, error) {
	var out IAMUser
	_, err := c.Do(ctx, ServiceIAM, "POST", "/api/users", map[string]any{"username": username, "password": password, "roles": roles(appRoles)}, &out)
	return out, err
}

// SetUserRoles replaces an IAM account's application roles (PUT
// /api/users/{id}/roles); the caller must hold REALGUARDIO_ADMIN. Tokens
// issued afterwards carry the new roles.
func (c *Client) SetUserRoles(ctx context.Context, userID string, appRoles []string) (IAMUser, error) {
	var out IAMUser
	_, err := c.Do(ctx, ServiceIAM, "PUT", "/api/users/"+seg(userID)+"/roles", map[string]any{"roles": roles(appRoles)}, &out)
	return out, err
}

// PasswordReset is a one-time password reset code of an IAM account, as
// POST /api/users/{id}/password-reset returns it: the user redeems it at
// ResetURL (which carries the code) before ExpiresAt.
type PasswordReset struct {
	UserID    string    `json:"userId"`
	Code      string    `json:"code"`
	ResetURL  string    `json:"resetUrl"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// ResetUserPassword issues a one-time password reset code for the IAM
// account userID (never a password); the caller must hold
// REALGUARDIO_ADMIN. Redeeming it removes the account's second factor and
// ends its sessions.
func (c *Client) ResetUserPassword(ctx context.Context, userID string) (PasswordReset, error) {
	var out PasswordReset
	_, err := c.Do(ctx, ServiceIAM, "POST", "/api/users/"+seg(userID)+"/password-reset", nil, &out)
	return out, err
}

// NewEmployee is the person part of creating an organization's
// administrator or an employee. An empty Password lets the service
// generate one, returned once as InitialPassword.
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

// OrganizationSummary is an organization as the read endpoints show it.
type OrganizationSummary struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Employee is a created employee.
type Employee struct {
	ID              string `json:"id"`
	UserID          string `json:"userId"`
	InitialPassword string `json:"initialPassword,omitempty"`
}

// orgAPI says where each kind of organization lives.
type orgAPI struct {
	service Service
	prefix  string
}

func apiOf(kind policy.OrgKind) orgAPI {
	switch kind {
	case policy.OrgDealer:
		return orgAPI{ServiceDealer, "/dealers"}
	case policy.OrgMonitoringProvider:
		return orgAPI{ServiceMonitoring, "/monitoring-providers"}
	}
	return orgAPI{ServiceCustomer, "/customers"}
}

// CreateOrganization creates a customer, dealer or monitoring provider with
// its administrator (POST /customers, /dealers, /monitoring-providers).
func (c *Client) CreateOrganization(ctx context.Context, kind policy.OrgKind, name string, admin NewEmployee) (Organization, error) {
	a := apiOf(kind)
	var out Organization
	_, err := c.Do(ctx, a.service, "POST", a.prefix, map[string]any{"name": name, "administrator": admin}, &out)
	return out, err
}

// CreateCustomer is CreateOrganization for a customer (the caller needs
// REALGUARDIO_ADMIN).
func (c *Client) CreateCustomer(ctx context.Context, name string, admin NewEmployee) (Organization, error) {
	return c.CreateOrganization(ctx, policy.OrgCustomer, name, admin)
}

// CreateDealer is CreateOrganization for a dealer (the caller needs
// REALGUARDIO_DEALER_ADMINISTRATOR).
func (c *Client) CreateDealer(ctx context.Context, name string, admin NewEmployee) (Organization, error) {
	return c.CreateOrganization(ctx, policy.OrgDealer, name, admin)
}

// CreateMonitoringProvider is CreateOrganization for a monitoring provider
// (the caller needs REALGUARDIO_ADMIN).
func (c *Client) CreateMonitoringProvider(ctx context.Context, name string, admin NewEmployee) (Organization, error) {
	return c.CreateOrganization(ctx, policy.OrgMonitoringProvider, name, admin)
}

// GetOrganization reads an organization (GET {prefix}/{id}).
func (c *Client) GetOrganization(ctx context.Context, kind policy.OrgKind, orgID string) (OrganizationSummary, error) {
	a := apiOf(kind)
	var out OrganizationSummary
	_, err := c.Do(ctx, a.service, "GET", a.prefix+"/"+seg(orgID), nil, &out)
	return out, err
}

// ListCustomers lists the customers the caller may see (GET /customers):
// every one for REALGUARDIO_ADMIN, the caller's own otherwise.
func (c *Client) ListCustomers(ctx context.Context) ([]OrganizationSummary, error) {
	var out struct {
		Customers []OrganizationSummary `json:"customers"`
	}
	_, err := c.Do(ctx, ServiceCustomer, "GET", "/customers", nil, &out)
	return out.Customers, err
}

// CreateEmployee adds an employee to an organization (POST
// {prefix}/{id}/employees); the caller must administer it.
func (c *Client) CreateEmployee(ctx context.Context, kind policy.OrgKind, orgID string, e NewEmployee) (Employee, error) {
	a := apiOf(kind)
	var out Employee
	_, err := c.Do(ctx, a.service, "POST", a.prefix+"/"+seg(orgID)+"/employees", e, &out)
	return out, err
}

// SetEmployeeRoles replaces an employee's organization roles (PUT
// {prefix}/{id}/employees/{employeeId}/roles) and returns the new set.
func (c *Client) SetEmployeeRoles(ctx context.Context, kind policy.OrgKind, orgID, employeeID string, rs []string) ([]string, error) {
	a := apiOf(kind)
	var out struct {
		Roles []string `json:"roles"`
	}
	_, err := c.Do(ctx, a.service, "PUT", a.prefix+"/"+seg(orgID)+"/employees/"+seg(employeeID)+"/roles", map[string]any{"roles": roles(rs)}, &out)
	return out.Roles, err
}

// SetSchedule restricts when an employee may arm and disarm (PUT
// .../employees/{employeeId}/schedule).
func (c *Client) SetSchedule(ctx context.Context, kind policy.OrgKind, orgID, employeeID string, s policy.Schedule) error {
	a := apiOf(kind)
	_, err := c.Do(ctx, a.service, "PUT", a.prefix+"/"+seg(orgID)+"/employees/"+seg(employeeID)+"/schedule", s, nil)
	return err
}

// ClearSchedule makes an employee unrestricted (DELETE
// .../employees/{employeeId}/schedule).
func (c *Client) ClearSchedule(ctx context.Context, kind policy.OrgKind, orgID, employeeID string) error {
	a := apiOf(kind)
	_, err := c.Do(ctx, a.service, "DELETE", a.prefix+"/"+seg(orgID)+"/employees/"+seg(employeeID)+"/schedule", nil, nil)
	return err
}

// Location is a customer's location; DealerID is nil when no dealer
// services it.
type Location struct {
	ID       string  `json:"id"`
	Name     string  `json:"name"`
	DealerID *string `json:"dealerId"`
}

// CreateLocation creates a location of a customer, serviced by dealerID
// ("" for none) (POST /customers/{id}/locations). The Customer Service
// knows dealers from the Dealer Service's events: wrap the call in
// RetryUnknownReference right after creating the dealer.
func (c *Client) CreateLocation(ctx context.Context, customerID, name, dealerID string) (Location, error) {
	body := map[string]any{"name": name}
	if dealerID != "" {
		body["dealerId"] = dealerID
	}
	var out Location
	_, err := c.Do(ctx, ServiceCustomer, "POST", "/customers/"+seg(customerID)+"/locations", body, &out)
	return out, err
}

// SetLocationDealer changes the dealer servicing a location, "" clearing
// it (PUT /customers/{id}/locations/{locationId}/dealer).
func (c *Client) SetLocationDealer(ctx context.Context, customerID, locationID, dealerID string) error {
	_, err := c.Do(ctx, ServiceCustomer, "PUT", "/customers/"+seg(customerID)+"/locations/"+seg(locationID)+"/dealer",
		map[string]any{"dealerId": nullable(dealerID)}, nil)
	return err
}

// SetLocationEmployeeRoles replaces an employee's roles at a location, an
// empty set revoking them (PUT
// .../locations/{locationId}/employee-roles/{employeeId}).
func (c *Client) SetLocationEmployeeRoles(ctx context.Context, customerID, locationID, employeeID string, rs []string) error {
	_, err := c.Do(ctx, ServiceCustomer, "PUT", "/customers/"+seg(customerID)+"/locations/"+seg(locationID)+"/employee-roles/"+seg(employeeID),
		map[string]any{"roles": roles(rs)}, nil)
	return err
}

// Team is a customer's team.
type Team struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// CreateTeam creates a team of a customer (POST /customers/{id}/teams).
func (c *Client) CreateTeam(ctx context.Context, customerID, name string) (Team, error) {
	var out Team
	_, err := c.Do(ctx, ServiceCustomer, "POST", "/customers/"+seg(customerID)+"/teams", map[string]any{"name": name}, &out)
	return out, err
}

// AddTeamMember adds an employee to a team (PUT
// .../teams/{teamId}/members/{employeeId}).
func (c *Client) AddTeamMember(ctx context.Context, customerID, teamID, employeeID string) error {
	_, err := c.Do(ctx, ServiceCustomer, "PUT", "/customers/"+seg(customerID)+"/teams/"+seg(teamID)+"/members/"+seg(employeeID), nil, nil)
	return err
}

// RemoveTeamMember removes an employee from a team (DELETE
// .../teams/{teamId}/members/{employeeId}).
func (c *Client) RemoveTeamMember(ctx context.Context, customerID, teamID, employeeID string) error {
	_, err := c.Do(ctx, ServiceCustomer, "DELETE", "/customers/"+seg(customerID)+"/teams/"+seg(teamID)+"/members/"+seg(employeeID), nil, nil)
	return err
}

// SetLocationTeamRoles replaces a team's roles at a location, an empty set
// revoking them (PUT .../locations/{locationId}/team-roles/{teamId}).
func (c *Client) SetLocationTeamRoles(ctx context.Context, customerID, locationID, teamID string, rs []string) error {
	_, err := c.Do(ctx, ServiceCustomer, "PUT", "/customers/"+seg(customerID)+"/locations/"+seg(locationID)+"/team-roles/"+seg(teamID),
		map[string]any{"roles": roles(rs)}, nil)
	return err
}

// SetDealerMonitoringProvider sets the monitoring provider a dealer uses,
// "" clearing it (PUT /dealers/{id}/monitoring-provider). The Dealer
// Service knows providers from events: see RetryUnknownReference.
func (c *Client) SetDealerMonitoringProvider(ctx context.Context, dealerID, providerID string) error {
	_, err := c.Do(ctx, ServiceDealer, "PUT", "/dealers/"+seg(dealerID)+"/monitoring-provider",
		map[string]any{"monitoringProviderId": nullable(providerID)}, nil)
	return err
}

// Profile is a customer employee's own profile.
type Profile struct {
	FirstName   string `json:"firstName"`
	LastName    string `json:"lastName"`
	PhoneNumber string `json:"phoneNumber"`
}

// GetProfile reads the caller's profile (GET /profiles).
func (c *Client) GetProfile(ctx context.Context) (Profile, error) {
	var out Profile
	_, err := c.Do(ctx, ServiceCustomer, "GET", "/profiles", nil, &out)
	return out, err
}

// PutProfile replaces the caller's profile (PUT /profiles).
func (c *Client) PutProfile(ctx context.Context, p Profile) (Profile, error) {
	var out Profile
	_, err := c.Do(ctx, ServiceCustomer, "PUT", "/profiles", p, &out)
	return out, err
}

// The states of a security system and the actions on it, as the Security
// System Service spells them.
const (
	StateArmed    = "ARMED"
	StateDisarmed = "DISARMED"
	ActionArm     = "ARM"
	ActionDisarm  = "DISARM"
)

// SecuritySystem is a security system as the Security System Service shows
// it; Actions (present on list and get answers) are what the caller may do
// now.
type SecuritySystem struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	LocationID string   `json:"locationId"`
	State      string   `json:"state"`
	Actions    []string `json:"actions"`
}

// CreateSecuritySystem creates a system at a location (POST
// /securitysystems). The Security System Service may know a new location
// only from events: see RetryUnknownReference.
func (c *Client) CreateSecuritySystem(ctx context.Context, locationID, name string) (SecuritySystem, error) {
	var out SecuritySystem
	_, err := c.Do(ctx, ServiceSecuritySystem, "POST", "/securitysystems", map[string]any{"locationId": locationID, "name": name}, &out)
	return out, err
}

// ListSecuritySystems lists every system the caller may view, each with
// the actions the caller may take now: all pages of GET /securitysystems
// (of MaxListLimit systems each), in the list's (name, id) order.
func (c *Client) ListSecuritySystems(ctx context.Context) ([]SecuritySystem, error) {
	var all []SecuritySystem
	opts := ListOptions{Limit: MaxListLimit}
	for {
		page, err := c.ListSecuritySystemsPage(ctx, opts)
		if err != nil {
			return all, err
		}
		all = append(all, page.SecuritySystems...)
		if page.NextCursor == "" {
			if all == nil {
				all = []SecuritySystem{}
			}
			return all, nil
		}
		opts.Cursor = page.NextCursor
	}
}

// MaxListLimit is the largest page size of GET /securitysystems.
const MaxListLimit = 500

// ListOptions are the paging and filters of GET /securitysystems (API.md,
// "Lists"); zero values are left out (Limit 0 is the server's default).
type ListOptions struct {
	Limit      int
	Cursor     string
	LocationID string
	CustomerID string
	// State is "ARMED" or "DISARMED".
	State string
	// Q keeps the systems whose name contains it, ignoring case.
	Q string
}

// SecuritySystemPage is one page of GET /securitysystems; NextCursor is
// empty on the last page.
type SecuritySystemPage struct {
	SecuritySystems []SecuritySystem
	NextCursor      string
}

// ListSecuritySystemsPage reads one page of the systems the caller may
// view (GET /securitysystems with opts); pass the answer's NextCursor as
// opts.Cursor for the next one.
func (c *Client) ListSecuritySystemsPage(ctx context.Context, opts ListOptions) (SecuritySystemPage, error) {
	q := url.Values{}
	if opts.Limit != 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	for k, v := range map[string]string{"cursor": opts.Cursor, "locationId": opts.LocationID, "customerId": opts.CustomerID, "state": opts.State, "q": opts.Q} {
		if v != "" {
			q.Set(k, v)
		}
	}
	path := "/securitysystems"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out struct {
		SecuritySystems []SecuritySystem `json:"securitySystems"`
		NextCursor      *string          `json:"nextCursor"`
	}
	_, err := c.Do(ctx, ServiceSecuritySystem, "GET", path, nil, &out)
	page := SecuritySystemPage{SecuritySystems: out.SecuritySystems}
	if out.NextCursor != nil {
		page.NextCursor = *out.NextCursor
	}
	return page, err
}

// ImportSecuritySystem is one item of ImportSecuritySystems.
type ImportSecuritySystem struct {
	LocationID string `json:"locationId"`
	Name       string `json:"name"`
}

// ImportSecuritySystems creates many systems at once, all or nothing
// (POST /securitysystems/import, at most 10 000), and returns their ids in
// input order.
func (c *Client) ImportSecuritySystems(ctx context.Context, items []ImportSecuritySystem) ([]string, error) {
	var out struct {
		IDs []string `json:"ids"`
	}
	_, err := c.Do(ctx, ServiceSecuritySystem, "POST", "/securitysystems/import", map[string]any{"securitySystems": items}, &out)
	return out.IDs, err
}

// GetSecuritySystem reads one system (GET /securitysystems/{id}); 403 when
// it exists and the caller may not view it.
func (c *Client) GetSecuritySystem(ctx context.Context, id string) (SecuritySystem, error) {
	var out SecuritySystem
	_, err := c.Do(ctx, ServiceSecuritySystem, "GET", "/securitysystems/"+seg(id), nil, &out)
	return out, err
}

// Arm arms a system (PUT /securitysystems/{id} {"action":"ARM"}); arming
// an armed system is a no-op.
func (c *Client) Arm(ctx context.Context, id string) (SecuritySystem, error) {
	return c.act(ctx, id, ActionArm)
}

// Disarm disarms a system (PUT /securitysystems/{id} {"action":"DISARM"});
// disarming a disarmed system is a no-op.
func (c *Client) Disarm(ctx context.Context, id string) (SecuritySystem, error) {
	return c.act(ctx, id, ActionDisarm)
}

// Act performs op on a system: view is GET, arm and disarm are PUT.
func (c *Client) Act(ctx context.Context, op policy.Op, id string) (SecuritySystem, error) {
	switch op {
	case policy.OpArm:
		return c.Arm(ctx, id)
	case policy.OpDisarm:
		return c.Disarm(ctx, id)
	}
	return c.GetSecuritySystem(ctx, id)
}

func (c *Client) act(ctx context.Context, id, action string) (SecuritySystem, error) {
	var out SecuritySystem
	_, err := c.Do(ctx, ServiceSecuritySystem, "PUT", "/securitysystems/"+seg(id), map[string]any{"action": action}, &out)
	return out, err
}
