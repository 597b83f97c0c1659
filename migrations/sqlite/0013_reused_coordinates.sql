-- Ingest errors at reused coordinates (issue 21): when a topic is recreated
-- its offsets start again at 0, so a different message can arrive at
-- coordinates that already hold an ingest error. It is kept beside the
-- first under `fingerprint`, a short hash of its Kafka timestamp, key and
-- first bytes; the first message at coordinates keeps '' (so existing rows
-- need no backfill). A redelivery of either is still one row.
--
-- SQLite cannot drop a table's UNIQUE constraint, so the table is rebuilt
-- (ids kept; the rename carries the AUTOINCREMENT sequence along). A
-- rebuild drops the table's indexes and triggers: every one that earlier
-- migrations define on ingest_errors must be created again below.
CREATE TABLE ingest_errors_rebuilt (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    topic           TEXT NOT NULL,
    kafka_partition BIGINT NOT NULL,
    kafka_offset    BIGINT NOT NULL,
    fingerprint     TEXT NOT NULL DEFAULT '',
    reason          TEXT NOT NULL,
    first_bytes     TEXT NOT NULL,
    message_key     TEXT,
    published_at_us BIGINT,
    ingested_at_us  BIGINT NOT NULL,
    UNIQUE (topic, kafka_partition, kafka_offset, fingerprint)
);
INSERT INTO ingest_errors_rebuilt
    (id, topic, kafka_partition, kafka_offset, reason, first_bytes, message_key, published_at_us, ingested_at_us)
SELECT id, topic, kafka_partition, kafka_offset, reason, first_bytes, message_key, published_at_us, ingested_at_us
FROM ingest_errors;
DROP TABLE ingest_errors;
ALTER TABLE ingest_errors_rebuilt RENAME TO ingest_errors;
-- 0012 (retention walks ingest errors by age).
CREATE INDEX IF NOT EXISTS ingest_errors_by_ingested ON ingest_errors (ingested_at_us, id);
