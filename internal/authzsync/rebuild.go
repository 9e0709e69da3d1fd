package authzsync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	openfgav1 "github.com/openfga/api/proto/openfga/v1"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/policy/openfga"
)

// derivedRelations are the relations, per object type, of every tuple the
// sync writes (internal/policy/openfga's OrgRoleTuples, OnDutyTuple,
// LocationTuples, DealerProviderTuple, EmployeeLocationRoleTuples,
// TeamLocationRoleTuples, TeamMemberTuple and SecuritySystemTuples). Every
// tuple RealGuardIO itself stores is one of them: the other relations of
// the model (platform#admin, location#platform) are sent as contextual
// tuples and never stored. A rebuild deletes only tuples of these
// relations, so anything else an operator keeps in the store (a stored
// platform admin, tuples of types the model does not know) survives it.
var derivedRelations = map[string][]string{
	openfga.TypeCustomer:           {"administrator", "armer", "disarmer", "viewer"},
	openfga.TypeMonitoringProvider: {"armer", "disarmer", "viewer"},
	openfga.TypeDealer:             {"monitoring_provider", "armer", "disarmer", "viewer"},
	openfga.TypeTeam:               {"member"},
	openfga.TypeLocation:           {"customer", "dealer", "armer", "disarmer", "viewer"},
	openfga.TypePlatform:           {"on_duty"},
	openfga.TypeSecuritySystem:     {"location", "platform"},
}

// IsDerived reports whether t is a tuple the sync writes from events, one
// a rebuild deletes and writes again.
func IsDerived(t *openfgav1.TupleKey) bool {
	typ, _, ok := strings.Cut(t.GetObject(), ":")
	if !ok {
		return false
	}
	for _, r := range derivedRelations[typ] {
		if r == t.GetRelation() {
			return true
		}
	}
	return false
}

// RebuildProgress is how far a rebuild is, as reported while it runs.
type RebuildProgress = events.RebuildProgress

// RebuildOption configures a rebuild.
type RebuildOption = events.RebuildOption

// WithRebuildProgress calls fn about every interval with the rebuild's
// progress, and once more when the replay has caught up.
func WithRebuildProgress(every time.Duration, fn func(RebuildProgress)) RebuildOption {
	return events.WithRebuildProgress(every, fn)
}

// HorizonError says a rebuild was refused, before anything changed,
// because a source stream lost its oldest events; OpenFGA would then deny
// what the owners still grant.
type HorizonError = events.HorizonError

// RebuildReport says what a rebuild did.
type RebuildReport struct {
	// Deleted is the number of derived tuples deleted because the replay
	// does not derive them (or derives them with another condition).
	Deleted int
	// Written is the number of tuples the replay derived that the store
	// lacked (or held with another condition).
	Written int
	// Unchanged is the number of derived tuples the store already held as
	// the replay derived them.
	Unchanged int
	// Kept is the number of tuples left in place because the sync does not
	// derive them.
	Kept int
	// Applied is the number of events applied per source stream.
	Applied map[string]int64
	// Took is the duration of the rebuild; ReplayTook, CompareTook and
	// WriteTook are those of its phases: replaying the streams, reading
	// and comparing the store, deleting and writing the differences.
	Took, ReplayTook, CompareTook, WriteTook time.Duration
}

// RunningError says a rebuild was refused, before anything changed,
// because an authorization sync holds the lease of one of its streams: a
// replay beside it would compete for the events and delete tuples under
// it.
type RunningError struct {
	// Holder is the running consumer instance's id.
	Holder string
	// Stream is a stream whose lease it holds.
	Stream string
	// Until is when that lease expires unless renewed.
	Until time.Time
}

// Error says what runs and what to do.
func (e *RunningError) Error() string {
	return fmt.Sprintf("the authorization sync is running (lease held by %s on stream %s, until %s); stop it first",
		e.Holder, e.Stream, e.Until.UTC().Format(time.RFC3339))
}

// Rebuild rebuilds OpenFGA's tuples from the event streams: it refuses
// (a *HorizonError) when a stream lost its oldest events, takes every
// stream lease for the whole rebuild (refusing with a *RunningError while
// a sync instance holds one), empties the sync's tables and forgets its
// applied events (Consumer.Reset), and replays every stream from its
// start through the same planning as live delivery until it has caught up
// (or ctx ends), collecting the tuples in memory (about 300 bytes each).
// Then, still holding the leases, it compares the store with them: the
// derived tuples (IsDerived) the replay does not derive are deleted first,
// those it derives and the store lacks are written, and every other tuple
// is kept. Meanwhile the store keeps the tuples it had when the sync
// stopped; checks see the rebuilt tuples once the deletes and then the
// writes are done.
func Rebuild(ctx context.Context, cfg Config, deps Deps, opts ...RebuildOption) (RebuildReport, error) {
	start := time.Now()
	o := events.RebuildOptionsOf(opts)
	// Rebuild metrics are of no interest: a private registry keeps them
	// apart from a service's.
	deps.Registry = prometheus.NewRegistry()
	if cfg.Holder == "" {
		cfg.Holder = HolderName("rebuild-openfga")
	}
	s, err := New(ctx, cfg, deps)
	if err != nil {
		return RebuildReport{}, err
	}
	// The replay computes the tuples in memory and writes the differences
	// at the end: one OpenFGA round trip per event would make a large
	// rebuild take hours.
	s.sink = &tupleSet{tuples: map[tupleKey]*openfgav1.TupleKey{}}
	if err := events.CheckHorizon(ctx, deps.JS, "rebuild authzsync", s.streams, restoreAdvice); err != nil {
		return RebuildReport{}, err
	}
	// The stream leases are taken first and held to the end, so no sync
	// started meanwhile can apply events between the reset, the deletion
	// of the derived tuples and the replay (it stands by instead).
	release, err := s.consumer.HoldLeases(ctx)
	if err != nil {
		return RebuildReport{}, runningOr(err, "take the stream leases")
	}
	defer release()
	if err := s.consumer.Reset(ctx); err != nil {
		return RebuildReport{}, runningOr(err, "reset")
	}
	var report RebuildReport
	if err := s.waitForFGA(ctx); err != nil {
		return RebuildReport{}, fmt.Errorf("rebuild authzsync: %w", err)
	}

	replayStart := time.Now()
	progress := func(final bool) {
		if o.Progress == nil {
			return
		}
		p := RebuildProgress{Elapsed: time.Since(replayStart), Final: final}
		pending := map[string]uint64{}
		for _, sp := range s.consumer.Progress() {
			if sp.Known {
				pending[sp.Stream] = sp.Pending
			}
		}
		for _, name := range s.streams {
			st, err := deps.JS.Stream(ctx, name)
			if err != nil {
				continue // reported again at the next tick
			}
			msgs := int64(st.CachedInfo().State.Msgs)
			p.Total += msgs
			if n, ok := pending[name]; ok {
				p.Done += max(msgs-int64(n), 0)
			}
		}
		o.Progress(p)
	}
	// The consumer runs without Syncer.Run's pause loop: a pause here only
	// comes from the closed tuple set, and ends the replay.
	runCtx, stop := context.WithCancel(ctx)
	s.mu.Lock()
	s.pause = stop
	s.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- s.consumer.Run(runCtx) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	lastReport := time.Now()
	for caughtUp := false; !caughtUp; {
		select {
		case <-ctx.Done():
			stop()
			<-done
			// The sync blocks on an event that keeps failing rather than
			// skip it; say so, or the rebuild just looks slow.
			return RebuildReport{}, fmt.Errorf("rebuild authzsync: %w", errors.Join(ctx.Err(), s.consumer.Err()))
		case err := <-done:
			stop()
			return RebuildReport{}, fmt.Errorf("rebuild authzsync: the sync stopped: %v", err)
		case <-tick.C:
			caughtUp = true
			for _, p := range s.consumer.Progress() {
				if !p.Known || p.Pending > 0 {
					caughtUp = false
				}
			}
			if !caughtUp && o.Every > 0 && time.Since(lastReport) >= o.Every {
				lastReport = time.Now()
				progress(false)
			}
		}
	}
	progress(true)
	// The tuples are written while the replay's consumer still holds the
	// stream leases, so a sync started meanwhile cannot apply a newer
	// event (a revocation) before this write and see it undone; events
	// arriving now are handed back for it.
	target := s.sink.close()
	compareStart := time.Now()
	report.ReplayTook = compareStart.Sub(replayStart)
	werr := s.converge(ctx, target, &report, compareStart)
	stop()
	<-done // ended by stop: what it returns says only that
	if werr != nil {
		return RebuildReport{}, werr
	}
	if report.Applied, err = appliedCounts(ctx, s); err != nil {
		return RebuildReport{}, err
	}
	report.Took = time.Since(start)
	return report, nil
}

// converge makes the store's derived tuples equal to target: it reads the
// store page by page, keeps every tuple the sync does not derive and every
// derived one target holds unchanged, deletes the other derived ones, and
// then writes what target holds and the store lacked. Deletes go first, in
// Writes of their own (a key whose condition changed is deleted and
// written), so revocations take effect before grants. Deleting through
// OpenFGA's API costs about a millisecond a tuple on the SQLite datastore
// (each Write's DELETE is an OR of a hundred keys), so a rebuild that
// deleted every derived tuple before its replay took longer the fuller
// the store: comparing first deletes only what is wrong.
func (s *Syncer) converge(ctx context.Context, target map[tupleKey]*openfgav1.TupleKey, report *RebuildReport, start time.Time) error {
	var deletes []*openfgav1.TupleKeyWithoutCondition
	err := s.deps.FGA.ReadEach(ctx, nil, func(t *openfgav1.Tuple) { // no key: every tuple of the store
		k := t.GetKey()
		if !IsDerived(k) {
			report.Kept++
			return
		}
		key := tupleKey{k.GetObject(), k.GetRelation(), k.GetUser()}
		if want, ok := target[key]; ok && proto.Equal(want.GetCondition(), k.GetCondition()) {
			delete(target, key)
			report.Unchanged++
			return
		}
		deletes = append(deletes, openfga.WithoutCondition(k))
	})
	if err != nil {
		return fmt.Errorf("rebuild authzsync: read the tuples: %w", err)
	}
	writes := make([]*openfgav1.TupleKey, 0, len(target))
	for _, t := range target {
		writes = append(writes, t)
	}
	writeStart := time.Now()
	report.CompareTook = writeStart.Sub(start)
	if err := s.deps.FGA.Write(ctx, nil, deletes); err != nil {
		return fmt.Errorf("rebuild authzsync: delete the tuples no event derives (run the rebuild again): %w", err)
	}
	report.Deleted = len(deletes)
	if err := s.deps.FGA.Write(ctx, writes, nil); err != nil {
		return fmt.Errorf("rebuild authzsync: write the tuples (run the rebuild again): %w", err)
	}
	report.Written = len(writes)
	report.WriteTook = time.Since(writeStart)
	return nil
}

// runningOr is err as a *RunningError when another instance holds a
// stream lease, else err wrapped with what the rebuild was doing.
func runningOr(err error, doing string) error {
	var running *events.RunningError
	if errors.As(err, &running) {
		return &RunningError{Holder: running.Holder, Stream: running.Stream, Until: running.Until}
	}
	return fmt.Errorf("rebuild authzsync: %s: %w", doing, err)
}

// restoreAdvice is what an operator does past the streams' retention.
const restoreAdvice = "the authorization sync's database and the OpenFGA store from backups younger than the streams' age limit and start the sync"

// appliedCounts returns the events applied per stream since the reset,
// from the consumer's bookkeeping; streams without events are left out.
func appliedCounts(ctx context.Context, s *Syncer) (map[string]int64, error) {
	rows, err := s.deps.DB.QueryContext(ctx, `SELECT stream, applied_events FROM event_consumer_streams WHERE consumer = ?`, s.cfg.ConsumerName)
	if err != nil {
		return nil, fmt.Errorf("rebuild authzsync: applied counts: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var stream string
		var n int64
		if err := rows.Scan(&stream, &n); err != nil {
			return nil, fmt.Errorf("rebuild authzsync: applied counts: %w", err)
		}
		if n > 0 {
			out[stream] = n
		}
	}
	return out, rows.Err()
}

// tupleKey is what identifies a tuple in OpenFGA: one tuple per key,
// whatever its condition.
type tupleKey struct{ object, relation, user string }

// tupleSet is the OpenFGA store as a rebuild's replay computes it: the
// plans of the events applied in order to a set, with the semantics of
// execute (writes ignore a key already held, deletes ignore a missing
// one, upserts and replacements set the key's tuple).
type tupleSet struct {
	mu     sync.Mutex
	closed bool
	tuples map[tupleKey]*openfgav1.TupleKey
}

// apply applies plans in order, all or none: it returns false, changing
// nothing, once the set is closed.
func (ts *tupleSet) apply(plans ...*plan) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.closed {
		return false
	}
	for _, p := range plans {
		ts.applyOne(p)
	}
	return true
}

func (ts *tupleSet) applyOne(p *plan) {
	writes, deletes := dedupe(p.writes, p.deletes)
	for _, t := range deletes {
		delete(ts.tuples, tupleKey{t.GetObject(), t.GetRelation(), t.GetUser()})
	}
	for _, t := range writes {
		k := tupleKey{t.GetObject(), t.GetRelation(), t.GetUser()}
		if _, ok := ts.tuples[k]; !ok {
			ts.tuples[k] = t
		}
	}
	for _, t := range append(append([]*openfgav1.TupleKey{}, p.upsert...), p.replace...) {
		ts.tuples[tupleKey{t.GetObject(), t.GetRelation(), t.GetUser()}] = t
	}
}

// close ends the replay's changes and returns the tuples by key.
func (ts *tupleSet) close() map[tupleKey]*openfgav1.TupleKey {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.closed = true
	return ts.tuples
}
