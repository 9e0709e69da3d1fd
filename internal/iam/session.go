package iam

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// sessionCookie carries the IAM's browser session: a random token whose
// hash names the session row. SameSite=Lax, because the browser reaches
// /authorize by a top-level navigation from the client's site, and that is
// exactly when single sign-on needs the cookie.
const sessionCookie = "rg_iam_session"

// currentSession returns the valid browser session of the request headers
// and the hash that names it, or nil: no cookie, unknown, past its
// lifetime, idle too long, or its user disabled.
func (s *Service) currentSession(ctx context.Context, h http.Header) (*browserSession, string) {
	c, err := (&http.Request{Header: h}).Cookie(sessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return nil, ""
	}
	hash := hashSecret(c.Value)
	b, err := s.store.browserSession(ctx, hash)
	if err != nil {
		return nil, ""
	}
	now := s.now()
	if !now.Before(b.ExpiresAt) || now.Sub(b.LastSeenAt) >= s.cfg.SessionIdleTimeout {
		return nil, ""
	}
	u, err := s.store.userByID(ctx, s.db, b.UserID)
	if err != nil || !u.Enabled {
		return nil, ""
	}
	return b, hash
}

// sessionAnswers reports whether browser session b may answer an
// authorization request without the login form: not when the request says
// prompt=login, nor when the password was proved longer ago than its
// max_age (negative: none).
func (s *Service) sessionAnswers(prompt []string, maxAge int64, b *browserSession) bool {
	if slices.Contains(prompt, oidc.PromptLogin) {
		return false
	}
	return maxAge < 0 || s.now().Sub(b.AuthTime) <= time.Duration(maxAge)*time.Second
}

// startSession begins a browser session for userID after a login with the
// methods amr (which the session remembers, so that the requests it
// answers claim no more than that login proved), replacing the browser's earlier one (a new token at every
// login, so a planted cookie never becomes a session).
func (s *Service) startSession(ctx context.Context, w http.ResponseWriter, r *http.Request, userID string, amr []string) error {
	s.endSession(ctx, r.Header)
	token := randomToken(32)
	now := s.now()
	if err := s.store.insertBrowserSession(ctx, hashSecret(token), browserSession{
		UserID: userID, AuthTime: now, LastSeenAt: now, ExpiresAt: now.Add(s.cfg.SessionLifetime),
		AMR: amr,
	}); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: token, Path: "/", HttpOnly: true, Secure: s.login.secure,
		SameSite: http.SameSiteLaxMode, MaxAge: int(s.cfg.SessionLifetime / time.Second),
	})
	return nil
}

// endSession deletes the browser session of the request headers, if any.
// Failing to delete it is logged: the cookie is cleared anyway.
func (s *Service) endSession(ctx context.Context, h http.Header) {
	c, err := (&http.Request{Header: h}).Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return
	}
	if err := s.store.deleteBrowserSession(ctx, hashSecret(c.Value)); err != nil {
		s.log.ErrorContext(ctx, "iam: end browser session", "err", err)
	}
}

// clearSessionCookie removes the browser's session cookie.
func (s *Service) clearSessionCookie(h http.Header) {
	h.Add("Set-Cookie", (&http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: s.login.secure, SameSite: http.SameSiteLaxMode}).String())
}
