package fga_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	openfgav1 "github.com/openfga/api/proto/openfga/v1"

	"github.com/realguardio/realguardio/internal/platform/fga"
	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/openfga"
	"github.com/realguardio/realguardio/internal/policy/openfga/openfgatest"
	"github.com/realguardio/realguardio/internal/policy/policytest"
)

// benchStore starts an embedded server (SQLite in a temporary directory
// when sqlite, else the memory datastore), writes w's tuples through the
// client, as the authorization sync does, and returns the client.
func benchStore(b *testing.B, w *policytest.World, sqlite bool) *fga.Client {
	b.Helper()
	dir := ""
	if sqlite {
		dir = b.TempDir()
	}
	e, err := fga.StartEmbedded(context.Background(), fga.EmbeddedOptions{Addr: "127.0.0.1:0", Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = e.Close() })
	// The benchmark measures the server, not the timeout: a slow machine
	// must give a slow figure, not a failure.
	c, err := fga.New(fga.Config{URL: e.URL(), Timeout: time.Minute}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	tuples, err := openfgatest.Tuples(w)
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Write(context.Background(), tuples, nil); err != nil {
		b.Fatal(err)
	}
	return c
}

// listChecks are the checks of the delegate strategy's list: view, arm and
// disarm of each of the first n systems of w, for userID.
func listChecks(w *policytest.World, userID string, n int, now time.Time) []*openfgav1.CheckRequest {
	var out []*openfgav1.CheckRequest
	for _, s := range w.SecuritySystems[:min(n, len(w.SecuritySystems))] {
		for _, op := range []policy.Op{policy.OpView, policy.OpArm, policy.OpDisarm} {
			out = append(out, openfga.CheckRequest(userID, w.AppRoles(userID), op, s.ID, now))
		}
	}
	return out
}

// scheduledEmployee returns a customer employee with a schedule and a
// security system role, the most expensive subject to check: every arm and
// disarm evaluates the schedule condition.
func scheduledEmployee(b *testing.B, w *policytest.World) string {
	for _, e := range w.Employees {
		if e.Schedule != nil && e.OrgKind == policy.OrgCustomer && len(e.Roles) > 0 {
			return e.UserID
		}
	}
	b.Fatal("the world has no scheduled customer employee")
	return ""
}

// BenchmarkBatchCheck measures the delegate strategy's list: one
// BatchCheck of 3 checks per system through the HTTP API of the embedded
// server, for a REALGUARDIO_ADMIN (who views every system) and for a
// scheduled customer employee, on a medium world (24 systems, 72 checks)
// and on the first 100 systems of a large world (300 checks), over both
// datastores. Run it with
//
//	go test -run '^$' -bench . -benchtime 20x ./internal/platform/fga/
func BenchmarkBatchCheck(b *testing.B) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for _, ds := range []string{"sqlite", "memory"} {
		for _, tc := range []struct {
			size    policytest.Size
			systems int
		}{{policytest.Medium, 24}, {policytest.Large, 100}} {
			w := policytest.Generate(1, tc.size)
			c := benchStore(b, w, ds == "sqlite")
			for _, who := range []string{"admin", "employee"} {
				u := w.Admins[0]
				if who == "employee" {
					u = scheduledEmployee(b, w)
				}
				reqs := listChecks(w, u, tc.systems, now)
				b.Run(fmt.Sprintf("%s/%s/checks=%d", ds, who, len(reqs)), func(b *testing.B) {
					defer reportCPU(b)()
					for b.Loop() {
						if _, err := c.BatchCheck(context.Background(), reqs); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
			if tc.size != policytest.Medium {
				continue
			}
			u := scheduledEmployee(b, w)
			req := openfga.CheckRequest(u, w.AppRoles(u), policy.OpArm, w.SecuritySystems[0].ID, now)
			b.Run(ds+"/Check", func(b *testing.B) {
				defer reportCPU(b)()
				for b.Loop() {
					if _, err := c.Check(context.Background(), req); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// reportCPU reports the CPU time of the process (user and system, every
// goroutine: client, gateway, server, datastore) per operation as
// cpu-ns/op. On a shared machine the wall time of a CPU-bound benchmark
// varies with the load of others; its CPU time much less. Call the
// returned function when the loop ends.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
