-- Re-drive (issue 5): retry requests keyed by their idempotency key, the
-- attempts (one per produced copy), and bulk jobs with their frozen set.
-- Times are epoch microseconds; flags are BIGINT 0/1. The SQL is the same
-- as the Postgres migration (no identity or byte columns here).

-- One row per idempotency key: a second request with the same key finds
-- it and answers with the first one's outcome instead of producing again.
CREATE TABLE retry_requests (
    idempotency_key TEXT PRIMARY KEY,
    -- single | bulk
    kind            TEXT NOT NULL,
    -- the dead letter id (single) or the filter query string (bulk):
    -- the same key for another target is refused
    target          TEXT NOT NULL,
    attempt_id      TEXT,
    job_id          TEXT,
    actor           TEXT NOT NULL,
    created_at_us   BIGINT NOT NULL
);

-- One re-drive of one dead letter, single or part of a job.
CREATE TABLE retry_attempts (
    id              TEXT PRIMARY KEY,
    dead_letter_id  TEXT NOT NULL,
    job_id          TEXT,
    idempotency_key TEXT,
    actor           TEXT NOT NULL,
    reason          TEXT NOT NULL,
    requested_at_us BIGINT NOT NULL,
    target_topic    TEXT NOT NULL,
    -- the x-retry-count produced
    retry_count     BIGINT NOT NULL,
    -- pending | produced | failed
    outcome         TEXT NOT NULL,
    kafka_partition BIGINT,
    kafka_offset    BIGINT,
    produced_at_us  BIGINT,
    error           TEXT
);
CREATE INDEX retry_attempts_by_dead_letter ON retry_attempts (dead_letter_id, requested_at_us);
-- interrupted attempts (a process that stopped before the ack)
CREATE INDEX retry_attempts_by_outcome ON retry_attempts (outcome, requested_at_us);

-- A bulk retry: the filter, its frozen set (retry_job_items) and progress.
CREATE TABLE retry_jobs (
    id              TEXT PRIMARY KEY,
    idempotency_key TEXT,
    created_at_us   BIGINT NOT NULL,
    actor           TEXT NOT NULL,
    reason          TEXT NOT NULL,
    -- DlqFilter::to_query_string
    filter          TEXT NOT NULL,
    -- pending | canary | running | completed | cancelled | failed
    state           TEXT NOT NULL,
    canary          BIGINT NOT NULL,
    canary_wait_s   BIGINT NOT NULL,
    canary_id       TEXT,
    throttle_per_s  BIGINT,
    total           BIGINT NOT NULL,
    produced        BIGINT NOT NULL DEFAULT 0,
    failed          BIGINT NOT NULL DEFAULT 0,
    skipped         BIGINT NOT NULL DEFAULT 0,
    started_at_us   BIGINT,
    finished_at_us  BIGINT,
    message         TEXT,
    -- 0 until its audit entry is written: no runner takes it before
    released        BIGINT NOT NULL DEFAULT 0,
    -- the process running it and when it last said so (a lease: a job
    -- whose heartbeat is stale is resumed by another process)
    runner          TEXT,
    heartbeat_at_us BIGINT
);
CREATE INDEX retry_jobs_by_created ON retry_jobs (created_at_us DESC, id DESC);
CREATE INDEX retry_jobs_by_state ON retry_jobs (state);

-- The dead letters a job froze when it was created, in the order it
-- re-drives them (oldest first).
CREATE TABLE retry_job_items (
    job_id          TEXT NOT NULL,
    position        BIGINT NOT NULL,
    dead_letter_id  TEXT NOT NULL,
    -- pending | in_flight | produced | failed | skipped
    status          TEXT NOT NULL,
    attempt_id      TEXT,
    PRIMARY KEY (job_id, position)
);
CREATE INDEX retry_job_items_by_status ON retry_job_items (job_id, status, position);
