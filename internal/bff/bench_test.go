package bff

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// BenchmarkDashboardLoad compares loading the dashboard's data through the
// BFF (cookie decrypted, token attached, request forwarded) with calling the
// Security System Service directly, in the same run, and reports the ratio.
// The backend is a fake answering from memory, so the figure is the BFF's
// own overhead.
func BenchmarkDashboardLoad(b *testing.B) {
	world := newFakeWorld("user-1")
	be := world.start(b)
	tb := startBFF(b, "", "", be, []string{newKey(b)}, nil)
	access := fakeJWT(map[string]any{"sub": "user-1", "exp": time.Now().Add(time.Hour).Unix()})
	viaBFF := tb.client(b, tb.mintSession(b, testSession(access)))
	direct := &http.Client{}

	get := func(c *http.Client, url string, bearer bool) {
		req, _ := http.NewRequest("GET", url, nil)
		if bearer {
			req.Header.Set("Authorization", "Bearer "+access)
		}
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	measure := func(f func()) time.Duration {
		for range 50 { // warm connections
			f()
		}
		start := time.Now()
		for range b.N {
			f()
		}
		return time.Since(start)
	}
	b.ResetTimer()
	d := measure(func() { get(direct, be.ss+"/securitysystems", true) })
	p := measure(func() { get(viaBFF, tb.srv.URL+"/api/securitysystems", false) })
	page := measure(func() { get(viaBFF, tb.srv.URL+"/", false) })
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(d.Nanoseconds())/n, "direct-ns/op")
	b.ReportMetric(float64(p.Nanoseconds())/n, "bff-api-ns/op")
	b.ReportMetric(float64(page.Nanoseconds())/n, "bff-page-ns/op")
	b.ReportMetric(float64(p)/float64(d), "api/direct")
	b.ReportMetric(float64(page)/float64(d), "page/direct")
}
