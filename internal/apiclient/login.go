package apiclient

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/net/html"
	"golang.org/x/oauth2"
)

// PendingLogin is an authorization request of the CLI client waiting for
// its redirect (RFC 8252 native-app flow): a listener on a loopback port
// receives the code, which is then exchanged with the PKCE verifier.
type PendingLogin struct {
	// URL is the authorization URL the user (or a scripted browser) opens.
	URL string

	provider *Provider
	conf     *oauth2.Config
	state    string
	nonce    string
	verifier string
	srv      *http.Server
	got      chan callback
}

type callback struct {
	code string
	err  error
}

// StartLogin listens on 127.0.0.1 on a free port and prepares an
// authorization request (PKCE S256, state, nonce) whose redirect URI is
// http://127.0.0.1:{port}/callback, the loopback redirect the IAM accepts on
// any port (RFC 8252 §7.3). Close it when done.
func (p *Provider) StartLogin(ctx context.Context) (*PendingLogin, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the login's redirect: %w", err)
	}
	redirect := fmt.Sprintf("http://127.0.0.1:%d/callback", ln.Addr().(*net.TCPAddr).Port)
	pl := &PendingLogin{
		provider: p,
		conf:     p.config(redirect),
		state:    randomHex(16),
		nonce:    randomHex(16),
		verifier: oauth2.GenerateVerifier(),
		got:      make(chan callback, 1),
	}
	pl.URL = pl.conf.AuthCodeURL(pl.state, oauth2.S256ChallengeOption(pl.verifier), oidc.Nonce(pl.nonce))
	pl.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(pl.serveCallback)}
	go func() { _ = pl.srv.Serve(ln) }()
	return pl, nil
}

// callbackPage is what the browser shows once the redirect arrived.
var callbackPage = template.Must(template.New("callback").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>RealGuardIO</title></head>
<body style="font-family: sans-serif; margin: 3em"><h1>{{.Title}}</h1><p>{{.Text}}</p></body></html>
`))

func (pl *PendingLogin) serveCallback(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/callback" {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	cb := callback{code: q.Get("code")}
	switch {
	case q.Get("state") != pl.state:
		// Not an answer to this request (a stale tab, or a forged
		// redirect): ignored, so it cannot end the login.
		http.Error(w, "This is not the answer to the pending login.", http.StatusBadRequest)
		return
	case q.Get("error") != "":
		cb.err = fmt.Errorf("the IAM Service refused the login: %s: %s", q.Get("error"), q.Get("error_description"))
	case cb.code == "":
		cb.err = errors.New("the login's redirect carried no code")
	}
	select {
	case pl.got <- cb:
	default:
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	page := struct{ Title, Text string }{"Logged in", "You may close this window and return to the terminal."}
	if cb.err != nil {
		page = struct{ Title, Text string }{"Login failed", cb.err.Error()}
	}
	_ = callbackPage.Execute(w, page)
}

// Close stops listening for the redirect.
func (pl *PendingLogin) Close() error { return pl.srv.Close() }

// Wait waits for the redirect, exchanges the code with the PKCE verifier and
// verifies the ID token with go-oidc (signature against the JWKS, issuer,
// audience, expiry), its nonce and its at_hash. username is recorded in
// the session; "" takes the ID token's preferred_username.
func (pl *PendingLogin) Wait(ctx context.Context, username string) (*Session, error) {
	select {
	case cb := <-pl.got:
		return pl.finish(ctx, cb, username)
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the login in the browser: %w", ctx.Err())
	}
}

// received returns the redirect if it has arrived.
func (pl *PendingLogin) received() (callback, bool) {
	select {
	case cb := <-pl.got:
		return cb, true
	default:
		return callback{}, false
	}
}

func (pl *PendingLogin) finish(ctx context.Context, cb callback, username string) (*Session, error) {
	if cb.err != nil {
		return nil, cb.err
	}
	p := pl.provider
	octx := p.ctx(ctx)
	tok, err := pl.conf.Exchange(octx, cb.code, oauth2.VerifierOption(pl.verifier))
	if err != nil {
		return nil, fmt.Errorf("exchange the code: %w", describeOAuthError(err))
	}
	rawID, _ := tok.Extra("id_token").(string)
	idTok, err := p.verifier.Verify(octx, rawID)
	if err != nil {
		return nil, fmt.Errorf("verify the ID token: %w", err)
	}
	if idTok.Nonce != pl.nonce {
		return nil, errors.New("the ID token's nonce is not the one of this login")
	}
	if idTok.AccessTokenHash != "" {
		if err := idTok.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, fmt.Errorf("the ID token's at_hash: %w", err)
		}
	}
	if username == "" {
		var claims struct {
			PreferredUsername string `json:"preferred_username"`
		}
		_ = idTok.Claims(&claims)
		username = claims.PreferredUsername
	}
	if username == "" {
		// The IAM puts the profile claims in the UserInfo answer rather
		// than the ID token (OIDC Core §5.4 allows either); a failure
		// leaves the session anonymous, never the login failed.
		if ui, err := p.oidc.UserInfo(octx, oauth2.StaticTokenSource(tok)); err == nil {
			var claims struct {
				PreferredUsername string `json:"preferred_username"`
			}
			_ = ui.Claims(&claims)
			username = cmp.Or(claims.PreferredUsername, ui.Email)
		}
	}
	return &Session{Username: username, Subject: idTok.Subject, provider: p, token: tok}, nil
}

// ErrPasswordChangeRequired is the IAM asking the user to replace a
// password someone else chose (an initial or generated one, or one an
// administrator set) before the login can complete: no code is issued
// until a new password is stored. Login reports it, wrapped, instead of
// the login failing for an unknown reason; LoginChangingPassword answers
// the question.
var ErrPasswordChangeRequired = errors.New("the IAM asks for a new password before this account may log in (its password was set by someone else)")

// Login logs username in without a person at a browser: it starts a
// login, lets a browser-like HTTP client with a cookie jar open the
// authorization URL and submit the IAM's HTML login form (SubmitLoginForm),
// and completes the flow at the loopback callback. An account whose
// password must be changed first fails with ErrPasswordChangeRequired
// (the password was right, and nothing changed); log it in with
// LoginChangingPassword.
func (p *Provider) Login(ctx context.Context, username, password string) (*Session, error) {
	return p.login(ctx, username, password, "")
}

// LoginChangingPassword is Login for an account whose password was set by
// someone else: when the IAM shows its change-password page after the
// password, newPassword is entered there (twice, as a person would) and
// the login goes on to the callback; from then on the account logs in with
// newPassword. It is an error when the IAM asks for no change, so a
// caller's notion of the account's password never silently goes wrong.
func (p *Provider) LoginChangingPassword(ctx context.Context, username, password, newPassword string) (*Session, error) {
	if newPassword == "" {
		return nil, errors.New("login: an empty new password")
	}
	return p.login(ctx, username, password, newPassword)
}

func (p *Provider) login(ctx context.Context, username, password, newPassword string) (*Session, error) {
	pl, err := p.StartLogin(ctx)
	if err != nil {
		return nil, err
	}
	defer pl.Close()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: p.hc.Timeout, Transport: p.hc.Transport}
	page, err := SubmitLoginForm(ctx, browser, pl.URL, username, password)
	if err != nil {
		return nil, fmt.Errorf("login %s: %w", username, err)
	}
	changed := false
	if page.PasswordChangeRequired {
		if newPassword == "" {
			return nil, fmt.Errorf("login %s: %w", username, ErrPasswordChangeRequired)
		}
		if page, err = SubmitPasswordChange(ctx, browser, page, newPassword); err != nil {
			return nil, fmt.Errorf("login %s: %w", username, err)
		}
		changed = true
	}
	// The browser followed the redirects to the callback before the form's
	// POST returned, so the code is there unless the login went elsewhere
	// (wrong password: the form again).
	cb, ok := pl.received()
	if !ok {
		return nil, fmt.Errorf("login %s: the login form did not lead to the callback (status %d at %s): %s", username, page.Status, page.URL, page.Snippet)
	}
	if newPassword != "" && !changed {
		return nil, fmt.Errorf("login %s: the IAM asked for no password change; the password is still the old one", username)
	}
	se, err := pl.finish(ctx, cb, username)
	if err != nil {
		return nil, fmt.Errorf("login %s: %w", username, err)
	}
	return se, nil
}

// LoginPage is where a submitted login form ended: the final status, URL
// and a snippet of the page, for messages.
type LoginPage struct {
	Status  int
	URL     string
	Snippet string
	// PasswordChangeRequired is set when the page is the IAM's
	// change-password step (a form with a new_password field): the
	// password was accepted, but the account must replace it before a
	// code is issued. SubmitPasswordChange fills that form.
	PasswordChangeRequired bool

	page []byte   // the page, for the change-password form
	base *url.URL // the page's URL, for the form's action
}

// SubmitLoginForm does what a person does in the browser: browser (which
// needs a cookie jar, as the IAM keeps the authorization request in a
// cookie-bound session) opens authURL, the login form is found on the page
// (the form holding a password input), filled with username and password
// and submitted with every other field it carries (hidden CSRF and request
// fields), and the redirects are followed, to the client's redirect URI
// when the credentials are accepted.
func SubmitLoginForm(ctx context.Context, browser *http.Client, authURL, username, password string) (LoginPage, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", authURL, nil)
	if err != nil {
		return LoginPage{}, err
	}
	resp, err := browser.Do(req)
	if err != nil {
		return LoginPage{}, fmt.Errorf("open the authorization URL: %w", err)
	}
	page, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return LoginPage{}, fmt.Errorf("the authorization request answered %d: %s", resp.StatusCode, Snippet(page))
	}
	form, err := parseForm(page, resp.Request.URL, "password")
	if err != nil {
		return LoginPage{}, err
	}
	form.values.Set("username", username)
	form.values.Set("password", password)
	req, err = http.NewRequestWithContext(ctx, "POST", form.action, strings.NewReader(form.values.Encode()))
	if err != nil {
		return LoginPage{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = browser.Do(req)
	if err != nil {
		// The error names the URL, which holds no credential: they
		// travel in the body.
		return LoginPage{}, fmt.Errorf("submit the login form: %w", err)
	}
	return readLoginPage(resp), nil
}

// readLoginPage reads where a form's submission ended.
func readLoginPage(resp *http.Response) LoginPage {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	lp := LoginPage{Status: resp.StatusCode, URL: resp.Request.URL.Redacted(), Snippet: Snippet(body), page: body, base: resp.Request.URL}
	if f, err := parseForm(body, resp.Request.URL, "new_password"); err == nil && f.has("confirm_password") {
		lp.PasswordChangeRequired = true
	}
	return lp
}

// SubmitPasswordChange does what a person does on the IAM's
// change-password page (page.PasswordChangeRequired, the step after a
// password someone else chose): it enters newPassword in both fields,
// submits the form with its hidden fields through browser (the same
// client, whose cookies bind the step to the login) and follows the
// redirects, to the client's redirect URI when the IAM accepts the new
// password. A refused password (too short, the old one) leaves the
// change page shown again, with the IAM's reason in the error.
func SubmitPasswordChange(ctx context.Context, browser *http.Client, page LoginPage, newPassword string) (LoginPage, error) {
	if !page.PasswordChangeRequired {
		return LoginPage{}, errors.New("the page is not the IAM's change-password step")
	}
	form, err := parseForm(page.page, page.base, "new_password")
	if err != nil {
		return LoginPage{}, err
	}
	form.values.Set("new_password", newPassword)
	form.values.Set("confirm_password", newPassword)
	req, err := http.NewRequestWithContext(ctx, "POST", form.action, strings.NewReader(form.values.Encode()))
	if err != nil {
		return LoginPage{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := browser.Do(req)
	if err != nil {
		return LoginPage{}, fmt.Errorf("submit the change-password form: %w", err)
	}
	next := readLoginPage(resp)
	if next.PasswordChangeRequired {
		return next, fmt.Errorf("the IAM refused the new password (status %d): %s", next.Status, next.Snippet)
	}
	return next, nil
}

type loginForm struct {
	action string
	values url.Values
}

// has reports whether the form has an input named name.
func (f loginForm) has(name string) bool { _, ok := f.values[name]; return ok }

// parseForm finds the form holding the password input named field and
// returns its absolute action and every named input's value, hidden
// fields included, the way a browser would submit it.
func parseForm(page []byte, base *url.URL, field string) (loginForm, error) {
	doc, err := html.Parse(strings.NewReader(string(page)))
	if err != nil {
		return loginForm{}, fmt.Errorf("parse the login page: %w", err)
	}
	var forms []*html.Node
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "form" {
			forms = append(forms, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	for _, f := range forms {
		values := url.Values{}
		hasPassword := false
		var inputs func(n *html.Node)
		inputs = func(n *html.Node) {
			if n.Type == html.ElementNode && n.Data == "input" {
				name, value, typ := attr(n, "name"), attr(n, "value"), strings.ToLower(attr(n, "type"))
				if typ == "password" && name == field {
					hasPassword = true
				}
				if name != "" && typ != "submit" && typ != "button" {
					values.Set(name, value)
				}
			}
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				inputs(c)
			}
		}
		inputs(f)
		if !hasPassword {
			continue
		}
		if method := strings.ToLower(attr(f, "method")); method != "post" {
			return loginForm{}, fmt.Errorf("the login form's method is %q, want post", method)
		}
		action, err := base.Parse(attr(f, "action"))
		if err != nil {
			return loginForm{}, fmt.Errorf("login form action: %w", err)
		}
		return loginForm{action: action.String(), values: values}, nil
	}
	return loginForm{}, fmt.Errorf("no form with the password field %s on the page: %s", field, Snippet(page))
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
