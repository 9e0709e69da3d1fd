package store_test

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/securitysystem/app"
	"github.com/realguardio/realguardio/internal/securitysystem/store"
)

// listWorld is a set of systems spread over a few locations, customers,
// dealers and providers, with names that collide (so the id breaks ties)
// and names with LIKE's wildcards.
type listWorld struct {
	systems []app.SecuritySystem
	locs    []string
	custs   []string
	dealers []string
	provs   []string
}

func newListWorld(rng *rand.Rand, n int) listWorld {
	w := listWorld{}
	for i := range 12 {
		w.locs = append(w.locs, fmt.Sprintf("00000000-0000-0000-0000-0000000000%02d", i))
	}
	for range 4 {
		w.custs = append(w.custs, uuid.NewString())
		w.dealers = append(w.dealers, uuid.NewString())
	}
	w.provs = []string{uuid.NewString(), uuid.NewString()}
	names := []string{"Front", "front door", "Back", "50% off", "a_b", "Zeta", "alpha", "Front", "ÄRGER", `back\slash`}
	now := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	for range n {
		li := rng.Intn(len(w.locs))
		ss := app.SecuritySystem{
			ID: uuid.NewString(), Name: names[rng.Intn(len(names))], LocationID: w.locs[li], State: app.StateDisarmed,
			CustomerID: w.custs[li%len(w.custs)], CreatedAt: now, UpdatedAt: now, Version: 1,
		}
		if li%3 != 0 {
			ss.DealerID = w.dealers[li%len(w.dealers)]
			if li%2 == 0 {
				ss.MonitoringProviderID = w.provs[li%len(w.provs)]
			}
		}
		if rng.Intn(2) == 0 {
			ss.State = app.StateArmed
		}
		w.systems = append(w.systems, ss)
	}
	return w
}

// want is the pure answer: the systems the scope covers and the filters
// keep, in (name, id) order.
func (w listWorld) want(q app.PageQuery) []app.SecuritySystem {
	var out []app.SecuritySystem
	for _, ss := range w.systems {
		r := policy.Resource{LocationID: ss.LocationID, CustomerID: ss.CustomerID, DealerID: ss.DealerID, MonitoringProviderID: ss.MonitoringProviderID}
		if !q.Scope.Covers(r) ||
			(q.LocationID != "" && ss.LocationID != q.LocationID) ||
			(q.CustomerID != "" && ss.CustomerID != q.CustomerID) ||
			(q.State != "" && ss.State != q.State) ||
			(q.NameContains != "" && !strings.Contains(strings.ToLower(ss.Name), strings.ToLower(q.NameContains))) {
			continue
		}
		out = append(out, ss)
	}
	slices.SortFunc(out, func(a, b app.SecuritySystem) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

func pages(t *testing.T, s *store.Store, q app.PageQuery) []app.SecuritySystem {
	t.Helper()
	var out []app.SecuritySystem
	for range 10000 {
		p, err := s.ListPage(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Systems) > q.Limit || (p.More && len(p.Systems) != q.Limit) {
			t.Fatalf("page of %d with limit %d, more %v", len(p.Systems), q.Limit, p.More)
		}
		out = append(out, p.Systems...)
		if !p.More {
			return out
		}
		last := p.Systems[len(p.Systems)-1]
		q.After = &app.Key{Name: last.Name, ID: last.ID}
	}
	t.Fatal("paging does not end")
	return nil
}

func ids(ss []app.SecuritySystem) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ID
	}
	return out
}

// TestListPage compares every page of random scopes and filters with the
// pure filter (policy.Scope.Covers and the filters' meaning), on both
// stores, and checks that paging is stable under concurrent inserts.
func TestListPage(t *testing.T) {
	sets := []sqldb.Migrations{store.Migrations(), events.Migrations()}
	sqldbtest.ForEachStore(t, sets, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		rng := rand.New(rand.NewSource(7))
		w := newListWorld(rng, 300)
		s := store.New(db, events.NewOutbox(events.ProducerSecuritySystem))
		evs := make([][]app.Event, len(w.systems))
		if err := s.CreateMany(ctx, w.systems, evs); err != nil {
			t.Fatal(err)
		}
		pick := func(from []string) []string {
			var out []string
			for _, id := range from {
				if rng.Intn(3) == 0 {
					out = append(out, id)
				}
			}
			return out
		}
		for i := range 60 {
			q := app.PageQuery{Limit: 1 + rng.Intn(40)}
			q.Scope = policy.Scope{All: i%10 == 0, LocationIDs: pick(w.locs), CustomerIDs: pick(w.custs), DealerIDs: pick(w.dealers), MonitoringProviderIDs: pick(w.provs)}
			switch rng.Intn(6) {
			case 0:
				q.LocationID = w.locs[rng.Intn(len(w.locs))]
			case 1:
				q.CustomerID = w.custs[rng.Intn(len(w.custs))]
			case 2:
				q.State = app.StateArmed
			case 3:
				q.NameContains = []string{"FRONT", "%", "_", "a", `\`, "nothing"}[rng.Intn(6)]
			}
			got, want := ids(pages(t, s, q)), ids(w.want(q))
			if !slices.Equal(got, want) {
				t.Fatalf("query %+v: got %d systems %v, want %d %v", q, len(got), got, len(want), want)
			}
		}
		if p, err := s.ListPage(ctx, app.PageQuery{Limit: 10}); err != nil || len(p.Systems) != 0 || p.More {
			t.Errorf("empty scope: %+v, %v", p, err)
		}
		if _, err := s.ListPage(ctx, app.PageQuery{Scope: policy.Scope{All: true}}); !apperr.Is(err, apperr.Internal) {
			t.Errorf("no limit: %v", err)
		}

		// Rows inserted while paging never make a page repeat or skip a
		// row that existed when paging began.
		q := app.PageQuery{Scope: policy.Scope{LocationIDs: w.locs[:6], CustomerIDs: w.custs[:1]}, Limit: 7}
		before := w.want(q)
		var seen []app.SecuritySystem
		for {
			p, err := s.ListPage(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			seen = append(seen, p.Systems...)
			extra := newListWorld(rng, 5).systems
			for i := range extra {
				extra[i].LocationID, extra[i].CustomerID = w.locs[rng.Intn(6)], w.custs[0]
			}
			if err := s.CreateMany(ctx, extra, make([][]app.Event, len(extra))); err != nil {
				t.Fatal(err)
			}
			if !p.More {
				break
			}
			last := p.Systems[len(p.Systems)-1]
			q.After = &app.Key{Name: last.Name, ID: last.ID}
		}
		seenIDs := ids(seen)
		for i := 1; i < len(seen); i++ {
			if a, b := seen[i-1], seen[i]; a.Name > b.Name || (a.Name == b.Name && a.ID >= b.ID) {
				t.Fatalf("out of order or repeated at %d: %+v then %+v", i, a, b)
			}
		}
		for _, ss := range before {
			if !slices.Contains(seenIDs, ss.ID) {
				t.Fatalf("system %s existed when paging began and was skipped", ss.ID)
			}
		}
	})
}

// TestCreateManyAllOrNothing checks that one failing row leaves nothing:
// no system and no event.
func TestCreateManyAllOrNothing(t *testing.T) {
	sets := []sqldb.Migrations{store.Migrations(), events.Migrations()}
	sqldbtest.ForEachStore(t, sets, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := store.New(db, events.NewOutbox(events.ProducerSecuritySystem))
		w := newListWorld(rand.New(rand.NewSource(1)), 1200)
		evs := make([][]app.Event, len(w.systems))
		for i, ss := range w.systems {
			evs[i] = []app.Event{{Type: app.EventCreated, Payload: app.CreatedPayload{SecuritySystemID: ss.ID}}}
		}
		w.systems[1100].ID = w.systems[3].ID // a duplicate in the third batch
		if err := s.CreateMany(ctx, w.systems, evs); !apperr.Is(err, apperr.Conflict) {
			t.Fatalf("duplicate: %v", err)
		}
		var n, e int
		_ = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM security_systems`).Scan(&n)
		_ = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM event_outbox`).Scan(&e)
		if n != 0 || e != 0 {
			t.Fatalf("%d systems and %d events after a failed import", n, e)
		}
		w.systems[1100].ID = uuid.NewString()
		if err := s.CreateMany(ctx, w.systems, evs); err != nil {
			t.Fatal(err)
		}
		_ = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM security_systems`).Scan(&n)
		_ = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM event_outbox WHERE event_type = ?`, app.EventCreated).Scan(&e)
		if n != 1200 || e != 1200 {
			t.Fatalf("%d systems and %d events, want 1200 each", n, e)
		}
	})
}
