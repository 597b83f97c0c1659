//! The benchmark loader (`BulkLoader`, Postgres only) stores exactly what
//! the ingest's batch write stores for whole new sagas: the same events
//! written both ways into two fresh databases give the same rows in every
//! table. (`sagascope bench load`'s own generator is compared the same way,
//! with dead letters and spans, in `server/src/bench/load_dataset.rs`.)

use chrono::{TimeZone, Utc};
use sagascope_domain::{Decoder, KafkaCoords, SagaEvent};
use sagascope_model::{Header, Phase};
use sagascope_store::test_support::fresh_postgres_store;
use sagascope_store::IngestBatch;
use sqlx::Connection;

const PHASES: [(Phase, Option<&str>); 6] = [
    (Phase::SagaStarted, None),
    (Phase::StepStarted, Some("Reserve")),
    (Phase::StepSucceeded, Some("Reserve")),
    (Phase::StepStarted, Some("Charge")),
    (Phase::StepFailed, Some("Charge")),
    (Phase::SagaFailed, None),
];

/// Saga `s` with `1 + s % 6` events, minutes apart from the others, sharing
/// a customer key with every fifth saga, some with a payload needing COPY
/// escapes.
fn saga(s: i64) -> Vec<SagaEvent> {
    let decoder = Decoder::default();
    let id = format!("bulk-{s:04}");
    let count = 1 + (s % 6) as usize;
    PHASES[..count]
        .iter()
        .enumerate()
        .map(|(n, (phase, step))| {
            let at = 1_763_700_000_000 + s * 61_000 + n as i64 * 250;
            let event = SagaEvent {
                event_id: format!("{id}-{n}"),
                saga_id: id.clone(),
                explicit_saga_id: Some(id.clone()),
                rule_classified: false,
                correlation_rank: 0,
                correlation_keys: vec![],
                saga_type: Some(if s % 2 == 0 { "order" } else { "payment" }.into()),
                step: step.map(str::to_string),
                phase: *phase,
                event_type: phase.as_str().to_ascii_uppercase(),
                trace_id: Some(format!("{:032x}", s + 1)),
                span_id: Some(format!("{:016x}", n + 1)),
                request_id: None,
                business_keys: vec![format!("cus-{}", s % 5), format!("ord-{s}")],
                occurred_at: Utc.timestamp_millis_opt(at).unwrap(),
                published_at: (s % 7 != 0).then(|| Utc.timestamp_millis_opt(at + 30).unwrap()),
                ingested_at: Utc.timestamp_millis_opt(at + 900).unwrap(),
                source_type: None,
                source_id: Some(format!("agg-{s}")),
                coords: KafkaCoords {
                    topic: "saga.state".into(),
                    partition: (s % 3) as i32,
                    offset: s * 10 + n as i64,
                },
                headers: vec![Header {
                    key: "note".into(),
                    value: "tab\there, back\\slash,\nnew line".into(),
                }],
                payload: serde_json::json!({
                    "saga_id": id,
                    "text": if s % 4 == 0 { "a\tb\\c\nd\r€" } else { "plain" },
                }),
                error: phase.is_failure().then(|| "upstream 503".to_string()),
            };
            decoder.interpret(event)
        })
        .collect()
}

/// Every row of every table as text, sorted.
async fn table_rows(url: &str) -> Vec<(String, Vec<String>)> {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() \
         AND tablename <> '_sqlx_migrations' AND tablename NOT LIKE 'sagascope_bench%' \
         ORDER BY tablename",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut out = Vec::new();
    for table in tables {
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT t::text AS r FROM \"{table}\" t ORDER BY r"
        ))
        .fetch_all(&mut conn)
        .await
        .unwrap();
        out.push((table, rows));
    }
    out
}

/// Every index of the database, by its definition.
async fn index_definitions(url: &str) -> Vec<String> {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() \
         AND tablename NOT LIKE 'sagascope_bench%' ORDER BY indexname",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_loaded_sagas_are_stored_as_the_batch_write_stores_them() {
    let batches: Vec<Vec<SagaEvent>> = (0..4)
        .map(|b| (b * 40..(b + 1) * 40).flat_map(saga).collect())
        .collect();
    let reference = fresh_postgres_store().await;
    let bulk = fresh_postgres_store().await;
    let loader = bulk.bulk_loader(2).await.unwrap();
    // As `bench load` into an empty database: the plain indexes are built
    // once at the end (and the unique ones still refuse repeats).
    let indexes_before = index_definitions(bulk.postgres_url().unwrap()).await;
    let deferred = loader.defer_secondary_indexes().await.unwrap();
    for index in [
        "events_by_saga",
        "sagas_by_start",
        "saga_keys_by_saga",
        "events_pkey",
        "saga_keys_pkey",
        "correlation_keys_pkey",
    ] {
        assert!(
            deferred.iter().any(|d| d == index),
            "{index} deferred: {deferred:?}"
        );
    }
    assert!(!deferred
        .iter()
        .any(|d| d.starts_with("dead_letters") || d == "sagas_pkey"));
    for events in &batches {
        reference
            .write_batch(&IngestBatch {
                group_id: "g".into(),
                events: events.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        let loaded = loader.load_sagas(events).await.unwrap();
        assert_eq!(loaded.events as usize, events.len());
        assert_eq!(loaded.sagas, 40);
    }

    let mut rebuilt = loader.rebuild_deferred_indexes().await.unwrap();
    rebuilt.sort();
    let mut dropped = deferred.clone();
    dropped.sort();
    assert_eq!(rebuilt, dropped);
    assert_eq!(
        index_definitions(bulk.postgres_url().unwrap()).await,
        indexes_before
    );
    assert!(loader.rebuild_deferred_indexes().await.unwrap().is_empty());

    let expected = table_rows(reference.postgres_url().unwrap()).await;
    let actual = table_rows(bulk.postgres_url().unwrap()).await;
    let rows = |table: &str| {
        expected
            .iter()
            .find(|(t, _)| t == table)
            .map_or(0, |(_, r)| r.len())
    };
    assert_eq!(rows("sagas"), 160);
    assert!(rows("events") > 400);
    for table in [
        "saga_keys",
        "correlation_keys",
        "saga_rollups",
        "histograms",
    ] {
        assert!(rows(table) > 0, "{table} has rows");
    }
    assert_eq!(expected.len(), actual.len());
    for ((table, want), (_, got)) in expected.iter().zip(&actual) {
        assert_eq!(want.len(), got.len(), "rows of {table}");
        for (w, g) in want.iter().zip(got) {
            assert_eq!(w, g, "a row of {table}");
        }
    }

    // Sagas already stored are refused whole.
    assert!(loader.load_sagas(&batches[0]).await.is_err());
    assert!(loader.load_sagas(&saga(3)).await.is_err());
    assert_eq!(table_rows(bulk.postgres_url().unwrap()).await, actual);
    // Two sagas sharing a correlation key would be merged: refused.
    let mut twins = saga(1000);
    let mut other = saga(1001);
    other[0].correlation_keys = twins[0].correlation_keys.clone();
    twins.append(&mut other);
    let refused = loader.load_sagas(&twins).await.unwrap_err().to_string();
    assert!(refused.contains("belongs to two sagas"), "{refused}");
    loader.close().await;
}
