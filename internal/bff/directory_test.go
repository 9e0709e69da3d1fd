package bff

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// renderFor renders a page for a customer administrator against the fake
// world, with the customer service's responses to the paths in refuse
// replaced by 403 (as for a user who may not read them).
func renderFor(t *testing.T, path string, refuse ...string) string {
	t.Helper()
	return renderWorld(t, newFakeWorld("user-1"), path, refuse...)
}

// renderWorld is renderFor against the given fake world.
func renderWorld(t *testing.T, world *fakeWorld, path string, refuse ...string) string {
	t.Helper()
	be := world.start(t)
	cu := world.customerHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, p := range refuse {
			if r.Method == "GET" && strings.HasSuffix(r.URL.Path, p) {
				problem(w, 403, "not allowed", "no_role", "")
				return
			}
		}
		cu.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	be.customer = srv.URL
	b := startBFF(t, "", "", be, []string{newKey(t)}, nil)
	sess := testSession(fakeJWT(map[string]any{"sub": "user-1", "exp": time.Now().Add(time.Hour).Unix()}))
	sess.Roles = []string{"CUSTOMER_EMPLOYEE"}
	resp, body := b.do(t, b.client(t, b.mintSession(t, sess)), "GET", path, "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s = %d: %s", path, resp.StatusCode, body)
	}
	return body
}

func TestOrganizationPageOffersNames(t *testing.T) {
	body := renderFor(t, "/admin/organization")
	for _, want := range []string{
		`<select id="location-employee-roles-path-locationId"`,
		`<option value="` + fakeLoc2 + `">Warehouse</option>`,
		`<option value="` + fakeEmployee + `">Alice Admin &lt;alice@example.com&gt;</option>`,
		`<option value="` + fakeTeam + `">Night Watch</option>`,
		`<option value="` + fakeDealer + `">SecureCo</option>`,
		`<select id="schedule-employee"`,
		`id="locations-table"`, `id="teams-table"`, `id="employees-table"`,
		// The grant of the fake world, by name.
		`Alice Admin</span>: ARMER, DISARMER`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the organization page lacks %s", want)
		}
	}
}

func TestOrganizationPageFallsBackToIDs(t *testing.T) {
	body := renderFor(t, "/admin/organization", "/employees", "/locations", "/teams")
	for _, want := range []string{
		`Could not read the employees`,
		`id="location-employee-roles-path-locationId" name="path:locationId"`,
		`data-kind="uuid"`,
		`<input id="schedule-employee"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the organization page lacks %s", want)
		}
	}
	if strings.Contains(body, `id="locations-table"`) {
		t.Error("a locations table without locations")
	}
}

func TestDashboardShowsLocationNames(t *testing.T) {
	body := renderFor(t, "/")
	if !strings.Contains(body, `title="location id `+fakeLoc1+`">Head office</td>`) {
		t.Errorf("no location name on the dashboard:\n%s", body)
	}
	// Who may not read the customer's locations (a dealer's employee)
	// gets the page's names in one GET /location-names.
	body = renderFor(t, "/", "/locations")
	if !strings.Contains(body, `title="location id `+fakeLoc1+`">Head office</td>`) {
		t.Errorf("no location name from /location-names on the dashboard:\n%s", body)
	}
	// Who may see no name sees the shortened id, the full one in the
	// title.
	body = renderFor(t, "/", "/locations", "/location-names")
	if !strings.Contains(body, `title="location id `+fakeLoc1+`">10000000…</td>`) {
		t.Errorf("no shortened location id on the dashboard:\n%s", body)
	}
}

func TestOrganizationTablesArePagedAndSearched(t *testing.T) {
	world := newFakeWorld("user-1")
	world.moreEmployees = 60
	body := renderWorld(t, world, "/admin/organization")
	if !strings.Contains(body, `Worker 048</a>`) || strings.Contains(body, `Worker 049</a>`) {
		t.Error("the first page of employees is not the first 50")
	}
	next := `href="?employees.cursor=50#sec-employees"`
	if !strings.Contains(body, next) {
		t.Fatalf("no link to the next page of employees (%s)", next)
	}
	body = renderWorld(t, world, "/admin/organization?employees.cursor=50")
	if !strings.Contains(body, `Worker 059</a>`) || strings.Contains(body, `Worker 048</a>`) {
		t.Error("the second page does not show the rest of the employees")
	}
	if strings.Contains(body, `data-testid="employees-next"`) || !strings.Contains(body, `data-testid="employees-first"`) {
		t.Error("the last page links to a next page, or not back to the first")
	}
	// The location grants still name Alice, who is on the first page only.
	if !strings.Contains(body, `Alice Admin</span>: ARMER, DISARMER`) {
		t.Error("a later page of employees lost the names of the other tables")
	}
	body = renderWorld(t, world, "/admin/organization?employees.q=worker+05")
	// The table rows link the names; the choices keep every employee of
	// the first page.
	if !strings.Contains(body, `Worker 055</a>`) || strings.Contains(body, `Worker 045</a>`) || strings.Contains(body, `alice@example.com</td>`) {
		t.Error("the search does not narrow the employees table")
	}
	if !strings.Contains(body, `value="worker 05"`) {
		t.Error("the search box does not show the search")
	}
	body = renderWorld(t, world, "/admin/organization?employees.q=nobody")
	if !strings.Contains(body, "No employee's name matches.") {
		t.Error("an empty search result does not say so")
	}
}
