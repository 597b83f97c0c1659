-- Ingest errors at reused coordinates (issue 21): when a topic is recreated
-- its offsets start again at 0, so a different message can arrive at
-- coordinates that already hold an ingest error. It is kept beside the
-- first under `fingerprint`, a short hash of its Kafka timestamp, key and
-- first bytes; the first message at coordinates keeps '' (so existing rows
-- need no backfill). A redelivery of either is still one row.
ALTER TABLE ingest_errors ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';
ALTER TABLE ingest_errors DROP CONSTRAINT ingest_errors_topic_kafka_partition_kafka_offset_key;
ALTER TABLE ingest_errors ADD CONSTRAINT ingest_errors_coordinates_key
    UNIQUE (topic, kafka_partition, kafka_offset, fingerprint);
