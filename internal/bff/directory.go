package bff

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/realguardio/realguardio/internal/policy"
)

// The directory turns ids into names for the administration pages: it reads
// the organization's employees, locations and teams and the public lists of
// dealers and monitoring providers with the user's own token, so the forms
// offer choices by name and the page shows who holds which role. Whatever
// the user may not read (or a service that is down) simply leaves that kind
// without choices, and its fields fall back to typing an id.

// maxPlatformCustomers bounds how many customers' locations the platform
// page reads to offer locations by name; beyond it the page falls back to
// typing the id rather than making one call per customer on every view.
const maxPlatformCustomers = 25

// option is one choice of a <select>.
type option struct {
	Value, Label string
	// Group is the <optgroup> the option belongs to (the customer of a
	// location on the platform page); empty means none.
	Group string
}

// employeeJSON is an employee as the organization services list them.
type employeeJSON struct {
	ID        string        `json:"id"`
	UserID    string        `json:"userId"`
	Email     string        `json:"email"`
	FirstName string        `json:"firstName"`
	LastName  string        `json:"lastName"`
	Roles     []string      `json:"roles"`
	Schedule  *scheduleJSON `json:"schedule"`
}

type scheduleJSON struct {
	Timezone string `json:"timezone"`
	Shifts   []struct {
		Weekdays []string `json:"weekdays"`
		Start    string   `json:"start"`
		End      string   `json:"end"`
	} `json:"shifts"`
}

// Describe summarizes the schedule in one line for a table cell.
func (s *scheduleJSON) Describe() string {
	if s == nil {
		return ""
	}
	parts := make([]string, 0, len(s.Shifts))
	for _, sh := range s.Shifts {
		parts = append(parts, strings.Join(sh.Weekdays, ",")+" "+sh.Start+"–"+sh.End)
	}
	return strings.Join(parts, "; ") + " (" + s.Timezone + ")"
}

type grantJSON struct {
	EmployeeID string   `json:"employeeId"`
	TeamID     string   `json:"teamId"`
	Roles      []string `json:"roles"`
}

type locationJSON struct {
	ID            string      `json:"id"`
	Name          string      `json:"name"`
	DealerID      *string     `json:"dealerId"`
	EmployeeRoles []grantJSON `json:"employeeRoles"`
	TeamRoles     []grantJSON `json:"teamRoles"`
}

type teamJSON struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Members []string `json:"members"`
}

type orgJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// named is an id with the name to show for it; Name is empty when the
// directory does not know the id.
type named struct {
	ID, Name string
}

// grantRow is one holder of roles at a location, by name.
type grantRow struct {
	Holder named
	Roles  []string
}

// locationRow is one line of the locations table.
type locationRow struct {
	named
	Dealer        *named
	EmployeeRoles []grantRow
	TeamRoles     []grantRow
}

// teamRow is one line of the teams table.
type teamRow struct {
	named
	Members []named
}

// directory is what the administration page knows about the organization.
type directory struct {
	options map[string][]option
	names   map[string]string
	// Employees, Locations and Teams are the tables of the page; nil when
	// they could not be read.
	Employees []employeeJSON
	Locations []locationRow
	Teams     []teamRow
	// EmployeesLoaded and friends say whether the list was read, so an
	// empty list reads "none yet" instead of disappearing.
	EmployeesLoaded, LocationsLoaded, TeamsLoaded bool
	// Problems name the lists that could not be read, for the page.
	Problems []string
	// tables is the search and position of each table (organization page);
	// next the cursor of each table's next page, empty on the last one.
	tables tableQueries
	next   map[string]string
	mu     sync.Mutex
}

// The tables of the organization page, by the prefix of their query
// parameters ("employees.q", "employees.cursor").
const (
	tableEmployees = "employees"
	tableLocations = "locations"
	tableTeams     = "teams"
)

// tableQuery is the search (q, API.md "Lists") and the position (the
// service's opaque cursor) of one table of the organization page.
type tableQuery struct{ Q, Cursor string }

func (t tableQuery) active() bool { return t.Q != "" || t.Cursor != "" }

// path is list path p asking for this table's page.
func (t tableQuery) path(p string) string {
	v := url.Values{"limit": {strconv.Itoa(orgTablePageSize)}}
	if t.Q != "" {
		v.Set("q", t.Q)
	}
	if t.Cursor != "" {
		v.Set("cursor", t.Cursor)
	}
	return p + "?" + v.Encode()
}

// tableQueries are the organization page's tables' searches and
// positions, read from its query string.
type tableQueries map[string]tableQuery

// orgTablePageSize is how many rows one table of the organization page
// shows (the services' default page).
const orgTablePageSize = 50

// parseTableQueries reads "<table>.q" and "<table>.cursor"; a search
// longer than any name is cut, as on the dashboard.
func parseTableQueries(q url.Values) tableQueries {
	out := tableQueries{}
	for _, t := range []string{tableEmployees, tableLocations, tableTeams} {
		tq := tableQuery{Q: strings.TrimSpace(q.Get(t + ".q")), Cursor: q.Get(t + ".cursor")}
		if len(tq.Q) > maxSearchLen {
			tq.Q = tq.Q[:maxSearchLen]
		}
		if tq.active() {
			out[t] = tq
		}
	}
	return out
}

// Search is the search text of table, for its search box.
func (d *directory) Search(table string) string {
	if d == nil {
		return ""
	}
	return d.tables[table].Q
}

// Searched reports whether table is filtered, for its empty text.
func (d *directory) Searched(table string) bool { return d.Search(table) != "" }

// NextURL is the query string of table's next page (keeping the other
// tables where they are), or "" on its last page.
func (d *directory) NextURL(table string) string {
	if d == nil || d.next[table] == "" {
		return ""
	}
	return d.tableURL(table, tableQuery{Q: d.tables[table].Q, Cursor: d.next[table]})
}

// FirstURL is the query string of table's first page with the same
// search, or "" when the table shows it already.
func (d *directory) FirstURL(table string) string {
	if d == nil || d.tables[table].Cursor == "" {
		return ""
	}
	return d.tableURL(table, tableQuery{Q: d.tables[table].Q})
}

func (d *directory) tableURL(table string, tq tableQuery) string {
	v := url.Values{}
	for t, q := range d.tables {
		if t == table {
			continue
		}
		if q.Q != "" {
			v.Set(t+".q", q.Q)
		}
		if q.Cursor != "" {
			v.Set(t+".cursor", q.Cursor)
		}
	}
	if tq.Q != "" {
		v.Set(table+".q", tq.Q)
	}
	if tq.Cursor != "" {
		v.Set(table+".cursor", tq.Cursor)
	}
	return "?" + v.Encode() + "#sec-" + table
}

func (d *directory) setNext(table, cursor string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.next == nil {
		d.next = map[string]string{}
	}
	d.next[table] = cursor
}

// Has reports whether the page can offer ids of kind by name: the list was
// read, even if empty (an empty select then says there is none yet).
func (d *directory) Has(kind string) bool {
	if d == nil {
		return false
	}
	_, ok := d.options[kind]
	return ok
}

// Options returns the choices of kind, in the order the page shows them.
func (d *directory) Options(kind string) []option { return d.options[kind] }

// Name returns the name of id, or "" when the directory does not know it.
func (d *directory) Name(id string) string {
	if d == nil {
		return ""
	}
	return d.names[id]
}

func (d *directory) named(id string) named { return named{ID: id, Name: d.Name(id)} }

func (d *directory) set(kind string, opts []option) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.options == nil {
		d.options, d.names = map[string][]option{}, map[string]string{}
	}
	d.options[kind] = opts
	for _, o := range opts {
		d.names[o.Value] = o.Label
	}
}

func (d *directory) problem(what string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.Problems = append(d.Problems, what+": "+describeProblem(err))
}

// employeeLabel names an employee the way people tell them apart: name and
// e-mail address (two people may share a name, never an address).
func employeeLabel(e employeeJSON) string {
	name := strings.TrimSpace(e.FirstName + " " + e.LastName)
	if name == "" {
		return e.Email
	}
	return name + " <" + e.Email + ">"
}

// loadDirectory reads, in parallel, what the administration page of an
// organization of kind m.Kind (or the platform page when m is nil) needs.
func (s *Service) loadDirectory(ctx context.Context, sess *session, m *orgMembership, platformAdmin bool) *directory {
	return s.loadDirectoryTables(ctx, sess, m, platformAdmin, nil)
}

// loadDirectoryTables is loadDirectory with the organization page's
// tables searched and paged as tables says. The choices and names always
// come from each list's first page, so a search narrows the table without
// turning the names elsewhere on the page back into ids; a searched or
// later page is a second read of that list alone.
func (s *Service) loadDirectoryTables(ctx context.Context, sess *session, m *orgMembership, platformAdmin bool, tables tableQueries) *directory {
	ctx, cancel := context.WithTimeout(ctx, pageBackendBudget)
	defer cancel()
	d := &directory{tables: tables}
	var wg sync.WaitGroup
	if m != nil {
		id := url.PathEscape(m.ID)
		switch policy.OrgKind(m.Kind) {
		case policy.OrgCustomer:
			base := "/customers/" + id
			wg.Go(func() { s.loadEmployees(ctx, sess, d, s.cfg.CustomerURL, base+"/employees") })
			wg.Go(func() { s.loadDealers(ctx, sess, d) })
			// Locations and teams name each other's ids (team roles) and
			// employees, so their tables are built once all lists are in.
			var locs []locationJSON
			var teams []teamJSON
			wg.Go(func() {
				all, table, err := readTable[locationJSON](ctx, s, sess, d, s.cfg.CustomerURL, base+"/locations", "locations", tableLocations)
				if err != nil {
					d.problem("locations", err)
					return
				}
				locs = table
				opts := make([]option, 0, len(all))
				for _, l := range all {
					opts = append(opts, option{Value: l.ID, Label: l.Name})
				}
				d.set("location", opts)
				d.LocationsLoaded = true
			})
			wg.Go(func() {
				all, table, err := readTable[teamJSON](ctx, s, sess, d, s.cfg.CustomerURL, base+"/teams", "teams", tableTeams)
				if err != nil {
					d.problem("teams", err)
					return
				}
				teams = table
				opts := make([]option, 0, len(all))
				for _, t := range all {
					opts = append(opts, option{Value: t.ID, Label: t.Name})
				}
				d.set("team", opts)
				d.TeamsLoaded = true
			})
			wg.Wait()
			d.buildCustomerTables(locs, teams)
			return d
		case policy.OrgDealer:
			wg.Go(func() { s.loadEmployees(ctx, sess, d, s.cfg.DealerURL, "/dealers/"+id+"/employees") })
			wg.Go(func() { s.loadProviders(ctx, sess, d) })
		case policy.OrgMonitoringProvider:
			wg.Go(func() { s.loadEmployees(ctx, sess, d, s.cfg.MonitoringURL, "/monitoring-providers/"+id+"/employees") })
		}
	}
	if platformAdmin {
		wg.Go(func() { s.loadAllLocations(ctx, sess, d) })
	}
	wg.Wait()
	return d
}

// readTable reads the first page of the list at base+path (its items under
// key) for the choices and names, and, when the page asks for another
// page or a search of table, that page too (in parallel) for the table.
// It records the table's next cursor. table is the rows the page's table
// shows: the first page unless another was asked for.
func readTable[T any](ctx context.Context, s *Service, sess *session, d *directory, base, path, key, table string) (all, rows []T, err error) {
	read := func(p string) ([]T, string, error) {
		var body map[string]json.RawMessage
		if _, err := s.backendJSON(ctx, sess, base, p, &body); err != nil {
			return nil, "", err
		}
		var items []T
		if raw, ok := body[key]; ok {
			if err := json.Unmarshal(raw, &items); err != nil {
				return nil, "", err
			}
		}
		var next string
		if raw, ok := body["nextCursor"]; ok {
			// null on the last page.
			_ = json.Unmarshal(raw, &next)
		}
		return items, next, nil
	}
	tq, paged := d.tables[table]
	var wg sync.WaitGroup
	var tableNext string
	var tableErr error
	if paged && tq.active() {
		wg.Go(func() { rows, tableNext, tableErr = read(tq.path(path)) })
	}
	all, next, err := read(path)
	wg.Wait()
	if err != nil {
		return nil, nil, err
	}
	if !paged || !tq.active() {
		d.setNext(table, next)
		return all, all, nil
	}
	if tableErr != nil {
		return nil, nil, tableErr
	}
	d.setNext(table, tableNext)
	return all, rows, nil
}

func (s *Service) loadEmployees(ctx context.Context, sess *session, d *directory, base, path string) {
	all, table, err := readTable[employeeJSON](ctx, s, sess, d, base, path, "employees", tableEmployees)
	if err != nil {
		d.problem("employees", err)
		return
	}
	slices.SortFunc(all, func(a, b employeeJSON) int { return strings.Compare(employeeLabel(a), employeeLabel(b)) })
	opts := make([]option, 0, len(all))
	for _, e := range all {
		opts = append(opts, option{Value: e.ID, Label: employeeLabel(e)})
	}
	d.set("employee", opts)
	// Tables show an employee by name alone; the e-mail address is in the
	// employees table and in the choices, where names must be told apart.
	d.mu.Lock()
	for _, e := range slices.Concat(all, table) {
		if n := strings.TrimSpace(e.FirstName + " " + e.LastName); n != "" {
			d.names[e.ID] = n
		}
	}
	d.mu.Unlock()
	d.Employees, d.EmployeesLoaded = table, true
}

// loadOrgs reads a public directory of organizations (dealers, monitoring
// providers) into the choices of kind.
func (s *Service) loadOrgs(ctx context.Context, sess *session, d *directory, base, path, key, kind, what string) {
	var body map[string][]orgJSON
	if _, err := s.backendJSON(ctx, sess, base, path, &body); err != nil {
		d.problem(what, err)
		return
	}
	opts := make([]option, 0, len(body[key]))
	for _, o := range body[key] {
		opts = append(opts, option{Value: o.ID, Label: o.Name})
	}
	d.set(kind, opts)
}

func (s *Service) loadDealers(ctx context.Context, sess *session, d *directory) {
	s.loadOrgs(ctx, sess, d, s.cfg.DealerURL, "/dealers", "dealers", "dealer", "dealers")
}

func (s *Service) loadProviders(ctx context.Context, sess *session, d *directory) {
	s.loadOrgs(ctx, sess, d, s.cfg.MonitoringURL, "/monitoring-providers", "monitoringProviders", "monitoring-provider", "monitoring providers")
}

// loadAllLocations offers the platform administrator every customer's
// locations, grouped by customer, when there are few enough customers.
func (s *Service) loadAllLocations(ctx context.Context, sess *session, d *directory) {
	var body struct {
		Customers []orgJSON `json:"customers"`
	}
	if _, err := s.backendJSON(ctx, sess, s.cfg.CustomerURL, "/customers", &body); err != nil {
		d.problem("customers", err)
		return
	}
	if len(body.Customers) > maxPlatformCustomers {
		return
	}
	per := make([][]option, len(body.Customers))
	failed := make([]error, len(body.Customers))
	var wg sync.WaitGroup
	for i, c := range body.Customers {
		wg.Go(func() {
			var lb struct {
				Locations []locationJSON `json:"locations"`
			}
			if _, err := s.backendJSON(ctx, sess, s.cfg.CustomerURL, "/customers/"+url.PathEscape(c.ID)+"/locations", &lb); err != nil {
				failed[i] = err
				return
			}
			for _, l := range lb.Locations {
				per[i] = append(per[i], option{Value: l.ID, Label: l.Name, Group: c.Name})
			}
		})
	}
	wg.Wait()
	for _, err := range failed {
		if err != nil {
			// A partial list would hide locations; typing the id stays
			// possible.
			d.problem("locations", err)
			return
		}
	}
	d.set("location", slices.Concat(per...))
}

// buildCustomerTables resolves the ids of the locations' grants and the
// teams' members to names.
func (d *directory) buildCustomerTables(locs []locationJSON, teams []teamJSON) {
	for _, l := range locs {
		row := locationRow{named: named{ID: l.ID, Name: l.Name}}
		if l.DealerID != nil && *l.DealerID != "" {
			n := d.named(*l.DealerID)
			row.Dealer = &n
		}
		for _, g := range l.EmployeeRoles {
			row.EmployeeRoles = append(row.EmployeeRoles, grantRow{Holder: d.named(g.EmployeeID), Roles: g.Roles})
		}
		for _, g := range l.TeamRoles {
			row.TeamRoles = append(row.TeamRoles, grantRow{Holder: d.named(g.TeamID), Roles: g.Roles})
		}
		d.Locations = append(d.Locations, row)
	}
	for _, t := range teams {
		row := teamRow{named: named{ID: t.ID, Name: t.Name}}
		for _, m := range t.Members {
			row.Members = append(row.Members, d.named(m))
		}
		d.Teams = append(d.Teams, row)
	}
}

// locationNames returns the names of the locations of the user's customer,
// for the dashboard; nil when the user works for no customer or may not read
// them (dealer and monitoring provider employees see ids).
func (s *Service) locationNames(ctx context.Context, sess *session, m *orgMembership) map[string]string {
	if m == nil || policy.OrgKind(m.Kind) != policy.OrgCustomer {
		return nil
	}
	var body struct {
		Locations []locationJSON `json:"locations"`
	}
	if _, err := s.backendJSON(ctx, sess, s.cfg.CustomerURL, "/customers/"+url.PathEscape(m.ID)+"/locations", &body); err != nil {
		return nil
	}
	out := make(map[string]string, len(body.Locations))
	for _, l := range body.Locations {
		out[l.ID] = l.Name
	}
	return out
}

// optionGroup is a run of options under one <optgroup> label (none when
// Label is empty).
type optionGroup struct {
	Label   string
	Options []option
}

// groupOptions splits opts into runs of the same Group, in order.
func groupOptions(opts []option) []optionGroup {
	var out []optionGroup
	for _, o := range opts {
		if len(out) == 0 || out[len(out)-1].Label != o.Group {
			out = append(out, optionGroup{Label: o.Group})
		}
		out[len(out)-1].Options = append(out[len(out)-1].Options, o)
	}
	return out
}
