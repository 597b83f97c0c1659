-- Two indexes of `events` served only rare reads, yet every ingested event
-- paid for them (measured: 5,000 inserted rows took 77 ms of Postgres time
-- with them, 37 ms without).
-- - events_by_trace: the trace page and the unmatched-span sweep find a
--   trace's sagas through `saga_keys` (every event's trace id is a search
--   key of its saga), then its events through events_by_saga.
-- - events_by_occurred: only `sagascope reproject` walks all events in
--   event-time order; it builds its own index for the run, inside its
--   transaction.
DROP INDEX IF EXISTS events_by_trace;
DROP INDEX IF EXISTS events_by_occurred;
