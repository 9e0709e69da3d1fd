package authzsync_test

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/realguardio/realguardio/internal/authzsync"
	"github.com/realguardio/realguardio/internal/authzsync/authzsynctest"
	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/catalog"
	"github.com/realguardio/realguardio/internal/platform/events/eventstest"
	"github.com/realguardio/realguardio/internal/platform/fga"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/policy"
)

// BenchmarkRebuildOpenFGA measures rebuild-openfga's code: the streams
// hold REALGUARDIO_BENCH_EVENTS events (100 000 when unset; per customer:
// customer.created, a location, an employee's roles at it and two
// security systems there), the embedded OpenFGA keeps its tuples in
// SQLite as under `up`, and a first rebuild fills the store as a live sync
// would have. One iteration is a rebuild of that full store: replay every
// event, read and compare every tuple, write the differences (none).
// Run it with
//
//	REALGUARDIO_BENCH_EVENTS=200000 go test -run '^$' -bench BenchmarkRebuildOpenFGA -benchtime 1x -timeout 30m ./internal/authzsync/
//
// and read events/s, s/rebuild and cpu-s/rebuild (10⁶ events take about
// 10⁶ / events/s).
func BenchmarkRebuildOpenFGA(b *testing.B) {
	n := 100_000
	if v := os.Getenv("REALGUARDIO_BENCH_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 5 {
			b.Fatalf("REALGUARDIO_BENCH_EVENTS=%q: want a number of at least 5", v)
		}
	}
	ctx := context.Background()
	_, js := eventstest.Connect(b, eventstest.NATS(b))
	prefix := eventstest.Streams(b, js)
	srv, err := fga.StartEmbedded(ctx, fga.EmbeddedOptions{Addr: "127.0.0.1:0", Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	client, err := fga.New(fga.Config{URL: srv.URL(), Timeout: time.Minute, MaxTuplesPerWrite: fga.EmbeddedMaxTuplesPerWrite}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	bld := authzsynctest.NewBuilder()
	var evs []events.Event
	for len(evs)+5 <= n {
		c, l, u := uuid.NewString(), uuid.NewString(), uuid.NewString()
		evs = append(evs,
			bld.Typed(catalog.CustomerCreated, c, catalog.CustomerCreatedPayload{CustomerID: c, Name: "c"}),
			bld.Typed(catalog.LocationCreated, c, catalog.LocationCreatedPayload{CustomerID: c, LocationID: l, Name: "l"}),
			bld.Typed(catalog.LocationEmployeeRolesSet, c, catalog.LocationEmployeeRolesSetPayload{CustomerID: c, LocationID: l,
				EmployeeID: authzsynctest.EmployeeID(policy.OrgCustomer, c, u), UserID: u, Roles: []string{policy.RoleDisarmer}}))
		for range 2 {
			ss := uuid.NewString()
			evs = append(evs, bld.Typed(catalog.SecuritySystemCreated, ss, catalog.SecuritySystemCreatedPayload{
				SecuritySystemID: ss, Name: "s", LocationID: l, CustomerID: c, ActorUserID: u}))
		}
	}
	for i, ev := range evs {
		body, _ := json.Marshal(ev)
		msg := nats.NewMsg(events.Subject(prefix, ev.Type))
		msg.Data = body
		msg.Header.Set(nats.MsgIdHdr, ev.ID)
		if _, err := js.PublishMsgAsync(msg); err != nil {
			b.Fatal(err)
		}
		if i%2000 == 1999 || i == len(evs)-1 {
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(5 * time.Minute):
				b.Fatal("publishing did not complete")
			}
		}
	}
	cfg := authzsync.Config{EventPrefix: prefix}
	deps := authzsync.Deps{DB: sqldbtest.OpenSQLite(b), JS: js, FGA: client}
	first, err := authzsync.Rebuild(ctx, cfg, deps)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%d events; first rebuild (empty store): %d tuples written in %s (replay %s, write %s)", len(evs), first.Written,
		first.Took.Round(time.Millisecond), first.ReplayTook.Round(time.Millisecond), first.WriteTook.Round(time.Millisecond))
	b.ResetTimer()
	start, cpuStart := time.Now(), cpuTime()
	for range b.N {
		r, err := authzsync.Rebuild(ctx, cfg, deps)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("rebuild of the full store: %d unchanged, %d deleted, %d written in %s (replay %s, read and compare %s, write %s)", r.Unchanged, r.Deleted, r.Written,
			r.Took.Round(time.Millisecond), r.ReplayTook.Round(time.Millisecond), r.CompareTook.Round(time.Millisecond), r.WriteTook.Round(time.Millisecond))
	}
	took, cpu := time.Since(start), cpuTime()-cpuStart
	b.StopTimer()
	// On a shared machine the wall time is mostly the wait for a core;
	// the process's CPU time (NATS client, sync, OpenFGA and its SQLite
	// together) is what an idle machine would spend, spread over its
	// cores.
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/rebuild")
	b.ReportMetric(float64(len(evs)*b.N)/took.Seconds(), "events/s")
	b.ReportMetric(took.Seconds()/float64(b.N), "s/rebuild")
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
