//! Starting and stopping the parts of a running sagascope: the ingest loop
//! and the HTTP server. Shared by `serve`, `demo` and the API tests.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use leptos::config::LeptosOptions;
use sagascope_domain::{Decoder, Thresholds};
use sagascope_ingest::{watch_group_lag, GroupLagBoard, GroupWatchConfig, IngestConfig, Ingestor};
use sagascope_model::StreamMessage;
use sagascope_overview::OverviewService;
use sagascope_redrive::{RedriveConfig, RedriveService};
use sagascope_store::{StallPolicy, Store};
use std::sync::Arc;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::app_state::AppState;
use crate::auth::{AuthConfig, AuthState};

/// Live messages buffered per subscriber before it counts as lagging.
const LIVE_BUFFER: usize = 4096;
/// Batches of live frames (live_frames.rs, at most 128 messages each) a
/// subscriber may fall behind before it is told `lagged`: 32,768 messages
/// when the ingest is busy (a few seconds of it), fewer when it is not.
const FRAME_BATCHES: usize = 256;

pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: watch::Sender<bool>,
    ingest: Option<JoinHandle<()>>,
    /// The re-drive's job runner and resolve sweep.
    redrive: Option<JoinHandle<()>>,
    http: JoinHandle<std::io::Result<()>>,
    /// Where this process's live messages go: copied to `state.live` and,
    /// on Postgres, to the other replicas (`live_relay.rs`).
    pub local_live: broadcast::Sender<StreamMessage>,
    relay: Option<crate::live_relay::LiveRelay>,
    /// Kept so `state.live_resync` stays open.
    _live_resync: watch::Sender<u64>,
}

pub fn leptos_options(site_root: &Path, addr: SocketAddr) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("sagascope")
        .site_root(site_root.to_string_lossy().to_string())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build()
}

/// [`start_with_auth`] with anonymous read access
/// ([`AuthConfig::anonymous_viewer`]): reads need no login, every change
/// still does. For the API tests and benchmarks; `serve` and `demo` pass
/// the configured authentication.
pub async fn start(
    store: Store,
    ingest: Option<(IngestConfig, Decoder)>,
    listen: SocketAddr,
    site_root: &Path,
    thresholds: Thresholds,
) -> anyhow::Result<Running> {
    start_with_auth(
        store,
        ingest,
        listen,
        site_root,
        thresholds,
        AuthConfig::anonymous_viewer(),
    )
    .await
}

/// [`start_with_retry`] with the re-drive's defaults on the ingest's
/// cluster (no re-drive without an ingest).
pub async fn start_with_auth(
    store: Store,
    ingest: Option<(IngestConfig, Decoder)>,
    listen: SocketAddr,
    site_root: &Path,
    thresholds: Thresholds,
    auth: AuthConfig,
) -> anyhow::Result<Running> {
    let retry = ingest.as_ref().map(|(config, _)| {
        let mut retry = RedriveConfig::new(config.brokers.clone());
        retry.client_properties = config.client_properties.clone();
        retry
    });
    start_with_retry(store, ingest, listen, site_root, thresholds, auth, retry).await
}

/// [`start_with_spans`] with spans read from the store and the OTLP
/// receiver off.
pub async fn start_with_retry(
    store: Store,
    ingest: Option<(IngestConfig, Decoder)>,
    listen: SocketAddr,
    site_root: &Path,
    thresholds: Thresholds,
    auth: AuthConfig,
    retry: Option<RedriveConfig>,
) -> anyhow::Result<Running> {
    start_with_spans(
        store,
        ingest,
        listen,
        site_root,
        thresholds,
        auth,
        retry,
        crate::span_settings::SpanSettings::default(),
    )
    .await
}

/// Starts the ingest (when configured), the re-drive (when configured:
/// its job runner resumes the jobs a stopped process left, and its resolve
/// sweep) and the HTTP server on `listen` (port 0 picks a free port; see
/// `Running::addr`), with the span source and OTLP receiver of `spans`.
#[allow(clippy::too_many_arguments)]
pub async fn start_with_spans(
    store: Store,
    ingest: Option<(IngestConfig, Decoder)>,
    listen: SocketAddr,
    site_root: &Path,
    thresholds: Thresholds,
    auth: AuthConfig,
    retry: Option<RedriveConfig>,
    spans: crate::span_settings::SpanSettings,
) -> anyhow::Result<Running> {
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (live, _) = broadcast::channel(LIVE_BUFFER);
    // Before the ingest starts, so its first batch is recorded.
    crate::http::prometheus();
    let (live_resync, live_resync_rx) = watch::channel(0u64);
    let (local_live, relay) =
        crate::live_relay::start_live_relay(&store, live.clone(), live_resync.clone(), LIVE_BUFFER)
            .await
            .context("cannot start the live relay")?;
    let own_group = ingest.as_ref().map(|(config, _)| config.group_id.clone());
    let consumes_dlqs = ingest
        .as_ref()
        .is_some_and(|(config, _)| config.dlq_topics.iter().any(|t| !t.trim().is_empty()));
    let redaction = Arc::new(
        ingest
            .as_ref()
            .map(|(_, decoder)| decoder.rules().redaction().clone())
            .unwrap_or_default(),
    );
    let (ingest_task, ingest_status) = match ingest {
        Some((config, decoder)) => {
            let ingestor = Ingestor::new(config, store.clone(), decoder, local_live.clone())
                .context("cannot create the Kafka consumer")?;
            let status = ingestor.status();
            (
                Some(tokio::spawn(ingestor.run(shutdown_rx.clone()))),
                Some(status),
            )
        }
        None => (None, None),
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let groups = Arc::new(GroupLagBoard::default());
    let overview = OverviewService::new(
        store.clone(),
        ingest_status.clone(),
        groups.clone(),
        thresholds,
        own_group,
    )
    .with_dead_letter_topics(consumes_dlqs);
    let redrive = match retry {
        Some(config) => Some(
            RedriveService::new(store.clone(), config)
                .context("cannot create the re-drive producer")?,
        ),
        None => None,
    };
    let redrive_task = redrive.as_ref().map(|r| r.start(shutdown_rx.clone()));
    let span_service = sagascope_spans::SpanService::new(store.clone(), spans.service)
        .context("invalid span source")?;
    let state = AppState {
        store,
        live_frames: crate::live_frames::start_live_frames(&live, FRAME_BATCHES),
        live,
        live_resync: live_resync_rx,
        ingest: ingest_status,
        groups,
        overview,
        leptos_options: leptos_options(site_root, addr),
        shutdown: shutdown_rx.clone(),
        auth: Arc::new(AuthState::new(auth)),
        redrive,
        redaction,
        spans: span_service,
        otlp: Arc::new(spans.receiver),
        streams: Default::default(),
        flows: Default::default(),
    };
    // `/readyz`, the API's 503s and the pages' banner read what it finds.
    tokio::spawn(sagascope_store::watch_store_availability(
        state.store.clone(),
        shutdown_rx.clone(),
    ));
    tokio::spawn(crate::auth::denials::summarise_denials(
        state.store.clone(),
        state.auth.clone(),
        shutdown_rx.clone(),
    ));
    let router = crate::http::router(state.clone());
    let mut stop = shutdown_rx;
    let http = tokio::spawn(async move {
        // The peer address feeds login rate limits, trusted-proxy checks
        // and the audit log.
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stopping| *stopping).await;
        })
        .await
    });
    Ok(Running {
        addr,
        state,
        shutdown,
        ingest: ingest_task,
        redrive: redrive_task,
        http,
        local_live,
        relay,
        _live_resync: live_resync,
    })
}

/// How often quiet sagas are checked for a stall, and undeclared ones for a
/// learned end: an instance that stopped at a learned end event reads
/// finished within this of its event being stored.
const STALL_SWEEP_EVERY: Duration = Duration::from_secs(2);

/// How often every recent saga type's flow is learned again.
const LEARN_FLOWS_EVERY: Duration = Duration::from_secs(10);

impl Running {
    /// Marks quiet sagas `stalled`, and ends undeclared ones by their
    /// type's learned flow, every few seconds; pushes them to live
    /// subscribers, until shutdown.
    pub fn sweep_stalls(&self, policy: StallPolicy) {
        let store = self.state.store.clone();
        let flows = self.state.flows.clone();
        // Through the relay, so other replicas' pages see the stall too.
        let live = self.local_live.clone();
        let mut shutdown = self.state.shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(STALL_SWEEP_EVERY);
            loop {
                tokio::select! {
                    changed = shutdown.changed() => if changed.is_err() || *shutdown.borrow() { break },
                    _ = tick.tick() => {
                        let learned = flows.learned_ends();
                        match store.sweep_quiet_sagas(&policy, &learned, chrono::Utc::now()).await {
                            Ok(stalled) => {
                                for saga in stalled {
                                    let _ = live.send(StreamMessage::Saga { saga });
                                }
                            }
                            Err(error) => tracing::warn!(%error, "stall sweep failed"),
                        }
                    },
                }
            }
        });
    }

    /// Learns every recent saga type's flow now and every few seconds,
    /// until shutdown; `stall_after` bounds the learned quiet times.
    pub fn learn_flows(&self, stall_after: Duration) {
        let store = self.state.store.clone();
        let flows = self.state.flows.clone();
        let mut shutdown = self.state.shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(LEARN_FLOWS_EVERY);
            loop {
                tokio::select! {
                    changed = shutdown.changed() => if changed.is_err() || *shutdown.borrow() { break },
                    _ = tick.tick() => if let Err(error) = flows.learn(&store, chrono::Utc::now(), stall_after).await {
                        tracing::warn!(%error, "learning the saga flows failed");
                    },
                }
            }
        });
    }

    /// Removes old data in bounded batches every `config.interval`
    /// (`retention.rs`), until shutdown; nothing when every age is off.
    pub fn retain(&self, config: crate::retention::RetentionConfig) {
        // Always runs, even with every age `off`: the rollups' own bounded
        // pruning (past what any overview window reads) is part of a pass.
        let store = self.state.store.clone();
        let shutdown = self.state.shutdown.clone();
        tokio::spawn(crate::retention::run_retention(store, config, shutdown));
    }

    /// Polls the lag of the watched consumer groups every
    /// `config.interval` onto `state.groups` (overview, lag API) and the
    /// `sagascope_consumer_group_lag` gauge, until shutdown.
    pub fn watch_groups(&self, config: GroupWatchConfig) {
        let board = self.state.groups.clone();
        let shutdown = self.state.shutdown.clone();
        tokio::spawn(watch_group_lag(config, board, shutdown));
    }

    /// Stops accepting requests, drains the ingest (last batch written and
    /// committed) and closes the store.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        if let Some(ingest) = self.ingest {
            if tokio::time::timeout(Duration::from_secs(30), ingest)
                .await
                .is_err()
            {
                tracing::warn!("ingest did not stop within 30 s");
            }
        }
        // After the drain, so the last batch reaches the other replicas.
        if let Some(relay) = self.relay {
            relay.stop().await;
        }
        // Running jobs stop after their chunk in flight and give their
        // lease back, so the next start resumes them at once.
        if let Some(redrive) = self.redrive {
            if tokio::time::timeout(Duration::from_secs(40), redrive)
                .await
                .is_err()
            {
                tracing::warn!("re-drive did not stop within 40 s");
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.http).await;
        self.state.store.close().await;
    }

    /// Runs until Ctrl-C or SIGTERM, then shuts down gracefully.
    pub async fn until_signal(self) {
        wait_for_signal().await;
        tracing::info!("shutting down");
        self.shutdown().await;
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
