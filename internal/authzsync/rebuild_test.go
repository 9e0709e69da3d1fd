package authzsync_test

import (
	"context"
	"errors"
	"math/rand"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	openfgav1 "github.com/openfga/api/proto/openfga/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/realguardio/realguardio/internal/authzsync"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/openfga"
	"github.com/realguardio/realguardio/internal/policy/policytest"
)

// allTuples returns every stored tuple of the store as sorted strings
// (object, relation, user and condition), comparable across a rebuild.
func allTuples(t *testing.T, e *env) []string {
	t.Helper()
	ts, err := e.fga.Read(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, 0, len(ts))
	for _, tu := range ts {
		k := tu.GetKey()
		cond, err := protojson.Marshal(k.GetCondition())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, k.GetObject()+" "+k.GetRelation()+" "+k.GetUser()+" "+string(cond))
	}
	slices.Sort(out)
	return out
}

// TestRebuildRestoresTheSameTuples: a generated world (small unless
// -policy.size says otherwise) and revocations applied
// live, then a rebuild with the sync stopped leaves exactly the tuples
// there were, including one the sync does not derive (a stored platform
// admin), which the rebuild must keep; with the sync running the rebuild
// is refused and changes nothing.
func TestRebuildRestoresTheSameTuples(t *testing.T) {
	size, err := policytest.ParseSize(*sizeFlag)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, "")
	ctx := context.Background()
	w := policytest.Generate(*seedFlag, size)
	rng := rand.New(rand.NewSource(*seedFlag))
	e.publish(e.b.World(w)...)
	var evs []events.Event
	for range 20 {
		evs = append(evs, e.b.Change(w.Mutate(rng))...)
	}
	e.publish(evs...)
	kept := openfga.AdminTuple("operator-break-glass")
	if authzsync.IsDerived(kept) {
		t.Fatal("a stored platform admin counts as derived")
	}
	if err := e.fga.Write(ctx, []*openfgav1.TupleKey{kept}, nil); err != nil {
		t.Fatal(err)
	}
	before := allTuples(t, e)
	if len(before) < 10 {
		t.Fatalf("only %d tuples before the rebuild", len(before))
	}

	cfg := authzsync.Config{EventPrefix: e.prefix}
	deps := authzsync.Deps{DB: e.db, JS: e.js, FGA: e.fga}
	_, err = authzsync.Rebuild(ctx, cfg, deps)
	var running *authzsync.RunningError
	if !errors.As(err, &running) || !strings.HasPrefix(err.Error(), "the authorization sync is running (lease held by ") ||
		!strings.HasSuffix(err.Error(), "); stop it first") || !strings.HasPrefix(running.Holder, "authzsync on ") {
		t.Fatalf("with the sync running: %v", err)
	}
	if got := allTuples(t, e); !slices.Equal(got, before) {
		t.Fatalf("a refused rebuild changed the tuples: %d before, %d after", len(before), len(got))
	}

	e.stop()
	e.stop = nil
	// The store goes wrong while the sync is stopped: a derived tuple is
	// lost, a grant no event made appears, and a derived tuple's condition
	// changes (the on_duty tuple of an unrestricted user gets a schedule).
	ts, err := e.fga.Read(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var lost, duty *openfgav1.TupleKey
	for _, tu := range ts {
		k := tu.GetKey()
		switch {
		case k.GetRelation() == "on_duty" && k.GetCondition() == nil && duty == nil:
			duty = k
		case strings.HasPrefix(k.GetObject(), "security_system:") && lost == nil:
			lost = k
		}
	}
	if lost == nil || duty == nil {
		t.Fatal("no security system tuple or unrestricted on_duty tuple to corrupt")
	}
	forged := openfga.TeamMemberTuple("forged-team", "forged-user")
	user := strings.TrimPrefix(duty.GetUser(), "user:")
	scheduled, err := openfga.OnDutyTuple(user, &policy.Schedule{TimeZone: "UTC", Shifts: []policy.Shift{{Weekdays: []string{"MON"}, Start: "09:00", End: "10:00"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.fga.Write(ctx, []*openfgav1.TupleKey{forged}, []*openfgav1.TupleKeyWithoutCondition{openfga.WithoutCondition(lost), openfga.WithoutCondition(duty)}); err != nil {
		t.Fatal(err)
	}
	if err := e.fga.Write(ctx, []*openfgav1.TupleKey{scheduled}, nil); err != nil {
		t.Fatal(err)
	}
	var reports []authzsync.RebuildProgress
	report, err := authzsync.Rebuild(ctx, cfg, deps, authzsync.WithRebuildProgress(0, func(p authzsync.RebuildProgress) { reports = append(reports, p) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rebuilt %d tuples from %d events in %s", report.Deleted, e.sent, report.Took)
	after := allTuples(t, e)
	if !slices.Equal(after, before) {
		for _, s := range before {
			if !slices.Contains(after, s) {
				t.Errorf("lost: %s", s)
			}
		}
		for _, s := range after {
			if !slices.Contains(before, s) {
				t.Errorf("new: %s", s)
			}
		}
		t.Fatalf("the rebuild changed the tuples: %d before, %d after", len(before), len(after))
	}
	var applied int64
	for _, n := range report.Applied {
		applied += n
	}
	if applied != int64(e.sent) || report.Kept != 1 || report.Deleted != 2 || report.Written != 2 || report.Unchanged != len(before)-3 {
		t.Fatalf("report %+v, want %d events applied, 1 tuple kept, 2 deleted (the forged and the rescheduled), 2 written (the lost and the on_duty), %d unchanged",
			report, e.sent, len(before)-3)
	}
	if len(reports) != 1 || !reports[0].Final || reports[0].Done != int64(e.sent) || reports[0].Total != int64(e.sent) {
		t.Fatalf("progress reports %+v, want one final of %d events", reports, e.sent)
	}
}

// TestRebuildHoldsTheLeasesThroughout: a rebuild takes the stream leases
// before its reset and keeps them through it, so nothing can start
// consuming in the gap before its replay. Another instance holding the
// leases (as a rebuild between its reset and its replay does) makes a
// rebuild refuse, naming the holder, also after that instance's own reset
// (which keeps its leases) and after its consumer ran and stopped (which
// leaves them held); once it releases them the rebuild runs, and while it
// runs the lease names the command and the host.
func TestRebuildHoldsTheLeasesThroughout(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	e.publish(e.b.World(policytest.FixedWorld())...)
	e.stop()
	e.stop = nil
	before := allTuples(t, e)

	deps := authzsync.Deps{DB: e.db, JS: e.js, FGA: e.fga}
	other, err := authzsync.New(ctx, authzsync.Config{EventPrefix: e.prefix, Holder: "another rebuild"}, deps)
	if err != nil {
		t.Fatal(err)
	}
	release, err := other.Consumer().HoldLeases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	refused := func(when string) {
		t.Helper()
		_, err := authzsync.Rebuild(ctx, authzsync.Config{EventPrefix: e.prefix}, deps)
		var running *authzsync.RunningError
		if !errors.As(err, &running) || running.Holder != "another rebuild" {
			t.Fatalf("%s: %v, want a refusal naming the holder", when, err)
		}
	}
	refused("while another instance holds the leases")
	if err := other.Consumer().Reset(ctx); err != nil {
		t.Fatalf("the holder's own reset: %v", err)
	}
	refused("after the holder's reset")
	// The holder's consumer runs and stops: the leases stay held.
	runCtx, stopRun := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- other.Run(runCtx) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		known := 0
		for _, l := range other.Lag() {
			if l.Pending >= 0 {
				known++
			}
		}
		if known == len(other.Lag()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the holder's consumer did not reach its streams: %+v", other.Lag())
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopRun()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	refused("after the holder's run ended")
	release()

	// While the rebuild replays, its lease names it.
	var holder string
	report, err := authzsync.Rebuild(ctx, authzsync.Config{EventPrefix: e.prefix}, deps,
		authzsync.WithRebuildProgress(time.Millisecond, func(authzsync.RebuildProgress) {
			if holder == "" {
				_ = e.db.QueryRowContext(ctx, `SELECT holder FROM event_consumer_streams WHERE consumer = ? AND holder <> '' LIMIT 1`,
					authzsync.DefaultConsumerName).Scan(&holder)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if !strings.HasPrefix(holder, "rebuild-openfga on "+host+" (pid ") {
		t.Errorf("the rebuild's lease holder is %q, want the command and the host", holder)
	}
	if got := allTuples(t, e); !slices.Equal(got, before) {
		t.Fatalf("the rebuild changed the tuples: %d before, %d after (%+v)", len(before), len(got), report)
	}
}
