// Package authztest is the one conformance suite of the Security System
// Service's authorization strategies (AUTHZ.md, "Conformance"): every
// strategy must decide every generated case, filter every sample and list
// every page exactly as the pure rule (policy.IsAllowed) does over the
// World's facts, before and after random changes of the World, revocations
// included. Each strategy's package test calls Run with how to set that
// strategy up over a World and how its facts follow a change; the cases,
// the World's records and the comparisons are here, once.
package authztest

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/policytest"
	"github.com/realguardio/realguardio/internal/securitysystem"
	"github.com/realguardio/realguardio/internal/securitysystem/app"
	"github.com/realguardio/realguardio/internal/securitysystem/authz"
	"github.com/realguardio/realguardio/internal/securitysystem/sstest"
	"github.com/realguardio/realguardio/internal/securitysystem/store"
)

// Strategy is one authorization strategy set up over a World, as the
// suite drives it.
type Strategy struct {
	// Authorizer is the strategy under test.
	Authorizer authz.Authorizer
	// Store holds the security system records, created by the suite
	// through it (with the strategy's create hook, when it keeps facts
	// on the records). The records' dealer and provider are those of the
	// World at their creation: a strategy that must not read them is
	// caught when a change moves them.
	Store *store.Store
	// Caller returns the caller of a World user as a request would carry
	// it now (under provide, with the claims a token issued now would
	// hold). The suite replaces its application roles with the case's.
	Caller func(userID string) *auth.Caller
	// Follow makes the facts the strategy reads follow c, which the
	// suite has applied to the World already; before is the World as it
	// was.
	Follow func(before *policytest.World, c policytest.Change)
}

// New sets a strategy up over w's facts. The World is changed in place
// afterwards (Strategy.Follow says how), so a Caller that reads it sees
// the changes.
type New func(t *testing.T, w *policytest.World) Strategy

// Run runs the whole suite against the strategy newStrategy sets up:
// "decisions" (Decide and Filter, seeds 1 to 3) and "lists" (the service's
// list paged with random page sizes and filters, seeds 1 and 2); -short
// runs the first seed of each.
func Run(t *testing.T, newStrategy New) {
	run(t, newStrategy, testing.Short())
}

// RunFirstSeed runs the suite with the first seed of each part only, as
// -short does: for a second set-up of a strategy that Run checks in full
// (delegate over another datastore of OpenFGA).
func RunFirstSeed(t *testing.T, newStrategy New) {
	run(t, newStrategy, true)
}

func run(t *testing.T, newStrategy New, first bool) {
	seeds := func(all ...int64) []int64 {
		if first {
			return all[:1]
		}
		return all
	}
	t.Run("decisions", func(t *testing.T) { runDecisions(t, newStrategy, seeds(1, 2, 3)) })
	t.Run("lists", func(t *testing.T) { runLists(t, newStrategy, seeds(1, 2)) })
}

// OpenDB returns a new SQLite database with the Security System Service's
// schema (its records, outbox, replica and resource facts), for the
// strategies' set-ups.
func OpenDB(t testing.TB) *sqldb.DB {
	t.Helper()
	return sqldbtest.OpenSQLite(t, securitysystem.Migrations()...)
}

// Feed applies the events of w (docs/events.md, as the owning services
// publish them) to db through h, and returns the Strategy.Follow that
// applies each change's events the same way: the set-up of whatever a
// strategy keeps current from events (the replica, the resource facts).
func Feed(t testing.TB, db *sqldb.DB, w *policytest.World, h events.Handler) func(before *policytest.World, c policytest.Change) {
	t.Helper()
	evs := sstest.NewEvents(time.Now().Add(-time.Hour))
	evs.World(w)
	sstest.Apply(t, db, h, evs.List())
	return func(before *policytest.World, c policytest.Change) {
		evs := sstest.NewEvents(time.Now())
		evs.Change(before, c)
		sstest.Apply(t, db, h, evs.List())
	}
}

// DiscardEvents is a store outbox that keeps nothing: the suite's records
// are created for the strategies to read, their events are not under test.
type DiscardEvents struct{}

// Append discards the event.
func (DiscardEvents) Append(context.Context, *sqldb.Tx, string, string, string, any) (events.Event, error) {
	return events.Event{}, nil
}

// AppendMany discards the events.
func (DiscardEvents) AppendMany(_ context.Context, _ *sqldb.Tx, batch []events.AggregatePending) ([]events.Event, error) {
	return make([]events.Event, len(batch)), nil
}

// randomInstant is an instant of 2026, so schedules are met at every hour
// and on every day of the week.
func randomInstant(rng *rand.Rand) time.Time {
	return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int63n(int64(365 * 24 * time.Hour))))
}

// listNames are few and collide, so the id breaks ties in the list order
// and the q filter keeps some and drops others.
var listNames = []string{"Front", "front door", "Back", "Lobby", "Vault", "Front"}

// createRecords stores the World's systems with names from listNames and
// random states, through st (and its create hook), and returns them as
// created.
func createRecords(t testing.TB, st *store.Store, w *policytest.World, rng *rand.Rand) map[string]app.SecuritySystem {
	t.Helper()
	out := map[string]app.SecuritySystem{}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var all []app.SecuritySystem
	for _, ss := range w.SecuritySystems {
		l, _ := w.Location(ss.LocationID)
		r := w.Resource(ss.ID)
		rec := app.SecuritySystem{ID: ss.ID, Name: listNames[rng.Intn(len(listNames))], LocationID: ss.LocationID,
			State: app.StateDisarmed, CustomerID: l.CustomerID, DealerID: r.DealerID, MonitoringProviderID: r.MonitoringProviderID,
			CreatedAt: now, UpdatedAt: now, Version: 1}
		if rng.Intn(2) == 0 {
			rec.State = app.StateArmed
		}
		out[ss.ID] = rec
		all = append(all, rec)
	}
	if err := st.CreateMany(context.Background(), all, make([][]app.Event, len(all))); err != nil {
		t.Fatal(err)
	}
	return out
}

// records reads every record of st, as the service reads them before it
// asks the strategy: the resource facts a strategy keeps on them are
// current after the changes.
func records(t testing.TB, st *store.Store) []authz.SystemRef {
	t.Helper()
	var out []authz.SystemRef
	q := app.PageQuery{Scope: policy.Scope{All: true}, Limit: app.MaxListLimit}
	for {
		p, err := st.ListPage(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, ss := range p.Systems {
			out = append(out, ss.Ref())
		}
		if !p.More {
			return out
		}
		last := p.Systems[len(p.Systems)-1]
		q.After = &app.Key{Name: last.Name, ID: last.ID}
	}
}

// runDecisions checks Decide on generated cases and Filter for a sample
// of users at random instants, before and after 25 random changes.
func runDecisions(t *testing.T, newStrategy New, seeds []int64) {
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			ctx := context.Background()
			w := policytest.Generate(seed, policytest.Small)
			rng := rand.New(rand.NewSource(seed))
			s := newStrategy(t, w)
			a := s.Authorizer
			createRecords(t, s.Store, w, rand.New(rand.NewSource(seed)))
			check := func(round string, n int) {
				all := records(t, s.Store)
				byID := map[string]authz.SystemRef{}
				for _, r := range all {
					byID[r.ID] = r
				}
				for _, c := range w.Cases(rng, n) {
					want := policytest.Expected(w, c)
					caller := s.Caller(c.UserID)
					caller.Roles = c.AppRoles
					got, err := a.Decide(ctx, caller, c.Op, byID[c.SecuritySystemID], c.At)
					if err != nil || got != want {
						t.Fatalf("%s %s: %s decided %+v (err %v), want %+v", round, c, a.Name(), got, err, want)
					}
				}
				users := w.Users()
				for range 8 {
					u := users[rng.Intn(len(users))]
					at := randomInstant(rng)
					caller := s.Caller(u)
					subject := w.Subject(u, caller.Roles)
					var want []authz.Permitted
					for _, r := range all {
						if p, ok := authz.Permit(subject, r, w.Resource(r.ID), at); ok {
							want = append(want, p)
						}
					}
					got, err := a.Filter(ctx, caller, all, at)
					if err != nil || !samePermitted(got, want) {
						t.Fatalf("%s: %s Filter for %s at %s = %v (err %v), want %v", round, a.Name(), u, at, got, err, want)
					}
				}
			}
			check("initial", 300)
			change(w, rng, s, 25, func(round string) { check(round, 40) })
		})
	}
}

// change makes n random changes of w, each followed by the strategy and
// then checked by check, which is given the round's name.
func change(w *policytest.World, rng *rand.Rand, s Strategy, n int, check func(round string)) {
	for range n {
		before := w.Clone()
		c := w.Mutate(rng)
		s.Follow(before, c)
		check("after " + c.String())
	}
}

func samePermitted(a, b []authz.Permitted) bool {
	return slices.EqualFunc(a, b, func(x, y authz.Permitted) bool {
		return x.System.ID == y.System.ID && slices.Equal(x.Actions, y.Actions)
	})
}

// listCase is one list request: filters, page size and instant.
type listCase struct {
	q  app.ListQuery
	at time.Time
}

// randomListCase draws filters from the World (or none) and a small page
// size, so that every list spans several pages.
func randomListCase(rng *rand.Rand, w *policytest.World) listCase {
	c := listCase{q: app.ListQuery{Limit: 1 + rng.Intn(6)}, at: randomInstant(rng)}
	switch rng.Intn(6) {
	case 0:
		c.q.LocationID = w.Locations[rng.Intn(len(w.Locations))].ID
	case 1:
		c.q.CustomerID = w.Customers[rng.Intn(len(w.Customers))].ID
	case 2:
		c.q.State = []string{"ARMED", "DISARMED"}[rng.Intn(2)]
	case 3:
		c.q.Q = []string{"FRONT", "o", "vault", "zzz"}[rng.Intn(4)]
	}
	return c
}

// pureList is the reference answer: every system the rule lets the user
// view, kept by the filters, in (name, id) order, with the actions the rule
// allows at the instant.
func pureList(w *policytest.World, stored map[string]app.SecuritySystem, user string, c listCase) []app.View {
	s := w.Subject(user, w.AppRoles(user))
	var out []app.View
	for _, ss := range w.SecuritySystems {
		rec := stored[ss.ID]
		r := w.Resource(ss.ID)
		if !policy.IsAllowed(s, policy.OpView, r, c.at).Allowed ||
			(c.q.LocationID != "" && r.LocationID != c.q.LocationID) ||
			(c.q.CustomerID != "" && r.CustomerID != c.q.CustomerID) ||
			(c.q.State != "" && string(rec.State) != c.q.State) ||
			(c.q.Q != "" && !strings.Contains(strings.ToLower(rec.Name), strings.ToLower(c.q.Q))) {
			continue
		}
		out = append(out, app.View{SecuritySystem: rec, Actions: policy.Actions(s, r, c.at)})
	}
	slices.SortFunc(out, func(a, b app.View) int {
		return strings.Compare(a.Name+"\x00"+a.ID, b.Name+"\x00"+b.ID)
	})
	return out
}

// listAll pages through svc's list for caller, checking each page's size.
func listAll(t testing.TB, svc *app.Service, caller *auth.Caller, q app.ListQuery) ([]app.View, int, error) {
	t.Helper()
	var out []app.View
	for pages := 1; pages < 10000; pages++ {
		page, err := svc.List(context.Background(), caller, q)
		if err != nil {
			return nil, pages, err
		}
		if len(page.Systems) > q.Limit {
			t.Fatalf("a page of %d systems with limit %d", len(page.Systems), q.Limit)
		}
		out = append(out, page.Systems...)
		if page.NextCursor == "" {
			return out, pages, nil
		}
		q.Cursor = page.NextCursor
	}
	t.Fatal("the list does not end")
	return nil, 0, nil
}

func sameViews(a, b []app.View) bool {
	return slices.EqualFunc(a, b, func(x, y app.View) bool {
		return x.ID == y.ID && slices.Equal(x.Actions, y.Actions) && x.Name == y.Name && x.State == y.State
	})
}

func viewIDs(vs []app.View) string {
	var b strings.Builder
	for _, v := range vs {
		fmt.Fprintf(&b, "%s %q %v; ", v.ID[:8], v.Name, v.Actions)
	}
	return b.String()
}

// runLists checks the service's list over the strategy, page by page, for
// every user at the start (two random requests each) and every other user
// after each of 12 random changes.
func runLists(t *testing.T, newStrategy New, seeds []int64) {
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			w := policytest.Generate(seed, policytest.Small)
			rng := rand.New(rand.NewSource(seed))
			s := newStrategy(t, w)
			stored := createRecords(t, s.Store, w, rand.New(rand.NewSource(seed)))
			check := func(round string, perUser int) {
				for i, u := range w.Users() {
					// Every user at the start, every other one after a change.
					if perUser == 0 && i%2 == int(rng.Int63()%2) {
						continue
					}
					for range max(perUser, 1) {
						c := randomListCase(rng, w)
						want := pureList(w, stored, u, c)
						svc := app.NewService(s.Store, s.Authorizer, func() time.Time { return c.at }, nil)
						got, pages, err := listAll(t, svc, s.Caller(u), c.q)
						if err != nil || !sameViews(got, want) {
							t.Fatalf("%s: %s list of %s %+v at %s (%d pages, err %v):\n got  %s\n want %s",
								round, s.Authorizer.Name(), u, c.q, c.at, pages, err, viewIDs(got), viewIDs(want))
						}
					}
				}
			}
			check("initial", 2)
			change(w, rng, s, 12, func(round string) { check(round, 0) })
		})
	}
}
