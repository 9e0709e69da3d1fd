package telemetry_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/realguardio/realguardio/internal/platform/telemetry"
)

type nopRT struct{}

func (nopRT) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200}, nil
}

// BenchmarkTransportOff measures what the traced transport adds to a call
// made outside any span (tracing off): one context lookup.
func BenchmarkTransportOff(b *testing.B) {
	for _, tc := range []struct {
		name string
		rt   http.RoundTripper
	}{{"bare", nopRT{}}, {"wrapped", telemetry.Transport(nopRT{})}} {
		b.Run(tc.name, func(b *testing.B) {
			req, _ := http.NewRequestWithContext(context.Background(), "GET", "http://x/", nil)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tc.rt.RoundTrip(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
