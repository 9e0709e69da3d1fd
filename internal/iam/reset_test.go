package iam

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/realguardio/realguardio/internal/contract/iamaccounts"
	"github.com/realguardio/realguardio/internal/platform/auth"
)

// adminToken logs the bootstrap administrator in at the BFF's client and
// returns the access token.
func (e *env) adminToken(t *testing.T) string {
	t.Helper()
	cfg := e.bffConfig()
	code, verifier := e.loginCode(t, cfg, AdminUsername, testAdminPW)
	tok, err := cfg.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// serviceToken is a users:write token of the customer service's client.
func (e *env) serviceToken(t *testing.T) string {
	t.Helper()
	tok, err := (&clientcredentials.Config{ClientID: AudienceCustomer, ClientSecret: testSvcSecret, TokenURL: e.issuer + "/oauth/token", Scopes: []string{ScopeUsersWrite}}).Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// redeem opens the reset link in a new browser and sets password.
func redeem(t *testing.T, link, code, password string) (*http.Response, string) {
	t.Helper()
	c := browser(t)
	resp, err := c.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="code"`) {
		t.Fatalf("reset page %d: %s", resp.StatusCode, body)
	}
	return submitPage(t, c, parsePage(t, resp.Request.URL, body), map[string]string{"code": code, "new_password": password, "confirm_password": password})
}

// TestPasswordReset: an administrator's reset answers a one-time code and
// link, never a password; the user redeems it on the reset page (the link
// fills the field), which sets the chosen password, removes the second
// factor and ends every session and refresh token. A code redeems once,
// not after it expires, not after a newer one was issued; only its hash
// is stored. A service resets only the users it created (an
// organization's administrator acts through the organization's service);
// others, and strangers, get what an unknown user gets.
func TestPasswordReset(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOpts{})
	admin := e.adminToken(t)
	id := e.createUser(t, "lost@example.com", "forgotten-password")
	secret := enrolTOTP(t, e, browser(t), "lost@example.com", "forgotten-password")
	_ = secret
	// A live session of the user: a refresh token and a browser session.
	cfg := e.bffConfig()
	c := browser(t)
	verifier := oauth2.GenerateVerifier()
	f, _, _ := startLogin(t, c, cfg.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "login")))
	resp, body := submitLogin(t, c, f, "lost@example.com", "forgotten-password")
	code, _ := totpCodeAt(secret, totpStep(e.clock.now())+1)
	if _, body = submitPage(t, c, parsePage(t, resp.Request.URL, body), map[string]string{"code": code}); body != "callback received" {
		t.Fatalf("login with the factor: %s", body)
	}
	tok, err := cfg.Exchange(ctx, (<-e.codes).Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}

	resetURL := e.issuer + "/api/users/" + id + "/password-reset"
	if st, _ := call(t, http.MethodPost, resetURL, "", nil); st != http.StatusUnauthorized {
		t.Fatalf("a reset without a token: %d", st)
	}
	if st, _ := call(t, http.MethodPost, resetURL, e.serviceToken(t), nil); st != http.StatusNotFound {
		t.Fatalf("a service resetting a user it did not create: %d, want 404", st)
	}
	st, first := call(t, http.MethodPost, resetURL, admin, nil)
	if st != http.StatusCreated {
		t.Fatalf("reset: %d %v", st, first)
	}
	st, out := call(t, http.MethodPost, resetURL, admin, nil)
	if st != http.StatusCreated {
		t.Fatalf("second reset: %d %v", st, out)
	}
	code, link := out["code"].(string), out["resetUrl"].(string)
	if len(code) != resetCodeLen || !strings.HasPrefix(link, e.issuer+resetPath+"?code=") || out["userId"] != id {
		t.Fatalf("reset answer %v", out)
	}
	if _, ok := out["password"]; ok {
		t.Fatal("the reset answered a password")
	}
	var stored int
	if err := e.svc.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM iam_password_resets WHERE code_hash = ?`, code).Scan(&stored); err != nil || stored != 0 {
		t.Fatalf("the code is stored in the clear (%d, %v)", stored, err)
	}
	// The newer code voids the older one.
	if resp, body := redeem(t, first["resetUrl"].(string), first["code"].(string), "chosen-password"); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "not valid") {
		t.Fatalf("the earlier code: %d %s", resp.StatusCode, body)
	}
	// A refused new password does not spend the code.
	if resp, _ := redeem(t, link, code, "short"); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("a short password: %d", resp.StatusCode)
	}
	u, _ := url.Parse(link)
	if u.Query().Get("code") != code {
		t.Fatalf("the link carries %q", u.Query().Get("code"))
	}
	if resp, body := redeem(t, link, code, "chosen-password"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Password set") {
		t.Fatalf("redeem: %d %s", resp.StatusCode, body)
	}
	if resp, body := redeem(t, link, code, "another-password"); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, invalidResetCode) {
		t.Fatalf("the code redeemed twice: %d %s", resp.StatusCode, body)
	}

	// Everything of before ended; the factor is gone; the new password
	// logs in with nothing else owed.
	if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Fatal("the refresh token of before the reset still works")
	}
	if ok, _ := authorizeIn(t, e, c, cfg); ok {
		t.Fatal("the browser session of before the reset still answers")
	}
	if resp, _ := passwordLogin(t, e, browser(t), "lost@example.com", "forgotten-password"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the old password: %d", resp.StatusCode)
	}
	if _, body := passwordLogin(t, e, browser(t), "lost@example.com", "chosen-password"); body != "callback received" {
		t.Fatalf("the new password: %s", body)
	}
	<-e.codes

	// Expired codes do not redeem.
	_, out = call(t, http.MethodPost, resetURL, admin, nil)
	e.clock.advance(e.svc.cfg.PasswordResetLifetime + time.Second)
	if resp, _ := redeem(t, out["resetUrl"].(string), out["code"].(string), "late-password"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("an expired code: %d", resp.StatusCode)
	}

	// A service's own employee.
	svcTok := e.serviceToken(t)
	st, emp := call(t, http.MethodPost, e.issuer+"/api/users", svcTok, map[string]any{
		"username": "employee@example.com", "password": "initial-password", "roles": []string{auth.RoleCustomerEmployee}, "passwordChangeRequired": true,
	})
	if st != http.StatusCreated {
		t.Fatalf("create employee: %d %v", st, emp)
	}
	if st, err := e.svc.store.lifecycle(ctx, e.svc.db, emp["id"].(string)); err != nil || !st.MustChangePassword {
		t.Fatalf("passwordChangeRequired was not recorded: %+v %v", st, err)
	}
	// Through the organization services' client.
	r, err := iamaccounts.New(e.issuer, AudienceCustomer, testSvcSecret, nil).ResetPassword(ctx, emp["id"].(string))
	if err != nil || len(r.Code) != resetCodeLen || r.UserID != emp["id"] || !r.ExpiresAt.After(e.clock.now()) {
		t.Fatalf("the service resetting its employee: %+v %v", r, err)
	}
	// A disabled account gets no code.
	if st, _ := call(t, http.MethodPost, e.issuer+"/api/users/"+emp["id"].(string)+"/disable", svcTok, nil); st != http.StatusOK {
		t.Fatalf("disable: %d", st)
	}
	if st, _ := call(t, http.MethodPost, e.issuer+"/api/users/"+emp["id"].(string)+"/password-reset", svcTok, nil); st != http.StatusConflict {
		t.Fatalf("a reset of a disabled account: %d, want 409", st)
	}
}

// TestResetCodeThrottled: guessing reset codes from one address is
// throttled like passwords.
func TestResetCodeThrottled(t *testing.T) {
	e := newEnv(t, envOpts{})
	for i := 0; i < 5; i++ {
		if resp, _ := redeem(t, e.issuer+resetPath, "guess-"+strings.Repeat("x", i+1), "chosen-password"); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("guess %d: %d", i, resp.StatusCode)
		}
	}
	if resp, body := redeem(t, e.issuer+resetPath, "guess", "chosen-password"); resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "Your code was not checked") {
		t.Fatalf("after five wrong codes: %d %s", resp.StatusCode, body)
	}
}

// TestResetCSRF: the reset form must come from the reset page.
func TestResetCSRF(t *testing.T) {
	e := newEnv(t, envOpts{})
	resp, err := http.PostForm(e.issuer+resetPath, url.Values{"code": {"x"}, "new_password": {"chosen-password"}, "confirm_password": {"chosen-password"}})
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Nothing was changed") {
		t.Fatalf("a post without the page's cookie: %d %s", resp.StatusCode, body)
	}
}

// TestDisableEndsSessions: disabling an account ends its browser sessions
// and refresh tokens at once (rows gone, not only refused).
func TestDisableEndsSessions(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOpts{})
	admin := e.adminToken(t)
	id := e.createUser(t, "leaver@example.com", "leaver-password")
	if _, body := passwordLogin(t, e, browser(t), "leaver@example.com", "leaver-password"); body != "callback received" {
		t.Fatal(body)
	}
	<-e.codes
	count := func() int {
		var n int
		if err := e.svc.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM iam_browser_sessions WHERE user_id = ?`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if count() != 1 {
		t.Fatalf("%d browser sessions after the login", count())
	}
	if st, _ := call(t, http.MethodPost, e.issuer+"/api/users/"+id+"/disable", admin, nil); st != http.StatusOK {
		t.Fatalf("disable: %d", st)
	}
	if n := count(); n != 0 {
		t.Fatalf("%d browser sessions after disabling", n)
	}
}

// TestAccountPasswordChange: a signed-in user changes the password on the
// account page with the current one; a wrong current password changes
// nothing; the change ends the user's other sessions and refresh tokens
// but not this browser's session. Without a session the page says to
// sign in.
func TestAccountPasswordChange(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOpts{})
	e.createUser(t, "self@example.com", "self-password")
	if resp, body := func() (*http.Response, string) {
		resp, err := browser(t).Get(e.issuer + accountPasswordPath)
		if err != nil {
			t.Fatal(err)
		}
		return resp, readBody(t, resp)
	}(); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Sign in first") {
		t.Fatalf("without a session: %d %s", resp.StatusCode, body)
	}

	other := browser(t)
	if _, body := passwordLogin(t, e, other, "self@example.com", "self-password"); body != "callback received" {
		t.Fatal(body)
	}
	<-e.codes
	cfg := e.bffConfig()
	code, verifier := e.loginCode(t, cfg, "self@example.com", "self-password")
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}

	c := browser(t)
	if _, body := passwordLogin(t, e, c, "self@example.com", "self-password"); body != "callback received" {
		t.Fatal(body)
	}
	<-e.codes
	resp, err := c.Get(e.issuer + accountPasswordPath)
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="current_password"`) {
		t.Fatalf("account page %d: %s", resp.StatusCode, body)
	}
	f := parsePage(t, resp.Request.URL, body)
	if resp, _ := submitPage(t, browser(t), f, map[string]string{"current_password": "self-password", "new_password": "x-new-password", "confirm_password": "x-new-password"}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a post from another browser: %d", resp.StatusCode)
	}
	if resp, body := submitPage(t, c, f, map[string]string{"current_password": "wrong-password", "new_password": "x-new-password", "confirm_password": "x-new-password"}); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "current password is not right") {
		t.Fatalf("a wrong current password: %d %s", resp.StatusCode, body)
	}
	if resp, body := submitPage(t, c, f, map[string]string{"current_password": "self-password", "new_password": "x-new-password", "confirm_password": "x-new-password"}); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Password changed") {
		t.Fatalf("the change: %d %s", resp.StatusCode, body)
	}
	if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Fatal("a refresh token of before the change still works")
	}
	if ok, _ := authorizeIn(t, e, other, cfg); ok {
		t.Fatal("another browser's session survived the change")
	}
	if ok, _ := authorizeIn(t, e, c, cfg); !ok {
		t.Fatal("the changing browser's own session ended")
	}
	if resp, _ := passwordLogin(t, e, browser(t), "self@example.com", "self-password"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the old password: %d", resp.StatusCode)
	}
}
