// Package authzclaims is the IAM side of the provide strategy (AUTHZ.md,
// docs/provide.md): at every issue and refresh of a user access token it
// fetches the user's subject facts from the three organization services and
// returns them as compact claims (package codec).
//
// All three owners are asked whatever the user's application roles: the
// rule of AUTHZ.md does not depend on them, and a platform administrator can
// edit them, so choosing the owner by CUSTOMER_EMPLOYEE and the like would
// make provide disagree with replicate and delegate, which read only the
// owners' data.
//
// It fetches rather than replicates: the claims are then as fresh as the
// owners at issue time and the IAM keeps no copy of the organizations'
// data; the price is that logins and refreshes depend on the owners being
// up. A failure fails the token request (iam.AuthorizationClaims), so a
// token never lacks the claims it should carry.
package authzclaims

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/realguardio/realguardio/internal/contract/facts"
	"github.com/realguardio/realguardio/internal/contract/tokenclaims"
	"github.com/realguardio/realguardio/internal/iam"
)

// Config configures the claims provider.
type Config struct {
	// CustomerURL, DealerURL and MonitoringURL are the base URLs of the
	// organization services, whose GET /authz/subjects/{userId} answers
	// the facts (docs/fetch-api.md).
	CustomerURL   string
	DealerURL     string
	MonitoringURL string
	// Timeout bounds each call (2s when zero): a login waits for it.
	Timeout time.Duration
	// BreakerFailures consecutive failures open a service's breaker (5
	// when zero) for BreakerOpen (5s when zero), so an owner that is down
	// fails logins fast instead of holding each one for the timeout.
	BreakerFailures uint32
	BreakerOpen     time.Duration
	// Logger receives the inconsistencies found between the owners'
	// answers (a user claimed by two organizations); slog.Default() when
	// nil.
	Logger *slog.Logger
}

// Provider implements iam.AuthorizationClaims. It is safe for concurrent
// use.
type Provider struct {
	facts  *facts.Client
	tokens *selfTokens
}

var _ iam.AuthorizationClaims = (*Provider)(nil)

// Audiences are the audiences of the IAM's own token: the three services
// that answer subject facts.
var Audiences = []string{iam.AudienceCustomer, iam.AudienceDealer, iam.AudienceMonitoring}

// New builds the provider. httpClient carries the calls (a default client
// when nil).
func New(cfg Config, httpClient *http.Client) (*Provider, error) {
	tokens := &selfTokens{}
	f, err := facts.New(facts.Config{
		CustomerURL: cfg.CustomerURL, DealerURL: cfg.DealerURL, MonitoringURL: cfg.MonitoringURL,
		Timeout: cfg.Timeout, BreakerFailures: cfg.BreakerFailures, BreakerOpen: cfg.BreakerOpen,
		// ReuseTokenSource keeps the minted token until shortly before it
		// expires, so a login normally costs no signature of our own.
		TokenSource: oauth2.ReuseTokenSource(nil, tokens),
		Logger:      cfg.Logger,
	}, httpClient, nil)
	if err != nil {
		return nil, fmt.Errorf("authorization claims: %w", err)
	}
	return &Provider{facts: f, tokens: tokens}, nil
}

// Claims returns the user's authorization claims: always the format
// version, and the organization, location roles and schedule the owners
// report. The three owners are asked in parallel (one round trip), whatever
// req.Roles says; a user no owner employs (an administrator) gets only the
// format version. Any owner down, or two owners claiming the same user,
// fails the token request rather than issuing claims that might be wrong
// for the token's whole lifetime.
func (p *Provider) Claims(ctx context.Context, req iam.AuthorizationRequest) (map[string]any, error) {
	if req.Tokens == nil {
		return nil, errors.New("authorization claims: the IAM gave no service token minter")
	}
	p.tokens.set(req.Tokens)
	s, err := p.facts.SubjectFacts(ctx, req.UserID)
	if err != nil {
		return nil, fmt.Errorf("authorization claims of %s: %w", req.UserID, err)
	}
	return tokenclaims.Encode(s)
}

// selfTokens adapts the IAM's minter to an oauth2.TokenSource. The minter
// arrives with each request (it is the IAM itself, always the same), which
// spares the wiring a construction cycle between the IAM and this hook.
type selfTokens struct {
	mu     sync.Mutex
	minter iam.ServiceTokens
}

func (s *selfTokens) set(m iam.ServiceTokens) {
	s.mu.Lock()
	s.minter = m
	s.mu.Unlock()
}

// Token mints a token with scope authz:read for the organization services.
func (s *selfTokens) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	m := s.minter
	s.mu.Unlock()
	if m == nil {
		return nil, errors.New("no service token minter yet")
	}
	tok, exp, err := m.ServiceToken(context.Background(), Audiences, []string{iam.ScopeAuthzRead})
	if err != nil {
		return nil, err
	}
	return &oauth2.Token{AccessToken: tok, TokenType: "Bearer", Expiry: exp}, nil
}
