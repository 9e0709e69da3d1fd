package iam

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/httpx"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
)

// Password reset by an administrator: the administrator never sees or
// sends a password. POST /api/users/{id}/password-reset returns a one-time
// code (and the link to the IAM's reset page that carries it); the user
// opens the page and chooses a new password. The code is random (about
// 140 bits), stored only as its SHA-256, expires after
// Config.PasswordResetLifetime, is spent by its first redemption, and a new
// code makes the user's earlier ones void. Redeeming sets the password,
// removes the second factor (the recovery for a lost phone) and ends every
// session and refresh token of the user.
const (
	resetPath       = "/reset"
	resetCSRFCookie = "rg_reset_csrf"
	// resetCodeLen is the code's length in passwordAlphabet (57
	// characters): 24 characters carry 140 bits.
	resetCodeLen = 24
)

// passwordResetView is the answer to an administrator's reset.
type passwordResetView struct {
	UserID    string    `json:"userId"`
	Code      string    `json:"code"`
	ResetURL  string    `json:"resetUrl"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// resetPassword issues a reset code for the user of the path. Who may is
// decided as for every other change of an account (usersAPI.load): an
// administrator for anyone, an organization service only for the
// employees it created, so an organization's administrator resets only
// the organization's employees, through the organization's service.
func (a *usersAPI) resetPassword(w http.ResponseWriter, r *http.Request) {
	caller, err := auth.MustCaller(r.Context())
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	u, ok := a.load(w, r)
	if !ok {
		return
	}
	if !u.Enabled {
		httpx.WriteError(w, r, apperr.New(apperr.Conflict, "the account is disabled; enable it before resetting its password"))
		return
	}
	code := randomString(resetCodeLen)
	now := a.s.now()
	expires := now.Add(a.s.cfg.PasswordResetLifetime)
	issuer := caller.ClientID
	if !caller.IsService {
		issuer = "user:" + caller.Subject
	}
	if err := a.s.store.insertPasswordReset(r.Context(), hashSecret(code), u.ID, issuer, now, expires); err != nil {
		httpx.WriteError(w, r, apperr.Wrap(err, apperr.Unavailable, "the user store is unavailable"))
		return
	}
	// The code itself is never logged.
	a.s.log.InfoContext(r.Context(), "iam: password reset code issued", "user", u.ID, "by", issuer, "expires", expires)
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusCreated, passwordResetView{
		UserID: u.ID, Code: code, ExpiresAt: expires.UTC().Truncate(time.Second),
		ResetURL: a.s.cfg.Issuer + resetPath + "?code=" + url.QueryEscape(code),
	})
}

func (l *loginUI) resetCSRF(nonce string) string {
	m := hmac.New(sha256.New, l.s.csrfKey)
	m.Write([]byte("reset-csrf:" + nonce))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// renderReset shows the reset form with a fresh double-submit CSRF pair:
// a random nonce in a SameSite=Strict cookie and its HMAC in the form.
func (l *loginUI) renderReset(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	nonce := randomToken(16)
	http.SetCookie(w, &http.Cookie{Name: resetCSRFCookie, Value: nonce, Path: resetPath, HttpOnly: true, Secure: l.secure,
		SameSite: http.SameSiteStrictMode, MaxAge: int(l.s.cfg.PasswordResetLifetime / time.Second)})
	codeField := formField{Name: "code", Label: "Reset code", Type: "text", Autocomplete: "off", Value: code,
		Hint: "The one-time code your administrator gave you."}
	l.renderForm(w, r, status, formPage{
		Title: "Set a new password", Lead: "Choose the new password of your RealGuardIO account.",
		Action: resetPath, Hidden: []formHidden{{"csrf", l.resetCSRF(nonce)}},
		Fields: []formField{codeField, newPasswordField, confirmPasswordField}, Error: msg, Submit: "Set password",
	})
}

// showReset is the reset page; a link's code fills the field but is not
// spent until the form is sent.
func (l *loginUI) showReset(w http.ResponseWriter, r *http.Request) {
	code := r.URL.Query().Get("code")
	if len(code) > 64 {
		code = ""
	}
	l.renderReset(w, r, http.StatusOK, code, "")
}

const invalidResetCode = "This reset code is not valid: it is wrong, has expired or was already used. Ask your administrator for a new one."

// submitReset redeems a reset code. The new password is checked before the
// code is looked up, so that a typo does not spend the code; redemption
// attempts are throttled per client address like logins.
func (l *loginUI) submitReset(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		l.showMessage(w, r, http.StatusBadRequest, "Not changed", "The form could not be read. Open the reset link again.")
		return
	}
	cookie, _ := r.Cookie(resetCSRFCookie)
	if cookie == nil || cookie.Value == "" || !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(l.resetCSRF(cookie.Value))) {
		l.showMessage(w, r, http.StatusForbidden, "Not changed",
			"Nothing was changed: the form had expired or was not sent from this page. Open the reset link again.")
		return
	}
	code := strings.TrimSpace(r.PostForm.Get("code"))
	hash, msg := newPasswordHash(nil, r.PostForm.Get("new_password"), r.PostForm.Get("confirm_password"))
	if msg != "" {
		l.renderReset(w, r, http.StatusUnprocessableEntity, code, msg)
		return
	}
	if hash == "" {
		l.failed(w, r, "hash password", errHashing)
		return
	}
	addr := l.s.clientAddr(r)
	res, delay, locked := l.s.throttle.begin(attempt{account: "reset-code\x00" + addressKey(addr), address: addr})
	if res == nil {
		l.s.metrics.loginFailures.WithLabelValues("throttled").Inc()
		l.renderReset(w, r, http.StatusTooManyRequests, code, strings.Replace(throttledMessage(locked), "Your password was not checked.", "Your code was not checked.", 1))
		return
	}
	defer res.abandon()
	if delay > 0 {
		l.sleep(ctx, delay)
	}
	var userID string
	var ended []userSession
	err := l.s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if len(code) == 0 || len(code) > 64 {
			return errNotFound
		}
		now := l.s.now()
		id, err := l.s.store.consumePasswordReset(ctx, tx, hashSecret(code), now)
		if err != nil {
			return err
		}
		u, err := l.s.store.userByID(ctx, tx, id)
		if err != nil {
			return err
		}
		if !u.Enabled {
			return errNotFound
		}
		if ended, err = l.s.store.userSessions(ctx, tx, id); err != nil {
			return err
		}
		if err := l.s.store.setOwnPassword(ctx, tx, id, hash, "", now); err != nil {
			return err
		}
		userID = id
		return l.s.store.clearTOTP(ctx, tx, id, now)
	})
	if errors.Is(err, errNotFound) {
		res.failed()
		l.s.metrics.loginFailures.WithLabelValues("reset_code").Inc()
		l.renderReset(w, r, http.StatusBadRequest, "", invalidResetCode)
		return
	}
	if err != nil {
		l.failed(w, r, "redeem a password reset code", err)
		return
	}
	res.succeeded()
	l.s.log.InfoContext(ctx, "iam: password reset code redeemed", "user", userID)
	// Sessions at the clients made with the old password end now, not at
	// their next refresh; by their sid, so that a late retry spares a
	// login made with the new password (logoutSessions).
	l.s.backchannel.logoutSessions(ctx, userID, ended)
	http.SetCookie(w, &http.Cookie{Name: resetCSRFCookie, Value: "", Path: resetPath, MaxAge: -1, HttpOnly: true, Secure: l.secure, SameSite: http.SameSiteStrictMode})
	l.showMessage(w, r, http.StatusOK, "Password set",
		"Your new password is set, and you are signed out everywhere. Go back to the application and sign in with it.")
}
