-- One row per customer whose changes have been serialized. Every change
-- inside a customer first upserts its row, which on PostgreSQL holds a row
-- lock until commit: changes of one customer then run one after another,
-- in the same order as their events, and check-then-write steps (is the
-- employee already a member?) cannot interleave. SQLite transactions are
-- already exclusive.
CREATE TABLE customer_locks (
    customer_id TEXT PRIMARY KEY,
    locked_at BIGINT NOT NULL
);
