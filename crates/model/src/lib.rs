//! Types shared by the server and the browser build: saga statuses, event
//! phases and the JSON shapes of `/api/v1`. Kept free of server-only
//! dependencies because `app/` compiles it to wasm.

mod api_shapes;
mod auth_shapes;
mod byte_text;
mod dlq_shapes;
mod flow_shapes;
mod format;
mod local_path;
mod metrics_shapes;
mod phase;
mod query_params;
mod retry_shapes;
mod saga_status;
mod span_shapes;
mod span_tree;
mod store_outage;

pub use api_shapes::{
    encode_cursor, percent_encode, Header, IngestErrorView, SagaDetail, SagaFilter, SagaPage,
    SagaQuery, SagaSort, SagaSummary, StreamMessage, TimelineEvent, TraceView, DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
};
pub use auth_shapes::{
    audit_result, encode_audit_cursor, role_rank, AuditEntryView, AuditFilter, AuditPage,
    AuditQuery, CreatedApiToken, CurrentUser, LoginResponse, SessionInfo, UserView,
    DEFAULT_AUDIT_PAGE_SIZE, MAX_AUDIT_PAGE_SIZE, ROLE_NAMES,
};
pub use byte_text::{base64_decode, base64_encode, ByteText};
pub use dlq_shapes::{
    encode_dlq_cursor, DeadLetterDetail, DeadLetterGroup, DeadLetterGroups, DeadLetterHeader,
    DeadLetterPage, DeadLetterState, DeadLetterSummary, DlqFilter, DlqQuery, DlqTopicDepth,
};
pub use flow_shapes::{
    FlowEdge, FlowModel, FlowNode, FlowNodeKind, WaitingOn, FLOW_MAX_INSTANCES,
    FLOW_MIN_HOPS_FOR_QUIET, FLOW_MIN_QUIET_MS, FLOW_OVERDUE_FLOOR_MS, FLOW_QUIET_P99_FACTOR,
    FLOW_TERMINAL_MIN_INSTANCES, FLOW_TERMINAL_SHARE,
};
pub use format::{format_duration_ms, shorten_id};
pub use local_path::safe_next;
pub use metrics_shapes::{
    ratio, Alert, AlertLevel, AlertList, CatchUpState, DlqSummary, GroupLag, GroupPartitionLag,
    IngestCatchUp, IngestHealth, IngestPoint, LagPoint, LagReport, LagStats, MetricsWindow,
    OutcomeCounts, OverviewMetrics, Percentiles, RatePoint, SagaTypeMetrics, StepMetrics, TopicLag,
};
pub use phase::Phase;
pub use retry_shapes::{
    BulkRetryPreview, BulkRetryRequest, DiscardRequest, RetryAttemptView, RetryJobState,
    RetryJobView, RetryOutcome, RetryRequest, DISCARDABLE_STATES, IDEMPOTENCY_KEY_HEADER,
    RETRYABLE_STATES, RETRY_COUNT_HEADER, RETRY_OF_HEADER,
};
pub use saga_status::SagaStatus;
pub use span_shapes::{
    SpanAttribute, SpanEventView, SpanKind, SpanSource, SpanStatus, SpanView, TraceSpans,
    MAX_SPANS_PER_TRACE,
};
pub use span_tree::{
    build_span_tree, format_duration_us, group_thousands, micros, service_colour, service_colours,
    window_slice, SpanAxis, SpanAxisTick, SpanRow, SpanTree, TimeRange, MIN_BAR_PERCENT,
    SERVICE_COLOURS, SPAN_AXIS_MAX_INTERVALS,
};
pub use store_outage::{is_store_unavailable_message, StoreOutage, STORE_UNAVAILABLE};

/// Timestamps cross the API as RFC 3339 UTC strings.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
