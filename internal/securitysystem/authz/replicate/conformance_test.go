package replicate_test

import (
	"testing"

	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/policy/policytest"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/authztest"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/replicate"
	"github.com/realguardio/realguardio/internal/securitysystem/sstest"
	"github.com/realguardio/realguardio/internal/securitysystem/store"
)

// TestConformance runs the strategies' suite against replicate: its
// replica, in the records' database, is fed the World and every change as
// the documented events.
func TestConformance(t *testing.T) {
	authztest.Run(t, func(t *testing.T, w *policytest.World) authztest.Strategy {
		db := authztest.OpenDB(t)
		return authztest.Strategy{
			Authorizer: replicate.New(db),
			// The service's store reads a dealer's or provider's locations
			// from the replica inside the page query.
			Store:  store.New(db, authztest.DiscardEvents{}, store.WithOrganizationLocations(store.OrganizationLocations(replicate.ScopeLocations))),
			Caller: func(u string) *auth.Caller { return sstest.Caller(w, u) },
			Follow: authztest.Feed(t, db, w, replicate.NewProjection().Handle),
		}
	})
}
