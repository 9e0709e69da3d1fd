-- The W3C trace context of the request that wrote the event (JSON object of
-- traceparent/tracestate; NULL when tracing is off), so the relay and the
-- consumers continue that request's trace.
ALTER TABLE event_outbox ADD COLUMN trace_context TEXT;
