package systemtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/net/html"
	"golang.org/x/oauth2"
)

// CLIClientID is the IAM Service's public client for command-line use
// (API.md): authorization code with PKCE, loopback redirect on any port.
const CLIClientID = "realguardio-cli"

type oidcProvider struct {
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
}

// provider discovers the IAM Service once per system.
func (s *System) provider(ctx context.Context) (*oidcProvider, error) {
	s.oidcOnce.Do(func() {
		p, err := oidc.NewProvider(oidc.ClientContext(ctx, s.http), s.Issuer)
		if err != nil {
			s.oidcErr = fmt.Errorf("OIDC discovery at %s: %w", s.Issuer, err)
			return
		}
		s.oidc = &oidcProvider{provider: p, verifier: p.Verifier(&oidc.Config{ClientID: CLIClientID})}
	})
	return s.oidc, s.oidcErr
}

// Session is a user logged in through the OIDC flow: the verified ID
// token's subject and the current tokens, refreshable with the refresh
// token. It is safe for concurrent use.
type Session struct {
	// Username is the login name (an employee's e-mail address).
	Username string
	// Subject is the verified ID token's sub: the user's immutable id.
	Subject string

	conf *oauth2.Config
	hc   *http.Client

	mu    sync.Mutex
	token *oauth2.Token
}

// AccessToken returns the current access token.
func (se *Session) AccessToken() string {
	se.mu.Lock()
	defer se.mu.Unlock()
	return se.token.AccessToken
}

// Refresh redeems the refresh token for new tokens (the IAM rotates the
// refresh token). The provide strategy needs it: a token carries the
// authorization facts of the moment it was issued.
func (se *Session) Refresh(ctx context.Context) error {
	se.mu.Lock()
	rt := se.token.RefreshToken
	se.mu.Unlock()
	if rt == "" {
		return fmt.Errorf("refresh %s: no refresh token was issued", se.Username)
	}
	ctx = oidc.ClientContext(ctx, se.hc)
	tok, err := se.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
	if err != nil {
		return fmt.Errorf("refresh %s: %w", se.Username, err)
	}
	se.mu.Lock()
	se.token = tok
	se.mu.Unlock()
	return nil
}

// Login logs username in as a person at a terminal would with the CLI
// client: the harness listens on a loopback port for the redirect, a
// browser-like HTTP client with a cookie jar opens the authorization URL
// (PKCE S256, state, nonce), submits the IAM's HTML login form with every
// field the form carries, and the code arriving at the loopback callback is
// exchanged with golang.org/x/oauth2; go-oidc verifies the ID token
// (signature against the JWKS, issuer, audience, expiry, nonce, at_hash).
// The session is remembered so WaitConverged can refresh it when the
// strategy needs fresh tokens.
func (s *System) Login(ctx context.Context, username, password string) (*Session, error) {
	p, err := s.provider(ctx)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	redirect := fmt.Sprintf("http://127.0.0.1:%d/callback", ln.Addr().(*net.TCPAddr).Port)
	conf := &oauth2.Config{
		ClientID:    CLIClientID,
		Endpoint:    p.provider.Endpoint(),
		RedirectURL: redirect,
		Scopes:      []string{oidc.ScopeOpenID, "profile", oidc.ScopeOfflineAccess},
	}
	// A public client has no secret: client_id goes in the form.
	conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams

	state, nonce, verifier := randomHex(16), randomHex(16), oauth2.GenerateVerifier()
	type callback struct {
		code string
		err  error
	}
	got := make(chan callback, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		cb := callback{code: q.Get("code")}
		switch {
		case q.Get("state") != state:
			cb.err = fmt.Errorf("callback with state %q, want %q", q.Get("state"), state)
		case q.Get("error") != "":
			cb.err = fmt.Errorf("authorization error %s: %s", q.Get("error"), q.Get("error_description"))
		case cb.code == "":
			cb.err = errors.New("callback without a code")
		}
		select {
		case got <- cb:
		default:
		}
		fmt.Fprintln(w, "You may close this window.")
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	authURL := conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))
	resp, err := browser.Get(authURL)
	if err != nil {
		return nil, fmt.Errorf("login %s: open the authorization URL: %w", username, err)
	}
	page, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("login %s: authorization request answered %d: %s", username, resp.StatusCode, snippet(page))
	}
	form, err := parseLoginForm(page, resp.Request.URL)
	if err != nil {
		return nil, fmt.Errorf("login %s: %w", username, err)
	}
	form.values.Set("username", username)
	form.values.Set("password", password)
	resp, err = browser.PostForm(form.action, form.values)
	if err != nil {
		return nil, fmt.Errorf("login %s: submit the login form: %w", username, err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	var cb callback
	select {
	case cb = <-got:
	default:
		return nil, fmt.Errorf("login %s: the login form did not lead to the callback (status %d at %s): %s", username, resp.StatusCode, resp.Request.URL, snippet(body))
	}
	if cb.err != nil {
		return nil, fmt.Errorf("login %s: %w", username, cb.err)
	}

	octx := oidc.ClientContext(ctx, s.http)
	tok, err := conf.Exchange(octx, cb.code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, fmt.Errorf("login %s: exchange the code: %w", username, err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idTok, err := p.verifier.Verify(octx, rawID)
	if err != nil {
		return nil, fmt.Errorf("login %s: verify the ID token: %w", username, err)
	}
	if idTok.Nonce != nonce {
		return nil, fmt.Errorf("login %s: ID token nonce %q, want %q", username, idTok.Nonce, nonce)
	}
	if idTok.AccessTokenHash != "" {
		if err := idTok.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, fmt.Errorf("login %s: at_hash: %w", username, err)
		}
	}
	se := &Session{Username: username, Subject: idTok.Subject, conf: conf, hc: s.http, token: tok}
	s.mu.Lock()
	s.sessions = append(s.sessions, se)
	s.mu.Unlock()
	return se, nil
}

// MustLogin is Login that fails the test on error.
func (s *System) MustLogin(username, password string) *Session {
	s.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	se, err := s.Login(ctx, username, password)
	if err != nil {
		s.tb.Fatal(err)
	}
	return se
}

type loginForm struct {
	action string
	values url.Values
}

// parseLoginForm finds the form holding a password input and returns its
// absolute action and every named input's value, hidden CSRF fields
// included, the way a browser would submit it.
func parseLoginForm(page []byte, base *url.URL) (loginForm, error) {
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
				if typ == "password" {
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
	return loginForm{}, fmt.Errorf("no login form with a password field on the page: %s", snippet(page))
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	return s
}
