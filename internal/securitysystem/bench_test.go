package securitysystem_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/policy"
	"github.com/realguardio/realguardio/internal/policy/policytest"
	"github.com/realguardio/realguardio/internal/securitysystem/sstest"
)

// BenchmarkDisarm measures one PUT /securitysystems/{id} {"action":"DISARM"}
// that really disarms (decision, state change, outbox event and audit row
// in one transaction) through the real HTTP handler over loopback, per
// strategy: none (no authorization, the baseline), replicate (local
// replica on SQLite), fetch (facts servers on loopback) and provide (facts
// in the token's claims and on the record). Authentication
// is the test stand-in in every case, so the differences are the cost of
// authorization. The system is re-armed with the timer stopped.
//
//	go test -run '^$' -bench BenchmarkDisarm -benchtime 2000x ./internal/securitysystem/
func BenchmarkDisarm(b *testing.B) {
	for _, strategy := range []string{"none", "replicate", "fetch", "provide"} {
		b.Run(strategy, func(b *testing.B) {
			w := policytest.FixedWorld()
			h := newHarness(b, strategy, w)
			ss1 := h.ids[policytest.FixedID("ss1")]
			url := h.srv.URL + "/securitysystems/" + ss1
			token := "Bearer " + sstest.Token(policytest.FixedID("alice"), "CUSTOMER_EMPLOYEE")
			if strategy == "provide" {
				// The stand-in decodes the claims' JSON per request, as
				// the real validator decodes the token's payload.
				token = "Bearer " + sstest.ProvideToken(w, policytest.FixedID("alice"))
			}
			body := []byte(`{"action":"DISARM"}`)
			client := h.srv.Client()
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if _, err := h.db.ExecContext(ctx, `UPDATE security_systems SET state = 'ARMED' WHERE id = ?`, ss1); err != nil {
					b.Fatal(err)
				}
				req, _ := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
				req.Header.Set("Authorization", token)
				req.Header.Set("Content-Type", "application/json")
				b.StartTimer()
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			b.StopTimer()
			if strategy == "fetch" {
				b.ReportMetric(float64(h.facts.Total())/float64(b.N), "remote-calls/op")
			}
		})
	}
}

// BenchmarkList measures GET /securitysystems over 100 systems per
// strategy, as a monitoring provider's employee (erin, the case that needs
// the most facts: for fetch the three owners' subject calls, then the
// provider's dealers and their locations) and as a customer's employee
// holding DISARMER in the customer (alice: for fetch the three subject
// calls only); cpu-ns/op is the process's CPU time per list (client,
// service, owners), which varies far less with other work on the machine
// than the wall time.
//
//	go test -run '^$' -bench BenchmarkList -benchtime 500x ./internal/securitysystem/
func BenchmarkList(b *testing.B) {
	for _, strategy := range []string{"none", "replicate", "fetch", "provide"} {
		w := policytest.FixedWorld()
		h := newHarness(b, strategy, w)
		for i := 0; len(h.ids)+i < 100; i++ {
			h.do(w.Admins[0], "POST", "/securitysystems", map[string]any{"locationId": w.Locations[i%len(w.Locations)].ID, "name": "extra"}, http.StatusCreated, nil)
		}
		for _, who := range []string{"erin", "alice"} {
			b.Run(strategy+"/"+who, func(b *testing.B) {
				h.facts.ResetCounts()
				user := policytest.FixedID(who)
				client := h.srv.Client()
				b.ReportAllocs()
				start := cpuTime()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/securitysystems", nil)
					tok := sstest.Token(user, w.AppRoles(user)...)
					if strategy == "provide" {
						tok = sstest.ProvideToken(w, user)
					}
					req.Header.Set("Authorization", "Bearer "+tok)
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Fatalf("status %d", resp.StatusCode)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
				if strategy == "fetch" {
					b.ReportMetric(float64(h.facts.Count(policy.OrgCustomer, "")+h.facts.Count(policy.OrgDealer, "")+h.facts.Count(policy.OrgMonitoringProvider, ""))/float64(b.N), "remote-calls/op")
				}
			})
		}
	}
}

// cpuTime is the CPU time of the process so far (every goroutine).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
