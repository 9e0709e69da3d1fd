-- The outbox: one row per event, written in the producer's business
-- transaction. pos gives the global publish order.
CREATE TABLE event_outbox (
    pos INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    aggregate_type TEXT NOT NULL,
    aggregate_id TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    occurred_at BIGINT NOT NULL,
    producer TEXT NOT NULL,
    payload TEXT NOT NULL,
    sent_at BIGINT
);
