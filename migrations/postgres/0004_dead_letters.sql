-- Dead letters (issue 5): messages of the DLQ topics, kept byte-exact for
-- re-drive, with their origin, failure, saga link and handling state.
-- Only the byte columns differ from the SQLite migration (BYTEA vs BLOB).

CREATE TABLE dead_letters (
    -- {dlq topic}/{partition}/{offset}: a redelivery is the same row
    id                    TEXT PRIMARY KEY,
    dlq_topic             TEXT NOT NULL,
    dlq_partition         BIGINT NOT NULL,
    dlq_offset            BIGINT NOT NULL,
    -- the DLQ message's Kafka timestamp (NULL when it had none)
    dlq_timestamp_us      BIGINT,
    -- dlq_timestamp_us, else ingested_at_us: list order, filters and age
    dead_lettered_at_us   BIGINT NOT NULL,
    ingested_at_us        BIGINT NOT NULL,
    -- spring, kafka_connect, generic, unknown
    format                TEXT NOT NULL,
    message_key           BYTEA,
    message_value         BYTEA,
    -- JSON [[name, base64 value or null], …] in the order received
    headers               TEXT NOT NULL,
    original_topic        TEXT,
    original_partition    BIGINT,
    original_offset       BIGINT,
    original_timestamp_us BIGINT,
    original_group        TEXT,
    exception_class       TEXT,
    exception_message     TEXT,
    stacktrace            TEXT,
    -- {original topic}|{exception class}|{normalised message}
    failure_group         TEXT NOT NULL,
    -- as the message named them
    saga_id               TEXT,
    trace_id              TEXT,
    event_id              TEXT,
    event_type            TEXT,
    -- the saga instance (sagas.saga_id) they resolve to, when known
    linked_saga_id        TEXT,
    linked_saga_type      TEXT,
    retry_of              TEXT,
    retry_count           BIGINT NOT NULL DEFAULT 0,
    -- the re-driven dead letter this one came back from (now failed_again)
    failed_again_of       TEXT,
    -- new | retry_requested | retried | resolved | failed_again | discarded
    state                 TEXT NOT NULL DEFAULT 'new',
    state_changed_at_us   BIGINT NOT NULL,
    state_reason          TEXT
);
-- the list (newest first) and its filters, groups, per-topic depth
CREATE INDEX dead_letters_by_time ON dead_letters (dead_lettered_at_us DESC, id DESC);
CREATE INDEX dead_letters_by_topic ON dead_letters (dlq_topic, state, dead_lettered_at_us);
CREATE INDEX dead_letters_by_group ON dead_letters (failure_group, state, dead_lettered_at_us);
CREATE INDEX dead_letters_by_state ON dead_letters (state, dead_lettered_at_us);
CREATE INDEX dead_letters_by_saga_type ON dead_letters (linked_saga_type, dead_lettered_at_us);
-- a saga's dead letters, and linking the ones that arrived before their saga
CREATE INDEX dead_letters_by_linked_saga ON dead_letters (linked_saga_id);
CREATE INDEX dead_letters_by_saga ON dead_letters (saga_id);
CREATE INDEX dead_letters_by_trace ON dead_letters (trace_id);
CREATE INDEX dead_letters_by_retry_of ON dead_letters (retry_of);
