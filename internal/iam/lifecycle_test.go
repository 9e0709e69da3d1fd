package iam

import (
	"context"
	"encoding/base32"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
)

// pageForm is a form of a lifecycle page: where it posts and its hidden
// fields.
type pageForm struct {
	action string
	fields url.Values
}

var (
	formActionRe = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
	secretRe     = regexp.MustCompile(`<code id="totp-secret">([A-Z2-7]+)</code>`)
)

// parsePage finds the form of a page; the page must have one.
func parsePage(t testing.TB, base *url.URL, body string) pageForm {
	t.Helper()
	act := formActionRe.FindStringSubmatch(body)
	if act == nil {
		t.Fatalf("no form in page:\n%s", body)
	}
	f := pageForm{fields: url.Values{}}
	for _, m := range hiddenRe.FindAllStringSubmatch(body, -1) {
		f.fields.Set(m[1], htmlUnescape(m[2]))
	}
	u, _ := base.Parse(htmlUnescape(act[1]))
	f.action = u.String()
	return f
}

// submitPage posts the form f with its hidden fields and values.
func submitPage(t testing.TB, c *http.Client, f pageForm, values map[string]string) (*http.Response, string) {
	t.Helper()
	v := url.Values{}
	for k := range f.fields {
		v.Set(k, f.fields.Get(k))
	}
	for k, val := range values {
		v.Set(k, val)
	}
	resp, err := c.PostForm(f.action, v)
	if err != nil {
		t.Fatalf("POST %s: %v", f.action, err)
	}
	return resp, readBody(t, resp)
}

// passwordLogin starts an authorization request of the BFF's client in c
// (prompt=login) and submits the password; it returns the answer.
func passwordLogin(t testing.TB, e *env, c *http.Client, username, password string) (*http.Response, string) {
	t.Helper()
	f, _, _ := startLogin(t, c, e.bffConfig().AuthCodeURL("st4te", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", "login")))
	return submitLogin(t, c, f, username, password)
}

// noCode fails the test if the callback received anything.
func noCode(t *testing.T, e *env, when string) {
	t.Helper()
	select {
	case q := <-e.codes:
		t.Fatalf("%s: the callback received %v", when, q)
	default:
	}
}

// createUserMustChange makes a user whose password an administrator chose.
func (e *env) createUserMustChange(t testing.TB, username, password string, roles ...string) string {
	t.Helper()
	u, _, err := e.svc.createUser(context.Background(), &auth.Caller{Subject: "test-admin", ClientID: ClientBFF, Roles: []string{auth.RoleAdmin}},
		createUserBody{Username: username, Password: password, Roles: roles, PasswordChangeRequired: true})
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	return u.ID
}

// TestForcedPasswordChange: a user whose password an administrator chose
// gets no code for the password alone: the login asks for a new password
// (the rules of today; not the old one; typed twice), and only then
// continues to the client. The step cannot be skipped: the second factor's
// and the enrolment's handlers, or the change without the login's step
// cookie, complete nothing. After the change the old password fails and
// the new one logs in directly.
func TestForcedPasswordChange(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.createUserMustChange(t, "new@example.com", "initial-password")

	c := browser(t)
	resp, body := passwordLogin(t, e, c, "new@example.com", "initial-password")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="new_password"`) || !strings.Contains(body, "Choose a new password") {
		t.Fatalf("the login answered %d without the change-password page:\n%s", resp.StatusCode, body)
	}
	noCode(t, e, "the password alone")
	f := parsePage(t, resp.Request.URL, body)
	if !strings.HasSuffix(f.action, passwordChangePath) {
		t.Fatalf("the change form posts to %s", f.action)
	}

	// Skipping the step: posting the form to the other steps' handlers.
	for _, p := range []string{totpPath, totpEnrolPath} {
		skip := f
		skip.action = e.issuer + p
		resp, body := submitPage(t, c, skip, map[string]string{"code": "123456"})
		if body == "callback received" || !strings.Contains(body, `name="new_password"`) {
			t.Fatalf("posting to %s skipped the change: %d %s", p, resp.StatusCode, body)
		}
		noCode(t, e, "a post to "+p)
	}
	// Without the step cookie (another browser with the form's fields).
	other := browser(t)
	resp, body = submitPage(t, other, f, map[string]string{"new_password": "chosen-password", "confirm_password": "chosen-password"})
	if resp.StatusCode == http.StatusOK || body == "callback received" {
		t.Fatalf("a change without the login's cookies was accepted: %d %s", resp.StatusCode, body)
	}

	for _, tc := range []struct{ pw, confirm, want string }{
		{"short", "short", "too short"},
		{"chosen-password", "chosen-passw0rd", "not the same"},
		{"initial-password", "initial-password", "must not be the one you had"},
	} {
		resp, body := submitPage(t, c, f, map[string]string{"new_password": tc.pw, "confirm_password": tc.confirm})
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, tc.want) {
			t.Errorf("new password %q/%q: %d, want 422 saying %q:\n%s", tc.pw, tc.confirm, resp.StatusCode, tc.want, body)
		}
		noCode(t, e, "a refused new password")
	}
	resp, body = submitPage(t, c, f, map[string]string{"new_password": "chosen-password", "confirm_password": "chosen-password"})
	if body != "callback received" {
		t.Fatalf("the change did not continue the login: %d %s", resp.StatusCode, body)
	}
	if q := <-e.codes; q.Get("code") == "" || q.Get("state") != "st4te" {
		t.Fatalf("callback %v", q)
	}
	// The change's page is not reusable once the request is done: its
	// cookies are gone (403), and were they kept, the request is done
	// (400); either way nothing changes (the new password logs in below).
	if resp, body := submitPage(t, c, f, map[string]string{"new_password": "third-password", "confirm_password": "third-password"}); (resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusForbidden) || body == "callback received" {
		t.Fatalf("the change posted again: %d %s", resp.StatusCode, body)
	}

	if resp, _ := passwordLogin(t, e, browser(t), "new@example.com", "initial-password"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the initial password still logs in: %d", resp.StatusCode)
	}
	if _, body := passwordLogin(t, e, browser(t), "new@example.com", "chosen-password"); body != "callback received" {
		t.Fatalf("the new password: %s", body)
	}
	<-e.codes
}

// TestGeneratedAdminPasswordMustChange: the bootstrap administrator's
// generated password (printed once) must be replaced at the first login;
// a password given in the configuration is the operator's own and is not.
func TestGeneratedAdminPasswordMustChange(t *testing.T) {
	e := newEnv(t, envOpts{cfg: func(c *Config) { c.AdminPassword = "" }})
	pw := e.svc.GeneratedAdminPassword()
	if pw == "" {
		t.Fatal("no generated password")
	}
	c := browser(t)
	resp, body := passwordLogin(t, e, c, AdminUsername, pw)
	if !strings.Contains(body, `name="new_password"`) {
		t.Fatalf("the generated password logged in without a change: %d %s", resp.StatusCode, body)
	}
	noCode(t, e, "the generated password")
	if _, body := submitPage(t, c, parsePage(t, resp.Request.URL, body), map[string]string{"new_password": "admins-own-password", "confirm_password": "admins-own-password"}); body != "callback received" {
		t.Fatalf("after the change: %s", body)
	}
	<-e.codes

	// A later start with --admin-password applies the operator's own
	// password, which is not to be changed.
	db := sqldbtest.OpenSQLite(t)
	newEnv(t, envOpts{db: db, cfg: func(c *Config) { c.AdminPassword = "" }})
	configured := newEnv(t, envOpts{db: db})
	if _, body := passwordLogin(t, configured, browser(t), AdminUsername, testAdminPW); body != "callback received" {
		t.Fatalf("the configured admin password: %s", body)
	}
	<-configured.codes
}

// TestTOTPVectors checks the TOTP computation against RFC 6238 Appendix
// B's SHA-1 vectors (secret "12345678901234567890"): a six-digit code is
// the last six digits of the RFC's eight, the same truncation mod 10^6.
func TestTOTPVectors(t *testing.T) {
	secret := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte("12345678901234567890"))
	for _, v := range []struct {
		unix int64
		code string
	}{
		{59, "94287082"}, {1111111109, "07081804"}, {1111111111, "14050471"},
		{1234567890, "89005924"}, {2000000000, "69279037"}, {20000000000, "65353130"},
	} {
		got, err := totpCodeAt(secret, totpStep(time.Unix(v.unix, 0)))
		if err != nil {
			t.Fatal(err)
		}
		if got != v.code[2:] {
			t.Errorf("T=%d: code %s, want %s", v.unix, got, v.code[2:])
		}
	}
	now := time.Unix(1111111111, 0)
	step := totpStep(now)
	for _, tc := range []struct {
		code     string
		last     int64
		wantStep int64
		ok       bool
	}{
		{"050471", 0, step, true},
		{"050 471", 0, step, true},
		{"050471", step, 0, false},     // replayed: that step was used
		{"050471", step + 1, 0, false}, // a later code was used
		{"081804", 0, step - 1, true},  // T=1111111109: the step before, within the skew
		{"000000", 0, 0, false},
		{"05047", 0, 0, false},
	} {
		got, ok := matchTOTP(secret, tc.code, now, tc.last)
		if ok != tc.ok || got != tc.wantStep {
			t.Errorf("code %q after step %d: (%d, %v), want (%d, %v)", tc.code, tc.last, got, ok, tc.wantStep, tc.ok)
		}
	}
	// One step either side is accepted, two are not.
	for d, ok := range map[int64]bool{-1: true, 1: true, -2: false, 2: false} {
		code, _ := totpCodeAt(secret, step+d)
		if _, got := matchTOTP(secret, code, now, 0); got != ok {
			t.Errorf("a code %d steps away: accepted %v, want %v", d, got, ok)
		}
	}
}

// TestTOTPSealed: with a key-encryption key the stored secret is sealed
// (not the secret, not openable for another user's row) and opens again.
func TestTOTPSealed(t *testing.T) {
	sealer, err := newKeySealer([][]byte{[]byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	sealed, err := sealTOTP(sealer, "user-1", secret)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, secret) || !strings.HasPrefix(sealed, totpSealedPrefix) {
		t.Fatalf("sealed value %q", sealed)
	}
	if got, err := openTOTP(sealer, "user-1", sealed); err != nil || got != secret {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := openTOTP(sealer, "user-2", sealed); err == nil {
		t.Fatal("a secret moved to another user's row opened")
	}
	if _, err := openTOTP(nil, "user-1", sealed); err == nil {
		t.Fatal("a sealed secret opened without a key-encryption key")
	}
}

// enrolTOTP signs in u in browser c, enrols a factor on the account page
// and returns the secret.
func enrolTOTP(t *testing.T, e *env, c *http.Client, username, password string) string {
	t.Helper()
	if _, body := passwordLogin(t, e, c, username, password); body != "callback received" {
		t.Fatalf("login: %s", body)
	}
	<-e.codes
	resp, err := c.Get(e.issuer + accountTOTPPath)
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	m := secretRe.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil || !strings.Contains(body, "otpauth://totp/RealGuardIO:") {
		t.Fatalf("enrolment page %d:\n%s", resp.StatusCode, body)
	}
	f := parsePage(t, resp.Request.URL, body)
	if resp, body := submitPage(t, c, f, map[string]string{"code": wrongTOTP(m[1], e.clock.now())}); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, m[1]) {
		t.Fatalf("a wrong confirmation code: %d %s", resp.StatusCode, body)
	}
	code, _ := totpCodeAt(m[1], totpStep(e.clock.now()))
	if resp, body := submitPage(t, c, f, map[string]string{"code": code}); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Second factor set up") {
		t.Fatalf("confirmation: %d %s", resp.StatusCode, body)
	}
	return m[1]
}

// TestTOTPLogin: a user enrols on the account page (confirming with a
// code); from then on the password alone issues no code: the login asks
// for the code, refuses a wrong one and a replayed one, throttles
// guessing like passwords, and continues with the right one. The secret is
// sealed in the database.
func TestTOTPLogin(t *testing.T) {
	e := newEnv(t, envOpts{cfg: func(c *Config) { c.KeyEncryptionKeys = [][]byte{[]byte("0123456789abcdef0123456789abcdef")} }})
	id := e.createUser(t, "otp@example.com", "otp-password")
	secret := enrolTOTP(t, e, browser(t), "otp@example.com", "otp-password")
	st, err := e.svc.store.lifecycle(context.Background(), e.svc.db, id)
	if err != nil || st.TOTPSecret == "" || strings.Contains(st.TOTPSecret, secret) || st.TOTPPending != "" {
		t.Fatalf("stored factor %+v %v", st, err)
	}

	c := browser(t)
	resp, body := passwordLogin(t, e, c, "otp@example.com", "otp-password")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="code"`) || !strings.Contains(body, "Enter your code") {
		t.Fatalf("the password alone: %d %s", resp.StatusCode, body)
	}
	noCode(t, e, "the password alone")
	f := parsePage(t, resp.Request.URL, body)
	if resp, body := submitPage(t, c, f, map[string]string{"code": wrongTOTP(secret, e.clock.now())}); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, wrongCode) {
		t.Fatalf("a wrong code: %d %s", resp.StatusCode, body)
	}
	// The enrolment spent the current step's code: the next step's works.
	e.clock.advance(totpPeriod * time.Second)
	code, _ := totpCodeAt(secret, totpStep(e.clock.now()))
	if _, body := submitPage(t, c, f, map[string]string{"code": code}); body != "callback received" {
		t.Fatalf("the right code: %s", body)
	}
	<-e.codes

	c2 := browser(t)
	resp, body = passwordLogin(t, e, c2, "otp@example.com", "otp-password")
	f2 := parsePage(t, resp.Request.URL, body)
	if resp, body := submitPage(t, c2, f2, map[string]string{"code": code}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a replayed code: %d %s", resp.StatusCode, body)
	}
	noCode(t, e, "a replayed code")
	// Guessing is throttled: after the limit even the right code is not
	// checked.
	for i := 0; i < 4; i++ {
		submitPage(t, c2, f2, map[string]string{"code": wrongTOTP(secret, e.clock.now())})
	}
	e.clock.advance(totpPeriod * time.Second)
	code, _ = totpCodeAt(secret, totpStep(e.clock.now()))
	if resp, body := submitPage(t, c2, f2, map[string]string{"code": code}); resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "Your code was not checked") {
		t.Fatalf("after five wrong codes: %d %s", resp.StatusCode, body)
	}
	noCode(t, e, "a throttled code")
}

// TestRequireMFAForAdmin: with the setting, an administrator without a
// factor enrols during the login, before any code, and a browser session
// of the administrator from before does not skip that.
func TestRequireMFAForAdmin(t *testing.T) {
	e := newEnv(t, envOpts{cfg: func(c *Config) { c.RequireMFAForAdmin = true }})
	e.createUser(t, "plain@example.com", "plain-password", auth.RoleCustomerEmployee)
	if _, body := passwordLogin(t, e, browser(t), "plain@example.com", "plain-password"); body != "callback received" {
		t.Fatalf("a user without the admin role: %s", body)
	}
	<-e.codes

	c := browser(t)
	resp, body := passwordLogin(t, e, c, AdminUsername, testAdminPW)
	m := secretRe.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil || !strings.Contains(body, "Set up a second factor") {
		t.Fatalf("the administrator's login: %d %s", resp.StatusCode, body)
	}
	noCode(t, e, "an administrator without a factor")
	f := parsePage(t, resp.Request.URL, body)
	code, _ := totpCodeAt(m[1], totpStep(e.clock.now()))
	if _, body := submitPage(t, c, f, map[string]string{"code": code}); body != "callback received" {
		t.Fatalf("the confirmed enrolment: %s", body)
	}
	<-e.codes
	resp, body = passwordLogin(t, e, browser(t), AdminUsername, testAdminPW)
	if !strings.Contains(body, "Enter your code") {
		t.Fatalf("the next login does not ask for the code: %d %s", resp.StatusCode, body)
	}

	// The session of the complete login answers single sign-on, until the
	// factor is gone: then only a login (with its enrolment) will do.
	if ok, _ := authorizeIn(t, e, c, e.bffConfig()); !ok {
		t.Fatal("the session of a complete login does not answer")
	}
	if err := e.svc.store.clearTOTP(context.Background(), e.svc.db, e.adminID(t), e.clock.now()); err != nil {
		t.Fatal(err)
	}
	if ok, _ := authorizeIn(t, e, c, e.bffConfig()); ok {
		t.Fatal("a session answered for an administrator without the required factor")
	}
	if ok, q := authorizeIn(t, e, c, e.bffConfig(), oauth2.SetAuthURLParam("prompt", "none")); !ok || q.Get("error") != "login_required" {
		t.Fatalf("prompt=none for an administrator without the required factor: %v %v", ok, q)
	}
}

// wrongTOTP returns a six-digit code that is none of the codes secret
// accepts around now, so that a test's wrong code is never right by
// chance.
func wrongTOTP(secret string, now time.Time) string {
	for _, c := range []string{"000000", "111111", "222222", "333333"} {
		if _, ok := matchTOTP(secret, c, now, 0); !ok {
			return c
		}
	}
	panic("unreachable: three steps have at most three codes")
}

// TestTOTPKEKRotation: TOTP secrets follow the signing keys' KEK rotation.
// A secret enrolled without a KEK is sealed at the first start with one;
// a start with "new,old" reseals it under new; after old is dropped the
// factor still works.
func TestTOTPKEKRotation(t *testing.T) {
	ctx := context.Background()
	db := sqldbtest.OpenSQLite(t)
	kekA, kekB := []byte("0123456789abcdef0123456789abcdef"), []byte("fedcba9876543210fedcba9876543210")
	e := newEnv(t, envOpts{db: db})
	id := e.createUser(t, "rotate@example.com", "rotate-password")
	secret := enrolTOTP(t, e, browser(t), "rotate@example.com", "rotate-password")
	stored := func(e *env) string {
		st, err := e.svc.store.lifecycle(ctx, e.svc.db, id)
		if err != nil {
			t.Fatal(err)
		}
		return st.TOTPSecret
	}
	if got := stored(e); got != secret {
		t.Fatalf("without a KEK the secret is stored as %q", got)
	}
	sealerA, _ := newKeySealer([][]byte{kekA})
	sealerB, _ := newKeySealer([][]byte{kekB})
	eA := newEnv(t, envOpts{db: db, cfg: func(c *Config) { c.KeyEncryptionKeys = [][]byte{kekA} }})
	if got := stored(eA); !totpCurrent(sealerA, got) {
		t.Fatalf("after a start with a KEK the secret is %q", got)
	}
	eBA := newEnv(t, envOpts{db: db, cfg: func(c *Config) { c.KeyEncryptionKeys = [][]byte{kekB, kekA} }})
	if got := stored(eBA); !totpCurrent(sealerB, got) {
		t.Fatalf("after a start with new,old the secret is %q", got)
	}
	eB := newEnv(t, envOpts{db: db, cfg: func(c *Config) { c.KeyEncryptionKeys = [][]byte{kekB} }})
	c := browser(t)
	resp, body := passwordLogin(t, eB, c, "rotate@example.com", "rotate-password")
	if !strings.Contains(body, "Enter your code") {
		t.Fatalf("the login after the rotation: %d %s", resp.StatusCode, body)
	}
	eB.clock.advance(totpPeriod * time.Second)
	code, _ := totpCodeAt(secret, totpStep(eB.clock.now()))
	if _, body := submitPage(t, c, parsePage(t, resp.Request.URL, body), map[string]string{"code": code}); body != "callback received" {
		t.Fatalf("the code after the rotation: %s", body)
	}
}
