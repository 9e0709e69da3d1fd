package sqldb

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/realguardio/realguardio/internal/platform/telemetry"
)

// traceTx starts the span of one InTx inside a traced request or event (none
// otherwise); end records how many attempts it took and whether it failed.
// Statements are not traced one by one: the transaction is the unit a
// reader of a trace cares about (its time, its retries).
func (db *DB) traceTx(ctx context.Context) (context.Context, func(attempts int, err error)) {
	if !telemetry.Active(ctx) {
		return ctx, func(int, error) {}
	}
	system := "sqlite"
	if db.dialect == Postgres {
		system = "postgresql"
	}
	ctx, span := telemetry.StartSpan(ctx, "db transaction", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system.name", system)))
	return ctx, func(attempts int, err error) {
		span.SetAttributes(attribute.Int("realguardio.db.attempts", attempts))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "transaction failed")
		}
		span.End()
	}
}
