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
	// Deleted is the number of derived tuples deleted before the replay.
	Deleted int
	// Written is the number of tuples the replay wrote.
	Written int
	// Kept is the number of tuples left in place because the sync does not
	// derive them.
	Kept int
	// Applied is the number of events applied per source stream.
	Applied map[string]int64
	// Took is the duration of the rebuild.
	Took time.Duration
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
// (a *HorizonError) when a stream lost its oldest events, empties the
// sync's tables and forgets its applied events (Consumer.Reset, which
// refuses with a *RunningError while a sync instance holds a stream
// lease), deletes the tuples the sync derives from events (IsDerived),
// keeping every other tuple, and replays every stream from its start
// through the same planning as live delivery until it has caught up (or ctx
// ends). The replay collects the tuples in memory (about 300 bytes each)
// and writes them once it caught up, still holding the stream leases;
// until then checks deny what the tuples not yet written would allow: the
// rebuild fails closed.
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
	// The replay computes the tuples in memory and writes them at the end
	// in calls of MaxTuplesPerWrite: one OpenFGA round trip per event
	// would make a large rebuild take hours.
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
	all, err := deps.FGA.Read(ctx, nil) // no key: every tuple of the store
	if err != nil {
		return RebuildReport{}, fmt.Errorf("rebuild authzsync: read the tuples: %w", err)
	}
	var deletes []*openfgav1.TupleKeyWithoutCondition
	for _, t := range all {
		if IsDerived(t.GetKey()) {
			deletes = append(deletes, openfga.WithoutCondition(t.GetKey()))
		} else {
			report.Kept++
		}
	}
	if err := deps.FGA.Write(ctx, nil, deletes); err != nil {
		return RebuildReport{}, fmt.Errorf("rebuild authzsync: delete the derived tuples (run the rebuild again): %w", err)
	}
	report.Deleted = len(deletes)

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
	tuples := s.sink.close()
	werr := deps.FGA.Write(ctx, tuples, nil)
	stop()
	<-done // ended by stop: what it returns says only that
	if werr != nil {
		return RebuildReport{}, fmt.Errorf("rebuild authzsync: write the tuples (run the rebuild again): %w", werr)
	}
	report.Written = len(tuples)
	if report.Applied, err = appliedCounts(ctx, s); err != nil {
		return RebuildReport{}, err
	}
	report.Took = time.Since(start)
	return report, nil
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

// close ends the replay's changes and returns the tuples.
func (ts *tupleSet) close() []*openfgav1.TupleKey {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.closed = true
	out := make([]*openfgav1.TupleKey, 0, len(ts.tuples))
	for _, t := range ts.tuples {
		out = append(out, t)
	}
	return out
}
