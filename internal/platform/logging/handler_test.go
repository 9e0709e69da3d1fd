package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/realguardio/realguardio/internal/platform/logging"
)

// TestEachAttributeOnce checks that a key given by a parent logger, a
// derived logger and the record appears once, with the most specific value.
func TestEachAttributeOnce(t *testing.T) {
	var buf bytes.Buffer
	logger, err := logging.New(&buf, logging.JSON, slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	logger.With("service", "iam", "a", 1).With("service", "customer").Info("hello", "a", 2, "b", 3)
	line := buf.String()
	if n := strings.Count(line, `"service"`); n != 1 {
		t.Fatalf("service appears %d times: %s", n, line)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m["service"] != "customer" || m["a"] != 2.0 || m["b"] != 3.0 {
		t.Fatalf("got %v", m)
	}
	if strings.Count(line, `"a"`) != 1 {
		t.Fatalf("a twice: %s", line)
	}
}

// TestGroupsKeepTheirAttributes checks that attributes after a group stay
// in it and those before it stay outside.
func TestGroupsKeepTheirAttributes(t *testing.T) {
	var buf bytes.Buffer
	logger, _ := logging.New(&buf, logging.JSON, slog.LevelInfo)
	logger.With("service", "x").WithGroup("g").With("k", 1).Info("m", "v", 2)
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	g, _ := m["g"].(map[string]any)
	if m["service"] != "x" || g["k"] != 1.0 || g["v"] != 2.0 {
		t.Fatalf("got %v", m)
	}
}

// TestTraceIDs checks that a line logged inside a span names its trace and
// span, and one outside any span names neither.
func TestTraceIDs(t *testing.T) {
	var buf bytes.Buffer
	logger, _ := logging.New(&buf, logging.JSON, slog.LevelInfo)
	tp := sdktrace.NewTracerProvider()
	defer func() { _ = tp.Shutdown(context.Background()) }()
	ctx, span := tp.Tracer("t").Start(context.Background(), "s")
	logger.InfoContext(ctx, "inside", "trace_id", "forged")
	span.End()
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m["trace_id"] != span.SpanContext().TraceID().String() || m["span_id"] != span.SpanContext().SpanID().String() {
		t.Fatalf("got %v, want trace %s", m, span.SpanContext().TraceID())
	}
	if strings.Count(buf.String(), "trace_id") != 1 {
		t.Fatalf("trace_id twice: %s", buf.String())
	}
	buf.Reset()
	logger.InfoContext(context.Background(), "outside")
	if strings.Contains(buf.String(), "trace_id") {
		t.Fatalf("trace id outside a span: %s", buf.String())
	}
}
