package telemetry_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/realguardio/realguardio/internal/platform/telemetry"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// TestFromEnv checks the standard variables that turn OTLP on and choose
// its protocol, and that unsupported values are refused by name.
func TestFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		otlp    bool
		proto   string
		wantErr bool
	}{
		{name: "nothing set", env: nil},
		{name: "endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, otlp: true},
		{name: "traces endpoint over http", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, otlp: true, proto: "http/protobuf"},
		{name: "traces protocol wins", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "x", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}, otlp: true, proto: "grpc"},
		{name: "none", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "x", "OTEL_TRACES_EXPORTER": "none"}},
		{name: "console", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "x", "OTEL_TRACES_EXPORTER": "console"}},
		{name: "bad exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, wantErr: true},
		{name: "bad protocol", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "x", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := telemetry.FromEnv(env(tc.env))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if tc.wantErr {
				return
			}
			if c.OTLP != tc.otlp || c.Protocol != tc.proto {
				t.Fatalf("got %+v", c)
			}
		})
	}
}

// TestOffIsNoop checks that with nothing configured no provider exists and
// a traced transport sends no trace context.
func TestOffIsNoop(t *testing.T) {
	tr, err := telemetry.Setup(context.Background(), telemetry.Config{})
	if err != nil || tr != nil {
		t.Fatalf("Setup off = %v, %v", tr, err)
	}
	if tr.Provider("iam") != nil {
		t.Fatal("a provider with tracing off")
	}
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	defer srv.Close()
	c := &http.Client{Transport: telemetry.Transport(nil)}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got.Get("traceparent") != "" {
		t.Fatalf("traceparent sent without a span: %q", got.Get("traceparent"))
	}
}

// TestTraceAcrossHTTP checks that a call made inside a service's server
// span carries the trace to the next service, whose span joins it under its
// own service name, and that the client span's URL has no query.
func TestTraceAcrossHTTP(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr, err := telemetry.Setup(context.Background(), telemetry.Config{Exporter: exp})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tr.Shutdown(context.Background()) }()
	back := httptest.NewServer(telemetry.Handler(tr.Provider("customer"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	defer back.Close()
	client := &http.Client{Transport: telemetry.Transport(nil)}
	front := httptest.NewServer(telemetry.Handler(tr.Provider("securitysystem"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), "GET", back.URL+"/x?code=secret-code", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		resp.Body.Close()
	})))
	defer front.Close()
	resp, err := http.Get(front.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	spans := exp.GetSpans()
	if len(spans) != 3 {
		t.Fatalf("%d spans, want 3 (front server, client, back server): %v", len(spans), spans)
	}
	services := map[string]int{}
	for _, s := range spans {
		if s.SpanContext.TraceID() != spans[0].SpanContext.TraceID() {
			t.Fatalf("spans of different traces")
		}
		v, _ := s.Resource.Set().Value("service.name")
		services[v.AsString()]++
		for _, kv := range s.Attributes {
			if v := kv.Value.String(); kv.Key == "url.full" && (v == "" || strings.Contains(v, "secret-code")) {
				t.Errorf("url.full = %q", v)
			}
		}
	}
	if services["realguardio-securitysystem"] != 2 || services["realguardio-customer"] != 1 {
		t.Fatalf("spans by service: %v", services)
	}
}

// TestTraceFile checks that `up --trace`'s file holds one JSON span per
// line, each naming its service.
func TestTraceFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "traces.jsonl")
	tr, err := telemetry.Setup(context.Background(), telemetry.Config{File: file})
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range []string{"iam", "bff"} {
		_, s := tr.Provider(svc).Tracer("t").Start(context.Background(), "op "+svc)
		s.End()
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var span struct {
			Name        string
			SpanContext struct{ TraceID string }
			Resource    []struct {
				Key   string
				Value struct{ Value any }
			}
		}
		if err := json.Unmarshal(sc.Bytes(), &span); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		for _, kv := range span.Resource {
			if kv.Key == "service.name" {
				names[span.Name], _ = kv.Value.Value.(string)
			}
		}
		if span.SpanContext.TraceID == "" {
			t.Fatalf("no trace id: %s", sc.Text())
		}
	}
	if names["op iam"] != "realguardio-iam" || names["op bff"] != "realguardio-bff" {
		t.Fatalf("services by span: %v", names)
	}
}

var _ sdktrace.SpanExporter = (*tracetest.InMemoryExporter)(nil)
