package systemtest

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/realguardio/realguardio/internal/policy"
)

// Admin returns a client acting as the bootstrap admin, logging in on
// first use.
func (s *System) Admin(ctx context.Context) (*Client, error) {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	if s.admin != nil {
		return s.admin, nil
	}
	se, err := s.Login(ctx, s.AdminUsername, s.AdminPassword)
	if err != nil {
		return nil, err
	}
	s.admin = s.Client(se)
	return s.admin, nil
}

// MustAdmin is Admin that fails the test on error.
func (s *System) MustAdmin() *Client {
	s.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := s.Admin(ctx)
	if err != nil {
		s.tb.Fatal(err)
	}
	return c
}

// probe is the harness's own organizations, one per event producer, whose
// changes WaitConverged makes and waits to see decided: a barrier. Each
// producer publishes its outbox in commit order and every consumer applies
// a stream strictly in order, so once the Security System Service decides
// by a probe change it has applied every earlier change of that producer.
type probe struct {
	customer, dealer, provider      Organization
	custAdmin, dealAdmin, provAdmin *Client
	custEmp, dealEmp, provEmp       Employee
	custUser, dealUser, provUser    *Client
	location                        Location
	system                          SecuritySystem
	granted                         bool
	systems                         int
	mu                              sync.Mutex
}

// probeDomain keeps the probe's accounts apart from anything a test
// creates.
const probeDomain = "@probe.systemtest.invalid"

func (s *System) setUpProbe(ctx context.Context) (*probe, error) {
	admin, err := s.Admin(ctx)
	if err != nil {
		return nil, err
	}
	p := &probe{}
	pw, initial := "probe-"+randomHex(8), "probe-initial-"+randomHex(8)
	fail := func(what string, r *Response) error {
		return fmt.Errorf("set up the convergence probe: %s: %s", what, r)
	}
	mk := func(kind policy.OrgKind, name string) (Organization, *Client, Employee, *Client, error) {
		org, r := admin.CreateOrganization(ctx, kind, "probe "+name, NewEmployee{Email: "probe-" + name + "-admin" + probeDomain, FirstName: "Probe", LastName: "Admin", Password: initial})
		if r.Status != http.StatusCreated {
			return org, nil, Employee{}, nil, fail("create "+name, r)
		}
		as, err := s.FirstLogin(ctx, "probe-"+name+"-admin"+probeDomain, initial, pw)
		if err != nil {
			return org, nil, Employee{}, nil, err
		}
		ac := s.Client(as)
		emp, r := ac.CreateEmployee(ctx, kind, org.ID, NewEmployee{Email: "probe-" + name + "-user" + probeDomain, FirstName: "Probe", LastName: "User", Password: initial})
		if r.Status != http.StatusCreated {
			return org, nil, Employee{}, nil, fail("create the "+name+" employee", r)
		}
		us, err := s.FirstLogin(ctx, "probe-"+name+"-user"+probeDomain, initial, pw)
		if err != nil {
			return org, nil, Employee{}, nil, err
		}
		return org, ac, emp, s.Client(us), nil
	}
	if p.provider, p.provAdmin, p.provEmp, p.provUser, err = mk(policy.OrgMonitoringProvider, "provider"); err != nil {
		return nil, err
	}
	if p.dealer, p.dealAdmin, p.dealEmp, p.dealUser, err = mk(policy.OrgDealer, "dealer"); err != nil {
		return nil, err
	}
	if p.customer, p.custAdmin, p.custEmp, p.custUser, err = mk(policy.OrgCustomer, "customer"); err != nil {
		return nil, err
	}
	if r := RetryUnknownReference(ctx, func() *Response {
		return p.dealAdmin.SetDealerMonitoringProvider(ctx, p.dealer.ID, p.provider.ID)
	}); r.Status != http.StatusOK {
		return nil, fail("set the probe dealer's provider", r)
	}
	var r *Response
	r = RetryUnknownReference(ctx, func() *Response {
		p.location, r = p.custAdmin.CreateLocation(ctx, p.customer.ID, "probe location", p.dealer.ID)
		return r
	})
	if r.Status != http.StatusCreated {
		return nil, fail("create the probe location", r)
	}
	r = RetryUnknownReference(ctx, func() *Response {
		p.system, r = admin.CreateSecuritySystem(ctx, p.location.ID, "probe system")
		return r
	})
	if r.Status != http.StatusCreated {
		return nil, fail("create the probe system", r)
	}
	// The probe customer's administrator may always view systems at the
	// probe location, so a new probe system becoming visible to it shows
	// that the Security System Service's own events were applied.
	if r := p.custAdmin.SetLocationEmployeeRoles(ctx, p.customer.ID, p.location.ID, p.customer.Administrator.EmployeeID, []string{policy.RoleViewer}); r.Status != http.StatusOK {
		return nil, fail("grant the probe customer's administrator VIEWER at the probe location", r)
	}
	return p, nil
}

// DefaultConvergeTimeout bounds WaitConverged when ctx has no deadline.
const DefaultConvergeTimeout = 60 * time.Second

// WaitConverged returns once the Security System Service decides by every
// change made through the public API before the call, whatever the
// strategy, or fails with what did not converge.
//
// The signal is a barrier through each event producer: the harness flips
// the organization role of a probe employee of its own customer, dealer
// and monitoring provider (and creates a probe security system, for
// strategies fed by the Security System Service's own events) and waits
// until the decisions about the probe system follow. Producers publish in
// commit order and consumers apply each stream in order, so the flip being
// decided implies every earlier event of that producer is applied. For the
// fetch strategy the barrier passes at once. For the provide strategy the
// facts travel in tokens, so the probe users' tokens are refreshed while
// waiting, and every session of the system is refreshed at the end.
// Finally, an event parked by any consumer (realguardio_events_parked_total
// in a service's /metrics) is reported as an error: a parked event means
// the replica silently lacks a change.
func (s *System) WaitConverged(ctx context.Context) error {
	s.probeOnce.Do(func() { s.probe, s.probeErr = s.setUpProbe(ctx) })
	if s.probeErr != nil {
		return s.probeErr
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultConvergeTimeout)
		defer cancel()
	}
	p := s.probe
	p.mu.Lock()
	defer p.mu.Unlock()
	p.granted = !p.granted
	var rs []string
	if p.granted {
		rs = []string{policy.RoleViewer}
	}
	for _, step := range []struct {
		what string
		r    *Response
	}{
		{"customer", p.custAdmin.SetEmployeeRoles(ctx, policy.OrgCustomer, p.customer.ID, p.custEmp.ID, rs)},
		{"dealer", p.dealAdmin.SetEmployeeRoles(ctx, policy.OrgDealer, p.dealer.ID, p.dealEmp.ID, rs)},
		{"monitoring provider", p.provAdmin.SetEmployeeRoles(ctx, policy.OrgMonitoringProvider, p.provider.ID, p.provEmp.ID, rs)},
	} {
		if step.r.Status != http.StatusOK {
			return fmt.Errorf("converge: flip the probe %s employee's roles: %s", step.what, step.r)
		}
	}
	admin, err := s.Admin(ctx)
	if err != nil {
		return err
	}
	p.systems++
	fresh, r := admin.CreateSecuritySystem(ctx, p.location.ID, fmt.Sprintf("probe system %d", p.systems))
	if r.Status != http.StatusCreated {
		return fmt.Errorf("converge: create a probe system: %s", r)
	}
	flipped := http.StatusForbidden
	if p.granted {
		flipped = http.StatusOK
	}
	type check struct {
		what   string
		user   *Client
		system string
		want   int
	}
	checks := []check{
		{"customer (Customer Service events)", p.custUser, p.system.ID, flipped},
		{"dealer (Dealer Service events)", p.dealUser, p.system.ID, flipped},
		{"monitoring provider (Monitoring Provider Service events)", p.provUser, p.system.ID, flipped},
		{"new system (Security System Service events)", p.custAdmin, fresh.ID, http.StatusOK},
	}
	started := time.Now()
	for _, c := range checks {
		var last *Response
		err := poll(ctx, func() bool {
			if s.Strategy == "provide" {
				if err := c.user.session.Refresh(ctx); err != nil {
					last = &Response{Err: err}
					return false
				}
			}
			_, last = c.user.GetSecuritySystem(ctx, c.system)
			return last.Status == c.want
		})
		if err != nil {
			return fmt.Errorf("converge: the %s probe was not decided within %v (want %d): last %s", c.what, time.Since(started).Round(time.Millisecond), c.want, last)
		}
	}
	if s.Strategy == "provide" {
		s.mu.Lock()
		sessions := append([]*Session(nil), s.sessions...)
		s.mu.Unlock()
		for _, se := range sessions {
			if err := se.Refresh(ctx); err != nil {
				return fmt.Errorf("converge: %w", err)
			}
		}
	}
	return s.checkNoParked(ctx)
}

// MustConverge is WaitConverged that fails the test on error.
func (s *System) MustConverge() {
	s.tb.Helper()
	started := time.Now()
	if err := s.WaitConverged(context.Background()); err != nil {
		s.tb.Fatal(err)
	}
	s.tb.Logf("converged in %v", time.Since(started).Round(time.Millisecond))
}

// checkNoParked scrapes every service's /metrics and fails when a
// consumer parked an event.
func (s *System) checkNoParked(ctx context.Context) error {
	for _, name := range s.Services() {
		n, err := s.metricSum(ctx, name, "realguardio_events_parked_total")
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("converge: %s parked %v event(s) (realguardio_events_parked_total): its replica lacks those changes; see the log", name, n)
		}
	}
	return nil
}

// metricSum returns the sum of every sample of a metric family in a
// service's /metrics (0 when absent).
func (s *System) metricSum(ctx context.Context, service, family string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", s.URL(service)+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("scrape %s /metrics: %w", service, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("scrape %s /metrics: status %d", service, resp.StatusCode)
	}
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, family) {
			continue
		}
		rest := line[len(family):]
		if rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue // a longer family name sharing the prefix
		}
		fields := strings.Fields(rest[strings.LastIndex(rest, "}")+1:])
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err == nil {
			sum += v
		}
	}
	return sum, sc.Err()
}
