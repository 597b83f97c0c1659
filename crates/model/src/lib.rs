//! Types shared by the server and the browser build: saga statuses, event
//! phases and the JSON shapes of `/api/v1`. Kept free of server-only
//! dependencies because `app/` compiles it to wasm.

mod api_shapes;
mod format;
mod metrics_shapes;
mod phase;
mod saga_status;

pub use api_shapes::{
    encode_cursor, percent_encode, Header, IngestErrorView, SagaDetail, SagaFilter, SagaPage,
    SagaQuery, SagaSummary, StreamMessage, TimelineEvent, TraceView, DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
};
pub use format::{format_duration_ms, shorten_id};
pub use metrics_shapes::{
    ratio, Alert, AlertLevel, AlertList, DlqSummary, GroupLag, GroupPartitionLag, IngestHealth,
    IngestPoint, LagPoint, LagReport, LagStats, MetricsWindow, OutcomeCounts, OverviewMetrics,
    Percentiles, RatePoint, SagaTypeMetrics, StepMetrics, TopicLag,
};
pub use phase::Phase;
pub use saga_status::SagaStatus;

/// Timestamps cross the API as RFC 3339 UTC strings.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
