use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use sagascope_domain::redaction::Redaction;
use sagascope_ingest::{GroupLagBoard, IngestStatus};
use sagascope_model::StreamMessage;
use sagascope_overview::OverviewService;
use sagascope_redrive::RedriveService;
use sagascope_store::Store;
use tokio::sync::{broadcast, watch};

use crate::auth::AuthState;

/// Shared by every handler. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Committed changes (this process's and, on Postgres, the other
    /// replicas'), fanned out to SSE subscribers. This process's producers
    /// send on the relay's local channel (`Running::local_live`), so their
    /// messages reach the other replicas too.
    pub live: broadcast::Sender<StreamMessage>,
    /// `live`'s messages numbered and serialised once, as SSE subscribers
    /// read them (`live_frames.rs`).
    pub live_frames: crate::live_frames::LiveFrames,
    /// Changes when live messages from other replicas may have been missed
    /// (server/src/live_relay.rs): SSE subscribers are told to refetch.
    pub live_resync: watch::Receiver<u64>,
    pub ingest: Option<Arc<IngestStatus>>,
    /// The latest lag of the `--watch-groups` consumer groups.
    pub groups: Arc<GroupLagBoard>,
    /// Figures of the overview, `/api/v1/metrics/*` and the alerts.
    pub overview: OverviewService,
    pub leptos_options: LeptosOptions,
    /// Turns true on shutdown so long-lived SSE streams end.
    pub shutdown: watch::Receiver<bool>,
    /// Login and roles: configuration and login rate limiters.
    pub auth: Arc<AuthState>,
    /// Re-drive of dead letters; None without Kafka (the retry actions
    /// answer 503, the job reads still work).
    pub redrive: Option<RedriveService>,
    /// The rules' `[redact]` fields and headers, applied to dead letters on
    /// the way out (they are stored byte-exact for re-drive).
    pub redaction: Arc<Redaction>,
    /// The spans beside a trace or saga, from the configured source.
    pub spans: sagascope_spans::SpanService,
    /// Who may send spans to `POST /v1/traces`.
    pub otlp: Arc<crate::span_settings::OtlpReceiverConfig>,
    /// Live streams open, bounded per session and in all.
    pub streams: Arc<crate::http::stream_limits::StreamLimits>,
    /// Each saga type's learned flow (`Running::learn_flows` keeps them
    /// current; the stall sweep ends undeclared sagas by them).
    pub flows: sagascope_flows::FlowModels,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> LeptosOptions {
        state.leptos_options.clone()
    }
}
