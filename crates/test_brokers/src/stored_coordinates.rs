//! What a fault test reads back from sagascope's store: every stored
//! (topic, partition, offset), the consumer group's stored offsets, and the
//! comparison with what the broker acknowledged (exactly once: nothing
//! missing, nothing extra, nothing twice).

use std::collections::{BTreeMap, HashMap};

use sagascope_store::Store;
use sqlx::Row;

use crate::simulated_traffic::{Coord, Produced};

/// Every (topic, partition, offset) the store holds, with the table it is
/// in (a coordinate twice is listed twice).
pub struct StoredCoordinates {
    pub rows: Vec<(Coord, &'static str)>,
    pub events: usize,
    pub ingest_errors: usize,
    pub dead_letters: usize,
}

pub async fn stored_coordinates(store: &Store) -> StoredCoordinates {
    let tables = [
        (
            "events",
            "SELECT topic, kafka_partition, kafka_offset FROM events",
        ),
        (
            "ingest_errors",
            "SELECT topic, kafka_partition, kafka_offset FROM ingest_errors",
        ),
        (
            "dead_letters",
            "SELECT dlq_topic, dlq_partition, dlq_offset FROM dead_letters",
        ),
    ];
    let mut rows = Vec::new();
    let mut counts = [0; 3];
    for (count, (table, sql)) in counts.iter_mut().zip(tables) {
        for row in sqlx::query(sql).fetch_all(store.pool()).await.unwrap() {
            let partition: i64 = row.get(1);
            let coord = Coord {
                topic: row.get(0),
                partition: i32::try_from(partition).unwrap(),
                offset: row.get(2),
            };
            rows.push((coord, table));
            *count += 1;
        }
    }
    StoredCoordinates {
        rows,
        events: counts[0],
        ingest_errors: counts[1],
        dead_letters: counts[2],
    }
}

/// The next offset per (topic, partition) that the store has recorded for
/// `group` (moved forward in each batch's transaction).
pub async fn stored_offsets(store: &Store, group: &str) -> BTreeMap<(String, i32), i64> {
    sqlx::query(
        "SELECT topic, kafka_partition, next_offset FROM consumer_offsets WHERE group_id = $1",
    )
    .bind(group.to_string())
    .fetch_all(store.pool())
    .await
    .expect("read consumer_offsets")
    .iter()
    .map(|row| {
        let partition: i64 = row.get("kafka_partition");
        (
            (row.get("topic"), i32::try_from(partition).unwrap()),
            row.get("next_offset"),
        )
    })
    .collect()
}

/// Messages consumed so far by `group`: offsets start at 0, so the sum of
/// the stored next offsets counts them.
pub async fn consumed(store: &Store, group: &str) -> i64 {
    stored_offsets(store, group).await.values().sum()
}

/// The partitions whose stored offset is short of what was produced, as
/// `topic/partition at N of END`; empty once everything was consumed.
pub fn behind(
    offsets: &BTreeMap<(String, i32), i64>,
    ends: &BTreeMap<(String, i32), i64>,
) -> Vec<String> {
    ends.iter()
        .filter(|(partition, end)| offsets.get(*partition).copied().unwrap_or(0) < **end)
        .map(|((topic, partition), end)| {
            let at = offsets
                .get(&(topic.clone(), *partition))
                .copied()
                .unwrap_or(0);
            format!("{topic}/{partition} at {at} of {end}")
        })
        .collect()
}

/// None when the store holds exactly the coordinates it must, once each,
/// and its offsets end where the partitions end; else what is missing,
/// extra or stored twice (the first few of each).
pub fn exactly_once(
    produced: &Produced,
    stored: &StoredCoordinates,
    offsets: &BTreeMap<(String, i32), i64>,
) -> Option<String> {
    let mut tables: HashMap<&Coord, Vec<&str>> = HashMap::new();
    for (coord, table) in &stored.rows {
        tables.entry(coord).or_default().push(table);
    }
    let mut missing: Vec<&Coord> = produced
        .stored
        .iter()
        .filter(|c| !tables.contains_key(c))
        .collect();
    let mut extra: Vec<&Coord> = tables
        .keys()
        .copied()
        .filter(|c| !produced.stored.contains(*c))
        .collect();
    let mut twice: Vec<(&Coord, &Vec<&str>)> = tables
        .iter()
        .filter(|(_, t)| t.len() > 1)
        .map(|(c, t)| (*c, t))
        .collect();
    let past_end: Vec<_> = offsets
        .iter()
        .filter(|(partition, next)| produced.ends.get(*partition) != Some(*next))
        .collect();
    if missing.is_empty() && extra.is_empty() && twice.is_empty() && past_end.is_empty() {
        return None;
    }
    missing.sort();
    extra.sort();
    twice.sort();
    let first = |coords: &[&Coord]| {
        coords
            .iter()
            .take(20)
            .map(|c| {
                let ignored = if produced.ignored.contains(*c) {
                    " (a delete or tombstone)"
                } else {
                    ""
                };
                format!("{c}{ignored}")
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    Some(format!(
        "{} missing [{}]; {} extra [{}]; {} stored twice [{}]; stored offsets not at the partition's end: {past_end:?}",
        missing.len(),
        first(&missing),
        extra.len(),
        first(&extra),
        twice.len(),
        twice
            .iter()
            .take(20)
            .map(|(c, t)| format!("{c} in {}", t.join("+")))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// Drops a database that `fresh_postgres_store` (or a test) created,
/// through the server's own database (SAGASCOPE_TEST_POSTGRES_URL).
pub async fn drop_postgres_database(url: &str) {
    let (_, name) = url.rsplit_once('/').unwrap();
    let admin = Store::connect(&admin_postgres_url()).await.unwrap();
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(admin.pool())
        .await;
    admin.close().await;
}

/// SAGASCOPE_TEST_POSTGRES_URL, else the local server's default.
pub fn admin_postgres_url() -> String {
    std::env::var("SAGASCOPE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}
