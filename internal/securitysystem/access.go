package securitysystem

import (
	"fmt"

	"github.com/realguardio/realguardio/internal/securitysystem/authz"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/fetch"
)

// accessFacts returns what the access review reads the owners' current
// facts with, whatever the strategy (AUTHZ.md, "Access review": a stale
// answer is a wrong answer): the fetch strategy's client when that is the
// strategy, else a client of its own over the same owner URLs and client
// credentials. Without the owners' URLs (some tests) it is nil and every
// review is a 503.
func accessFacts(cfg Config, deps Deps, s *Service) (authz.AccessFactsSource, error) {
	if f, ok := s.authorizer.(*fetch.Authorizer); ok {
		return f, nil
	}
	if cfg.CustomerURL == "" || cfg.DealerURL == "" || cfg.MonitoringURL == "" || cfg.ClientID == "" || cfg.Issuer == "" {
		s.logger.Warn("the organization services are not configured: access reviews will answer 503")
		return nil, nil
	}
	f, err := fetch.New(fetch.Config{
		CustomerURL: cfg.CustomerURL, DealerURL: cfg.DealerURL, MonitoringURL: cfg.MonitoringURL,
		Issuer: cfg.Issuer, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
		Timeout: cfg.FetchTimeout, BreakerFailures: uint32(max(cfg.BreakerFailures, 0)), BreakerOpen: cfg.BreakerOpen,
		Logger: s.logger,
	}, deps.HTTPClient, deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("securitysystem: access review: %w", err)
	}
	return f, nil
}
