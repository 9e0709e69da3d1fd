package orgkit

import (
	"context"
	"slices"
	"strings"

	"github.com/realguardio/realguardio/internal/orgkit/paging"
	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/policy"
)

// ListOrganizations returns a page of the organizations the caller may
// see, in name order, filtered by req.Query (name contains, ignoring
// case): all of them for a public directory (dealers, monitoring
// providers) or a REALGUARDIO_ADMIN; otherwise only the caller's own
// organization, if any, which is one primary-key read whatever the
// platform holds.
func (s *Service) ListOrganizations(ctx context.Context, caller *auth.Caller, req paging.Request) (paging.Page[Organization], error) {
	if s.kind.PublicDirectory || caller.HasRole(auth.RoleAdmin) {
		rows, err := s.repo.OrganizationsPage(ctx, s.db, req)
		if err != nil {
			return paging.Page[Organization]{}, err
		}
		return paging.Cut(req, rows, OrganizationKey), nil
	}
	none := paging.Page[Organization]{Items: []Organization{}}
	if caller == nil || caller.IsService {
		return none, nil
	}
	e, err := s.repo.EmployeeByUserID(ctx, s.db, caller.Subject)
	if apperr.Is(err, apperr.NotFound) {
		return none, nil
	}
	if err != nil {
		return paging.Page[Organization]{}, err
	}
	o, err := s.repo.Organization(ctx, s.db, e.OrgID)
	if err != nil {
		return paging.Page[Organization]{}, err
	}
	// The one organization goes through the same filter and cursor as a
	// directory page, so a client pages both alike.
	if !ownMatches(req, o) {
		return none, nil
	}
	return paging.Page[Organization]{Items: []Organization{o}}, nil
}

// ownMatches reports whether the caller's own organization o belongs on
// the page req asks for: it matches the filter and comes after the cursor.
func ownMatches(req paging.Request, o Organization) bool {
	if req.Query != "" && !strings.Contains(strings.ToLower(o.Name), strings.ToLower(req.Query)) {
		return false
	}
	if req.After != nil && slices.Compare(OrganizationKey(o), req.After) <= 0 {
		return false
	}
	return true
}

// GetOrganization returns organization orgID when the caller may see it
// (see ListOrganizations; members always may).
func (s *Service) GetOrganization(ctx context.Context, caller *auth.Caller, orgID string) (Organization, error) {
	o, err := s.repo.Organization(ctx, s.db, orgID)
	if err != nil {
		return Organization{}, err
	}
	if s.kind.PublicDirectory {
		return o, nil
	}
	if err := s.AuthorizeReader(ctx, s.db, caller, orgID); err != nil {
		return Organization{}, err
	}
	return o, nil
}

// ListEmployees returns a page of the active employees of orgID with
// their roles and schedules, in EmployeeKey order, filtered by req.Query
// (name or e-mail address contains, ignoring case), to its employees and
// to REALGUARDIO_ADMIN.
func (s *Service) ListEmployees(ctx context.Context, caller *auth.Caller, orgID string, req paging.Request) (paging.Page[EmployeeDetails], error) {
	if err := s.AuthorizeReader(ctx, s.db, caller, orgID); err != nil {
		return paging.Page[EmployeeDetails]{}, err
	}
	emps, err := s.repo.EmployeesPage(ctx, s.db, orgID, req)
	if err != nil {
		return paging.Page[EmployeeDetails]{}, err
	}
	page := paging.Cut(req, emps, func(e Employee) []string { return EmployeeKey(EmployeeDetails{Employee: e}) })
	details, err := s.repo.DetailsOf(ctx, s.db, page.Items)
	if err != nil {
		return paging.Page[EmployeeDetails]{}, err
	}
	return paging.Page[EmployeeDetails]{Items: details, Next: page.Next}, nil
}

// GetEmployee returns employee employeeID of orgID with roles and schedule,
// to the organization's employees and to REALGUARDIO_ADMIN.
func (s *Service) GetEmployee(ctx context.Context, caller *auth.Caller, orgID, employeeID string) (EmployeeDetails, error) {
	if err := s.AuthorizeReader(ctx, s.db, caller, orgID); err != nil {
		return EmployeeDetails{}, err
	}
	e, err := s.repo.Employee(ctx, s.db, orgID, employeeID)
	if err != nil {
		return EmployeeDetails{}, err
	}
	return s.repo.Details(ctx, s.db, e)
}

// SubjectFacts are the user-side facts of docs/fetch-api.md that this
// organization service owns.
type SubjectFacts struct {
	UserID string `json:"userId"`
	// Organization is nil when the user is not an active employee here.
	Organization *OrganizationFacts `json:"organization"`
	// LocationRoles is filled by the customer service only; it is left out
	// of the other services' answers.
	LocationRoles map[string][]string `json:"locationRoles,omitzero"`
	// Schedule is nil when the user is unrestricted.
	Schedule *policy.Schedule `json:"schedule"`
}

// OrganizationFacts is the membership part of SubjectFacts.
type OrganizationFacts struct {
	Kind  policy.OrgKind `json:"kind"`
	ID    string         `json:"id"`
	Roles []string       `json:"roles"`
}

// AuthorizeFacts allows a client-credentials token with scope authz:read,
// and a user reading its own subject facts when selfUserID is non-empty
// and equal to its sub (docs/fetch-api.md). Anything else is Forbidden.
func AuthorizeFacts(caller *auth.Caller, selfUserID string) error {
	if caller != nil && caller.IsService && caller.HasScope(ScopeAuthzRead) {
		return nil
	}
	if caller != nil && !caller.IsService && selfUserID != "" && caller.Subject == selfUserID {
		return nil
	}
	return apperr.Denied("insufficient_scope", "a service token with scope %s is required", ScopeAuthzRead)
}

// RequireFactsReader checks that the caller in ctx may read facts other
// than its own subject facts: only a service token with scope authz:read
// may. It is the first step of every handler of a facts endpoint, like
// auth.RequireRole of the other handlers.
func RequireFactsReader(ctx context.Context) error {
	caller, err := auth.MustCaller(ctx)
	if err != nil {
		return err
	}
	return AuthorizeFacts(caller, "")
}

// SubjectFacts returns the facts about userID for the fetch strategy:
// the organization membership with its roles, and the schedule. A user who
// is no (active) employee here gets a nil Organization and Schedule.
func (s *Service) SubjectFacts(ctx context.Context, caller *auth.Caller, userID string) (SubjectFacts, error) {
	if err := AuthorizeFacts(caller, userID); err != nil {
		return SubjectFacts{}, err
	}
	out := SubjectFacts{UserID: userID}
	e, err := s.repo.EmployeeByUserID(ctx, s.db, userID)
	if apperr.Is(err, apperr.NotFound) {
		return out, nil
	}
	if err != nil {
		return SubjectFacts{}, err
	}
	d, err := s.repo.Details(ctx, s.db, e)
	if err != nil {
		return SubjectFacts{}, err
	}
	out.Organization = &OrganizationFacts{Kind: s.kind.Org, ID: e.OrgID, Roles: d.Roles}
	out.Schedule = d.Schedule
	return out, nil
}
