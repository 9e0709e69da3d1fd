// Package svcauth gives a RealGuardIO service its own access token: the
// OAuth client-credentials grant against the IAM Service, whose token
// endpoint is found through the IAM's discovery document.
//
// Discovery is lazy and a failed discovery is not remembered, so a service
// can start while the IAM Service is still down and picks it up on the next
// call. Every failure is an *apperr.Error with code Unavailable (Internal
// for an issuer URL that cannot even form a request), so callers can answer
// their own clients without knowing the IAM's HTTP details; the cause is
// kept, so a refusal of the credentials is still an *oauth2.RetrieveError
// to errors.As.
package svcauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/realguardio/realguardio/internal/platform/apperr"
)

// Config names the IAM and the credentials a service authenticates with.
type Config struct {
	// Issuer is the IAM's issuer URL; its discovery document names the
	// token endpoint.
	Issuer string
	// TokenURL, when set, is the token endpoint and skips discovery.
	TokenURL string
	// ClientID and ClientSecret are the service's client credentials, sent
	// in the Authorization header.
	ClientID     string
	ClientSecret string
	// Scopes are the scopes the token is requested with.
	Scopes []string
}

// TokenSource returns a token source for the client-credentials grant of
// cfg. base carries the transport and the timeout of the discovery and
// token requests (nil means http.DefaultClient); since oauth2.TokenSource
// takes no context, that timeout is what bounds them. The token is cached
// until shortly before it expires. The source is safe for concurrent use.
func TokenSource(cfg Config, base *http.Client) oauth2.TokenSource {
	if base == nil {
		base = http.DefaultClient
	}
	cfg.Issuer = strings.TrimRight(cfg.Issuer, "/")
	return &source{cfg: cfg, http: base}
}

// source discovers the token endpoint on first use and then delegates to a
// clientcredentials token source.
type source struct {
	cfg  Config
	http *http.Client

	mu  sync.Mutex
	src oauth2.TokenSource // nil until discovery succeeded
}

// Token returns the cached token or fetches a new one.
func (s *source) Token() (*oauth2.Token, error) {
	src, err := s.delegate()
	if err != nil {
		return nil, err
	}
	tok, err := src.Token()
	if err != nil {
		// A token endpoint refusing our credentials is a configuration
		// error, not an outage, but callers can do nothing about either
		// except report that the IAM cannot be used now.
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return nil, apperr.Wrap(err, apperr.Unavailable, "the IAM Service refused this service's credentials")
		}
		return nil, apperr.Wrap(err, apperr.Unavailable, "the IAM Service is unreachable")
	}
	return tok, nil
}

// delegate returns the clientcredentials source, discovering the token
// endpoint first if needed. The lock is held only for that, not for the
// token request: the clientcredentials source has its own.
func (s *source) delegate() (oauth2.TokenSource, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.src != nil {
		return s.src, nil
	}
	tokenURL := s.cfg.TokenURL
	if tokenURL == "" {
		var err error
		if tokenURL, err = s.discover(); err != nil {
			return nil, err
		}
	}
	cc := clientcredentials.Config{
		ClientID:     s.cfg.ClientID,
		ClientSecret: s.cfg.ClientSecret,
		TokenURL:     tokenURL,
		Scopes:       s.cfg.Scopes,
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
	// The token source outlives any one call, so it gets a background
	// context carrying only the base HTTP client. Its result is already a
	// ReuseTokenSource: the token is cached until shortly before expiry.
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, s.http)
	s.src = cc.TokenSource(ctx)
	return s.src, nil
}

// discover reads token_endpoint from the issuer's discovery document.
func (s *source) discover() (string, error) {
	req, err := http.NewRequest(http.MethodGet, s.cfg.Issuer+"/.well-known/openid-configuration", nil)
	if err != nil {
		return "", apperr.Wrap(err, apperr.Internal, "IAM issuer URL is not usable")
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return "", apperr.Wrap(err, apperr.Unavailable, "the IAM Service is unreachable")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", apperr.Wrap(fmt.Errorf("discovery answered %s", resp.Status), apperr.Unavailable, "the IAM Service is unavailable")
	}
	var doc struct {
		TokenEndpoint string `json:"token_endpoint"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc); err != nil {
		return "", apperr.Wrap(fmt.Errorf("discovery document: %w", err), apperr.Unavailable, "the IAM Service is unavailable")
	}
	if _, err := url.Parse(doc.TokenEndpoint); err != nil || doc.TokenEndpoint == "" {
		return "", apperr.Wrap(errors.New("discovery document has no usable token_endpoint"), apperr.Unavailable, "the IAM Service is unavailable")
	}
	return doc.TokenEndpoint, nil
}
