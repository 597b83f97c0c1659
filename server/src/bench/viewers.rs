//! `sagascope bench viewers`: many people watching while the ingest runs.
//! The server is a separate process — this binary's `serve` (or
//! `--server-binary`), so its RSS is its own — consuming from a mock
//! cluster in this process, into which the demo's traffic is produced at
//! `--rate` events/s. Two phases of `--seconds` each, in one run:
//!
//! 1. **baseline**: the ingest alone;
//! 2. **watched**: the same ingest while `--viewers` SSE viewers follow
//!    the live stream and `--api-clients` request what the pages call
//!    (`viewer_api_clients.rs`).
//!
//! What each viewer must see (`viewer_streams.rs`). A whole-stream viewer
//! (the saga list, ingest errors and trace pages' stream) must receive an
//! `event` message for every event produced during the watched phase, by
//! Kafka coordinates (from the delivery reports). A saga viewer (the saga
//! page's `?saga_id=` stream) follows a saga planned before it connected
//! and produced during the phase: it must receive each of that saga's
//! events stored under its id. Every viewer is subscribed (its `hello`
//! arrived) before the phase produces anything. An event not there after
//! the drain is a miss; a miss by a viewer that was never sent `lagged` is
//! silent. Where the server numbers its messages (SSE `id:`), a gap in a
//! whole-stream viewer's numbers is also counted, told (after `lagged`)
//! or silent.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rdkafka::producer::{DeliveryFuture, FutureProducer};
use sagascope_simulator::{MockKafka, SagaKind, SagaPlan, Traffic, ALL_TOPICS, DEMO_RULES};
use tokio::sync::mpsc;

use super::live_stream::{self, Coords};
use super::load_average::{self, LoadAverage};
use super::viewer_api_clients::{self, ApiLog, KnownSagas};
use super::viewer_streams::{self, Follows, SharedLog};
use super::viewers_report::{judge, report, ReportInput};
use super::{
    count_rows, fresh_sqlite_url, group_digits, open_store, per_second, remove_files, reset_tables,
    traffic,
};

/// The header the server, in proxy mode, takes the user name from: every
/// viewer and API client is its own user, as people are (the server
/// allows 16 streams per user).
pub const USER_HEADER: &str = "x-sagascope-bench-user";
/// The bound on the server's peak RSS.
pub(super) const TARGET_RSS_BYTES: u64 = 512 * 1024 * 1024;
/// The ingest keeps its rate when it stores this share of the offered one.
pub(super) const RATE_KEPT: f64 = 0.97;

#[derive(Debug, Args)]
pub struct ViewersArgs {
    /// postgres://… or sqlite://PATH; default: a fresh SQLite file in the
    /// temporary directory. It must hold no earlier Kafka run's events
    /// (give --reset).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Empty every sagascope table of the database first.
    #[arg(long)]
    pub reset: bool,
    /// SSE viewers in the watched phase.
    #[arg(long, default_value_t = 500)]
    pub viewers: usize,
    /// Of the viewers, how many follow the whole stream (the saga list's);
    /// the others each follow one saga (the saga page's stream).
    #[arg(long, default_value_t = 25)]
    pub whole_stream_viewers: usize,
    /// Concurrent API clients in the watched phase.
    #[arg(long, default_value_t = 50)]
    pub api_clients: usize,
    /// Pause of an API client after each answer, in milliseconds (a page
    /// poll or a click; 0 = back to back).
    #[arg(long, default_value_t = 1000)]
    pub api_think_ms: u64,
    /// Offered ingest rate, events/s.
    #[arg(long, default_value_t = 5_000)]
    pub rate: u64,
    /// Seconds of each phase.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Seconds to wait after the watched phase for the last events to be
    /// stored and reach the viewers.
    #[arg(long, default_value_t = 30)]
    pub drain_seconds: u64,
    #[arg(long, default_value_t = 3)]
    pub partitions: i32,
    /// Producer linger in milliseconds (the simulator's).
    #[arg(long, default_value_t = 5)]
    pub producer_linger_ms: u32,
    /// The sagascope binary to run as the server (`serve`); default: this
    /// one. Another build, for a before/after comparison.
    #[arg(long)]
    pub server_binary: Option<PathBuf>,
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// The server process; killed when dropped.
struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Server {
    fn start(args: &ViewersArgs, url: &str, brokers: &str, rules: &Path) -> anyhow::Result<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let binary = match &args.server_binary {
            Some(path) => path.clone(),
            None => std::env::current_exe().context("cannot find this binary")?,
        };
        let log = std::env::temp_dir().join(format!(
            "sagascope-bench-viewers-{}.log",
            std::process::id()
        ));
        let output = std::fs::File::create(&log)?;
        let secret: String = (0..32)
            .map(|_| format!("{:02x}", rand::random::<u8>()))
            .collect();
        let child = Command::new(&binary)
            .arg("serve")
            .args(["--brokers", brokers])
            .args(["--topics", &ALL_TOPICS.join(",")])
            .args(["--group-id", "sagascope-bench-viewers"])
            .args(["--database-url", url])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--site-root")
            .arg(&args.site_root)
            .arg("--rules")
            .arg(rules)
            .args(["--auth-mode", "proxy"])
            .args(["--auth-proxy-header", USER_HEADER])
            .args(["--auth-trusted-proxies", "127.0.0.1"])
            .args(["--csrf-secret", &secret])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        Ok(Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A `/proc/PID/status` figure in bytes (`VmRSS`, `VmHWM`).
    fn status_bytes(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status
            .lines()
            .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Events the ingest has stored (`/readyz`), if it answers.
    async fn stored_events(&self, client: &reqwest::Client) -> Option<u64> {
        let body: serde_json::Value = client
            .get(format!("{}/readyz", self.base))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        body["consumer"]["events"].as_u64()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Samples the server's RSS every second; keeps the maximum since the
/// last restart.
struct ServerRss {
    max: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl ServerRss {
    fn start(pid: u32) -> ServerRss {
        let max = Arc::new(AtomicU64::new(0));
        let seen = max.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .ok()
                    .and_then(|s| {
                        s.lines()
                            .find(|l| l.starts_with("VmRSS:"))
                            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                    });
                if let Some(kb) = rss {
                    seen.fetch_max(kb * 1024, Ordering::Relaxed);
                }
            }
        });
        ServerRss { max, task }
    }

    /// The peak since the last call.
    fn take(&self) -> u64 {
        self.max.swap(0, Ordering::Relaxed)
    }
}

impl Drop for ServerRss {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why a produced event is tracked.
#[derive(Clone, Copy)]
enum Tag {
    /// Warm-up, baseline, or not an event.
    Untracked,
    /// An event of the watched phase; of saga viewer `n`'s saga, if any.
    Watched(Option<usize>),
}

/// A produced message awaiting its delivery report.
struct Flight {
    tag: Tag,
    topic: &'static str,
    delivery: DeliveryFuture,
}

/// Coordinates of the watched phase's events, from their delivery reports.
#[derive(Default)]
struct Acks {
    watched: Vec<Coords>,
    by_saga_viewer: Vec<Vec<Coords>>,
    settled: u64,
    failed: u64,
}

/// A saga viewer's saga: produced from its release time on, one message
/// per tick.
struct WatchedSaga {
    saga_id: String,
    traffic: Traffic,
    next: usize,
    release: Duration,
}

struct Producing {
    producer: FutureProducer,
    source: traffic::TrafficSource,
    rng: StdRng,
    flights: mpsc::UnboundedSender<Flight>,
    sent: u64,
    acks: Arc<Mutex<Acks>>,
    /// Events produced, all phases.
    events: u64,
}

impl Producing {
    async fn send(
        &mut self,
        message: &sagascope_simulator::RenderedMessage,
        tag: Tag,
    ) -> anyhow::Result<()> {
        let delivery = traffic::send(&self.producer, message).await?;
        self.sent += 1;
        let _ = self.flights.send(Flight {
            tag,
            topic: message.topic,
            delivery,
        });
        Ok(())
    }

    /// The traffic's next message; true if it was an event.
    async fn send_next(&mut self, watched: bool) -> anyhow::Result<bool> {
        let message = self.source.next_at(chrono::Utc::now());
        let tag = match (watched, message.is_event) {
            (true, true) => Tag::Watched(None),
            _ => Tag::Untracked,
        };
        self.send(&message.message, tag).await?;
        self.events += u64::from(message.is_event);
        Ok(message.is_event)
    }

    /// `rate` events/s for `duration`, the watched sagas' messages among
    /// them once released; returns the events produced and the time taken.
    async fn run_for(
        &mut self,
        rate: u64,
        duration: Duration,
        watched: bool,
        sagas: &mut [WatchedSaga],
    ) -> anyhow::Result<(u64, Duration)> {
        let started = Instant::now();
        let mut produced = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        let mut last_print = Instant::now();
        while started.elapsed() < duration {
            tick.tick().await;
            for (viewer, saga) in sagas.iter_mut().enumerate() {
                if saga.release > started.elapsed() || saga.next >= saga.traffic.messages.len() {
                    continue;
                }
                let is_event = saga.traffic.messages[saga.next].is_event();
                let message = saga
                    .traffic
                    .render(saga.next, chrono::Utc::now(), &mut self.rng);
                saga.next += 1;
                let tag = if is_event {
                    Tag::Watched(Some(viewer))
                } else {
                    Tag::Untracked
                };
                self.send(&message, tag).await?;
                produced += u64::from(is_event);
                self.events += u64::from(is_event);
            }
            let due = (rate as f64 * started.elapsed().as_secs_f64()) as u64;
            while produced < due {
                produced += u64::from(self.send_next(watched).await?);
            }
            if last_print.elapsed() >= Duration::from_secs(10) {
                last_print = Instant::now();
                println!(
                    "  {:.0} s: {} events produced ({})",
                    started.elapsed().as_secs_f64(),
                    group_digits(produced),
                    load_average::now_text()
                );
            }
        }
        Ok((produced, started.elapsed()))
    }

    /// Waits until every message sent has its delivery report (the
    /// producer's message timeout is 60 s).
    async fn settle(&self) {
        let started = Instant::now();
        while lock(&self.acks).settled < self.sent && started.elapsed() < Duration::from_secs(70) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn collect_deliveries(
    mut flights: mpsc::UnboundedReceiver<Flight>,
    acks: Arc<Mutex<Acks>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(flight) = flights.recv().await {
            let outcome = flight.delivery.await;
            let mut acks = lock(&acks);
            match (outcome, flight.tag) {
                (Ok(Ok(delivery)), Tag::Watched(saga)) => {
                    let topic = live_stream::topic_index(flight.topic);
                    if let Some(coords) = topic.map(|t| (t, delivery.partition, delivery.offset)) {
                        acks.watched.push(coords);
                        if let Some(n) = saga {
                            if acks.by_saga_viewer.len() <= n {
                                acks.by_saga_viewer.resize(n + 1, Vec::new());
                            }
                            acks.by_saga_viewer[n].push(coords);
                        }
                    }
                }
                (Ok(Ok(_)), Tag::Untracked) => {}
                _ => acks.failed += 1,
            }
            acks.settled += 1;
        }
    })
}

/// What one phase measured.
pub(super) struct Phase {
    pub(super) produced: u64,
    pub(super) elapsed: Duration,
    pub(super) stored: u64,
    /// Events produced but not yet stored when production stopped.
    pub(super) backlog_at_end: u64,
    /// From the end of production until everything was stored.
    pub(super) caught_up_after: Option<Duration>,
    pub(super) peak_rss: u64,
    pub(super) load: Option<LoadAverage>,
}

impl Phase {
    pub(super) fn offered_rate(&self) -> f64 {
        per_second(self.produced, self.elapsed)
    }

    pub(super) fn stored_rate(&self) -> f64 {
        per_second(self.stored, self.elapsed)
    }

    pub(super) fn kept(&self) -> bool {
        self.stored_rate() >= self.offered_rate() * RATE_KEPT
    }
}

/// Waits until the server has stored every event produced so far, or
/// `limit`; how long it took, if it did.
async fn caught_up(
    server: &Server,
    client: &reqwest::Client,
    produced: u64,
    limit: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if server.stored_events(client).await.unwrap_or(0) >= produced {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// One phase: `rate` for `duration` (the watched sagas released over it),
/// then the ingest's catch-up waited for, at most `drain`.
#[allow(clippy::too_many_arguments)]
async fn run_phase(
    producing: &mut Producing,
    server: &Server,
    client: &reqwest::Client,
    rss: &ServerRss,
    duration: Duration,
    drain: Duration,
    rate: u64,
    watched: bool,
    sagas: &mut [WatchedSaga],
) -> anyhow::Result<Phase> {
    rss.take();
    let before = server
        .stored_events(client)
        .await
        .context("the server stopped answering")?;
    let (produced, elapsed) = producing.run_for(rate, duration, watched, sagas).await?;
    let after = server.stored_events(client).await.unwrap_or(before);
    producing.settle().await;
    let caught_up_after = caught_up(server, client, producing.events, drain).await;
    Ok(Phase {
        produced,
        elapsed,
        stored: after - before,
        backlog_at_end: producing.events.saturating_sub(after),
        caught_up_after,
        peak_rss: rss.take(),
        load: LoadAverage::now(),
    })
}

/// Sagas for the saga viewers, released evenly over the first 80 % of
/// the phase so each is produced while its viewer is subscribed.
fn plan_sagas(count: usize, duration: Duration, rng: &mut StdRng) -> Vec<WatchedSaga> {
    (0..count)
        .map(|i| {
            let plan = SagaPlan::random(SagaKind::random(rng), rng);
            WatchedSaga {
                saga_id: plan.saga_id.clone(),
                traffic: plan.into(),
                next: 0,
                release: duration.mul_f64(0.8 * i as f64 / count.max(1) as f64),
            }
        })
        .collect()
}

/// What each viewer must see: the watched phase's events stored when
/// the phase's ingest was over, all of them for a whole-stream viewer, its
/// saga's (stored under the planned id) for a saga viewer.
struct Expected {
    whole: Vec<Coords>,
    /// By saga viewer, in the order of their sagas.
    per_saga: Vec<Vec<Coords>>,
    /// Produced in the phase, never stored (so never broadcast).
    not_stored: u64,
    /// Of the watched sagas' events, stored under another saga id
    /// (merged): no saga page filters on that.
    elsewhere: u64,
}

impl Expected {
    fn of(&self, viewer: usize, whole_viewers: usize) -> &[Coords] {
        match viewer.checked_sub(whole_viewers) {
            None => &self.whole,
            Some(saga) => self.per_saga.get(saga).map_or(&[][..], Vec::as_slice),
        }
    }
}

/// Where each stored event went: its saga id by Kafka coordinates, read
/// from the database. Committed rows were broadcast at their commit, so
/// every subscribed viewer must get them.
async fn stored_sagas(url: &str) -> anyhow::Result<HashMap<Coords, String>> {
    let store = open_store(url).await?;
    let rows: Vec<(String, String, i64, i64)> =
        sqlx::query_as("SELECT saga_id, topic, kafka_partition, kafka_offset FROM events")
            .fetch_all(store.pool())
            .await
            .context("cannot read the stored events")?;
    store.pool().close().await;
    Ok(rows
        .into_iter()
        .filter_map(|(saga, topic, partition, offset)| {
            let coords = (
                live_stream::topic_index(&topic)?,
                i32::try_from(partition).ok()?,
                offset,
            );
            Some((coords, saga))
        })
        .collect())
}

fn expected(acks: &Acks, sagas: &[WatchedSaga], stored: &HashMap<Coords, String>) -> Expected {
    let whole: Vec<Coords> = acks
        .watched
        .iter()
        .copied()
        .filter(|c| stored.contains_key(c))
        .collect();
    let mut elsewhere = 0;
    let per_saga = sagas
        .iter()
        .enumerate()
        .map(|(i, saga)| {
            let planned = acks.by_saga_viewer.get(i).map_or(&[][..], Vec::as_slice);
            planned
                .iter()
                .copied()
                .filter(|c| match stored.get(c) {
                    Some(id) if *id == saga.saga_id => true,
                    Some(_) => {
                        elsewhere += 1;
                        false
                    }
                    None => false,
                })
                .collect()
        })
        .collect();
    Expected {
        not_stored: (acks.watched.len() - whole.len()) as u64,
        whole,
        per_saga,
        elsewhere,
    }
}

/// Whether every viewer has everything it must see (the drain's end).
fn all_seen(logs: &[(Follows, SharedLog)], whole_viewers: usize, expected: &Expected) -> bool {
    logs.iter().enumerate().all(|(i, (_, log))| {
        let log = lock(log);
        log.error.is_some()
            || expected
                .of(i, whole_viewers)
                .iter()
                .all(|c| log.events.contains(*c))
    })
}

pub async fn run(args: ViewersArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.whole_stream_viewers <= args.viewers,
        "--whole-stream-viewers cannot exceed --viewers"
    );
    anyhow::ensure!(args.rate > 0, "--rate must be above 0");
    let (url, scratch_files) = match &args.database_url {
        Some(url) => (url.clone(), Vec::new()),
        None => fresh_sqlite_url("viewers"),
    };
    {
        let store = open_store(&url).await?;
        if args.reset {
            reset_tables(&store).await?;
        }
        anyhow::ensure!(
            count_rows(&store, "consumer_offsets").await? == 0,
            "the database holds events of an earlier Kafka run, whose ids a new mock cluster \
             would repeat: give --reset, or use a scratch database"
        );
        store.pool().close().await;
    }
    let kafka = MockKafka::start(1, &ALL_TOPICS, args.partitions)
        .context("cannot start the mock Kafka cluster")?;
    let rules = std::env::temp_dir().join(format!(
        "sagascope-bench-viewers-rules-{}.toml",
        std::process::id()
    ));
    std::fs::write(&rules, DEMO_RULES)?;
    let mut server = Server::start(&args, &url, kafka.bootstrap_servers(), &rules)?;
    println!(
        "server: pid {}, {}, log {}",
        server.pid(),
        server.base,
        server.log.display()
    );
    let outcome = measure(&args, &mut server, &url, kafka.bootstrap_servers()).await;
    drop(server);
    drop(kafka);
    remove_files(&scratch_files);
    let _ = std::fs::remove_file(&rules);
    outcome
}

async fn measure(
    args: &ViewersArgs,
    server: &mut Server,
    url: &str,
    brokers: &str,
) -> anyhow::Result<()> {
    // A separate pool per role: the readiness polls must not queue behind
    // hundreds of streams.
    let client = reqwest::Client::new();
    let started = Instant::now();
    while server.stored_events(&client).await.is_none() {
        if let Some(status) = server.exited() {
            anyhow::bail!(
                "the server exited ({status}) before answering; see {}",
                server.log.display()
            );
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "the server did not answer /readyz within 120 s; see {}",
            server.log.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rss = ServerRss::start(server.pid());
    let rss_at_start = server.status_bytes("VmRSS").unwrap_or(0);

    let acks = Arc::new(Mutex::new(Acks::default()));
    let (flights_tx, flights_rx) = mpsc::unbounded_channel();
    let collector = collect_deliveries(flights_rx, acks.clone());
    let mut producing = Producing {
        producer: traffic::producer(brokers, args.producer_linger_ms)?,
        source: traffic::TrafficSource::new(args.seed, 200),
        rng: StdRng::seed_from_u64(args.seed ^ 0x5eed),
        flights: flights_tx,
        sent: 0,
        acks: acks.clone(),
        events: 0,
    };
    let known: KnownSagas = Arc::default();
    let duration = Duration::from_secs(args.seconds.max(1));
    let drain = Duration::from_secs(args.drain_seconds);

    // Warm-up: a trickle until the ingest has joined its group.
    println!("waiting for the ingest to join its consumer group …");
    let warmup = Instant::now();
    while server.stored_events(&client).await.unwrap_or(0) == 0 {
        anyhow::ensure!(
            warmup.elapsed() < Duration::from_secs(90),
            "nothing was stored within 90 s; see {}",
            server.log.display()
        );
        producing.send_next(false).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    producing.settle().await;
    caught_up(server, &client, producing.events, drain).await;
    println!("ingest live after {:.1} s", warmup.elapsed().as_secs_f64());

    println!(
        "phase 1/2, baseline: {} events/s for {} s, no viewers ({}) …",
        group_digits(args.rate),
        duration.as_secs(),
        load_average::now_text()
    );
    let baseline = run_phase(
        &mut producing,
        server,
        &client,
        &rss,
        duration,
        drain,
        args.rate,
        false,
        &mut [],
    )
    .await?;

    // The viewers, each subscribed before anything it must see is produced.
    let saga_viewers = args.viewers - args.whole_stream_viewers;
    let mut sagas = plan_sagas(saga_viewers, duration, &mut producing.rng);
    let stop_viewers = Arc::new(AtomicBool::new(false));
    let viewer_client = reqwest::Client::new();
    let mut logs: Vec<(Follows, SharedLog)> = Vec::with_capacity(args.viewers);
    let mut viewer_tasks = Vec::with_capacity(args.viewers);
    let follows_all = (0..args.whole_stream_viewers).map(|_| Follows::Everything);
    let follows_one = sagas.iter().map(|s| Follows::Saga(s.saga_id.clone()));
    for (i, follows) in follows_all.chain(follows_one).enumerate() {
        let log: SharedLog = Arc::default();
        viewer_tasks.push(tokio::spawn(viewer_streams::follow(
            viewer_client.clone(),
            server.base.clone(),
            format!("viewer-{i}"),
            follows.clone(),
            log.clone(),
            stop_viewers.clone(),
        )));
        logs.push((follows, log));
    }
    println!("connecting {} viewers …", args.viewers);
    let connecting = Instant::now();
    loop {
        let pending = logs
            .iter()
            .filter(|(_, l)| {
                let l = lock(l);
                !l.hello && l.error.is_none()
            })
            .count();
        if pending == 0 {
            break;
        }
        anyhow::ensure!(
            connecting.elapsed() < Duration::from_secs(60),
            "{pending} viewers had no `hello` within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = logs.iter().filter(|(_, l)| !lock(l).hello).count();
    println!(
        "{} viewers subscribed in {:.1} s ({refused} refused)",
        args.viewers - refused,
        connecting.elapsed().as_secs_f64()
    );

    let api_log = Arc::new(Mutex::new(ApiLog::default()));
    let stop_api = Arc::new(AtomicBool::new(false));
    let api_client = reqwest::Client::new();
    let api_tasks: Vec<_> = (0..args.api_clients)
        .map(|i| {
            tokio::spawn(viewer_api_clients::client_loop(
                api_client.clone(),
                server.base.clone(),
                format!("api-{i}"),
                args.seed.wrapping_add(i as u64),
                Duration::from_millis(args.api_think_ms),
                known.clone(),
                api_log.clone(),
                stop_api.clone(),
            ))
        })
        .collect();

    println!(
        "phase 2/2, watched: {} events/s for {} s, {} viewers ({} whole stream, {} one saga \
         each), {} API clients ({}) …",
        group_digits(args.rate),
        duration.as_secs(),
        args.viewers,
        args.whole_stream_viewers,
        saga_viewers,
        args.api_clients,
        load_average::now_text()
    );
    let api_started = Instant::now();
    let watched = run_phase(
        &mut producing,
        server,
        &client,
        &rss,
        duration,
        drain,
        args.rate,
        true,
        &mut sagas,
    )
    .await?;
    stop_api.store(true, Ordering::Relaxed);
    for task in api_tasks {
        let _ = task.await;
    }
    let api_elapsed = api_started.elapsed();
    // What each viewer must see: what is stored now (the phase's ingest
    // has caught up, or its drain ran out).
    let acks = {
        let Producing { flights, .. } = producing;
        drop(flights);
        let _ = collector.await;
        std::mem::take(&mut *lock(&acks))
    };
    let expected = expected(&acks, &sagas, &stored_sagas(url).await?);
    // The last of it to the viewers.
    let draining = Instant::now();
    while draining.elapsed() < drain && !all_seen(&logs, args.whole_stream_viewers, &expected) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let viewers_drained = all_seen(&logs, args.whole_stream_viewers, &expected);
    let hwm = server.status_bytes("VmHWM").unwrap_or(0);
    let server_exit = server.exited();
    stop_viewers.store(true, Ordering::Relaxed);
    for task in viewer_tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    let mut whole = Vec::new();
    let mut per_saga = Vec::new();
    for (i, (follows, log)) in logs.iter().enumerate() {
        let verdict = judge(
            &lock(log),
            expected.of(i, args.whole_stream_viewers).iter().copied(),
        );
        match follows {
            Follows::Everything => whole.push(verdict),
            Follows::Saga(_) => per_saga.push(verdict),
        }
    }
    let first_error = logs.iter().find_map(|(_, l)| lock(l).error.clone());
    let sequenced = logs.iter().any(|(_, l)| lock(l).sequenced);
    let api = std::mem::take(&mut *lock(&api_log));

    report(ReportInput {
        args,
        url,
        baseline: &baseline,
        watched: &watched,
        whole: &whole,
        per_saga: &per_saga,
        not_stored: expected.not_stored,
        elsewhere: expected.elsewhere,
        refused,
        first_error,
        sequenced,
        viewers_drained,
        failed_deliveries: acks.failed,
        api: &api,
        api_elapsed,
        hwm,
        rss_at_start,
        server_exit,
        log: &server.log,
    });
    Ok(())
}
