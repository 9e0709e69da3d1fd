package iam

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// The account pages: a signed-in user (the IAM browser session of a
// complete login, password and second factor) changes the password or
// enrols a second factor. Their CSRF token is an HMAC of the session's
// hash: the session cookie is SameSite=Lax, so a cross-site post does not
// carry it, and the token cannot be guessed without the cookie.

// accountSession returns the browser session of the request and its user,
// or shows the page saying to sign in first.
func (l *loginUI) accountSession(w http.ResponseWriter, r *http.Request) (*user, string, bool) {
	b, hash := l.s.currentSession(r.Context(), r.Header)
	if b == nil {
		l.showMessage(w, r, http.StatusUnauthorized, "Sign in first",
			"This page changes your RealGuardIO account. Sign in to a RealGuardIO application in this browser, then open this page again.")
		return nil, "", false
	}
	u, err := l.s.store.userByID(r.Context(), l.s.db, b.UserID)
	if err != nil {
		l.failed(w, r, "read the session's user", err)
		return nil, "", false
	}
	return u, hash, true
}

func (l *loginUI) accountCSRF(sessionHash string) string {
	m := hmac.New(sha256.New, l.s.csrfKey)
	m.Write([]byte("account-csrf:" + sessionHash))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// accountPost checks an account page's post: its size, its session and its
// CSRF token.
func (l *loginUI) accountPost(w http.ResponseWriter, r *http.Request) (*user, string, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		l.showMessage(w, r, http.StatusBadRequest, "Not changed", "The form could not be read. Open the page again.")
		return nil, "", false
	}
	u, hash, ok := l.accountSession(w, r)
	if !ok {
		return nil, "", false
	}
	if !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(l.accountCSRF(hash))) {
		l.showMessage(w, r, http.StatusForbidden, "Not changed",
			"Nothing was changed: the form had expired or was not sent from this page. Open the page again.")
		return nil, "", false
	}
	return u, hash, true
}

func (l *loginUI) renderAccountPassword(w http.ResponseWriter, r *http.Request, status int, u *user, hash, msg string) {
	l.renderForm(w, r, status, formPage{
		Title: "Change your password", Lead: "Signed in as " + u.Username + ". Changing the password signs you out everywhere else.",
		Action: accountPasswordPath, Hidden: []formHidden{{"csrf", l.accountCSRF(hash)}},
		Fields: []formField{currentPasswordField, newPasswordField, confirmPasswordField}, Error: msg, Submit: "Change password",
	})
}

func (l *loginUI) showAccountPassword(w http.ResponseWriter, r *http.Request) {
	if u, hash, ok := l.accountSession(w, r); ok {
		l.renderAccountPassword(w, r, http.StatusOK, u, hash, "")
	}
}

// submitAccountPassword changes the signed-in user's password: the current
// one is required (checked and throttled like a login), and every other
// session and refresh token of the user ends.
func (l *loginUI) submitAccountPassword(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	u, hash, ok := l.accountPost(w, r)
	if !ok {
		return
	}
	key := usernameKey(u.Username)
	res, delay, locked := l.s.throttle.begin(attempt{account: key, address: l.s.clientAddr(r), device: l.s.devices.nonce(r, key)})
	if res == nil {
		l.s.metrics.loginFailures.WithLabelValues("throttled").Inc()
		l.renderAccountPassword(w, r, http.StatusTooManyRequests, u, hash, throttledMessage(locked))
		return
	}
	defer res.abandon()
	if delay > 0 {
		l.sleep(ctx, delay)
	}
	if ok, err := verifyPassword(u.PasswordHash, r.PostForm.Get("current_password")); err != nil || !ok {
		res.failed()
		l.s.metrics.loginFailures.WithLabelValues("credentials").Inc()
		l.renderAccountPassword(w, r, http.StatusUnauthorized, u, hash, "The current password is not right.")
		return
	}
	res.succeeded()
	newHash, msg := newPasswordHash(u, r.PostForm.Get("new_password"), r.PostForm.Get("confirm_password"))
	if msg != "" {
		l.renderAccountPassword(w, r, http.StatusUnprocessableEntity, u, hash, msg)
		return
	}
	if newHash == "" {
		l.failed(w, r, "hash password", errHashing)
		return
	}
	var ended []userSession
	if err := l.s.db.InTx(ctx, func(tx *sqldb.Tx) (err error) {
		if ended, err = l.s.store.userSessions(ctx, tx, u.ID); err != nil {
			return err
		}
		return l.s.store.setOwnPassword(ctx, tx, u.ID, newHash, hash, l.s.now())
	}); err != nil {
		l.failed(w, r, "store the new password", err)
		return
	}
	l.s.log.InfoContext(ctx, "iam: password changed by its user", "user", u.ID)
	// The sessions before the change by their sid, so that a late retry
	// spares a login made with the new password (logoutSessions).
	l.s.backchannel.logoutSessions(ctx, u.ID, ended)
	l.showMessage(w, r, http.StatusOK, "Password changed", "Your password is changed. You are signed out of every other browser and application.")
}

func (l *loginUI) renderAccountTOTP(w http.ResponseWriter, r *http.Request, status int, u *user, hash, secret, msg string) {
	l.renderForm(w, r, status, formPage{
		Title: "Set up a second factor", Lead: "Signed in as " + u.Username + ". Once set up, every sign-in asks for a code from your authenticator app after the password.",
		Action: accountTOTPPath, Hidden: []formHidden{{"csrf", l.accountCSRF(hash)}},
		Fields: []formField{totpCodeField}, Error: msg, Submit: "Confirm", Secret: secret, URI: totpURI(u.Username, secret),
	})
}

// showAccountTOTP starts an enrolment of the signed-in user, unless a
// factor is enrolled already (an administrator's reset removes it).
func (l *loginUI) showAccountTOTP(w http.ResponseWriter, r *http.Request) {
	u, hash, ok := l.accountSession(w, r)
	if !ok {
		return
	}
	st, err := l.s.store.lifecycle(r.Context(), l.s.db, u.ID)
	if err != nil {
		l.failed(w, r, "read the account's lifecycle", err)
		return
	}
	if st.TOTPSecret != "" {
		l.showMessage(w, r, http.StatusOK, "Second factor set up",
			"Your account already has a second factor. To replace a lost one, ask an administrator for a password reset.")
		return
	}
	secret, _, err := l.s.startTOTPEnrolment(r.Context(), u)
	if err != nil {
		l.failed(w, r, "start a TOTP enrolment", err)
		return
	}
	l.renderAccountTOTP(w, r, http.StatusOK, u, hash, secret, "")
}

// submitAccountTOTP confirms the signed-in user's enrolment with a code.
func (l *loginUI) submitAccountTOTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	u, hash, ok := l.accountPost(w, r)
	if !ok {
		return
	}
	res, locked, ok := l.totpAttempt(w, r, u)
	if !ok {
		l.showMessage(w, r, http.StatusTooManyRequests, "Not set up", throttledCodeMessage(locked))
		return
	}
	defer res.abandon()
	secret, good, err := l.s.confirmEnrolment(ctx, u, r.PostForm.Get("code"))
	if err != nil {
		l.failed(w, r, "confirm the TOTP enrolment", err)
		return
	}
	if secret == "" {
		l.showMessage(w, r, http.StatusConflict, "Not set up", "There is no set-up in progress. Open the page again.")
		return
	}
	if !good {
		res.failed()
		l.renderAccountTOTP(w, r, http.StatusUnauthorized, u, hash, secret, wrongCode)
		return
	}
	res.succeeded()
	l.showMessage(w, r, http.StatusOK, "Second factor set up", "From now on every sign-in asks for a code from your authenticator app.")
}
