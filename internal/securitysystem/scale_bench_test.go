package securitysystem_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/policytest"
	"github.com/realguardio/realguardio/internal/securitysystem"
	"github.com/realguardio/realguardio/internal/securitysystem/app"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/authztest"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/provide"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/replicate"
	"github.com/realguardio/realguardio/internal/securitysystem/sstest"
	"github.com/realguardio/realguardio/internal/securitysystem/store"
)

// scaleWorld is a platform of n systems, five per location: a big customer
// owning min(n, 10 000) of them, whose employee "wide" holds
// SECURITY_SYSTEM_VIEWER as an organization role, and other customers of
// 100 locations each, serviced by ten dealers, one of whose employees
// "narrow" holds VIEWER at one location (five systems).
type scaleWorld struct {
	w            *policytest.World
	narrow, wide string
}

func newScaleWorld(n int) scaleWorld {
	nid := func(kind string, i int) string {
		return uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "scale/%s/%d", kind, i)).String()
	}
	w := &policytest.World{}
	for i := range 10 {
		w.Dealers = append(w.Dealers, policytest.Dealer{ID: nid("dealer", i)})
	}
	big := nid("customer", 0)
	w.Customers = append(w.Customers, policytest.Customer{ID: big})
	bigLocations := min(n, 10000) / 5
	for li := range n / 5 {
		c := big
		if li >= bigLocations {
			c = nid("customer", 1+(li-bigLocations)/100)
			if (li-bigLocations)%100 == 0 {
				w.Customers = append(w.Customers, policytest.Customer{ID: c})
			}
		}
		l := policytest.Location{ID: nid("location", li), CustomerID: c, DealerID: w.Dealers[li%10].ID}
		w.Locations = append(w.Locations, l)
		for k := range 5 {
			w.SecuritySystems = append(w.SecuritySystems, policytest.SecuritySystem{ID: nid("system", li*5+k), LocationID: l.ID})
		}
	}
	sw := scaleWorld{w: w, narrow: nid("user", 0), wide: nid("user", 1)}
	last := w.Locations[len(w.Locations)-1]
	w.Employees = []policytest.Employee{
		{UserID: sw.narrow, OrgKind: policy.OrgCustomer, OrgID: last.CustomerID, Roles: []string{}},
		{UserID: sw.wide, OrgKind: policy.OrgCustomer, OrgID: big, Roles: []string{policy.RoleViewer}},
	}
	w.EmployeeLocationRoles = []policytest.EmployeeLocationRole{{LocationID: last.ID, UserID: sw.narrow, Roles: []string{policy.RoleViewer}}}
	sw.w = w.Clone()
	return sw
}

// startScale builds one service of the strategy over the world, its
// systems written straight into the store in batches.
func startScale(b *testing.B, strategy string, sw scaleWorld) (*httptest.Server, *sstest.Facts) {
	b.Helper()
	ctx := context.Background()
	db := sqldbtest.OpenSQLite(b, securitysystem.Migrations()...)
	w := sw.w
	evs := sstest.NewEvents(time.Now().Add(-time.Hour))
	evs.World(w)
	switch strategy {
	case "replicate":
		sstest.Apply(b, db, replicate.NewProjection().Handle, evs.List())
	case "provide":
		sstest.Apply(b, db, provide.Handle, evs.List())
	}
	st := store.New(db, authztest.DiscardEvents{})
	now := time.Now()
	batch := make([]app.SecuritySystem, 0, 5000)
	flush := func() {
		if err := st.CreateMany(ctx, batch, make([][]app.Event, len(batch))); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	for i, ss := range w.SecuritySystems {
		r := w.Resource(ss.ID)
		batch = append(batch, app.SecuritySystem{ID: ss.ID, Name: fmt.Sprintf("system %07d", (i*7919)%len(w.SecuritySystems)), LocationID: ss.LocationID,
			State: app.StateDisarmed, CustomerID: r.CustomerID, DealerID: r.DealerID, MonitoringProviderID: r.MonitoringProviderID,
			CreatedAt: now, UpdatedAt: now, Version: 1})
		if len(batch) == cap(batch) {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
	iam := sstest.NewIAM(b)
	facts := sstest.NewFacts(b, w)
	svc, err := securitysystem.New(ctx, securitysystem.Config{
		Issuer: iam.URL, Strategy: strategy, AllowNoAuthz: true,
		CustomerURL: facts.Customer.URL, DealerURL: facts.Dealer.URL, MonitoringURL: facts.Monitoring.URL,
		ClientID: "securitysystem", ClientSecret: "secret",
	}, securitysystem.Deps{DB: db, Authenticate: sstest.Authenticate})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler())
	b.Cleanup(srv.Close)
	return srv, facts
}

// getPage asks one page and returns its size and next cursor.
func getPage(b *testing.B, client *http.Client, srv *httptest.Server, token, query string) (int, string) {
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/securitysystems?"+query, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(resp.Body)
		b.Fatalf("status %d: %s", resp.StatusCode, raw)
	}
	var p struct {
		SecuritySystems []json.RawMessage `json:"securitySystems"`
		NextCursor      *string           `json:"nextCursor"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		b.Fatal(err)
	}
	next := ""
	if p.NextCursor != nil {
		next = *p.NextCursor
	}
	return len(p.SecuritySystems), next
}

// BenchmarkListScale measures GET /securitysystems (first page of 50) on
// platforms of 10^3 and 10^5 systems, for a caller who sees 5 systems and
// one who sees min(n, 10 000), per strategy; and paging through the wide
// caller's whole view with pages of 500 (systems/s). The list's cost must
// grow with the caller's view, not with the platform: compare the two
// sizes of one line.
//
//	go test -run '^$' -bench BenchmarkListScale -benchtime 200x ./internal/securitysystem/
func BenchmarkListScale(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		sw := newScaleWorld(n)
		for _, strategy := range []string{"none", "provide", "replicate", "fetch"} {
			b.Run(fmt.Sprintf("systems=%d/%s", n, strategy), func(b *testing.B) {
				srv, facts := startScale(b, strategy, sw)
				client := srv.Client()
				token := func(u string) string {
					if strategy == "provide" {
						return sstest.ProvideToken(sw.w, u)
					}
					return sstest.Token(u, sw.w.AppRoles(u)...)
				}
				narrow, wide := token(sw.narrow), token(sw.wide)
				if strategy == "none" {
					narrow, wide = sstest.Token(sw.narrow), sstest.Token(sw.wide)
				}
				if got, _ := getPage(b, client, srv, narrow, "limit=50"); strategy != "none" && got != 5 {
					b.Fatalf("narrow sees %d systems, want 5", got)
				}
				b.Run("first-page/sees=5", func(b *testing.B) {
					for b.Loop() {
						getPage(b, client, srv, narrow, "limit=50")
					}
				})
				b.Run(fmt.Sprintf("first-page/sees=%d", min(n, 10000)), func(b *testing.B) {
					for b.Loop() {
						getPage(b, client, srv, wide, "limit=50")
					}
				})
				b.Run(fmt.Sprintf("all-pages/sees=%d", min(n, 10000)), func(b *testing.B) {
					total := 0
					start := time.Now()
					for b.Loop() {
						cursor := ""
						for {
							got, next := getPage(b, client, srv, wide, "limit=500&cursor="+url.QueryEscape(cursor))
							total += got
							if next == "" {
								break
							}
							cursor = next
						}
					}
					b.ReportMetric(float64(total)/time.Since(start).Seconds(), "systems/s")
				})
				if strategy == "fetch" {
					_ = facts
				}
			})
		}
	}
}

// BenchmarkImport measures POST /securitysystems/import of 5 000 systems
// over 50 locations (validation, one creation check per location, one
// transaction with every row and its securitysystem.created event) into
// SQLite, per strategy; systems/s is the figure of API.md's bulk import.
//
//	go test -run '^$' -bench BenchmarkImport -benchtime 5x ./internal/securitysystem/
func BenchmarkImport(b *testing.B) {
	for _, strategy := range []string{"replicate", "provide", "fetch"} {
		b.Run(strategy, func(b *testing.B) {
			w := policytest.Generate(1, policytest.Large)
			h := newHarness(b, strategy, w)
			items := make([]map[string]any, 5000)
			for i := range items {
				items[i] = map[string]any{"locationId": w.Locations[i%50].ID, "name": fmt.Sprintf("imported %d", i)}
			}
			body := map[string]any{"securitySystems": items}
			start, cpu := time.Now(), processCPU()
			n := 0
			for b.Loop() {
				var out struct{ IDs []string }
				h.do(w.Admins[0], "POST", "/securitysystems/import", body, http.StatusCreated, &out)
				n += len(out.IDs)
			}
			// On a shared machine the wall clock measures the neighbours
			// too; the process's CPU time (client and server) bounds what
			// one core does.
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "systems/s")
			b.ReportMetric(float64(n)/(processCPU()-cpu).Seconds(), "systems/cpu-s")
		})
	}
}

// processCPU is the CPU time (user and system) the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
