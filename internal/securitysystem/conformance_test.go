package securitysystem_test

import (
	"context"
	"math/rand"
	"slices"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/policy/policytest"
	"github.com/realguardio/realguardio/internal/securitysystem"
	"github.com/realguardio/realguardio/internal/securitysystem/authz"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/fetch"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/replicate"
	"github.com/realguardio/realguardio/internal/securitysystem/sstest"
)

// TestConformance checks that fetch and replicate decide every generated
// case exactly as policy.IsAllowed does over the World's facts, before and
// after random changes (revocations included), for Decide and for Filter.
// Fetch reads the World through facts servers implementing
// docs/fetch-api.md; replicate is fed the World as documented events.
func TestConformance(t *testing.T) {
	seeds := []int64{1, 2, 3}
	if testing.Short() {
		seeds = seeds[:1]
	}
	for _, seed := range seeds {
		t.Run("seed="+itoa(seed), func(t *testing.T) {
			ctx := context.Background()
			w := policytest.Generate(seed, policytest.Small)
			rng := rand.New(rand.NewSource(seed))
			facts := sstest.NewFacts(t, w)
			fa, err := fetch.New(fetch.Config{
				CustomerURL: facts.Customer.URL, DealerURL: facts.Dealer.URL, MonitoringURL: facts.Monitoring.URL,
				TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "service"}),
			}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			db := sqldbtest.OpenSQLite(t, securitysystem.Migrations()...)
			proj := replicate.NewProjection()
			evs := sstest.NewEvents(time.Now().Add(-time.Hour))
			evs.World(w)
			sstest.Apply(t, db, proj.Handle, evs.List())
			ra := replicate.New(db)

			refs := map[string]authz.SystemRef{}
			var all []authz.SystemRef
			for _, ss := range w.SecuritySystems {
				r := authz.SystemRef{ID: ss.ID, LocationID: ss.LocationID}
				refs[ss.ID] = r
				all = append(all, r)
			}
			check := func(round string, n int) {
				for _, c := range w.Cases(rng, n) {
					want := policytest.Expected(w, c)
					caller := sstest.Caller(w, c.UserID)
					caller.Roles = c.AppRoles
					for _, a := range []authz.Authorizer{fa, ra} {
						got, err := a.Decide(ctx, caller, c.Op, refs[c.SecuritySystemID], c.At)
						if err != nil || got != want {
							t.Fatalf("%s %s: %s decided %+v (err %v), want %+v", round, c, a.Name(), got, err, want)
						}
					}
				}
				// Filter agrees with the rule for a sample of users.
				users := w.Users()
				for i := 0; i < 8; i++ {
					u := users[rng.Intn(len(users))]
					at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int63n(int64(365 * 24 * time.Hour))))
					caller := sstest.Caller(w, u)
					subject := w.Subject(u, caller.Roles)
					var want []authz.Permitted
					for _, r := range all {
						res := w.Resource(r.ID)
						if p, ok := authz.Permit(subject, r, res, at); ok {
							want = append(want, p)
						}
					}
					for _, a := range []authz.Authorizer{fa, ra} {
						got, err := a.Filter(ctx, caller, all, at)
						if err != nil || !samePermitted(got, want) {
							t.Fatalf("%s: %s Filter for %s at %s = %v (err %v), want %v", round, a.Name(), u, at, got, err, want)
						}
					}
				}
			}
			check("initial", 300)
			for i := 0; i < 25; i++ {
				before := w.Clone()
				c := w.Mutate(rng)
				facts.SetWorld(w)
				evs := sstest.NewEvents(time.Now())
				evs.Change(before, c)
				sstest.Apply(t, db, proj.Handle, evs.List())
				check("after "+c.String(), 40)
			}
		})
	}
}

func samePermitted(a, b []authz.Permitted) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].System.ID != b[i].System.ID || !slices.Equal(a[i].Actions, b[i].Actions) {
			return false
		}
	}
	return true
}

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
