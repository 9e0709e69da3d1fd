-- The sync's per-stream progress (the newest applied event, for the lag)
-- is the events consumer's own, in event_consumer_streams: one record of
-- progress per consumer instead of two that could disagree.
DROP TABLE authzsync_streams;
