CREATE TABLE test_business (
    id TEXT PRIMARY KEY
);
CREATE TABLE test_log (
    ord BIGINT NOT NULL,
    consumer TEXT NOT NULL,
    event_id TEXT NOT NULL,
    aggregate_id TEXT NOT NULL,
    sequence BIGINT NOT NULL
);
