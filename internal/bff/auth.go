package bff

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/httpx"
)

// loginTTL bounds how long a user may take on the IAM's login page.
const loginTTL = 10 * time.Minute

// safeReturnTo returns p when it is a path on this site, "/" otherwise, so
// that ?returnTo= can never send the user to another origin (no scheme, no
// host, no "//" or "/\" that browsers read as a host).
func safeReturnTo(p string) string {
	if p == "" || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return "/"
	}
	if strings.ContainsAny(p, "\\\r\n\t") {
		return "/"
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return p
}

// handleLogin starts the authorization code flow with PKCE S256, a state and
// a nonce, remembered in a short-lived encrypted cookie named after the
// state, so that logins started in several tabs do not overwrite each other.
func (s *Service) handleLogin(w http.ResponseWriter, r *http.Request) {
	d, err := s.iam.get(r.Context())
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	if err := s.iam.reachable(r.Context()); err != nil {
		// Our own page (503) rather than a redirect to a dead host.
		s.renderError(w, r, apperr.Wrap(err, apperr.Unavailable, "the identity service is not reachable; try again in a moment"))
		return
	}
	ls := loginState{
		State:    randomToken(24),
		Nonce:    randomToken(24),
		Verifier: oauth2.GenerateVerifier(),
		ReturnTo: safeReturnTo(r.URL.Query().Get("returnTo")),
	}
	value, err := s.codec.seal(purposeLogin, ls, loginTTL)
	if err != nil {
		s.renderError(w, r, apperr.Wrap(err, apperr.Internal, "seal login state"))
		return
	}
	http.SetCookie(w, s.jar.cookie(s.jar.loginName(ls.State[:12]), value, int(loginTTL/time.Second)))
	target := d.oauth.AuthCodeURL(ls.State, oauth2.S256ChallengeOption(ls.Verifier), oidc.Nonce(ls.Nonce))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusFound)
}

// handleCallback completes the login: it checks state against the login
// cookie, exchanges the code with the PKCE verifier, verifies the ID token
// and its nonce, and starts the session.
func (s *Service) handleCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	if len(state) < 12 {
		s.loginFailed(w, r, apperr.New(apperr.Malformed, "the login response has no valid state; please sign in again"))
		return
	}
	cookieName := s.jar.loginName(state[:12])
	c, err := r.Cookie(cookieName)
	var ls loginState
	if err != nil || s.codec.open(purposeLogin, c.Value, &ls) != nil ||
		subtle.ConstantTimeCompare([]byte(ls.State), []byte(state)) != 1 {
		s.loginFailed(w, r, apperr.New(apperr.Malformed, "this login was not started here or took too long; please sign in again"))
		return
	}
	// One use only: a replayed callback finds no state.
	http.SetCookie(w, s.jar.cookie(cookieName, "", -1))
	if e := q.Get("error"); e != "" {
		s.loginFailed(w, r, apperr.New(apperr.Forbidden, "the identity service refused the login (%s)", e))
		return
	}
	code := q.Get("code")
	if code == "" {
		s.loginFailed(w, r, apperr.New(apperr.Malformed, "the login response has no code; please sign in again"))
		return
	}
	d, err := s.iam.get(r.Context())
	if err != nil {
		s.loginFailed(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.IAMTimeout)
	defer cancel()
	tok, err := d.oauth.Exchange(s.iam.ctx(ctx), code, oauth2.VerifierOption(ls.Verifier))
	if err != nil {
		s.loginFailed(w, r, tokenError(err, "the identity service did not accept the login"))
		return
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		s.loginFailed(w, r, apperr.New(apperr.Unauthenticated, "the identity service returned no ID token"))
		return
	}
	idt, err := d.verifier.Verify(ctx, rawID)
	if err != nil {
		s.loginFailed(w, r, apperr.Wrap(err, apperr.Unauthenticated, "the ID token is not valid"))
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(ls.Nonce)) != 1 {
		s.loginFailed(w, r, apperr.New(apperr.Unauthenticated, "the ID token does not belong to this login"))
		return
	}
	var idClaims struct {
		Name     string   `json:"name"`
		User     string   `json:"preferred_username"`
		Email    string   `json:"email"`
		Given    string   `json:"given_name"`
		Family   string   `json:"family_name"`
		RolesIDT []string `json:"roles"`
		SID      string   `json:"sid"`
	}
	_ = idt.Claims(&idClaims)
	if idClaims.Name == "" && idClaims.User == "" && idClaims.Email == "" {
		// Providers may keep profile claims out of the ID token and serve
		// them at the userinfo endpoint only; the display name is worth
		// one call per login.
		if info, err := d.provider.UserInfo(s.iam.ctx(ctx), oauth2.StaticTokenSource(tok)); err == nil && info.Subject == idt.Subject {
			_ = info.Claims(&idClaims)
		}
	}
	sess := &session{
		ID:      randomToken(18),
		CSRF:    randomToken(24),
		Subject: idt.Subject,
		IAMSID:  idClaims.SID,
		Created: s.now().Unix(),
	}
	applyTokens(sess, tok, s.now)
	sess.Name = firstNonEmpty(idClaims.Name, strings.TrimSpace(idClaims.Given+" "+idClaims.Family), idClaims.User, idClaims.Email, sess.Name, sess.Subject)
	if len(sess.Roles) == 0 {
		sess.Roles = idClaims.RolesIDT
	}
	if err := s.startSession(r.Context(), w, r, sess); err != nil {
		s.loginFailed(w, r, err)
		return
	}
	s.metrics.logins.WithLabelValues("ok").Inc()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, safeReturnTo(ls.ReturnTo), http.StatusFound)
}

func (s *Service) loginFailed(w http.ResponseWriter, r *http.Request, err error) {
	s.metrics.logins.WithLabelValues("failed").Inc()
	s.renderError(w, r, err)
}

// tokenError maps a token endpoint failure: a refusal (4xx, e.g.
// invalid_grant) means the credentials are no good; anything else means the
// IAM could not be asked.
func tokenError(err error, msg string) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode >= 400 && re.Response.StatusCode < 500 {
		return apperr.Wrap(err, apperr.Unauthenticated, "%s", msg)
	}
	return apperr.Wrap(err, apperr.Unavailable, "the identity service is not reachable; try again in a moment")
}

// applyTokens copies a token response into sess. A refresh response may omit
// the refresh or ID token; the old ones then stay.
func applyTokens(sess *session, tok *oauth2.Token, now func() time.Time) {
	sess.Access = tok.AccessToken
	sess.Issued = now().Unix()
	if tok.RefreshToken != "" {
		sess.Refresh = tok.RefreshToken
	}
	if id, _ := tok.Extra("id_token").(string); id != "" {
		sess.IDToken = id
	}
	var ac accessClaims
	_ = decodeJWTPart(tok.AccessToken, 1, &ac)
	switch {
	case !tok.Expiry.IsZero():
		sess.Expiry = tok.Expiry.Unix()
	case ac.Expiry > 0:
		sess.Expiry = ac.Expiry
	default:
		sess.Expiry = now().Add(5 * time.Minute).Unix()
	}
	if ac.Roles != nil {
		sess.Roles = ac.Roles
	}
	if sess.Name == "" {
		sess.Name = firstNonEmpty(ac.Name, ac.User)
	}
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// handleLogout ends the session at the BFF (its store row deleted, so every
// copy of the cookie is dead on every instance; cookies cleared), revokes the
// refresh token at the IAM (RFC 7009) and sends the browser to the IAM's
// end-session endpoint, which signs the user out there too and comes back to
// the BFF's home page. When the store cannot be reached the logout fails
// with 503 rather than pretend: the session would outlive it.
func (s *Service) handleLogout(w http.ResponseWriter, r *http.Request) {
	sess, err := s.readSession(r)
	if err != nil && !errors.Is(err, errNoSession) && !errors.Is(err, errStaleSession) {
		s.renderError(w, r, err)
		return
	}
	if sess != nil {
		token := r.Header.Get("X-CSRF-Token")
		if token == "" {
			token = r.PostFormValue("csrf_token")
		}
		if err := s.checkCSRF(r, sess, token); err != nil {
			s.renderError(w, r, err)
			return
		}
		if err := s.store.delete(r.Context(), hashID(sess.ID)); err != nil {
			s.renderError(w, r, s.storeError(r.Context(), "end a session", err))
			return
		}
	}
	s.jar.clearSession(w, r)
	w.Header().Set("Cache-Control", "no-store")
	home := s.cfg.PublicURL + "/"
	if sess == nil {
		http.Redirect(w, r, home, http.StatusSeeOther)
		return
	}
	d, err := s.iam.get(r.Context())
	if err != nil {
		http.Redirect(w, r, home, http.StatusSeeOther)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.IAMTimeout)
	defer cancel()
	// The refresh token is the long-lived credential; revoking it ends
	// the token family. The access token dies at its short expiry.
	s.iam.revoke(ctx, d, sess.Refresh, "refresh_token")
	if d.endSession == "" {
		http.Redirect(w, r, home, http.StatusSeeOther)
		return
	}
	q := url.Values{"post_logout_redirect_uri": {home}, "client_id": {s.cfg.ClientID}}
	if sess.IDToken != "" {
		q.Set("id_token_hint", sess.IDToken)
	}
	target := d.endSession
	if strings.Contains(target, "?") {
		target += "&" + q.Encode()
	} else {
		target += "?" + q.Encode()
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// handleMe returns who is signed in, for the UI's scripts.
func (s *Service) handleMe(w http.ResponseWriter, r *http.Request) {
	sess, err := s.currentSession(w, r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{
		"sub": sess.Subject, "name": sess.Name, "roles": sess.Roles,
		"strategy": s.cfg.Strategy, "accessTokenExpiry": time.Unix(sess.Expiry, 0).UTC().Format(time.RFC3339),
	})
}
