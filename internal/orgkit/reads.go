package orgkit

import (
	"context"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/policy"
)

// ListOrganizations returns the organizations the caller may see: all of
// them for a public directory (dealers, monitoring providers) or a
// REALGUARDIO_ADMIN; otherwise only the caller's own organization, if any.
func (s *Service) ListOrganizations(ctx context.Context, caller *auth.Caller) ([]Organization, error) {
	if s.kind.PublicDirectory || caller.HasRole(auth.RoleAdmin) {
		return s.repo.Organizations(ctx, s.db)
	}
	out := []Organization{}
	if caller == nil || caller.IsService {
		return out, nil
	}
	e, err := s.repo.EmployeeByUserID(ctx, s.db, caller.Subject)
	if apperr.Is(err, apperr.NotFound) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	o, err := s.repo.Organization(ctx, s.db, e.OrgID)
	if err != nil {
		return nil, err
	}
	return append(out, o), nil
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

// ListEmployees returns the active employees of orgID with their roles and
// schedules, to its employees and to REALGUARDIO_ADMIN.
func (s *Service) ListEmployees(ctx context.Context, caller *auth.Caller, orgID string) ([]EmployeeDetails, error) {
	if err := s.AuthorizeReader(ctx, s.db, caller, orgID); err != nil {
		return nil, err
	}
	emps, err := s.repo.Employees(ctx, s.db, orgID)
	if err != nil {
		return nil, err
	}
	out := make([]EmployeeDetails, 0, len(emps))
	for _, e := range emps {
		d, err := s.repo.Details(ctx, s.db, e)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
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
