-- One row per consumer and stream, owned by events.Consumer: how far the
-- consumer got (the stream sequence, the newest event time and when it was
-- applied, how many events it applied: the progress behind the lag gauge
-- and the rebuilds) and which instance of the service consumes the stream
-- (a lease, so that instances sharing a durable consumer never apply
-- events of one stream at the same time). It replaces the per-consumer
-- progress tables (replica_streams, authzsync_streams), which are no
-- longer written.
CREATE TABLE event_consumer_streams (
    consumer TEXT NOT NULL,
    stream TEXT NOT NULL,
    holder TEXT NOT NULL,
    lease_until BIGINT NOT NULL,
    last_stream_sequence BIGINT NOT NULL,
    last_event_at BIGINT NOT NULL,
    last_applied_at BIGINT NOT NULL,
    applied_events BIGINT NOT NULL,
    PRIMARY KEY (consumer, stream)
);
