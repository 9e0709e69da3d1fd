package fetch_test

import (
	"testing"

	"golang.org/x/oauth2"

	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/policy/policytest"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/authztest"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/fetch"
	"github.com/realguardio/realguardio/internal/securitysystem/sstest"
	"github.com/realguardio/realguardio/internal/securitysystem/store"
)

// TestConformance runs the strategies' suite against fetch: it reads the
// World through facts servers answering docs/fetch-api.md (their id lists
// paged by two), which serve every change at once.
func TestConformance(t *testing.T) {
	authztest.Run(t, func(t *testing.T, w *policytest.World) authztest.Strategy {
		facts := sstest.NewFacts(t, w)
		fa, err := fetch.New(fetch.Config{
			CustomerURL: facts.Customer.URL, DealerURL: facts.Dealer.URL, MonitoringURL: facts.Monitoring.URL,
			TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "service"}),
		}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return authztest.Strategy{
			Authorizer: fa,
			Store:      store.New(authztest.OpenDB(t), authztest.DiscardEvents{}),
			Caller:     func(u string) *auth.Caller { return sstest.Caller(w, u) },
			Follow:     func(*policytest.World, policytest.Change) { facts.SetWorld(w) },
		}
	})
}
