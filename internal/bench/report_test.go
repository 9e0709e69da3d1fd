package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func sampleReport() *Report {
	tp := func(rps float64, p50ms int) Throughput {
		return Throughput{Summary: Summary{N: 10, P50: time.Duration(p50ms) * time.Millisecond, P90: time.Duration(2*p50ms) * time.Millisecond,
			P99: time.Duration(4*p50ms) * time.Millisecond}, Requests: 10, Concurrency: 2, PerSecond: rps}
	}
	return &Report{
		Machine:  Machine{OS: "linux", Arch: "amd64", CPUs: 2, GOMAXPROCS: 2, GoVersion: "go1.26"},
		Settings: Settings{Size: "small", Seed: 48, Requests: 10, Concurrency: 2, Revocations: 3, PollInterval: 2 * time.Millisecond, MaxAccessTokenBytes: 8192},
		World:    WorldInfo{MonitoringProviders: 1, ListUser: "a customer employee", ListVisible: 3},
		Strategies: []StrategyResult{
			{Strategy: StrategyNone, Disarm: tp(500, 2), List: tp(1000, 1)},
			{Strategy: "fetch", Disarm: tp(100, 10), List: tp(250, 4), Revocation: &Revocation{Summary: Summary{N: 3, P50: time.Millisecond}, Trials: 3, Bound: bound("fetch", 0)}},
			{Strategy: "delegate", Error: "start the system: boom"},
		},
		TokenSizes: []TokenSize{{Locations: 1, Bytes: 1140}, {Locations: 1000, Refused: true, Message: "server_error: too large"}},
		Note:       "noisy",
	}
}

func TestWriteTextShowsRatiosAgainstTheBaseline(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"1 monitoring provider,", // singular
		"0.20×",                  // fetch disarm throughput: 100 / 500
		"5.00×",                  // fetch disarm p50: 10 ms / 2 ms
		"0.25×",                  // fetch list throughput
		"delegate  failed",       // a failed strategy keeps its line
		"delegate failed: start the system: boom",
		"none: no authorization, nothing to revoke",
		"fetch: bound: none: the owners are asked at every decision",
		"1000            refused: server_error: too large",
		"GOMAXPROCS 2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
}

func TestWriteTextWithoutBaselinePrintsNoRatio(t *testing.T) {
	r := sampleReport()
	r.Strategies = r.Strategies[1:2]
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "×") || !strings.Contains(b.String(), "–") {
		t.Errorf("ratios without a baseline:\n%s", b.String())
	}
}

func TestWriteJSONRoundTrips(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Strategies) != 3 || back.Strategies[1].Disarm.P50 != 10*time.Millisecond || back.Strategies[1].Revocation.Trials != 3 || !back.TokenSizes[1].Refused {
		t.Errorf("round trip: %+v", back)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	c := DefaultConfig()
	c.Strategies = []string{"none", "magic"}
	c.Requests, c.Concurrency = 0, 0
	err := c.Validate()
	for _, want := range []string{"magic", "requests", "concurrency"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to name %q", err, want)
		}
	}
}

func TestWriteTextNamesUnmeasuredRevocations(t *testing.T) {
	r := sampleReport()
	r.Strategies = append(r.Strategies, StrategyResult{Strategy: "replicate"})
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "not measured") {
		t.Errorf("a strategy without a revocation figure:\n%s", b.String())
	}
	r.Settings.Revocations = 0
	b.Reset()
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "Revocation") {
		t.Errorf("a run without revocation trials shows the section:\n%s", b.String())
	}
}
