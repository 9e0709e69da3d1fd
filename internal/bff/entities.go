package bff

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/policy"
)

// The entity pages: one page per organization, employee, location and
// team, each showing the current values and opening its editors with them,
// and the audit page. They read with the user's own token, so a page shows
// exactly what the services let the user read; the editors are offered only
// to the organization's own administrators, who alone may change it (the
// services decide either way).

// orgKinds maps the kind segment of an entity page's path to the
// organization kind and the API collection the organization lives in.
var orgKinds = map[string]struct {
	Kind       policy.OrgKind
	Collection string
}{
	"customer":            {policy.OrgCustomer, "/customers"},
	"dealer":              {policy.OrgDealer, "/dealers"},
	"monitoring-provider": {policy.OrgMonitoringProvider, "/monitoring-providers"},
}

// kindSegment is the path segment of an organization kind.
func kindSegment(k policy.OrgKind) string {
	for seg, v := range orgKinds {
		if v.Kind == k {
			return seg
		}
	}
	return ""
}

// orgPath is the entity page of an organization.
func orgPath(kind, id string) string {
	return "/admin/organizations/" + kindSegment(policy.OrgKind(kind)) + "/" + url.PathEscape(id)
}

func (s *Service) routeEntities(mux *httpx.Mux) {
	mux.HandleFunc("GET /admin/organizations/{kind}/{orgId}", s.authed("organization", s.pageOrg))
	mux.HandleFunc("GET /admin/organizations/{kind}/{orgId}/employees/{employeeId}", s.authed("organization", s.pageEmployee))
	mux.HandleFunc("GET /admin/organizations/customer/{orgId}/locations/{locationId}", s.authed("organization", s.pageLocation))
	mux.HandleFunc("GET /admin/organizations/customer/{orgId}/teams/{teamId}", s.authed("organization", s.pageTeam))
	mux.HandleFunc("GET /audit", s.authed("audit", s.pageAudit))
}

// effectText says when a change of roles, memberships, dealers or
// schedules reaches the Security System Service's decisions under the
// running strategy (AUTHZ.md's staleness bounds).
func (s *Service) effectText() string {
	switch s.cfg.Strategy {
	case "provide":
		return "at the user's next token refresh, at most " + humanDuration(s.cfg.TokenLifetime)
	case "fetch":
		return "at once"
	case "replicate", "delegate":
		return "within a second"
	}
	return "shortly"
}

// humanDuration writes d as people say it: "5 minutes", "90 seconds".
func humanDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0 && d >= time.Hour:
		return plural(int(d/time.Hour), "hour")
	case d%time.Minute == 0 && d >= time.Minute:
		return plural(int(d/time.Minute), "minute")
	}
	return plural(int(d.Round(time.Second)/time.Second), "second")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// orgTarget reads and checks the organization of an entity page's path,
// and returns it with its API path. Location and team pages have the kind
// "customer" in their pattern, not as a wildcard: only customers have them.
func orgTarget(r *http.Request) (*orgMembership, string, error) {
	kind := r.PathValue("kind")
	if kind == "" {
		kind = "customer"
	}
	k, ok := orgKinds[kind]
	if !ok {
		return nil, "", apperr.New(apperr.NotFound, "there is no kind of organization %q", kind)
	}
	id, err := uuid.Parse(r.PathValue("orgId"))
	if err != nil {
		return nil, "", apperr.New(apperr.NotFound, "no organization %q", r.PathValue("orgId"))
	}
	return &orgMembership{Kind: string(k.Kind), ID: id.String()}, k.Collection + "/" + id.String(), nil
}

// pagePathID reads a UUID path value; a malformed one is a page not found.
func pagePathID(r *http.Request, name, what string) (string, error) {
	id, err := uuid.Parse(r.PathValue(name))
	if err != nil {
		return "", apperr.New(apperr.NotFound, "no %s %q", what, r.PathValue(name))
	}
	return id.String(), nil
}

// backendBase is the base URL of the service that owns organizations of
// kind.
func (s *Service) backendBase(kind policy.OrgKind) string {
	switch kind {
	case policy.OrgDealer:
		return s.cfg.DealerURL
	case policy.OrgMonitoringProvider:
		return s.cfg.MonitoringURL
	}
	return s.cfg.CustomerURL
}

// canEdit reports whether the user administers organization m: only then
// are editors shown (the services refuse everybody else's changes).
func canEdit(p *page, m *orgMembership) bool {
	u := p.User.Org
	return u != nil && u.isAdmin() && u.Kind == m.Kind && u.ID == m.ID
}

// entityData is what every entity page gets besides its own part.
type entityData struct {
	Org     *orgMembership
	OrgName string
	OrgURL  string
	Edit    bool
	// Effect is effectText, for the editors' results.
	Effect string
	Dir    *directory
	Forms  []apiForm
	// Problem is set when the entity itself could not be read.
	Problem string
}

func (s *Service) entityBase(ctx context.Context, p *page, sess *session, m *orgMembership, collectionPath string) *entityData {
	d := &entityData{Org: m, OrgURL: orgPath(m.Kind, m.ID), Edit: canEdit(p, m), Effect: s.effectText()}
	var wg sync.WaitGroup
	wg.Go(func() {
		var o orgJSON
		if _, err := s.backendJSON(ctx, sess, s.backendBase(policy.OrgKind(m.Kind)), collectionPath, &o); err == nil {
			d.OrgName = o.Name
		}
	})
	wg.Go(func() { d.Dir = s.loadDirectory(ctx, sess, m, false) })
	wg.Wait()
	return d
}

// pageOrg is an organization's page: the one of the user's own
// organization with its editors (as /admin/organization), any other one
// read-only for the platform administrator.
func (s *Service) pageOrg(w http.ResponseWriter, r *http.Request, p *page, sess *session) {
	m, _, err := orgTarget(r)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	if canEdit(p, m) {
		m = p.User.Org
	} else if !slices.Contains(p.User.Roles, roleAdmin) {
		s.renderError(w, r, apperr.Denied("no_role", "only the organization's administrators and the platform administrator may see this page"))
		return
	}
	s.renderOrganization(w, r, p, sess, m)
}

// employeeJSONFull is an employee as GET .../employees/{id} answers: the
// customer service adds the direct location roles and the teams with the
// roles each holds by location.
type employeeJSONFull struct {
	employeeJSON
	LocationRoles map[string][]string `json:"locationRoles"`
	Teams         []struct {
		ID            string              `json:"id"`
		Name          string              `json:"name"`
		LocationRoles map[string][]string `json:"locationRoles"`
	} `json:"teams"`
}

// locationGrant is one line of the location roles of an employee or team:
// where, which roles and by which path.
type locationGrant struct {
	Location named
	Roles    []string
	// Team is set for roles held through a team.
	Team *named
}

type employeePage struct {
	*entityData
	Employee     employeeJSONFull
	Name         string
	Grants       []locationGrant
	ScheduleJSON string
	Customer     bool
	OrgRolesForm apiForm
	LocForm      apiForm
	RemoveForm   apiForm
	ScheduleBase string
	// Account is the employee's account status, nil when it could not be
	// read (AccountProblem says why, unless the user may not read it);
	// AccountForm disables or enables it again, for the organization's
	// administrators (never their own account).
	Account        *accountJSON
	AccountProblem string
	AccountForm    *apiForm
}

// accountJSON is GET .../employees/{id}/account.
type accountJSON struct {
	Enabled bool `json:"enabled"`
}

func (s *Service) pageEmployee(w http.ResponseWriter, r *http.Request, p *page, sess *session) {
	m, orgPathAPI, err := orgTarget(r)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	eid, err := pagePathID(r, "employeeId", "employee")
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), pageBackendBudget)
	defer cancel()
	d := &employeePage{}
	var empErr error
	var wg sync.WaitGroup
	wg.Go(func() { d.entityData = s.entityBase(ctx, p, sess, m, orgPathAPI) })
	wg.Go(func() {
		_, empErr = s.backendJSON(ctx, sess, s.backendBase(policy.OrgKind(m.Kind)), orgPathAPI+"/employees/"+eid, &d.Employee)
	})
	// The organization's administrators and the platform administrator
	// read the account's status; for the others it stays unsaid.
	if canEdit(p, m) || slices.Contains(p.User.Roles, roleAdmin) {
		wg.Go(func() {
			var a accountJSON
			if _, err := s.backendJSON(ctx, sess, s.backendBase(policy.OrgKind(m.Kind)), orgPathAPI+"/employees/"+eid+"/account", &a); err != nil {
				d.AccountProblem = "The account's status could not be read: " + strings.TrimSuffix(describeProblem(err), ".") + "."
				return
			}
			d.Account = &a
		})
	}
	wg.Wait()
	if empErr != nil {
		s.renderError(w, r, pageProblem(empErr, "employee"))
		return
	}
	e := d.Employee
	d.Name = strings.TrimSpace(e.FirstName + " " + e.LastName)
	d.Customer = policy.OrgKind(m.Kind) == policy.OrgCustomer
	kind := policy.OrgKind(m.Kind)
	base := "/api" + orgKinds[kindSegment(kind)].Collection
	param := map[policy.OrgKind]string{policy.OrgCustomer: "customerId", policy.OrgDealer: "dealerId", policy.OrgMonitoringProvider: "providerId"}[kind]
	d.OrgRolesForm = employeeRolesForm(base, param, m.ID, kind, e.ID)
	d.OrgRolesForm.Current = map[string]any{e.ID: nonNilRoles(e.Roles)}
	d.ScheduleBase = base + "/" + m.ID
	// The schedule editor reads current schedules by employee id, as on
	// the organization page.
	raw, err := json.Marshal(map[string]*scheduleJSON{e.ID: e.Schedule})
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	d.ScheduleJSON = string(raw)
	d.RemoveForm = apiForm{ID: "remove-employee", Title: "Remove the employee", Method: "DELETE", Danger: true, Effect: true,
		Help:   "Disables the account at once (no new sign-in, no token refresh) and takes away every role, shift, location role and team membership.",
		Path:   base + "/{" + param + "}/employees/{employeeId}",
		Fields: []formField{{Name: "path:" + param, Type: "hidden", Value: m.ID}, {Name: "path:employeeId", Type: "hidden", Value: e.ID}},
		Submit: "Remove " + d.Name}
	if d.Account != nil && d.Edit && e.UserID != sess.Subject {
		d.AccountForm = accountForm(base, param, m.ID, e.ID, d.Name, !d.Account.Enabled, s.effectText())
	}
	if d.Customer {
		for loc, roles := range e.LocationRoles {
			d.Grants = append(d.Grants, locationGrant{Location: d.Dir.named(loc), Roles: roles})
		}
		for _, t := range e.Teams {
			for loc, roles := range t.LocationRoles {
				team := named{ID: t.ID, Name: t.Name}
				d.Grants = append(d.Grants, locationGrant{Location: d.Dir.named(loc), Roles: roles, Team: &team})
			}
		}
		slices.SortFunc(d.Grants, func(a, b locationGrant) int {
			if c := strings.Compare(a.Location.Name, b.Location.Name); c != 0 {
				return c
			}
			return strings.Compare(teamName(a.Team), teamName(b.Team))
		})
		d.LocForm = locationRolesForm(m.ID, "", e.ID, false)
		cur := map[string]any{}
		for loc, roles := range e.LocationRoles {
			cur[loc+" "+e.ID] = roles
		}
		d.LocForm.Current = cur
		d.LocForm.Title = "Roles at a location"
	}
	p.Title = nameOr(d.Name, "Employee")
	p.Data = d
	s.render(w, r, http.StatusOK, "employee", p)
}

// membersLose starts the sentence of what a team's deletion takes away.
func membersLose(n int) string {
	switch n {
	case 0:
		return "It has no members; nobody loses"
	case 1:
		return "Its one member loses"
	}
	return fmt.Sprintf("Its %d members lose", n)
}

// deleteForm is the DELETE of a location or team, confirmed with
// question, opening the organization's page then.
func deleteForm(id, title, path, customerID, param, entityID, name, then, help, question string) apiForm {
	return apiForm{ID: id, Title: title, Method: "DELETE", Danger: true, Effect: true, Help: help, Path: path,
		Fields: []formField{{Name: "path:customerId", Type: "hidden", Value: customerID}, {Name: "path:" + param, Type: "hidden", Value: entityID}},
		Submit: "Delete " + name, Confirm: question, ConfirmYes: "Yes, delete", Then: then}
}

// accountForm disables the employee's account (enable false) or enables
// it again, asking first before a disable.
func accountForm(base, param, orgID, employeeID, name string, enable bool, effect string) *apiForm {
	f := &apiForm{ID: "employee-account", Method: "PUT", Reload: true,
		Path: base + "/{" + param + "}/employees/{employeeId}/account",
		Fields: []formField{{Name: "path:" + param, Type: "hidden", Value: orgID}, {Name: "path:employeeId", Type: "hidden", Value: employeeID},
			{Name: "enabled", Type: "hidden", Kind: "bool", Value: fmt.Sprint(enable)}}}
	who := nameOr(name, "the employee")
	if enable {
		f.Title, f.Submit = "Enable the account", "Enable "+who+"'s account"
		f.Help = "The account can sign in again, with the roles, shifts and location roles it kept."
		return f
	}
	f.Title, f.Submit, f.Danger = "Disable the account", "Disable "+who+"'s account", true
	f.Help = "Stops sign-in and token refresh at once; the roles, shifts and location roles stay, for when the account is enabled again. Removing the employee takes those away."
	f.Confirm = "Disable " + who + "'s account? They can no longer sign in, and lose access when the token they hold expires (" + effect + "). Their roles and shifts stay."
	f.ConfirmYes = "Yes, disable"
	return f
}

func teamName(t *named) string {
	if t == nil {
		return ""
	}
	return t.Name
}

func nameOr(name, fallback string) string {
	if name == "" {
		return fallback
	}
	return name
}

func nonNilRoles(r []string) []string {
	if r == nil {
		return []string{}
	}
	return r
}

// pageProblem turns the failed read of the page's own entity into the
// error the page shows: the backend's status with its words.
func pageProblem(err error, what string) error {
	if bp, ok := err.(*backendProblem); ok {
		switch bp.Status {
		case http.StatusNotFound:
			return apperr.New(apperr.NotFound, "there is no such %s", what)
		case http.StatusForbidden:
			return apperr.Denied("no_role", "you may not see this %s", what)
		}
	}
	return apperr.Wrap(err, apperr.Unavailable, "the %s could not be read; try again in a moment", what)
}

type locationPage struct {
	*entityData
	Location      locationJSON
	Dealer        *named
	EmployeeRoles []grantRow
	TeamRoles     []grantRow
	Systems       []securitySystem
	SystemsErr    string
	MoreSystems   bool
	DealerForm    apiForm
	EmpForm       apiForm
	TeamForm      apiForm
	DeleteForm    apiForm
	// Access is who of the customer's employees has access to the
	// location's systems and why (for those who may read it: the
	// customer's administrators and the platform administrator);
	// AccessShown says it was read, AccessProblem why not.
	Access        []locationAccessRow
	AccessShown   bool
	AccessProblem string
	// AccessNextURL and AccessFirstURL page it.
	AccessNextURL, AccessFirstURL string
}

// locationHolders is GET /customers/{c}/locations/{l}/access.
type locationHolders struct {
	Users []struct {
		EmployeeID        string           `json:"employeeId"`
		UserID            string           `json:"userId"`
		Username          string           `json:"username"`
		OrganizationRoles []string         `json:"organizationRoles"`
		LocationRoles     []string         `json:"locationRoles"`
		Teams             []teamGrantJSON  `json:"teams"`
		Schedule          *policy.Schedule `json:"schedule"`
	} `json:"users"`
	NextCursor *string `json:"nextCursor"`
}

type teamGrantJSON struct {
	TeamID string   `json:"teamId"`
	Name   string   `json:"name"`
	Roles  []string `json:"roles"`
}

// locationAccessRow is one holder of the location page's "Who has
// access": the employee, what the grants give and why, and the shift
// that restricts arming and disarming.
type locationAccessRow struct {
	Employee named
	Username string
	Actions  string
	Grants   string
	Schedule string
}

// locationAccessPageSize is how many holders one page of a location's
// "Who has access" shows.
const locationAccessPageSize = 25

// grantActions are the actions the roles of a grant give (AUTHZ.md:
// view with any of the three, arm with ARMER, disarm with DISARMER),
// ignoring schedules.
func grantActions(roles []string) string {
	var view, arm, disarm bool
	for _, r := range roles {
		switch r {
		case policy.RoleArmer:
			view, arm = true, true
		case policy.RoleDisarmer:
			view, disarm = true, true
		case policy.RoleViewer:
			view = true
		}
	}
	var out []string
	for _, a := range []struct {
		on   bool
		name string
	}{{view, "view"}, {arm, "arm"}, {disarm, "disarm"}} {
		if a.on {
			out = append(out, a.name)
		}
	}
	return strings.Join(out, ", ")
}

// loadLocationAccess reads one page of the location's holders and turns
// each into a row, naming its grants as the system page does.
func (s *Service) loadLocationAccess(ctx context.Context, sess *session, d *locationPage, orgPathAPI, locID, locName, cursor string) {
	q := url.Values{"limit": {fmt.Sprint(locationAccessPageSize)}}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	var body locationHolders
	if _, err := s.backendJSON(ctx, sess, s.cfg.CustomerURL, orgPathAPI+"/locations/"+url.PathEscape(locID)+"/access?"+q.Encode(), &body); err != nil {
		d.AccessProblem = describeProblem(err)
		return
	}
	d.AccessShown = true
	for _, u := range body.Users {
		var grants []policy.Grant
		var all []string
		for _, r := range u.LocationRoles {
			grants = append(grants, policy.Grant{Role: r, Via: policy.ViaLocation, ID: locID, Name: locName})
		}
		for _, t := range u.Teams {
			for _, r := range t.Roles {
				grants = append(grants, policy.Grant{Role: r, Via: policy.ViaTeam, ID: t.TeamID, Name: t.Name})
			}
			all = append(all, t.Roles...)
		}
		for _, r := range u.OrganizationRoles {
			grants = append(grants, policy.Grant{Role: r, Via: policy.ViaCustomer, ID: d.Org.ID, Name: nameOr(d.OrgName, "the customer")})
		}
		all = slices.Concat(all, u.LocationRoles, u.OrganizationRoles)
		row := locationAccessRow{Employee: named{ID: u.EmployeeID, Name: d.Dir.Name(u.EmployeeID)}, Username: u.Username,
			Actions: grantActions(all), Grants: capitalize(describeGrants(grants, nil))}
		if u.Schedule != nil {
			row.Schedule = describeSchedule(*u.Schedule)
		}
		d.Access = append(d.Access, row)
	}
	base := orgPath(d.Org.Kind, d.Org.ID) + "/locations/" + url.PathEscape(locID)
	if body.NextCursor != nil && *body.NextCursor != "" {
		d.AccessNextURL = base + "?" + url.Values{"access.cursor": {*body.NextCursor}}.Encode() + "#access-h"
	}
	if cursor != "" {
		d.AccessFirstURL = base + "#access-h"
	}
}

// locationSystemsLimit bounds the systems a location page lists; a
// location with more says so and links to the filtered dashboard.
const locationSystemsLimit = 100

func (s *Service) pageLocation(w http.ResponseWriter, r *http.Request, p *page, sess *session) {
	m, orgPathAPI, err := orgTarget(r)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	lid, err := pagePathID(r, "locationId", "location")
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), pageBackendBudget)
	defer cancel()
	d := &locationPage{}
	var locErr error
	var wg sync.WaitGroup
	wg.Go(func() { d.entityData = s.entityBase(ctx, p, sess, m, orgPathAPI) })
	wg.Go(func() {
		_, locErr = s.backendJSON(ctx, sess, s.cfg.CustomerURL, orgPathAPI+"/locations/"+lid, &d.Location)
	})
	wg.Go(func() {
		var body struct {
			SecuritySystems []securitySystem `json:"securitySystems"`
			NextCursor      string           `json:"nextCursor"`
		}
		q := url.Values{"locationId": {lid}, "limit": {fmt.Sprint(locationSystemsLimit)}}
		if _, err := s.backendJSON(ctx, sess, s.cfg.SecuritySystemURL, "/securitysystems?"+q.Encode(), &body); err != nil {
			d.SystemsErr = describeProblem(err)
			return
		}
		d.Systems, d.MoreSystems = body.SecuritySystems, body.NextCursor != ""
	})
	wg.Wait()
	if locErr != nil {
		s.renderError(w, r, pageProblem(locErr, "location"))
		return
	}
	l := d.Location
	// Only the customer's administrators and the platform administrator
	// may read who has access; the others' pages leave the section out
	// rather than show a refusal.
	if canEdit(p, m) || slices.Contains(p.User.Roles, roleAdmin) {
		s.loadLocationAccess(ctx, sess, d, orgPathAPI, l.ID, l.Name, r.URL.Query().Get("access.cursor"))
	}
	dealer := ""
	if l.DealerID != nil && *l.DealerID != "" {
		dealer = *l.DealerID
		n := d.Dir.named(dealer)
		d.Dealer = &n
	}
	for _, g := range l.EmployeeRoles {
		d.EmployeeRoles = append(d.EmployeeRoles, grantRow{Holder: d.Dir.named(g.EmployeeID), Roles: g.Roles})
	}
	for _, g := range l.TeamRoles {
		d.TeamRoles = append(d.TeamRoles, grantRow{Holder: d.Dir.named(g.TeamID), Roles: g.Roles})
	}
	d.DealerForm = locationDealerForm(m.ID, l.ID)
	d.DealerForm.Current = map[string]any{l.ID: dealer}
	d.DealerForm.Title = "Dealer"
	d.EmpForm = locationRolesForm(m.ID, l.ID, "", false)
	d.EmpForm.Title = "Roles of an employee here"
	d.TeamForm = locationRolesForm(m.ID, l.ID, "", true)
	d.TeamForm.Title = "Roles of a team here"
	emp, team := map[string]any{}, map[string]any{}
	for _, g := range l.EmployeeRoles {
		emp[l.ID+" "+g.EmployeeID] = g.Roles
	}
	for _, g := range l.TeamRoles {
		team[l.ID+" "+g.TeamID] = g.Roles
	}
	d.EmpForm.Current, d.TeamForm.Current = emp, team
	d.DeleteForm = deleteForm("delete-location", "Delete the location", "/api/customers/{customerId}/locations/{locationId}",
		m.ID, "locationId", l.ID, nameOr(l.Name, "the location"), orgPath(m.Kind, m.ID)+"#sec-locations",
		"Takes away every role held here, directly or through a team, and the dealer's reach. A location that still has security systems cannot be deleted.",
		"Delete "+nameOr(l.Name, "the location")+"? Everyone loses the roles held here ("+s.effectText()+"). This cannot be undone.")
	p.Title = nameOr(l.Name, "Location")
	p.Data = d
	s.render(w, r, http.StatusOK, "location", p)
}

// teamJSONFull is a team as GET .../teams/{id} answers.
type teamJSONFull struct {
	teamJSON
	LocationRoles map[string][]string `json:"locationRoles"`
}

type teamPage struct {
	*entityData
	Team       teamJSONFull
	Members    []named
	Grants     []locationGrant
	AddForm    apiForm
	RemoveForm apiForm
	RolesForm  apiForm
	DeleteForm apiForm
}

func (s *Service) pageTeam(w http.ResponseWriter, r *http.Request, p *page, sess *session) {
	m, orgPathAPI, err := orgTarget(r)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	tid, err := pagePathID(r, "teamId", "team")
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), pageBackendBudget)
	defer cancel()
	d := &teamPage{}
	var teamErr error
	var wg sync.WaitGroup
	wg.Go(func() { d.entityData = s.entityBase(ctx, p, sess, m, orgPathAPI) })
	wg.Go(func() { _, teamErr = s.backendJSON(ctx, sess, s.cfg.CustomerURL, orgPathAPI+"/teams/"+tid, &d.Team) })
	wg.Wait()
	if teamErr != nil {
		s.renderError(w, r, pageProblem(teamErr, "team"))
		return
	}
	t := d.Team
	members := map[string]bool{}
	for _, id := range t.Members {
		d.Members = append(d.Members, d.Dir.named(id))
		members[t.ID+" "+id] = true
	}
	for loc, roles := range t.LocationRoles {
		d.Grants = append(d.Grants, locationGrant{Location: d.Dir.named(loc), Roles: roles})
	}
	slices.SortFunc(d.Grants, func(a, b locationGrant) int { return strings.Compare(a.Location.Name, b.Location.Name) })
	d.AddForm = memberForm(m.ID, t.ID, "", false)
	d.AddForm.Membership = members
	d.RemoveForm = memberForm(m.ID, t.ID, "", true)
	d.RemoveForm.Membership = members
	d.RolesForm = locationRolesForm(m.ID, "", t.ID, true)
	d.RolesForm.Title = "Roles of the team at a location"
	cur := map[string]any{}
	for loc, roles := range t.LocationRoles {
		cur[loc+" "+t.ID] = roles
	}
	d.RolesForm.Current = cur
	d.DeleteForm = deleteForm("delete-team", "Delete the team", "/api/customers/{customerId}/teams/{teamId}",
		m.ID, "teamId", t.ID, nameOr(t.Name, "the team"), orgPath(m.Kind, m.ID)+"#sec-teams",
		"Its members lose the roles the team holds; their own roles stay.",
		"Delete "+nameOr(t.Name, "the team")+"? "+membersLose(len(t.Members))+" the roles it holds at "+plural(len(t.LocationRoles), "location")+" ("+s.effectText()+"). This cannot be undone.")
	p.Title = nameOr(t.Name, "Team")
	p.Data = d
	s.render(w, r, http.StatusOK, "team", p)
}

// prefillOverview gives the organization page's editors the current values
// the directory read, so choosing Alice ticks her roles.
func prefillOverview(forms []apiForm, d *directory, providerID string) {
	if d == nil {
		return
	}
	for i := range forms {
		f := &forms[i]
		cur := map[string]any{}
		switch f.ID {
		case "employee-roles":
			for _, e := range d.Employees {
				cur[e.ID] = nonNilRoles(e.Roles)
			}
		case "location-dealer":
			for _, l := range d.Locations {
				v := ""
				if l.Dealer != nil {
					v = l.Dealer.ID
				}
				cur[l.ID] = v
			}
		case "location-employee-roles":
			for _, l := range d.Locations {
				for _, g := range l.EmployeeRoles {
					cur[l.ID+" "+g.Holder.ID] = g.Roles
				}
			}
		case "location-team-roles":
			for _, l := range d.Locations {
				for _, g := range l.TeamRoles {
					cur[l.ID+" "+g.Holder.ID] = g.Roles
				}
			}
		case "dealer-provider":
			cur[""] = providerID
		case "add-member", "remove-member":
			f.Membership = map[string]bool{}
			for _, t := range d.Teams {
				for _, mb := range t.Members {
					f.Membership[t.ID+" "+mb.ID] = true
				}
			}
			continue
		default:
			continue
		}
		f.Current = cur
	}
}

// schedulesOf maps employee ids to their schedules (null when
// unrestricted) for the schedule editor of the organization page.
func schedulesOf(d *directory) string {
	out := map[string]*scheduleJSON{}
	if d != nil {
		for _, e := range d.Employees {
			out[e.ID] = e.Schedule
		}
	}
	raw, _ := json.Marshal(out)
	return string(raw)
}

// auditEntry is one decision of GET /audit.
type auditEntry struct {
	ID                 string `json:"id"`
	At                 string `json:"at"`
	UserID             string `json:"userId"`
	SecuritySystemID   string `json:"securitySystemId"`
	SecuritySystemName string `json:"securitySystemName"`
	Action             string `json:"action"`
	Decision           string `json:"decision"`
	Reason             string `json:"reason"`
	Strategy           string `json:"strategy"`
}

// When formats the instant for the table; the raw value stays in the
// datetime attribute.
func (e auditEntry) When() string {
	t, err := time.Parse(time.RFC3339Nano, e.At)
	if err != nil {
		return e.At
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// Why says the reason of a denial in words.
func (e auditEntry) Why() string {
	switch e.Reason {
	case "":
		return ""
	case policy.ReasonNoRole:
		return "no role that allows it"
	case "outside_schedule":
		return "outside the user's shift"
	case "unavailable":
		return "a service the decision needs was down"
	}
	return strings.ReplaceAll(e.Reason, "_", " ")
}

type auditFilter struct {
	SecuritySystemID, UserID, Action, Decision, Since, Until, Cursor string
}

type auditPage struct {
	Filter  auditFilter
	Entries []auditEntry
	// Users names the users the BFF could name (the caller's
	// organization's employees); others show as shortened ids.
	Users         map[string]string
	Problem       string
	Loaded        bool
	NextURL       string
	FirstURL      string
	CanSee        bool
	FilterActive  bool
	SystemOptions []option
}

// auditPageSize is how many decisions one audit page shows.
const auditPageSize = 50

func (s *Service) pageAudit(w http.ResponseWriter, r *http.Request, p *page, sess *session) {
	p.Title = "Audit"
	q := r.URL.Query()
	f := auditFilter{SecuritySystemID: strings.TrimSpace(q.Get("securitySystemId")), UserID: strings.TrimSpace(q.Get("userId")),
		Action: q.Get("action"), Decision: q.Get("decision"), Since: q.Get("since"), Until: q.Get("until"), Cursor: q.Get("cursor")}
	// A hand-edited URL shows the page instead of the service's 422: what
	// the service would refuse is dropped.
	if _, err := uuid.Parse(f.SecuritySystemID); err != nil {
		f.SecuritySystemID = ""
	}
	if _, err := uuid.Parse(f.UserID); err != nil {
		f.UserID = ""
	}
	if f.Action != "ARM" && f.Action != "DISARM" {
		f.Action = ""
	}
	if f.Decision != "allowed" && f.Decision != "denied" && f.Decision != "unavailable" {
		f.Decision = ""
	}
	for _, v := range []*string{&f.Since, &f.Until} {
		if *v == "" {
			continue
		}
		// The form's date inputs give a day; the API wants an instant.
		if t, err := time.Parse("2006-01-02", *v); err == nil {
			*v = t.Format("2006-01-02")
			continue
		}
		*v = ""
	}
	d := &auditPage{Filter: f, Users: map[string]string{}}
	d.CanSee = slices.Contains(p.User.Roles, roleAdmin) || (p.User.Org != nil && p.User.Org.Kind == string(policy.OrgCustomer) && slices.Contains(p.User.Org.Roles, policy.RoleCustomerEmployeeAdministrator))
	values := func(withCursor bool) url.Values {
		v := url.Values{}
		for k, val := range map[string]string{"securitySystemId": f.SecuritySystemID, "userId": f.UserID, "action": f.Action, "decision": f.Decision, "since": f.Since, "until": f.Until} {
			if val != "" {
				v.Set(k, val)
			}
		}
		if withCursor && f.Cursor != "" {
			v.Set("cursor", f.Cursor)
		}
		return v
	}
	d.FilterActive = len(values(false)) > 0
	if !d.CanSee {
		d.Problem = "The audit is for the platform administrator and for customers' administrators (their own systems)."
		p.Data = d
		s.render(w, r, http.StatusOK, "audit", p)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), pageBackendBudget)
	defer cancel()
	api := values(true)
	for _, k := range []string{"since", "until"} {
		if v := api.Get(k); v != "" {
			api.Set(k, v+"T00:00:00Z")
		}
	}
	api.Set("limit", fmt.Sprint(auditPageSize))
	var body struct {
		Entries    []auditEntry `json:"entries"`
		NextCursor string       `json:"nextCursor"`
	}
	var wg sync.WaitGroup
	var dir *directory
	if p.User.Org != nil {
		wg.Go(func() { dir = s.loadDirectory(ctx, sess, p.User.Org, false) })
	}
	if _, err := s.backendJSON(ctx, sess, s.cfg.SecuritySystemURL, "/audit?"+api.Encode(), &body); err != nil {
		d.Problem = describeProblem(err)
	} else {
		d.Entries, d.Loaded = body.Entries, true
		if body.NextCursor != "" {
			next := values(false)
			next.Set("cursor", body.NextCursor)
			d.NextURL = "/audit?" + next.Encode()
		}
		if f.Cursor != "" {
			d.FirstURL = "/audit"
			if v := values(false).Encode(); v != "" {
				d.FirstURL += "?" + v
			}
		}
	}
	wg.Wait()
	if dir != nil {
		for _, e := range dir.Employees {
			d.Users[e.UserID] = employeeLabel(e)
		}
	}
	p.Data = d
	s.render(w, r, http.StatusOK, "audit", p)
}
