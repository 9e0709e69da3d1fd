-- The replica's own progress table is gone: events.Consumer keeps every
-- consumer's progress per stream (event_consumer_streams: the newest event
-- applied, for the lag gauge, and the events applied since a reset, for a
-- rebuild's report), written in the batch's transaction, so the replica no
-- longer writes a row of its own for every event.
DROP TABLE IF EXISTS replica_streams;
