//! `sagascope simulate`: the sample saga producer of the docker-compose
//! deployment. The demo's traffic simulator (every kind of saga, product
//! events, some bad messages and dead letters), the payment service's
//! consumer group and the re-drive processing, against a real Kafka
//! cluster, with the simulated services' spans exported to an OTLP/HTTP
//! endpoint (e.g. an OpenTelemetry Collector), until SIGTERM or Ctrl-C.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use rand::Rng;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use sagascope_simulator::{
    RetryConsumer, RetryConsumerConfig, ServiceConsumer, ServiceConsumerConfig, Simulator,
    SimulatorConfig, SpanExport, ALL_TOPICS, DLT_TOPICS,
};
use tokio::sync::watch;

use crate::cli::SimulateArgs;

/// How long the simulator waits for the cluster to accept its topics (it
/// may start before the brokers are ready).
const TOPIC_CREATION_DEADLINE: Duration = Duration::from_secs(120);
const TOPIC_CREATION_RETRY: Duration = Duration::from_secs(2);

pub async fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    simulate_until(args, wait_for_signal()).await
}

/// Runs the simulator until `stop` completes (SIGTERM or Ctrl-C for the
/// command; tests stop it themselves).
pub async fn simulate_until(
    args: SimulateArgs,
    stop_when: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.rate.is_finite() && args.rate > 0.0,
        "--rate must be a positive number of messages per second"
    );
    anyhow::ensure!(args.partitions >= 1, "--partitions must be at least 1");
    let topics: Vec<&str> = ALL_TOPICS.iter().chain(&DLT_TOPICS).copied().collect();
    create_missing_topics(
        &args.brokers,
        &topics,
        args.partitions,
        args.replication_factor,
    )
    .await?;

    let seed = args.seed.unwrap_or_else(|| rand::rng().random());
    let mut simulator = Simulator::new(SimulatorConfig {
        brokers: args.brokers.clone(),
        events_per_second: args.rate,
        poison_ratio: args.poison_ratio.clamp(0.0, 1.0),
        seed,
    })?
    .with_dead_letter_ratio(args.dead_letter_ratio);
    if let Some(endpoint) = &args.otlp_endpoint {
        simulator = simulator.with_span_export(SpanExport {
            endpoint: endpoint.clone(),
            bearer_token: args
                .otlp_bearer_token
                .as_ref()
                .map(|token| token.expose().to_string()),
        });
    }

    let (stop, stop_rx) = watch::channel(false);
    let service = ServiceConsumer::new(ServiceConsumerConfig::payment_service(&args.brokers))?;
    let service_task = tokio::spawn(service.run(stop_rx.clone()));
    let retry_consumer = RetryConsumer::new(
        RetryConsumerConfig::demo(&args.brokers, seed.wrapping_add(1)),
        &simulator,
    )?;
    let retry_task = tokio::spawn(retry_consumer.run(stop_rx.clone()));
    let simulator_task = tokio::spawn(async move { simulator.run(stop_rx).await });
    tracing::info!(
        brokers = %args.brokers,
        rate = args.rate,
        spans_to = args.otlp_endpoint.as_deref().unwrap_or("nowhere"),
        "simulating sagas; SIGTERM or Ctrl-C stops"
    );

    stop_when.await;
    tracing::info!("stopping the simulator");
    let _ = stop.send(true);
    // The simulator flushes its spans as it stops.
    let _ = tokio::time::timeout(Duration::from_secs(15), simulator_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), service_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), retry_task).await;
    Ok(())
}

/// Creates those of `topics` the cluster does not have yet, retrying while
/// the brokers are not reachable. Existing topics are left alone.
async fn create_missing_topics(
    brokers: &str,
    topics: &[&str],
    partitions: i32,
    replication_factor: i32,
) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .context("cannot create the Kafka admin client")?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let deadline = tokio::time::Instant::now() + TOPIC_CREATION_DEADLINE;
    loop {
        let failure = match existing_topics(brokers).await {
            Ok(existing) => {
                let missing: Vec<NewTopic> = topics
                    .iter()
                    .filter(|topic| !existing.contains(**topic))
                    .map(|topic| {
                        NewTopic::new(
                            topic,
                            partitions,
                            TopicReplication::Fixed(replication_factor),
                        )
                    })
                    .collect();
                if missing.is_empty() {
                    return Ok(());
                }
                match admin.create_topics(&missing, &options).await {
                    Ok(results) => {
                        let failed: Vec<String> = results
                            .into_iter()
                            .filter_map(|result| match result {
                                Ok(topic) => {
                                    tracing::info!(%topic, partitions, "topic created");
                                    None
                                }
                                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => None,
                                Err((topic, code)) => Some(format!("{topic}: {code}")),
                            })
                            .collect();
                        if failed.is_empty() {
                            return Ok(());
                        }
                        failed.join(", ")
                    }
                    Err(error) => error.to_string(),
                }
            }
            Err(error) => error.to_string(),
        };
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("cannot create the simulator's topics on {brokers}: {failure}");
        }
        tracing::warn!(%failure, "cannot create the simulator's topics yet, retrying");
        tokio::time::sleep(TOPIC_CREATION_RETRY).await;
    }
}

/// The topics the cluster has (a metadata request, on the blocking pool).
async fn existing_topics(brokers: &str) -> anyhow::Result<HashSet<String>> {
    let brokers = brokers.to_string();
    tokio::task::spawn_blocking(move || {
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()?;
        let metadata = client.fetch_metadata(None, Duration::from_secs(10))?;
        Ok(metadata
            .topics()
            .iter()
            .filter(|topic| topic.error().is_none())
            .map(|topic| topic.name().to_string())
            .collect())
    })
    .await?
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Where `sagascope demo`'s simulator sends its services' spans: the
/// demo's own OTLP receiver (`POST /v1/traces` on `listen`, reached on
/// loopback when it listens on every interface), with `token`. None when
/// the port is only chosen at start (0): the address is not known yet
/// when the history is produced.
pub fn demo_span_export(listen: SocketAddr, token: Option<&str>) -> Option<SpanExport> {
    if listen.port() == 0 {
        tracing::warn!("--listen with port 0: the simulator exports no spans");
        return None;
    }
    let host = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Some(SpanExport {
        endpoint: format!("http://{}/v1/traces", SocketAddr::new(host, listen.port())),
        bearer_token: token.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_exports_to_its_own_receiver_on_loopback() {
        let export = demo_span_export("0.0.0.0:3000".parse().unwrap(), Some("t")).unwrap();
        assert_eq!(export.endpoint, "http://127.0.0.1:3000/v1/traces");
        assert_eq!(export.bearer_token.as_deref(), Some("t"));
        let export = demo_span_export("[::]:8080".parse().unwrap(), None).unwrap();
        assert_eq!(export.endpoint, "http://[::1]:8080/v1/traces");
        let export = demo_span_export("10.1.2.3:3000".parse().unwrap(), None).unwrap();
        assert_eq!(export.endpoint, "http://10.1.2.3:3000/v1/traces");
        assert_eq!(demo_span_export("127.0.0.1:0".parse().unwrap(), None), None);
    }
}
