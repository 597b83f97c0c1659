-- Issue 15: a saga's timeline in one ordered index range, a validator for
-- its ETag, and DLQ depths from counters instead of a scan of dead_letters.
-- Same tables as the Postgres migration; SQLite has one writer at a time, so
-- its row triggers update dead_letter_counts directly and the deltas table
-- (read by the shared query) stays empty.

-- The timeline reads a saga's events ordered by (occurred_at_us, event_id):
-- with the tie-breaker in the key the index hands them over in that order.
-- (Same name as the index it replaces, so nothing else needs to know.)
DROP INDEX IF EXISTS events_by_saga;
CREATE INDEX events_by_saga ON events (saga_id, occurred_at_us, event_id);

-- Bumped by every rewrite of the read model that may give a saga row a
-- version it already had (`sagascope reproject` deletes and re-inserts every
-- saga from version 1): part of each timeline's ETag, so no ETag issued
-- before a reprojection matches after it.
CREATE TABLE read_model_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT INTO read_model_generation (id, generation) VALUES (1, 0);

-- Dead letters per (DLQ topic, state), kept by the triggers below in the
-- transaction of every insert, state change and delete, whatever code path
-- runs it (ingest, re-drive, discard, resolve sweep, bulk jobs, retention).
CREATE TABLE dead_letter_counts (
    dlq_topic TEXT NOT NULL,
    state     TEXT NOT NULL,
    n         INTEGER NOT NULL,
    PRIMARY KEY (dlq_topic, state)
);
CREATE TABLE dead_letter_count_deltas (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    dlq_topic TEXT NOT NULL,
    state     TEXT NOT NULL,
    delta     INTEGER NOT NULL
);

INSERT INTO dead_letter_counts (dlq_topic, state, n)
SELECT dlq_topic, state, COUNT(*) FROM dead_letters GROUP BY dlq_topic, state;

CREATE TRIGGER dead_letters_counted_on_insert AFTER INSERT ON dead_letters
BEGIN
    INSERT OR IGNORE INTO dead_letter_counts (dlq_topic, state, n) VALUES (NEW.dlq_topic, NEW.state, 0);
    UPDATE dead_letter_counts SET n = n + 1 WHERE dlq_topic = NEW.dlq_topic AND state = NEW.state;
END;

CREATE TRIGGER dead_letters_counted_on_delete AFTER DELETE ON dead_letters
BEGIN
    UPDATE dead_letter_counts SET n = n - 1 WHERE dlq_topic = OLD.dlq_topic AND state = OLD.state;
END;

CREATE TRIGGER dead_letters_counted_on_update AFTER UPDATE OF dlq_topic, state ON dead_letters
WHEN OLD.dlq_topic IS NOT NEW.dlq_topic OR OLD.state IS NOT NEW.state
BEGIN
    UPDATE dead_letter_counts SET n = n - 1 WHERE dlq_topic = OLD.dlq_topic AND state = OLD.state;
    INSERT OR IGNORE INTO dead_letter_counts (dlq_topic, state, n) VALUES (NEW.dlq_topic, NEW.state, 0);
    UPDATE dead_letter_counts SET n = n + 1 WHERE dlq_topic = NEW.dlq_topic AND state = NEW.state;
END;
