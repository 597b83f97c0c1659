-- Issue 15: a saga's timeline in one ordered index range, a validator for
-- its ETag, and DLQ depths from counters instead of a scan of dead_letters.

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
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO read_model_generation (id, generation) VALUES (1, 0);

-- Dead letters per (DLQ topic, state), kept by the triggers below in the
-- transaction of every insert, state change and delete, whatever code path
-- runs it (ingest, re-drive, discard, resolve sweep, bulk jobs, retention).
-- The total is SUM(n) over dead_letter_counts and dead_letter_count_deltas.
CREATE TABLE dead_letter_counts (
    dlq_topic TEXT NOT NULL,
    state     TEXT NOT NULL,
    n         BIGINT NOT NULL,
    PRIMARY KEY (dlq_topic, state)
);
-- Writers only append here, so they never wait for each other's counter
-- rows and cannot deadlock on them (an ingest batch that inserts `new` rows
-- and marks others `failed_again` while a bulk re-drive moves `new` and
-- `failed_again` rows would lock the same counters in opposite orders).
-- The writer that gets the advisory lock folds the deltas into
-- dead_letter_counts; only that lock's holder ever updates those rows.
CREATE TABLE dead_letter_count_deltas (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dlq_topic TEXT NOT NULL,
    state     TEXT NOT NULL,
    delta     BIGINT NOT NULL
);

INSERT INTO dead_letter_counts (dlq_topic, state, n)
SELECT dlq_topic, state, COUNT(*) FROM dead_letters GROUP BY dlq_topic, state;

CREATE FUNCTION fold_dead_letter_count_deltas() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- 7315015: an arbitrary key no other lock of sagascope uses. Held until
    -- the transaction ends; a writer that does not get it leaves its deltas
    -- to the next one.
    IF pg_try_advisory_xact_lock(7315015) THEN
        WITH moved AS (
            DELETE FROM dead_letter_count_deltas RETURNING dlq_topic, state, delta
        )
        INSERT INTO dead_letter_counts (dlq_topic, state, n)
        SELECT dlq_topic, state, SUM(delta) FROM moved
        GROUP BY dlq_topic, state ORDER BY dlq_topic, state
        ON CONFLICT (dlq_topic, state) DO UPDATE SET n = dead_letter_counts.n + EXCLUDED.n;
    END IF;
END;
$$;

-- Statement-level with transition tables: one aggregate per statement, not
-- one trigger call per row (a bulk re-drive changes hundreds at once).
CREATE FUNCTION count_inserted_dead_letters() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO dead_letter_count_deltas (dlq_topic, state, delta)
    SELECT dlq_topic, state, COUNT(*) FROM inserted GROUP BY dlq_topic, state;
    IF FOUND THEN
        PERFORM fold_dead_letter_count_deltas();
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION count_deleted_dead_letters() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO dead_letter_count_deltas (dlq_topic, state, delta)
    SELECT dlq_topic, state, -COUNT(*) FROM deleted GROUP BY dlq_topic, state;
    IF FOUND THEN
        PERFORM fold_dead_letter_count_deltas();
    END IF;
    RETURN NULL;
END;
$$;

-- Fires for every UPDATE (transition tables cannot be combined with a column
-- list); updates that change no (topic, state) net to zero and write nothing.
CREATE FUNCTION count_updated_dead_letters() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO dead_letter_count_deltas (dlq_topic, state, delta)
    SELECT dlq_topic, state, SUM(delta) FROM (
        SELECT dlq_topic, state, -1 AS delta FROM before_update
        UNION ALL
        SELECT dlq_topic, state, 1 AS delta FROM after_update
    ) changes
    GROUP BY dlq_topic, state HAVING SUM(delta) <> 0;
    IF FOUND THEN
        PERFORM fold_dead_letter_count_deltas();
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER dead_letters_counted_on_insert AFTER INSERT ON dead_letters
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION count_inserted_dead_letters();
CREATE TRIGGER dead_letters_counted_on_delete AFTER DELETE ON dead_letters
    REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION count_deleted_dead_letters();
CREATE TRIGGER dead_letters_counted_on_update AFTER UPDATE ON dead_letters
    REFERENCING OLD TABLE AS before_update NEW TABLE AS after_update
    FOR EACH STATEMENT EXECUTE FUNCTION count_updated_dead_letters();
