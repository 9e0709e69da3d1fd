package provide_test

import (
	"encoding/json"
	"testing"

	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/policy/policytest"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/authztest"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/provide"
	"github.com/realguardio/realguardio/internal/securitysystem/sstest"
	"github.com/realguardio/realguardio/internal/securitysystem/store"
)

// TestConformance runs the strategies' suite against provide. The subject
// facts are the claims the IAM's encoder makes from the World now, through
// JSON as through a real token (a token re-issued after every change, as
// at a refresh); the resource facts are those on the records, created
// through the store with the strategy's create hook and kept current by
// its event handler fed the documented events.
func TestConformance(t *testing.T) {
	authztest.Run(t, func(t *testing.T, w *policytest.World) authztest.Strategy {
		db := authztest.OpenDB(t)
		follow := authztest.Feed(t, db, w, provide.Handle)
		return authztest.Strategy{
			Authorizer: provide.New(db, nil),
			Store:      store.New(db, authztest.DiscardEvents{}, store.WithCreateHook(provide.FillFacts)),
			Caller: func(u string) *auth.Caller {
				b, err := json.Marshal(sstest.ProvideClaims(w, u))
				if err != nil {
					t.Fatal(err)
				}
				c := &auth.Caller{Subject: u, Roles: w.AppRoles(u)}
				if err := json.Unmarshal(b, &c.Claims); err != nil {
					t.Fatal(err)
				}
				return c
			},
			Follow: follow,
		}
	})
}
