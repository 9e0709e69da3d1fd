package authzsync

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	openfgav1 "github.com/openfga/api/proto/openfga/v1"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/realguardio/realguardio/internal/authzsync/authzsynctest"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/catalog"
	"github.com/realguardio/realguardio/internal/platform/fga"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/openfga"
	"github.com/realguardio/realguardio/internal/policy/policytest"
)

// batchEnv is a sync's handlers on their own database and OpenFGA store,
// called directly (no streams): the test decides what is a batch and which
// commits fail.
type batchEnv struct {
	t   *testing.T
	s   *Syncer
	db  *sqldb.DB
	reg *prometheus.Registry
}

func newBatchEnv(t *testing.T, fgaURL, store string) *batchEnv {
	t.Helper()
	reg := prometheus.NewRegistry()
	c, err := fga.New(fga.Config{URL: fgaURL, StoreName: store, Timeout: 30 * time.Second,
		MaxTuplesPerWrite: fga.EmbeddedMaxTuplesPerWrite}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	db := sqldbtest.OpenSQLite(t)
	if err := db.Migrate(context.Background(), Migrations()...); err != nil {
		t.Fatal(err)
	}
	return &batchEnv{t: t, s: &Syncer{deps: Deps{DB: db, FGA: c}}, db: db, reg: reg}
}

var errFailedCommit = errors.New("the commit failed")

// apply applies evs in one transaction, with handleBatch or, when one is
// true, with handle per event; with fail the transaction is rolled back
// after the handlers succeeded, as when the commit fails after OpenFGA
// was written.
func (e *batchEnv) apply(evs []events.Event, one, fail bool) {
	e.t.Helper()
	ctx := context.Background()
	err := e.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if one {
			for _, ev := range evs {
				if err := e.s.handle(ctx, tx, ev); err != nil {
					return err
				}
			}
		} else if err := e.s.handleBatch(ctx, tx, evs); err != nil {
			return err
		}
		if fail {
			return errFailedCommit
		}
		return nil
	})
	if fail && errors.Is(err, errFailedCommit) {
		return
	}
	if err != nil {
		e.t.Fatal(err)
	}
}

// tuples returns every tuple of the store, condition included, sorted.
func (e *batchEnv) tuples() []string {
	e.t.Helper()
	ts, err := e.s.deps.FGA.Read(context.Background(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]string, 0, len(ts))
	for _, tu := range ts {
		k := tu.GetKey()
		cond, err := protojson.Marshal(k.GetCondition())
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, k.GetObject()+" "+k.GetRelation()+" "+k.GetUser()+" "+string(cond))
	}
	slices.Sort(out)
	return out
}

// writeCalls returns how many Writes the client sent.
func (e *batchEnv) writeCalls() int {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if mf.GetName() != "realguardio_openfga_calls_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" && l.GetValue() == "write" {
					n += int(m.GetCounter().GetValue())
				}
			}
		}
	}
	return n
}

// TestBatchesLeaveTheTuplesOfOneAtATime applies a generated world and a
// long run of random changes (roles set and cleared, schedules set and
// cleared, employees removed and hired elsewhere, members removed, dealers
// and providers changed) once one event per transaction, as before
// batching, and then, on fresh stores, in random batches, some of which
// are applied and rolled back first (a failed commit after OpenFGA was
// written) and then retried as a batch or one event at a time (the
// consumer's fallback): every run leaves exactly the same tuples,
// conditions included, and the batches make at most three Writes each.
func TestBatchesLeaveTheTuplesOfOneAtATime(t *testing.T) {
	srv, err := fga.StartEmbedded(context.Background(), fga.EmbeddedOptions{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	const seed = 7
	w := policytest.Generate(seed, policytest.Small)
	rng := rand.New(rand.NewSource(seed))
	b := authzsynctest.NewBuilder()
	evs := b.World(w)
	for range 300 {
		evs = append(evs, b.Change(w.Mutate(rng))...)
		if rng.Intn(10) == 0 {
			evs = append(evs, deletion(rng, w, b)...)
		}
	}

	ref := newBatchEnv(t, srv.URL(), "one-at-a-time")
	for _, ev := range evs {
		ref.apply([]events.Event{ev}, true, false)
	}
	want := ref.tuples()
	if len(want) == 0 {
		t.Fatal("the reference run wrote no tuples")
	}
	t.Logf("%d events, %d tuples, %d Writes one at a time", len(evs), len(want), ref.writeCalls())

	for trial := range 4 {
		be := newBatchEnv(t, srv.URL(), fmt.Sprintf("batches-%d", trial))
		maxBatch := []int{2, 10, 60, len(evs)}[trial]
		batches, failed := 0, 0
		for i := 0; i < len(evs); {
			batch := evs[i:min(i+1+rng.Intn(maxBatch), len(evs))]
			i += len(batch)
			if rng.Intn(3) == 0 {
				be.apply(batch, false, true)
				batches++
				failed++
				if rng.Intn(2) == 0 {
					be.apply(batch, true, false)
					continue
				}
			}
			be.apply(batch, false, false)
			batches++
		}
		got := be.tuples()
		if !slices.Equal(got, want) {
			t.Errorf("batches of up to %d events (%d rolled back and retried): the tuples differ from one at a time\nmissing: %v\nextra: %v",
				maxBatch, failed, minus(want, got), minus(got, want))
		}
		// The fallback's per-event Writes are not the batches': count the
		// batches' only when no batch fell back.
		if calls := be.writeCalls(); maxBatch == len(evs) && calls > 3*batches {
			t.Errorf("%d batches made %d Writes, want at most 3 each", batches, calls)
		}
		t.Logf("batches of up to %d events: %d batches (%d rolled back), %d Writes", maxBatch, batches, failed, be.writeCalls())
	}
}

// deletion returns the events of a team's or a location's deletion: now
// with what the Customer Service sends before it, now the deletion alone
// (as if those had been missed), and sometimes the same id created again
// with a member or a dealer and roles, which a batch must not lose to the
// deletion before it.
func deletion(rng *rand.Rand, w *policytest.World, b *authzsynctest.Builder) []events.Event {
	var out []events.Event
	u := w.Employees[rng.Intn(len(w.Employees))].UserID
	if rng.Intn(2) == 0 && len(w.Teams) > 0 {
		tm := w.Teams[rng.Intn(len(w.Teams))]
		if rng.Intn(2) == 0 {
			for _, m := range tm.Members {
				out = append(out, b.TeamMember(tm.CustomerID, tm.ID, m, false))
			}
		}
		out = append(out, b.Typed(catalog.TeamDeleted, tm.CustomerID, catalog.TeamDeletedPayload{CustomerID: tm.CustomerID, TeamID: tm.ID}))
		if rng.Intn(2) == 0 && len(w.Locations) > 0 {
			l := w.Locations[rng.Intn(len(w.Locations))]
			out = append(out,
				b.Typed(catalog.TeamCreated, tm.CustomerID, catalog.TeamCreatedPayload{CustomerID: tm.CustomerID, TeamID: tm.ID, Name: "again"}),
				b.TeamMember(tm.CustomerID, tm.ID, u, true),
				b.TeamLocationRoles(tm.CustomerID, l.ID, tm.ID, []string{policy.RoleArmer}))
		}
		return out
	}
	if len(w.Locations) == 0 {
		return nil
	}
	l := w.Locations[rng.Intn(len(w.Locations))]
	if rng.Intn(2) == 0 && l.DealerID != "" {
		out = append(out, b.LocationDealer(l.CustomerID, l.ID, ""))
	}
	out = append(out, b.Typed(catalog.LocationDeleted, l.CustomerID, catalog.LocationDeletedPayload{CustomerID: l.CustomerID, LocationID: l.ID}))
	if rng.Intn(2) == 0 && len(w.Dealers) > 0 {
		out = append(out,
			b.LocationDealer(l.CustomerID, l.ID, w.Dealers[rng.Intn(len(w.Dealers))].ID),
			b.EmployeeLocationRoles(l.CustomerID, l.ID, u, []string{policy.RoleViewer}))
	}
	return out
}

// minus returns the strings of a that b lacks (both sorted).
func minus(a, b []string) []string {
	var out []string
	for _, s := range a {
		if _, found := slices.BinarySearch(b, s); !found {
			out = append(out, s)
		}
	}
	return out
}

// TestNetChangeOfOneKey pins the folding rules for one key, against the
// per-event semantics of execute: a later event of the same key wins,
// except that a plain write leaves a held key alone.
func TestNetChangeOfOneKey(t *testing.T) {
	teamMember := func() []*openfgav1.TupleKey { return []*openfgav1.TupleKey{openfga.TeamMemberTuple("t1", "alice")} }
	w := func() *plan { return &plan{writes: teamMember()} }
	d := func() *plan { p := &plan{}; p.delete(teamMember()...); return p }
	cases := []struct {
		name  string
		plans []*plan
		want  netKind
	}{
		{"write", []*plan{w()}, netWrite},
		{"delete", []*plan{d()}, netDelete},
		{"write then delete", []*plan{w(), d()}, netDelete},
		{"delete then write", []*plan{d(), w()}, netSet},
		{"write, delete, write", []*plan{w(), d(), w()}, netSet},
		{"delete, write, delete", []*plan{d(), w(), d()}, netDelete},
		{"write then write", []*plan{w(), w()}, netWrite},
		{"upsert then write", []*plan{{upsert: teamMember()}, w()}, netSet},
		{"write and delete in one plan (the write wins, as in execute)", []*plan{{writes: teamMember(), deletes: d().deletes}}, netWrite},
	}
	for _, c := range cases {
		n := newNetChanges()
		for _, p := range c.plans {
			n.add(p)
		}
		if len(n.order) != 1 {
			t.Fatalf("%s: %d keys, want 1", c.name, len(n.order))
		}
		if got := n.changes[n.order[0]].kind; got != c.want {
			t.Errorf("%s: net %d, want %d", c.name, got, c.want)
		}
	}
}

// TestDeletionLeavesNoTuples checks that customer.team_deleted and
// customer.location_deleted leave no tuple and no row of the sync naming
// the team or the location, one event at a time and in one batch with
// the events that made them. The deletions come without the events that
// revoke what the team and the location held first (as when one of those
// was parked), so every kind of tuple is still there when they arrive;
// the tuples of another team and location stay.
func TestDeletionLeavesNoTuples(t *testing.T) {
	srv, err := fga.StartEmbedded(context.Background(), fga.EmbeddedOptions{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	const customer, dealer, user = "c1", "d1", "u1"
	b := authzsynctest.NewBuilder()
	var made []events.Event
	for _, id := range []string{"gone", "kept"} {
		d := dealer
		made = append(made,
			b.Typed(catalog.LocationCreated, customer, catalog.LocationCreatedPayload{CustomerID: customer, LocationID: "loc-" + id, Name: id, DealerID: &d}),
			b.Typed(catalog.TeamCreated, customer, catalog.TeamCreatedPayload{CustomerID: customer, TeamID: "team-" + id, Name: id}),
			b.TeamMember(customer, "team-"+id, user, true),
			b.EmployeeLocationRoles(customer, "loc-"+id, user, []string{policy.RoleViewer}),
			b.TeamLocationRoles(customer, "loc-"+id, "team-"+id, []string{policy.RoleArmer}),
			// The kept team's roles at the deleted location go with the
			// location, the deleted team's at the kept location with the
			// team.
			b.TeamLocationRoles(customer, "loc-"+id, "team-"+other(id), []string{policy.RoleDisarmer}))
	}
	deleted := []events.Event{
		b.Typed(catalog.TeamDeleted, customer, catalog.TeamDeletedPayload{CustomerID: customer, TeamID: "team-gone"}),
		b.Typed(catalog.LocationDeleted, customer, catalog.LocationDeletedPayload{CustomerID: customer, LocationID: "loc-gone"}),
	}
	names := func(tuple string) bool {
		return strings.Contains(tuple, openfga.Object(openfga.TypeTeam, "team-gone")) ||
			strings.Contains(tuple, openfga.Object(openfga.TypeLocation, "loc-gone"))
	}
	for _, way := range []string{"one at a time", "batched"} {
		t.Run(way, func(t *testing.T) {
			e := newBatchEnv(t, srv.URL(), strings.ReplaceAll(way, " ", "-"))
			e.apply(made, false, false)
			var before []string
			for _, tu := range e.tuples() {
				if names(tu) {
					before = append(before, tu)
				}
			}
			// location#customer, location#dealer, an employee's role, the
			// two teams' roles there, the membership, the team's role at
			// the kept location.
			if len(before) != 7 {
				t.Fatalf("before the deletions, %d tuples name them, want 7: %v", len(before), before)
			}
			if way == "one at a time" {
				for _, ev := range deleted {
					e.apply([]events.Event{ev}, true, false)
				}
			} else {
				e.apply(deleted, false, false)
			}
			kept := 0
			for _, tu := range e.tuples() {
				if names(tu) {
					t.Errorf("after the deletions: %s", tu)
				} else {
					kept++
				}
			}
			// The kept location's customer, dealer and employee's role,
			// the kept team's role there and its membership.
			if kept != 5 {
				t.Errorf("after the deletions, %d tuples of the kept team and location, want 5", kept)
			}
			for _, q := range []string{
				`SELECT COUNT(*) FROM authzsync_team_members WHERE team_id = 'team-gone'`,
				`SELECT COUNT(*) FROM authzsync_team_roles WHERE team_id = 'team-gone' OR location_id = 'loc-gone'`,
				`SELECT COUNT(*) FROM authzsync_locations WHERE location_id = 'loc-gone'`,
				`SELECT COUNT(*) FROM authzsync_location_roles WHERE location_id = 'loc-gone'`,
			} {
				var n int
				if err := e.db.QueryRowContext(context.Background(), q).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n != 0 {
					t.Errorf("after the deletions: %s = %d, want 0", q, n)
				}
			}
		})
	}
}

func other(id string) string {
	if id == "gone" {
		return "kept"
	}
	return "gone"
}
