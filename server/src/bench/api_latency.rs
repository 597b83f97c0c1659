//! `sagascope bench api`: read latency on a loaded database (see `bench
//! load`), for every figure of the overview issue's targets. The server
//! runs in this process without ingest; concurrent HTTP clients request,
//! one endpoint after the other: the overview for 15 m, 1 h, 24 h and 7 d,
//! saga timelines (random ids), the saga list filtered by type and status,
//! the dead-letter list's first page, and a `/metrics` scrape. Latency is
//! measured per request, from sending it to having read the whole body.
//!
//! `--save FILE` writes the figures with the dataset's size (events, sagas
//! and dead letters counted in the database) as JSON; `--baseline FILE`
//! compares this run with a saved one, figure by figure: the proof
//! that cost does not grow with history is every figure within 1.5× of the
//! run on the smaller dataset.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sagascope_domain::Thresholds;
use sagascope_store::Backend;
use serde::{Deserialize, Serialize};

use super::load_average::{self, LoadAverage};
use super::{group_digits, ms_text, open_store, percentile, rate_text, Report};
use crate::run;

/// The bound on a figure's growth from the smaller dataset to the
/// larger one.
const MAX_GROWTH: f64 = 1.5;

#[derive(Debug, Args)]
pub struct ApiArgs {
    /// postgres://… or sqlite://… of a loaded database (`sagascope bench
    /// load`).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Measured requests per endpoint.
    #[arg(long, default_value_t = 2000)]
    pub requests: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Unmeasured requests per endpoint first (connections, caches).
    #[arg(long, default_value_t = 200)]
    pub warmup: usize,
    /// Saga ids sampled at random for the timeline requests.
    #[arg(long, default_value_t = 5000)]
    pub sample_ids: i64,
    /// Where the compiled front end lives (only the API is requested).
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,
    #[arg(long, default_value_t = 3)]
    pub seed: u64,
    /// Write this run's figures and dataset size to FILE (JSON).
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Compare with a run saved by `--save`: each figure's ratio to it,
    /// and whether it stays within 1.5×.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
}

/// What one endpoint did under load.
struct Measured {
    sorted: Vec<Duration>,
    failures: usize,
    first_failure: Option<String>,
    elapsed: Duration,
}

/// Requests `paths` (cycled) `total` times from `concurrency` clients.
/// No conditional headers are ever sent (reqwest keeps no cache), so an
/// endpoint with an ETag answers in full every time: what is measured is
/// the full response.
async fn measure(
    client: &reqwest::Client,
    base: &str,
    paths: Arc<Vec<String>>,
    total: usize,
    concurrency: usize,
) -> Measured {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let client = client.clone();
        let base = base.to_string();
        let paths = paths.clone();
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut failures = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let path = &paths[i % paths.len()];
                let sent = Instant::now();
                let outcome = match client.get(format!("{base}{path}")).send().await {
                    Ok(response) => {
                        let status = response.status();
                        match response.bytes().await {
                            Ok(_) if status == reqwest::StatusCode::OK => Ok(()),
                            Ok(_) => Err(format!("{status} for {path}")),
                            Err(error) => Err(format!("{error} for {path}")),
                        }
                    }
                    Err(error) => Err(format!("{error} for {path}")),
                };
                let took = sent.elapsed();
                match outcome {
                    Ok(()) => samples.push(took),
                    Err(error) => failures.push(error),
                }
            }
            (samples, failures)
        }));
    }
    let mut sorted = Vec::with_capacity(total);
    let mut failures = Vec::new();
    for worker in workers {
        if let Ok((samples, failed)) = worker.await {
            sorted.extend(samples);
            failures.extend(failed);
        }
    }
    let elapsed = started.elapsed();
    sorted.sort_unstable();
    Measured {
        sorted,
        failures: failures.len(),
        first_failure: failures.into_iter().next(),
        elapsed,
    }
}

/// One endpoint of the run: what is requested and the target.
struct Endpoint {
    /// Stable key in saved runs.
    key: &'static str,
    name: String,
    paths: Vec<String>,
    /// The checked percentile and its bound.
    percentile: f64,
    bound: Duration,
    /// Where the bound comes from, when it is not stated for this endpoint
    /// itself.
    target_note: &'static str,
}

/// The saved figures of one endpoint (milliseconds).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedFigure {
    key: String,
    name: String,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    /// The percentile the target bounds, and the bound.
    target_percentile: f64,
    target_ms: f64,
    met: bool,
    requests: usize,
    failures: usize,
}

impl SavedFigure {
    fn at(&self, p: f64) -> f64 {
        match p as u32 {
            50 => self.p50_ms,
            95 => self.p95_ms,
            _ => self.p99_ms,
        }
    }
}

/// How much data the figures were taken on.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Dataset {
    events: i64,
    sagas: i64,
    dead_letters: i64,
}

/// A run as `--save` writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedRun {
    taken_at: String,
    dataset: Dataset,
    /// 1/5/15 min at the end of the run.
    load_average: Option<[f64; 3]>,
    cpus: usize,
    concurrency: usize,
    requests: usize,
    figures: Vec<SavedFigure>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Adds an endpoint's percentiles to the report; returns its saved form.
fn report_endpoint(
    report: &mut Report,
    endpoint: &Endpoint,
    m: &Measured,
    load: Option<LoadAverage>,
) -> SavedFigure {
    let name = &endpoint.name;
    let mut met = false;
    for q in [50.0, 95.0, 99.0] {
        let value = percentile(&m.sorted, q);
        let label = format!("{name} p{q:.0}");
        if q == endpoint.percentile {
            met = !m.sorted.is_empty() && m.failures == 0 && value < endpoint.bound;
            report
                .check(
                    label,
                    ms_text(value),
                    format!("< {}{}", ms_text(endpoint.bound), endpoint.target_note),
                    met,
                )
                .under(load);
        } else {
            report.info(label, ms_text(value)).under(load);
        }
    }
    report
        .info(
            format!("{name} max"),
            ms_text(m.sorted.last().copied().unwrap_or_default()),
        )
        .under(load);
    report
        .info(
            format!("{name} throughput"),
            rate_text(m.sorted.len() as u64, m.elapsed),
        )
        .under(load);
    if m.failures > 0 {
        report.info(format!("{name} failed requests"), m.failures.to_string());
        if let Some(first) = &m.first_failure {
            report.note(format!("{name}: first failure: {first}"));
        }
    }
    SavedFigure {
        key: endpoint.key.to_string(),
        name: name.clone(),
        p50_ms: ms(percentile(&m.sorted, 50.0)),
        p95_ms: ms(percentile(&m.sorted, 95.0)),
        p99_ms: ms(percentile(&m.sorted, 99.0)),
        target_percentile: endpoint.percentile,
        target_ms: ms(endpoint.bound),
        met,
        requests: m.sorted.len(),
        failures: m.failures,
    }
}

/// "1.12×", or "n/a" when the baseline figure is zero.
fn ratio_text(now: f64, then: f64) -> String {
    if then > 0.0 {
        format!("{:.2}×", now / then)
    } else {
        "n/a".into()
    }
}

/// Each figure of this run against the same figure of `baseline`: the
/// target percentile checked against 1.5×, the other two beside it.
fn compare(report: &mut Report, baseline: &SavedRun, now: &[SavedFigure], dataset: Dataset) {
    let size = |d: &Dataset| {
        format!(
            "{} events, {} sagas, {} dead letters",
            group_digits(d.events.max(0) as u64),
            group_digits(d.sagas.max(0) as u64),
            group_digits(d.dead_letters.max(0) as u64)
        )
    };
    report.info("baseline dataset", size(&baseline.dataset));
    report.info(
        "this dataset, × the baseline's events",
        format!(
            "{} ({})",
            size(&dataset),
            ratio_text(dataset.events as f64, baseline.dataset.events as f64)
        ),
    );
    for figure in now {
        let Some(then) = baseline.figures.iter().find(|f| f.key == figure.key) else {
            report.note(format!("{}: not in the baseline", figure.name));
            continue;
        };
        let p = figure.target_percentile;
        let (value, before) = (figure.at(p), then.at(p));
        let within = before > 0.0 && value <= before * MAX_GROWTH && figure.failures == 0;
        let others: Vec<String> = [50.0, 95.0, 99.0]
            .into_iter()
            .filter(|q| *q != p)
            .map(|q| format!("p{q:.0} {}", ratio_text(figure.at(q), then.at(q))))
            .collect();
        report.check(
            format!("{} p{p:.0} ÷ baseline", figure.name),
            format!(
                "{} ({:.2} → {:.2} ms; {})",
                ratio_text(value, before),
                before,
                value,
                others.join(", ")
            ),
            format!("≤ {MAX_GROWTH}×"),
            within,
        );
    }
}

fn read_baseline(path: &Path) -> anyhow::Result<SavedRun> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the baseline {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a run saved by --save", path.display()))
}

async fn count(store: &sagascope_store::Store, sql: &str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(sql).fetch_one(store.pool()).await?)
}

pub async fn run(args: ApiArgs) -> anyhow::Result<()> {
    // Read first: a wrong path should not cost a whole run.
    let baseline = args.baseline.as_deref().map(read_baseline).transpose()?;
    let store = open_store(&args.database_url).await?;
    let store_backend = store.backend();
    println!("counting the dataset …");
    let dataset = Dataset {
        events: count(&store, "SELECT COUNT(*) FROM events").await?,
        sagas: count(&store, "SELECT COUNT(*) FROM sagas WHERE kind = 'saga'").await?,
        dead_letters: count(&store, "SELECT COUNT(*) FROM dead_letters").await?,
    };
    anyhow::ensure!(
        dataset.sagas > 0,
        "the database holds no sagas: run `sagascope bench load` first"
    );
    println!("sampling {} saga ids …", args.sample_ids);
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT saga_id FROM sagas WHERE kind = 'saga' ORDER BY random() LIMIT $1",
    )
    .bind(args.sample_ids.max(1))
    .fetch_all(store.pool())
    .await?;
    let types: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT saga_type FROM sagas WHERE kind = 'saga'")
            .fetch_all(store.pool())
            .await?;

    let running = run::start(
        store,
        None,
        "127.0.0.1:0".parse()?,
        &args.site_root,
        Thresholds::default(),
    )
    .await?;
    let base = format!("http://{}", running.addr);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency.max(1) * 2)
        .build()?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let requests = args.requests.max(1);

    let timeline: Vec<String> = (0..requests)
        .map(|_| format!("/api/v1/sagas/{}", ids[rng.random_range(0..ids.len())]))
        .collect();
    let lists: Vec<String> = (0..requests)
        .map(|_| {
            format!(
                "/api/v1/sagas?saga_type={}&status=failed",
                types[rng.random_range(0..types.len())]
            )
        })
        .collect();
    // The DLQ page as the UI opens it (newest first, every state) and as
    // it is most often filtered: open ones only, one saga type.
    let mut dlq = vec![
        "/api/v1/dlq".to_string(),
        "/api/v1/dlq?state=new,retry_requested".to_string(),
    ];
    dlq.extend(types.iter().map(|t| format!("/api/v1/dlq?saga_type={t}")));
    let overview = |window: &str| vec![format!("/api/v1/metrics/overview?window={window}")];
    let millis = Duration::from_millis;
    let endpoints = vec![
        Endpoint {
            key: "overview_15m",
            name: "overview 15 m".into(),
            paths: overview("15m"),
            percentile: 95.0,
            bound: millis(50),
            target_note: " (the 24 h bound)",
        },
        Endpoint {
            key: "overview_1h",
            name: "overview 1 h".into(),
            paths: overview("1h"),
            percentile: 95.0,
            bound: millis(50),
            target_note: " (the 24 h bound)",
        },
        Endpoint {
            key: "overview_24h",
            name: "overview 24 h".into(),
            paths: overview("24h"),
            percentile: 95.0,
            bound: millis(50),
            target_note: "",
        },
        Endpoint {
            key: "overview_7d",
            name: "overview 7 d".into(),
            paths: overview("7d"),
            percentile: 95.0,
            bound: millis(100),
            target_note: "",
        },
        Endpoint {
            key: "timeline",
            name: "timeline GET /sagas/{id}".into(),
            paths: timeline,
            percentile: 99.0,
            bound: millis(5),
            target_note: "",
        },
        Endpoint {
            key: "list_filtered",
            name: "list ?saga_type=…&status=failed".into(),
            paths: lists,
            percentile: 95.0,
            bound: millis(20),
            target_note: "",
        },
        Endpoint {
            key: "dlq_page",
            name: "DLQ page GET /dlq".into(),
            paths: dlq,
            percentile: 95.0,
            bound: millis(30),
            target_note: "",
        },
        Endpoint {
            key: "metrics_scrape",
            name: "GET /metrics scrape".into(),
            paths: vec!["/metrics".to_string()],
            percentile: 95.0,
            bound: millis(50),
            target_note: "",
        },
    ];

    let mut report = Report::default();
    report.info(
        "events in the database",
        group_digits(dataset.events as u64),
    );
    report.info("sagas in the database", group_digits(dataset.sagas as u64));
    report.info(
        "dead letters in the database",
        group_digits(dataset.dead_letters as u64),
    );
    let mut figures = Vec::new();
    for endpoint in &endpoints {
        let name = &endpoint.name;
        let probe = client
            .get(format!("{base}{}", endpoint.paths[0]))
            .send()
            .await?;
        if probe.status() == reqwest::StatusCode::NOT_FOUND {
            report.check(
                format!("{name} p{:.0}", endpoint.percentile),
                "404",
                format!("< {}", ms_text(endpoint.bound)),
                false,
            );
            report.note(format!(
                "{name} answered 404 for {}: not available in this build",
                endpoint.paths[0]
            ));
            continue;
        }
        println!(
            "{name}: {} warm-up requests … ({})",
            args.warmup,
            load_average::now_text()
        );
        let paths = Arc::new(endpoint.paths.clone());
        measure(&client, &base, paths.clone(), args.warmup, args.concurrency).await;
        println!("{name}: {requests} measured requests …");
        let measured = measure(&client, &base, paths, requests, args.concurrency).await;
        figures.push(report_endpoint(
            &mut report,
            endpoint,
            &measured,
            LoadAverage::now(),
        ));
    }
    if dataset.dead_letters < 100_000 {
        report.note(format!(
            "the DLQ target is stated for 100,000 dead letters; this database holds {}",
            group_digits(dataset.dead_letters as u64)
        ));
    }
    report.note(format!(
        "{} concurrent clients, {} measured requests per endpoint after {} warm-up ones; \
         client, server and {} share this machine's {} CPUs; the DLQ page cycles the \
         unfiltered first page, open states only and each saga type",
        args.concurrency,
        requests,
        args.warmup,
        match store_backend {
            Backend::Postgres => "Postgres",
            Backend::Sqlite => "SQLite (in process)",
        },
        cpus()
    ));
    running.shutdown().await;

    if let Some(baseline) = &baseline {
        compare(&mut report, baseline, &figures, dataset);
    }
    if let Some(path) = &args.save {
        let load = LoadAverage::now();
        let saved = SavedRun {
            taken_at: chrono::Utc::now().to_rfc3339(),
            dataset,
            load_average: load.map(|l| [l.one, l.five, l.fifteen]),
            cpus: cpus(),
            concurrency: args.concurrency,
            requests,
            figures,
        };
        std::fs::write(path, serde_json::to_string_pretty(&saved)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        report.note(format!("figures saved to {}", path.display()));
    }
    report.print("sagascope bench api");
    Ok(())
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(key: &str, p95_ms: f64) -> SavedFigure {
        SavedFigure {
            key: key.into(),
            name: key.into(),
            p50_ms: p95_ms / 2.0,
            p95_ms,
            p99_ms: p95_ms * 2.0,
            target_percentile: 95.0,
            target_ms: 50.0,
            met: true,
            requests: 10,
            failures: 0,
        }
    }

    #[test]
    fn a_saved_run_reads_back_and_figures_compare_against_1_5x() {
        let run = SavedRun {
            taken_at: "2026-12-07T12:00:00Z".into(),
            dataset: Dataset {
                events: 10_000_000,
                sagas: 1_000_000,
                dead_letters: 100_000,
            },
            load_average: Some([1.0, 1.5, 2.0]),
            cpus: 2,
            concurrency: 4,
            requests: 10,
            figures: vec![figure("overview_24h", 10.0), figure("timeline", 2.0)],
        };
        let text = serde_json::to_string(&run).unwrap();
        let back: SavedRun = serde_json::from_str(&text).unwrap();
        assert_eq!(back.dataset.events, 10_000_000);
        assert_eq!(back.figures.len(), 2);

        let mut report = Report::default();
        let now = vec![
            figure("overview_24h", 14.0),
            figure("timeline", 3.5),
            figure("metrics_scrape", 1.0),
        ];
        compare(&mut report, &back, &now, back.dataset);
        let verdicts: Vec<(String, Option<bool>)> = report
            .figures
            .iter()
            .filter(|f| f.verdict.is_some())
            .map(|f| (f.name.clone(), f.verdict))
            .collect();
        assert_eq!(
            verdicts,
            vec![
                ("overview_24h p95 ÷ baseline".to_string(), Some(true)),
                ("timeline p95 ÷ baseline".to_string(), Some(false)),
            ]
        );
        assert_eq!(report.notes, vec!["metrics_scrape: not in the baseline"]);
        assert_eq!(ratio_text(3.0, 2.0), "1.50×");
        assert_eq!(ratio_text(3.0, 0.0), "n/a");
    }
}
