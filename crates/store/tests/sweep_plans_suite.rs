//! The stall sweep and retention read one index range each (migration
//! 0012), never the whole `sagas` table, on Postgres and SQLite: their
//! statements' plans on a table holding 200,000 ended sagas and 1,000
//! running ones (plus dead letters, ingest errors and spans).
//! Postgres plans with the statistics autovacuum keeps (ANALYZE here);
//! SQLite with none (sagascope never runs ANALYZE there) and again after
//! one, so both of its planner's paths are held.

use chrono::{DateTime, TimeZone, Utc};
use sagascope_store::{Backend, LearnedEnd, StallPolicy, StatementPlan, Store};
use std::time::Duration;

sagascope_store::on_both_stores!(
    stall_sweep_reads_only_expired_active_sagas_by_index,
    retention_walks_an_index_in_its_order,
);

const SECOND_US: i64 = 1_000_000;
/// Every row's times count from here.
const BASE_US: i64 = 1_800_000_000 * SECOND_US;
const ENDED: i64 = 200_000;
const RUNNING: i64 = 1_000;
const SMALL: i64 = 20_000;

fn at(us: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(us).unwrap()
}

/// Ended sagas quiet since BASE + n s (n = 1…200,000), running ones since
/// BASE + 200,000 s + n s (n = 1…1,000), of three types; dead letters,
/// ingest errors, spans (half of them a saga's trace) at BASE + n s.
async fn fill(store: &Store) {
    let numbers = |count: i64| {
        format!("WITH RECURSIVE g(n) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT n + 1 FROM g WHERE n < {count})")
    };
    // The sweep reads the projections of the sagas it stalls.
    let running_projection = r#"'{"saga_id":"running-' || n || '","compensating":false,"trace_ids":[],"business_keys":[],"event_count":1}'"#;
    let saga_type = "CASE n % 3 WHEN 0 THEN 'order' WHEN 1 THEN 'chat' ELSE 'scan' END";
    let statements = [
        format!(
            "INSERT INTO sagas (saga_id, saga_type, status, started_at_us, ended_at_us, last_event_at_us, event_count, projection, kind) \
             {} SELECT 'ended-' || n, {saga_type}, CASE n % 2 WHEN 0 THEN 'completed' ELSE 'stalled' END, \
             {BASE_US} + n * {SECOND_US}, {BASE_US} + n * {SECOND_US}, {BASE_US} + n * {SECOND_US}, 3, '{{}}', \
             CASE n % 50 WHEN 0 THEN 'stream' ELSE 'saga' END FROM g",
            numbers(ENDED)
        ),
        format!(
            "INSERT INTO sagas (saga_id, saga_type, status, started_at_us, ended_at_us, last_event_at_us, event_count, projection, kind) \
             {} SELECT 'running-' || n, {saga_type}, CASE n % 4 WHEN 0 THEN 'compensating' ELSE 'running' END, \
             {BASE_US} + ({ENDED} + n) * {SECOND_US}, NULL, {BASE_US} + ({ENDED} + n) * {SECOND_US}, 1, {running_projection}, 'saga' FROM g",
            numbers(RUNNING)
        ),
        format!(
            "INSERT INTO dead_letters (id, dlq_topic, dlq_partition, dlq_offset, dead_lettered_at_us, ingested_at_us, format, headers, failure_group, state, state_changed_at_us) \
             {} SELECT 'orders.DLT/0/' || n, 'orders.DLT', 0, n, {BASE_US} + n * {SECOND_US}, {BASE_US} + n * {SECOND_US}, 'spring', '[]', 'g', \
             CASE n % 2 WHEN 0 THEN 'new' ELSE 'resolved' END, {BASE_US} FROM g",
            numbers(SMALL)
        ),
        format!(
            "INSERT INTO ingest_errors (topic, kafka_partition, kafka_offset, reason, first_bytes, ingested_at_us) \
             {} SELECT 'orders', 0, n, 'not JSON', 'x', {BASE_US} + n * {SECOND_US} FROM g",
            numbers(SMALL)
        ),
        format!(
            "INSERT INTO spans (trace_id, span_id, name, service, kind, start_us, end_us, duration_us, status, attributes, events, received_at_us) \
             {} SELECT 'trace-' || n, 'span-' || n, 'work', 'svc', 'internal', {BASE_US}, {BASE_US}, 0, 'ok', '[]', '[]', {BASE_US} + n * {SECOND_US} FROM g",
            numbers(SMALL)
        ),
        format!(
            "INSERT INTO saga_keys (search_key, saga_id, kind) {} SELECT 'trace-' || (2 * n), 'ended-' || n, 'trace' FROM g",
            numbers(SMALL / 2)
        ),
    ];
    for sql in statements {
        sqlx::query(&sql).execute(store.pool()).await.unwrap();
    }
    if store.backend() == Backend::Postgres {
        analyze(store).await;
    }
}

async fn analyze(store: &Store) {
    sqlx::query("ANALYZE").execute(store.pool()).await.unwrap();
}

/// The plan reads `index` as a range (Postgres: an index or bitmap index
/// scan with an index condition; SQLite: a SEARCH using it), and nothing
/// in it scans a whole table or index or sorts what it reads.
fn assert_index_range(plan: &StatementPlan, backend: Backend, index: &str) {
    assert_reads_index_range(plan, backend, index, Part::Whole);
}

/// Which part of a Postgres plan must read only index ranges.
#[derive(PartialEq)]
enum Part {
    Whole,
    /// What the batch's Limit reads (a `DELETE … IN (SELECT … LIMIT n)`
    /// joins the batch to the table as Postgres's costs prefer: by the
    /// primary key, or a hash join over the table while the table is
    /// small beside the batch).
    UnderLimit,
}

fn assert_reads_index_range(plan: &StatementPlan, backend: Backend, index: &str, part: Part) {
    let context = format!("{} on {}:\n{}", plan.statement, backend.name(), plan.plan);
    match backend {
        Backend::Postgres => {
            let text = match part {
                Part::Whole => plan.plan.as_str(),
                Part::UnderLimit => {
                    plan.plan
                        .split_once("Limit")
                        .unwrap_or_else(|| panic!("no Limit in {context}"))
                        .1
                }
            };
            assert!(
                text.contains(&format!("Index Scan using {index} "))
                    || text.contains(&format!("Index Only Scan using {index} "))
                    || text.contains(&format!("Bitmap Index Scan on {index}")),
                "{context}"
            );
            assert!(text.contains("Index Cond"), "{context}");
            assert!(!text.contains("Seq Scan"), "{context}");
            // What is read comes out of the index in order: no sort under
            // the batch's Limit (one above it sorts only the batch).
            let below_limit = text.split_once("Limit").map_or(text, |(_, b)| b);
            assert!(!below_limit.contains("Sort"), "{context}");
        }
        Backend::Sqlite => {
            let text = &plan.plan;
            assert!(
                text.lines().any(|line| line
                    .trim_start_matches(['|', '`', '-', ' '])
                    .starts_with("SEARCH ")
                    && line.contains(&format!(" INDEX {index} ("))),
                "{context}"
            );
            assert!(
                !text.lines().any(|line| line
                    .trim_start_matches(['|', '`', '-', ' '])
                    .starts_with("SCAN ")),
                "{context}"
            );
            assert!(!text.contains("TEMP B-TREE"), "{context}");
        }
    }
}

async fn stall_sweep_reads_only_expired_active_sagas_by_index(store: &Store) {
    fill(store).await;
    let policy = StallPolicy {
        default_timeout: Duration::from_secs(300),
        per_type: vec![
            ("order".to_string(), Duration::from_secs(600)),
            ("chat".to_string(), Duration::from_secs(3600)),
        ],
    };
    // Half of the running sagas are quiet for longer than 10 minutes.
    let now = at(BASE_US + (ENDED + RUNNING / 2) * SECOND_US + 600 * SECOND_US);
    let check = |plans: Vec<StatementPlan>| {
        assert_eq!(
            plans.len(),
            3,
            "one statement per type with a timeout, one default"
        );
        assert_index_range(
            &plans[0],
            store.backend(),
            "sagas_active_by_type_last_event",
        );
        assert_index_range(
            &plans[1],
            store.backend(),
            "sagas_active_by_type_last_event",
        );
        assert_index_range(
            &plans[2],
            store.backend(),
            "sagas_active_by_status_last_event",
        );
    };
    check(store.stall_sweep_plans(&policy, &[], now).await.unwrap());
    // A learned type's statements read its active sagas by type too.
    let learned = [LearnedEnd {
        saga_type: "scan".into(),
        end_nodes: vec!["ProfileUpdated".into(), "ScanRewardCompensated".into()],
        quiet_after: Some(Duration::from_secs(20)),
    }];
    let plans = store
        .stall_sweep_plans(&policy, &learned, now)
        .await
        .unwrap();
    let names: Vec<&str> = plans.iter().map(|p| p.statement.as_str()).collect();
    assert_eq!(
        names,
        [
            "learned end scan",
            "learned quiet scan",
            "stall order",
            "stall chat",
            "stall default"
        ]
    );
    for plan in &plans[..2] {
        assert_index_range(plan, store.backend(), "sagas_active_by_type_last_event");
    }
    let only_default = StallPolicy {
        default_timeout: Duration::from_secs(300),
        per_type: vec![],
    };
    let plans = store
        .stall_sweep_plans(&only_default, &[], now)
        .await
        .unwrap();
    assert_eq!(plans.len(), 1);
    assert_index_range(
        &plans[0],
        store.backend(),
        "sagas_active_by_status_last_event",
    );
    if store.backend() == Backend::Sqlite {
        analyze(store).await;
        check(store.stall_sweep_plans(&policy, &[], now).await.unwrap());
    }

    // And the statements do what they did: the expired ones, per type.
    let stalled = store.mark_stalled(&policy, now).await.unwrap();
    let now_s = (ENDED + RUNNING / 2) + 600;
    let expected = (1..=RUNNING)
        .filter(|n| {
            let quiet_s = now_s - (ENDED + n);
            let timeout = match n % 3 {
                0 => 600,
                1 => 3600,
                _ => 300,
            };
            quiet_s > timeout
        })
        .count();
    assert_eq!(stalled.len(), expected);
    assert!(stalled.iter().all(|s| s.saga_id.starts_with("running-")));
}

async fn retention_walks_an_index_in_its_order(store: &Store) {
    fill(store).await;
    let cutoff = at(BASE_US + (SMALL / 2) * SECOND_US);
    let check = |plans: Vec<StatementPlan>| {
        let backend = store.backend();
        let names: Vec<&str> = plans.iter().map(|p| p.statement.as_str()).collect();
        assert_eq!(
            names,
            [
                "retention sagas",
                "retention dead letters",
                "retention ingest errors",
                "retention spans",
                "unmatched spans"
            ]
        );
        assert_index_range(&plans[0], backend, "sagas_over_by_last_event");
        assert_index_range(&plans[1], backend, "dead_letters_closed_by_time");
        assert_index_range(&plans[2], backend, "ingest_errors_by_ingested");
        assert_reads_index_range(&plans[3], backend, "spans_by_received", Part::UnderLimit);
        assert_reads_index_range(&plans[4], backend, "spans_by_received", Part::UnderLimit);
    };
    check(store.retention_plans(cutoff, 500).await.unwrap());
    if store.backend() == Backend::Sqlite {
        analyze(store).await;
        check(store.retention_plans(cutoff, 500).await.unwrap());
    }
}
