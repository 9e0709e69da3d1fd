package apiclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// CLIClientID is the IAM Service's public client for command-line use
// (API.md): authorization code with PKCE, loopback redirect on any port,
// refresh tokens issued.
const CLIClientID = "realguardio-cli"

// Scopes are the scopes a CLI login asks for; offline_access brings the
// refresh token.
var Scopes = []string{oidc.ScopeOpenID, "profile", oidc.ScopeOfflineAccess}

// Provider is the IAM Service as its discovery document describes it.
type Provider struct {
	// Issuer is the IAM Service's issuer URL.
	Issuer string

	hc         *http.Client
	oidc       *oidc.Provider
	verifier   *oidc.IDTokenVerifier
	revocation string
}

// Discover reads the IAM Service's discovery document at issuer, using hc
// (nil: DefaultHTTPClient) for this and every later call to the IAM.
func Discover(ctx context.Context, issuer string, hc *http.Client) (*Provider, error) {
	if hc == nil {
		hc = DefaultHTTPClient
	}
	issuer = strings.TrimRight(issuer, "/")
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, hc), issuer)
	if err != nil {
		return nil, fmt.Errorf("OIDC discovery at %s: %w", issuer, err)
	}
	var extra struct {
		Revocation string `json:"revocation_endpoint"`
	}
	_ = p.Claims(&extra) // optional: without it Revoke reports that it cannot
	return &Provider{
		Issuer:     issuer,
		hc:         hc,
		oidc:       p,
		verifier:   p.Verifier(&oidc.Config{ClientID: CLIClientID}),
		revocation: extra.Revocation,
	}, nil
}

// config is the OAuth configuration of the CLI client with redirect.
func (p *Provider) config(redirect string) *oauth2.Config {
	conf := &oauth2.Config{
		ClientID:    CLIClientID,
		Endpoint:    p.oidc.Endpoint(),
		RedirectURL: redirect,
		Scopes:      Scopes,
	}
	// A public client has no secret: client_id goes in the form.
	conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	return conf
}

func (p *Provider) ctx(ctx context.Context) context.Context { return oidc.ClientContext(ctx, p.hc) }

// Session is a user logged in through the OIDC flow: the verified ID
// token's subject and the current tokens. AccessToken refreshes the tokens
// shortly before the access token expires. It is safe for concurrent use.
type Session struct {
	// Username is the login name (an employee's e-mail address); "" when
	// the login did not say (an interactive login).
	Username string
	// Subject is the user's immutable id (the ID token's sub).
	Subject string

	provider  *Provider
	onRefresh func(*oauth2.Token)

	// mu is held through a refresh, not only around the token: the IAM
	// rotates refresh tokens and treats a second redemption of one as
	// theft, so concurrent callers must not refresh at once.
	mu    sync.Mutex
	token *oauth2.Token
}

// refreshMargin is how long before its expiry an access token is renewed,
// so that it does not expire in flight. It is small because the shortest
// configurable lifetime is 10 seconds.
const refreshMargin = 3 * time.Second

// ResumeSession returns a session holding tok, such as tokens stored by an
// earlier login. onRefresh (may be nil) is called with the new tokens after
// every refresh, under the session's lock, so that a caller storing them
// never stores an older pair after a newer one.
func (p *Provider) ResumeSession(tok *oauth2.Token, username, subject string, onRefresh func(*oauth2.Token)) *Session {
	return &Session{Username: username, Subject: subject, provider: p, onRefresh: onRefresh, token: tok}
}

// Token returns a copy of the current tokens, for storing them.
func (se *Session) Token() *oauth2.Token {
	se.mu.Lock()
	defer se.mu.Unlock()
	return se.tokenLocked()
}

// AccessToken returns the access token, refreshing the tokens first when it
// expires within a few seconds and a refresh token is held.
func (se *Session) AccessToken(ctx context.Context) (string, error) {
	se.mu.Lock()
	defer se.mu.Unlock()
	t := se.token
	if t.Expiry.IsZero() || time.Until(t.Expiry) > refreshMargin || t.RefreshToken == "" {
		return t.AccessToken, nil
	}
	if err := se.refreshLocked(ctx); err != nil {
		return "", err
	}
	return se.token.AccessToken, nil
}

// Refresh redeems the refresh token for new tokens now (the IAM rotates the
// refresh token). The provide strategy needs it after a change: a token
// carries the authorization facts of the moment it was issued.
func (se *Session) Refresh(ctx context.Context) error {
	se.mu.Lock()
	defer se.mu.Unlock()
	return se.refreshLocked(ctx)
}

func (se *Session) refreshLocked(ctx context.Context) error {
	who := se.Username
	if who == "" {
		who = se.Subject
	}
	if se.token.RefreshToken == "" {
		return fmt.Errorf("refresh the session of %s: no refresh token was issued", who)
	}
	if se.provider == nil {
		return fmt.Errorf("refresh the session of %s: it was not made by a login", who)
	}
	conf := se.provider.config("")
	tok, err := conf.TokenSource(se.provider.ctx(ctx), &oauth2.Token{RefreshToken: se.token.RefreshToken}).Token()
	if err != nil {
		return fmt.Errorf("refresh the session of %s: %w", who, describeOAuthError(err))
	}
	se.token = tok
	if se.onRefresh != nil {
		se.onRefresh(se.tokenLocked())
	}
	return nil
}

// tokenLocked returns a copy of the tokens; the caller holds mu.
func (se *Session) tokenLocked() *oauth2.Token {
	t := *se.token
	return &t
}

// Revoke revokes the session's refresh token at the IAM Service (RFC
// 7009), which ends the login: later refreshes fail. The access token
// stays valid until it expires, as JWTs do.
func (se *Session) Revoke(ctx context.Context) error {
	se.mu.Lock()
	rt := se.token.RefreshToken
	se.mu.Unlock()
	if rt == "" {
		return nil
	}
	p := se.provider
	if p == nil || p.revocation == "" {
		return errors.New("the IAM Service announces no revocation endpoint")
	}
	form := url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}, "client_id": {CLIClientID}}
	req, err := http.NewRequestWithContext(ctx, "POST", p.revocation, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.hc.Do(req)
	if err != nil {
		return fmt.Errorf("revoke the refresh token: %w", err)
	}
	defer resp.Body.Close()
	r := &Response{Method: "POST", URL: p.revocation, Status: resp.StatusCode, Header: resp.Header}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("revoke the refresh token: %w", &Error{Response: r})
	}
	return nil
}

// describeOAuthError keeps the OAuth error code and description of a
// failed token request and drops the raw body, which could echo a token.
func describeOAuthError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode != "" {
		if re.ErrorDescription != "" {
			return fmt.Errorf("%s: %s", re.ErrorCode, re.ErrorDescription)
		}
		return errors.New(re.ErrorCode)
	}
	return err
}
