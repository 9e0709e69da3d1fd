package bff

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/realguardio/realguardio/internal/platform/chromiumtest"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write the browser tests' screenshots to testdata/screenshots")

// newBrowser starts a headless Chromium with a fresh profile, bounded to
// 90 seconds.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(chromiumtest.Start(t), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// screenshot saves the viewport as testdata/screenshots/name.png when the
// test runs with -update-screenshots.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if !*updateScreenshots {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join("testdata", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func textOf(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(sel, chromedp.NodeVisible))
	if err != nil {
		t.Fatalf("read %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// waitText waits until the element's text contains want.
func waitText(t *testing.T, ctx context.Context, sel, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		got, _ = chromedp.Run(ctx, chromedp.Text(sel, chromedp.NodeVisible))
		if strings.Contains(got, want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: text %q does not contain %q", sel, got, want)
}

const row1 = `tr[data-system="50000000-0000-0000-0000-000000000001"]`
const row2 = `tr[data-system="50000000-0000-0000-0000-000000000002"]`
const row3 = `tr[data-system="50000000-0000-0000-0000-000000000003"]`

// TestBrowserUI drives the UI in Chromium against the BFF and fake backend
// services, with a session put into the browser directly. The login through
// the IAM Service is covered by TestBrowserLoginLogout.
func TestBrowserUI(t *testing.T) {
	ctx := newBrowser(t)
	world := newFakeWorld("user-1")
	b := startBFF(t, "", "", world.start(t), []string{newKey(t)}, nil)

	run(t, ctx, "welcome", chromedp.Navigate(b.srv.URL+"/"), chromedp.WaitVisible("#login"))
	screenshot(t, ctx, "welcome")

	sess := testSession(fakeJWT(map[string]any{"iss": "http://localhost:9000", "sub": "user-1", "aud": []string{"realguardio-securitysystem", "realguardio-customer"},
		"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(), "roles": []string{"CUSTOMER_EMPLOYEE"}, "client_id": "realguardio-bff", "scope": "openid profile offline_access"}))
	sess.Name = "Alice Admin"
	sess.Roles = []string{"CUSTOMER_EMPLOYEE"}
	yes := true
	for _, c := range b.mintSession(t, sess) {
		if _, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{Name: c.Name, Value: c.Value, URL: b.srv.URL, Path: "/", HTTPOnly: &yes}); err != nil {
			t.Fatalf("set session cookie: %v", err)
		}
	}

	// Dashboard: the systems, who is signed in and the strategy.
	run(t, ctx, "dashboard", chromedp.Navigate(b.srv.URL+"/"), chromedp.WaitVisible("#systems"))
	if got := textOf(t, ctx, `[data-testid="user-name"]`); got != "Alice Admin" {
		t.Errorf("header shows %q", got)
	}
	if got := textOf(t, ctx, ".badge"); !strings.Contains(got, "fetch") {
		t.Errorf("strategy badge %q", got)
	}
	screenshot(t, ctx, "dashboard")

	// Search by name: only the match, the text kept in the box; Clear
	// shows everything again.
	run(t, ctx, "search", chromedp.SendKeys("#search-q", "server"), chromedp.Click(`#search button[type=submit]`), chromedp.WaitVisible("#search-clear"))
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#systems tbody tr').length`)); err != nil || n != 1 {
		t.Fatalf("search for server: %d rows (%v), want 1", n, err)
	}
	if v, _ := chromedp.Run(ctx, chromedp.Value("#search-q")); v != "server" {
		t.Errorf("search box shows %q", v)
	}
	waitText(t, ctx, row2+" .name", "Server room")
	screenshot(t, ctx, "dashboard-search")
	run(t, ctx, "clear search", chromedp.Click("#search-clear"), chromedp.WaitVisible(row1))

	// Paging: one system a page, next and back.
	world.mu.Lock()
	world.pageSize = 1
	world.mu.Unlock()
	run(t, ctx, "first page", chromedp.Navigate(b.srv.URL+"/"), chromedp.WaitVisible("#page-next"))
	run(t, ctx, "next page", chromedp.Click("#page-next"), chromedp.WaitVisible(row2), chromedp.WaitVisible("#page-first"))
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('`+row1+`').length`)); n != 0 {
		t.Fatal("the second page repeats the first")
	}
	run(t, ctx, "back to the first page", chromedp.Click("#page-first"), chromedp.WaitVisible(row1))
	world.mu.Lock()
	world.pageSize = 0
	world.mu.Unlock()
	run(t, ctx, "dashboard after paging", chromedp.Navigate(b.srv.URL+"/"), chromedp.WaitVisible(row2))

	// Disarm: the row updates in place.
	run(t, ctx, "disarm", chromedp.Click(row1+` button[data-action="DISARM"]`, chromedp.NodeVisible))
	waitText(t, ctx, row1+` [data-testid="state"]`, "DISARMED")
	waitText(t, ctx, row1+` .row-msg`, "Now disarmed")

	// A denial shows its reason in words.
	run(t, ctx, "arm outside shift", chromedp.Click(row2+` button[data-action="ARM"]`, chromedp.NodeVisible))
	waitText(t, ctx, row2+` .row-msg`, "outside your shift")
	screenshot(t, ctx, "dashboard-denied")

	// The authorization service down: nothing changed.
	world.mu.Lock()
	world.down = true
	world.mu.Unlock()
	run(t, ctx, "arm while down", chromedp.Click(row1+` button[data-action="ARM"]`, chromedp.NodeVisible))
	waitText(t, ctx, row1+` .row-msg`, "authorization service is unavailable, nothing was changed")
	world.mu.Lock()
	world.down = false
	world.mu.Unlock()

	// The warehouse (loc2) is not visible yet.
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('`+row3+`').length`))
	if err != nil || n != 0 {
		t.Fatal("warehouse visible before any role at its location")
	}

	// Administer a location role, then watch the dashboard change.
	run(t, ctx, "admin page", chromedp.Navigate(b.srv.URL+"/admin/organization"), chromedp.WaitVisible("#location-employee-roles"))
	// Locations and employees are chosen by name.
	waitText(t, ctx, "#locations-table", "Head office")
	run(t, ctx, "grant disarmer",
		chromedp.SetValue("#location-employee-roles-path-locationId", fakeLoc2),
		chromedp.SetValue("#location-employee-roles-path-employeeId", fakeEmployee),
		chromedp.Click(`#location-employee-roles input[value="SECURITY_SYSTEM_DISARMER"]`),
		chromedp.Click(`#location-employee-roles button[type=submit]`),
	)
	waitText(t, ctx, "#location-employee-roles .result", "Saved.")

	// A problem with a field is shown next to that field.
	run(t, ctx, "add employee with a taken address",
		chromedp.SendKeys("#add-employee-email", "taken@example.com"),
		chromedp.SendKeys("#add-employee-firstName", "Tom"),
		chromedp.SendKeys("#add-employee-lastName", "Taken"),
		chromedp.Click(`#add-employee button[type=submit]`),
	)
	waitText(t, ctx, "#add-employee-email-msg", "exists")
	// The initial password is shown once, with the word that the employee
	// must replace it at the first login (the IAM forces it); the field's
	// help says so before it is sent.
	if got := textOf(t, ctx, "#add-employee-password-help"); !strings.Contains(got, "must choose their own password at the first login") {
		t.Errorf("the initial password's help %q does not say the employee chooses their own at the first login", got)
	}
	run(t, ctx, "add employee",
		chromedp.SetValue("#add-employee-email", "new@example.com"),
		chromedp.Click(`#add-employee button[type=submit]`),
	)
	waitText(t, ctx, `#add-employee [data-testid="initial-password-note"]`, "new@example.com must choose their own password at the first login")
	// Client-side validation names the field before anything is sent.
	run(t, ctx, "no location chosen", chromedp.Click(`#location-dealer button[type=submit]`))
	waitText(t, ctx, "#location-dealer-path-locationId-msg", "Required.")
	if got := textOf(t, ctx, "#location-dealer-dealerId"); !strings.Contains(got, "SecureCo") {
		t.Errorf("dealer choices %q lack SecureCo", got)
	}
	screenshot(t, ctx, "admin-organization")

	run(t, ctx, "dashboard again", chromedp.Navigate(b.srv.URL+"/"), chromedp.WaitVisible(row3))
	run(t, ctx, "disarm warehouse", chromedp.Click(row3+` button[data-action="DISARM"]`, chromedp.NodeVisible))
	waitText(t, ctx, row3+` [data-testid="state"]`, "DISARMED")

	// Profile: loaded from and saved to the Customer Service.
	run(t, ctx, "profile", chromedp.Navigate(b.srv.URL+"/profile"), chromedp.WaitVisible("#profile-form"))
	deadline := time.Now().Add(5 * time.Second)
	var first string
	for first != "Alice" && time.Now().Before(deadline) {
		first, _ = chromedp.Run(ctx, chromedp.Value("#profile-firstName"))
		time.Sleep(50 * time.Millisecond)
	}
	if first != "Alice" {
		t.Fatalf("profile not loaded: %q", first)
	}
	run(t, ctx, "bad phone", chromedp.SetValue("#profile-phoneNumber", "030 1234"), chromedp.Click(`#profile-form button[type=submit]`))
	waitText(t, ctx, "#profile-phoneNumber-msg", "international format")
	screenshot(t, ctx, "profile")

	// The access token page: decoded claims, size, no signature.
	run(t, ctx, "token", chromedp.Navigate(b.srv.URL+"/token"), chromedp.WaitVisible("#token-claims"))
	if got := textOf(t, ctx, "#token-claims"); !strings.Contains(got, `"sub": "user-1"`) {
		t.Errorf("claims: %s", got)
	}
	html, err := chromedp.Run(ctx, chromedp.OuterHTML("html"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, sess.Access) || strings.Contains(html, ".c2ln") {
		t.Error("the token page shows the signed token")
	}
	screenshot(t, ctx, "token")
}
