package systemtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/realguardio/realguardio/internal/apiclient"
	"github.com/realguardio/realguardio/internal/policy"
)

// The API's types are apiclient's; the aliases keep the tests' names.
type (
	// Problem is an RFC 9457 problem body (apiclient.Problem).
	Problem = apiclient.Problem
	// IAMUser is an IAM account (apiclient.IAMUser).
	IAMUser = apiclient.IAMUser
	// NewEmployee is the person part of a new administrator or employee
	// (apiclient.NewEmployee).
	NewEmployee = apiclient.NewEmployee
	// CreatedAdministrator is an organization's first administrator
	// (apiclient.CreatedAdministrator).
	CreatedAdministrator = apiclient.CreatedAdministrator
	// Organization is a created organization (apiclient.Organization).
	Organization = apiclient.Organization
	// OrganizationSummary is an organization as read (apiclient.OrganizationSummary).
	OrganizationSummary = apiclient.OrganizationSummary
	// Employee is a created employee (apiclient.Employee).
	Employee = apiclient.Employee
	// Location is a customer's location (apiclient.Location).
	Location = apiclient.Location
	// Team is a customer's team (apiclient.Team).
	Team = apiclient.Team
	// Profile is a customer employee's profile (apiclient.Profile).
	Profile = apiclient.Profile
	// SecuritySystem is a security system (apiclient.SecuritySystem).
	SecuritySystem = apiclient.SecuritySystem
)

// Response is what one API call returned: the exchange as apiclient saw it
// (status, headers, raw body, decoded problem). Err is set, with Status 0,
// when no answer arrived at all, or when a 2xx answer could not be decoded.
// A refusal (any other status) is not an Err: the tests check statuses.
type Response struct {
	apiclient.Response
	Err error
}

// String describes the exchange for failure messages.
func (r *Response) String() string {
	if r.Err != nil {
		return fmt.Sprintf("%s %s: %v", r.Method, r.URL, r.Err)
	}
	return r.Response.String()
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

// exchange runs one apiclient call and returns its result with the raw
// exchange, so the tests can check the exact status of a success too.
func exchange[T any](ctx context.Context, call func(ctx context.Context) (T, error)) (T, *Response) {
	r := &Response{}
	ctx = apiclient.WithExchange(ctx, func(x *apiclient.Response) { r.Response = *x })
	v, err := call(ctx)
	var refused *apiclient.Error
	if err != nil && !errors.As(err, &refused) {
		r.Err = err
	}
	return v, r
}

// exchange0 is exchange for calls without a result.
func exchange0(ctx context.Context, call func(ctx context.Context) error) *Response {
	_, r := exchange(ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, call(ctx) })
	return r
}

// Client calls the public API of every service with one user's access
// token, the way a command-line tool or script would: an apiclient.Client
// whose answers come back as *Response.
type Client struct {
	session *Session
	api     *apiclient.Client
}

// endpoints are the system's service URLs in apiclient's form.
func (s *System) endpoints() apiclient.Endpoints { return apiclient.EndpointsFrom(s.Sys.URLs) }

// Client returns an API client acting as the session's user.
func (s *System) Client(se *Session) *Client {
	return &Client{session: se, api: apiclient.New(s.endpoints(), se, s.http)}
}

// WithToken returns a client sending raw as its bearer token ("" sends no
// Authorization header), for tests of token handling. It has no Session.
func (s *System) WithToken(raw string) *Client {
	return &Client{api: apiclient.New(s.endpoints(), apiclient.StaticToken(raw), s.http)}
}

// Session returns the session the client acts as (nil for WithToken).
func (c *Client) Session() *Session { return c.session }

// API returns the underlying apiclient.Client.
func (c *Client) API() *apiclient.Client { return c.api }

// Do sends one request to a service and decodes a JSON answer into out
// (when out is non-nil and the status is 2xx).
func (c *Client) Do(ctx context.Context, service, method, path string, in, out any) *Response {
	return exchange0(ctx, func(ctx context.Context) error {
		_, err := c.api.Do(ctx, apiclient.Service(service), method, path, in, out)
		return err
	})
}

// CreateUser creates an IAM account (POST /api/users).
func (c *Client) CreateUser(ctx context.Context, username, password string, appRoles []string) (IAMUser, *Response) {
	return exchange(ctx, func(ctx context.Context) (IAMUser, error) { return c.api.CreateUser(ctx, username, password, appRoles) })
}

// SetUserRoles replaces an IAM account's application roles (PUT
// /api/users/{id}/roles).
func (c *Client) SetUserRoles(ctx context.Context, userID string, appRoles []string) (IAMUser, *Response) {
	return exchange(ctx, func(ctx context.Context) (IAMUser, error) { return c.api.SetUserRoles(ctx, userID, appRoles) })
}

// CreateOrganization creates a customer, dealer or monitoring provider with
// its administrator.
func (c *Client) CreateOrganization(ctx context.Context, kind policy.OrgKind, name string, admin NewEmployee) (Organization, *Response) {
	return exchange(ctx, func(ctx context.Context) (Organization, error) {
		return c.api.CreateOrganization(ctx, kind, name, admin)
	})
}

// CreateCustomer is CreateOrganization for a customer.
func (c *Client) CreateCustomer(ctx context.Context, name string, admin NewEmployee) (Organization, *Response) {
	return c.CreateOrganization(ctx, policy.OrgCustomer, name, admin)
}

// CreateDealer is CreateOrganization for a dealer.
func (c *Client) CreateDealer(ctx context.Context, name string, admin NewEmployee) (Organization, *Response) {
	return c.CreateOrganization(ctx, policy.OrgDealer, name, admin)
}

// CreateMonitoringProvider is CreateOrganization for a monitoring provider.
func (c *Client) CreateMonitoringProvider(ctx context.Context, name string, admin NewEmployee) (Organization, *Response) {
	return c.CreateOrganization(ctx, policy.OrgMonitoringProvider, name, admin)
}

// GetOrganization reads an organization (GET {prefix}/{id}).
func (c *Client) GetOrganization(ctx context.Context, kind policy.OrgKind, orgID string) (OrganizationSummary, *Response) {
	return exchange(ctx, func(ctx context.Context) (OrganizationSummary, error) { return c.api.GetOrganization(ctx, kind, orgID) })
}

// CreateEmployee adds an employee to an organization.
func (c *Client) CreateEmployee(ctx context.Context, kind policy.OrgKind, orgID string, e NewEmployee) (Employee, *Response) {
	return exchange(ctx, func(ctx context.Context) (Employee, error) { return c.api.CreateEmployee(ctx, kind, orgID, e) })
}

// SetEmployeeRoles replaces an employee's organization roles.
func (c *Client) SetEmployeeRoles(ctx context.Context, kind policy.OrgKind, orgID, employeeID string, rs []string) *Response {
	_, r := exchange(ctx, func(ctx context.Context) ([]string, error) {
		return c.api.SetEmployeeRoles(ctx, kind, orgID, employeeID, rs)
	})
	return r
}

// SetSchedule sets an employee's schedule.
func (c *Client) SetSchedule(ctx context.Context, kind policy.OrgKind, orgID, employeeID string, s policy.Schedule) *Response {
	return exchange0(ctx, func(ctx context.Context) error { return c.api.SetSchedule(ctx, kind, orgID, employeeID, s) })
}

// ClearSchedule makes an employee unrestricted.
func (c *Client) ClearSchedule(ctx context.Context, kind policy.OrgKind, orgID, employeeID string) *Response {
	return exchange0(ctx, func(ctx context.Context) error { return c.api.ClearSchedule(ctx, kind, orgID, employeeID) })
}

// CreateLocation creates a location of a customer, serviced by dealerID
// ("" for none).
func (c *Client) CreateLocation(ctx context.Context, customerID, name, dealerID string) (Location, *Response) {
	return exchange(ctx, func(ctx context.Context) (Location, error) {
		return c.api.CreateLocation(ctx, customerID, name, dealerID)
	})
}

// SetLocationDealer changes the dealer servicing a location, "" clearing it.
func (c *Client) SetLocationDealer(ctx context.Context, customerID, locationID, dealerID string) *Response {
	return exchange0(ctx, func(ctx context.Context) error { return c.api.SetLocationDealer(ctx, customerID, locationID, dealerID) })
}

// SetLocationEmployeeRoles replaces an employee's roles at a location.
func (c *Client) SetLocationEmployeeRoles(ctx context.Context, customerID, locationID, employeeID string, rs []string) *Response {
	return exchange0(ctx, func(ctx context.Context) error {
		return c.api.SetLocationEmployeeRoles(ctx, customerID, locationID, employeeID, rs)
	})
}

// CreateTeam creates a team of a customer.
func (c *Client) CreateTeam(ctx context.Context, customerID, name string) (Team, *Response) {
	return exchange(ctx, func(ctx context.Context) (Team, error) { return c.api.CreateTeam(ctx, customerID, name) })
}

// AddTeamMember adds an employee to a team.
func (c *Client) AddTeamMember(ctx context.Context, customerID, teamID, employeeID string) *Response {
	return exchange0(ctx, func(ctx context.Context) error { return c.api.AddTeamMember(ctx, customerID, teamID, employeeID) })
}

// RemoveTeamMember removes an employee from a team.
func (c *Client) RemoveTeamMember(ctx context.Context, customerID, teamID, employeeID string) *Response {
	return exchange0(ctx, func(ctx context.Context) error { return c.api.RemoveTeamMember(ctx, customerID, teamID, employeeID) })
}

// SetLocationTeamRoles replaces a team's roles at a location.
func (c *Client) SetLocationTeamRoles(ctx context.Context, customerID, locationID, teamID string, rs []string) *Response {
	return exchange0(ctx, func(ctx context.Context) error {
		return c.api.SetLocationTeamRoles(ctx, customerID, locationID, teamID, rs)
	})
}

// SetDealerMonitoringProvider sets the monitoring provider a dealer uses,
// "" clearing it.
func (c *Client) SetDealerMonitoringProvider(ctx context.Context, dealerID, providerID string) *Response {
	return exchange0(ctx, func(ctx context.Context) error { return c.api.SetDealerMonitoringProvider(ctx, dealerID, providerID) })
}

// GetProfile reads the caller's profile.
func (c *Client) GetProfile(ctx context.Context) (Profile, *Response) {
	return exchange(ctx, c.api.GetProfile)
}

// PutProfile replaces the caller's profile.
func (c *Client) PutProfile(ctx context.Context, p Profile) (Profile, *Response) {
	return exchange(ctx, func(ctx context.Context) (Profile, error) { return c.api.PutProfile(ctx, p) })
}

// CreateSecuritySystem creates a system at a location.
func (c *Client) CreateSecuritySystem(ctx context.Context, locationID, name string) (SecuritySystem, *Response) {
	return exchange(ctx, func(ctx context.Context) (SecuritySystem, error) {
		return c.api.CreateSecuritySystem(ctx, locationID, name)
	})
}

// ListSecuritySystems lists the systems the caller may view.
func (c *Client) ListSecuritySystems(ctx context.Context) ([]SecuritySystem, *Response) {
	return exchange(ctx, c.api.ListSecuritySystems)
}

// GetSecuritySystem reads one system.
func (c *Client) GetSecuritySystem(ctx context.Context, id string) (SecuritySystem, *Response) {
	return exchange(ctx, func(ctx context.Context) (SecuritySystem, error) { return c.api.GetSecuritySystem(ctx, id) })
}

// Arm arms a system.
func (c *Client) Arm(ctx context.Context, id string) (SecuritySystem, *Response) {
	return exchange(ctx, func(ctx context.Context) (SecuritySystem, error) { return c.api.Arm(ctx, id) })
}

// Disarm disarms a system.
func (c *Client) Disarm(ctx context.Context, id string) (SecuritySystem, *Response) {
	return exchange(ctx, func(ctx context.Context) (SecuritySystem, error) { return c.api.Disarm(ctx, id) })
}

// Act performs op (view is GET, arm and disarm are PUT) and returns the
// answer, so a table of decisions can be checked with one call.
func (c *Client) Act(ctx context.Context, op policy.Op, id string) *Response {
	_, r := exchange(ctx, func(ctx context.Context) (SecuritySystem, error) { return c.api.Act(ctx, op, id) })
	return r
}

// RetryUnknownReference repeats call while the service refuses it because
// a referenced entity is not known yet (apiclient.Response.UnknownReference:
// it learns other services' entities from events). Any other answer, or
// the bound of 30 seconds, ends the wait.
func RetryUnknownReference(ctx context.Context, call func() *Response) *Response {
	ctx, cancel := context.WithTimeout(ctx, apiclient.DefaultRetryBound)
	defer cancel()
	var r *Response
	_ = poll(ctx, func() bool {
		r = call()
		return !r.UnknownReference()
	})
	return r
}
