-- Only unsent rows are scanned by the relay.
CREATE INDEX event_outbox_unsent ON event_outbox (pos) WHERE sent_at IS NULL;
CREATE INDEX event_outbox_sent_at ON event_outbox (sent_at) WHERE sent_at IS NOT NULL;

-- The last sequence number assigned per aggregate (never deleted, so
-- sequences keep counting after sent outbox rows are purged).
CREATE TABLE event_sequences (
    aggregate_type TEXT NOT NULL,
    aggregate_id TEXT NOT NULL,
    last_sequence BIGINT NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);

-- A lease so that only one relay instance per database publishes at a time.
CREATE TABLE event_relay_lease (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- The events each consumer applied, so redeliveries are skipped.
CREATE TABLE event_applied (
    consumer TEXT NOT NULL,
    event_id TEXT NOT NULL,
    aggregate_type TEXT NOT NULL,
    aggregate_id TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    applied_at BIGINT NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX event_applied_at ON event_applied (consumer, applied_at);

-- The highest sequence each consumer applied per aggregate, to detect gaps
-- and out-of-order deliveries.
CREATE TABLE event_consumer_progress (
    consumer TEXT NOT NULL,
    aggregate_type TEXT NOT NULL,
    aggregate_id TEXT NOT NULL,
    last_sequence BIGINT NOT NULL,
    last_event_id TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (consumer, aggregate_type, aggregate_id)
);

-- Events whose handler kept failing, kept for operators (ListParked, Replay).
CREATE TABLE event_parked (
    consumer TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event TEXT NOT NULL,
    error TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    parked_at BIGINT NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
