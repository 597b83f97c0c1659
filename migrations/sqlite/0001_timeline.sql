-- Timeline read model (SQLite). Times are epoch microseconds (BIGINT) and
-- JSON is TEXT so that both backends share one set of queries; only the
-- identity column differs from the Postgres migration.

CREATE TABLE events (
    event_id        TEXT PRIMARY KEY,
    saga_id         TEXT NOT NULL,
    saga_type       TEXT,
    step            TEXT,
    phase           TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    trace_id        TEXT,
    span_id         TEXT,
    request_id      TEXT,
    occurred_at_us  BIGINT NOT NULL,
    published_at_us BIGINT,
    ingested_at_us  BIGINT NOT NULL,
    source_type     TEXT,
    source_id       TEXT,
    topic           TEXT NOT NULL,
    kafka_partition BIGINT NOT NULL,
    kafka_offset    BIGINT NOT NULL,
    headers         TEXT NOT NULL,
    payload         TEXT NOT NULL,
    error           TEXT
);
CREATE INDEX events_by_saga ON events (saga_id, occurred_at_us);
CREATE INDEX events_by_trace ON events (trace_id, occurred_at_us);
CREATE INDEX events_by_occurred ON events (occurred_at_us);

CREATE TABLE sagas (
    saga_id          TEXT PRIMARY KEY,
    saga_type        TEXT NOT NULL,
    status           TEXT NOT NULL,
    started_at_us    BIGINT NOT NULL,
    ended_at_us      BIGINT,
    last_event_at_us BIGINT NOT NULL,
    event_count      BIGINT NOT NULL,
    -- the projection's merge state (sagascope_domain::SagaProjection) as JSON
    projection       TEXT NOT NULL
);
CREATE INDEX sagas_by_start ON sagas (started_at_us DESC, saga_id DESC);
CREATE INDEX sagas_by_type_start ON sagas (saga_type, started_at_us DESC, saga_id DESC);
CREATE INDEX sagas_by_status_start ON sagas (status, started_at_us DESC, saga_id DESC);

-- trace ids and business keys of each saga, for search
CREATE TABLE saga_keys (
    search_key TEXT NOT NULL,
    saga_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    PRIMARY KEY (search_key, saga_id)
);
CREATE INDEX saga_keys_by_saga ON saga_keys (saga_id);

CREATE TABLE ingest_errors (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    topic           TEXT NOT NULL,
    kafka_partition BIGINT NOT NULL,
    kafka_offset    BIGINT NOT NULL,
    reason          TEXT NOT NULL,
    first_bytes     TEXT NOT NULL,
    message_key     TEXT,
    published_at_us BIGINT,
    ingested_at_us  BIGINT NOT NULL,
    UNIQUE (topic, kafka_partition, kafka_offset)
);

-- next offset to consume per group and partition, written in the same
-- transaction as the events of the batch
CREATE TABLE consumer_offsets (
    group_id        TEXT NOT NULL,
    topic           TEXT NOT NULL,
    kafka_partition BIGINT NOT NULL,
    next_offset     BIGINT NOT NULL,
    updated_at_us   BIGINT NOT NULL,
    PRIMARY KEY (group_id, topic, kafka_partition)
);
