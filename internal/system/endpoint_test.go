package system

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/platform/config"
)

// parseConfig parses args and env the way the command line does.
func parseConfig(t *testing.T, args []string, env map[string]string) Config {
	t.Helper()
	var cfg Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	l := config.NewLoader(fs, func(k string) string { return env[k] })
	cfg.Bind(l)
	if err := l.Parse(args); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestEndpointDerivedFromTheOneSetting: a service given only --X-addr is
// reached (and announced) at that port; one given only --X-url listens on
// its port; both given are kept; neither keeps the defaults.
func TestEndpointDerivedFromTheOneSetting(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		service string
		addr, u string
	}{
		{"defaults", nil, nil, ServiceCustomer, "127.0.0.1:3002", "http://localhost:3002"},
		{"only addr, loopback", []string{"--customer-addr", "127.0.0.1:4002"}, nil, ServiceCustomer, "127.0.0.1:4002", "http://localhost:4002"},
		{"only addr, every interface", []string{"--dealer-addr", ":4003"}, nil, ServiceDealer, ":4003", "http://localhost:4003"},
		{"only addr, a named host", []string{"--dealer-addr", "10.1.2.3:4003"}, nil, ServiceDealer, "10.1.2.3:4003", "http://10.1.2.3:4003"},
		{"only addr, port 0", []string{"--iam-addr", "127.0.0.1:0"}, nil, ServiceIAM, "127.0.0.1:0", ""},
		{"only url, localhost", nil, map[string]string{"REALGUARDIO_MONITORING_URL": "http://localhost:5004"}, ServiceMonitoring, "127.0.0.1:5004", "http://localhost:5004"},
		{"only url, a service name", []string{"--customer-url", "http://customer:3102"}, nil, ServiceCustomer, ":3102", "http://customer:3102"},
		{"only url, no port (behind a proxy)", []string{"--iam-url", "https://login.example.com"}, nil, ServiceIAM, "127.0.0.1:9000", "https://login.example.com"},
		{"both", []string{"--bff-addr", ":8080", "--bff-url", "https://app.example.com"}, nil, ServiceBFF, ":8080", "https://app.example.com"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := parseConfig(t, tc.args, tc.env)
			ep := cfg.Endpoints[tc.service]
			if ep.Addr != tc.addr || ep.URL != tc.u {
				t.Errorf("%s: addr %q url %q, want %q %q", tc.service, ep.Addr, ep.URL, tc.addr, tc.u)
			}
			for _, other := range ServiceNames() {
				if other == tc.service {
					continue
				}
				if o := cfg.Endpoints[other]; o.Addr != defaultAddr(other) || o.URL != defaultURL(other) {
					t.Errorf("%s changed too: %q %q", other, o.Addr, o.URL)
				}
			}
		})
	}
}

// TestServeBannerPrintsTheDerivedURL: `serve customer --customer-addr`
// alone prints the URL the service answers at.
func TestServeBannerPrintsTheDerivedURL(t *testing.T) {
	port := freeTCPPort(t)
	cfg := parseConfig(t, []string{"--customer-addr", fmt.Sprintf("127.0.0.1:%d", port)}, nil)
	s := &System{cfg: cfg, URLs: map[string]string{ServiceCustomer: strings.TrimRight(cfg.Endpoints[ServiceCustomer].URL, "/")}}
	s.cfg.Only = ServiceCustomer
	var out bytes.Buffer
	s.PrintWelcome(&out)
	if want := fmt.Sprintf("http://localhost:%d", port); !strings.Contains(out.String(), want) {
		t.Errorf("banner lacks %s:\n%s", want, out.String())
	}
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestReadyzWhileWaitingForNATS: a service whose NATS does not answer at
// start answers on its port at once: /healthz 200, /readyz 503 "not ready"
// naming nats, every other request a 503 problem; the start ends when its
// context does.
func TestReadyzWhileWaitingForNATS(t *testing.T) {
	port, deadNATS := freeTCPPort(t), freeTCPPort(t)
	cfg := parseConfig(t, []string{"--customer-addr", fmt.Sprintf("127.0.0.1:%d", port)}, map[string]string{
		"REALGUARDIO_NATS_URL":       fmt.Sprintf("nats://127.0.0.1:%d", deadNATS),
		"REALGUARDIO_CLIENT_SECRETS": "customer=0123456789abcdef0123",
	})
	cfg.Only = ServiceCustomer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		sys, err := Start(ctx, cfg, slog.New(slog.DiscardHandler))
		if err == nil {
			_ = sys.Stop()
		}
		done <- err
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	hc := &http.Client{Timeout: 2 * time.Second}
	get := func(path string) (int, map[string]any) {
		resp, err := hc.Get(base + path)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	deadline := time.Now().Add(30 * time.Second)
	var code int
	var body map[string]any
	for time.Now().Before(deadline) {
		if code, body = get("/readyz"); code != 0 {
			checks, _ := body["checks"].(map[string]any)
			if _, ok := checks["nats"]; ok {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	checks, _ := body["checks"].(map[string]any)
	if code != http.StatusServiceUnavailable || body["status"] != "not ready" || checks["nats"] == nil || checks["nats"] == "ok" {
		t.Fatalf("/readyz while NATS does not answer: %d %v, want 503 not ready naming nats", code, body)
	}
	if strings.Contains(fmt.Sprint(body), fmt.Sprint(deadNATS)) {
		t.Errorf("/readyz shows the NATS address: %v", body)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while starting: %d, want 200", code)
	}
	if code, body := get("/customers"); code != http.StatusServiceUnavailable || body["status"] != float64(http.StatusServiceUnavailable) {
		t.Errorf("an API request while starting: %d %v, want a 503 problem", code, body)
	}
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Error("the start succeeded without NATS")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the start did not end with its context")
	}
	if _, err := hc.Get(base + "/healthz"); err == nil {
		t.Error("the port still answers after the start failed")
	}
}
