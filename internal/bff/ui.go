package bff

import (
	"bytes"
	"context"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/policy"
)

//go:embed web/templates/*.html
var templateFS embed.FS

//go:embed web/static
var staticFS embed.FS

// Application roles the UI looks at to decide which pages to offer. The
// backends make the real decisions; hiding a page is only convenience.
const (
	roleAdmin         = policy.AppRoleAdmin
	roleDealerAdmin   = "REALGUARDIO_DEALER_ADMINISTRATOR"
	roleCustomerEmpl  = "CUSTOMER_EMPLOYEE"
	subjectsTimeout   = 3 * time.Second
	pageBackendBudget = 5 * time.Second
)

var funcs = template.FuncMap{
	"join":  strings.Join,
	"lower": strings.ToLower,
	"has":   func(list []string, v string) bool { return slices.Contains(list, v) },
	"pretty": func(s string) string {
		return strings.ReplaceAll(strings.TrimPrefix(s, "SECURITY_SYSTEM_"), "_", " ")
	},
	"fieldID": func(formID, name string) string {
		return formID + "-" + strings.NewReplacer(":", "-", ".", "-").Replace(name)
	},
	"isPath":   func(name string) bool { return strings.HasPrefix(name, "path:") },
	"pathName": func(name string) string { return strings.TrimPrefix(name, "path:") },
	"list":     func(vs ...string) []string { return vs },
	"kindNoun": func(kind string) string {
		switch kind {
		case "employee":
			return "an employee"
		case "monitoring-provider":
			return "a monitoring provider"
		}
		return "a " + kind
	},
	"groupOptions": groupOptions,
	// json writes v for a data attribute the page's script reads.
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"orgPath": orgPath,
	// editor pairs a form with the directory its choices come from, for
	// the "apiform" partial.
	"editor": func(f apiForm, d *directory) formContext { return formContext{F: f, Dir: d} },
	"scheduleEditor": func(base, current, employee string, d *directory) scheduleEditor {
		return scheduleEditor{Base: base, Current: current, Employee: employee, Dir: d}
	},
	// prettyRoles lists roles for people: "ARMER, DISARMER".
	"prettyRoles": func(roles []string) string {
		out := make([]string, len(roles))
		for i, r := range roles {
			out[i] = strings.ReplaceAll(strings.TrimPrefix(r, "SECURITY_SYSTEM_"), "_", " ")
		}
		return strings.Join(out, ", ")
	},
	// section is the part of the organization page a form belongs to.
	"section": func(formID string) string { return formSections[formID] },
	// noop says whether action would leave the system as it is (arming an
	// armed system): the services allow it, but a button for it only
	// confuses.
	"noop": func(action, state string) bool {
		return (action == "ARM" && state == "ARMED") || (action == "DISARM" && state == "DISARMED")
	},
	// choiceLabel is a field's label when people choose by name instead of
	// typing an id.
	"choiceLabel": func(label string) string { return strings.TrimSuffix(label, " id") },
	// short shows the start of an id the user cannot see a name for; the
	// full id goes into a title attribute next to it.
	"short": func(id string) string {
		if len(id) > 8 {
			return id[:8] + "…"
		}
		return id
	},
}

// parseTemplates parses every page with the shared layout. Each page is its
// own template set so that pages may all define "content".
func parseTemplates() (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	entries, err := fs.Glob(templateFS, "web/templates/page_*.html")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		name := strings.TrimSuffix(strings.TrimPrefix(e, "web/templates/page_"), ".html")
		// Partials (part_*.html) hold what several pages render alike,
		// such as the editors and a system's actions.
		t, err := template.New("").Funcs(funcs).ParseFS(templateFS, "web/templates/layout.html", "web/templates/part_*.html", e)
		if err != nil {
			return nil, fmt.Errorf("parse page %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// viewer is the signed-in user as the pages see them.
type viewer struct {
	Sub   string
	Name  string
	Roles []string
	// Org is the organization the user works for, when the organization
	// services could say.
	Org *orgMembership
}

// orgMembership is the answer of GET /authz/subjects/{userId} of an
// organization service.
type orgMembership struct {
	Kind  string   `json:"kind"`
	ID    string   `json:"id"`
	Roles []string `json:"roles"`
}

// navItem is one link of the header navigation.
type navItem struct {
	Href, Label string
	Active      bool
}

// page is what every template gets.
type page struct {
	Title    string
	Strategy string
	User     *viewer
	CSRF     string
	Nav      []navItem
	Data     any
	Flash    string
}

func (s *Service) routeUI(mux *httpx.Mux) {
	static, _ := fs.Sub(staticFS, "web/static")
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	mux.Handle("GET /static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		files.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET /{$}", s.pageDashboard)
	mux.HandleFunc("GET /securitysystems/{id}", s.authed("dashboard", s.pageSystem))
	mux.HandleFunc("/", s.pageNotFound)
	mux.HandleFunc("GET /profile", s.authed("profile", s.pageProfile))
	mux.HandleFunc("GET /token", s.authed("token", s.pageToken))
	mux.HandleFunc("GET /admin/platform", s.authed("platform", s.pagePlatform))
	mux.HandleFunc("GET /admin/organization", s.authed("organization", s.pageOrganization))
	s.routeEntities(mux)
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/static/favicon.svg", http.StatusMovedPermanently)
	})
}

// authed wraps a page that needs a session: without one the browser is sent
// to the login, and comes back here afterwards.
func (s *Service) authed(name string, h func(http.ResponseWriter, *http.Request, *page, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.currentSession(w, r)
		if err != nil {
			if apperr.Is(err, apperr.Unauthenticated) {
				http.Redirect(w, r, "/login?returnTo="+url.QueryEscape(r.URL.RequestURI()), http.StatusFound)
				return
			}
			s.renderError(w, r, err)
			return
		}
		p := s.newPage(r.Context(), name, sess)
		h(w, r, p, sess)
	}
}

// newPage builds the common page data for a signed-in user, including the
// organization they work for, which decides the administration pages shown.
func (s *Service) newPage(ctx context.Context, active string, sess *session) *page {
	v := &viewer{Sub: sess.Subject, Name: sess.Name, Roles: sess.Roles}
	v.Org = s.membership(ctx, sess)
	p := &page{Strategy: s.cfg.Strategy, User: v, CSRF: sess.CSRF}
	add := func(name, href, label string) {
		p.Nav = append(p.Nav, navItem{Href: href, Label: label, Active: name == active})
	}
	add("dashboard", "/", "Security systems")
	if slices.Contains(v.Roles, roleAdmin) || slices.Contains(v.Roles, roleDealerAdmin) {
		add("platform", "/admin/platform", "Platform")
	}
	if v.Org != nil && v.Org.isAdmin() {
		add("organization", "/admin/organization", "My organization")
	}
	if slices.Contains(v.Roles, roleAdmin) || (v.Org != nil && v.Org.Kind == string(policy.OrgCustomer) && slices.Contains(v.Org.Roles, policy.RoleCustomerEmployeeAdministrator)) {
		add("audit", "/audit", "Audit")
	}
	if slices.Contains(v.Roles, roleCustomerEmpl) {
		add("profile", "/profile", "Profile")
	}
	add("token", "/token", "My access token")
	return p
}

func (m *orgMembership) isAdmin() bool {
	for _, r := range m.Roles {
		if r == policy.RoleCustomerEmployeeAdministrator || r == policy.RoleDealerEmployeeAdministrator || r == policy.RoleMonitoringProviderEmployeeAdministrator {
			return true
		}
	}
	return false
}

// kindLabel names the organization kind for people.
func (m *orgMembership) KindLabel() string {
	switch m.Kind {
	case string(policy.OrgCustomer):
		return "customer"
	case string(policy.OrgDealer):
		return "dealer"
	case string(policy.OrgMonitoringProvider):
		return "monitoring provider"
	}
	return m.Kind
}

// membership asks the organization services, with the user's own token,
// which organization the user works for. A user works for at most one, so
// the first answer with an organization wins; services that are down simply
// do not answer.
func (s *Service) membership(ctx context.Context, sess *session) *orgMembership {
	ctx, cancel := context.WithTimeout(ctx, subjectsTimeout)
	defer cancel()
	bases := []string{s.cfg.CustomerURL, s.cfg.DealerURL, s.cfg.MonitoringURL}
	results := make([]*orgMembership, len(bases))
	var wg sync.WaitGroup
	for i, base := range bases {
		wg.Go(func() {
			var body struct {
				Organization *orgMembership `json:"organization"`
			}
			if status, err := s.backendJSON(ctx, sess, base, "/authz/subjects/"+url.PathEscape(sess.Subject), &body); err == nil && status == http.StatusOK {
				results[i] = body.Organization
			}
		})
	}
	wg.Wait()
	for _, m := range results {
		if m != nil && m.ID != "" {
			return m
		}
	}
	return nil
}

// backendJSON GETs base+path with the session's token and decodes a 200
// answer into v. It returns the status and, for anything else, the problem.
func (s *Service) backendJSON(ctx context.Context, sess *session, base, path string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+sess.Access)
	req.Header.Set("Accept", "application/json")
	resp, err := s.backend.Do(req)
	if err != nil {
		return 0, apperr.Wrap(err, apperr.Unavailable, "the service is not reachable")
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return 0, apperr.Wrap(err, apperr.Unavailable, "the service did not answer completely")
	}
	if resp.StatusCode != http.StatusOK {
		var p httpx.Problem
		_ = json.Unmarshal(body, &p)
		return resp.StatusCode, &backendProblem{Status: resp.StatusCode, Problem: p}
	}
	return resp.StatusCode, json.Unmarshal(body, v)
}

// backendProblem is a problem a backend answered, shown on a page as it is.
type backendProblem struct {
	Status  int
	Problem httpx.Problem
}

func (e *backendProblem) Error() string {
	return fmt.Sprintf("backend answered %d: %s", e.Status, e.Problem.Detail)
}

func (s *Service) pageProfile(w http.ResponseWriter, r *http.Request, p *page, _ *session) {
	p.Title = "Profile"
	s.render(w, r, http.StatusOK, "profile", p)
}

type tokenData struct {
	Header, Claims string
	Bytes          int
	CookieBytes    int
	Expires        string
	Problem        string
}

// pageToken shows the decoded access token: header and claims, never the
// signature, so the page cannot be used to copy a working token.
func (s *Service) pageToken(w http.ResponseWriter, r *http.Request, p *page, sess *session) {
	p.Title = "My access token"
	d := &tokenData{Bytes: len(sess.Access), Expires: time.Unix(sess.Expiry, 0).UTC().Format(time.RFC3339)}
	for _, c := range r.Cookies() {
		if strings.HasPrefix(c.Name, s.jar.chunkPrefix()) {
			d.CookieBytes += len(c.Name) + 1 + len(c.Value)
		}
	}
	parts := strings.Split(sess.Access, ".")
	if len(parts) == 3 {
		d.Header = prettySegment(parts[0])
		d.Claims = prettySegment(parts[1])
	} else {
		d.Problem = "The access token is not a JWT."
	}
	p.Data = d
	s.render(w, r, http.StatusOK, "token", p)
}

func decodeSegment(seg string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
}

func prettySegment(seg string) string {
	raw, err := decodeSegment(seg)
	if err != nil {
		return "(not base64url)"
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return "(not JSON)"
	}
	return buf.String()
}

type adminData struct {
	Heading string
	Intro   string
	Forms   []apiForm
	Org     *orgMembership
	// OrgName is the organization's name for the heading.
	OrgName string
	// Schedule says whether to show the schedule editor, and for which
	// employees path.
	ScheduleBase string
	// Schedules are the current schedules by employee id (JSON), so the
	// schedule editor opens with the chosen employee's shifts.
	Schedules string
	// Platform is set on the platform page: the organizations are listed
	// from the services, paged and searchable, by entities.js.
	Platform      bool
	ListCustomers bool
	// Edit is false when the platform administrator looks at an
	// organization it does not administer: the page is read-only.
	Edit bool
	// Effect says when a change takes effect (effectText).
	Effect string
	// Dir offers ids by name in the forms and shows the current state.
	Dir *directory
}

// formSections groups the organization page's forms by the entity they
// change, so the page reads as sections instead of one wall of forms.
var formSections = map[string]string{
	"add-employee": "employees", "employee-roles": "employees",
	"create-location": "locations", "location-dealer": "locations", "location-employee-roles": "locations", "location-team-roles": "locations", "create-system": "locations",
	"create-team": "teams", "add-member": "teams", "remove-member": "teams",
	"dealer-provider": "provider",
}

func (s *Service) pagePlatform(w http.ResponseWriter, r *http.Request, p *page, sess *session) {
	admin := slices.Contains(p.User.Roles, roleAdmin)
	dealerAdmin := slices.Contains(p.User.Roles, roleDealerAdmin)
	if !admin && !dealerAdmin {
		s.renderError(w, r, apperr.Denied("no_role", "this page is for RealGuardIO platform administrators"))
		return
	}
	p.Title = "Platform administration"
	p.Data = &adminData{Heading: "Platform administration",
		Intro: "The organizations that use RealGuardIO, and new ones. Each gets an administrator who logs in with the e-mail address.",
		Forms: platformForms(admin, dealerAdmin), Platform: true, ListCustomers: admin, Edit: true, Effect: s.effectText(),
		Dir: s.loadDirectory(r.Context(), sess, nil, admin)}
	s.render(w, r, http.StatusOK, "admin", p)
}

func (s *Service) pageOrganization(w http.ResponseWriter, r *http.Request, p *page, sess *session) {
	m := p.User.Org
	if m == nil || !m.isAdmin() {
		s.renderError(w, r, apperr.Denied("no_role", "this page is for administrators of an organization"))
		return
	}
	s.renderOrganization(w, r, p, sess, m)
}

// renderOrganization shows organization m: its employees, locations and
// teams (by section) with the editors, prefilled, when the user
// administers it.
func (s *Service) renderOrganization(w http.ResponseWriter, r *http.Request, p *page, sess *session, m *orgMembership) {
	d := &adminData{Org: m, Edit: canEdit(p, m), Effect: s.effectText()}
	var collection string
	switch policy.OrgKind(m.Kind) {
	case policy.OrgCustomer:
		d.Heading, d.Forms, d.ScheduleBase = "Customer", customerForms(m.ID), "/api/customers/"+m.ID
		d.Intro = "Employees, locations, teams and who may arm, disarm or view the security systems at each location."
		collection = "/customers/"
	case policy.OrgDealer:
		d.Heading, d.Forms, d.ScheduleBase = "Dealer", dealerForms(m.ID), "/api/dealers/"+m.ID
		d.Intro = "Employees of the dealer, their roles and shifts, and the monitoring provider the dealer works with."
		collection = "/dealers/"
	case policy.OrgMonitoringProvider:
		d.Heading, d.Forms, d.ScheduleBase = "Monitoring provider", monitoringForms(m.ID), "/api/monitoring-providers/"+m.ID
		d.Intro = "Employees of the monitoring provider, their roles and shifts."
		collection = "/monitoring-providers/"
	}
	ctx, cancel := context.WithTimeout(r.Context(), pageBackendBudget)
	defer cancel()
	var org struct {
		Name                 string  `json:"name"`
		MonitoringProviderID *string `json:"monitoringProviderId"`
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = s.backendJSON(ctx, sess, s.backendBase(policy.OrgKind(m.Kind)), collection+url.PathEscape(m.ID), &org)
	})
	d.Dir = s.loadDirectoryTables(ctx, sess, m, false, parseTableQueries(r.URL.Query()))
	wg.Wait()
	d.OrgName = org.Name
	if d.OrgName != "" {
		d.Heading = d.OrgName
	}
	provider := ""
	if org.MonitoringProviderID != nil {
		provider = *org.MonitoringProviderID
	}
	prefillOverview(d.Forms, d.Dir, provider)
	d.Schedules = schedulesOf(d.Dir)
	if !d.Edit {
		d.Forms, d.ScheduleBase = nil, ""
	}
	p.Title = d.Heading
	p.Data = d
	s.render(w, r, http.StatusOK, "admin", p)
}

// render executes a page template into a buffer first, so a template error
// becomes a clean error page instead of half a page.
func (s *Service) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	t, ok := s.pages[name]
	if !ok {
		httpx.WriteError(w, r, apperr.New(apperr.Internal, "no page %s", name))
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		httpx.LoggerFrom(r.Context()).ErrorContext(r.Context(), "render page", "page", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

type errorData struct {
	Status int
	Title  string
	Detail string
	SignIn bool
}

// renderError shows err as a page, with the status httpx would choose.
func (s *Service) renderError(w http.ResponseWriter, r *http.Request, err error) {
	pr := httpx.ProblemOf(err)
	if pr.Status >= 500 {
		httpx.LoggerFrom(r.Context()).ErrorContext(r.Context(), "page failed", "status", pr.Status, "err", err)
	}
	s.renderErrorPage(w, r, err, &page{Strategy: s.cfg.Strategy})
}

// renderErrorPage shows err on p, a page with or without the signed-in
// user's header.
func (s *Service) renderErrorPage(w http.ResponseWriter, r *http.Request, err error, p *page) {
	pr := httpx.ProblemOf(err)
	p.Title = pr.Title
	p.Data = &errorData{
		Status: pr.Status, Title: pr.Title, Detail: pr.Detail, SignIn: pr.Status == http.StatusUnauthorized || pr.Status == http.StatusBadRequest,
	}
	s.render(w, r, pr.Status, "error", p)
}

// pageNotFound answers every path no page or API serves with the branded
// 404 page, with the navigation when the visitor is signed in.
func (s *Service) pageNotFound(w http.ResponseWriter, r *http.Request) {
	err := apperr.New(apperr.NotFound, "there is no page at %s", r.URL.Path)
	sess, serr := s.readSession(r)
	if serr != nil {
		s.renderError(w, r, err)
		return
	}
	s.renderErrorPage(w, r, err, s.newPage(r.Context(), "", sess))
}
