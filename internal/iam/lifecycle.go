package iam

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"html/template"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// The login's further steps after the password, and the account pages.
//
// A correct password no longer completes the authorization request at
// once: when the password must be replaced (someone else chose it), when
// the account has a second factor, or when one is required and missing,
// the browser gets a login step cookie and the page of that step. The
// cookie is an HMAC-signed statement "the password of user U was proved
// at T for authorization request A", valid until the login times out; each
// step's handler checks it, the page's CSRF token and the account's state
// again, so no step can be skipped, and only the last one completes the
// request (loginUI.finish).
const (
	passwordChangePath = loginPath + "/password"
	totpPath           = loginPath + "/totp"
	totpEnrolPath      = loginPath + "/totp-enrol"
	stepCookie         = "rg_login_step"

	accountPasswordPath = "/account/password"
	accountTOTPPath     = "/account/totp"
)

// lifecycleRoutes adds the login's further steps, the reset page and the
// account pages to mux.
func (s *Service) lifecycleRoutes(mux *httpx.Mux) {
	l := s.login
	mux.HandleFunc("POST "+passwordChangePath, l.submitPasswordChange)
	mux.HandleFunc("POST "+totpPath, l.submitTOTP)
	mux.HandleFunc("POST "+totpEnrolPath, l.submitTOTPEnrol)
	mux.HandleFunc("GET "+resetPath, l.showReset)
	mux.HandleFunc("POST "+resetPath, l.submitReset)
	mux.HandleFunc("GET "+accountPasswordPath, l.showAccountPassword)
	mux.HandleFunc("POST "+accountPasswordPath, l.submitAccountPassword)
	mux.HandleFunc("GET "+accountTOTPPath, l.showAccountTOTP)
	mux.HandleFunc("POST "+accountTOTPPath, l.submitAccountTOTP)
}

// formTemplate renders every page with a form but the login form itself.
var formTemplate = template.Must(template.ParseFS(templatesFS, "templates/form.html", "templates/base.html"))

// formPage is a page of formTemplate.
type formPage struct {
	Title, Lead string
	Action      string
	Hidden      []formHidden
	Fields      []formField
	Error       string
	Submit      string
	// Secret and URI show a TOTP secret being enrolled.
	Secret, URI string
}

type formHidden struct{ Name, Value string }

// formField is one labelled input.
type formField struct {
	Name, Label, Type, Autocomplete, InputMode, Pattern, Value, Hint string
}

// The fields the pages share.
var (
	newPasswordField = formField{Name: "new_password", Label: "New password", Type: "password", Autocomplete: "new-password",
		Hint: "At least " + strconv.Itoa(minPasswordLen) + " characters."}
	confirmPasswordField = formField{Name: "confirm_password", Label: "Repeat the new password", Type: "password", Autocomplete: "new-password"}
	currentPasswordField = formField{Name: "current_password", Label: "Current password", Type: "password", Autocomplete: "current-password"}
	totpCodeField        = formField{Name: "code", Label: "Six-digit code", Type: "text", Autocomplete: "one-time-code", InputMode: "numeric", Pattern: "[0-9 ]{6,7}"}
)

func (l *loginUI) renderForm(w http.ResponseWriter, r *http.Request, status int, p formPage) {
	l.headers(w)
	w.WriteHeader(status)
	if err := formTemplate.Execute(w, p); err != nil {
		httpx.LoggerFrom(r.Context()).ErrorContext(r.Context(), "render form page", "err", err)
	}
}

// loginStep is the content of the login step cookie.
type loginStep struct {
	AuthRequestID string
	UserID        string
	// AuthTime is when the password was proved: the ID token's auth_time.
	AuthTime time.Time
	Expires  time.Time
}

func (l *loginUI) stepMAC(payload string) string {
	m := hmac.New(sha256.New, l.s.csrfKey)
	m.Write([]byte("login-step:" + payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (l *loginUI) setStep(w http.ResponseWriter, st loginStep) {
	payload := strings.Join([]string{st.AuthRequestID, st.UserID, strconv.FormatInt(st.AuthTime.UnixMicro(), 10), strconv.FormatInt(st.Expires.Unix(), 10)}, "|")
	value := base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + l.stepMAC(payload)
	http.SetCookie(w, &http.Cookie{
		Name: stepCookie, Value: value, Path: loginPath, HttpOnly: true, Secure: l.secure,
		SameSite: http.SameSiteStrictMode, MaxAge: int(st.Expires.Sub(l.s.now()) / time.Second),
	})
}

func (l *loginUI) clearStep(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: stepCookie, Value: "", Path: loginPath, MaxAge: -1, HttpOnly: true, Secure: l.secure, SameSite: http.SameSiteStrictMode})
}

// step returns the request's login step for authorization request id, or
// false when the cookie is missing, forged, expired or for another
// request.
func (l *loginUI) step(r *http.Request, id string) (loginStep, bool) {
	c, err := r.Cookie(stepCookie)
	if err != nil || len(c.Value) > 512 {
		return loginStep{}, false
	}
	b64, mac, ok := strings.Cut(c.Value, ".")
	if !ok {
		return loginStep{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil || !hmac.Equal([]byte(mac), []byte(l.stepMAC(string(raw)))) {
		return loginStep{}, false
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 4 || parts[0] != id {
		return loginStep{}, false
	}
	at, err1 := strconv.ParseInt(parts[2], 10, 64)
	exp, err2 := strconv.ParseInt(parts[3], 10, 64)
	if err1 != nil || err2 != nil {
		return loginStep{}, false
	}
	st := loginStep{AuthRequestID: parts[0], UserID: parts[1], AuthTime: time.UnixMicro(at).UTC(), Expires: time.Unix(exp, 0).UTC()}
	if !l.s.now().Before(st.Expires) {
		return loginStep{}, false
	}
	return st, true
}

// The authentication methods of RFC 8176 §2 that a login can use, for the
// ID token's amr: the password; a one-time password (the TOTP code); and
// mfa, which RFC 8176 wants beside the methods when more than one factor
// was used.
const (
	amrPassword = "pwd"
	amrOTP      = "otp"
	amrMFA      = "mfa"
)

// amrPasswordOnly is the amr of a login with the password alone;
// amrPasswordTOTP that of one with the password and a TOTP code.
var (
	amrPasswordOnly = []string{amrPassword}
	amrPasswordTOTP = []string{amrPassword, amrOTP, amrMFA}
)

// mfaRequired reports whether u must have a second factor.
func (s *Service) mfaRequired(u *user) bool {
	return s.cfg.RequireMFAForAdmin && slices.Contains(u.Roles, auth.RoleAdmin)
}

// sessionMaySkipLogin reports whether browser session b may answer an
// authorization request without a login: not while the account must
// replace its password or lacks a factor it is required to have, since
// only a login enforces those; nor when the account has a second factor
// the session's login did not use (it was enrolled after that login), so
// that an account with a factor only gets tokens from logins with it.
func (s *Service) sessionMaySkipLogin(ctx context.Context, b *browserSession) bool {
	userID := b.UserID
	u, err := s.store.userByID(ctx, s.db, userID)
	if err != nil {
		return false
	}
	st, err := s.store.lifecycle(ctx, s.db, userID)
	if err != nil {
		return false
	}
	if st.MustChangePassword {
		return false
	}
	if st.TOTPSecret != "" {
		return slices.Contains(b.AMR, amrMFA)
	}
	return !s.mfaRequired(u)
}

// next continues a login whose password u proved at authTime: it shows
// the first step still owed, or completes the request.
func (l *loginUI) next(w http.ResponseWriter, r *http.Request, id string, u *user, authTime time.Time) {
	ctx := r.Context()
	st, err := l.s.store.lifecycle(ctx, l.s.db, u.ID)
	if err != nil {
		l.failed(w, r, "read the account's lifecycle", err)
		return
	}
	step := loginStep{AuthRequestID: id, UserID: u.ID, AuthTime: authTime, Expires: l.s.now().Add(l.s.cfg.LoginTimeout)}
	switch {
	case st.MustChangePassword:
		l.setStep(w, step)
		l.renderPasswordChange(w, r, http.StatusOK, id, "")
	case st.TOTPSecret != "":
		l.setStep(w, step)
		l.renderTOTP(w, r, http.StatusOK, id, "")
	case l.s.mfaRequired(u):
		secret, uri, err := l.s.startTOTPEnrolment(ctx, u)
		if err != nil {
			l.failed(w, r, "start a TOTP enrolment", err)
			return
		}
		l.setStep(w, step)
		l.renderTOTPEnrol(w, r, http.StatusOK, id, secret, uri, "")
	default:
		l.finish(w, r, id, u.ID, authTime, amrPasswordOnly)
	}
}

// finish completes authorization request id for userID, who authenticated
// with the methods amr, and sends the browser on to the code: every step
// of the login is done.
func (l *loginUI) finish(w http.ResponseWriter, r *http.Request, id, userID string, authTime time.Time, amr []string) {
	ctx := r.Context()
	if err := l.s.store.completeLogin(ctx, id, userID, authTime, amr, l.s.now()); err != nil {
		if errors.Is(err, errNotFound) {
			l.expired(w, r)
			return
		}
		l.failed(w, r, "complete login", err)
		return
	}
	if err := l.s.startSession(ctx, w, r, userID, amr); err != nil {
		// The login itself succeeded; only single sign-on is lost.
		httpx.LoggerFrom(ctx).ErrorContext(ctx, "start browser session", "err", err)
	}
	l.s.metrics.logins.Inc()
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: "", Path: loginPath, MaxAge: -1, HttpOnly: true, Secure: l.secure, SameSite: http.SameSiteStrictMode})
	l.clearStep(w)
	http.Redirect(w, r, l.s.authCallbackURL(id), http.StatusFound)
}

func (l *loginUI) failed(w http.ResponseWriter, r *http.Request, what string, err error) {
	httpx.LoggerFrom(r.Context()).ErrorContext(r.Context(), what, "err", err)
	l.showMessage(w, r, http.StatusInternalServerError, "Sign-in failed", "Something went wrong; please try again.")
}

func (l *loginUI) stepHidden(id string) []formHidden {
	return []formHidden{{"authRequestID", id}, {"csrf", l.csrfToken(id)}}
}

func (l *loginUI) renderPasswordChange(w http.ResponseWriter, r *http.Request, status int, id, msg string) {
	l.renderForm(w, r, status, formPage{
		Title: "Choose a new password", Lead: "Your password was set by someone else. Choose your own before you continue.",
		Action: passwordChangePath, Hidden: l.stepHidden(id), Fields: []formField{newPasswordField, confirmPasswordField},
		Error: msg, Submit: "Change password and continue",
	})
}

func (l *loginUI) renderTOTP(w http.ResponseWriter, r *http.Request, status int, id, msg string) {
	l.renderForm(w, r, status, formPage{
		Title: "Enter your code", Lead: "Open your authenticator app and enter the six-digit code it shows for RealGuardIO.",
		Action: totpPath, Hidden: l.stepHidden(id), Fields: []formField{totpCodeField}, Error: msg, Submit: "Verify",
	})
}

func (l *loginUI) renderTOTPEnrol(w http.ResponseWriter, r *http.Request, status int, id, secret, uri, msg string) {
	l.renderForm(w, r, status, formPage{
		Title: "Set up a second factor", Lead: "Your account needs a second factor: a code from an authenticator app, asked for after your password.",
		Action: totpEnrolPath, Hidden: l.stepHidden(id), Fields: []formField{totpCodeField}, Error: msg, Submit: "Confirm and continue",
		Secret: secret, URI: uri,
	})
}

// stepRequest checks a post of a login step: the form, its CSRF token, the
// step cookie for the same authorization request, which must still be
// pending, and the account, which must still be enabled.
func (l *loginUI) stepRequest(w http.ResponseWriter, r *http.Request) (loginStep, *user, bool) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		l.showMessage(w, r, http.StatusBadRequest, "Sign-in failed", "The form could not be read. Go back to the application and sign in again.")
		return loginStep{}, nil, false
	}
	id := r.PostForm.Get("authRequestID")
	want := l.csrfToken(id)
	cookie, _ := r.Cookie(csrfCookie)
	if id == "" || !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(want)) || cookie == nil || !hmac.Equal([]byte(cookie.Value), []byte(want)) {
		l.s.metrics.loginFailures.WithLabelValues("csrf").Inc()
		l.showMessage(w, r, http.StatusForbidden, "Sign-in refused",
			"Nothing was changed: the form had expired or was not sent from this page. Go back to the application and sign in again.")
		return loginStep{}, nil, false
	}
	st, ok := l.step(r, id)
	if !ok || !l.pending(ctx, id) {
		l.expired(w, r)
		return loginStep{}, nil, false
	}
	u, err := l.s.store.userByID(ctx, l.s.db, st.UserID)
	if err != nil || !u.Enabled {
		l.expired(w, r)
		return loginStep{}, nil, false
	}
	return st, u, true
}

// openStep opens the post of a login step (stepRequest) and reads the
// account's lifecycle. When owed says the step is no longer owed (done
// meanwhile in a second tab, or another step comes first), the login goes
// on with what is owed instead, and ok is false, as it is when the request
// was refused: the caller has nothing left to write.
func (l *loginUI) openStep(w http.ResponseWriter, r *http.Request, owed func(lifecycleState) bool) (st loginStep, u *user, ls lifecycleState, ok bool) {
	st, u, ok = l.stepRequest(w, r)
	if !ok {
		return st, u, ls, false
	}
	ls, err := l.s.store.lifecycle(r.Context(), l.s.db, u.ID)
	if err != nil {
		l.failed(w, r, "read the account's lifecycle", err)
		return st, u, ls, false
	}
	if !owed(ls) {
		l.next(w, r, st.AuthRequestID, u, st.AuthTime)
		return st, u, ls, false
	}
	return st, u, ls, true
}

// submitPasswordChange replaces a password someone else chose, then goes
// on with the login.
func (l *loginUI) submitPasswordChange(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	st, u, _, ok := l.openStep(w, r, func(ls lifecycleState) bool { return ls.MustChangePassword })
	if !ok {
		return
	}
	hash, msg := newPasswordHash(u, r.PostForm.Get("new_password"), r.PostForm.Get("confirm_password"))
	if msg != "" {
		l.renderPasswordChange(w, r, http.StatusUnprocessableEntity, st.AuthRequestID, msg)
		return
	}
	if hash == "" {
		l.failed(w, r, "hash password", errHashing)
		return
	}
	var ended []userSession
	err := l.s.db.InTx(ctx, func(tx *sqldb.Tx) (err error) {
		// The sessions before the change, read in its transaction: the
		// one this login is about to start is not among them.
		if ended, err = l.s.store.userSessions(ctx, tx, u.ID); err != nil {
			return err
		}
		return l.s.store.setOwnPassword(ctx, tx, u.ID, hash, "", l.s.now())
	})
	if err != nil {
		l.failed(w, r, "store the new password", err)
		return
	}
	l.s.log.InfoContext(ctx, "iam: password changed at first login", "user", u.ID)
	// Each earlier session by its sid, never the whole user: a retry of a
	// failed delivery may arrive after this login's own session began at
	// the client, and must not end it (logoutSessions).
	l.s.backchannel.logoutSessions(ctx, u.ID, ended)
	u.PasswordHash = hash
	l.next(w, r, st.AuthRequestID, u, st.AuthTime)
}

// newPasswordHash checks a new password and its confirmation against the
// rules and the account's current password, and hashes it. msg is the
// page's error when the password is refused; an empty hash without msg is
// a hashing failure.
func newPasswordHash(u *user, password, confirm string) (hash, msg string) {
	if err := validatePassword(password); err != nil {
		// The rules are validatePassword's, worded for a page.
		if len(password) > maxPasswordLen {
			return "", "The new password is too long: use at most " + strconv.Itoa(maxPasswordLen) + " bytes."
		}
		return "", "The new password is too short: use at least " + strconv.Itoa(minPasswordLen) + " characters."
	}
	if password != confirm {
		return "", "The two new passwords are not the same. Type the new password twice."
	}
	if u != nil {
		if same, err := verifyPassword(u.PasswordHash, password); err == nil && same {
			return "", "The new password must not be the one you had. Choose another."
		}
	}
	h, err := hashPassword(password)
	if err != nil {
		return "", ""
	}
	return h, ""
}

// totpAttempt reserves a second-factor attempt of userID in the login
// throttle, like a password attempt: its own account key, the client
// address and the browser's device cookie for the account.
func (l *loginUI) totpAttempt(w http.ResponseWriter, r *http.Request, u *user) (*reservation, time.Duration, bool) {
	key := "totp\x00" + u.ID
	res, delay, locked := l.s.throttle.begin(attempt{account: key, address: l.s.clientAddr(r), device: l.s.devices.nonce(r, usernameKey(u.Username))})
	if res == nil {
		l.s.metrics.loginFailures.WithLabelValues("throttled").Inc()
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(locked.Seconds()))))
		return nil, locked, false
	}
	if delay > 0 {
		l.sleep(r.Context(), delay)
	}
	return res, 0, true
}

// codeStep completes a login step with a TOTP code: one attempt in the
// login throttle, the code checked by check (what names it in a failure),
// and the page shown again by render with the status and message of a
// throttled or wrong code; a right code completes the login.
func (l *loginUI) codeStep(w http.ResponseWriter, r *http.Request, st loginStep, u *user, what string,
	check func(ctx context.Context, code string) (bool, error), render func(status int, msg string)) {
	res, locked, ok := l.totpAttempt(w, r, u)
	if !ok {
		render(http.StatusTooManyRequests, throttledCodeMessage(locked))
		return
	}
	defer res.abandon()
	good, err := check(r.Context(), r.PostForm.Get("code"))
	if err != nil {
		l.failed(w, r, what, err)
		return
	}
	if !good {
		res.failed()
		l.s.metrics.loginFailures.WithLabelValues("totp").Inc()
		render(http.StatusUnauthorized, wrongCode)
		return
	}
	res.succeeded()
	l.finish(w, r, st.AuthRequestID, u.ID, st.AuthTime, amrPasswordTOTP)
}

// throttledCodeMessage tells a throttled user when to try again.
func throttledCodeMessage(locked time.Duration) string {
	return strings.Replace(throttledMessage(locked), "Your password was not checked.", "Your code was not checked.", 1)
}

// errHashing is a password that could not be hashed (no randomness).
var errHashing = errors.New("hash password: failed")

const wrongCode = "The code is not right, or was already used. Wait for the next code and try again."

// checkTOTP verifies code against u's enrolled factor and spends it.
func (s *Service) checkTOTP(ctx context.Context, u *user, code string) (bool, error) {
	st, err := s.store.lifecycle(ctx, s.db, u.ID)
	if err != nil || st.TOTPSecret == "" {
		return false, err
	}
	secret, err := openTOTP(s.keys.sealer, u.ID, st.TOTPSecret)
	if err != nil {
		return false, err
	}
	step, ok := matchTOTP(secret, code, s.now(), st.TOTPLastStep)
	if !ok {
		return false, nil
	}
	// A concurrent use of the same code may have won: then this one is
	// the replay.
	return s.store.acceptTOTPStep(ctx, u.ID, step, s.now())
}

// submitTOTP checks the second factor and completes the login.
func (l *loginUI) submitTOTP(w http.ResponseWriter, r *http.Request) {
	st, u, _, ok := l.openStep(w, r, func(ls lifecycleState) bool { return !ls.MustChangePassword && ls.TOTPSecret != "" })
	if !ok {
		return
	}
	l.codeStep(w, r, st, u, "check the TOTP code",
		func(ctx context.Context, code string) (bool, error) { return l.s.checkTOTP(ctx, u, code) },
		func(status int, msg string) { l.renderTOTP(w, r, status, st.AuthRequestID, msg) })
}

// confirmEnrolment checks code against u's pending TOTP secret and, when
// it is right, makes that secret u's factor. It returns the pending
// secret (to show again after a wrong code).
func (s *Service) confirmEnrolment(ctx context.Context, u *user, code string) (secret string, ok bool, err error) {
	st, err := s.store.lifecycle(ctx, s.db, u.ID)
	if err != nil || st.TOTPPending == "" {
		return "", false, err
	}
	secret, err = openTOTP(s.keys.sealer, u.ID, st.TOTPPending)
	if err != nil {
		return "", false, err
	}
	step, ok := matchTOTP(secret, code, s.now(), 0)
	if !ok {
		return secret, false, nil
	}
	err = s.store.confirmTOTP(ctx, u.ID, st.TOTPPending, step, s.now())
	if errors.Is(err, errNotFound) {
		// Another tab replaced or confirmed the enrolment meanwhile.
		return secret, false, nil
	}
	if err != nil {
		return "", false, err
	}
	s.log.InfoContext(ctx, "iam: TOTP second factor enrolled", "user", u.ID)
	return secret, true, nil
}

// submitTOTPEnrol confirms a mandatory enrolment and completes the login.
func (l *loginUI) submitTOTPEnrol(w http.ResponseWriter, r *http.Request) {
	st, u, ls, ok := l.openStep(w, r, func(ls lifecycleState) bool {
		return !ls.MustChangePassword && ls.TOTPSecret == "" && ls.TOTPPending != ""
	})
	if !ok {
		return
	}
	// The page shown again shows the pending secret: the one read now
	// when throttled, the one confirmEnrolment read after a wrong code.
	secret, _ := openTOTP(l.s.keys.sealer, u.ID, ls.TOTPPending)
	l.codeStep(w, r, st, u, "confirm the TOTP enrolment",
		func(ctx context.Context, code string) (bool, error) {
			var good bool
			var err error
			secret, good, err = l.s.confirmEnrolment(ctx, u, code)
			return good, err
		},
		func(status int, msg string) {
			l.renderTOTPEnrol(w, r, status, st.AuthRequestID, secret, totpURI(u.Username, secret), msg)
		})
}
