package browsertest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/realguardio/realguardio/internal/apiclient"
	"github.com/realguardio/realguardio/internal/platform/chromiumtest"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/system"
	"github.com/realguardio/realguardio/internal/systemtest"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write this test's screenshots to internal/bff/testdata/screenshots")

// screenshotDir is where the BFF keeps its screenshots: those of this test
// show the same UI, only against the real system.
var screenshotDir = filepath.Join("..", "bff", "testdata", "screenshots")

// waitFor bounds every wait for the system or the browser; replicate makes
// a grant visible to the Security System Service only after its events
// arrive, which takes milliseconds but may take seconds on a loaded machine.
const waitFor = 30 * time.Second

// newBrowser starts a headless Chromium with a fresh profile and returns
// its context; tabs with their own cookies are opened with person.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	return chromiumtest.Start(t)
}

// person opens a tab in a browser context of its own, so that each person
// of the test has their own BFF and IAM cookies, as on their own computer.
func person(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	ctx, cancelT := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() { cancelT(); cancel() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a browser context: %v", err)
	}
	return ctx
}

func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, waitFor)
	defer cancel()
	if err := chromedp.Do(wctx, actions...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		// What the page says is usually the quickest way to the cause.
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector("main") || document.body || {innerText: ""}).innerText.slice(0, 600)`))
		t.Fatalf("%s: %v (the browser is at %s, which shows: %q)", what, err, loc, text)
	}
}

// eventually polls cond every 50ms until it holds or waitFor passes; it
// is the test's one way of waiting, so no sleep stands in for an assertion.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	var last string
	for {
		ok, got := cond()
		if ok {
			return
		}
		last = got
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last seen: %s", what, waitFor, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitText waits until the element's text contains want.
func waitText(t *testing.T, ctx context.Context, sel, want string) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s shows %q", sel, want), func() (bool, string) {
		got, err := chromedp.Run(ctx, chromedp.Text(sel, chromedp.NodeVisible))
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(got, want), fmt.Sprintf("%q", got)
	})
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if !*updateScreenshots {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// login signs in from the BFF's start page through the IAM Service's own
// login form, as a person would, and waits for the dashboard.
func login(t *testing.T, ctx context.Context, bff, username, password, shot string) {
	t.Helper()
	run(t, ctx, "start page", chromedp.Navigate(bff+"/"), chromedp.WaitVisible("#login"), chromedp.Click("#login"))
	run(t, ctx, "IAM login page", chromedp.WaitVisible(`input[name="username"]`))
	if shot != "" {
		screenshot(t, ctx, shot)
	}
	run(t, ctx, "sign in as "+username,
		chromedp.SendKeys(`input[name="username"]`, username),
		chromedp.SendKeys(`input[name="password"]`, password),
		chromedp.Submit(`input[name="password"]`),
		chromedp.WaitVisible(`[data-testid="user-name"]`),
	)
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasPrefix(loc, bff+"/") {
		t.Fatalf("after signing in as %s the browser is at %s, not the BFF", username, loc)
	}
}

// firstLogin is login for an account whose password someone else chose
// (an initial one): after it the IAM shows its change-password page, and
// the person types newPassword twice there before the BFF is reached.
func firstLogin(t *testing.T, ctx context.Context, bff, username, initial, newPassword, shot string) {
	t.Helper()
	run(t, ctx, "start page", chromedp.Navigate(bff+"/"), chromedp.WaitVisible("#login"), chromedp.Click("#login"))
	run(t, ctx, "IAM login page", chromedp.WaitVisible(`input[name="username"]`))
	if shot != "" {
		screenshot(t, ctx, shot)
	}
	run(t, ctx, "sign in as "+username+" with the initial password",
		chromedp.SendKeys(`input[name="username"]`, username),
		chromedp.SendKeys(`input[name="password"]`, initial),
		chromedp.Submit(`input[name="password"]`),
		chromedp.WaitVisible(`input[name="new_password"]`),
	)
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); strings.HasPrefix(loc, bff+"/") {
		t.Fatalf("the initial password of %s reached the BFF (%s) without a change", username, loc)
	}
	run(t, ctx, "choose a new password",
		chromedp.SendKeys(`input[name="new_password"]`, newPassword),
		chromedp.SendKeys(`input[name="confirm_password"]`, newPassword),
		chromedp.Submit(`input[name="confirm_password"]`),
		chromedp.WaitVisible(`[data-testid="user-name"]`),
	)
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasPrefix(loc, bff+"/") {
		t.Fatalf("after changing the password of %s the browser is at %s, not the BFF", username, loc)
	}
}

// rowOf is the dashboard row of the system named name.
func rowOf(id string) string { return `tr[data-system="` + id + `"]` }

// selectByLabel picks the option of the select whose text contains label,
// failing when there is none: the point is that people choose by name.
func selectByLabel(t *testing.T, ctx context.Context, sel, label string) {
	t.Helper()
	js := fmt.Sprintf(`(() => { const s = document.querySelector(%q); if (!s || s.tagName !== "SELECT") return "not a select";
		const o = Array.from(s.options).find((o) => o.textContent.includes(%q)); if (!o) return "no option";
		s.value = o.value; s.dispatchEvent(new Event("change", {bubbles: true})); return ""; })()`, sel, label)
	msg, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	if err != nil || msg != "" {
		t.Fatalf("choose %q in %s: %v %s", label, sel, err, msg)
	}
}

// outsideNow is a daily one-hour shift starting two hours from now (UTC),
// so the employee is off duty whenever the test runs.
func outsideNow() policy.Schedule {
	now := time.Now().UTC()
	start, end := now.Add(2*time.Hour), now.Add(3*time.Hour)
	return policy.Schedule{TimeZone: "UTC", Shifts: []policy.Shift{{
		Weekdays: []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"},
		Start:    start.Format("15:04"), End: end.Format("15:04"),
	}}}
}

// world is what the test loads through the public API.
type world struct {
	customer, dealer       string
	hq, warehouse          string
	frontDoor, serverRoom  string
	dock                   string
	acmeAdmin              *apiclient.Client
	frank, mary            string
	adminPW, frankPW, mPW  string
	adminEmail, frankEmail string
	maryEmail              string
	// mInitial is the initial password Mary is created with; she chooses
	// mPW in the browser at her first login. The others' first logins are
	// done by load.
	mInitial string
}

// load creates, as the platform operator and then as the customer's
// administrator, a dealer, a customer with two locations, a team, three
// systems and two employees: Frank with arming and disarming at HQ, and
// Mary with no role yet.
func load(t *testing.T, sys *systemtest.System) *world {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	admin := sys.MustAdmin().API()
	w := &world{adminEmail: "admin@acme.example", adminPW: "acme-admin-pass-1", frankEmail: "frank@acme.example", frankPW: "frank-pass-12345",
		maryEmail: "mary@acme.example", mPW: "mary-pass-123456", mInitial: "mary-initial-12345"}
	// The customer's accounts are created with initial passwords, which
	// their first logins replace (the IAM requires it).
	adminInitial, frankInitial := "acme-admin-initial-1", "frank-initial-12345"
	dealer, err := admin.CreateDealer(ctx, "SecureCo", apiclient.NewEmployee{Email: "admin@secureco.example", FirstName: "Sam", LastName: "Secure"})
	must("create the dealer", err)
	w.dealer = dealer.ID
	acme, err := admin.CreateCustomer(ctx, "Acme", apiclient.NewEmployee{Email: w.adminEmail, FirstName: "Ada", LastName: "Acme", Password: adminInitial})
	must("create the customer", err)
	w.customer = acme.ID
	se, err := sys.FirstLogin(ctx, w.adminEmail, adminInitial, w.adminPW)
	must("log in as Acme's administrator", err)
	w.acmeAdmin = sys.Client(se).API()
	c := w.acmeAdmin

	var hq, wh apiclient.Location
	must("create HQ", apiclient.RetryUnknownReference(ctx, func(ctx context.Context) (err error) {
		hq, err = c.CreateLocation(ctx, w.customer, "HQ", w.dealer)
		return err
	}))
	wh, err = c.CreateLocation(ctx, w.customer, "Warehouse", "")
	must("create the Warehouse", err)
	w.hq, w.warehouse = hq.ID, wh.ID

	frank, err := c.CreateEmployee(ctx, policy.OrgCustomer, w.customer, apiclient.NewEmployee{Email: w.frankEmail, FirstName: "Frank", LastName: "Field", Password: frankInitial})
	must("create Frank", err)
	mary, err := c.CreateEmployee(ctx, policy.OrgCustomer, w.customer, apiclient.NewEmployee{Email: w.maryEmail, FirstName: "Mary", LastName: "Major", Password: w.mInitial})
	must("create Mary", err)
	w.frank, w.mary = frank.ID, mary.ID
	must("give Frank ARMER and DISARMER at HQ", c.SetLocationEmployeeRoles(ctx, w.customer, w.hq, w.frank, []string{policy.RoleArmer, policy.RoleDisarmer}))
	team, err := c.CreateTeam(ctx, w.customer, "Night Watch")
	must("create a team", err)
	must("add Frank to the team", c.AddTeamMember(ctx, w.customer, team.ID, w.frank))

	// The operator creates the systems; the Security System Service learns
	// of new locations from events.
	create := func(loc, name string) string {
		var s apiclient.SecuritySystem
		must("create "+name, apiclient.RetryUnknownReference(ctx, func(ctx context.Context) (err error) {
			s, err = admin.CreateSecuritySystem(ctx, loc, name)
			return err
		}))
		return s.ID
	}
	w.frontDoor = create(w.hq, "HQ Front Door")
	w.serverRoom = create(w.hq, "HQ Server Room")
	w.dock = create(w.warehouse, "Warehouse Loading Dock")

	// Frank arms the front door so the browser has something to disarm;
	// with replicate his role reaches the Security System Service by event.
	fse, err := sys.FirstLogin(ctx, w.frankEmail, frankInitial, w.frankPW)
	must("log in as Frank", err)
	fc := sys.Client(fse).API()
	eventually(t, "Frank may arm the HQ front door", func() (bool, string) {
		s, err := fc.Arm(ctx, w.frontDoor)
		if err != nil {
			return false, err.Error()
		}
		return s.State == "ARMED", s.State
	})
	return w
}

// TestFullSystemInBrowser is the whole of RealGuardIO (every service on
// 127.0.0.1, strategy replicate) used through the web UI in Chromium:
// signing in on the IAM's login page, disarming, a denial explained in
// words, a location role granted by the customer administrator with the
// name-based selects and seen on another person's dashboard, and logging
// out.
func TestFullSystemInBrowser(t *testing.T) {
	browser := newBrowser(t)
	sys := systemtest.Start(t, systemtest.Options{Strategy: "replicate"})
	bff := sys.URL(system.ServiceBFF)
	w := load(t, sys)

	// Mary signs in first, for the first time: the IAM has her replace
	// the initial password her administrator gave her before she reaches
	// the console. She has no role anywhere, so nothing to see.
	mary := person(t, browser)
	firstLogin(t, mary, bff, w.maryEmail, w.mInitial, w.mPW, "system-iam-login")
	run(t, mary, "Mary's empty dashboard", chromedp.WaitVisible("#no-systems"))

	// Frank: his systems, with the location by name, and he disarms one.
	frank := person(t, browser)
	login(t, frank, bff, w.frankEmail, w.frankPW, "")
	run(t, frank, "Frank's dashboard", chromedp.WaitVisible(rowOf(w.frontDoor)), chromedp.WaitVisible(rowOf(w.serverRoom)))
	waitText(t, frank, rowOf(w.frontDoor)+` [data-testid="location"]`, "HQ")
	waitText(t, frank, `[data-testid="user-name"]`, w.frankEmail)
	run(t, frank, "disarm the front door", chromedp.Click(rowOf(w.frontDoor)+` button[data-action="DISARM"]`, chromedp.NodeVisible))
	waitText(t, frank, rowOf(w.frontDoor)+` [data-testid="state"]`, "DISARMED")
	waitText(t, frank, rowOf(w.frontDoor)+` .row-msg`, "Now disarmed")
	screenshot(t, frank, "system-dashboard")

	// His shift is then set to start in two hours while his page is open:
	// the Arm button he still sees is refused, and the reason is in words.
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := w.acmeAdmin.SetSchedule(ctx, policy.OrgCustomer, w.customer, w.frank, outsideNow()); err != nil {
		t.Fatalf("set Frank's schedule: %v", err)
	}
	// Replicate learns the schedule from an event; wait until the service
	// has it (Frank's actions are gone) before clicking.
	fse, err := sys.Login(ctx, w.frankEmail, w.frankPW)
	if err != nil {
		t.Fatal(err)
	}
	fc := sys.Client(fse).API()
	eventually(t, "Frank's schedule reaches the Security System Service", func() (bool, string) {
		s, err := fc.GetSecuritySystem(ctx, w.serverRoom)
		if err != nil {
			return false, err.Error()
		}
		return len(s.Actions) == 0, fmt.Sprint(s.Actions)
	})
	run(t, frank, "arm the server room outside the shift", chromedp.Click(rowOf(w.serverRoom)+` button[data-action="ARM"]`, chromedp.NodeVisible))
	waitText(t, frank, rowOf(w.serverRoom)+` .row-msg`, "outside your shift")
	waitText(t, frank, rowOf(w.serverRoom)+` [data-testid="state"]`, "DISARMED")
	// The refused button is gone and the row says why, from his access.
	waitText(t, frank, rowOf(w.serverRoom)+` [data-testid="why"]`, "Outside your shift: Every day")
	screenshot(t, frank, "system-dashboard-denied")

	// The customer administrator grants Mary DISARMER at the Warehouse,
	// choosing both by name.
	admin := person(t, browser)
	login(t, admin, bff, w.adminEmail, w.adminPW, "")
	run(t, admin, "organization page", chromedp.Navigate(bff+"/admin/organization"), chromedp.WaitVisible("#location-employee-roles"))
	waitText(t, admin, "#locations-table", "SecureCo")
	waitText(t, admin, "#teams-table", "Frank Field")
	selectByLabel(t, admin, "#location-employee-roles-path-locationId", "Warehouse")
	selectByLabel(t, admin, "#location-employee-roles-path-employeeId", "Mary Major <mary@acme.example>")
	run(t, admin, "grant DISARMER",
		chromedp.Click(`#location-employee-roles input[value="SECURITY_SYSTEM_DISARMER"]`, chromedp.NodeVisible),
		chromedp.Click(`#location-employee-roles button[type=submit]`, chromedp.NodeVisible),
	)
	waitText(t, admin, "#location-employee-roles .result", "Saved.")
	// A required choice left empty is named next to its field.
	run(t, admin, "team roles without a team", chromedp.Click(`#location-team-roles button[type=submit]`, chromedp.NodeVisible))
	waitText(t, admin, "#location-team-roles-path-locationId-msg", "Required.")
	run(t, admin, "organization page again", chromedp.Reload(), chromedp.WaitVisible("#locations-table"))
	waitText(t, admin, `#locations-table tr[data-location="`+w.warehouse+`"]`, "Mary Major: DISARMER")
	screenshot(t, admin, "system-admin-organization")

	// Mary's dashboard changes: she reloads until the event has reached
	// the Security System Service.
	eventually(t, "the Warehouse system on Mary's dashboard", func() (bool, string) {
		if err := chromedp.Do(mary, chromedp.Reload(), chromedp.WaitVisible("main")); err != nil {
			return false, err.Error()
		}
		n, err := chromedp.Run(mary, chromedp.Evaluate[int](`document.querySelectorAll('`+rowOf(w.dock)+`').length`))
		return err == nil && n == 1, fmt.Sprintf("%d rows", n)
	})
	waitText(t, mary, rowOf(w.dock)+` [data-testid="location"]`, "Warehouse")

	// Logging out lands on the start page, signed out: the API refuses the
	// browser and signing in asks for the password again.
	run(t, mary, "log out", chromedp.Click("#logout", chromedp.NodeVisible), chromedp.WaitVisible("#login"))
	if loc, _ := chromedp.Run(mary, chromedp.Location()); loc != bff+"/" {
		t.Errorf("after logout at %s, want %s/", loc, bff)
	}
	status, err := chromedp.Run(mary, chromedp.Evaluate[int](`fetch("/api/me").then((r) => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil || status != 401 {
		t.Errorf("GET /api/me after logout = %d, %v; want 401", status, err)
	}
	run(t, mary, "sign in again", chromedp.Click("#login"), chromedp.WaitVisible(`input[name="password"]`))
	if loc, _ := chromedp.Run(mary, chromedp.Location()); !strings.HasPrefix(loc, sys.Issuer) {
		t.Errorf("signing in after logout did not reach the IAM login page: %s", loc)
	}
}
