package iam

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"math"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/realguardio/realguardio/internal/platform/httpx"
)

// The login UI's paths.
const (
	loginPath     = "/login"
	loggedOutPath = "/logged-out"
	csrfCookie    = "rg_login_csrf"
)

// The only message a failed login shows: it must not reveal whether the
// username exists, the password was wrong or the account is disabled.
const invalidCredentials = "The e-mail address or password is not right. Check both and try again."

//go:embed templates/*.html
var templatesFS embed.FS

// loginUI serves the login form. The form is bound to one authorization
// request: its CSRF token is an HMAC of the request id under an instance
// secret, also set as a SameSite=Strict cookie, and both must match on
// submit.
type loginUI struct {
	s       *Service
	login   *template.Template
	message *template.Template
	secure  bool
	// csp is the page's Content-Security-Policy; see formActionSources.
	csp string
	// sleep waits out the throttle's progressive delay; tests replace it.
	sleep func(ctx context.Context, d time.Duration)
	// authenticate is Service.authenticate; tests wrap it to count and
	// hold the password checks that concurrent submissions reach.
	authenticate func(ctx context.Context, username, password string) (*user, bool)
}

func newLoginUI(s *Service) (*loginUI, error) {
	// base.html holds the style and the header and footer both pages share.
	login, err := template.ParseFS(templatesFS, "templates/login.html", "templates/base.html")
	if err != nil {
		return nil, err
	}
	message, err := template.ParseFS(templatesFS, "templates/message.html", "templates/base.html")
	if err != nil {
		return nil, err
	}
	return &loginUI{
		s: s, login: login, message: message, authenticate: s.authenticate,
		secure: strings.HasPrefix(s.cfg.Issuer, "https://"),
		csp:    "default-src 'none'; style-src 'unsafe-inline'; form-action " + formActionSources(s.clients) + "; frame-ancestors 'none'",
		sleep: func(ctx context.Context, d time.Duration) {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-ctx.Done():
			case <-t.C:
			}
		},
	}, nil
}

type loginPage struct {
	Form          bool
	Action        string
	AuthRequestID string
	CSRF          string
	Username      string
	Error         string
}

func (l *loginUI) csrfToken(authRequestID string) string {
	m := hmac.New(sha256.New, l.s.csrfKey)
	m.Write([]byte("login-csrf:" + authRequestID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (l *loginUI) headers(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", l.csp)
	h.Set("Referrer-Policy", "no-referrer")
}

func (l *loginUI) render(w http.ResponseWriter, r *http.Request, status int, p loginPage) {
	p.Form = true
	p.Action = loginPath
	p.CSRF = l.csrfToken(p.AuthRequestID)
	http.SetCookie(w, &http.Cookie{
		Name: csrfCookie, Value: p.CSRF, Path: loginPath, HttpOnly: true, Secure: l.secure,
		SameSite: http.SameSiteStrictMode, MaxAge: int(l.s.cfg.LoginTimeout / time.Second),
	})
	l.headers(w)
	w.WriteHeader(status)
	if err := l.login.Execute(w, p); err != nil {
		httpx.LoggerFrom(r.Context()).ErrorContext(r.Context(), "render login page", "err", err)
	}
}

// messagePage is a page with a title and one sentence and no form; Error
// shows the sentence as an alert.
type messagePage struct {
	Title, Message string
	Error          bool
}

func (l *loginUI) showMessage(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	l.headers(w)
	w.WriteHeader(status)
	if err := l.message.Execute(w, messagePage{Title: title, Message: msg, Error: status >= 400}); err != nil {
		httpx.LoggerFrom(r.Context()).ErrorContext(r.Context(), "render message page", "err", err)
	}
}

// pending reports whether id names an authorization request still waiting
// for its login.
func (l *loginUI) pending(ctx context.Context, id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	a, err := l.s.store.authRequestByID(ctx, id)
	return err == nil && !a.IsDone && l.s.now().Before(a.ExpiresAt)
}

func (l *loginUI) expired(w http.ResponseWriter, r *http.Request) {
	l.showMessage(w, r, http.StatusBadRequest, "Sign-in link expired",
		"This sign-in link is no longer valid: it has expired or was already used. Go back to the application and sign in again.")
}

// show renders the login form, unless the browser's IAM session may
// answer the request (single sign-on): then the request is completed for
// the session's user at once, with the session's auth_time.
func (l *loginUI) show(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.URL.Query().Get("authRequestID")
	if !l.pending(ctx, id) {
		l.expired(w, r)
		return
	}
	a, err := l.s.store.authRequestByID(ctx, id)
	if err != nil {
		l.expired(w, r)
		return
	}
	if b, hash := l.s.currentSession(ctx, r.Header); b != nil && l.s.sessionAnswers(a.Prompt, a.MaxAge, b) && l.s.sessionMaySkipLogin(ctx, b) {
		now := l.s.now()
		err := l.s.store.completeLogin(ctx, id, b.UserID, b.AuthTime, b.AMR, now)
		if err == nil {
			if err := l.s.store.touchBrowserSession(ctx, hash, now); err != nil {
				httpx.LoggerFrom(ctx).ErrorContext(ctx, "touch browser session", "err", err)
			}
			l.s.metrics.logins.Inc()
			http.Redirect(w, r, l.s.authCallbackURL(id), http.StatusFound)
			return
		}
		if !errors.Is(err, errNotFound) {
			httpx.LoggerFrom(ctx).ErrorContext(ctx, "complete login from the browser session", "err", err)
		}
	}
	l.render(w, r, http.StatusOK, loginPage{AuthRequestID: id})
}

func (l *loginUI) submit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		l.showMessage(w, r, http.StatusBadRequest, "Sign-in failed", "The sign-in form could not be read. Go back to the application and sign in again.")
		return
	}
	id := r.PostForm.Get("authRequestID")
	username := strings.TrimSpace(r.PostForm.Get("username"))
	password := r.PostForm.Get("password")
	want := l.csrfToken(id)
	cookie, _ := r.Cookie(csrfCookie)
	if id == "" || !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(want)) || cookie == nil || !hmac.Equal([]byte(cookie.Value), []byte(want)) {
		l.s.metrics.loginFailures.WithLabelValues("csrf").Inc()
		l.showMessage(w, r, http.StatusForbidden, "Sign-in refused",
			"Your password was not checked: the sign-in form had expired or was not sent from this page. Go back to the application and sign in again.")
		return
	}
	if !l.pending(ctx, id) {
		l.expired(w, r)
		return
	}
	key := usernameKey(username)
	// The attempt is reserved before the password is checked, so that
	// parallel submissions count against the limit at once instead of all
	// passing the check before any failure is recorded.
	res, delay, locked := l.s.throttle.begin(attempt{account: key, address: l.s.clientAddr(r), device: l.s.devices.nonce(r, key)})
	if res == nil {
		l.s.metrics.loginFailures.WithLabelValues("throttled").Inc()
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(locked.Seconds()))))
		l.render(w, r, http.StatusTooManyRequests, loginPage{AuthRequestID: id, Username: username, Error: throttledMessage(locked)})
		return
	}
	defer res.abandon()
	if delay > 0 {
		l.sleep(ctx, delay)
	}
	u, ok := l.authenticate(ctx, username, password)
	if !ok {
		res.failed()
		l.s.metrics.loginFailures.WithLabelValues("credentials").Inc()
		l.render(w, r, http.StatusUnauthorized, loginPage{AuthRequestID: id, Username: username, Error: invalidCredentials})
		return
	}
	res.succeeded()
	l.s.devices.issue(w, key)
	// The password is proved; what else the account owes (a new
	// password, a second factor) comes before the code (lifecycle.go).
	l.next(w, r, id, u, l.s.now())
}

// throttledMessage tells a throttled user, in plain words, when to try
// again (whole minutes, rounded up) and that this attempt's password was
// not checked, so it says nothing about whether the password was right.
func throttledMessage(locked time.Duration) string {
	minutes := int(math.Ceil(locked.Minutes()))
	unit := " minutes"
	if minutes <= 1 {
		minutes, unit = 1, " minute"
	}
	return "Too many failed attempts; try again in " + strconv.Itoa(minutes) + unit + ". Your password was not checked."
}

func (l *loginUI) loggedOut(w http.ResponseWriter, r *http.Request) {
	l.showMessage(w, r, http.StatusOK, "Signed out", "You are signed out of RealGuardIO.")
}

// authenticate checks a username and password. Unknown and disabled users
// cost the same password hashing as known ones, so timing reveals nothing.
func (s *Service) authenticate(ctx context.Context, username, password string) (*user, bool) {
	u, err := s.store.userByUsername(ctx, s.db, username)
	hash := dummyHash
	if err == nil {
		hash = u.PasswordHash
	}
	ok, verr := verifyPassword(hash, password)
	if err != nil || verr != nil || !ok || !u.Enabled {
		return nil, false
	}
	return u, true
}

// formActionSources lists the CSP form-action sources of the login page:
// the IAM itself and the origins of every client's redirect URIs. Browsers
// (Chromium) apply form-action to the redirects that follow the form's POST
// too, and a successful login ends in a redirect to the client's callback;
// 'self' alone would block it. A public client's loopback redirect may use
// any port (RFC 8252 §7.3), hence the port wildcard.
func formActionSources(clients map[string]*client) string {
	seen := map[string]bool{"'self'": true}
	out := []string{"'self'"}
	add := func(src string) {
		if !seen[src] {
			seen[src] = true
			out = append(out, src)
		}
	}
	ids := make([]string, 0, len(clients))
	for id := range clients {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		c := clients[id]
		for _, raw := range c.cfg.RedirectURIs {
			u, err := url.Parse(raw)
			if err != nil || u.Host == "" {
				continue
			}
			if c.cfg.Public && isLoopbackHost(u.Hostname()) {
				add(u.Scheme + "://" + hostForCSP(u.Hostname()) + ":*")
				continue
			}
			add(u.Scheme + "://" + u.Host)
		}
	}
	return strings.Join(out, " ")
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func hostForCSP(h string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}
