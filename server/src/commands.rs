//! The three sub-commands.

use std::time::Duration;

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sagascope_domain::{Decoder, Rules};
use sagascope_ingest::{GroupWatchConfig, IngestConfig};
use sagascope_simulator::{
    product_event, MockKafka, PlannedOutcome, PoisonKind, RetryConsumer, RetryConsumerConfig,
    SagaKind, SagaPlan, ServiceConsumer, ServiceConsumerConfig, Simulator, SimulatorConfig,
    ALL_TOPICS, DEMO_DEAD_LETTER_RATIO, DEMO_RULES, DLT_TOPICS, PAYMENT_SERVICE_GROUP,
};
use sagascope_store::{redact_url, StallPolicy, Store};
use tokio::sync::watch;

use crate::auth::AuthConfig;
use crate::cli::{DemoArgs, HttpArgs, KafkaArgs, MigrateArgs, ReprojectArgs, RulesArgs, ServeArgs};
use crate::run;

async fn open_store(url: &str) -> anyhow::Result<Store> {
    let store = Store::connect(url)
        .await
        .with_context(|| format!("cannot open the store at {}", redact_url(url)))?;
    store.migrate().await.context("migrations failed")?;
    Ok(store)
}

fn load_rules(args: &RulesArgs) -> anyhow::Result<Rules> {
    match &args.rules {
        None => Ok(Rules::default()),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read rules file {}", path.display()))?;
            Rules::parse(&text).with_context(|| format!("invalid rules file {}", path.display()))
        }
    }
}

fn stall_policy(args: &RulesArgs, rules: &Rules) -> StallPolicy {
    StallPolicy {
        default_timeout: args.stall_after,
        per_type: rules
            .timeouts()
            .iter()
            .map(|(t, d)| (t.clone(), *d))
            .collect(),
    }
}

fn ingest_config(kafka: &KafkaArgs) -> IngestConfig {
    let mut config = IngestConfig::new(
        kafka.brokers.clone(),
        kafka.topics.clone(),
        kafka.group_id.clone(),
    );
    config.dlq_topics = kafka.dlq_topics.clone();
    config.batch_size = kafka.batch.batch_size.max(1);
    config.batch_linger = Duration::from_millis(kafka.batch.batch_linger_ms);
    config
}

/// sagascope's own group first (its lag is the ingest health's), then the
/// `--watch-groups`, on the ingest's topics.
fn group_watch_config(kafka: &KafkaArgs) -> GroupWatchConfig {
    let groups = std::iter::once(kafka.group_id.clone())
        .chain(kafka.watch_groups.iter().cloned())
        .collect();
    let mut config = GroupWatchConfig::new(kafka.brokers.clone(), groups, kafka.topics.clone());
    config.interval = Duration::from_secs(kafka.watch_interval_seconds.max(1));
    config
}

/// Ingest and HTTP started with a decoder for these rules, and the stall
/// sweep running: what `serve` and `demo` share.
#[allow(clippy::too_many_arguments)]
async fn start_pipeline(
    store: Store,
    kafka: &KafkaArgs,
    rules: Rules,
    rules_args: &RulesArgs,
    http: &HttpArgs,
    auth: AuthConfig,
    retry: &sagascope_redrive::RetryArgs,
    spans: &crate::cli::SpanArgs,
) -> anyhow::Result<run::Running> {
    let policy = stall_policy(rules_args, &rules);
    let thresholds = rules.thresholds();
    let compensations = rules.compensation_pairs().clone();
    let decoder = Decoder::new(rules).with_max_payload_bytes(rules_args.max_payload_bytes);
    let retry = sagascope_redrive::RedriveConfig::from_args(retry, &kafka.brokers);
    let running = run::start_with_spans(
        store,
        Some((ingest_config(kafka), decoder)),
        http.listen,
        &http.site_root,
        thresholds,
        auth,
        Some(retry),
        crate::span_settings::SpanSettings::from_args(spans)?,
    )
    .await?;
    // The rules' step ↔ compensation pairs judge compensated sagas with
    // the learned ones (each learning round).
    running.state.flows.declare_compensations(compensations);
    running.learn_flows(policy.default_timeout);
    running.sweep_stalls(policy);
    running.watch_groups(group_watch_config(kafka));
    running.sweep_unmatched_spans(spans.spans_unmatched_window);
    if let Some(listen) = spans.otlp_listen {
        let addr = running.serve_otlp(listen).await?;
        tracing::info!(%addr, "OTLP/HTTP receiver listening (POST /v1/traces)");
    }
    Ok(running)
}

pub async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    open_store(&args.store.database_url).await?;
    println!(
        "migrations applied to {}",
        redact_url(&args.store.database_url)
    );
    Ok(())
}

/// Rebuilds every saga from the stored events under the given rules,
/// printing progress; the server may keep running meanwhile.
pub async fn reproject(args: ReprojectArgs) -> anyhow::Result<()> {
    let store = open_store(&args.store.database_url).await?;
    let rules = load_rules(&args.rules)?;
    let decoder = Decoder::new(rules).with_max_payload_bytes(args.rules.max_payload_bytes);
    let mut last_percent = None;
    let report = store
        .reproject(&decoder, args.page_size, |p| {
            let percent = (p.events_done * 100)
                .checked_div(p.events_total)
                .unwrap_or(100);
            if last_percent != Some(percent) {
                last_percent = Some(percent);
                println!(
                    "reprojecting: {}/{} events ({percent}%)",
                    p.events_done, p.events_total
                );
            }
        })
        .await
        .context("reprojection failed; nothing was changed")?;
    println!(
        "reprojected {} events into {} sagas and streams ({} merged) in {:.1} s",
        report.events,
        report.sagas,
        report.merged,
        report.elapsed.as_secs_f64()
    );
    Ok(())
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let auth = AuthConfig::from_args(&args.auth)?;
    let store = open_store(&args.store.database_url).await?;
    let rules = load_rules(&args.rules)?;
    let running = start_pipeline(
        store,
        &args.kafka,
        rules,
        &args.rules,
        &args.http,
        auth,
        &args.retry,
        &args.spans,
    )
    .await?;
    // Retention (bounded batches, every --retention-interval).
    running.retain(crate::retention::RetentionConfig::from_args(
        &args.retention,
    ));
    tracing::info!(url = %format!("http://{}", running.addr), "sagascope is serving");
    running.until_signal().await;
    Ok(())
}

/// Everything in one process: mock Kafka cluster, simulator, SQLite, UI.
pub async fn demo(mut args: DemoArgs) -> anyhow::Result<()> {
    let topics: Vec<&str> = ALL_TOPICS.iter().chain(&DLT_TOPICS).copied().collect();
    let kafka =
        MockKafka::start(1, &topics, 3).context("cannot start the in-process Kafka cluster")?;
    if let Some(dir) = args
        .database_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", args.database_path.display()));
    }
    let store = open_store(&format!("sqlite://{}", args.database_path.display())).await?;
    let auth = AuthConfig::from_args(&args.auth)?;
    let anonymous_viewer = auth.anonymous_viewer;
    let demo_users = crate::auth::admin_cli::create_demo_users(
        &store,
        args.operator_password.as_ref().map(|p| p.expose()),
        args.viewer_password.as_ref().map(|p| p.expose()),
    )
    .await?;

    // The simulator exports its services' spans to the OTLP receiver with
    // this token; a random one unless --otlp-token names it.
    if args.spans.otlp_token.is_none() {
        let token: String = (0..16)
            .map(|_| format!("{:02x}", rand::rng().random::<u8>()))
            .collect();
        args.spans.otlp_token = Some(token.parse().unwrap_or_else(|never| match never {}));
    }
    let simulator = Simulator::new(SimulatorConfig {
        brokers: kafka.bootstrap_servers().to_string(),
        events_per_second: args.rate,
        poison_ratio: args.poison_ratio,
        seed: rand::rng().random(),
    })?
    .with_dead_letter_ratio(DEMO_DEAD_LETTER_RATIO);
    // Its services' spans go to the demo's own OTLP receiver, with the token.
    let export = crate::simulate_command::demo_span_export(
        args.http.listen,
        args.spans.otlp_token.as_ref().map(|token| token.expose()),
    );
    let simulator = match export {
        Some(export) => simulator.with_span_export(export),
        None => simulator,
    };
    // The payment service (a consumer group with lag to watch) joins its
    // group while the history is produced, so it has committed by the time
    // the first lag poll runs.
    let (stop_simulator, stop_rx) = watch::channel(false);
    let service = ServiceConsumer::new(ServiceConsumerConfig::payment_service(
        kafka.bootstrap_servers(),
    ))?;
    let service_task = tokio::spawn(service.run(stop_rx.clone()));
    // Processes re-driven dead letters: resumes the sagas they held up
    // (parked by this simulator and its clones), or dead-letters them anew.
    let retry_consumer = RetryConsumer::new(
        RetryConsumerConfig::demo(kafka.bootstrap_servers(), rand::rng().random()),
        &simulator,
    )?;
    let retry_task = tokio::spawn(retry_consumer.run(stop_rx.clone()));
    produce_history(&simulator, args.history, args.poison_ratio > 0.0).await?;
    wait_for_first_commit(kafka.bootstrap_servers(), PAYMENT_SERVICE_GROUP).await;

    let kafka_args = KafkaArgs {
        brokers: kafka.bootstrap_servers().to_string(),
        topics: ALL_TOPICS.iter().map(|t| t.to_string()).collect(),
        // The default pattern covers the services' `.DLT` topics.
        dlq_topics: vec![sagascope_ingest::DEFAULT_DLQ_TOPICS.into()],
        group_id: "sagascope-demo".into(),
        // A service's consumer group beside sagascope's own, with lag.
        watch_groups: vec![PAYMENT_SERVICE_GROUP.into()],
        watch_interval_seconds: 5,
        batch: crate::cli::BatchArgs {
            batch_size: 1000,
            batch_linger_ms: 100,
        },
    };
    // The example rules describe the simulated sagas; --rules replaces them.
    let demo_rules = match &args.rules.rules {
        Some(_) => load_rules(&args.rules)?,
        None if args.without_rules => Rules::default(),
        None => Rules::parse(DEMO_RULES)?,
    };
    let running = start_pipeline(
        store,
        &kafka_args,
        demo_rules,
        &args.rules,
        &args.http,
        auth,
        &args.retry,
        &args.spans,
    )
    .await?;
    // Retention (bounded batches, every --retention-interval).
    running.retain(crate::retention::RetentionConfig::from_args(
        &args.retention,
    ));
    let simulator_task = tokio::spawn(async move { simulator.run(stop_rx).await });

    println!();
    println!("  sagascope demo is running: http://{}/", running.addr);
    println!(
        "  in-process Kafka at {} · SQLite at {}",
        kafka.bootstrap_servers(),
        args.database_path.display()
    );
    println!("  simulating ~{} messages/s · Ctrl-C to stop", args.rate);
    for (name, role, password) in &demo_users {
        println!("  sign in as {name:<8} ({role}) with password {password}");
    }
    if anonymous_viewer {
        println!("  --anonymous-viewer: reading needs no sign-in");
    }
    println!();

    running.until_signal().await;
    let _ = stop_simulator.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), simulator_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), service_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), retry_task).await;
    drop(kafka);
    Ok(())
}

/// Share of the history's payment and stock events that are dead-lettered
/// (about a dozen dead letters for the default 150 sagas).
const HISTORY_DEAD_LETTER_RATIO: f64 = 0.1;

/// Sagas of the last 30 minutes, so the demo opens on a populated screen
/// with every outcome present; they travel through Kafka like the rest.
/// The demo's past: `count` sagas spread over the last 30 minutes (the
/// first ones cover every outcome), product events beside them, and, unless
/// poison is off, one message of every bad kind so the ingest-errors page
/// shows them all from the start. The past dead-letters more often than the
/// live traffic, so the DLQ opens with every failure group and an age; a
/// dead-lettered saga waits for its retry, so the guaranteed outcomes are
/// produced without dead letters.
async fn produce_history(
    simulator: &Simulator,
    count: usize,
    with_poison: bool,
) -> anyhow::Result<()> {
    let guaranteed_simulator = &simulator.clone().with_dead_letter_ratio(0.0);
    let simulator = &simulator
        .clone()
        .with_dead_letter_ratio(HISTORY_DEAD_LETTER_RATIO);
    let mut rng = StdRng::seed_from_u64(rand::rng().random());
    let now = chrono::Utc::now();
    let guaranteed = [
        (SagaKind::Order, PlannedOutcome::Compensated),
        (SagaKind::Order, PlannedOutcome::TimedOut),
        (SagaKind::Order, PlannedOutcome::Failed),
        (SagaKind::ChatMessage, PlannedOutcome::CompensationFailed),
        (SagaKind::ScanReward, PlannedOutcome::Compensated),
        (SagaKind::ScanReward, PlannedOutcome::Stalled),
        (SagaKind::OrderChoreography, PlannedOutcome::Completed),
        (SagaKind::OrderChoreography, PlannedOutcome::Compensated),
        (SagaKind::OrderChoreography, PlannedOutcome::Stalled),
    ];
    for i in 0..count {
        let (plan, producer) = match guaranteed.get(i) {
            Some((kind, outcome)) => (
                SagaPlan::with_outcome(*kind, *outcome, &mut rng),
                guaranteed_simulator,
            ),
            None => (
                SagaPlan::random(SagaKind::random(&mut rng), &mut rng),
                simulator,
            ),
        };
        let base = now - chrono::Duration::seconds(rng.random_range(15..1800));
        producer.produce_plan_now(&plan, base, &mut rng).await?;
        if i % 3 == 0 {
            simulator
                .produce_traffic_now(&product_event(&mut rng), base, &mut rng)
                .await?;
        }
    }
    if with_poison {
        for kind in PoisonKind::ALL {
            let base = now - chrono::Duration::seconds(rng.random_range(15..1800));
            simulator
                .produce_traffic_now(&kind.plan(&mut rng), base, &mut rng)
                .await?;
        }
    }
    Ok(())
}

/// Waits (at most 15 s) until `group` has committed on some partition of the
/// demo's topics. Until its first commit a watched group's lag is its whole
/// backlog, which would greet a fresh demo with a group-lag warning that no
/// real service in steady state would show.
async fn wait_for_first_commit(brokers: &str, group: &str) {
    let config = GroupWatchConfig::new(
        brokers,
        vec![group.to_string()],
        ALL_TOPICS.iter().map(|t| t.to_string()).collect(),
    );
    let Ok(poller) = sagascope_ingest::GroupLagPoller::new(&config) else {
        return;
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while tokio::time::Instant::now() < deadline {
        let committed = poller
            .poll()
            .await
            .iter()
            .any(|g| g.partitions.iter().any(|p| p.committed.is_some()));
        if committed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    poller.close().await;
}
