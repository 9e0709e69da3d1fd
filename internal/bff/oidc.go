package bff

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/httpx"
)

// oidcClient is the BFF's view of the IAM Service. Discovery is lazy and
// retried: until the IAM answers, logins fail with 503 but the BFF serves
// everything else.
type oidcClient struct {
	cfg  Config
	http *http.Client
	now  func() time.Time
	log  *slog.Logger

	mu        sync.Mutex
	ready     *discovered
	lastTry   time.Time
	lastError error
}

// discovered is everything the BFF learns from the discovery document.
type discovered struct {
	provider *oidc.Provider
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier
	// jwksURI is where the keys of back-channel logout tokens are read
	// (backchannel.go).
	jwksURI    string
	revocation string
	endSession string
}

// retryAfterFailure keeps a down IAM from being asked on every request.
const retryAfterFailure = time.Second

func newOIDCClient(cfg Config, client *http.Client, now func() time.Time, log *slog.Logger) *oidcClient {
	return &oidcClient{cfg: cfg, http: client, now: now, log: log}
}

// ctx returns ctx carrying the BFF's HTTP client for oauth2 and go-oidc.
func (c *oidcClient) ctx(ctx context.Context) context.Context {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, c.http)
	return oidc.ClientContext(ctx, c.http)
}

// get returns the discovered configuration, discovering it when needed.
func (c *oidcClient) get(ctx context.Context) (*discovered, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ready != nil {
		return c.ready, nil
	}
	if !c.lastTry.IsZero() && time.Since(c.lastTry) < retryAfterFailure {
		return nil, apperr.Wrap(c.lastError, apperr.Unavailable, "the identity service is not reachable yet; try again in a moment")
	}
	c.lastTry = time.Now()
	d, err := c.discover(ctx)
	if err != nil {
		c.lastError = err
		c.log.WarnContext(ctx, "OIDC discovery failed; will retry", "issuer", c.cfg.Issuer, "err", err)
		return nil, apperr.Wrap(err, apperr.Unavailable, "the identity service is not reachable yet; try again in a moment")
	}
	c.ready = d
	return d, nil
}

// reachable asks the IAM for its discovery document now, bounded by the
// IAM timeout: the document cached by get says nothing about whether the
// IAM is still alive, and a login redirected to a dead IAM leaves the user
// on the browser's own error page.
func (c *oidcClient) reachable(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.IAMTimeout)
	defer cancel()
	check := httpx.Reachable("the identity service", strings.TrimRight(c.cfg.Issuer, "/")+"/.well-known/openid-configuration", c.http)
	return check(ctx)
}

func (c *oidcClient) discover(ctx context.Context) (*discovered, error) {
	// Discovery must not be cut short by the request that happens to
	// trigger it, but it must not hang either.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.IAMTimeout)
	defer cancel()
	provider, err := oidc.NewProvider(c.ctx(dctx), c.cfg.Issuer)
	if err != nil {
		return nil, err
	}
	var meta struct {
		Revocation  string   `json:"revocation_endpoint"`
		JWKSURI     string   `json:"jwks_uri"`
		EndSession  string   `json:"end_session_endpoint"`
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := provider.Claims(&meta); err != nil {
		return nil, fmt.Errorf("read discovery document: %w", err)
	}
	endpoint := provider.Endpoint()
	// Say how to authenticate instead of letting oauth2 probe, which would
	// cost a failed token request on the first login.
	endpoint.AuthStyle = oauth2.AuthStyleInHeader
	if len(meta.AuthMethods) > 0 && !contains(meta.AuthMethods, "client_secret_basic") && contains(meta.AuthMethods, "client_secret_post") {
		endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	return &discovered{
		provider: provider,
		oauth: &oauth2.Config{
			ClientID:     c.cfg.ClientID,
			ClientSecret: c.cfg.ClientSecret,
			Endpoint:     endpoint,
			RedirectURL:  c.cfg.PublicURL + "/auth/callback",
			Scopes:       c.cfg.Scopes,
		},
		// The JWKS fetches outlive any one request, so they use a
		// background context carrying the BFF's client.
		verifier:   provider.VerifierContext(c.ctx(context.Background()), &oidc.Config{ClientID: c.cfg.ClientID, Now: c.now}),
		jwksURI:    meta.JWKSURI,
		revocation: meta.Revocation,
		endSession: meta.EndSession,
	}, nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// revoke revokes token at the IAM (RFC 7009). Failures are logged, not
// returned: logout must finish for the user even when the IAM is down, and
// the refresh token then still dies at its own expiry.
func (c *oidcClient) revoke(ctx context.Context, d *discovered, token, hint string) {
	if d.revocation == "" || token == "" {
		return
	}
	form := url.Values{"token": {token}, "token_type_hint": {hint}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.revocation, strings.NewReader(form.Encode()))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.cfg.ClientID), url.QueryEscape(c.cfg.ClientSecret))
	resp, err := c.http.Do(req)
	if err != nil {
		c.log.WarnContext(ctx, "token revocation failed", "err", err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		c.log.WarnContext(ctx, "token revocation refused", "status", resp.StatusCode)
	}
}

// accessClaims are the claims of an access token the BFF reads for display
// and for the refresh schedule. The BFF is not the token's audience and does
// not verify it: the backends do.
type accessClaims struct {
	Subject string   `json:"sub"`
	Roles   []string `json:"roles"`
	Expiry  int64    `json:"exp"`
	Name    string   `json:"name"`
	User    string   `json:"preferred_username"`
}

// decodeJWTPart decodes the header (0) or claims (1) of a compact JWT
// without verifying it.
func decodeJWTPart(token string, part int, v any) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return fmt.Errorf("not a compact JWT")
	}
	raw, err := decodeSegment(parts[part])
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}
