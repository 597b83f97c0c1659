-- Sweeps and retention by index (issue 15): each statement of the stall
-- sweep and of retention reads one index range holding only the rows it
-- may act on, so its cost follows what it changes, not the history stored.
-- The partial indexes' WHERE is written exactly as the statements write
-- it (crates/store/src/stall_sweep.rs, retention.rs): SQLite uses a
-- partial index only when the query's WHERE contains the index's terms
-- verbatim. The SQL is the same on Postgres and SQLite.
--
-- Each index on last_event_at_us is rewritten when a saga row is (every
-- batch that touches it): the price of sweeps that do not walk the table.

-- The stall sweep, per saga type with its own timeout: that type's
-- running or compensating sagas quiet since before its cutoff.
CREATE INDEX sagas_active_by_type_last_event ON sagas (saga_type, last_event_at_us)
    WHERE kind = 'saga' AND status IN ('running', 'compensating');
-- The stall sweep's default timeout (the other types): running or
-- compensating sagas quiet since before it, one range per status; the
-- sagas of types with a longer timeout of their own in those ranges are
-- read and skipped. (Status leads so that SQLite, without statistics,
-- prefers it to sagas_by_status_start's walk over every active saga.)
CREATE INDEX sagas_active_by_status_last_event ON sagas (status, last_event_at_us)
    WHERE kind = 'saga' AND status IN ('running', 'compensating');
-- Retention: sagas that are over, and streams, oldest last event first.
CREATE INDEX sagas_over_by_last_event ON sagas (last_event_at_us, saga_id)
    WHERE kind = 'stream' OR status NOT IN ('running', 'compensating');
-- Retention: closed dead letters, oldest first (open ones never go, and
-- would be walked over by every batch through dead_letters_by_time).
CREATE INDEX dead_letters_closed_by_time ON dead_letters (dead_lettered_at_us, id)
    WHERE NOT (state IN ('new', 'retry_requested'));
-- Retention: ingest errors, oldest first.
CREATE INDEX ingest_errors_by_ingested ON ingest_errors (ingested_at_us, id);
