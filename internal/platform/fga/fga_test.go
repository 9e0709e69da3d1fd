package fga_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	openfgav1 "github.com/openfga/api/proto/openfga/v1"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/fga"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/openfga"
)

func startEmbedded(t *testing.T, dir, addr string) *fga.Embedded {
	t.Helper()
	e, err := fga.StartEmbedded(context.Background(), fga.EmbeddedOptions{Addr: addr, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func newClient(t *testing.T, url string) *fga.Client {
	t.Helper()
	// A generous timeout: under -race on a loaded machine a real call to
	// the embedded server can take over a second, and no test here asserts
	// the timeout with this client (TestSlowServerTimesOut has its own).
	c, err := fga.New(fga.Config{URL: url, Timeout: 15 * time.Second, BreakerFailures: 2, BreakerOpen: time.Minute}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// facts is a tiny world: alice holds DISARMER in customer acme, whose
// location loc1 has system ss1.
func facts(t *testing.T) []*openfgav1.TupleKey {
	t.Helper()
	roles, err := openfga.OrgRoleTuples(policy.OrgCustomer, "acme", "alice", []string{policy.RoleDisarmer})
	if err != nil {
		t.Fatal(err)
	}
	duty, err := openfga.OnDutyTuple("alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	out := append(roles, duty)
	out = append(out, openfga.LocationTuples("loc1", "acme", "")...)
	return append(out, openfga.SecuritySystemTuples("ss1", "loc1")...)
}

var tuesday10Berlin = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC) // 10:00 in Berlin

func check(t *testing.T, c *fga.Client, user string, op policy.Op, ss string) bool {
	t.Helper()
	ok, err := c.Check(context.Background(), openfga.CheckRequest(user, nil, op, ss, tuesday10Berlin))
	if err != nil {
		t.Fatalf("check %s %s %s: %v", user, op, ss, err)
	}
	return ok
}

func TestEmbeddedPersistentStoreAndIdempotentBootstrap(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e := startEmbedded(t, dir, "127.0.0.1:0")
	c := newClient(t, e.URL())
	if err := c.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	store, model := c.StoreID(), c.ModelID()

	// A second client (another process) finds the same store and model.
	c2 := newClient(t, e.URL())
	if err := c2.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if c2.StoreID() != store || c2.ModelID() != model {
		t.Fatalf("second bootstrap: store %s model %s, want %s %s", c2.StoreID(), c2.ModelID(), store, model)
	}

	// Writes and deletes are idempotent.
	for range 2 {
		if err := c.Write(ctx, facts(t), nil); err != nil {
			t.Fatal(err)
		}
	}
	missing := openfga.WithoutCondition(openfga.TeamMemberTuple("t1", "nobody"))
	if err := c.Write(ctx, nil, []*openfgav1.TupleKeyWithoutCondition{missing, missing}[:1]); err != nil {
		t.Fatal(err)
	}
	if !check(t, c, "alice", policy.OpDisarm, "ss1") || check(t, c, "alice", policy.OpArm, "ss1") {
		t.Fatal("alice: want disarm allowed, arm denied")
	}
	got, err := c.BatchCheck(ctx, []*openfgav1.CheckRequest{
		openfga.CheckRequest("alice", nil, policy.OpView, "ss1", tuesday10Berlin),
		openfga.CheckRequest("bob", nil, policy.OpView, "ss1", tuesday10Berlin),
		openfga.CheckRequest("admin", []string{policy.AppRoleAdmin}, policy.OpView, "ss1", tuesday10Berlin),
		openfga.CheckRequest("admin", []string{policy.AppRoleAdmin}, policy.OpDisarm, "ss1", tuesday10Berlin),
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, false, true, false}; !equal(got, want) {
		t.Fatalf("batch check %v, want %v", got, want)
	}

	// A tuple with another condition on the same key is a conflict, which
	// callers resolve by delete then write.
	sched := &policy.Schedule{TimeZone: "Europe/Berlin", Shifts: []policy.Shift{{Weekdays: []string{"MON"}, Start: "09:00", End: "17:00"}}}
	cond, err := openfga.OnDutyTuple("alice", sched)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Write(ctx, []*openfgav1.TupleKey{cond}, nil)
	if err == nil || !fga.IsConflict(err) || apperr.Is(err, apperr.Unavailable) {
		t.Fatalf("conflicting condition: got %v, want a conflict", err)
	}

	// Restart on the same directory and port: the tuples are still there.
	addr := e.Addr()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e2 := startEmbedded(t, dir, addr)
	c3 := newClient(t, e2.URL())
	if err := c3.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if c3.StoreID() != store || c3.ModelID() != model {
		t.Fatalf("after restart: store %s model %s, want %s %s", c3.StoreID(), c3.ModelID(), store, model)
	}
	if !check(t, c3, "alice", policy.OpDisarm, "ss1") {
		t.Fatal("after restart alice may no longer disarm ss1")
	}
	tuples, err := c3.Read(ctx, &openfgav1.ReadRequestTupleKey{Object: "location:loc1", Relation: "customer"})
	if err != nil || len(tuples) != 1 || tuples[0].GetKey().GetUser() != "customer:acme" {
		t.Fatalf("read location customer: %v %v", tuples, err)
	}
	objs, err := c3.ListObjects(ctx, &openfgav1.ListObjectsRequest{Type: openfga.TypeSecuritySystem, Relation: "can_view", User: "user:alice"})
	if err != nil || len(objs) != 1 || objs[0] != "security_system:ss1" {
		t.Fatalf("list objects: %v %v", objs, err)
	}
}

func equal(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestStoppedServerIsUnavailableAndOpensTheBreaker(t *testing.T) {
	ctx := context.Background()
	e := startEmbedded(t, "", "127.0.0.1:0")
	c := newClient(t, e.URL())
	if err := c.Write(ctx, facts(t), nil); err != nil {
		t.Fatal(err)
	}
	_ = e.Close()
	for i := range 4 {
		_, err := c.Check(ctx, openfga.CheckRequest("alice", nil, policy.OpDisarm, "ss1", tuesday10Berlin))
		if !apperr.Is(err, apperr.Unavailable) {
			t.Fatalf("call %d with the server stopped: %v, want Unavailable", i, err)
		}
	}
	// The breaker is open now (2 failures): calls fail without waiting.
	start := time.Now()
	err := c.Write(ctx, facts(t), nil)
	if !apperr.Is(err, apperr.Unavailable) {
		t.Fatalf("write with the breaker open: %v", err)
	}
	t.Logf("failed in %v with the breaker open", time.Since(start))
}

func TestSlowServerTimesOut(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	c, err := fga.New(fga.Config{URL: slow.URL, Timeout: 200 * time.Millisecond}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Bootstrap(context.Background())
	if !apperr.Is(err, apperr.Unavailable) {
		t.Fatalf("bootstrap against a hanging server: %v, want Unavailable", err)
	}
}

func TestBadURL(t *testing.T) {
	if _, err := fga.New(fga.Config{URL: "127.0.0.1:3005"}, nil, nil); !apperr.Is(err, apperr.Invalid) {
		t.Fatalf("got %v", err)
	}
}

// TestWriteDeletesSeveralTuplesOnSQLite deletes, in one Write, several
// stored tuples (one conditioned) next to keys that are not stored, on the
// SQLite store `up` uses: every stored one is gone afterwards. The planner
// statistics of the partial indexes once made this DELETE remove fewer rows
// than the Write had found, and OpenFGA answered 500 to every such Write.
func TestWriteDeletesSeveralTuplesOnSQLite(t *testing.T) {
	ctx := context.Background()
	emb, err := fga.StartEmbedded(ctx, fga.EmbeddedOptions{Addr: "127.0.0.1:0", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	c, err := fga.New(fga.Config{URL: emb.URL(), Timeout: 10 * time.Second, MaxTuplesPerWrite: fga.EmbeddedMaxTuplesPerWrite}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	onDuty, err := openfga.OnDutyTuple("u1", &policy.Schedule{TimeZone: "UTC", Shifts: []policy.Shift{{Weekdays: []string{"MON"}, Start: "09:00", End: "17:00"}}})
	if err != nil {
		t.Fatal(err)
	}
	role := func(rel string) *openfgav1.TupleKey {
		return &openfgav1.TupleKey{Object: "customer:c1", Relation: rel, User: "user:u2"}
	}
	key := func(tk *openfgav1.TupleKey) *openfgav1.TupleKeyWithoutCondition {
		return &openfgav1.TupleKeyWithoutCondition{Object: tk.GetObject(), Relation: tk.GetRelation(), User: tk.GetUser()}
	}
	stored := []*openfgav1.TupleKey{onDuty, role("viewer"), role("armer")}
	if err := c.Write(ctx, stored, nil); err != nil {
		t.Fatal(err)
	}
	deletes := []*openfgav1.TupleKeyWithoutCondition{key(onDuty), key(role("administrator")), key(role("armer")), key(role("disarmer")), key(role("viewer"))}
	if err := c.Write(ctx, nil, deletes); err != nil {
		t.Fatalf("delete %d stored tuples and %d missing ones in one Write: %v", len(stored), len(deletes)-len(stored), err)
	}
	for _, tk := range stored {
		got, err := c.Read(ctx, &openfgav1.ReadRequestTupleKey{Object: tk.GetObject(), Relation: tk.GetRelation(), User: tk.GetUser()})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Errorf("%s#%s@%s is still stored after its delete", tk.GetObject(), tk.GetRelation(), tk.GetUser())
		}
	}
}
