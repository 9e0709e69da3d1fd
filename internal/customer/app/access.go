package app

import (
	"context"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/principal"
	"github.com/realguardio/realguardio/internal/policy"
)

// AccessPage selects one page of a location's access facts: the first
// Limit users after (AfterUsername, AfterUserID) in username then user id
// order, byte by byte, optionally only UserID (docs/fetch-api.md, "Access
// review"). The HTTP adapter validates it.
type AccessPage struct {
	Limit         int
	AfterUsername string
	AfterUserID   string
	UserID        string
}

// TeamGrant is a team of the holder's with the roles it holds at the
// location.
type TeamGrant struct {
	TeamID string
	Name   string
	Roles  []string
}

// AccessHolder is one active employee of the location's customer who
// holds a security system role at the location (directly or through a
// team) or as an organization role in the customer.
type AccessHolder struct {
	EmployeeID        string
	UserID            string
	Username          string
	OrganizationRoles []string
	LocationRoles     []string
	Teams             []TeamGrant
	Schedule          *policy.Schedule
}

// LocationAccess is the Customer Service's part of an access review of the
// systems at one location.
type LocationAccess struct {
	Location     Location
	CustomerName string
	Holders      []AccessHolder
	// More is true when holders follow the page.
	More bool
}

// LocationAccess returns the location's facts and one page of the
// employees of its customer who hold a security system role there or in
// the customer; an unknown location is NotFound. The caller's right to
// read facts is checked by the HTTP adapter, as for the other facts.
func (s *Service) LocationAccess(ctx context.Context, locationID string, p AccessPage) (LocationAccess, error) {
	if p.Limit < 1 {
		return LocationAccess{}, apperr.InvalidField("limit", "must be positive")
	}
	l, err := s.Store.View().Location(ctx, locationID)
	if err != nil {
		return LocationAccess{}, err
	}
	name, holders, err := s.Store.View().LocationAccess(ctx, l, p)
	if err != nil {
		return LocationAccess{}, err
	}
	out := LocationAccess{Location: l, CustomerName: name, Holders: holders}
	if len(holders) > p.Limit {
		out.Holders, out.More = holders[:p.Limit], true
	}
	return out, nil
}

// LocationHolders returns one page of the customer's own holders of
// access to the systems at locationID (LocationAccess's holders) for the
// console's location page: the platform administrator and the customer's
// administrators may read it, as they may read the access review of the
// location's systems (AUTHZ.md, "Access review"). A location of another
// customer is NotFound.
func (s *Service) LocationHolders(ctx context.Context, caller *principal.Caller, customerID, locationID string, p AccessPage) (LocationAccess, error) {
	r := s.Store.View()
	check := r.RequireAdministrator
	if caller.HasRole(principal.RoleAdmin) {
		check = r.AuthorizeReader
	}
	if err := check(ctx, caller, customerID); err != nil {
		return LocationAccess{}, err
	}
	if _, err := s.location(ctx, r, customerID, locationID); err != nil {
		return LocationAccess{}, err
	}
	return s.LocationAccess(ctx, locationID, p)
}
