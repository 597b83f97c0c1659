//! `sagascope bench api`: read latency on a loaded database (see `bench
//! load`). The server runs in this process without ingest; concurrent HTTP
//! clients request saga timelines (random ids), the saga list filtered by
//! type and status, and the 24 h overview. Latency is measured per request,
//! from sending it to having read the whole body.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sagascope_domain::Thresholds;

use super::{
    group_digits, ms_text, open_store, percentile, pg_connect, rate_text, require_postgres, Report,
};
use crate::run;

#[derive(Debug, Args)]
pub struct ApiArgs {
    /// postgres://… of a loaded database (`sagascope bench load`).
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
}

/// What one endpoint did under load.
struct Measured {
    sorted: Vec<Duration>,
    failures: usize,
    first_failure: Option<String>,
    elapsed: Duration,
}

/// Requests `paths` (cycled) `total` times from `concurrency` clients.
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
                            Ok(_) if status.is_success() => Ok(()),
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

/// Adds an endpoint's percentiles to the report; `target` is the checked
/// percentile and its bound.
fn report_endpoint(report: &mut Report, name: &str, m: &Measured, target: (f64, Duration)) {
    let (p, bound) = target;
    for q in [50.0, 95.0, 99.0] {
        let value = percentile(&m.sorted, q);
        let label = format!("{name} p{q:.0}");
        if q == p {
            report.check(
                label,
                ms_text(value),
                format!("< {}", ms_text(bound)),
                !m.sorted.is_empty() && m.failures == 0 && value < bound,
            );
        } else {
            report.info(label, ms_text(value));
        }
    }
    report.info(
        format!("{name} max"),
        ms_text(m.sorted.last().copied().unwrap_or_default()),
    );
    report.info(
        format!("{name} throughput"),
        rate_text(m.sorted.len() as u64, m.elapsed),
    );
    if m.failures > 0 {
        report.info(format!("{name} failed requests"), m.failures.to_string());
        if let Some(first) = &m.first_failure {
            report.note(format!("{name}: first failure: {first}"));
        }
    }
}

pub async fn run(args: ApiArgs) -> anyhow::Result<()> {
    require_postgres(&args.database_url, "api")?;
    let store = open_store(&args.database_url).await?;
    let mut pg = pg_connect(&args.database_url).await?;
    let events: i64 = sqlx::query_scalar(
        "SELECT COALESCE(reltuples, 0)::BIGINT FROM pg_class WHERE relname = 'events'",
    )
    .fetch_optional(&mut pg)
    .await?
    .unwrap_or(0);
    let sagas: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sagas WHERE kind = 'saga'")
        .fetch_one(&mut pg)
        .await?;
    anyhow::ensure!(
        sagas > 0,
        "the database holds no sagas: run `sagascope bench load` first"
    );
    println!("sampling {} saga ids …", args.sample_ids);
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT saga_id FROM sagas WHERE kind = 'saga' ORDER BY random() LIMIT $1",
    )
    .bind(args.sample_ids.max(1))
    .fetch_all(&mut pg)
    .await?;
    let types: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT saga_type FROM sagas WHERE kind = 'saga'")
            .fetch_all(&mut pg)
            .await?;
    drop(pg);

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

    let timeline: Vec<String> = (0..args.requests.max(1))
        .map(|_| format!("/api/v1/sagas/{}", ids[rng.random_range(0..ids.len())]))
        .collect();
    let lists: Vec<String> = (0..args.requests.max(1))
        .map(|_| {
            format!(
                "/api/v1/sagas?saga_type={}&status=failed",
                types[rng.random_range(0..types.len())]
            )
        })
        .collect();
    let overview = vec!["/api/v1/metrics/overview?window=24h".to_string()];

    let mut report = Report::default();
    report.info(
        "events in the database (estimate)",
        group_digits(events as u64),
    );
    report.info("sagas in the database", group_digits(sagas as u64));
    let endpoints: [(&str, Vec<String>, (f64, Duration)); 3] = [
        (
            "timeline GET /sagas/{id}",
            timeline,
            (99.0, Duration::from_millis(5)),
        ),
        (
            "list ?saga_type=…&status=failed",
            lists,
            (95.0, Duration::from_millis(20)),
        ),
        (
            "overview ?window=24h",
            overview,
            (95.0, Duration::from_millis(50)),
        ),
    ];
    for (name, paths, target) in endpoints {
        let probe = client.get(format!("{base}{}", paths[0])).send().await?;
        if probe.status() == reqwest::StatusCode::NOT_FOUND && name.starts_with("overview") {
            report.check(
                format!("{name} p95"),
                "404",
                format!("< {}", ms_text(target.1)),
                false,
            );
            report.note("the overview endpoint answered 404: not available in this build");
            continue;
        }
        println!("{name}: {} warm-up requests …", args.warmup);
        let paths = Arc::new(paths);
        measure(&client, &base, paths.clone(), args.warmup, args.concurrency).await;
        println!("{name}: {} measured requests …", args.requests);
        let measured = measure(
            &client,
            &base,
            paths,
            args.requests.max(1),
            args.concurrency,
        )
        .await;
        report_endpoint(&mut report, name, &measured, target);
    }
    report.note(format!(
        "{} concurrent clients, {} measured requests per endpoint after {} warm-up ones; \
         client, server and Postgres share this machine's {} CPUs",
        args.concurrency,
        args.requests,
        args.warmup,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    ));
    running.shutdown().await;
    report.print("sagascope bench api");
    Ok(())
}
