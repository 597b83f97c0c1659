//! `sagascope bench <scenario>`: measures the speed targets of issue 4 on
//! this machine and prints each figure next to its target with PASS/MISS.
//! One file per scenario; this module holds what they share (the report
//! table, percentiles, RSS sampling, Postgres helpers).
//!
//! - `ingest`: pre-produced simulator traffic through the mock cluster and
//!   the real `Ingestor` into the store, next to raw COPY, decode-only and
//!   store-only rates of the same rows.
//! - `load`: generates an N-event / M-saga dataset over the last 24 h
//!   through `Store::write_batch`.
//! - `api`: timeline, filtered list and overview latency on a loaded store.
//! - `live`: produce → visible on `/api/v1/stream` latency at a steady rate,
//!   and the process's peak RSS.
//! - `redrive`: dead letters re-driven per second by one bulk retry job
//!   (store → idempotent producer → mock cluster ack → store).

mod api_latency;
mod copy_rate;
mod ingest_rate;
mod live_latency;
mod load_dataset;
mod redrive_rate;
mod traffic;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use sagascope_store::{redact_url, Backend, Store};
use sqlx::{Connection, PgConnection};

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub scenario: Scenario,
}

#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// Ingest rate through mock Kafka and the real ingest (needs an empty
    /// Postgres database, or --reset), next to raw COPY, decode-only and
    /// store-only rates of the same events.
    Ingest(ingest_rate::IngestArgs),
    /// Generate a dataset (default 10 M events / 1 M sagas over the last
    /// 24 h) through the store's batch write.
    Load(load_dataset::LoadArgs),
    /// Latency of the timeline, filtered list and overview APIs on a
    /// loaded database (the server runs in-process, without ingest).
    Api(api_latency::ApiArgs),
    /// Produce → visible over SSE latency at a steady event rate, with the
    /// process's peak RSS (mock Kafka, ingest and server in-process).
    Live(live_latency::LiveArgs),
    /// Dead letters re-driven per second by one bulk retry (default 50,000,
    /// SQLite unless --database-url), produced to the in-process mock
    /// cluster without throttle, with per-chunk latency.
    Redrive(redrive_rate::RedriveArgs),
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.scenario {
        Scenario::Ingest(args) => ingest_rate::run(args).await,
        Scenario::Load(args) => load_dataset::run(args).await,
        Scenario::Api(args) => api_latency::run(args).await,
        Scenario::Live(args) => live_latency::run(args).await,
        Scenario::Redrive(args) => redrive_rate::run(args).await,
    }
}

/// Connects and migrates, like the server does at start.
async fn open_store(url: &str) -> anyhow::Result<Store> {
    let store = Store::connect(url)
        .await
        .with_context(|| format!("cannot open the store at {}", redact_url(url)))?;
    store.migrate().await.context("migrations failed")?;
    Ok(store)
}

fn require_postgres(url: &str, scenario: &str) -> anyhow::Result<()> {
    match Backend::from_url(url)? {
        Backend::Postgres => Ok(()),
        Backend::Sqlite => {
            anyhow::bail!("`bench {scenario}` measures Postgres: give --database-url postgres://…")
        }
    }
}

/// A plain Postgres connection (COPY, counts, resets), beside the store's
/// `Any` pool.
async fn pg_connect(url: &str) -> anyhow::Result<PgConnection> {
    PgConnection::connect(url)
        .await
        .with_context(|| format!("cannot connect to {}", redact_url(url)))
}

async fn count_rows(conn: &mut PgConnection, table: &str) -> anyhow::Result<i64> {
    let count: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(conn)
        .await?;
    Ok(count)
}

/// Empties every sagascope table of the current schema (not the migration
/// history), so a scenario starts from the same state every time.
async fn reset_tables(conn: &mut PgConnection) -> anyhow::Result<()> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT quote_ident(tablename) FROM pg_tables \
         WHERE schemaname = current_schema() AND tablename <> '_sqlx_migrations' \
         AND tablename NOT LIKE 'sagascope_bench%'",
    )
    .fetch_all(&mut *conn)
    .await?;
    if !tables.is_empty() {
        sqlx::query(&format!("TRUNCATE {}", tables.join(", ")))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// One line of a report: a measured figure, its target (if it has one)
/// and whether it was met.
struct Figure {
    name: String,
    value: String,
    target: String,
    verdict: Option<bool>,
}

/// The table a scenario prints at the end.
#[derive(Default)]
struct Report {
    figures: Vec<Figure>,
    notes: Vec<String>,
}

impl Report {
    /// A figure without a target (context for the others).
    fn info(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.figures.push(Figure {
            name: name.into(),
            value: value.into(),
            target: "—".into(),
            verdict: None,
        });
    }

    fn check(
        &mut self,
        name: impl Into<String>,
        value: impl Into<String>,
        target: impl Into<String>,
        met: bool,
    ) {
        self.figures.push(Figure {
            name: name.into(),
            value: value.into(),
            target: target.into(),
            verdict: Some(met),
        });
    }

    fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    fn print(&self, title: &str) {
        let width = |f: fn(&Figure) -> usize, header: &str| {
            self.figures
                .iter()
                .map(f)
                .max()
                .unwrap_or(0)
                .max(header.chars().count())
        };
        let name_w = width(|f| f.name.chars().count(), "figure");
        let value_w = width(|f| f.value.chars().count(), "measured");
        let target_w = width(|f| f.target.chars().count(), "target");
        println!();
        println!("{title}");
        println!(
            "  {:<name_w$}  {:>value_w$}  {:<target_w$}  result",
            "figure", "measured", "target"
        );
        println!(
            "  {}  {}  {}  ------",
            "-".repeat(name_w),
            "-".repeat(value_w),
            "-".repeat(target_w)
        );
        for f in &self.figures {
            let verdict = match f.verdict {
                Some(true) => "PASS",
                Some(false) => "MISS",
                None => "",
            };
            println!(
                "  {:<name_w$}  {:>value_w$}  {:<target_w$}  {verdict}",
                f.name, f.value, f.target
            );
        }
        for note in &self.notes {
            println!("  * {note}");
        }
        println!();
    }
}

/// Thousands separated by spaces: 52 340.
fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

fn rate_text(count: u64, elapsed: Duration) -> String {
    format!(
        "{}/s",
        group_digits(per_second(count, elapsed).round() as u64)
    )
}

fn ms_text(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// Nearest-rank percentile of sorted samples (`p` in 0–100).
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// This process's resident set size in bytes (Linux), if known.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Samples the RSS every second until dropped; keeps the maximum.
struct RssSampler {
    max: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    fn start() -> RssSampler {
        let max = Arc::new(AtomicU64::new(rss_bytes().unwrap_or(0)));
        let seen = max.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if let Some(rss) = rss_bytes() {
                    seen.fetch_max(rss, Ordering::Relaxed);
                }
            }
        });
        RssSampler { max, task }
    }

    fn max_bytes(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// CPU time (user + system, in seconds) of the processes whose `/proc`
/// stat line passes `keep`; Linux only, else 0. Clock ticks are taken to
/// be the usual 100 per second.
fn cpu_seconds(
    stat_files: impl Iterator<Item = std::path::PathBuf>,
    keep: impl Fn(&str) -> bool,
) -> f64 {
    const TICKS_PER_SECOND: f64 = 100.0;
    let mut ticks = 0u64;
    for path in stat_files {
        let Ok(stat) = std::fs::read_to_string(path) else {
            continue;
        };
        // pid (comm) state ppid … utime stime: fields 14 and 15, counted
        // after the closing parenthesis of the command name.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map_or("", |(_, c)| c);
        if !keep(comm) {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0);
        let stime: u64 = fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
        ticks += utime + stime;
    }
    ticks as f64 / TICKS_PER_SECOND
}

fn self_cpu_seconds() -> f64 {
    cpu_seconds(std::iter::once("/proc/self/stat".into()), |_| true)
}

/// Every local `postgres` process (the server and its backends).
fn postgres_cpu_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let stats = entries.filter_map(Result::ok).filter_map(|e| {
        let name = e.file_name();
        let name = name.to_str()?;
        name.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| e.path().join("stat"))
    });
    cpu_seconds(stats, |comm| comm == "postgres")
}

/// CPU use of this process and of a local Postgres over a phase, in cores
/// (CPU seconds per wall second): where the time goes.
struct CpuMeter {
    started: std::time::Instant,
    own: f64,
    postgres: f64,
}

impl CpuMeter {
    fn start() -> CpuMeter {
        CpuMeter {
            started: std::time::Instant::now(),
            own: self_cpu_seconds(),
            postgres: postgres_cpu_seconds(),
        }
    }

    /// "sagascope 0.95 / postgres 0.70 cores" since `start`.
    fn text(&self) -> String {
        let wall = self.started.elapsed().as_secs_f64().max(1e-9);
        format!(
            "sagascope {:.2} / postgres {:.2}",
            (self_cpu_seconds() - self.own) / wall,
            (postgres_cpu_seconds() - self.postgres) / wall
        )
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&samples, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&samples, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&samples, 0.0), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn digits_are_grouped() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(52_340), "52 340");
        assert_eq!(group_digits(10_000_000), "10 000 000");
    }
}
