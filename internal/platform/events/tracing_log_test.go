package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/realguardio/realguardio/internal/platform/events"
	"github.com/realguardio/realguardio/internal/platform/events/eventstest"
	"github.com/realguardio/realguardio/internal/platform/logging"
	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/sqldb/sqldbtest"
	"github.com/realguardio/realguardio/internal/platform/telemetry"
)

// syncBuffer is a bytes.Buffer safe for the consumer's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines returns the JSON log lines written so far.
func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// TestFailingEventLogsCarryItsTrace checks that the consumer's lines about
// an event that keeps failing (each retry and the stream BLOCKED alarm) are
// logged with the event's context: they carry the trace_id of the request
// that wrote the event and the span_id of the apply span of their delivery,
// so an operator goes from the alarm to the trace.
func TestFailingEventLogsCarryItsTrace(t *testing.T) {
	ctx := context.Background()
	_, js := eventstest.Connect(t, eventstest.NATS(t))
	prefix := eventstest.Streams(t, js)
	prod := sqldbtest.OpenSQLite(t, allSets...)
	cons := sqldbtest.OpenSQLite(t, allSets...)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	var buf syncBuffer
	log := slog.New(logging.Wrap(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))

	o := events.NewOutbox("customer")
	run(t, "relay", func(ctx context.Context) error {
		return events.NewRelay(prod, js, o, testLogger(t), fastRelay(prefix)...).Run(telemetry.WithProvider(ctx, tp))
	})
	c, err := events.NewConsumer(events.ConsumerConfig{
		Name: "replica", Streams: customerStream(prefix), DB: cons, JS: js, Logger: log,
		Handler:    func(context.Context, *sqldb.Tx, events.Event) error { return errors.New("poisoned") },
		MaxDeliver: 2, Backoff: []time.Duration{20 * time.Millisecond}, OnFailure: events.Block,
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, "consumer", func(ctx context.Context) error { return c.Run(telemetry.WithProvider(ctx, tp)) })

	wctx, span := tp.Tracer("test").Start(ctx, "request")
	ev, err := write(wctx, prod, o, "agg-a", 0)
	span.End()
	if err != nil {
		t.Fatal(err)
	}
	tid := span.SpanContext().TraceID().String()

	// linesOf returns the lines naming ev whose message contains what.
	linesOf := func(what string) []map[string]any {
		var out []map[string]any
		for _, l := range buf.lines(t) {
			if l["event_id"] == ev.ID && strings.Contains(fmt.Sprint(l["msg"]), what) {
				out = append(out, l)
			}
		}
		return out
	}
	waitFor(t, 20*time.Second, "the stream blocked and retried", func() (bool, string) {
		return len(linesOf("stream BLOCKED")) > 0 && len(linesOf("will retry")) >= 2, fmt.Sprint(c.Err())
	})

	apply := map[string]bool{}
	for _, s := range exp.GetSpans() {
		if s.SpanKind == trace.SpanKindConsumer && s.Name == "apply "+ev.Type && s.SpanContext.TraceID().String() == tid {
			apply[s.SpanContext.SpanID().String()] = true
		}
	}
	if len(apply) < 2 {
		t.Fatalf("%d apply spans in the event's trace, want one per delivery (at least 2)", len(apply))
	}
	for _, l := range append(linesOf("stream BLOCKED"), linesOf("will retry")...) {
		if l["trace_id"] != tid {
			t.Errorf("%q: trace_id = %v, want the event's %s", l["msg"], l["trace_id"], tid)
		}
		if id, _ := l["span_id"].(string); !apply[id] {
			t.Errorf("%q: span_id = %v, not an apply span of the event", l["msg"], l["span_id"])
		}
	}
}

// TestRefusedMessageLogsCarryItsTrace checks that a message refused before
// any apply (its envelope names another producer than the stream's owner)
// is reported BLOCKED with the trace context it arrived with: the line
// carries the sender's trace_id and span_id.
func TestRefusedMessageLogsCarryItsTrace(t *testing.T) {
	ctx := context.Background()
	_, js := eventstest.Connect(t, eventstest.NATS(t))
	prefix := eventstest.Streams(t, js)
	cons := sqldbtest.OpenSQLite(t, allSets...)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewInMemoryExporter()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	var buf syncBuffer
	log := slog.New(logging.Wrap(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	c, err := events.NewConsumer(events.ConsumerConfig{
		Name: "replica", Streams: customerStream(prefix), DB: cons, JS: js, Logger: log,
		Handler:    func(context.Context, *sqldb.Tx, events.Event) error { return nil },
		MaxDeliver: 2, Backoff: []time.Duration{20 * time.Millisecond}, OnFailure: events.Block,
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, "consumer", func(ctx context.Context) error { return c.Run(telemetry.WithProvider(ctx, tp)) })

	sctx, span := tp.Tracer("test").Start(ctx, "forged publish")
	span.End()
	ev := events.Event{ID: "forged-1", Producer: "dealer", Type: "dealer.created", AggregateType: "dealer", AggregateID: "d1", Sequence: 1, OccurredAt: time.Now()}
	data, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	msg := &nats.Msg{Subject: events.Subject(prefix, "customer.created"), Data: data, Header: nats.Header{}}
	for k, v := range telemetry.Inject(sctx) {
		msg.Header.Set(k, v)
	}
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	var blocked map[string]any
	waitFor(t, 20*time.Second, "the stream blocked on the forged message", func() (bool, string) {
		for _, l := range buf.lines(t) {
			if l["event_id"] == ev.ID && strings.Contains(fmt.Sprint(l["msg"]), "stream BLOCKED") {
				blocked = l
				return true, ""
			}
		}
		return false, fmt.Sprint(c.Err())
	})
	if blocked["trace_id"] != span.SpanContext().TraceID().String() || blocked["span_id"] != span.SpanContext().SpanID().String() {
		t.Errorf("BLOCKED line carries trace_id %v span_id %v, want the message's %s %s", blocked["trace_id"], blocked["span_id"],
			span.SpanContext().TraceID(), span.SpanContext().SpanID())
	}
}
