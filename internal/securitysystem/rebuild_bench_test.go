package securitysystem_test

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/eventstest"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/securitysystem"
	"github.com/realguardio/realguardio/internal/securitysystem/sstest"
)

// BenchmarkRebuildReplica measures rebuild-replica's replay: the customer
// stream holds REALGUARDIO_BENCH_EVENTS events (100 000 when unset: a
// customer created, a location of it and an employee's roles at it, per
// customer), and one iteration empties the replica and replays them all
// through the replicate strategy's consumer, on each store. Run it with
//
//	REALGUARDIO_BENCH_EVENTS=100000 go test -run '^$' -bench BenchmarkRebuildReplica -benchtime 1x -timeout 30m ./internal/securitysystem/
//
// and read events/s and s/rebuild (10⁶ events take about 10⁶ / events/s).
func BenchmarkRebuildReplica(b *testing.B) {
	n := 100_000
	if v := os.Getenv("REALGUARDIO_BENCH_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 3 {
			b.Fatalf("REALGUARDIO_BENCH_EVENTS=%q: want a number of at least 3", v)
		}
	}
	for _, store := range []string{"sqlite", "postgres"} {
		b.Run(store, func(b *testing.B) {
			var db *sqldb.DB
			if store == "sqlite" {
				db = sqldbtest.OpenSQLite(b, securitysystem.Migrations()...)
			} else {
				db = sqldbtest.OpenPostgres(b, securitysystem.Migrations()...)
			}
			ctx := context.Background()
			_, js := eventstest.Connect(b, eventstest.NATS(b))
			prefix := eventstest.Streams(b, js)
			evs := sstest.NewEvents(time.Now().Add(-time.Hour))
			for len(evs.List())+3 <= n {
				c, l, u := uuid.NewString(), uuid.NewString(), uuid.NewString()
				evs.Add(policy.OrgCustomer, c, "customer.created", map[string]any{"customerId": c, "name": "c"})
				evs.Add(policy.OrgCustomer, c, "customer.location_created", map[string]any{"customerId": c, "locationId": l, "name": "l", "dealerId": nil})
				evs.Add(policy.OrgCustomer, c, "customer.location_employee_roles_set", map[string]any{"customerId": c, "locationId": l,
					"employeeId": sstest.EmployeeID(u), "userId": u, "roles": []string{"DISARMER"}})
			}
			for i, ev := range evs.List() {
				body, _ := json.Marshal(ev)
				msg := nats.NewMsg(events.Subject(prefix, ev.Type))
				msg.Data = body
				msg.Header.Set(nats.MsgIdHdr, ev.ID)
				if _, err := js.PublishMsgAsync(msg); err != nil {
					b.Fatal(err)
				}
				if i%2000 == 1999 || i == len(evs.List())-1 {
					// Within the client's limit of outstanding publishes.
					select {
					case <-js.PublishAsyncComplete():
					case <-time.After(5 * time.Minute):
						b.Fatal("publishing did not complete")
					}
				}
			}
			total := len(evs.List())
			cfg := securitysystem.Config{Strategy: "replicate", EventPrefix: prefix}
			deps := securitysystem.Deps{DB: db, JS: js, Authenticate: sstest.Authenticate}
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if _, err := securitysystem.RebuildReplica(ctx, cfg, deps); err != nil {
					b.Fatal(err)
				}
			}
			took := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(total*b.N)/took.Seconds(), "events/s")
			b.ReportMetric(took.Seconds()/float64(b.N), "s/rebuild")
		})
	}
}
