package bff

import (
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDashboardSearchAndPaging: the dashboard sends its search (q, state,
// locationId) and the cursor to GET /securitysystems with a page limit,
// drops what the service would refuse, and links the next page with the
// service's nextCursor, keeping the search.
func TestDashboardSearchAndPaging(t *testing.T) {
	world := newFakeWorld("user-1")
	world.roles[fakeLoc2] = []string{"SECURITY_SYSTEM_DISARMER"}
	world.pageSize = 2
	be := world.start(t)
	var mu sync.Mutex
	var asked []url.Values
	ss := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.URL.Query())
		mu.Unlock()
		world.securitySystemHandler().ServeHTTP(w, r)
	}))
	t.Cleanup(ss.Close)
	be.ss = ss.URL
	b := startBFF(t, "", "", be, []string{newKey(t)}, nil)
	sess := testSession(fakeJWT(map[string]any{"sub": "user-1", "exp": time.Now().Add(time.Hour).Unix()}))
	sess.Roles = []string{"CUSTOMER_EMPLOYEE"}
	c := b.client(t, b.mintSession(t, sess))
	page := func(path string) (string, url.Values) {
		t.Helper()
		resp, body := b.do(t, c, "GET", path, "", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s = %d", path, resp.StatusCode)
		}
		mu.Lock()
		defer mu.Unlock()
		return html.UnescapeString(body), asked[len(asked)-1]
	}

	// First page: two of three systems, a next page, no first-page link.
	body, q := page("/")
	if q.Get("limit") != "50" || q.Get("cursor") != "" || q.Get("q") != "" {
		t.Fatalf("first page asked %v", q)
	}
	if !strings.Contains(body, `class="name">Main entrance<`) || !strings.Contains(body, `class="name">Server room<`) || strings.Contains(body, `class="name">Warehouse<`) {
		t.Fatalf("first page rows:\n%s", body)
	}
	if !strings.Contains(body, `id="page-next" href="/?cursor=2"`) || strings.Contains(body, `id="page-first"`) {
		t.Fatalf("first page links:\n%s", body)
	}
	// The location filter offers the names, sorted.
	if !strings.Contains(body, `<option value="`+fakeLoc1+`">Head office</option>`) {
		t.Fatalf("no location choice:\n%s", body)
	}
	// Next page: the rest, a link back, none further.
	body, q = page("/?cursor=2")
	if q.Get("cursor") != "2" || !strings.Contains(body, `class="name">Warehouse<`) || strings.Contains(body, `class="name">Main entrance<`) {
		t.Fatalf("second page (asked %v):\n%s", q, body)
	}
	if strings.Contains(body, `id="page-next"`) || !strings.Contains(body, `id="page-first" href="/"`) {
		t.Fatalf("second page links:\n%s", body)
	}

	// A search is forwarded, shown in the form, and kept across pages.
	body, q = page("/?q=+e+&state=ARMED")
	if q.Get("q") != "e" || q.Get("state") != "ARMED" {
		t.Fatalf("search asked %v", q)
	}
	if !strings.Contains(body, `value="e"`) || !strings.Contains(body, `<option value="ARMED" selected>`) || !strings.Contains(body, `id="search-clear"`) {
		t.Fatalf("search form:\n%s", body)
	}
	if !strings.Contains(body, `class="name">Main entrance<`) || !strings.Contains(body, `class="name">Warehouse<`) || strings.Contains(body, `class="name">Server room<`) {
		t.Fatalf("armed systems with an e:\n%s", body)
	}
	body, q = page("/?locationId=" + fakeLoc2)
	if q.Get("locationId") != fakeLoc2 || !strings.Contains(body, `<option value="`+fakeLoc2+`" selected>`) {
		t.Fatalf("location filter (asked %v):\n%s", q, body)
	}
	world.mu.Lock()
	world.pageSize = 1
	world.mu.Unlock()
	body, _ = page("/?state=ARMED")
	if !strings.Contains(body, `id="page-next" href="/?cursor=1&state=ARMED"`) {
		t.Fatalf("the next page lost the search:\n%s", body)
	}
	world.mu.Lock()
	world.pageSize = 2
	world.mu.Unlock()

	// Nothing matches: said so, differently from having no systems.
	body, _ = page("/?q=nothing-like-this")
	if !strings.Contains(body, "No security system you may view matches this search.") {
		t.Fatalf("empty search:\n%s", body)
	}
	// What the service would refuse is dropped, not forwarded.
	_, q = page("/?state=BROKEN&q=" + strings.Repeat("x", 300))
	if q.Has("state") || len(q.Get("q")) != maxSearchLen {
		t.Fatalf("unchecked search forwarded: %v", q)
	}

	// /api forwards the list parameters unchanged, for scripts.
	resp, _ := b.do(t, c, "GET", "/api/securitysystems?limit=1&cursor=1&q=a&state=DISARMED&locationId="+fakeLoc1, "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("/api list: %d", resp.StatusCode)
	}
	mu.Lock()
	last := asked[len(asked)-1]
	mu.Unlock()
	if last.Get("limit") != "1" || last.Get("cursor") != "1" || last.Get("q") != "a" || last.Get("state") != "DISARMED" || last.Get("locationId") != fakeLoc1 {
		t.Fatalf("/api forwarded %v", last)
	}
}
