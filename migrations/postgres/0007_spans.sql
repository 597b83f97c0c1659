-- Spans received over OTLP (issue 6, "trace beside the saga"). One row per
-- (trace id, span id): an exporter that sends a span again overwrites it
-- with the same values. Times are epoch microseconds like the other
-- tables; attributes and events are JSON text (the model's SpanAttribute
-- and SpanEventView lists). The SQL is the same on Postgres and SQLite.
CREATE TABLE spans (
    trace_id        TEXT NOT NULL,
    span_id         TEXT NOT NULL,
    parent_span_id  TEXT,
    name            TEXT NOT NULL,
    service         TEXT NOT NULL,
    -- unspecified | internal | server | client | producer | consumer
    kind            TEXT NOT NULL,
    start_us        BIGINT NOT NULL,
    end_us          BIGINT NOT NULL,
    duration_us     BIGINT NOT NULL,
    -- unset | ok | error
    status          TEXT NOT NULL,
    status_message  TEXT,
    attributes      TEXT NOT NULL,
    events          TEXT NOT NULL,
    -- when sagascope first received it: retention and the window for
    -- spans of traces that no saga has are counted from here, not from
    -- the sender's clock
    received_at_us  BIGINT NOT NULL,
    PRIMARY KEY (trace_id, span_id)
);
-- a trace's spans in waterfall order
CREATE INDEX spans_by_trace_start ON spans (trace_id, start_us, span_id);
-- retention in bounded batches, oldest first
CREATE INDEX spans_by_received ON spans (received_at_us);
