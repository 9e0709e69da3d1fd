package iam

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/realguardio/realguardio/internal/platform/chromiumtest"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write the login page's screenshots to internal/bff/testdata/screenshots")

// screenshotDir is where the BFF keeps the UI's screenshots; the login
// page is part of that UI, only served by another origin.
var screenshotDir = filepath.Join("..", "bff", "testdata", "screenshots")

// TestBrowserLoginPage opens the login page in Chromium at a phone's width
// (375 px) and a desktop's (1280 px): the page must not scroll sideways,
// with or without its error, the username field must say "E-mail address"
// while still taking a plain username (admin), a wrong password must show
// the error in the page, and the right one must still reach the client's
// callback (the CSRF cookie and the form-action CSP intact). At 375 px the
// other refusals (throttled, CSRF, an expired link) must read plainly too.
func TestBrowserLoginPage(t *testing.T) {
	browser := chromiumtest.Start(t)
	e := newEnv(t, envOpts{})
	for _, width := range []int64{375, 1280} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			ctx := browserTab(t, browser, width)
			openLoginPage(t, ctx, e)
			if got := browserEval[string](t, ctx, `document.querySelector('label[for="username"]').textContent.trim()`); got != "E-mail address" {
				t.Errorf("the username field's label is %q", got)
			}
			if got := browserEval[string](t, ctx, `(u => u.type + " " + u.autocomplete)(document.querySelector('input[name="username"]'))`); got != "text username" {
				t.Errorf("the username field is %q, want type text (admin is no e-mail address) with autocomplete username", got)
			}
			noOverflow(t, ctx, width)
			screenshotPage(t, ctx, fmt.Sprintf("iam-login-%d", width))

			submitPassword(t, ctx, AdminUsername, "not-the-password")
			if got := errorText(t, ctx); got != invalidCredentials {
				t.Errorf("the error reads %q, want %q", got, invalidCredentials)
			}
			if got := browserEval[string](t, ctx, `document.querySelector('input[name="username"]').value`); got != AdminUsername {
				t.Errorf("the form forgot the username: %q", got)
			}
			noOverflow(t, ctx, width)
			screenshotPage(t, ctx, fmt.Sprintf("iam-login-error-%d", width))

			submitPassword(t, ctx, "", testAdminPW)
			waitCallback(t, ctx)
			<-e.codes
		})
	}

	t.Run("refusals", func(t *testing.T) {
		const width = 375
		ctx := browserTab(t, browser, width)
		e.createUser(t, "gina@example.com", "gina-password")

		// A stranger's browser that guesses: five wrong passwords, then
		// the throttle refuses even the right one, saying when to retry.
		openLoginPage(t, ctx, e)
		for i := 0; i < 5; i++ {
			username := ""
			if i == 0 {
				username = "gina@example.com"
			}
			submitPassword(t, ctx, username, "guess-"+fmt.Sprint(i))
			if got := errorText(t, ctx); got != invalidCredentials {
				t.Fatalf("guess %d: the error reads %q", i, got)
			}
		}
		submitPassword(t, ctx, "", "gina-password")
		if got := errorText(t, ctx); !strings.HasPrefix(got, "Too many failed attempts; try again in 15 minutes.") {
			t.Errorf("the throttled page reads %q", got)
		}
		noOverflow(t, ctx, width)
		screenshotPage(t, ctx, "iam-login-throttled-375")

		// A form whose CSRF cookie is gone (as after a cross-site post):
		// refused before any password check, in words.
		openLoginPage(t, ctx, e)
		if _, err := chromedp.Call(ctx, network.DeleteCookies, network.DeleteCookiesParams{Name: csrfCookie, URL: e.issuer + loginPath}); err != nil {
			t.Fatalf("delete the CSRF cookie: %v", err)
		}
		submitPassword(t, ctx, AdminUsername, testAdminPW)
		if got := browserEval[string](t, ctx, `document.querySelector('[role="alert"]').textContent.trim()`); !strings.Contains(got, "Your password was not checked") || !strings.Contains(got, "sign in again") {
			t.Errorf("the CSRF refusal reads %q", got)
		}
		noOverflow(t, ctx, width)
		screenshotPage(t, ctx, "iam-login-refused-375")

		// A link that is no longer valid.
		browserDo(t, ctx, "open an unknown sign-in link", chromedp.Navigate(e.issuer+loginPath+"?authRequestID=unknown"), chromedp.WaitVisible(`[role="alert"]`))
		if got := browserEval[string](t, ctx, `document.querySelector('[role="alert"]').textContent.trim()`); !strings.Contains(got, "no longer valid") {
			t.Errorf("the expired-link page reads %q", got)
		}
		noOverflow(t, ctx, width)
	})
}

// browserTab opens a tab width px wide in a browser context of its own, so
// that no device, CSRF or session cookie of another tab is seen.
func browserTab(t *testing.T, browser context.Context, width int64) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancelT)
	browserDo(t, ctx, "set the viewport", chromedp.EmulateViewport(width, 800))
	return ctx
}

// openLoginPage starts an authorization request of the BFF's client
// (prompt=login, so an IAM session does not skip the form) and waits for
// the login form.
func openLoginPage(t *testing.T, ctx context.Context, e *env) {
	t.Helper()
	authURL := e.bffConfig().AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", "login"))
	browserDo(t, ctx, "open the login page", chromedp.Navigate(authURL), chromedp.WaitVisible(`input[name="username"]`))
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasPrefix(loc, e.issuer+loginPath+"?") {
		t.Fatalf("the authorization request led to %s, not the login page", loc)
	}
}

// submitPassword types username (unless "": the form keeps the last one)
// and password, submits the form and waits for the page that answers it.
// The old page is marked first, so that an error still shown by the page
// before is not taken for the new answer.
func submitPassword(t *testing.T, ctx context.Context, username, password string) {
	t.Helper()
	steps := []chromedp.Action[chromedp.Void]{chromedp.Evaluate[chromedp.Void](`window.rgBeforeSubmit = true`)}
	if username != "" {
		steps = append(steps, chromedp.SendKeys(`input[name="username"]`, username))
	}
	steps = append(steps, chromedp.SendKeys(`input[name="password"]`, password), chromedp.Submit(`input[name="password"]`))
	browserDo(t, ctx, "submit the login form", steps...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if done, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.rgBeforeSubmit === undefined && document.readyState === "complete"`)); err == nil && done {
			return
		}
		if time.Now().After(deadline) {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			t.Fatalf("no answer to the login form within 30 s; the browser is at %s", loc)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func errorText(t *testing.T, ctx context.Context) string {
	t.Helper()
	return browserEval[string](t, ctx, `document.getElementById('login-error').textContent.trim()`)
}

// waitCallback waits until the browser shows the client's callback.
func waitCallback(t *testing.T, ctx context.Context) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		body, _ := chromedp.Run(ctx, chromedp.Text("body"))
		if strings.Contains(body, "callback received") {
			return
		}
		if time.Now().After(deadline) {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			t.Fatalf("the right password did not reach the callback; the browser is at %s showing %q", loc, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func browserDo(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("%s: %v (the browser is at %s)", what, err, loc)
	}
}

func browserEval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// noOverflow fails the test when the page is wider than the viewport, that
// is when a phone would have to scroll sideways.
func noOverflow(t *testing.T, ctx context.Context, width int64) {
	t.Helper()
	got := browserEval[[]int64](t, ctx, `[document.documentElement.scrollWidth, window.innerWidth]`)
	if got[1] != width {
		t.Fatalf("the viewport is %d px wide, want %d", got[1], width)
	}
	if got[0] > got[1] {
		t.Errorf("the page is %d px wide in a %d px viewport: it scrolls sideways", got[0], got[1])
	}
}

// screenshotPage saves the whole page as name.png in screenshotDir when
// the test runs with -update-screenshots.
func screenshotPage(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if !*updateScreenshots {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
