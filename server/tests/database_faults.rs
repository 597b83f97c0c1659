//! Database faults under ingest (issue 17): the real `sagascope serve`
//! process ingests simulated traffic from a Tansu broker into a private
//! Postgres cluster (initdb on a free port, never the shared server), and
//! the database goes away mid-ingest:
//!
//! - restarted (`pg_ctl restart -m fast`, then `stop -m immediate`, held
//!   down, and started again);
//! - unreachable for 30 s: a TCP proxy between sagascope and Postgres
//!   closes the live connections and refuses new ones, a real network
//!   fault in front of a running database.
//!
//! Meanwhile sagascope must stay up, pause its ingest (nothing written,
//! no Kafka offset committed past what the store holds, no hot retry
//! loop), say why on `/readyz` (503, "store unavailable since <RFC 3339>:
//! <error>"), answer the API with 503 and render its pages with the calm
//! "Store unavailable since …" banner instead of an error page, all over
//! HTTP. Once the database is back everything resumes by itself and the
//! store must hold every produced (topic, partition, offset) exactly once.
//!
//! Ignored in the plain test run: it needs `tansu` (TANSU_BIN, else PATH),
//! the Postgres 15 server binaries (SAGASCOPE_PG_BIN, default
//! /usr/lib/postgresql/15/bin) and takes over 30 s; scripts/test.sh runs it
//! on the release binary (SAGASCOPE_BIN, relative to the workspace root).

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{SocketAddr, TcpStream as StdTcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use sagascope_simulator::{ALL_TOPICS, DLT_TOPICS};
use sagascope_store::Store;
use sagascope_test_brokers::{
    consumed, exactly_once, fault_seed, free_port, produce_traffic, sagascope_bin,
    stored_coordinates, stored_offsets, BrokerKind, Produced, SagascopeProcess, TestBroker,
    TrafficPlan, WorkDir,
};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Messages produced, at a steady pace, so that the faults hit while new
/// messages arrive and a backlog builds up behind them.
const MESSAGES: usize = 20_000;
const PRODUCE_RATE_PER_SECOND: f64 = 250.0;
const PARTITIONS: i32 = 3;
const FIRST_BATCH_TIMEOUT: Duration = Duration::from_secs(90);
/// Stored before the fault, so that it interrupts an ingest at work.
const CONSUMED_BEFORE_FAULT: i64 = 1_000;
/// How long the proxy refuses the database.
const UNREACHABLE_FOR: Duration = Duration::from_secs(30);
/// How long the restarted database stays down before it starts again.
const DOWN_FOR: Duration = Duration::from_secs(12);
/// Longest a page or API answer may take while the store is down: well
/// under the pool's 10 s connect timeout, since the outage is known.
const ANSWER_WHILE_DOWN: Duration = Duration::from_secs(8);
/// CPU time the process may spend per second of outage: waiting with
/// backoff costs little, a hot retry loop a whole core.
const MAX_CPU_SHARE_WHILE_DOWN: f64 = 0.35;
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(150);
const DEFAULT_PG_BIN: &str = "/usr/lib/postgresql/15/bin";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs tansu, the Postgres 15 binaries and a release build: scripts/test.sh runs it"]
async fn ingest_waits_out_a_postgres_restart_and_stores_each_message_once() {
    let mut rig = Rig::start("sagascope-db-restart", false).await;
    let outcome = restart_scenario(&mut rig).await;
    rig.conclude(outcome).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs tansu, the Postgres 15 binaries and a release build: scripts/test.sh runs it"]
async fn ingest_waits_out_30_s_of_unreachable_postgres_and_stores_each_message_once() {
    let mut rig = Rig::start("sagascope-db-unreachable", true).await;
    let outcome = unreachable_scenario(&mut rig).await;
    rig.conclude(outcome).await;
}

/// `pg_ctl restart -m fast` mid-ingest (the ingest must resume by itself),
/// then a crash-like `stop -m immediate` held for [`DOWN_FOR`] while the
/// HTTP side is checked, then a start.
async fn restart_scenario(rig: &mut Rig) -> Result<(), String> {
    rig.wait_until_mid_ingest().await?;
    let before = rig.consumed().await;
    rig.postgres
        .pg_ctl(&["restart", "-m", "fast", "-w", "-t", "60"])
        .map_err(|e| format!("{e:#}"))?;
    println!("pg_ctl restart -m fast at {before} messages consumed");
    rig.wait_until_consumed_at_least(before + 500).await?;
    println!(
        "the ingest resumed after the restart: {} consumed",
        rig.consumed().await
    );

    rig.wait_until_mid_ingest().await?;
    let down_at = Utc::now();
    let held = Instant::now();
    rig.postgres
        .pg_ctl(&["stop", "-m", "immediate", "-w", "-t", "60"])
        .map_err(|e| format!("{e:#}"))?;
    let cpu_before = rig.cpu_seconds();
    rig.outage_is_explained(down_at).await?;
    // What Kafka holds for the group may not move while nothing can be
    // stored (an async commit of the last stored batch may still land
    // right after the stop: read after the outage showed).
    let committed = rig.kafka_committed().await;
    tokio::time::sleep(DOWN_FOR.saturating_sub(held.elapsed())).await;
    still_running(&mut rig.sagascope)?;
    let committed_later = rig.kafka_committed().await;
    if committed_later != committed {
        return Err(format!(
            "Kafka offsets were committed while the store was down: {committed:?} became {committed_later:?}"
        ));
    }
    rig.cpu_stayed_low(cpu_before, held.elapsed())?;
    rig.postgres.start_server().map_err(|e| format!("{e:#}"))?;
    println!(
        "Postgres down (stop -m immediate) for {:.1} s, started again",
        held.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The proxy cut for [`UNREACHABLE_FOR`]: besides what the HTTP side
/// says, the test reads the database directly (it is up) and sees that
/// nothing was written and Kafka's offsets never pass the stored ones.
async fn unreachable_scenario(rig: &mut Rig) -> Result<(), String> {
    rig.wait_until_mid_ingest().await?;
    // Out of the rig while it is cut (the rig's checks borrow it mutably);
    // back in once restored.
    let proxy = rig
        .proxy
        .take()
        .expect("the unreachable test runs behind the proxy");
    let cut_at = Utc::now();
    let cut = Instant::now();
    proxy.cut().await.map_err(|e| format!("{e:#}"))?;
    let cpu_before = rig.cpu_seconds();
    rig.outage_is_explained(cut_at).await?;
    // The transaction in flight at the cut is rolled back or committed by
    // now; from here on nothing may change.
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(cut.elapsed())).await;
    let stored = rig.stored_offsets().await;
    let committed = rig.kafka_committed().await;
    // Else the checks below would hold of a broker that keeps no commits.
    if committed.is_empty() {
        return Err("Kafka holds no committed offset of the group after its first batches".into());
    }
    println!(
        "during the cut: {} messages stored, Kafka's committed offsets sum to {}",
        stored.values().sum::<i64>(),
        committed.values().sum::<i64>()
    );
    tokio::time::sleep(UNREACHABLE_FOR.saturating_sub(cut.elapsed())).await;
    still_running(&mut rig.sagascope)?;
    let stored_later = rig.stored_offsets().await;
    let committed_later = rig.kafka_committed().await;
    if stored_later != stored {
        return Err(format!(
            "the store changed while sagascope could not reach it: {stored:?} became {stored_later:?}"
        ));
    }
    if committed_later != committed {
        return Err(format!(
            "Kafka offsets were committed while the store was unreachable: {committed:?} became {committed_later:?}"
        ));
    }
    let ahead: Vec<String> = committed_later
        .iter()
        .filter(|(partition, offset)| **offset > stored_later.get(*partition).copied().unwrap_or(0))
        .map(|((topic, partition), offset)| {
            format!(
                "{topic}/{partition}: committed {offset}, stored {}",
                stored_later
                    .get(&(topic.clone(), *partition))
                    .copied()
                    .unwrap_or(0)
            )
        })
        .collect();
    if !ahead.is_empty() {
        return Err(format!(
            "Kafka offsets ahead of the stored data: {}",
            ahead.join(", ")
        ));
    }
    rig.cpu_stayed_low(cpu_before, cut.elapsed())?;
    proxy.restore().await.map_err(|e| format!("{e:#}"))?;
    rig.proxy = Some(proxy);
    println!(
        "Postgres unreachable for {:.1} s ({} messages stored before the cut), reachable again",
        cut.elapsed().as_secs_f64(),
        stored_later.values().sum::<i64>()
    );
    Ok(())
}

/// Everything one test runs: the private Postgres (maybe behind the
/// proxy), Tansu, the producer and the sagascope process.
struct Rig {
    // Field order = drop order: sagascope, the proxy, the broker and the
    // database stop before their directory goes.
    sagascope: SagascopeProcess,
    proxy: Option<CuttableProxy>,
    broker: TestBroker,
    /// The test's own handle, straight to the database (never proxied).
    store: Store,
    postgres: PrivatePostgres,
    work: WorkDir,
    producer: Option<JoinHandle<anyhow::Result<Produced>>>,
    acked: Arc<AtomicUsize>,
    http: reqwest::Client,
    group: String,
    seed: u64,
    started: Instant,
}

impl Rig {
    async fn start(name: &str, proxied: bool) -> Rig {
        let started = Instant::now();
        let seed = fault_seed(name);
        let work = WorkDir::new(name);
        let postgres = tokio::task::block_in_place(|| PrivatePostgres::start(&work.path))
            .expect("the private Postgres cluster starts");
        let store = postgres
            .create_database("sagascope")
            .await
            .expect("a database on the private cluster");
        let proxy = if proxied {
            Some(
                CuttableProxy::start(postgres.address())
                    .await
                    .expect("the proxy listens"),
            )
        } else {
            None
        };
        let database_port = proxy.as_ref().map_or(postgres.port, |p| p.port);
        let topics: Vec<&str> = ALL_TOPICS.iter().chain(&DLT_TOPICS).copied().collect();
        let broker = tokio::task::block_in_place(|| {
            TestBroker::start(BrokerKind::Tansu, &topics, PARTITIONS)
        })
        .expect("Tansu starts with the simulator's topics");
        let acked = Arc::new(AtomicUsize::new(0));
        let plan = TrafficPlan {
            seed,
            messages: MESSAGES,
            per_second: PRODUCE_RATE_PER_SECOND,
        };
        let producer = tokio::spawn(produce_traffic(
            broker.bootstrap_servers().to_string(),
            plan,
            acked.clone(),
        ));
        let group = format!("{name}-{seed}");
        let mut sagascope = serve(
            broker.bootstrap_servers(),
            &postgres.url(database_port, "sagascope"),
            &group,
            &work.path.join("sagascope.log"),
        );
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("an HTTP client");
        sagascope
            .wait_for_first_batch(FIRST_BATCH_TIMEOUT)
            .await
            .unwrap_or_else(|failure| panic!("seed {seed}: {failure}"));
        Rig {
            sagascope,
            proxy,
            broker,
            store,
            postgres,
            work,
            producer: Some(producer),
            acked,
            http,
            group,
            seed,
            started,
        }
    }

    /// After the fault: everything produced is stored exactly once, and
    /// `/readyz` and the pages are back to normal. Panics with the
    /// directory of the logs (kept) on any failure.
    async fn conclude(&mut self, fault: Result<(), String>) {
        let outcome = match fault {
            Ok(()) => self.resumed_and_complete().await,
            Err(failure) => Err(failure),
        };
        if let Err(failure) = outcome {
            self.work.keep = true;
            panic!(
                "seed {}: {failure}\n{}\nsagascope's and Postgres' logs are kept in {}",
                self.seed,
                self.sagascope.log_tail(),
                self.work.path.display()
            );
        }
        println!("done in {:.1} s", self.started.elapsed().as_secs_f64());
        self.store.close().await;
    }

    async fn resumed_and_complete(&mut self) -> Result<(), String> {
        let producer = self.producer.take().expect("one conclusion");
        let produced = tokio::time::timeout(Duration::from_secs(180), producer)
            .await
            .map_err(|_| "producing took over 3 minutes".to_string())?
            .expect("the producer task does not panic")
            .map_err(|error| format!("producing failed: {error:#}"))?;
        let finished = Instant::now();
        self.sagascope
            .wait_until_consumed(&self.store, &self.group, &produced.ends, CATCH_UP_TIMEOUT)
            .await?;
        let caught_up = finished.elapsed();
        self.back_to_normal().await?;
        let stored = stored_coordinates(&self.store).await;
        let offsets = stored_offsets(&self.store, &self.group).await;
        if let Some(failure) = exactly_once(&produced, &stored, &offsets) {
            return Err(failure);
        }
        let committed = self.kafka_committed().await;
        let beyond: Vec<_> = committed
            .iter()
            .filter(|(partition, offset)| {
                **offset > produced.ends.get(*partition).copied().unwrap_or(0)
            })
            .collect();
        if !beyond.is_empty() {
            return Err(format!("Kafka offsets committed past the end: {beyond:?}"));
        }
        println!(
            "{} messages produced ({} stored as rows: {} events, {} ingest errors, {} dead letters), each stored once; caught up {:.1} s after the producer finished",
            produced.len(),
            produced.stored.len(),
            stored.events,
            stored.ingest_errors,
            stored.dead_letters,
            caught_up.as_secs_f64()
        );
        Ok(())
    }

    async fn consumed(&self) -> i64 {
        consumed(&self.store, &self.group).await
    }

    fn cpu_seconds(&self) -> f64 {
        let pid = pid_of_group(&self.group).expect("the serve process of the test's group");
        cpu_seconds(pid)
    }

    /// Waiting out an outage must not spin: at most
    /// [`MAX_CPU_SHARE_WHILE_DOWN`] of a core over `elapsed`.
    fn cpu_stayed_low(&self, before: f64, elapsed: Duration) -> Result<(), String> {
        let used = self.cpu_seconds() - before;
        let share = used / elapsed.as_secs_f64();
        println!(
            "CPU while the store was down: {used:.2} s in {:.1} s ({:.0} % of a core)",
            elapsed.as_secs_f64(),
            share * 100.0
        );
        if share > MAX_CPU_SHARE_WHILE_DOWN {
            return Err(format!(
                "sagascope used {:.0} % of a core while the store was down (a hot retry loop?)",
                share * 100.0
            ));
        }
        Ok(())
    }

    async fn stored_offsets(&self) -> BTreeMap<(String, i32), i64> {
        stored_offsets(&self.store, &self.group).await
    }

    /// What Kafka holds as the group's committed offsets (OffsetFetch,
    /// without joining the group), partitions without a commit left out.
    async fn kafka_committed(&self) -> BTreeMap<(String, i32), i64> {
        let bootstrap = self.broker.bootstrap_servers().to_string();
        let group = self.group.clone();
        tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("group.id", &group)
                .set("enable.auto.commit", "false")
                .create()
                .expect("an offset-fetch client");
            let mut partitions = TopicPartitionList::new();
            for topic in ALL_TOPICS.iter().chain(&DLT_TOPICS) {
                for partition in 0..PARTITIONS {
                    partitions.add_partition(topic, partition);
                }
            }
            consumer
                .committed_offsets(partitions, Duration::from_secs(10))
                .expect("the broker answers OffsetFetch")
                .elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(offset) => {
                        Some(((e.topic().to_string(), e.partition()), offset))
                    }
                    _ => None,
                })
                .collect()
        })
        .await
        .expect("the offset-fetch task")
    }

    /// Enough stored to interrupt real work, while the producer still adds
    /// messages (else the fault would only meet an idle consumer).
    async fn wait_until_mid_ingest(&mut self) -> Result<(), String> {
        self.wait_until_consumed_at_least(CONSUMED_BEFORE_FAULT)
            .await?;
        let consumed = self.consumed().await;
        let acked = self.acked.load(Ordering::Relaxed);
        if self.producer.as_ref().is_none_or(|p| p.is_finished()) || acked >= MESSAGES {
            return Err(format!(
                "the producer finished before the fault ({acked} acked, {consumed} consumed): the fault would prove nothing"
            ));
        }
        println!("mid-ingest: {consumed} consumed, {acked} produced");
        Ok(())
    }

    async fn wait_until_consumed_at_least(&mut self, count: i64) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if self.consumed().await >= count {
                return Ok(());
            }
            still_running(&mut self.sagascope)?;
            if Instant::now() >= deadline {
                return Err(format!(
                    "fewer than {count} messages consumed after 90 s ({})",
                    self.consumed().await
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// While the database is away: `/readyz` answers 503 and says since
    /// when and why, the pages show the banner and their waiting state
    /// (not an error) without waiting for the pool, and the API answers
    /// 503 with the same words. The process stays up throughout.
    async fn outage_is_explained(&mut self, fault_at: DateTime<Utc>) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let ready = loop {
            let (status, body) = self.get_json("/readyz").await?;
            if status == 503 && body["store"]["status"] == "unavailable" {
                break body;
            }
            still_running(&mut self.sagascope)?;
            if Instant::now() >= deadline {
                return Err(format!(
                    "/readyz did not report the store down within 60 s: {status} {body}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let message = ready["store"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let since = outage_start(&message)
            .ok_or_else(|| format!("/readyz's store message is not \"store unavailable since <RFC 3339>: <error>\": {ready}"))?;
        // A second of slack for the clocks' rounding (whole seconds).
        if since < fault_at - chrono::Duration::seconds(1) || since > Utc::now() {
            return Err(format!(
                "/readyz dates the outage at {since}, the fault was at {fault_at}: {ready}"
            ));
        }
        if ready["reasons"][0].as_str() != Some(message.as_str()) {
            return Err(format!(
                "/readyz's first reason is not the store's: {ready}"
            ));
        }
        println!("/readyz while down: {message}");

        for path in ["/", "/sagas"] {
            let asked = Instant::now();
            let (status, page) = self.get_text(path).await?;
            let took = asked.elapsed();
            let failures: Vec<&str> = [
                (status != 200, "status is not 200"),
                (
                    !page.contains("data-test=\"store-unavailable\""),
                    "no store-unavailable banner",
                ),
                (
                    !page.contains("Store unavailable since"),
                    "no \"Store unavailable since\"",
                ),
                (
                    !page.contains("data-test=\"store-waiting\""),
                    "no waiting state in place of the data",
                ),
                (page.contains("data-test=\"error-state\""), "an error state"),
                (took > ANSWER_WHILE_DOWN, "too slow"),
            ]
            .into_iter()
            .filter_map(|(failed, what)| failed.then_some(what))
            .collect();
            if !failures.is_empty() {
                return Err(format!(
                    "GET {path} while the store is down ({status}, {} ms): {}\n{}",
                    took.as_millis(),
                    failures.join(", "),
                    excerpt(&page)
                ));
            }
        }

        let asked = Instant::now();
        let response = self
            .http
            .get(self.sagascope.url("/api/v1/sagas"))
            .send()
            .await
            .map_err(|e| format!("GET /api/v1/sagas: {e}"))?;
        let status = response.status().as_u16();
        let retry_after = response.headers().contains_key("retry-after");
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let error = body["error"].as_str().unwrap_or_default();
        if status != 503
            || !retry_after
            || outage_start(error).is_none()
            || asked.elapsed() > ANSWER_WHILE_DOWN
        {
            return Err(format!(
                "GET /api/v1/sagas while the store is down: {status} (Retry-After: {retry_after}) in {} ms: {body}",
                asked.elapsed().as_millis()
            ));
        }
        still_running(&mut self.sagascope)
    }

    /// `/readyz` ready again and the saga list shows sagas, no banner.
    async fn back_to_normal(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, body) = self.get_json("/readyz").await?;
            if status == 200 {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "/readyz not ready 60 s after the catch-up: {status} {body}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let (status, page) = self.get_text("/sagas").await?;
        if status != 200
            || page.contains("data-test=\"store-unavailable\"")
            || page.contains("data-test=\"store-waiting\"")
            || !page.contains("data-test=\"saga-link\"")
        {
            return Err(format!(
                "GET /sagas after the outage: {status}, expected sagas and no banner\n{}",
                excerpt(&page)
            ));
        }
        Ok(())
    }

    async fn get_json(&self, path: &str) -> Result<(u16, serde_json::Value), String> {
        let response = self
            .http
            .get(self.sagascope.url(path))
            .send()
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .json()
            .await
            .map_err(|e| format!("GET {path}: not JSON: {e}"))?;
        Ok((status, body))
    }

    async fn get_text(&self, path: &str) -> Result<(u16, String), String> {
        let response = self
            .http
            .get(self.sagascope.url(path))
            .send()
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        Ok((status, text))
    }
}

/// The start of an outage from "store unavailable since <RFC 3339>: …".
fn outage_start(message: &str) -> Option<DateTime<Utc>> {
    let rest = message.strip_prefix("store unavailable since ")?;
    let (since, error) = rest.split_once(": ")?;
    if error.trim().is_empty() {
        return None;
    }
    DateTime::parse_from_rfc3339(since).ok().map(Into::into)
}

/// The part of a page around `<main`, for failure messages.
fn excerpt(page: &str) -> String {
    let at = page.find("<main").unwrap_or(0);
    page[at..].chars().take(1500).collect()
}

/// A Postgres 15 cluster of this test's own: initdb in its directory, a
/// free port, trust authentication. The server refuses to run as root, so
/// as root it runs as `postgres` (`runuser`) in a directory that user owns.
struct PrivatePostgres {
    dir: PathBuf,
    port: u16,
    as_postgres_user: bool,
}

impl PrivatePostgres {
    fn start(work: &Path) -> anyhow::Result<PrivatePostgres> {
        let dir = work.join("postgres");
        std::fs::create_dir_all(&dir)?;
        let as_postgres_user = std::fs::metadata("/proc/self")?.uid() == 0;
        if as_postgres_user {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()?;
            anyhow::ensure!(
                status.success(),
                "chown postgres {}: {status}",
                dir.display()
            );
        }
        let postgres = PrivatePostgres {
            dir,
            port: free_port(),
            as_postgres_user,
        };
        let data = postgres.data();
        postgres.run(
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        postgres.start_server()?;
        Ok(postgres)
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn url(&self, port: u16, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/{database}")
    }

    /// Its own socket directory and TCP on 127.0.0.1 only; the server's
    /// output goes to `server.log` beside the data.
    fn start_server(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        self.pg_ctl(&["start", "-w", "-t", "60", "-o", &options])
    }

    /// `pg_ctl -D <data> -l <server.log> ARGS` (restart reuses the start's
    /// options).
    fn pg_ctl(&self, args: &[&str]) -> anyhow::Result<()> {
        let data = self.data();
        let log = self.dir.join("server.log").display().to_string();
        let mut all = vec!["-D", data.as_str(), "-l", log.as_str()];
        all.extend_from_slice(args);
        self.run("pg_ctl", &all)
    }

    fn run(&self, program: &str, args: &[&str]) -> anyhow::Result<()> {
        let bin = std::env::var("SAGASCOPE_PG_BIN").unwrap_or_else(|_| DEFAULT_PG_BIN.into());
        let program_path = Path::new(&bin).join(program);
        let mut command = if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program_path);
            command
        } else {
            Command::new(&program_path)
        };
        // Into a file, not a pipe: a server started by pg_ctl must not
        // inherit a pipe this test waits to see closed.
        let output_path = self.dir.join(format!("{program}.out"));
        let output = File::create(&output_path)?;
        let status = command
            .args(args)
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            .status()
            .with_context(|| format!("cannot run {}", program_path.display()))?;
        anyhow::ensure!(
            status.success(),
            "{program} {args:?}: {status}\n{}",
            std::fs::read_to_string(&output_path).unwrap_or_default()
        );
        Ok(())
    }

    /// Creates `name` and returns a migrated store on it (the test's
    /// handle; sagascope migrates again, finding nothing to do).
    async fn create_database(&self, name: &str) -> anyhow::Result<Store> {
        let admin = Store::connect(&self.url(self.port, "postgres")).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(admin.pool())
            .await?;
        admin.close().await;
        let store = Store::connect(&self.url(self.port, name)).await?;
        store.migrate().await?;
        Ok(store)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["stop", "-m", "immediate", "-w"]);
    }
}

/// A TCP proxy in front of the database that can be cut: live connections
/// closed, new ones refused (its port closed), until restored on the same
/// port.
struct CuttableProxy {
    port: u16,
    cut: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl CuttableProxy {
    async fn start(upstream: SocketAddr) -> anyhow::Result<CuttableProxy> {
        let port = free_port();
        let listener = listen(port)?;
        let (cut, cut_rx) = watch::channel(false);
        let task = tokio::spawn(proxy(listener, port, upstream, cut_rx));
        Ok(CuttableProxy { port, cut, task })
    }

    fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Returns once a connection attempt is refused.
    async fn cut(&self) -> anyhow::Result<()> {
        self.cut.send_replace(true);
        self.wait_until(false).await
    }

    /// Returns once a connection attempt succeeds.
    async fn restore(&self) -> anyhow::Result<()> {
        self.cut.send_replace(false);
        self.wait_until(true).await
    }

    async fn wait_until(&self, accepting: bool) -> anyhow::Result<()> {
        let address = self.address();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let accepts = tokio::task::spawn_blocking(move || {
                StdTcpStream::connect_timeout(&address, Duration::from_millis(500)).is_ok()
            })
            .await?;
            if accepts == accepting {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the proxy's port still {} after 10 s",
                if accepting { "refuses" } else { "accepts" }
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reusable address: the port is listened on again after a cut.
fn listen(port: u16) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    socket.listen(128)
}

async fn proxy(
    listener: TcpListener,
    port: u16,
    upstream: SocketAddr,
    mut cut: watch::Receiver<bool>,
) {
    let mut listener = Some(listener);
    loop {
        let open = match listener.take() {
            Some(open) => open,
            None => match listen(port) {
                Ok(open) => open,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let mut stop = cut.clone();
        loop {
            tokio::select! {
                accepted = open.accept() => if let Ok((client, _)) = accepted {
                    tokio::spawn(pipe(client, upstream, cut.clone()));
                },
                _ = stop.wait_for(|cut| *cut) => break,
            }
        }
        drop(open);
        if cut.wait_for(|cut| !*cut).await.is_err() {
            return;
        }
    }
}

/// One client connection to the database, dropped (both sides closed) at
/// a cut.
async fn pipe(mut client: TcpStream, upstream: SocketAddr, mut cut: watch::Receiver<bool>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = cut.wait_for(|cut| *cut) => {}
    }
}

/// `sagascope serve` on the simulator's topics (the shared set-up), pages
/// and API open to read without signing in (they are read over plain HTTP).
fn serve(bootstrap: &str, database_url: &str, group: &str, log: &Path) -> SagascopeProcess {
    SagascopeProcess::serve_simulated(
        &sagascope_bin(env!("CARGO_BIN_EXE_sagascope")),
        bootstrap,
        database_url,
        group,
        log,
        &["--anonymous-viewer"],
    )
}

fn still_running(process: &mut SagascopeProcess) -> Result<(), String> {
    match process.exited() {
        None => Ok(()),
        Some(status) => Err(format!("sagascope exited by itself ({status})")),
    }
}

/// The serve process of consumer group `group` (unique per test): its
/// command line names it.
fn pid_of_group(group: &str) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.windows(2)
                .any(|pair| pair[0] == b"--group-id" && pair[1] == group.as_bytes())
                .then_some(pid)
        })
}

/// User + system CPU time of a process so far (/proc/PID/stat).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    let output = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf CLK_TCK");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("CLK_TCK is a number")
}
