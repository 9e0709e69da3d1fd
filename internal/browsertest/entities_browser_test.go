package browsertest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/realguardio/realguardio/internal/apiclient"
	"github.com/realguardio/realguardio/internal/demo"
	"github.com/realguardio/realguardio/internal/system"
	"github.com/realguardio/realguardio/internal/systemtest"
)

// evalJS runs js in the page and returns its value, failing the test on
// an error.
func evalJS[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitTrue waits until js evaluates to true in the page.
func waitTrue(t *testing.T, ctx context.Context, what, js string) {
	t.Helper()
	eventually(t, what, func() (bool, string) {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		if err != nil {
			return false, err.Error()
		}
		return v, fmt.Sprint(v)
	})
}

// linkTo follows the link under sel whose text contains text, as a person
// clicking it would, and waits for the page's heading.
func linkTo(t *testing.T, ctx context.Context, sel, text string) {
	t.Helper()
	href := evalJS[string](t, ctx, fmt.Sprintf(`(Array.from(document.querySelectorAll(%q)).find((a) => a.textContent.includes(%q)) || {}).href || ""`, sel+" a", text))
	if href == "" {
		t.Fatalf("no link %q under %s", text, sel)
	}
	run(t, ctx, "open "+text, chromedp.Navigate(href), chromedp.WaitVisible(`[data-testid="entity-name"]`))
	waitText(t, ctx, `[data-testid="entity-name"]`, text)
}

// noSidewaysScroll fails when the page is wider than the viewport.
func noSidewaysScroll(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	got := evalJS[[]int64](t, ctx, `[document.documentElement.scrollWidth, window.innerWidth]`)
	if got[0] > got[1] {
		t.Errorf("%s is %d px wide in a %d px viewport: it scrolls sideways", what, got[0], got[1])
	}
}

// TestEntityPagesInBrowser is the organization console on the demo, under
// provide (so every change says it takes effect at the next token
// refresh): editors open with the current values (Alice's role, Frank's
// Berlin shift, SecureCo's provider WatchTower), a removal is shown as a
// change and confirmed first, removing a non-member says so, a namesake is
// warned about, the platform administrator's organizations come from the
// services, the audit page lists decisions, and the pages fit 375 px.
func TestEntityPagesInBrowser(t *testing.T) {
	browser := newBrowser(t)
	const adminPW = "entities-admin-password-1"
	sys := systemtest.Start(t, systemtest.Options{Strategy: "provide", AdminPassword: adminPW, AccessTokenLifetime: 5 * time.Minute})
	bff := sys.URL(system.ServiceBFF)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := demo.Load(ctx, demo.Options{Endpoints: apiclient.EndpointsFrom(sys.Sys.URLs), AdminPassword: adminPW})
	if err != nil {
		t.Fatalf("load the demo: %v", err)
	}
	pw := map[string]string{}
	for _, l := range res.Logins {
		pw[l.Username] = l.Password
	}
	const effect = "at the user's next token refresh, at most 5 minutes"

	// Acme's administrator: choosing Alice ticks her DISARMER role.
	acme := person(t, browser)
	login(t, acme, bff, "admin@acme.example", pw["admin@acme.example"], "")
	run(t, acme, "organization page", chromedp.Navigate(bff+"/admin/organization"), chromedp.WaitVisible("#employee-roles"))
	waitText(t, acme, "h1", "Acme")
	selectByLabel(t, acme, "#employee-roles-path-employeeId", "Alice")
	waitTrue(t, acme, "Alice's DISARMER ticked", `document.querySelector('#employee-roles input[value="SECURITY_SYSTEM_DISARMER"]').checked &&
		!document.querySelector('#employee-roles input[value="SECURITY_SYSTEM_ARMER"]').checked`)
	screenshot(t, acme, "system-organization-sections")

	// Alice's own page: her roles, and a removal is previewed, confirmed
	// (cancel changes nothing) and said to take effect at the next refresh.
	linkTo(t, acme, "#employees-table", "Alice")
	waitText(t, acme, `[data-testid="org-roles"]`, "DISARMER")
	waitTrue(t, acme, "the editor opens with DISARMER", `document.querySelector('#employee-roles input[value="SECURITY_SYSTEM_DISARMER"]').checked`)
	run(t, acme, "untick DISARMER", chromedp.Click(`#employee-roles input[value="SECURITY_SYSTEM_DISARMER"]`, chromedp.NodeVisible))
	waitText(t, acme, "#employee-roles .diff", "takes away Disarmer")
	run(t, acme, "save the removal", chromedp.Click(`#employee-roles button[type=submit]`, chromedp.NodeVisible))
	waitText(t, acme, "#employee-roles .confirm", "takes away Disarmer")
	screenshot(t, acme, "system-employee-confirm-removal")
	run(t, acme, "cancel", chromedp.Click(`#employee-roles .confirm-no`, chromedp.NodeVisible))
	waitText(t, acme, "#employee-roles .form-msg", "nothing was changed")
	run(t, acme, "save again and confirm", chromedp.Click(`#employee-roles button[type=submit]`, chromedp.NodeVisible),
		chromedp.Click(`#employee-roles .confirm-yes`, chromedp.NodeVisible))
	waitText(t, acme, "#employee-roles .result", "Saved.")
	waitText(t, acme, "#employee-roles .result", effect)
	run(t, acme, "Alice's page again", chromedp.Reload(), chromedp.WaitVisible(`[data-testid="org-roles"]`))
	waitText(t, acme, `[data-testid="org-roles"]`, "none")

	// Frank's page: his Berlin day shift and his direct role at HQ.
	run(t, acme, "organization page", chromedp.Navigate(bff+"/admin/organization"), chromedp.WaitVisible("#employees-table"))
	linkTo(t, acme, "#employees-table", "Frank")
	waitText(t, acme, `[data-testid="shifts"]`, "Europe/Berlin")
	waitTrue(t, acme, "the schedule editor opens with Frank's shift", `document.getElementById("schedule-timezone").value === "Europe/Berlin" &&
		document.querySelectorAll("#shift-list .shift").length === 1 &&
		Array.from(document.querySelectorAll("#shift-list .days input:checked")).map((c) => c.value).join() === "MON,TUE,WED,THU,FRI" &&
		document.querySelector("#shift-list .start").value === "09:00" && document.querySelector("#shift-list .end").value === "17:00"`)
	waitText(t, acme, "#employee-location-roles", "HQ")
	screenshot(t, acme, "system-employee")

	// Charlie holds DISARMER at HQ through Night Watch, and his page says so.
	run(t, acme, "organization page", chromedp.Navigate(bff+"/admin/organization"), chromedp.WaitVisible("#employees-table"))
	linkTo(t, acme, "#employees-table", "Charlie")
	waitText(t, acme, "#employee-location-roles", "through team Night Watch")

	// HQ: its dealer SecureCo chosen in the editor, and its systems.
	run(t, acme, "organization page", chromedp.Navigate(bff+"/admin/organization"), chromedp.WaitVisible("#locations-table"))
	linkTo(t, acme, "#locations-table", "HQ")
	waitText(t, acme, `[data-testid="dealer"]`, "SecureCo")
	waitTrue(t, acme, "the dealer editor opens with SecureCo", `(s => s.selectedOptions[0].textContent === "SecureCo")(document.getElementById("location-dealer-dealerId"))`)
	// Acme's administrator holds no role that views systems, and the page
	// says why the list is empty.
	waitText(t, acme, "#systems-none", "no role")
	// Who has access to HQ: Frank directly with his Berlin shift, Charlie
	// through Night Watch, Oscar through his customer roles; the dealer's
	// employees are pointed to.
	waitText(t, acme, "#location-access-table", "Frank")
	waitText(t, acme, "#location-access-table", "Europe/Berlin")
	waitText(t, acme, "#location-access-table", "Granted through team Night Watch (DISARMER)")
	waitText(t, acme, "#location-access-table", "role DISARMER in Acme")
	waitText(t, acme, "#location-access", "SecureCo")
	screenshot(t, acme, "system-location")
	// HQ has security systems: deleting it is confirmed, then refused.
	run(t, acme, "delete HQ", chromedp.Click(`#delete-location button[type=submit]`, chromedp.NodeVisible))
	waitText(t, acme, "#delete-location .confirm", "Everyone loses the roles held here")
	run(t, acme, "confirm", chromedp.Click(`#delete-location .confirm-yes`, chromedp.NodeVisible))
	waitText(t, acme, "#delete-location .form-msg", "still has security systems")
	waitText(t, acme, `[data-testid="entity-name"]`, "HQ")

	// The organization's tables are searched by name.
	run(t, acme, "search the employees", chromedp.Navigate(bff+"/admin/organization"), chromedp.WaitVisible("#employees-q"),
		chromedp.SendKeys("#employees-q", "fra"), chromedp.Submit("#employees-q"), chromedp.WaitVisible(`#employees-q[value="fra"]`))
	waitTrue(t, acme, "only Frank", `(r => r.length === 1 && r[0].textContent.includes("Frank"))(document.querySelectorAll("#employees-table tbody tr"))`)

	// Frank's account: enabled; disabled after a confirmation; enabled
	// again.
	linkTo(t, acme, "#employees-table", "Frank")
	waitText(t, acme, `[data-testid="account-status"]`, "Enabled")
	run(t, acme, "disable Frank", chromedp.Click(`#employee-account button[type=submit]`, chromedp.NodeVisible))
	waitText(t, acme, "#employee-account .confirm", "can no longer sign in")
	run(t, acme, "confirm", chromedp.Click(`#employee-account .confirm-yes`, chromedp.NodeVisible))
	waitText(t, acme, `[data-testid="account-status"]`, "Disabled")
	screenshot(t, acme, "system-employee-disabled")
	waitText(t, acme, "#employee-account button[type=submit]", "Enable Frank")
	run(t, acme, "enable Frank", chromedp.Click(`#employee-account button[type=submit]`, chromedp.NodeVisible))
	waitText(t, acme, `[data-testid="account-status"]`, "Enabled")

	// A new location and a new team, each deleted from its page after a
	// confirmation, and gone from the organization's tables.
	for _, c := range []struct{ form, name, table, del string }{
		{"create-location", "Pop-up Store", "#locations-table", "#delete-location"},
		{"create-team", "Temp Crew", "#teams-table", "#delete-team"},
	} {
		run(t, acme, "organization page", chromedp.Navigate(bff+"/admin/organization"), chromedp.WaitVisible("#"+c.form))
		run(t, acme, "create "+c.name, chromedp.SendKeys("#"+c.form+"-name", c.name), chromedp.Click("#"+c.form+" button[type=submit]", chromedp.NodeVisible))
		waitText(t, acme, "#"+c.form+" .result", "Created "+c.name)
		run(t, acme, "organization page", chromedp.Navigate(bff+"/admin/organization"), chromedp.WaitVisible(c.table))
		linkTo(t, acme, c.table, c.name)
		run(t, acme, "delete "+c.name, chromedp.Click(c.del+" button[type=submit]", chromedp.NodeVisible))
		waitText(t, acme, c.del+" .confirm", "This cannot be undone")
		run(t, acme, "confirm", chromedp.Click(c.del+" .confirm-yes", chromedp.NodeVisible))
		waitTrue(t, acme, "the organization page after deleting "+c.name, `location.pathname.startsWith("/admin/organizations/customer/") && !location.pathname.includes("/locations/") && !location.pathname.includes("/teams/")`)
		run(t, acme, "organization page", chromedp.Navigate(bff+"/admin/organization"), chromedp.WaitVisible(c.table))
		if strings.Contains(evalJS[string](t, acme, fmt.Sprintf(`document.querySelector(%q).textContent`, c.table)), c.name) {
			t.Errorf("%s is still listed after its deletion", c.name)
		}
	}

	// Night Watch: removing Alice, who is no member, says so.
	run(t, acme, "organization page", chromedp.Navigate(bff+"/admin/organization"), chromedp.WaitVisible("#teams-table"))
	linkTo(t, acme, "#teams-table", "Night Watch")
	waitText(t, acme, `[data-testid="members"]`, "Charlie")
	waitText(t, acme, `[data-testid="team-roles"]`, "DISARMER")
	selectByLabel(t, acme, "#remove-member-path-employeeId", "Alice")
	run(t, acme, "remove a non-member", chromedp.Click(`#remove-member button[type=submit]`, chromedp.NodeVisible))
	waitText(t, acme, "#remove-member .form-msg", "is not a member of Night Watch; nothing was changed")

	// A second team named Night Watch is only made on purpose.
	run(t, acme, "organization page", chromedp.Navigate(bff+"/admin/organization"), chromedp.WaitVisible("#create-team"))
	run(t, acme, "create a namesake", chromedp.SendKeys("#create-team-name", "night watch"), chromedp.Click(`#create-team button[type=submit]`, chromedp.NodeVisible))
	waitText(t, acme, "#create-team .confirm", "already one named")
	run(t, acme, "cancel the namesake", chromedp.Click(`#create-team .confirm-no`, chromedp.NodeVisible))

	// SecureCo's administrator sees WatchTower chosen as the provider.
	secure := person(t, browser)
	login(t, secure, bff, "admin@secureco.example", pw["admin@secureco.example"], "")
	run(t, secure, "dealer page", chromedp.Navigate(bff+"/admin/organization"), chromedp.WaitVisible("#dealer-provider"))
	waitTrue(t, secure, "the provider editor opens with WatchTower", `(s => s.selectedOptions[0].textContent === "WatchTower")(document.getElementById("dealer-provider-monitoringProviderId"))`)

	// The platform administrator: organizations from the services, a
	// search, a namesake warning, and a generated password shown whole.
	op := person(t, browser)
	login(t, op, bff, "admin", adminPW, "")
	run(t, op, "platform page", chromedp.Navigate(bff+"/admin/platform"), chromedp.WaitVisible("#customers-list"))
	waitText(t, op, "#customers-list", "Acme")
	waitText(t, op, "#customers-list", "Foo Corp")
	waitText(t, op, "#dealers-list", "SecureCo")
	waitText(t, op, "#dealers-list", "GuardAll")
	waitText(t, op, "#providers-list", "WatchTower")
	run(t, op, "search dealers", chromedp.SendKeys("#dealers-list-q", "guard"), chromedp.Click(`#dealers-list button[type=submit]`, chromedp.NodeVisible))
	waitTrue(t, op, "only GuardAll", `(r => r.length === 1 && r[0].textContent.includes("GuardAll"))(document.querySelectorAll("#dealers-list tbody tr"))`)
	screenshot(t, op, "system-platform")
	run(t, op, "create a second Acme",
		chromedp.SendKeys("#create-customer-name", "Acme"),
		chromedp.SendKeys("#create-customer-administrator-email", "boss@acme2.example"),
		chromedp.SendKeys("#create-customer-administrator-firstName", "Bo"),
		chromedp.SendKeys("#create-customer-administrator-lastName", "Ss"),
		chromedp.Click(`#create-customer button[type=submit]`, chromedp.NodeVisible))
	waitText(t, op, "#create-customer .confirm", "already one named")
	run(t, op, "create Globex instead", chromedp.Click(`#create-customer .confirm-no`, chromedp.NodeVisible),
		chromedp.SetValue("#create-customer-name", "Globex"), chromedp.Click(`#create-customer button[type=submit]`, chromedp.NodeVisible))
	waitText(t, op, "#create-customer .result", "Created Globex.")
	eventually(t, "the initial password shown whole", func() (bool, string) {
		got, err := chromedp.Run(op, chromedp.Evaluate[[]int](`(i => i ? [i.value.length, i.scrollWidth, i.clientWidth] : [0, 0, 0])(document.querySelector('#create-customer [data-testid="initial-password"]'))`))
		if err != nil {
			return false, err.Error()
		}
		return got[0] >= 16 && got[1] <= got[2], fmt.Sprintf("length, scroll width, width: %v", got)
	})
	if html := evalJS[string](t, op, `document.querySelector("#create-customer .result").textContent`); strings.Contains(html, "{") {
		t.Errorf("the result shows JSON: %s", html)
	}
	// A field's problem names the field by its label.
	run(t, op, "a short password", chromedp.Navigate(bff+"/admin/platform"), chromedp.WaitVisible("#create-provider"),
		chromedp.SendKeys("#create-provider-name", "Night Owls"),
		chromedp.SendKeys("#create-provider-administrator-email", "owl@owls.example"),
		chromedp.SendKeys("#create-provider-administrator-firstName", "Ow"),
		chromedp.SendKeys("#create-provider-administrator-lastName", "L"),
		chromedp.SendKeys("#create-provider-administrator-password", "short"),
		chromedp.Click(`#create-provider button[type=submit]`, chromedp.NodeVisible))
	waitText(t, op, "#create-provider-administrator-password-msg", "Initial password: ")

	// The platform administrator views every system: HQ's are listed on
	// its (read-only) location page.
	run(t, op, "Acme's page", chromedp.Navigate(bff+"/admin/platform"), chromedp.WaitVisible("#customers-list tbody tr"))
	href := evalJS[string](t, op, `(Array.from(document.querySelectorAll("#customers-list a")).find((a) => a.textContent === "Acme") || {}).href || ""`)
	run(t, op, "open Acme", chromedp.Navigate(href), chromedp.WaitVisible("#locations-table"))
	if n := evalJS[int](t, op, `document.querySelectorAll("form.api-form").length`); n != 0 {
		t.Errorf("the platform administrator gets %d editors on Acme's page", n)
	}
	linkTo(t, op, "#locations-table", "HQ")
	waitText(t, op, "#location-systems", "HQ Front Door")

	// The audit: the demo's arming is there, allowed, under provide.
	run(t, op, "audit page", chromedp.Navigate(bff+"/audit"), chromedp.WaitVisible("#audit-table"))
	waitText(t, op, "#audit-table", "HQ Front Door")
	waitText(t, op, "#audit-table", "provide")
	run(t, op, "only denials", chromedp.SetValue("#audit-decision", "denied"), chromedp.Click(`#audit-filter button[type=submit]`, chromedp.NodeVisible), chromedp.WaitVisible("#audit-clear"))
	if n := evalJS[int](t, op, `Array.from(document.querySelectorAll('#audit-table [data-testid="decision"]')).filter((d) => !d.textContent.includes("denied")).length`); n != 0 {
		t.Errorf("the denied filter shows %d other decisions", n)
	}
	screenshot(t, op, "system-audit")
	// The customer's administrator sees the audit of Acme's systems.
	run(t, acme, "Acme's audit", chromedp.Navigate(bff+"/audit"), chromedp.WaitVisible("#audit-table"))
	waitText(t, acme, "#audit-table", "HQ Front Door")

	// A phone: the organization, employee and audit pages fit 375 px.
	run(t, acme, "a phone's viewport", chromedp.EmulateViewport(375, 800))
	for _, page := range []struct{ path, wait string }{{"/admin/organization", "#employees-table"}, {"/audit", "#audit-table"}} {
		run(t, acme, page.path+" at 375 px", chromedp.Navigate(bff+page.path), chromedp.WaitVisible(page.wait))
		noSidewaysScroll(t, acme, page.path)
	}
	run(t, acme, "organization page at 375 px", chromedp.Navigate(bff+"/admin/organization"), chromedp.WaitVisible("#employees-table"))
	linkTo(t, acme, "#employees-table", "Frank")
	noSidewaysScroll(t, acme, "Frank's page")
	screenshot(t, acme, "system-employee-375")
}
