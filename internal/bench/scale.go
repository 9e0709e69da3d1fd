package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"time"

	"github.com/realguardio/realguardio/internal/apiclient"
	"github.com/realguardio/realguardio/internal/policy"
)

// ScaleConfig is the settings of a scale run (`realguardio bench --scale`):
// one platform per strategy, grown through the bulk imports to each world
// size in turn and measured at each.
type ScaleConfig struct {
	Config
	// Worlds are the platform sizes in security systems, ascending.
	Worlds []int
	// ManyVisible is how many systems the "many" user sees once the
	// platform is large enough (API.md's scale case: 10 000).
	ManyVisible int
	// PageLimit is the page size of the first-page lists and of paging
	// through the many user's view.
	PageLimit int
}

// ScalePoint is the figures of one strategy at one world size.
type ScalePoint struct {
	Strategy string `json:"strategy"`
	// Systems is the platform's number of security systems; Locations
	// its locations.
	Systems   int `json:"systems"`
	Locations int `json:"locations"`
	// FewFirstPage and ManyFirstPage are the first page of GET
	// /securitysystems for a user who sees 5 systems and one who sees
	// ManyVisible (or what the platform has, if smaller).
	FewFirstPage  Throughput `json:"fewFirstPage"`
	ManyFirstPage Throughput `json:"manyFirstPage"`
	ManyVisible   int        `json:"manyVisible"`
	// PagingPerSecond is the rate of systems received paging through the
	// many user's whole view with nextCursor, one client.
	PagingPerSecond float64 `json:"pagingPerSecond"`
	// Paged is false when the service answered the whole view at once (no
	// nextCursor): it does not page yet.
	Paged bool `json:"paged"`
	// Decide is PUT /securitysystems/{id} (disarm) by the few user.
	Decide Throughput `json:"decide"`
	// Load is the wall time of growing the platform to this size.
	Load  time.Duration `json:"loadNs"`
	Error string        `json:"error,omitempty"`
}

// ScaleReport is the outcome of a scale run.
type ScaleReport struct {
	Started  time.Time     `json:"started"`
	Machine  Machine       `json:"machine"`
	Worlds   []int         `json:"worlds"`
	Points   []ScalePoint  `json:"points"`
	Duration time.Duration `json:"durationNs"`
}

// scaleWorld is the platform a scale run grows: a small customer whose
// one location holds the few user's 5 systems, a big customer whose
// systems its employee sees through an organization role, and filler
// customers holding the rest, every location serviced by the one dealer.
type scaleWorld struct {
	dealer, bigCustomer, fillCustomer string
	bigAdmin, fillAdmin               *apiclient.Client
	few, many                         *apiclient.Client
	fewSystem                         string
	systems, locations, bigSystems    int
}

// scaleImportBatch is the systems of one import while a scale run grows
// the platform: thousands per request, as a real onboarding sends, but
// each request short enough (a few seconds on a busy 2-core machine)
// to stay far inside the client's 30 s timeout; API.md's maximum of
// 10 000 per request with a creation check per location took longer
// than that there.
const scaleImportBatch = 2000

// scaleRetryBound is how long an import of systems waits for its new
// locations to reach the Security System Service's strategy (the replica,
// the facts, OpenFGA): a thousand location events a batch, applied one at
// a time on a busy machine, can take minutes.
const scaleRetryBound = 5 * time.Minute

// systemsPerLocation makes the locations proportionate to the systems, as
// in a real estate of buildings with a few systems each.
const systemsPerLocation = 2

// RunScale grows one platform per strategy to every world size and
// measures it there. A strategy that fails is reported at the size it
// failed and the others still run.
func RunScale(ctx context.Context, cfg ScaleConfig) (*ScaleReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.Worlds) == 0 || !slices.IsSorted(cfg.Worlds) || cfg.Worlds[0] < 10 {
		return nil, errors.New("scale: worlds must be ascending sizes of at least 10 systems")
	}
	if cfg.ManyVisible <= 0 {
		cfg.ManyVisible = 10000
	}
	if cfg.PageLimit <= 0 {
		cfg.PageLimit = 50
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	rep := &ScaleReport{Started: time.Now().UTC(), Worlds: cfg.Worlds, Machine: currentMachine()}
	for _, strategy := range cfg.Strategies {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rep.Points = append(rep.Points, scaleStrategy(ctx, cfg, strategy)...)
	}
	rep.Duration = time.Since(rep.Started)
	return rep, ctx.Err()
}

func scaleStrategy(ctx context.Context, cfg ScaleConfig, strategy string) []ScalePoint {
	ctx, cancel := context.WithTimeout(ctx, cfg.StrategyTimeout)
	defer cancel()
	r, stop, err := start(ctx, cfg.Config, strategy)
	if err != nil {
		return []ScalePoint{{Strategy: strategy, Error: err.Error()}}
	}
	defer stop()
	sw, err := r.scaleSetup(ctx)
	if err != nil {
		return []ScalePoint{{Strategy: strategy, Error: fmt.Sprintf("set up: %v", err)}}
	}
	var out []ScalePoint
	for _, n := range cfg.Worlds {
		p := ScalePoint{Strategy: strategy, Systems: n}
		t0 := time.Now()
		r.progress(fmt.Sprintf("growing the platform to %d security systems", n))
		if err := r.scaleGrow(ctx, sw, n, cfg.ManyVisible); err != nil {
			p.Error = err.Error()
			return append(out, p)
		}
		p.Load, p.Locations, p.ManyVisible = time.Since(t0), sw.locations, sw.bigSystems
		if err := r.scaleMeasure(ctx, cfg, sw, &p); err != nil {
			p.Error = err.Error()
			return append(out, p)
		}
		// The figures go to the progress output at once, so a long run
		// stopped later still leaves what it measured.
		r.progress(fmt.Sprintf("%d systems: p99 few first page %s ms, many first page %s ms (sees %d), decide %s ms; paging %.0f systems/s",
			n, millis(p.FewFirstPage.P99), millis(p.ManyFirstPage.P99), p.ManyVisible, millis(p.Decide.P99), p.PagingPerSecond))
		out = append(out, p)
	}
	return out
}

// scaleSetup creates the organizations, the two measured users and the
// few user's location with its 5 systems.
func (r *runner) scaleSetup(ctx context.Context) (*scaleWorld, error) {
	sw := &scaleWorld{}
	pw := r.password
	org := func(kind policy.OrgKind, name string) (string, *apiclient.Client, error) {
		email := emailOf("scale-admin-"+name, 0)
		created, err := r.admin.CreateOrganization(ctx, kind, "scale "+name,
			apiclient.NewEmployee{Email: email, FirstName: "Org", LastName: "Admin", Password: r.initialFor(email)})
		if err != nil {
			return "", nil, fmt.Errorf("create %s: %w", name, err)
		}
		c, _, err := r.login(ctx, email, pw)
		return created.ID, c, err
	}
	provider, _, err := org(policy.OrgMonitoringProvider, "provider")
	if err != nil {
		return nil, err
	}
	var dealerAdmin *apiclient.Client
	if sw.dealer, dealerAdmin, err = org(policy.OrgDealer, "dealer"); err != nil {
		return nil, err
	}
	if err := apiclient.RetryUnknownReference(ctx, func(ctx context.Context) error {
		return dealerAdmin.SetDealerMonitoringProvider(ctx, sw.dealer, provider)
	}); err != nil {
		return nil, fmt.Errorf("set the dealer's provider: %w", err)
	}
	small, smallAdmin, err := org(policy.OrgCustomer, "small")
	if err != nil {
		return nil, err
	}
	if sw.bigCustomer, sw.bigAdmin, err = org(policy.OrgCustomer, "big"); err != nil {
		return nil, err
	}
	if sw.fillCustomer, sw.fillAdmin, err = org(policy.OrgCustomer, "filler"); err != nil {
		return nil, err
	}
	employee := func(admin *apiclient.Client, customer, name string) (apiclient.Employee, *apiclient.Client, error) {
		email := emailOf("scale-"+name, 0)
		e, err := admin.CreateEmployee(ctx, policy.OrgCustomer, customer, apiclient.NewEmployee{Email: email, FirstName: name, LastName: "User", Password: r.initialFor(email)})
		if err != nil {
			return e, nil, fmt.Errorf("create the %s user: %w", name, err)
		}
		c, _, err := r.login(ctx, email, pw)
		return e, c, err
	}
	few, _, err := employee(smallAdmin, small, "few")
	if err != nil {
		return nil, err
	}
	many, _, err := employee(sw.bigAdmin, sw.bigCustomer, "many")
	if err != nil {
		return nil, err
	}
	if _, err := sw.bigAdmin.SetEmployeeRoles(ctx, policy.OrgCustomer, sw.bigCustomer, many.ID, []string{policy.RoleViewer}); err != nil {
		return nil, fmt.Errorf("give the many user its role: %w", err)
	}
	// Log the many user in after the role is set, so a provide token
	// carries it.
	if sw.many, _, err = r.login(ctx, emailOf("scale-many", 0), pw); err != nil {
		return nil, err
	}
	locs, err := r.scaleImportLocations(ctx, smallAdmin, small, sw.dealer, 1, 0)
	if err != nil {
		return nil, err
	}
	if _, err := smallAdmin.Do(ctx, apiclient.ServiceCustomer, "POST", "/customers/"+small+"/location-roles/import", map[string]any{"grants": []map[string]any{
		{"locationId": locs[0], "employeeId": few.ID, "roles": []string{policy.RoleViewer, policy.RoleArmer, policy.RoleDisarmer}},
	}}, nil); err != nil {
		return nil, fmt.Errorf("grant the few user: %w", err)
	}
	ids, err := r.scaleImportSystems(ctx, locs, 5, 0)
	if err != nil {
		return nil, err
	}
	sw.fewSystem = ids[0]
	if sw.few, _, err = r.login(ctx, emailOf("scale-few", 0), pw); err != nil {
		return nil, err
	}
	sw.systems, sw.locations = 5, 1
	return sw, nil
}

// scaleGrow adds systems (two per new location) until the platform holds
// n: to the big customer until its employee sees manyVisible, then to the
// filler customer.
func (r *runner) scaleGrow(ctx context.Context, sw *scaleWorld, n, manyVisible int) error {
	for sw.systems < n {
		add := n - sw.systems
		admin, customer := sw.fillAdmin, sw.fillCustomer
		if sw.bigSystems < manyVisible {
			add = min(add, manyVisible-sw.bigSystems)
			admin, customer = sw.bigAdmin, sw.bigCustomer
		}
		add = min(add, scaleImportBatch)
		nLocs := (add + systemsPerLocation - 1) / systemsPerLocation
		locs, err := r.scaleImportLocations(ctx, admin, customer, sw.dealer, nLocs, sw.locations)
		if err != nil {
			return err
		}
		if _, err := r.scaleImportSystems(ctx, locs, add, sw.systems); err != nil {
			return err
		}
		if customer == sw.bigCustomer {
			sw.bigSystems += add
		}
		sw.systems += add
		sw.locations += nLocs
	}
	return nil
}

func (r *runner) scaleImportLocations(ctx context.Context, admin *apiclient.Client, customer, dealer string, n, first int) ([]string, error) {
	items := make([]map[string]any, n)
	for i := range items {
		items[i] = map[string]any{"name": fmt.Sprintf("site %07d", first+i), "dealerId": dealer}
	}
	var out struct {
		IDs []string `json:"ids"`
	}
	err := r.retryUnavailable(ctx, "import locations", func(ctx context.Context) error {
		return apiclient.RetryUnknownReference(ctx, func(ctx context.Context) error {
			_, err := admin.Do(ctx, apiclient.ServiceCustomer, "POST", "/customers/"+customer+"/locations/import", map[string]any{"locations": items}, &out)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("import %d locations: %w", n, err)
	}
	return out.IDs, nil
}

// scaleImportSystems creates n systems spread over locs through the bulk
// import, or one by one when the service has none (see
// importSecuritySystems).
func (r *runner) scaleImportSystems(ctx context.Context, locs []string, n, first int) ([]string, error) {
	items := make([]map[string]any, n)
	for i := range items {
		items[i] = map[string]any{"locationId": locs[i%len(locs)], "name": fmt.Sprintf("system %07d", first+i)}
	}
	var out struct {
		IDs []string `json:"ids"`
	}
	err := r.retryUnavailable(ctx, "import security systems", func(ctx context.Context) error {
		return apiclient.RetryUnknownReferenceWithin(ctx, scaleRetryBound, func(ctx context.Context) error {
			_, err := r.admin.Do(ctx, apiclient.ServiceSecuritySystem, "POST", "/securitysystems/import", map[string]any{"securitySystems": items}, &out)
			return err
		})
	})
	if !missingEndpoint(err) {
		if err != nil {
			return nil, fmt.Errorf("import %d security systems: %w", n, err)
		}
		return out.IDs, nil
	}
	ids := make([]string, 0, n)
	for _, it := range items {
		var created apiclient.SecuritySystem
		if err := apiclient.RetryUnknownReference(ctx, func(ctx context.Context) error {
			var err error
			created, err = r.admin.CreateSecuritySystem(ctx, it["locationId"].(string), it["name"].(string))
			return err
		}); err != nil {
			return nil, fmt.Errorf("create a security system: %w", err)
		}
		ids = append(ids, created.ID)
	}
	return ids, nil
}

// loadRetries bounds how often the loader sends one bulk import again
// after a 503.
const loadRetries = 5

// retryUnavailable calls call until it returns anything but a 503, at
// most loadRetries more times, waiting 1, 2, 4, … s in between. It serves
// the loads only: an import is all or nothing, so one refused is safely
// sent again, and on a shared machine under other work one of the
// thousand authorization calls of a large import can pass the strategy's
// own timeout (delegate: --openfga-timeout, 2 s) without anything being
// wrong with the service. Each retry is reported on the progress output;
// the measured requests are never retried and count every error.
func (r *runner) retryUnavailable(ctx context.Context, what string, call func(ctx context.Context) error) error {
	wait := time.Second
	for i := 0; ; i++ {
		err := call(ctx)
		if i == loadRetries || apiclient.StatusOf(err) != http.StatusServiceUnavailable {
			return err
		}
		r.progress(fmt.Sprintf("%s: %v; sending it again in %s", what, err, wait))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// listPage is one page of GET /securitysystems.
type listPage struct {
	SecuritySystems []apiclient.SecuritySystem `json:"securitySystems"`
	NextCursor      string                     `json:"nextCursor"`
}

func listFirst(ctx context.Context, c *apiclient.Client, limit int, cursor string) (listPage, error) {
	q := url.Values{"limit": {fmt.Sprint(limit)}}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	var p listPage
	_, err := c.Do(ctx, apiclient.ServiceSecuritySystem, "GET", "/securitysystems?"+q.Encode(), nil, &p)
	return p, err
}

// pageAll pages through c's whole view and returns how many systems and
// pages it received.
func pageAll(ctx context.Context, c *apiclient.Client) (systems, pages int, err error) {
	cursor := ""
	for {
		p, err := listFirst(ctx, c, 500, cursor)
		if err != nil {
			return systems, pages, err
		}
		systems += len(p.SecuritySystems)
		pages++
		if p.NextCursor == "" {
			return systems, pages, nil
		}
		cursor = p.NextCursor
	}
}

// scaleMeasure waits until both users see what they should (the
// strategies that learn from events converge), then measures.
func (r *runner) scaleMeasure(ctx context.Context, cfg ScaleConfig, sw *scaleWorld, p *ScalePoint) error {
	// Under the baseline every caller sees every system, so "at least"
	// is the test; the strategies that learn from events converge to it.
	var seen int
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err := poll(wctx, 50*time.Millisecond, func() bool {
		fp, err := listFirst(wctx, sw.few, cfg.PageLimit, "")
		if err != nil || len(fp.SecuritySystems) < min(5, cfg.PageLimit) {
			return false
		}
		seen, _, err = pageAll(wctx, sw.many)
		return err == nil && seen >= sw.bigSystems
	})
	if err != nil {
		return fmt.Errorf("the users do not see their systems (many sees %d of %d): %w", seen, sw.bigSystems, err)
	}
	check := func(c *apiclient.Client, want int) func(ctx context.Context, _, _ int) error {
		return func(ctx context.Context, _, _ int) error {
			fp, err := listFirst(ctx, c, cfg.PageLimit, "")
			if err == nil && len(fp.SecuritySystems) < min(want, cfg.PageLimit) {
				err = fmt.Errorf("first page of %d systems, want %d", len(fp.SecuritySystems), min(want, cfg.PageLimit))
			}
			return err
		}
	}
	r.progress(fmt.Sprintf("%d systems: first pages and decisions, %d requests each", sw.systems, cfg.ListRequests))
	p.FewFirstPage = Drive(ctx, cfg.ListRequests, cfg.Concurrency, check(sw.few, 5))
	p.ManyFirstPage = Drive(ctx, cfg.ListRequests, cfg.Concurrency, check(sw.many, sw.bigSystems))
	p.Decide = Drive(ctx, cfg.Requests, cfg.Concurrency, func(ctx context.Context, _, _ int) error {
		_, err := sw.few.Do(ctx, apiclient.ServiceSecuritySystem, "PUT", "/securitysystems/"+sw.fewSystem, map[string]any{"action": "DISARM"}, nil)
		return err
	})
	t0 := time.Now()
	n, pages, err := pageAll(ctx, sw.many)
	if err != nil {
		return fmt.Errorf("page through the many user's view: %w", err)
	}
	p.PagingPerSecond = Ratio(float64(n), time.Since(t0).Seconds())
	p.Paged = pages > 1 || n <= 500
	return nil
}

// currentMachine describes the machine the run is on.
func currentMachine() Machine {
	return Machine{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version()}
}

// missingEndpoint reports an answer saying the service has no such route
// (404 or 405): a Security System Service without the bulk import.
func missingEndpoint(err error) bool {
	var ae *apiclient.Error
	return errors.As(err, &ae) && (ae.Status() == http.StatusNotFound || ae.Status() == http.StatusMethodNotAllowed)
}
