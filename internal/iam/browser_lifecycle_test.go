package iam

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/realguardio/realguardio/internal/platform/chromiumtest"
)

// submitFields types each value into the input named by its key, in
// order, submits the form of the last one and waits for the page that
// answers, as submitPassword does.
func submitFields(t *testing.T, ctx context.Context, fields ...[2]string) {
	t.Helper()
	steps := []chromedp.Action[chromedp.Void]{chromedp.Evaluate[chromedp.Void](`window.rgBeforeSubmit = true`)}
	for _, f := range fields {
		sel := `input[name="` + f[0] + `"]`
		steps = append(steps, chromedp.SendKeys(sel, f[1]))
	}
	steps = append(steps, chromedp.Submit(`input[name="`+fields[len(fields)-1][0]+`"]`))
	browserDo(t, ctx, "submit the form", steps...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if done, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.rgBeforeSubmit === undefined && document.readyState === "complete"`)); err == nil && done {
			return
		}
		if time.Now().After(deadline) {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			t.Fatalf("no answer to the form within 30 s; the browser is at %s", loc)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// noCodeIssued fails the test if the callback received a code. Unlike
// noCode it ignores the browser's own requests to the callback's server
// (its favicon), which carry no query.
func noCodeIssued(t *testing.T, e *env, when string) {
	t.Helper()
	for {
		select {
		case q := <-e.codes:
			if q.Get("code") != "" {
				t.Fatalf("%s: the callback received a code", when)
			}
		default:
			return
		}
	}
}

func pageTitle(t *testing.T, ctx context.Context) string {
	t.Helper()
	return browserEval[string](t, ctx, `document.getElementById('title').textContent.trim()`)
}

// labels returns the texts of the page's field labels.
func labels(t *testing.T, ctx context.Context) []string {
	t.Helper()
	return browserEval[[]string](t, ctx, `Array.from(document.querySelectorAll('.field label')).map(l => l.textContent.trim())`)
}

// waitCode waits for the code the callback received, skipping the
// browser's requests without one.
func waitCode(t *testing.T, e *env) {
	t.Helper()
	for {
		select {
		case q := <-e.codes:
			if q.Get("code") != "" {
				return
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the callback received no code")
		}
	}
}

// TestBrowserLifecycle drives the lifecycle pages in Chromium at a phone's
// width (375 px) and a desktop's: the forced password change at the first
// login, which then reaches the client; a TOTP enrolment on the account
// page and a login with a code the test computes; an administrator's reset
// link redeemed on the reset page. No page scrolls sideways; each is the
// login page's look (the same card, labelled fields).
func TestBrowserLifecycle(t *testing.T) {
	browser := chromiumtest.Start(t)
	e := newEnv(t, envOpts{})
	admin := e.adminToken(t)
	for _, width := range []int64{375, 1280} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			user := fmt.Sprintf("first-%d@example.com", width)
			id := e.createUserMustChange(t, user, "initial-password")

			// The first login asks for a new password before the code.
			ctx := browserTab(t, browser, width)
			openLoginPage(t, ctx, e)
			submitPassword(t, ctx, user, "initial-password")
			if got := pageTitle(t, ctx); got != "Choose a new password" {
				t.Fatalf("after the initial password the page is %q", got)
			}
			if got := strings.Join(labels(t, ctx), "|"); got != "New password|Repeat the new password" {
				t.Errorf("the change form's labels are %q", got)
			}
			noCodeIssued(t, e, "the initial password")
			noOverflow(t, ctx, width)
			screenshotPage(t, ctx, fmt.Sprintf("iam-password-change-%d", width))
			submitFields(t, ctx, [2]string{"new_password", "chosen-password"}, [2]string{"confirm_password", "chosen-passw0rd"})
			if got := errorText(t, ctx); !strings.Contains(got, "not the same") {
				t.Errorf("a mistyped confirmation reads %q", got)
			}
			noOverflow(t, ctx, width)
			submitFields(t, ctx, [2]string{"new_password", "chosen-password"}, [2]string{"confirm_password", "chosen-password"})
			waitCallback(t, ctx)
			waitCode(t, e)

			// Enrol a second factor on the account page (this browser's
			// session), then log in with the password and a code.
			browserDo(t, ctx, "open the enrolment page", chromedp.Navigate(e.issuer+accountTOTPPath), chromedp.WaitVisible(`#totp-secret`))
			secret := browserEval[string](t, ctx, `document.getElementById('totp-secret').textContent.trim()`)
			if uri := browserEval[string](t, ctx, `document.getElementById('totp-uri').textContent`); !strings.HasPrefix(uri, "otpauth://totp/RealGuardIO:") || !strings.Contains(uri, "secret="+secret) {
				t.Errorf("the otpauth URI reads %q", uri)
			}
			noOverflow(t, ctx, width)
			screenshotPage(t, ctx, fmt.Sprintf("iam-totp-enrol-%d", width))
			code, _ := totpCodeAt(secret, totpStep(e.clock.now()))
			submitFields(t, ctx, [2]string{"code", code})
			if got := pageTitle(t, ctx); got != "Second factor set up" {
				t.Fatalf("after the confirmation the page is %q", got)
			}
			openLoginPage(t, ctx, e)
			submitPassword(t, ctx, user, "chosen-password")
			if got := pageTitle(t, ctx); got != "Enter your code" {
				t.Fatalf("after the password the page is %q", got)
			}
			noCodeIssued(t, e, "the password of an account with a factor")
			noOverflow(t, ctx, width)
			screenshotPage(t, ctx, fmt.Sprintf("iam-totp-code-%d", width))
			submitFields(t, ctx, [2]string{"code", wrongTOTP(secret, e.clock.now())})
			if got := errorText(t, ctx); got != wrongCode {
				t.Errorf("a wrong code reads %q", got)
			}
			e.clock.advance(totpPeriod * time.Second)
			code, _ = totpCodeAt(secret, totpStep(e.clock.now()))
			submitFields(t, ctx, [2]string{"code", code})
			waitCallback(t, ctx)
			waitCode(t, e)

			// An administrator's reset: the link fills the code; the new
			// password replaces the old, and the factor is gone.
			st, out := call(t, http.MethodPost, e.issuer+"/api/users/"+id+"/password-reset", admin, nil)
			if st != http.StatusCreated {
				t.Fatalf("reset: %d %v", st, out)
			}
			rctx := browserTab(t, browser, width)
			browserDo(t, rctx, "open the reset link", chromedp.Navigate(out["resetUrl"].(string)), chromedp.WaitVisible(`input[name="new_password"]`))
			if got := browserEval[string](t, rctx, `document.querySelector('input[name="code"]').value`); got != out["code"] {
				t.Errorf("the link filled the code field with %q", got)
			}
			if got := strings.Join(labels(t, rctx), "|"); got != "Reset code|New password|Repeat the new password" {
				t.Errorf("the reset form's labels are %q", got)
			}
			noOverflow(t, rctx, width)
			screenshotPage(t, rctx, fmt.Sprintf("iam-reset-%d", width))
			submitFields(t, rctx, [2]string{"new_password", "reset-password"}, [2]string{"confirm_password", "reset-password"})
			if got := pageTitle(t, rctx); got != "Password set" {
				t.Fatalf("after the reset the page is %q", got)
			}
			noOverflow(t, rctx, width)
			openLoginPage(t, rctx, e)
			submitPassword(t, rctx, user, "reset-password")
			waitCallback(t, rctx)
			waitCode(t, e)
		})
	}
}
