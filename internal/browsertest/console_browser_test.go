package browsertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/realguardio/realguardio/internal/apiclient"
	"github.com/realguardio/realguardio/internal/demo"
	"github.com/realguardio/realguardio/internal/system"
	"github.com/realguardio/realguardio/internal/systemtest"
)

// rowCount counts the dashboard's rows.
func rowCount(t *testing.T, ctx context.Context) int {
	t.Helper()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#systems tbody tr').length`))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// whyOf is the explanation in the dashboard row of system id.
func whyOf(id string) string { return rowOf(id) + ` [data-testid="why"]` }

// inBerlinShift says whether now is inside Frank's demo shift, MON-FRI
// 09:00-17:00 Europe/Berlin, and whether it is far enough (two minutes)
// from either end that the answer cannot change while the test looks.
func inBerlinShift(now time.Time) (inside, settled bool) {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		return false, false
	}
	b := now.In(loc)
	mins := b.Hour()*60 + b.Minute()
	weekday := b.Weekday() >= time.Monday && b.Weekday() <= time.Friday
	inside = weekday && mins >= 9*60 && mins < 17*60
	near := func(m int) bool { return mins >= m-2 && mins <= m+2 }
	settled = !(near(9*60) || near(17*60) || (mins < 3 || mins > 24*60-3))
	return inside, settled
}

// TestConsoleInBrowser is the operator console of issue 13 on the demo
// world (every service on 127.0.0.1, strategy fetch): the dashboard pages
// and searches, explains every row without a button in the words of the
// access review (a shift, a team, a role), explains an administrator's
// empty list, follows another person's arming live without a reload, a
// system's page shows who may do what and why and follows it live too,
// unknown pages get the branded 404, and the layout holds at 1280 and
// 375 pixels.
func TestConsoleInBrowser(t *testing.T) {
	browser := newBrowser(t)
	sys := systemtest.Start(t, systemtest.Options{Strategy: "fetch"})
	bff := sys.URL(system.ServiceBFF)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := demo.Load(ctx, demo.Options{Endpoints: apiclient.EndpointsFrom(sys.Sys.URLs), AdminPassword: sys.AdminPassword})
	if err != nil {
		t.Fatalf("load the demo: %v", err)
	}
	pw := map[string]string{}
	for _, lg := range res.Logins {
		pw[lg.Username] = lg.Password
	}
	admin := sys.MustAdmin().API()
	list, err := admin.ListSecuritySystems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := map[string]string{}
	for _, s := range list {
		id[s.Name] = s.ID
	}
	frontDoor, serverRoom, dock := id["HQ Front Door"], id["HQ Server Room"], id["Warehouse Loading Dock"]
	if frontDoor == "" || serverRoom == "" || dock == "" {
		t.Fatalf("the demo's systems: %v", id)
	}
	// Enough systems for two dashboard pages (50 a page) of the platform
	// administrator, who sees every system.
	var more []apiclient.ImportSecuritySystem
	for i := 1; i <= 55; i++ {
		more = append(more, apiclient.ImportSecuritySystem{LocationID: list[0].LocationID, Name: fmt.Sprintf("Paging Sensor %02d", i)})
	}
	if _, err := admin.ImportSecuritySystems(ctx, more); err != nil {
		t.Fatalf("import systems: %v", err)
	}

	// Charlie: his right comes from his team, and the row he can do
	// nothing with says so.
	charlie := person(t, browser)
	login(t, charlie, bff, "charlie@acme.example", pw["charlie@acme.example"], "")
	run(t, charlie, "Charlie's dashboard", chromedp.WaitVisible(rowOf(serverRoom)))
	waitText(t, charlie, whyOf(serverRoom), "Granted through team Night Watch (DISARMER)")
	waitText(t, charlie, rowOf(serverRoom)+` [data-testid="location"]`, "HQ")
	screenshot(t, charlie, "console-dashboard-why")

	// Frank: his Berlin shift is named on his rows; outside it the armed
	// front door says he is outside his shift.
	frank := person(t, browser)
	login(t, frank, bff, "frank@acme.example", pw["frank@acme.example"], "")
	run(t, frank, "Frank's dashboard", chromedp.WaitVisible(rowOf(serverRoom)))
	waitText(t, frank, whyOf(serverRoom), "Mon–Fri 09:00–17:00 Europe/Berlin")
	if inside, settled := inBerlinShift(time.Now()); settled && !inside {
		waitText(t, frank, whyOf(frontDoor), "Outside your shift: Mon–Fri 09:00–17:00 Europe/Berlin (role DISARMER at HQ)")
	} else if settled && inside {
		run(t, frank, "Frank may disarm in his shift", chromedp.WaitVisible(rowOf(frontDoor)+` button[data-action="DISARM"]`))
	}
	// Oliver is outside his shift by construction of the demo.
	oliver := person(t, browser)
	login(t, oliver, bff, "oliver@acme.example", pw["oliver@acme.example"], "")
	run(t, oliver, "Oliver's dashboard", chromedp.WaitVisible(rowOf(dock)))
	waitText(t, oliver, whyOf(dock), "Outside your shift: ")
	waitText(t, oliver, whyOf(dock), "role DISARMER at Warehouse")
	// Erin sees HQ through her provider.
	erin := person(t, browser)
	login(t, erin, bff, "erin@watchtower.example", pw["erin@watchtower.example"], "")
	run(t, erin, "Erin's dashboard", chromedp.WaitVisible(rowOf(frontDoor)))
	waitText(t, erin, whyOf(frontDoor), "View only: role VIEWER at monitoring provider WatchTower")
	// Erin works for the provider, not for Acme, and still sees HQ's name
	// (GET /location-names), on the dashboard and on the system's page.
	waitText(t, erin, rowOf(frontDoor)+` [data-testid="location"]`, "HQ")
	run(t, erin, "the front door's page", chromedp.Navigate(bff+"/securitysystems/"+frontDoor), chromedp.WaitVisible(`[data-testid="location"]`))
	waitText(t, erin, `[data-testid="location"]`, "HQ")

	// Acme's administrator holds no system role: the empty list says what
	// the role allows. Their system page shows everyone's access and why.
	acme := person(t, browser)
	login(t, acme, bff, "admin@acme.example", pw["admin@acme.example"], "")
	run(t, acme, "the administrator's empty dashboard", chromedp.WaitVisible("#no-systems"))
	waitText(t, acme, `[data-testid="empty-help"]`, "As administrator of your customer")
	run(t, acme, "the front door's page", chromedp.Navigate(bff+"/securitysystems/"+frontDoor), chromedp.WaitVisible("#access"))
	waitText(t, acme, `[data-testid="noview"]`, "You administer this system's customer")
	waitText(t, acme, "#access", "charlie@acme.example")
	waitText(t, acme, "#access", "Granted through team Night Watch (DISARMER)")
	waitText(t, acme, "#access", "Shift: Mon–Fri 09:00–17:00 Europe/Berlin")
	waitText(t, acme, "#access", "Role VIEWER at monitoring provider WatchTower")
	screenshot(t, acme, "console-system-access")

	// Live: Alice watches her dashboard while Oscar arms the server room
	// in his browser; her row changes without a reload, with her Disarm.
	alice := person(t, browser)
	login(t, alice, bff, "alice@acme.example", pw["alice@acme.example"], "")
	run(t, alice, "Alice's dashboard", chromedp.WaitVisible(rowOf(serverRoom)))
	waitText(t, alice, "#live-status", "Live")
	if _, err := chromedp.Run(alice, chromedp.Evaluate[bool](`window.notReloaded = true`)); err != nil {
		t.Fatal(err)
	}
	oscar := person(t, browser)
	login(t, oscar, bff, "oscar@acme.example", pw["oscar@acme.example"], "")
	clicked := time.Now()
	run(t, oscar, "Oscar arms the server room", chromedp.Click(rowOf(serverRoom)+` button[data-action="ARM"]`, chromedp.NodeVisible))
	waitText(t, oscar, rowOf(serverRoom)+` .row-msg`, "Now armed")
	waitText(t, alice, rowOf(serverRoom)+` [data-testid="state"]`, "ARMED")
	// A figure, not an assertion: how long the change took from Oscar's
	// click to Alice's page (polled every 50 ms).
	t.Logf("live update: Oscar's click to Alice's row in %v", time.Since(clicked).Round(10*time.Millisecond))
	run(t, alice, "Alice's Disarm appears", chromedp.WaitVisible(rowOf(serverRoom)+` button[data-action="DISARM"]`))
	if still, err := chromedp.Run(alice, chromedp.Evaluate[bool](`window.notReloaded === true`)); err != nil || !still {
		t.Fatalf("Alice's page was reloaded (%v)", err)
	}
	screenshot(t, alice, "console-dashboard-live")

	// The same on a system's page: Alice follows the server room, Oscar
	// disarms it through the API.
	run(t, alice, "the server room's page", chromedp.Navigate(bff+"/securitysystems/"+serverRoom), chromedp.WaitVisible("#system"))
	waitText(t, alice, "#live-status", "Live")
	waitText(t, alice, "#system .name", "HQ Server Room")
	waitText(t, alice, `#system [data-testid="location"]`, "HQ")
	waitText(t, alice, "#access-own", "your own access")
	waitText(t, alice, "#access", "Role DISARMER in Acme")
	ose, err := sys.Login(ctx, "oscar@acme.example", pw["oscar@acme.example"])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sys.Client(ose).API().Disarm(ctx, serverRoom); err != nil {
		t.Fatalf("Oscar disarms: %v", err)
	}
	waitText(t, alice, `#system [data-testid="state"]`, "DISARMED")
	waitText(t, alice, `#system [data-testid="why"]`, "Already disarmed")

	// Paging and search, as the platform administrator.
	op := person(t, browser)
	login(t, op, bff, "admin", sys.AdminPassword, "")
	run(t, op, "the first page", chromedp.WaitVisible("#systems"), chromedp.WaitVisible("#page-next"))
	if n := rowCount(t, op); n != 50 {
		t.Fatalf("first page: %d rows, want 50", n)
	}
	waitText(t, op, `#systems tbody tr:first-child [data-testid="why"]`, "as platform administrator you see every system")
	run(t, op, "the next page", chromedp.Click("#page-next", chromedp.NodeVisible), chromedp.WaitVisible("#page-first"))
	if n := rowCount(t, op); n != len(list)+len(more)-50 {
		t.Fatalf("second page: %d rows, want %d", n, len(list)+len(more)-50)
	}
	run(t, op, "search", chromedp.Navigate(bff+"/"), chromedp.WaitVisible("#search-q"),
		chromedp.SendKeys("#search-q", "Sensor 07"), chromedp.Click(`#search button[type=submit]`), chromedp.WaitVisible("#search-clear"))
	if n := rowCount(t, op); n != 1 {
		t.Fatalf("search for Sensor 07: %d rows", n)
	}
	waitText(t, op, "#systems", "Paging Sensor 07")

	// Unknown pages: the branded 404 with the navigation.
	run(t, op, "an unknown page", chromedp.Navigate(bff+"/no/such/page"), chromedp.WaitVisible(".error-page"))
	waitText(t, op, ".error-page h1", "Nothing here")
	waitText(t, op, "#error-home", "Back to the security systems")
	run(t, op, "a system that is none", chromedp.Navigate(bff+"/securitysystems/00000000-0000-0000-0000-000000000000"), chromedp.WaitVisible(".error-page"))
	waitText(t, op, ".error-page h1", "Nothing here")
	screenshot(t, op, "console-404")

	// Layout: at 1280 pixels the header is one line; at 375 the dashboard
	// does not scroll sideways.
	run(t, alice, "1280 wide", chromedp.EmulateViewport(1280, 800), chromedp.Navigate(bff+"/"), chromedp.WaitVisible("#systems"))
	oneLine, err := chromedp.Run(alice, chromedp.Evaluate[bool](`(() => { const kids = Array.from(document.querySelector("header.top").children);
		const tops = kids.map((k) => k.getBoundingClientRect()); return tops.every((r) => r.top < tops[0].bottom && r.bottom > tops[0].top); })()`))
	if err != nil || !oneLine {
		t.Errorf("the header wraps at 1280 px (%v)", err)
	}
	aligned, err := chromedp.Run(alice, chromedp.Evaluate[bool](`(() => { const cells = Array.from(document.querySelectorAll("#systems tbody td.actions"));
		const lefts = new Set(cells.map((c) => Math.round(c.getBoundingClientRect().left))); return cells.length > 1 && lefts.size === 1; })()`))
	if err != nil || !aligned {
		t.Errorf("the Actions cells do not line up (%v)", err)
	}
	screenshot(t, alice, "console-dashboard-1280")
	run(t, charlie, "375 wide", chromedp.EmulateViewport(375, 800), chromedp.Navigate(bff+"/"), chromedp.WaitVisible("#systems"))
	wide, err := chromedp.Run(charlie, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
	if err != nil || wide > 375 {
		t.Errorf("at 375 px the dashboard is %d px wide (%v)", wide, err)
	}
	screenshot(t, charlie, "console-dashboard-375")
}
