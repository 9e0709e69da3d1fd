package events

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	otelattribute "go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/realguardio/realguardio/internal/platform/sqldb"
	"github.com/realguardio/realguardio/internal/platform/telemetry"
)

// This file carries the trace of the request that wrote an event through
// the outbox (column trace_context), the relay (NATS message headers
// traceparent/tracestate) and the consumer (a span of the apply, child of
// the relay's publish and linked to it), so one revocation is one trace:
// the request, its outbox wait, the publish, the delivery and the apply.
// With tracing off nothing is stored, no header is sent and no span made.

// traceContextOf returns the trace context of ctx to store with an outbox
// row, or NULL when ctx is not traced.
func traceContextOf(ctx context.Context) sql.NullString {
	if !telemetry.Active(ctx) {
		return sql.NullString{}
	}
	b, err := json.Marshal(telemetry.Inject(ctx))
	if err != nil {
		return sql.NullString{}
	}
	return sql.NullString{String: string(b), Valid: true}
}

// storedSpanContext decodes a stored trace context (invalid when absent).
func storedSpanContext(stored sql.NullString) trace.SpanContext {
	if !stored.Valid || stored.String == "" {
		return trace.SpanContext{}
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(stored.String), &m); err != nil {
		return trace.SpanContext{}
	}
	return telemetry.Extract(func(k string) string { return m[k] })
}

func eventAttributes(ev Event, subject string) []otelattribute.KeyValue {
	return []otelattribute.KeyValue{
		otelattribute.String("messaging.system", "nats"),
		otelattribute.String("messaging.destination.name", subject),
		otelattribute.String("messaging.message.id", ev.ID),
		otelattribute.String("realguardio.event.type", ev.Type),
		otelattribute.String("realguardio.event.aggregate_type", ev.AggregateType),
		otelattribute.Int64("realguardio.event.sequence", ev.Sequence),
	}
}

// publishTracedAsync publishes one event without waiting for the
// acknowledgement, for the relay's pipeline. When its row carries a trace
// context it records the outbox wait (from the commit to now) and the
// publish as spans of that trace, and sends the publish span's context in
// the message headers. done
// ends the publish span with the outcome once it is known.
func (r *Relay) publishTracedAsync(ctx context.Context, subject string, ev Event, stored sql.NullString, data []byte) (jetstream.PubAckFuture, func(error), error) {
	msg := &nats.Msg{Subject: subject, Data: data}
	opts := []jetstream.PublishOpt{jetstream.WithMsgID(ev.ID)}
	parent := storedSpanContext(stored)
	if !parent.IsValid() {
		fut, err := r.js.PublishMsgAsync(msg, opts...)
		return fut, func(error) {}, err
	}
	pctx := trace.ContextWithRemoteSpanContext(ctx, parent)
	attrs := eventAttributes(ev, subject)
	_, wait := telemetry.StartRoot(pctx, "outbox wait", trace.WithTimestamp(ev.OccurredAt), trace.WithAttributes(attrs...))
	wait.End()
	sctx, span := telemetry.StartRoot(pctx, "publish "+ev.Type, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
	msg.Header = nats.Header{}
	for k, v := range telemetry.Inject(sctx) {
		msg.Header.Set(k, v)
	}
	end := func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "publish failed")
		}
		span.End()
	}
	fut, err := r.js.PublishMsgAsync(msg, opts...)
	if err != nil {
		end(err)
		return nil, func(error) {}, err
	}
	return fut, end, nil
}

// messageContext returns ctx carrying the trace context msg arrived with
// (the producer's publish span), or ctx itself when it has none: the
// context of the log lines about a message refused before any apply span.
func messageContext(ctx context.Context, msg jetstream.Msg) context.Context {
	h := msg.Headers()
	if h == nil {
		return ctx
	}
	if parent := telemetry.Extract(h.Get); parent.IsValid() {
		return trace.ContextWithRemoteSpanContext(ctx, parent)
	}
	return ctx
}

// startApplySpan starts the consumer's span of one delivery when the
// message carries a trace context: a "deliver" span from the time the
// stream stored the message to now, and the "apply" span, a child of the
// producer's publish with a link to it. The returned end finishes the apply
// span with the outcome.
func (c *Consumer) startApplySpan(ctx context.Context, stream string, msg jetstream.Msg, md *jetstream.MsgMetadata, ev Event) (context.Context, func(error)) {
	h := msg.Headers()
	if h == nil {
		return ctx, func(error) {}
	}
	parent := telemetry.Extract(h.Get)
	if !parent.IsValid() {
		return ctx, func(error) {}
	}
	pctx := trace.ContextWithRemoteSpanContext(ctx, parent)
	attrs := append(eventAttributes(ev, msg.Subject()),
		otelattribute.String("messaging.consumer.group.name", c.cfg.Name),
		otelattribute.String("realguardio.event.stream", stream),
		otelattribute.Int64("messaging.nats.delivery_attempt", int64(md.NumDelivered)))
	if !md.Timestamp.IsZero() && md.Timestamp.Before(time.Now()) {
		_, d := telemetry.StartRoot(pctx, "deliver "+ev.Type, trace.WithTimestamp(md.Timestamp), trace.WithAttributes(attrs...))
		d.End()
	}
	sctx, span := telemetry.StartRoot(pctx, "apply "+ev.Type,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(trace.Link{SpanContext: parent}),
		trace.WithAttributes(attrs...))
	return sctx, func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "apply failed")
		}
		span.End()
	}
}

// traceBatchTx records, in the trace of every event of a committed batch
// that carries one, the transaction that applied it: a "db transaction"
// child of the event's apply span, from start to end, like the span
// sqldb.InTx records for a transaction run under a traced context. The
// batch's transaction began before the apply spans (it holds several
// events of several traces), so InTx itself records none; a reader of one
// event's trace still sees the transaction that made it effective, with
// the number of events it held.
func (c *Consumer) traceBatchTx(items []batchItem, start, end time.Time) {
	system := "sqlite"
	if c.cfg.DB.Dialect() == sqldb.Postgres {
		system = "postgresql"
	}
	for _, it := range items {
		if it.ctx == nil || !telemetry.Active(it.ctx) {
			continue
		}
		_, span := telemetry.StartSpan(it.ctx, "db transaction", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(start),
			trace.WithAttributes(otelattribute.String("db.system.name", system), otelattribute.Int("realguardio.batch.events", len(items))))
		span.End(trace.WithTimestamp(end))
	}
}
