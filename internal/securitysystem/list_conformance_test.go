package securitysystem_test

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	openfgav1 "github.com/openfga/api/proto/openfga/v1"
	"golang.org/x/oauth2"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/realguardio/realguardio/internal/platform/auth"
	"github.com/realguardio/realguardio/internal/platform/fga"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/openfga/openfgatest"
	"github.com/realguardio/realguardio/internal/policy/policytest"
	"github.com/realguardio/realguardio/internal/securitysystem"
	"github.com/realguardio/realguardio/internal/securitysystem/app"
	"github.com/realguardio/realguardio/internal/securitysystem/authz"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/delegate"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/fetch"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/provide"
	"github.com/realguardio/realguardio/internal/securitysystem/authz/replicate"
	"github.com/realguardio/realguardio/internal/securitysystem/sstest"
	"github.com/realguardio/realguardio/internal/securitysystem/store"
)

// listNames are few and collide, so the id breaks ties in the list order
// and the q filter keeps some and drops others.
var listNames = []string{"Front", "front door", "Back", "Lobby", "Vault", "Front"}

// listCase is one list request: filters, page size and instant.
type listCase struct {
	q  app.ListQuery
	at time.Time
}

// randomListCase draws filters from the World (or none) and a small page
// size, so that every list spans several pages.
func randomListCase(rng *rand.Rand, w *policytest.World) listCase {
	c := listCase{q: app.ListQuery{Limit: 1 + rng.Intn(6)}, at: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int63n(int64(365 * 24 * time.Hour))))}
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

// createWorldSystems stores the World's systems with names from listNames
// and random states, through st (and its create hook).
func createWorldSystems(t testing.TB, st *store.Store, w *policytest.World, rng *rand.Rand) map[string]app.SecuritySystem {
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

// TestListConformance checks that the list of fetch, replicate and
// provide, page by page with random page sizes and filters, is exactly the
// pure filter of the rule over generated worlds (every user), before and
// after random changes, revocations included. The systems live in one
// database whose records carry the provide strategy's resource facts; the
// replica is fed the same World as events, and fetch reads it through
// facts servers answering docs/fetch-api.md, their id lists paged by two.
func TestListConformance(t *testing.T) {
	seeds := []int64{1, 2}
	if testing.Short() {
		seeds = seeds[:1]
	}
	for _, seed := range seeds {
		t.Run("seed="+itoa(seed), func(t *testing.T) {
			w := policytest.Generate(seed, policytest.Small)
			rng := rand.New(rand.NewSource(seed))
			facts := sstest.NewFacts(t, w)
			// db holds the replica and records whose dealer and provider
			// are those of their creation, never updated: fetch and
			// replicate must not read them. pdb holds records kept current
			// by the provide strategy's consumer.
			db := sqldbtest.OpenSQLite(t, securitysystem.Migrations()...)
			pdb := sqldbtest.OpenSQLite(t, securitysystem.Migrations()...)
			proj := replicate.NewProjection()
			feed := func(evs *sstest.Events) {
				sstest.Apply(t, db, proj.Handle, evs.List())
				sstest.Apply(t, pdb, provide.Handle, evs.List())
			}
			evs := sstest.NewEvents(time.Now().Add(-time.Hour))
			evs.World(w)
			feed(evs)
			st := store.New(db, discardEvents{})
			pst := store.New(pdb, discardEvents{}, store.WithCreateHook(provide.FillFacts))
			stored := createWorldSystems(t, st, w, rand.New(rand.NewSource(seed)))
			createWorldSystems(t, pst, w, rand.New(rand.NewSource(seed)))

			fa, err := fetch.New(fetch.Config{
				CustomerURL: facts.Customer.URL, DealerURL: facts.Dealer.URL, MonitoringURL: facts.Monitoring.URL,
				TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "service"}),
			}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			strategies := []struct {
				a      authz.Authorizer
				st     *store.Store
				caller func(u string) *auth.Caller
			}{
				{fa, st, func(u string) *auth.Caller { return sstest.Caller(w, u) }},
				{replicate.New(db), st, func(u string) *auth.Caller { return sstest.Caller(w, u) }},
				{provide.New(pdb, nil), pst, func(u string) *auth.Caller { return provideCaller(t, w, u) }},
			}
			check := func(round string, perUser int) {
				for i, u := range w.Users() {
					// Every user at the start, every other one after a change.
					if perUser == 0 && i%2 == int(rng.Int63()%2) {
						continue
					}
					for range max(perUser, 1) {
						c := randomListCase(rng, w)
						want := pureList(w, stored, u, c)
						for _, s := range strategies {
							svc := app.NewService(s.st, s.a, func() time.Time { return c.at }, nil)
							got, pages, err := listAll(t, svc, s.caller(u), c.q)
							if err != nil || !sameViews(got, want) {
								t.Fatalf("%s: %s list of %s %+v at %s (%d pages, err %v):\n got  %s\n want %s",
									round, s.a.Name(), u, c.q, c.at, pages, err, viewIDs(got), viewIDs(want))
							}
						}
					}
				}
			}
			check("initial", 2)
			for range 12 {
				before := w.Clone()
				c := w.Mutate(rng)
				facts.SetWorld(w)
				evs := sstest.NewEvents(time.Now())
				evs.Change(before, c)
				feed(evs)
				check("after "+c.String(), 0)
			}
		})
	}
}

// TestListParameters checks the validation of the list's parameters, each
// error naming its parameter, and that a caller who may view nothing gets
// an empty page without a query.
func TestListParameters(t *testing.T) {
	db := sqldbtest.OpenSQLite(t, securitysystem.Migrations()...)
	svc := app.NewService(store.New(db, discardEvents{}), replicate.New(db), nil, nil)
	caller := &auth.Caller{Subject: "00000000-0000-0000-0000-000000000001"}
	for _, c := range []struct {
		q     app.ListQuery
		field string
	}{
		{app.ListQuery{Limit: -1}, "limit"},
		{app.ListQuery{Limit: 501}, "limit"},
		{app.ListQuery{LocationID: "x"}, "locationId"},
		{app.ListQuery{CustomerID: "00000000-0000-0000-0000-00000000000"}, "customerId"},
		{app.ListQuery{State: "armed"}, "state"},
		{app.ListQuery{Q: strings.Repeat("x", 201)}, "q"},
		{app.ListQuery{Cursor: "!!"}, "cursor"},
		{app.ListQuery{Cursor: "e30"}, "cursor"}, // {} decodes but names no row
	} {
		_, err := svc.List(context.Background(), caller, c.q)
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%+v: %v, want an error naming %s", c.q, err, c.field)
		}
	}
	page, err := svc.List(context.Background(), caller, app.ListQuery{Limit: 500})
	if err != nil || len(page.Systems) != 0 || page.NextCursor != "" {
		t.Errorf("nobody's list: %+v, %v", page, err)
	}
	_ = sqldb.SQLite
}

// TestListConformanceDelegate is TestListConformance for delegate: OpenFGA
// (embedded, memory datastore) holds the World's tuples, replaced by the
// difference after every random change, and the records' dealer and
// provider are kept by the resource facts handler, as under `up`.
func TestListConformanceDelegate(t *testing.T) {
	seeds := []int64{1}
	for _, seed := range seeds {
		t.Run("seed="+itoa(seed), func(t *testing.T) {
			ctx := context.Background()
			w := policytest.Generate(seed, policytest.Small)
			rng := rand.New(rand.NewSource(seed))
			srv, err := fga.StartEmbedded(ctx, fga.EmbeddedOptions{Addr: "127.0.0.1:0"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = srv.Close() })
			client, err := fga.New(fga.Config{URL: srv.URL(), Timeout: 30 * time.Second}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			tuples := func(w *policytest.World) map[string]*openfgav1.TupleKey {
				ts, err := openfgatest.Tuples(w)
				if err != nil {
					t.Fatal(err)
				}
				out := map[string]*openfgav1.TupleKey{}
				for _, tk := range ts {
					out[prototext.Format(tk)] = tk
				}
				return out
			}
			current := tuples(w)
			var all []*openfgav1.TupleKey
			for _, tk := range current {
				all = append(all, tk)
			}
			if err := client.Write(ctx, all, nil); err != nil {
				t.Fatal(err)
			}
			db := sqldbtest.OpenSQLite(t, securitysystem.Migrations()...)
			evs := sstest.NewEvents(time.Now().Add(-time.Hour))
			evs.World(w)
			sstest.Apply(t, db, provide.Handle, evs.List())
			st := store.New(db, discardEvents{}, store.WithCreateHook(provide.FillKnownFacts))
			stored := createWorldSystems(t, st, w, rng)
			a := delegate.New(client)
			check := func(round string, perUser int) {
				for i, u := range w.Users() {
					if perUser == 0 && i%2 == int(rng.Int63()%2) {
						continue
					}
					for range max(perUser, 1) {
						c := randomListCase(rng, w)
						want := pureList(w, stored, u, c)
						svc := app.NewService(st, a, func() time.Time { return c.at }, nil)
						got, pages, err := listAll(t, svc, sstest.Caller(w, u), c.q)
						if err != nil || !sameViews(got, want) {
							t.Fatalf("%s: delegate list of %s %+v at %s (%d pages, err %v):\n got  %s\n want %s",
								round, u, c.q, c.at, pages, err, viewIDs(got), viewIDs(want))
						}
					}
				}
			}
			check("initial", 1)
			for range 10 {
				before := w.Clone()
				c := w.Mutate(rng)
				next := tuples(w)
				var writes []*openfgav1.TupleKey
				var deletes []*openfgav1.TupleKeyWithoutCondition
				for k, tk := range current {
					if _, ok := next[k]; !ok {
						deletes = append(deletes, &openfgav1.TupleKeyWithoutCondition{Object: tk.Object, Relation: tk.Relation, User: tk.User})
					}
				}
				for k, tk := range next {
					if _, ok := current[k]; !ok {
						writes = append(writes, tk)
					}
				}
				if err := client.Write(ctx, writes, deletes); err != nil {
					t.Fatal(err)
				}
				current = next
				evs := sstest.NewEvents(time.Now())
				evs.Change(before, c)
				sstest.Apply(t, db, provide.Handle, evs.List())
				check("after "+c.String(), 0)
			}
		})
	}
}
