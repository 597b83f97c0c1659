-- Rollups (issue 4): the overview reads these, never the raw events. Each
-- saga counts once, in the bucket of its start, under its current status;
-- the ingest transaction subtracts a saga's old contribution and adds the
-- new one, so a rollup always equals the sum over the current sagas.
-- grain_s is 60 (minutes, for windows up to 6 h) or 3600 (hours, beyond).

CREATE TABLE saga_rollups (
    grain_s            BIGINT NOT NULL,
    bucket_start_us    BIGINT NOT NULL,
    saga_type          TEXT NOT NULL,
    status             TEXT NOT NULL,
    sagas              BIGINT NOT NULL,
    began_compensating BIGINT NOT NULL,
    PRIMARY KEY (grain_s, bucket_start_us, saga_type, status)
);

CREATE TABLE step_rollups (
    grain_s         BIGINT NOT NULL,
    bucket_start_us BIGINT NOT NULL,
    saga_type       TEXT NOT NULL,
    step            TEXT NOT NULL,
    executions      BIGINT NOT NULL,
    failures        BIGINT NOT NULL,
    PRIMARY KEY (grain_s, bucket_start_us, saga_type, step)
);

-- events and ingest errors per topic, by ingest time
CREATE TABLE topic_rollups (
    grain_s         BIGINT NOT NULL,
    bucket_start_us BIGINT NOT NULL,
    topic           TEXT NOT NULL,
    events          BIGINT NOT NULL,
    errors          BIGINT NOT NULL,
    PRIMARY KEY (grain_s, bucket_start_us, topic)
);

-- histograms: series 'saga' (subject = saga type), 'step' (subject = saga
-- type, detail = step), 'relay_lag' and 'consumer_lag' (subject = topic);
-- value_ms is the bucket (two significant digits), n how many values
CREATE TABLE histograms (
    grain_s         BIGINT NOT NULL,
    bucket_start_us BIGINT NOT NULL,
    series          TEXT NOT NULL,
    subject         TEXT NOT NULL,
    detail          TEXT NOT NULL,
    value_ms        BIGINT NOT NULL,
    n               BIGINT NOT NULL,
    PRIMARY KEY (grain_s, series, bucket_start_us, subject, detail, value_ms)
);
