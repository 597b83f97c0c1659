//! Two sagascope replicas sharing one Postgres database and one Kafka
//! consumer group (6 partitions; on librdkafka's mock cluster and on
//! Tansu, whose group coordinator is an independent one): every produced
//! event is stored exactly once through the rebalance that splits the
//! partitions and through the graceful stop of one replica mid-stream (the
//! other takes its partitions over), sagas whose events are split over
//! partitions owned by both replicas end whole (the version compare-and-set
//! of the saga rows), and both replicas' SSE streams carry the sagas the
//! *other* replica ingested (the LISTEN/NOTIFY relay).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sagascope::run::{self, Running};
use sagascope_domain::{Decoder, Rules};
use sagascope_ingest::IngestConfig;
use sagascope_store::test_support::fresh_postgres_store;
use sagascope_store::Store;
use sagascope_test_brokers::{BrokerKind, TestBroker};
use serde_json::{json, Value};
use sqlx::Row;

const TOPIC: &str = "saga.state";
const PARTITIONS: i32 = 6;
const GROUP: &str = "sagascope-two-replicas";
/// Events per saga: started, step started, step completed, completed.
const STATUSES: [&str; 4] = ["STARTED", "STEP_STARTED", "STEP_COMPLETED", "COMPLETED"];
/// Sagas produced while both replicas run, then while A stops.
const BOTH_RUNNING: usize = 200;
const DURING_STOP: usize = 100;
/// A payload note longer than a NOTIFY payload may be (8000 bytes): such
/// events travel as a reference the other replica reads back.
const LONG_NOTE: usize = 12_000;
/// Generous for a loaded 2-core machine and either broker's group
/// coordinator; never a timing assertion.
const DEADLINE: Duration = Duration::from_secs(90);

async fn start_replica(store: Store, kafka: &TestBroker) -> Running {
    let mut config = IngestConfig::new(kafka.bootstrap_servers(), vec![TOPIC.into()], GROUP);
    config.dlq_topics = vec![];
    config.batch_linger = Duration::from_millis(20);
    config.batch_size = 200;
    // A short session and frequent heartbeats: rebalances (a replica
    // joins, a replica leaves) complete in a few seconds.
    config.session_timeout = Duration::from_secs(6);
    config.client_properties = vec![("heartbeat.interval.ms".into(), "300".into())];
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    run::start(
        store,
        Some((config, Decoder::new(Rules::default()))),
        listen,
        Path::new("target/site"),
        sagascope_domain::Thresholds::default(),
    )
    .await
    .unwrap()
}

/// What one SSE subscriber received.
#[derive(Debug, Default)]
struct Seen {
    hello: bool,
    /// Saga ids of `saga` messages.
    sagas: HashSet<String>,
    events: usize,
    /// Event ids of `event` messages whose payload carries a long note.
    long_events: HashSet<String>,
    lagged: usize,
}

/// Follows `/api/v1/stream` of a replica over real HTTP until it ends.
fn follow_stream(addr: SocketAddr) -> Arc<Mutex<Seen>> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let into = seen.clone();
    tokio::spawn(async move {
        let mut response = reqwest::Client::new()
            .get(format!("http://{addr}/api/v1/stream"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let mut buffer = String::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let frame: String = buffer.drain(..end + 2).collect();
                let mut name = "";
                let mut data = String::new();
                for line in frame.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        name = value.trim();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim());
                    }
                }
                let mut seen = into.lock().unwrap();
                match name {
                    "hello" => seen.hello = true,
                    "saga" => {
                        let message: Value = serde_json::from_str(&data).unwrap();
                        let id = message["saga"]["saga_id"].as_str().unwrap().to_string();
                        seen.sagas.insert(id);
                    }
                    "event" => {
                        seen.events += 1;
                        let message: Value = serde_json::from_str(&data).unwrap();
                        let note = message["event"]["payload"]["note"].as_str().unwrap_or("");
                        if note.len() >= LONG_NOTE {
                            let id = message["event"]["event_id"].as_str().unwrap().to_string();
                            seen.long_events.insert(id);
                        }
                    }
                    "lagged" => seen.lagged += 1,
                    _ => {}
                }
            }
        }
    });
    seen
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < DEADLINE,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Producer {
    producer: FutureProducer,
    /// (partition, offset) of every acknowledged message.
    delivered: BTreeSet<(i32, i64)>,
    sagas: Vec<String>,
}

impl Producer {
    fn new(kafka: &TestBroker) -> Producer {
        Producer {
            producer: ClientConfig::new()
                .set("bootstrap.servers", kafka.bootstrap_servers())
                .set("linger.ms", "5")
                .create()
                .unwrap(),
            delivered: BTreeSet::new(),
            sagas: Vec::new(),
        }
    }

    /// One saga's four events. Every other saga's events are keyed each
    /// by its own id, so they land on different partitions, which the two
    /// replicas own: both write that saga (the version compare-and-set
    /// merges them). The others are keyed by saga id (one partition each).
    async fn produce_saga(&mut self) {
        self.produce_saga_with_note(0).await;
    }

    /// … the first event with a payload note of `note_len` bytes.
    async fn produce_saga_with_note(&mut self, note_len: usize) {
        let saga_id = format!("replicas-{:04}", self.sagas.len());
        let mut in_flight = Vec::new();
        for (n, status) in STATUSES.iter().enumerate() {
            let value = json!({
                "saga_id": saga_id,
                "saga_type": "order",
                "status": status,
                "step": "ReserveStock",
                "event_id": format!("{saga_id}-{n}"),
                "timestamp": (chrono::Utc::now() + chrono::Duration::milliseconds(n as i64)).to_rfc3339(),
                "note": if n == 0 { "n".repeat(note_len) } else { String::new() },
            })
            .to_string();
            let key = if self.sagas.len() % 2 == 1 {
                format!("{saga_id}-{n}")
            } else {
                saga_id.clone()
            };
            let record = FutureRecord::to(TOPIC).key(&key).payload(&value);
            // Enqueued now, in order; acknowledged below.
            in_flight.push(
                self.producer
                    .send_result(record)
                    .map_err(|(e, _)| e)
                    .unwrap(),
            );
        }
        for delivery in in_flight {
            let delivery = delivery.await.unwrap().map_err(|(e, _)| e).unwrap();
            assert!(self.delivered.insert((delivery.partition, delivery.offset)));
        }
        self.sagas.push(saga_id);
    }
}

fn ingested_events(running: &Running) -> u64 {
    running
        .state
        .ingest
        .as_ref()
        .unwrap()
        .events
        .load(Ordering::Relaxed)
}

async fn stored_events(store: &Store) -> i64 {
    sqlx::query("SELECT COUNT(*) FROM events")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get::<i64, _>(0)
}

async fn two_replicas_ingest_every_event_once_and_both_push_live_updates(broker: BrokerKind) {
    let kafka = TestBroker::start(broker, &[TOPIC], PARTITIONS).unwrap();
    let store_a = fresh_postgres_store().await;
    // The same database, through a pool of its own, as another process would.
    let url = store_a.postgres_url().unwrap().to_string();
    let store_b = Store::connect(&url).await.unwrap();
    let checker = Store::connect(&url).await.unwrap();

    let replica_a = start_replica(store_a, &kafka).await;
    let replica_b = start_replica(store_b, &kafka).await;
    let seen_a = follow_stream(replica_a.addr);
    let seen_b = follow_stream(replica_b.addr);
    wait_until("both streams said hello", || {
        seen_a.lock().unwrap().hello && seen_b.lock().unwrap().hello
    })
    .await;

    // Both replicas ingest: the group has split the partitions between
    // them. Until the rebalance is done, one of them has them all.
    let mut producer = Producer::new(&kafka);
    let started = Instant::now();
    while ingested_events(&replica_a) == 0 || ingested_events(&replica_b) == 0 {
        assert!(
            started.elapsed() < DEADLINE,
            "the group never split: A {} events, B {} events",
            ingested_events(&replica_a),
            ingested_events(&replica_b)
        );
        for _ in 0..PARTITIONS {
            producer.produce_saga().await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Large events: each replica gets the other's through a refetch.
    let mut long_events = Vec::new();
    for _ in 0..PARTITIONS {
        long_events.push(format!("replicas-{:04}-0", producer.sagas.len()));
        producer.produce_saga_with_note(LONG_NOTE).await;
    }
    while producer.sagas.len() < BOTH_RUNNING {
        producer.produce_saga().await;
    }
    let both_running = producer.sagas.clone();
    let expected = (both_running.len() * STATUSES.len()) as i64;
    let started = Instant::now();
    while stored_events(&checker).await < expected {
        assert!(started.elapsed() < DEADLINE, "phase 1 not ingested");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Each replica ingested only part of them, yet each stream shows all:
    // the rest came from the other replica through LISTEN/NOTIFY.
    let (by_a, by_b) = (ingested_events(&replica_a), ingested_events(&replica_b));
    assert!(
        by_a > 0 && by_b > 0 && by_a < expected as u64 && by_b < expected as u64,
        "A {by_a}, B {by_b} of {expected}"
    );
    wait_until("both streams showed every saga of both replicas", || {
        let (a, b) = (seen_a.lock().unwrap(), seen_b.lock().unwrap());
        both_running
            .iter()
            .all(|id| a.sagas.contains(id) && b.sagas.contains(id))
    })
    .await;
    {
        let (a, b) = (seen_a.lock().unwrap(), seen_b.lock().unwrap());
        assert!(a.events >= expected as usize && b.events >= expected as usize);
        for id in &long_events {
            assert!(
                a.long_events.contains(id) && b.long_events.contains(id),
                "long event {id} whole on both streams"
            );
        }
        assert_eq!((a.lagged, b.lagged), (0, 0), "no message was lost");
    }

    // Stop A gracefully (it drains and commits) while more sagas arrive:
    // B takes A's partitions over.
    let producing = tokio::spawn(async move {
        for _ in 0..DURING_STOP {
            producer.produce_saga().await;
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        producer
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let by_a_before_stop = ingested_events(&replica_a);
    replica_a.shutdown().await;
    let producer = producing.await.unwrap();
    let expected = producer.delivered.len() as i64;
    assert_eq!(expected, (producer.sagas.len() * STATUSES.len()) as i64);
    let started = Instant::now();
    while stored_events(&checker).await < expected {
        assert!(
            started.elapsed() < DEADLINE,
            "B did not take over: {} of {expected} events stored",
            stored_events(&checker).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let late: Vec<&String> = producer.sagas.iter().skip(both_running.len()).collect();
    wait_until(
        "B's stream showed the sagas produced during the stop",
        || {
            let b = seen_b.lock().unwrap();
            late.iter().all(|id| b.sagas.contains(*id))
        },
    )
    .await;
    assert!(
        ingested_events(&replica_b) > by_b,
        "B ingested after A left"
    );
    assert!(by_a_before_stop > 0);

    // Exactly once: the stored coordinates are the acknowledged ones, each
    // once, and every saga has all of its events.
    let rows = sqlx::query("SELECT topic, kafka_partition, kafka_offset FROM events")
        .fetch_all(checker.pool())
        .await
        .unwrap();
    assert_eq!(rows.len() as i64, expected, "no duplicates");
    let stored: BTreeSet<(i32, i64)> = rows
        .iter()
        .map(|row| {
            assert_eq!(row.get::<String, _>("topic"), TOPIC);
            (
                row.get::<i64, _>("kafka_partition") as i32,
                row.get::<i64, _>("kafka_offset"),
            )
        })
        .collect();
    assert_eq!(stored.len(), rows.len(), "one row per coordinate");
    assert_eq!(stored, producer.delivered, "no loss");
    let partitions: BTreeSet<i32> = stored.iter().map(|(p, _)| *p).collect();
    assert!(
        partitions.len() > 1,
        "spread over partitions: {partitions:?}"
    );
    // Sagas whose events are spread over partitions (so, over replicas).
    let spread: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM (SELECT saga_id FROM events GROUP BY saga_id HAVING COUNT(DISTINCT kafka_partition) > 1) AS s",
    )
    .fetch_one(checker.pool())
    .await
    .unwrap()
    .get("n");
    assert!(spread > 10, "only {spread} sagas spread over partitions");
    let counts: HashMap<String, i64> =
        sqlx::query("SELECT saga_id, event_count, status FROM sagas")
            .fetch_all(checker.pool())
            .await
            .unwrap()
            .iter()
            .map(|row| {
                assert_eq!(row.get::<String, _>("status"), "completed");
                (row.get("saga_id"), row.get("event_count"))
            })
            .collect();
    assert_eq!(counts.len(), producer.sagas.len());
    for saga in &producer.sagas {
        assert_eq!(counts.get(saga), Some(&(STATUSES.len() as i64)), "{saga}");
    }

    replica_b.shutdown().await;
    checker.close().await;
}

// Four workers: two apps, their SSE streams and the producer at once.
sagascope_test_brokers::on_both_brokers!(
    worker_threads = 4;
    two_replicas_ingest_every_event_once_and_both_push_live_updates
);

/// A lost LISTEN connection means missed notifications: the replica
/// reconnects and tells its SSE subscribers to refetch (`lagged`).
#[tokio::test]
async fn a_lost_listen_connection_makes_pages_refetch() {
    let store = fresh_postgres_store().await;
    let url = store.postgres_url().unwrap().to_string();
    let admin = Store::connect(&url).await.unwrap();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let replica = run::start(
        store,
        None,
        listen,
        Path::new("target/site"),
        sagascope_domain::Thresholds::default(),
    )
    .await
    .unwrap();
    let seen = follow_stream(replica.addr);
    wait_until("the stream said hello", || seen.lock().unwrap().hello).await;
    assert_eq!(seen.lock().unwrap().lagged, 0);
    let terminated: i64 = sqlx::query(
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .fetch_one(admin.pool())
    .await
    .unwrap()
    .get(0);
    assert_eq!(terminated, 1, "the replica's LISTEN connection");
    wait_until("the stream said lagged", || seen.lock().unwrap().lagged > 0).await;
    // Listening again: a new LISTEN connection is there.
    let started = Instant::now();
    loop {
        let listening: i64 = sqlx::query(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
        )
        .fetch_one(admin.pool())
        .await
        .unwrap()
        .get(0);
        if listening == 1 {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "never listened again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    replica.shutdown().await;
    admin.close().await;
}
