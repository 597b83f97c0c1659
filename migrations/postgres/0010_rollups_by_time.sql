-- Issue 15: every overview window is ONE index range of each rollup table,
-- whatever history is stored. The histograms were keyed (grain_s, series,
-- bucket_start_us, …), so a window read without a series scanned every row
-- of its grain ever stored; they are keyed by time first now, like the
-- other rollup tables. Value buckets are unchanged (two significant digits:
-- a fixed log-linear layout, at most 90 per decade).
ALTER TABLE histograms DROP CONSTRAINT histograms_pkey;
ALTER TABLE histograms ADD PRIMARY KEY (grain_s, bucket_start_us, series, subject, detail, value_ms);

-- Two more grains, so that every window reads a bounded number of buckets
-- (crates/model/src/metrics_shapes.rs): 10 minutes (6 h) and 6 hours
-- (7 d), next to 1 minute (15 m, 1 h) and 1 hour (24 h). They are sums of
-- the finer grains' buckets (600 s of 60 s, 21600 s of 3600 s; buckets
-- start at multiples of the grain since the epoch), so the history stored
-- so far gets them too. The CASE rounds pre-1970 buckets down, as
-- `div_euclid` does.
INSERT INTO saga_rollups (grain_s, bucket_start_us, saga_type, status, sagas, began_compensating)
SELECT 600, (bucket_start_us - CASE WHEN bucket_start_us < 0 THEN 599999999 ELSE 0 END) / 600000000 * 600000000,
       saga_type, status, SUM(sagas), SUM(began_compensating)
FROM saga_rollups WHERE grain_s = 60
GROUP BY 2, saga_type, status;
INSERT INTO saga_rollups (grain_s, bucket_start_us, saga_type, status, sagas, began_compensating)
SELECT 21600, (bucket_start_us - CASE WHEN bucket_start_us < 0 THEN 21599999999 ELSE 0 END) / 21600000000 * 21600000000,
       saga_type, status, SUM(sagas), SUM(began_compensating)
FROM saga_rollups WHERE grain_s = 3600
GROUP BY 2, saga_type, status;

INSERT INTO step_rollups (grain_s, bucket_start_us, saga_type, step, executions, failures)
SELECT 600, (bucket_start_us - CASE WHEN bucket_start_us < 0 THEN 599999999 ELSE 0 END) / 600000000 * 600000000,
       saga_type, step, SUM(executions), SUM(failures)
FROM step_rollups WHERE grain_s = 60
GROUP BY 2, saga_type, step;
INSERT INTO step_rollups (grain_s, bucket_start_us, saga_type, step, executions, failures)
SELECT 21600, (bucket_start_us - CASE WHEN bucket_start_us < 0 THEN 21599999999 ELSE 0 END) / 21600000000 * 21600000000,
       saga_type, step, SUM(executions), SUM(failures)
FROM step_rollups WHERE grain_s = 3600
GROUP BY 2, saga_type, step;

INSERT INTO topic_rollups (grain_s, bucket_start_us, topic, events, errors)
SELECT 600, (bucket_start_us - CASE WHEN bucket_start_us < 0 THEN 599999999 ELSE 0 END) / 600000000 * 600000000,
       topic, SUM(events), SUM(errors)
FROM topic_rollups WHERE grain_s = 60
GROUP BY 2, topic;
INSERT INTO topic_rollups (grain_s, bucket_start_us, topic, events, errors)
SELECT 21600, (bucket_start_us - CASE WHEN bucket_start_us < 0 THEN 21599999999 ELSE 0 END) / 21600000000 * 21600000000,
       topic, SUM(events), SUM(errors)
FROM topic_rollups WHERE grain_s = 3600
GROUP BY 2, topic;

INSERT INTO histograms (grain_s, bucket_start_us, series, subject, detail, value_ms, n)
SELECT 600, (bucket_start_us - CASE WHEN bucket_start_us < 0 THEN 599999999 ELSE 0 END) / 600000000 * 600000000,
       series, subject, detail, value_ms, SUM(n)
FROM histograms WHERE grain_s = 60
GROUP BY 2, series, subject, detail, value_ms;
INSERT INTO histograms (grain_s, bucket_start_us, series, subject, detail, value_ms, n)
SELECT 21600, (bucket_start_us - CASE WHEN bucket_start_us < 0 THEN 21599999999 ELSE 0 END) / 21600000000 * 21600000000,
       series, subject, detail, value_ms, SUM(n)
FROM histograms WHERE grain_s = 3600
GROUP BY 2, series, subject, detail, value_ms;
