package browsertest

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/realguardio/realguardio/internal/apiclient"
	"github.com/realguardio/realguardio/internal/demo"
	"github.com/realguardio/realguardio/internal/system"
	"github.com/realguardio/realguardio/internal/systemtest"
)

// TestDeletedTeamRevokesInBrowser deletes team Night Watch from its page
// under the two strategies whose decisions follow the owners' events
// (replicate: the Security System Service's replica; delegate: the
// OpenFGA tuples of the authorization sync): Charlie, whose only right was
// the team's DISARMER at HQ, watches his dashboard lose HQ's systems,
// because the deletion's revocation events reach the consumers.
func TestDeletedTeamRevokesInBrowser(t *testing.T) {
	for _, strategy := range []string{"replicate", "delegate"} {
		t.Run(strategy, func(t *testing.T) {
			browser := newBrowser(t)
			const adminPW = "delete-admin-password-1"
			sys := systemtest.Start(t, systemtest.Options{Strategy: strategy, AdminPassword: adminPW})
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

			charlie := person(t, browser)
			login(t, charlie, bff, "charlie@acme.example", pw["charlie@acme.example"], "")
			run(t, charlie, "Charlie's dashboard", chromedp.WaitVisible("#systems"))
			waitText(t, charlie, "#systems", "HQ Server Room")
			if n := evalJS[int](t, charlie, `document.querySelectorAll("#systems tbody tr").length`); n == 0 {
				t.Fatal("Charlie sees no system before the deletion")
			}

			acme := person(t, browser)
			login(t, acme, bff, "admin@acme.example", pw["admin@acme.example"], "")
			run(t, acme, "organization page", chromedp.Navigate(bff+"/admin/organization"), chromedp.WaitVisible("#teams-table"))
			linkTo(t, acme, "#teams-table", "Night Watch")
			run(t, acme, "delete Night Watch", chromedp.Click(`#delete-team button[type=submit]`, chromedp.NodeVisible))
			waitText(t, acme, "#delete-team .confirm", "Its one member loses the roles it holds at 1 location")
			run(t, acme, "confirm", chromedp.Click(`#delete-team .confirm-yes`, chromedp.NodeVisible), chromedp.WaitVisible("#teams-h"))

			// The revocation reaches the strategy's facts within a moment;
			// Charlie's reloaded dashboard then has nothing at HQ.
			eventually(t, "Charlie's dashboard without HQ", func() (bool, string) {
				if err := chromedp.Do(charlie, chromedp.Reload(), chromedp.WaitVisible("footer")); err != nil {
					return false, err.Error()
				}
				// The page is rendered by the server: with the footer shown,
				// the list (or its empty text) is complete.
				state, err := chromedp.Run(charlie, chromedp.Evaluate[string](`document.getElementById("no-systems") ? "empty" :
					Array.from(document.querySelectorAll("#systems tbody tr")).map((r) => r.textContent.trim().split("\n")[0]).join(", ")`))
				if err != nil {
					return false, err.Error()
				}
				return state == "empty", state
			})
		})
	}
}
