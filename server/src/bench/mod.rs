//! `sagascope bench <scenario>`: measures the speed targets of issue 4 on
//! this machine and prints each figure next to its target with PASS/MISS.
//! One file per scenario; this module holds what they share (the report
//! table, percentiles, RSS sampling, table counts and resets). Every
//! scenario prints the machine's load average when it starts and in its
//! report (`load_average.rs`): this machine is shared, and a figure is
//! read against the load it was taken under.
//!
//! - `ingest`: pre-produced simulator traffic through the mock cluster and
//!   the real `Ingestor` into Postgres and/or SQLite, as a ratio of the
//!   store's raw bulk load of the same rows (COPY; one multi-row INSERT
//!   transaction), beside decode-only and store-only rates.
//! - `load`: generates an N-event / M-saga dataset over the last 24 h, with
//!   dead letters and spans, through the store's benchmark loader (COPY;
//!   the same rows as `Store::write_batch`, which `--through write-batch`
//!   uses instead).
//! - `api`: the overview (15 m, 1 h, 24 h, 7 d), timeline, filtered list,
//!   DLQ page and `/metrics` latency on a loaded store, saved (`--save`)
//!   and compared with a saved run (`--baseline`, within 1.5×).
//! - `live`: produce → visible on `/api/v1/stream` latency at steady rates
//!   of a ramp, the highest rate whose p99 stays under 1 s, and the
//!   process's peak RSS.
//! - `redrive`: dead letters re-driven per second by one bulk retry job
//!   (store → idempotent producer → mock cluster ack → store).
//! - `viewers`: 500 SSE viewers and 50 API clients against a `serve`
//!   process while it ingests 5,000 events/s: every viewer's events
//!   checked, the ingest rate against a baseline without viewers, API
//!   latency, the server's peak RSS.

mod api_latency;
mod copy_rate;
mod ingest_per_store;
mod ingest_rate;
mod live_latency;
mod live_ramp;
mod live_stream;
mod load_average;
mod load_dataset;
mod raw_rows;
mod redrive_rate;
mod sqlite_insert_rate;
mod traffic;
mod viewer_api_clients;
mod viewer_streams;
mod viewers;
mod viewers_report;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use load_average::LoadAverage;
use sagascope_store::{redact_url, Backend, Store};
use sqlx::{Connection, PgConnection};

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub scenario: Scenario,
}

#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// Ingest rate through mock Kafka and the real ingest into Postgres
    /// and/or SQLite, as a ratio of the store's raw bulk load of the same
    /// rows (Postgres COPY; SQLite one multi-row INSERT transaction), with
    /// decode-only and store-only rates and the load average.
    Ingest(ingest_rate::IngestArgs),
    /// Generate a dataset (default 10 M events / 1 M sagas over the last
    /// 24 h, 100,000 dead letters, spans for a tenth of the traces) through
    /// the store's benchmark loader (COPY), or its batch write.
    Load(load_dataset::LoadArgs),
    /// Latency of the overview (15 m, 1 h, 24 h, 7 d), timeline, filtered
    /// list, DLQ page and `/metrics` on a loaded database (the server runs
    /// in-process, without ingest); `--save` / `--baseline` for the
    /// growth check between dataset sizes.
    Api(api_latency::ApiArgs),
    /// Produce → visible over SSE latency at steady rates of a ramp (mock
    /// Kafka, ingest and server in-process): the highest rate whose p99
    /// stays under 1 s with nothing missing, and the process's peak RSS.
    Live(live_latency::LiveArgs),
    /// Dead letters re-driven per second by one bulk retry (default 50,000,
    /// SQLite unless --database-url), produced to the in-process mock
    /// cluster without throttle, with per-chunk latency.
    Redrive(redrive_rate::RedriveArgs),
    /// 500 SSE viewers (whole stream and one saga each) and 50 API clients
    /// against a `serve` process ingesting 5,000 events/s from an
    /// in-process mock cluster: events each viewer missed, `lagged`
    /// notices, the stored rate against a baseline without viewers, API
    /// p50/p95/p99, the server's peak RSS (VmHWM) against 512 MB.
    Viewers(viewers::ViewersArgs),
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let name = match &args.scenario {
        Scenario::Ingest(_) => "ingest",
        Scenario::Load(_) => "load",
        Scenario::Api(_) => "api",
        Scenario::Live(_) => "live",
        Scenario::Redrive(_) => "redrive",
        Scenario::Viewers(_) => "viewers",
    };
    load_average::print_at_start(name);
    match args.scenario {
        Scenario::Ingest(args) => ingest_rate::run(args).await,
        Scenario::Load(args) => load_dataset::run(args).await,
        Scenario::Api(args) => api_latency::run(args).await,
        Scenario::Live(args) => live_latency::run(args).await,
        Scenario::Redrive(args) => redrive_rate::run(args).await,
        Scenario::Viewers(args) => viewers::run(args).await,
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

/// A plain Postgres connection (the ingest scenario's raw COPY
/// baseline), beside the store's `Any` pool.
async fn pg_connect(url: &str) -> anyhow::Result<PgConnection> {
    PgConnection::connect(url)
        .await
        .with_context(|| format!("cannot connect to {}", redact_url(url)))
}

async fn count_rows(store: &Store, table: &str) -> anyhow::Result<i64> {
    let count: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(store.pool())
        .await?;
    Ok(count)
}

/// Empties every sagascope table (not the migration history, nor the
/// benchmarks' scratch tables), so a scenario starts from the same state
/// every time.
async fn reset_tables(store: &Store) -> anyhow::Result<()> {
    let list = match store.backend() {
        Backend::Postgres => {
            "SELECT quote_ident(tablename) FROM pg_tables \
             WHERE schemaname = current_schema() AND tablename <> '_sqlx_migrations' \
             AND tablename NOT LIKE 'sagascope_bench%'"
        }
        Backend::Sqlite => {
            "SELECT '\"' || name || '\"' FROM sqlite_master \
             WHERE type = 'table' AND name <> '_sqlx_migrations' \
             AND name NOT LIKE 'sqlite%' AND name NOT LIKE 'sagascope_bench%'"
        }
    };
    let tables: Vec<String> = sqlx::query_scalar(list).fetch_all(store.pool()).await?;
    if tables.is_empty() {
        return Ok(());
    }
    match store.backend() {
        Backend::Postgres => {
            sqlx::query(&format!("TRUNCATE {}", tables.join(", ")))
                .execute(store.pool())
                .await?;
        }
        // No TRUNCATE in SQLite: one DELETE per table, in one transaction
        // (the only foreign keys cascade, so the order does not matter).
        Backend::Sqlite => {
            let mut tx = store.pool().begin().await?;
            for table in &tables {
                sqlx::query(&format!("DELETE FROM {table}"))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        }
    }
    Ok(())
}

/// `sqlite://…` of a new database file in the temporary directory (any
/// leftover of the same name removed first), and the files to remove
/// afterwards.
fn fresh_sqlite_url(name: &str) -> (String, Vec<std::path::PathBuf>) {
    let path =
        std::env::temp_dir().join(format!("sagascope-bench-{name}-{}.db", std::process::id()));
    let files: Vec<std::path::PathBuf> = ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| format!("{}{suffix}", path.display()).into())
        .collect();
    remove_files(&files);
    (format!("sqlite://{}", path.display()), files)
}

fn remove_files(files: &[std::path::PathBuf]) {
    for file in files {
        let _ = std::fs::remove_file(file);
    }
}

/// One line of a report: a measured figure, its target (if it has one),
/// whether it was met, and the load average its phase ended under.
struct Figure {
    name: String,
    value: String,
    target: String,
    verdict: Option<bool>,
    load: Option<LoadAverage>,
}

impl Figure {
    /// The load average at the end of the phase that measured this figure.
    fn under(&mut self, load: Option<LoadAverage>) -> &mut Figure {
        self.load = load;
        self
    }
}

/// The table a scenario prints at the end.
#[derive(Default)]
struct Report {
    figures: Vec<Figure>,
    notes: Vec<String>,
}

impl Report {
    /// A figure without a target (context for the others).
    fn info(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Figure {
        self.push(name.into(), value.into(), "—".into(), None)
    }

    fn check(
        &mut self,
        name: impl Into<String>,
        value: impl Into<String>,
        target: impl Into<String>,
        met: bool,
    ) -> &mut Figure {
        self.push(name.into(), value.into(), target.into(), Some(met))
    }

    fn push(
        &mut self,
        name: String,
        value: String,
        target: String,
        verdict: Option<bool>,
    ) -> &mut Figure {
        self.figures.push(Figure {
            name,
            value,
            target,
            verdict,
            load: None,
        });
        let last = self.figures.len() - 1;
        &mut self.figures[last]
    }

    fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// The table, ending with the load average as it is now; a column
    /// `load 1/5/15 min` where figures carry their phase's load.
    fn print(&self, title: &str) {
        let verdict = |f: &Figure| match f.verdict {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "",
        };
        let mut rows: Vec<Vec<String>> = self
            .figures
            .iter()
            .map(|f| {
                vec![
                    f.name.clone(),
                    f.value.clone(),
                    f.target.clone(),
                    verdict(f).to_string(),
                    f.load.map_or(String::new(), |l| l.to_string()),
                ]
            })
            .collect();
        rows.push(vec![
            "load average 1/5/15 min, at the end".into(),
            load_average::text(LoadAverage::now()),
            "—".into(),
            String::new(),
            String::new(),
        ]);
        let mut columns = vec![
            Column::left("figure"),
            Column::right("measured"),
            Column::left("target"),
            Column::left("result"),
            Column::left("load 1/5/15 min"),
        ];
        if self.figures.iter().all(|f| f.load.is_none()) {
            columns.pop();
        }
        println!();
        println!("{title}");
        print_columns(&columns, &rows);
        for note in &self.notes {
            println!("  * {note}");
        }
        println!();
    }
}

/// A column of a printed table: its header and alignment.
struct Column {
    header: &'static str,
    right: bool,
}

impl Column {
    fn left(header: &'static str) -> Column {
        Column {
            header,
            right: false,
        }
    }

    fn right(header: &'static str) -> Column {
        Column {
            header,
            right: true,
        }
    }
}

/// A table as wide as its widest cells, indented by two spaces; cells
/// beyond `columns` are not printed.
fn print_columns(columns: &[Column], rows: &[Vec<String>]) {
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            rows.iter()
                .filter_map(|row| row.get(i))
                .map(|cell| cell.chars().count())
                .chain(std::iter::once(column.header.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<(&str, bool)>| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|((cell, right), &width)| {
                if *right {
                    format!("{cell:>width$}")
                } else {
                    format!("{cell:<width$}")
                }
            })
            .collect();
        println!("  {}", text.join("  ").trim_end());
    };
    line(columns.iter().map(|c| (c.header, c.right)).collect());
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(rule.iter().map(|r| (r.as_str(), false)).collect());
    for row in rows {
        line(
            columns
                .iter()
                .enumerate()
                .map(|(i, c)| (row.get(i).map_or("", String::as_str), c.right))
                .collect(),
        );
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

    /// Starts the maximum over from the RSS now: the peak of the next
    /// phase alone.
    fn restart(&self) {
        self.max.store(rss_bytes().unwrap_or(0), Ordering::Relaxed);
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// CPU time (user + system, in seconds) of each process whose `/proc`
/// stat line passes `keep`, by its stat file; Linux only, else none. Clock
/// ticks are taken to be the usual 100 per second.
fn cpu_seconds(
    stat_files: impl Iterator<Item = std::path::PathBuf>,
    keep: impl Fn(&str) -> bool,
) -> HashMap<std::path::PathBuf, f64> {
    const TICKS_PER_SECOND: f64 = 100.0;
    let mut seconds = HashMap::new();
    for path in stat_files {
        let Ok(stat) = std::fs::read_to_string(&path) else {
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
        seconds.insert(path, (utime + stime) as f64 / TICKS_PER_SECOND);
    }
    seconds
}

fn self_cpu_seconds() -> f64 {
    cpu_seconds(std::iter::once("/proc/self/stat".into()), |_| true)
        .values()
        .sum()
}

/// Every local `postgres` process (the server and its backends).
fn postgres_cpu_seconds() -> HashMap<std::path::PathBuf, f64> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
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
/// (CPU seconds per wall second): where the time goes. Postgres is counted
/// per process, since backends come and go (on a shared machine, other
/// users' too): one that ended during the phase is not counted, one that
/// started during it counts whole — a sum of totals would lose the ended
/// ones' whole time and could go negative.
struct CpuMeter {
    started: std::time::Instant,
    own: f64,
    postgres: HashMap<std::path::PathBuf, f64>,
}

impl CpuMeter {
    fn start() -> CpuMeter {
        CpuMeter {
            started: std::time::Instant::now(),
            own: self_cpu_seconds(),
            postgres: postgres_cpu_seconds(),
        }
    }

    /// "sagascope 0.95 / postgres 0.70" (cores) since `start`; on SQLite
    /// only this process's share, as the database runs inside it. The
    /// Postgres share counts every local `postgres` process, other
    /// users' backends included.
    fn text(&self, backend: Backend) -> String {
        let wall = self.started.elapsed().as_secs_f64().max(1e-9);
        let own = (self_cpu_seconds() - self.own) / wall;
        match backend {
            Backend::Postgres => {
                let postgres: f64 = postgres_cpu_seconds()
                    .into_iter()
                    .map(|(process, now)| now - self.postgres.get(&process).copied().unwrap_or(0.0))
                    .sum();
                format!("sagascope {own:.2} / postgres {:.2}", postgres / wall)
            }
            Backend::Sqlite => format!("sagascope {own:.2}"),
        }
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
