package app

import (
	"context"
	"slices"

	"github.com/realguardio/realguardio/internal/orgkit/paging"
	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/principal"
	"github.com/realguardio/realguardio/internal/policy"
)

// LocationView is a location with everything an administrator manages at
// it: its dealer and the roles of employees and teams there.
type LocationView struct {
	Location
	EmployeeRoles []RoleGrant
	TeamRoles     []RoleGrant
}

// TeamView is a team with its members' employee ids and, when one team is
// read, the roles it holds by location id (nil in lists, which would pay
// for every team's grants on every page).
type TeamView struct {
	Team
	Members       []string
	LocationRoles map[string][]string
}

// EmployeeGrants are what this package adds to an employee's details: its
// direct location roles, the teams it is a member of and the roles each of
// those teams holds by location id (TeamLocationRoles, keyed by team id), so
// an administrator sees every path by which the employee holds a role.
type EmployeeGrants struct {
	LocationRoles     map[string][]string
	Teams             []Team
	TeamLocationRoles map[string]map[string][]string
}

// Locations returns a page of the locations of customerID (LocationKey
// order, name filter req.Query) with the grants at each: one index range
// for the page and one primary-key range per location for the grants.
func (s *Service) Locations(ctx context.Context, caller *principal.Caller, customerID string, req paging.Request) (paging.Page[LocationView], error) {
	if err := s.RequireReader(ctx, caller, customerID); err != nil {
		return paging.Page[LocationView]{}, err
	}
	rows, err := s.Store.View().LocationsPage(ctx, customerID, req)
	if err != nil {
		return paging.Page[LocationView]{}, err
	}
	page := paging.Cut(req, rows, LocationKey)
	views, err := s.locationViews(ctx, page.Items)
	if err != nil {
		return paging.Page[LocationView]{}, err
	}
	return paging.Page[LocationView]{Items: views, Next: page.Next}, nil
}

func (s *Service) locationViews(ctx context.Context, locs []Location) ([]LocationView, error) {
	ids := make([]string, len(locs))
	for i, l := range locs {
		ids[i] = l.ID
	}
	emp, team := map[string][]RoleGrant{}, map[string][]RoleGrant{}
	if len(ids) > 0 {
		var err error
		if emp, err = s.Store.View().EmployeeRolesAt(ctx, ids); err != nil {
			return nil, err
		}
		if team, err = s.Store.View().TeamRolesAt(ctx, ids); err != nil {
			return nil, err
		}
	}
	out := make([]LocationView, 0, len(locs))
	for _, l := range locs {
		out = append(out, LocationView{Location: l, EmployeeRoles: nonNil(emp[l.ID]), TeamRoles: nonNil(team[l.ID])})
	}
	return out, nil
}

// Location returns one location of customerID with its current grants.
func (s *Service) Location(ctx context.Context, caller *principal.Caller, customerID, locationID string) (LocationView, error) {
	if err := s.RequireReader(ctx, caller, customerID); err != nil {
		return LocationView{}, err
	}
	l, err := s.location(ctx, s.Store.View(), customerID, locationID)
	if err != nil {
		return LocationView{}, err
	}
	views, err := s.locationViews(ctx, []Location{l})
	if err != nil {
		return LocationView{}, err
	}
	return views[0], nil
}

// Teams returns a page of the teams of customerID (TeamKey order, name
// filter req.Query) with their members' employee ids.
func (s *Service) Teams(ctx context.Context, caller *principal.Caller, customerID string, req paging.Request) (paging.Page[TeamView], error) {
	if err := s.RequireReader(ctx, caller, customerID); err != nil {
		return paging.Page[TeamView]{}, err
	}
	rows, err := s.Store.View().TeamsPage(ctx, customerID, req)
	if err != nil {
		return paging.Page[TeamView]{}, err
	}
	page := paging.Cut(req, rows, TeamKey)
	views, err := s.teamViews(ctx, page.Items)
	if err != nil {
		return paging.Page[TeamView]{}, err
	}
	return paging.Page[TeamView]{Items: views, Next: page.Next}, nil
}

func (s *Service) teamViews(ctx context.Context, teams []Team) ([]TeamView, error) {
	ids := make([]string, len(teams))
	for i, t := range teams {
		ids[i] = t.ID
	}
	members := map[string][]string{}
	if len(ids) > 0 {
		var err error
		if members, err = s.Store.View().TeamMembers(ctx, ids); err != nil {
			return nil, err
		}
	}
	out := make([]TeamView, 0, len(teams))
	for _, t := range teams {
		m := members[t.ID]
		if m == nil {
			m = []string{}
		}
		out = append(out, TeamView{Team: t, Members: m})
	}
	return out, nil
}

// Team returns one team of customerID with its members.
func (s *Service) Team(ctx context.Context, caller *principal.Caller, customerID, teamID string) (TeamView, error) {
	if err := s.RequireReader(ctx, caller, customerID); err != nil {
		return TeamView{}, err
	}
	t, err := s.team(ctx, s.Store.View(), customerID, teamID)
	if err != nil {
		return TeamView{}, err
	}
	views, err := s.teamViews(ctx, []Team{t})
	if err != nil {
		return TeamView{}, err
	}
	roles, err := s.Store.View().TeamLocationRoles(ctx, []string{t.ID})
	if err != nil {
		return TeamView{}, err
	}
	views[0].LocationRoles = roles[t.ID]
	if views[0].LocationRoles == nil {
		views[0].LocationRoles = map[string][]string{}
	}
	return views[0], nil
}

// Members returns a page of the members of team teamID of customerID with
// their names, in MemberKey order.
func (s *Service) Members(ctx context.Context, caller *principal.Caller, customerID, teamID string, req paging.Request) (paging.Page[Employee], error) {
	if err := s.RequireReader(ctx, caller, customerID); err != nil {
		return paging.Page[Employee]{}, err
	}
	if _, err := s.team(ctx, s.Store.View(), customerID, teamID); err != nil {
		return paging.Page[Employee]{}, err
	}
	rows, err := s.Store.View().MembersPage(ctx, teamID, req)
	if err != nil {
		return paging.Page[Employee]{}, err
	}
	return paging.Cut(req, rows, MemberKey), nil
}

// EmployeeGrants returns the direct location roles and teams of
// employeeID. The caller's right to see the employee is checked by whoever
// serves the employee itself (the organization kit); this only adds to it.
func (s *Service) EmployeeGrants(ctx context.Context, employeeID string) (EmployeeGrants, error) {
	direct, err := s.Store.View().DirectLocationRoles(ctx, employeeID)
	if err != nil {
		return EmployeeGrants{}, err
	}
	teams, err := s.Store.View().TeamsOfEmployee(ctx, employeeID)
	if err != nil {
		return EmployeeGrants{}, err
	}
	if teams == nil {
		teams = []Team{}
	}
	ids := make([]string, len(teams))
	for i, t := range teams {
		ids[i] = t.ID
	}
	through, err := s.Store.View().TeamLocationRoles(ctx, ids)
	if err != nil {
		return EmployeeGrants{}, err
	}
	return EmployeeGrants{LocationRoles: direct, Teams: teams, TeamLocationRoles: through}, nil
}

// SubjectLocationRoles returns the location roles of userID merged from
// direct grants and team grants, for the subject facts of the fetch
// strategy. A user who is no active customer employee holds none.
func (s *Service) SubjectLocationRoles(ctx context.Context, userID string) (map[string][]string, error) {
	r := s.Store.View()
	e, err := r.EmployeeByUser(ctx, userID)
	if apperr.Is(err, apperr.NotFound) {
		return map[string][]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	if !e.Active {
		return map[string][]string{}, nil
	}
	return r.EffectiveLocationRoles(ctx, e.ID)
}

// LocationFacts returns the resource facts of one location; NotFound when
// unknown.
func (s *Service) LocationFacts(ctx context.Context, locationID string) (LocationFacts, error) {
	facts, err := s.Store.View().LocationFacts(ctx, []string{locationID})
	if err != nil {
		return LocationFacts{}, err
	}
	if len(facts) == 0 {
		return LocationFacts{}, apperr.New(apperr.NotFound, "location %s not found", locationID)
	}
	return facts[0], nil
}

// MaxBatch bounds the ids of one batch facts request; a page of security
// systems is far smaller, and the bound keeps one request's query cheap.
const MaxBatch = 1000

// LocationFactsBatch returns the facts of the known locations among ids;
// unknown ids are left out (docs/fetch-api.md).
func (s *Service) LocationFactsBatch(ctx context.Context, ids []string) ([]LocationFacts, error) {
	if ids == nil {
		return nil, apperr.InvalidField("locationIds", "is required")
	}
	if len(ids) > MaxBatch {
		return nil, apperr.InvalidField("locationIds", "must hold at most %d ids", MaxBatch)
	}
	clean := make([]string, 0, len(ids))
	for i, id := range ids {
		v, err := ValidateID("locationIds", id)
		if err != nil {
			return nil, apperr.InvalidField("locationIds", "[%d] must be a UUID", i)
		}
		if !slices.Contains(clean, v) {
			clean = append(clean, v)
		}
	}
	if len(clean) == 0 {
		return []LocationFacts{}, nil
	}
	return s.Store.View().LocationFacts(ctx, clean)
}

// Profile returns the caller's own profile. Only a customer employee has
// one; its names default to those the employee was created with until the
// employee changes them.
func (s *Service) Profile(ctx context.Context, caller *principal.Caller) (Profile, error) {
	if _, err := principal.RequireRole(ctx, principal.RoleCustomerEmployee); err != nil {
		return Profile{}, err
	}
	e, err := s.profileOwner(ctx, s.Store.View(), caller)
	if err != nil {
		return Profile{}, err
	}
	p, ok, err := s.Store.View().Profile(ctx, caller.Subject)
	if err != nil {
		return Profile{}, err
	}
	if !ok {
		p = Profile{UserID: caller.Subject, FirstName: e.FirstName, LastName: e.LastName}
	}
	return p, nil
}

// UpdateProfile replaces the caller's own profile.
func (s *Service) UpdateProfile(ctx context.Context, caller *principal.Caller, p Profile) (Profile, error) {
	if _, err := principal.RequireRole(ctx, principal.RoleCustomerEmployee); err != nil {
		return Profile{}, err
	}
	var err error
	if p.FirstName, err = ValidateName("firstName", p.FirstName); err != nil {
		return Profile{}, err
	}
	if p.LastName, err = ValidateName("lastName", p.LastName); err != nil {
		return Profile{}, err
	}
	if p.PhoneNumber, err = ValidatePhoneNumber(p.PhoneNumber); err != nil {
		return Profile{}, err
	}
	p.UserID = caller.Subject
	err = s.Store.Update(ctx, func(tx Tx) error {
		if _, err := s.profileOwner(ctx, tx, caller); err != nil {
			return err
		}
		return tx.PutProfile(ctx, p)
	})
	if err != nil {
		return Profile{}, err
	}
	return p, nil
}

// profileOwner returns the employee whose user is the caller. The profile
// is found by sub alone, so no request can name another user's profile.
func (s *Service) profileOwner(ctx context.Context, r Reader, caller *principal.Caller) (Employee, error) {
	e, err := r.EmployeeByUser(ctx, caller.Subject)
	if apperr.Is(err, apperr.NotFound) || (err == nil && !e.Active) {
		return Employee{}, apperr.New(apperr.NotFound, "you have no customer employee profile")
	}
	return e, err
}

func nonNil(g []RoleGrant) []RoleGrant {
	if g == nil {
		return []RoleGrant{}
	}
	return g
}

// MaxLocationNames bounds the ids of one GET /location-names: two
// dashboard pages' worth.
const MaxLocationNames = 200

// LocationNames returns the names of the locations among ids that caller
// may see: every one to REALGUARDIO_ADMIN; those of the caller's own
// customer to its employees; those the caller's dealer services, or that
// a dealer using the caller's monitoring provider services, to that
// dealer's or provider's employees (asked of the Dealer and Monitoring
// Provider Services through m, only when a location is not already
// allowed). Unknown and unseen ids are left out alike. A nil m leaves the
// dealers' and providers' employees without names.
func (s *Service) LocationNames(ctx context.Context, caller *principal.Caller, bearer string, m Memberships, ids []string) ([]LocationName, error) {
	if caller == nil || caller.IsService {
		return nil, apperr.Denied(policy.ReasonNoRole, "location names are for users")
	}
	if len(ids) > MaxLocationNames {
		return nil, apperr.InvalidField("ids", "must be at most %d ids", MaxLocationNames)
	}
	seen := map[string]bool{}
	var clean []string
	for _, id := range ids {
		v, err := ValidateID("ids", id)
		if err != nil {
			return nil, err
		}
		if !seen[v] {
			seen[v] = true
			clean = append(clean, v)
		}
	}
	if len(clean) == 0 {
		return []LocationName{}, nil
	}
	all, err := s.Store.View().LocationNames(ctx, clean)
	if err != nil {
		return nil, err
	}
	if caller.HasRole(principal.RoleAdmin) {
		return all, nil
	}
	customerID := ""
	if e, err := s.Store.View().EmployeeByUser(ctx, caller.Subject); err == nil {
		customerID = e.CustomerID
	} else if !apperr.Is(err, apperr.NotFound) {
		return nil, err
	}
	out := make([]LocationName, 0, len(all))
	var rest []LocationName
	for _, l := range all {
		if l.CustomerID == customerID {
			out = append(out, l)
		} else if l.DealerID != "" {
			rest = append(rest, l)
		}
	}
	if len(rest) == 0 || m == nil {
		return out, nil
	}
	mem, err := m.Of(ctx, bearer, caller.Subject)
	if err != nil {
		return nil, err
	}
	for _, l := range rest {
		if (mem.DealerID != "" && l.DealerID == mem.DealerID) ||
			(mem.MonitoringProviderID != "" && l.MonitoringProviderID == mem.MonitoringProviderID) {
			out = append(out, l)
		}
	}
	return out, nil
}
