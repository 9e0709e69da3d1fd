package customer_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/apiclient"
	"github.com/realguardio/realguardio/internal/customer"
	"github.com/realguardio/realguardio/internal/orgkit/orgkittest"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

// TestWithRealIAM runs the article's employee-roles scenario with the real
// IAM Service: the customer service provisions the accounts through the
// IAM user API with its client credentials, and every token comes from a
// real login or a real client-credentials grant.
func TestWithRealIAM(t *testing.T) {
	s := orgkittest.StartIAM(t, customer.DefaultAudience)
	db := sqldbtest.OpenSQLite(t)
	svc, err := customer.New(context.Background(), customer.Config{Issuer: s.URL, IAMClientID: customer.DefaultAudience, IAMClientSecret: orgkittest.ClientSecret},
		customer.Deps{Logger: slog.New(slog.DiscardHandler), DB: db})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(srv.Close)
	e := &env{t: t, db: db, url: srv.URL}

	admin := s.Login(t, "admin", orgkittest.AdminPassword)
	out := e.must(201, "POST", "/customers", admin, map[string]any{
		"name": "Acme", "administrator": map[string]any{"email": "alice@acme.test", "firstName": "Alice", "lastName": "A", "password": "alice-password-1"},
	})
	acme := out["id"].(string)
	e.must(201, "POST", "/customers", admin, map[string]any{
		"name": "Foo", "administrator": map[string]any{"email": "bob@foo.test", "firstName": "Bob", "lastName": "B", "password": "bob-password-1"},
	})
	// The administrators' passwords were chosen by the platform
	// administrator, the employee's generated one by the service: each
	// is replaced at the first login (TestInitialPasswordMustChange).
	alice := s.FirstLogin(t, "alice@acme.test", "alice-password-1", "alice-own-password")
	bob := s.FirstLogin(t, "bob@foo.test", "bob-password-1", "bob-own-password")
	carol := e.must(201, "POST", "/customers/"+acme+"/employees", alice, map[string]any{"email": "carol@acme.test", "firstName": "Carol", "lastName": "C"})
	carolToken := s.FirstLogin(t, "carol@acme.test", carol["initialPassword"].(string), "carol-own-password")

	// Carol forgot her password: Alice, her organization's administrator,
	// gets a one-time reset code from the IAM through this service; Bob
	// and Carol herself get none. Carol chooses a new one on the IAM's page.
	resetPath := "/customers/" + acme + "/employees/" + carol["id"].(string) + "/password-reset"
	e.expect(403, "", "POST", resetPath, bob, nil)
	e.expect(403, "", "POST", resetPath, carolToken, nil)
	e.expect(403, "", "POST", resetPath, admin, nil)
	code := e.must(201, "POST", resetPath, alice, nil)
	if code["userId"] != carol["userId"] || code["code"] == "" {
		t.Fatalf("reset answer %v", code)
	}
	redeemResetLink(t, code["resetUrl"].(string), "carol-chosen-password")
	carolToken = s.Login(t, "carol@acme.test", "carol-chosen-password")

	path := "/customers/" + acme + "/employees/" + carol["id"].(string) + "/roles"
	body := map[string]any{"roles": []string{disarmer}}
	e.expect(403, "", "PUT", path, admin, body)      // REALGUARDIO_ADMIN has no role inside the customer
	e.expect(403, "", "PUT", path, bob, body)        // administrator of another customer
	e.expect(403, "", "PUT", path, carolToken, body) // not an administrator
	e.must(200, "PUT", path, alice, body)

	if p := e.must(200, "GET", "/profiles", carolToken, nil); p["firstName"] != "Carol" {
		t.Fatalf("carol's profile = %v", p)
	}
	e.expect(403, "", "GET", "/profiles", admin, nil) // no CUSTOMER_EMPLOYEE

	facts := s.ServiceToken(t, orgkittest.FactsClient, "authz:read")
	subj := e.must(200, "GET", "/authz/subjects/"+carol["userId"].(string), facts, nil)
	if org := subj["organization"].(map[string]any); org["id"] != acme {
		t.Fatalf("subject facts = %v", subj)
	}
	e.must(200, "GET", "/authz/subjects/"+carol["userId"].(string), carolToken, nil)
	e.expect(403, "", "GET", "/authz/subjects/"+carol["userId"].(string), alice, nil)
	e.expect(403, "", "GET", "/authz/subjects/"+carol["userId"].(string), s.ServiceToken(t, customer.DefaultAudience, "users:write"), nil)

	// Alice disables Carol's account and enables it again; the IAM's
	// own record follows. Bob and Carol may do neither, Alice may not
	// disable herself, and the platform administrator reads the status.
	account := "/customers/" + acme + "/employees/" + carol["id"].(string) + "/account"
	if st := e.must(200, "GET", account, alice, nil); st["enabled"] != true || st["userId"] != carol["userId"] {
		t.Fatalf("account = %v", st)
	}
	e.expect(403, "", "GET", account, bob, nil)
	e.expect(403, "", "PUT", account, carolToken, map[string]any{"enabled": false})
	e.expect(403, "", "PUT", account, admin, map[string]any{"enabled": false})
	e.expect(422, "enabled", "PUT", account, alice, map[string]any{})
	e.expect(422, "enabled", "PUT", "/customers/"+acme+"/employees/"+out["administrator"].(map[string]any)["employeeId"].(string)+"/account", alice, map[string]any{"enabled": false})
	if st := e.must(200, "PUT", account, alice, map[string]any{"enabled": false}); st["enabled"] != false {
		t.Fatalf("disable = %v", st)
	}
	iamUser := func() bool {
		u, err := s.Client(customer.DefaultAudience).GetUser(context.Background(), carol["userId"].(string))
		if err != nil {
			t.Fatal(err)
		}
		return u.Enabled
	}
	if iamUser() {
		t.Fatal("the IAM account is still enabled")
	}
	if st := e.must(200, "GET", account, admin, nil); st["enabled"] != false {
		t.Fatalf("the platform administrator reads %v", st)
	}
	e.must(200, "PUT", account, alice, map[string]any{"enabled": true})
	if !iamUser() {
		t.Fatal("the IAM account was not enabled again")
	}
	s.Login(t, "carol@acme.test", "carol-chosen-password")
}

// TestInitialPasswordMustChange: an employee whom a customer's
// administrator created with an initial password logs in with it and is
// sent to the IAM's change-password page; no code reaches the client and
// every new login asks again, until a new password is chosen there (the
// initial one is refused as the new one); the login then completes with
// tokens the service accepts, and from then on the employee logs in
// normally with the new password only.
func TestInitialPasswordMustChange(t *testing.T) {
	s := orgkittest.StartIAM(t, customer.DefaultAudience)
	db := sqldbtest.OpenSQLite(t)
	svc, err := customer.New(context.Background(), customer.Config{Issuer: s.URL, IAMClientID: customer.DefaultAudience, IAMClientSecret: orgkittest.ClientSecret},
		customer.Deps{Logger: slog.New(slog.DiscardHandler), DB: db})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(srv.Close)
	e := &env{t: t, db: db, url: srv.URL}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	admin := s.Login(t, "admin", orgkittest.AdminPassword)
	acme := e.must(201, "POST", "/customers", admin, map[string]any{
		"name": "Acme", "administrator": map[string]any{"email": "alice@acme.test", "firstName": "Alice", "lastName": "A", "password": "alice-password-1"},
	})["id"].(string)
	alice := s.FirstLogin(t, "alice@acme.test", "alice-password-1", "alice-own-password")
	e.must(201, "POST", "/customers/"+acme+"/employees", alice, map[string]any{
		"email": "dave@acme.test", "firstName": "Dave", "lastName": "D", "password": "dave-initial-password",
	})

	p, err := apiclient.Discover(ctx, s.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The scripted login says why it cannot complete.
	if _, err := p.Login(ctx, "dave@acme.test", "dave-initial-password"); !errors.Is(err, apiclient.ErrPasswordChangeRequired) {
		t.Fatalf("login with the initial password: %v, want ErrPasswordChangeRequired", err)
	}
	// As a browser: the initial password leads to the change page at the
	// IAM, not to the client's callback, so no code is issued; a new
	// login (the requirement is the account's, not the browser's) is
	// sent there again.
	var pl *apiclient.PendingLogin
	var browser *http.Client
	var page apiclient.LoginPage
	for range 2 {
		if pl, err = p.StartLogin(ctx); err != nil {
			t.Fatal(err)
		}
		defer pl.Close()
		jar, _ := cookiejar.New(nil)
		browser = &http.Client{Jar: jar, Timeout: 30 * time.Second}
		page, err = apiclient.SubmitLoginForm(ctx, browser, pl.URL, "dave@acme.test", "dave-initial-password")
		if err != nil {
			t.Fatal(err)
		}
		if !page.PasswordChangeRequired || page.Status != http.StatusOK || !strings.HasPrefix(page.URL, s.URL+"/login") {
			t.Fatalf("after the initial password: %d at %s (change page %v): %s", page.Status, page.URL, page.PasswordChangeRequired, page.Snippet)
		}
	}
	// The initial password is no new password: the page is shown again.
	if again, err := apiclient.SubmitPasswordChange(ctx, browser, page, "dave-initial-password"); err == nil || !again.PasswordChangeRequired {
		t.Fatalf("the initial password as the new one: %+v, %v", again, err)
	} else {
		page = again
	}
	done, err := apiclient.SubmitPasswordChange(ctx, browser, page, "dave-own-password")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(done.URL, "/callback") {
		t.Fatalf("after the change: %d at %s: %s", done.Status, done.URL, done.Snippet)
	}
	se, err := pl.Wait(ctx, "")
	if err != nil {
		t.Fatalf("the login after the change: %v", err)
	}
	dave, err := se.AccessToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if prof := e.must(200, "GET", "/profiles", dave, nil); prof["firstName"] != "Dave" {
		t.Fatalf("dave's profile = %v", prof)
	}
	// From now on: a normal login with the new password, none with the
	// initial one.
	if _, err := p.Login(ctx, "dave@acme.test", "dave-own-password"); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}
	if _, err := p.Login(ctx, "dave@acme.test", "dave-initial-password"); err == nil || errors.Is(err, apiclient.ErrPasswordChangeRequired) {
		t.Fatalf("login with the initial password after the change: %v, want a refusal", err)
	}
	// A helper that expects a change it is not asked for says so.
	if _, err := p.LoginChangingPassword(ctx, "dave@acme.test", "dave-own-password", "dave-third-password"); err == nil {
		t.Fatal("LoginChangingPassword without a change asked for succeeded")
	}
}

// redeemResetLink opens an IAM reset link as a browser would and sets
// password.
func redeemResetLink(t *testing.T, link, password string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := c.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]*)"`).FindSubmatch(page)
	code := regexp.MustCompile(`name="code" type="text"[^>]* value="([^"]*)"`).FindSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil || code == nil {
		t.Fatalf("reset page %d: %s", resp.StatusCode, page)
	}
	resp, err = c.PostForm(resp.Request.URL.String(), url.Values{"csrf": {string(m[1])}, "code": {string(code[1])}, "new_password": {password}, "confirm_password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "Password set") {
		t.Fatalf("redeem: %d %s", resp.StatusCode, page)
	}
}
