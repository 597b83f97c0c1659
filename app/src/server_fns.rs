//! Server functions: the pages' data, read from the store the server puts in
//! the Leptos context (`provide_context(store.clone())`). During SSR they run
//! in-process; after hydration the browser calls them over HTTP (client-side
//! navigation, filter changes).

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use sagascope_model::{
    AuditFilter, AuditPage, BulkRetryPreview, DeadLetterDetail, DeadLetterGroups, DeadLetterPage,
    DeadLetterSummary, DlqFilter, FlowModel, IngestErrorView, OverviewMetrics, RetryAttemptView,
    RetryJobView, SagaDetail, SagaPage, SessionInfo, Timestamp, TraceView,
};
use serde::{Deserialize, Serialize};

use crate::components::dead_letter::DlqParams;
use crate::filters::ListParams;

/// How many ingest errors the ingest page shows.
pub const INGEST_ERROR_LIMIT: u32 = 200;

/// The store, unless it is known to be down: then the outage at once (the
/// page shows its waiting state under the banner) rather than a wait for
/// the pool's connect timeout.
#[cfg(feature = "ssr")]
fn store() -> Result<sagascope_store::Store, ServerFnError> {
    let store = use_context::<sagascope_store::Store>().ok_or_else(|| {
        ServerFnError::new("the store is not available (missing from the context)")
    })?;
    match store.availability().outage() {
        Some(outage) => Err(ServerFnError::new(outage.message())),
        None => Ok(store),
    }
}

/// A failed read; one that found the database unreachable is worded as an
/// outage (`sagascope_model::STORE_UNAVAILABLE`) and recorded for the banner.
#[cfg(feature = "ssr")]
fn store_error(error: sagascope_store::StoreError) -> ServerFnError {
    if !sagascope_store::is_store_unavailable(&error) {
        return ServerFnError::new(format!("store: {error}"));
    }
    let outage = use_context::<sagascope_store::Store>().and_then(|store| {
        store.availability().record_failure(&error);
        store.availability().outage()
    });
    match outage {
        Some(outage) => ServerFnError::new(outage.message()),
        None => ServerFnError::new(format!("{}: {error}", sagascope_model::STORE_UNAVAILABLE)),
    }
}

/// One page of the saga list. Invalid filters come back as an error whose
/// text says which field is wrong. JSON-encoded: an all-empty filter would
/// be an empty URL-encoded body, which does not decode.
#[server(input = Json)]
pub async fn fetch_saga_page(params: ListParams) -> Result<SagaPage, ServerFnError> {
    let filter = params.resolve(crate::state::now_ms());
    let query = filter.validate().map_err(ServerFnError::new)?;
    // Overdue and "waiting on" are judged by the learned flows
    // (server/src/run.rs keeps them).
    let flows = use_context::<sagascope_flows::FlowModels>();
    let now = chrono::Utc::now();
    let overdue = match &flows {
        Some(flows) if query.overdue => flows.overdue_rules(now),
        _ => Vec::new(),
    };
    let mut page = store()?
        .list_sagas_overdue_by(&query, &overdue)
        .await
        .map_err(store_error)?;
    if let Some(flows) = &flows {
        flows.annotate_waiting(&mut page.items, now);
    }
    Ok(page)
}

#[server]
pub async fn fetch_saga_types() -> Result<Vec<String>, ServerFnError> {
    store()?.saga_types().await.map_err(store_error)
}

/// `None` when no event of that saga was ingested (yet).
#[server]
pub async fn fetch_saga_detail(saga_id: String) -> Result<Option<SagaDetail>, ServerFnError> {
    store()?.saga_detail(&saga_id).await.map_err(store_error)
}

// ---------- learned flows ----------

/// The learned flows the server puts in the context (relearned every 10 s
/// from each recent saga type's latest instances).
#[cfg(feature = "ssr")]
fn flow_models() -> Result<sagascope_flows::FlowModels, ServerFnError> {
    use_context::<sagascope_flows::FlowModels>().ok_or_else(|| {
        ServerFnError::new("the learned flows are not available (missing from the context)")
    })
}

/// The learned flow of one saga type; `None` while none is learned (no
/// instance in the last 24 h, or the first round has not run yet).
#[server]
pub async fn fetch_flow_model(saga_type: String) -> Result<Option<FlowModel>, ServerFnError> {
    Ok(flow_models()?
        .get(&saga_type)
        .map(|model| FlowModel::clone(&model)))
}

#[server]
pub async fn fetch_trace(trace_id: String) -> Result<TraceView, ServerFnError> {
    store()?.trace(&trace_id).await.map_err(store_error)
}

#[server]
pub async fn fetch_ingest_errors() -> Result<Vec<IngestErrorView>, ServerFnError> {
    store()?
        .ingest_errors(INGEST_ERROR_LIMIT)
        .await
        .map_err(store_error)
}

/// The overview of a window (`15m|1h|6h|24h|7d`, empty = 1 h).
#[server]
pub async fn fetch_overview(window: String) -> Result<OverviewMetrics, ServerFnError> {
    let window = sagascope_model::MetricsWindow::parse(&window).map_err(ServerFnError::new)?;
    // Only to answer at once while the store is down: the overview reads
    // through its own service.
    store()?;
    let service = use_context::<sagascope_overview::OverviewService>().ok_or_else(|| {
        ServerFnError::new("the overview is not available (missing from the context)")
    })?;
    let now = chrono::DateTime::from_timestamp_millis(crate::state::now_ms()).unwrap_or_default();
    service.overview(window, now).await.map_err(store_error)
}

/// Who is signed in: user, role and the CSRF token mutations must send.
/// The server puts the request's [`SessionInfo`] in the context; this is
/// open to everyone (it reveals nothing but the caller's own session).
///
/// Naming rule: the server treats POSTs to server functions named
/// `fetch_*` as reads (viewer access, no CSRF token); a server function
/// that changes anything must have another name, so that it needs a
/// signed-in user and the CSRF token.
#[server]
pub async fn fetch_session_info() -> Result<SessionInfo, ServerFnError> {
    Ok(use_context::<SessionInfo>().unwrap_or_default())
}

/// The signed-in user if they have at least `role` (`viewer`, `operator`,
/// `admin`), else an error that says which role is needed. Server
/// functions check roles themselves: during server rendering they run
/// in-process, past any HTTP route guard.
#[cfg(feature = "ssr")]
pub fn require_role(role: &str) -> Result<sagascope_model::CurrentUser, ServerFnError> {
    let session = use_context::<SessionInfo>().unwrap_or_default();
    // The refusal's status, as the JSON API answers it (a server function
    // error is otherwise a 500, which is the server's fault, not the
    // caller's): 403 for a lesser role, 401 for nobody signed in.
    match session.user {
        Some(user) if user.has_role(role) => Ok(user),
        Some(_) => {
            set_page_status(403);
            Err(ServerFnError::new(format!("{role} role required")))
        }
        None => {
            set_page_status(401);
            Err(ServerFnError::new(format!(
                "sign in first: {role} role required"
            )))
        }
    }
}

/// One page of the audit log, newest first. Operators and admins only.
#[server(input = Json)]
pub async fn fetch_audit(filter: AuditFilter) -> Result<AuditPage, ServerFnError> {
    require_role("operator")?;
    let query = filter.validate().map_err(ServerFnError::new)?;
    store()?.list_audit(&query).await.map_err(store_error)
}

/// The session resource the app provides (see [`provide_session`]).
pub type SessionResource = Resource<Result<SessionInfo, ServerFnError>>;

/// Loads the session once per page load and shares it (top bar, login
/// page, later the role-dependent controls).
pub fn provide_session() {
    provide_context::<SessionResource>(Resource::new(|| (), |_| fetch_session_info()));
}

/// The shared session resource; read it inside `Suspense`/`Transition`.
pub fn use_session() -> SessionResource {
    expect_context::<SessionResource>()
}

/// The message of a server function error without the framework's prefix.
pub fn error_text(error: &ServerFnError) -> String {
    match error {
        ServerFnError::ServerError(text)
        | ServerFnError::Request(text)
        | ServerFnError::Response(text)
        | ServerFnError::Deserialization(text)
        | ServerFnError::Serialization(text)
        | ServerFnError::Args(text)
        | ServerFnError::MissingArg(text)
        | ServerFnError::Registration(text)
        | ServerFnError::MiddlewareError(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Sets the HTTP status of the page being rendered on the server (for
/// example 404 for an unknown saga). Pages render with `SsrMode::Async`, so
/// the status is still unsent when the data arrives. No-op in the browser.
pub fn set_page_status(code: u16) {
    #[cfg(feature = "ssr")]
    {
        if let (Some(response), Ok(status)) = (
            use_context::<leptos_axum::ResponseOptions>(),
            http::StatusCode::from_u16(code),
        ) {
            response.set_status(status);
        }
    }
    #[cfg(not(feature = "ssr"))]
    let _ = code;
}

// ---------- dead letters and retries ----------

/// How many bulk jobs the DLQ page lists.
pub const RECENT_JOBS: u32 = 10;
/// Most events of the linked saga shown on a dead letter's page.
pub const DEAD_LETTER_SAGA_EVENTS: usize = 200;

/// A fresh random idempotency key for one retry form, made on the server
/// when the page renders: submitting that form twice produces once.
#[cfg(feature = "ssr")]
fn idempotency_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(feature = "ssr")]
fn now() -> Timestamp {
    chrono::DateTime::from_timestamp_millis(crate::state::now_ms()).unwrap_or_default()
}

/// The validated store query of the DLQ page's parameters.
#[cfg(feature = "ssr")]
fn dlq_query(params: &DlqParams) -> Result<sagascope_model::DlqQuery, ServerFnError> {
    params
        .resolve(crate::state::now_ms())
        .validate()
        .map_err(ServerFnError::new)
}

/// One page of dead letters, newest first. Invalid filters come back as an
/// error that says which field is wrong.
#[server(input = Json)]
pub async fn fetch_dead_letters(params: DlqParams) -> Result<DeadLetterPage, ServerFnError> {
    let query = dlq_query(&params)?;
    store()?
        .list_dead_letters(&query)
        .await
        .map_err(store_error)
}

/// Depth and age per DLQ topic and per failure group over the dead letters
/// the filters select (paging does not apply).
#[server(input = Json)]
pub async fn fetch_dead_letter_groups(
    params: DlqParams,
) -> Result<DeadLetterGroups, ServerFnError> {
    let mut params = params;
    params.filter.limit = None;
    params.filter.cursor = None;
    let query = dlq_query(&params)?;
    store()?
        .dead_letter_groups(&query, now())
        .await
        .map_err(store_error)
}

/// The DLQ topics that hold dead letters (for the topic filter).
#[server]
pub async fn fetch_dlq_topics() -> Result<Vec<String>, ServerFnError> {
    let topics = store()?
        .dlq_depth_by_topic(now())
        .await
        .map_err(store_error)?;
    let mut names: Vec<String> = topics.into_iter().map(|t| t.topic).collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// Everything the page of one dead letter shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetterView {
    pub detail: DeadLetterDetail,
    /// Its re-drives, oldest first.
    pub attempts: Vec<RetryAttemptView>,
    /// The saga it belongs to, with at most [`DEAD_LETTER_SAGA_EVENTS`]
    /// events.
    pub saga: Option<SagaDetail>,
    /// Whether the saga had more events than shown.
    pub saga_events_cut: bool,
    /// For the retry form.
    pub idempotency_key: String,
}

/// `None` when no dead letter has that id.
#[server]
pub async fn fetch_dead_letter_view(id: String) -> Result<Option<DeadLetterView>, ServerFnError> {
    let store = store()?;
    let Some(mut detail) = store.dead_letter(&id).await.map_err(store_error)? else {
        return Ok(None);
    };
    // Dead letters are stored byte-exact (a re-drive must produce exactly
    // what failed) and redacted on the way out by the `[redact]` rules the
    // server puts in the context.
    if let Some(redaction) = use_context::<sagascope_domain::redaction::Redaction>() {
        redaction.apply_to_dead_letter(&mut detail);
    }
    let attempts = store.retry_attempts_of(&id).await.map_err(store_error)?;
    let mut saga = match detail.summary.saga_id.as_deref() {
        Some(saga_id) => store.saga_detail(saga_id).await.map_err(store_error)?,
        None => None,
    };
    let mut saga_events_cut = false;
    if let Some(saga) = saga.as_mut() {
        if saga.events.len() > DEAD_LETTER_SAGA_EVENTS {
            saga.events.truncate(DEAD_LETTER_SAGA_EVENTS);
            saga_events_cut = true;
        }
    }
    Ok(Some(DeadLetterView {
        detail,
        attempts,
        saga,
        saga_events_cut,
        idempotency_key: idempotency_key(),
    }))
}

/// A dead letter of a saga with the idempotency key of its retry form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SagaDeadLetter {
    pub letter: DeadLetterSummary,
    pub idempotency_key: String,
}

/// The dead letters of one saga, oldest first (timeline order).
#[server]
pub async fn fetch_saga_dead_letters(
    saga_id: String,
) -> Result<Vec<SagaDeadLetter>, ServerFnError> {
    let letters = store()?
        .dead_letters_of_saga(&saga_id)
        .await
        .map_err(store_error)?;
    Ok(letters
        .into_iter()
        .map(|letter| SagaDeadLetter {
            letter,
            idempotency_key: idempotency_key(),
        })
        .collect())
}

/// What the bulk retry page confirms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BulkRetryView {
    /// The filter exactly as it will be sent: the window preset resolved to
    /// `since`, and `until` pinned just after the newest matching dead
    /// letter, so the set cannot grow while the operator reads the page.
    pub filter: DlqFilter,
    /// `filter` as a query string (the form's `filter` field).
    pub filter_query: String,
    pub preview: BulkRetryPreview,
    pub idempotency_key: String,
    /// When the preview was counted.
    pub counted_at: Timestamp,
}

/// The exact count a bulk retry of `params` would re-drive now, per
/// original topic, with a sample. Operators only.
#[server(input = Json)]
pub async fn fetch_bulk_retry_preview(params: DlqParams) -> Result<BulkRetryView, ServerFnError> {
    require_role("operator")?;
    let counted_at = now();
    let mut filter = params.for_bulk().resolve(crate::state::now_ms());
    if filter.until.is_none() {
        filter.until = Some(counted_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
    }
    let query = filter.validate().map_err(ServerFnError::new)?;
    let store = store()?;
    let preview = store
        .bulk_retry_preview(&query)
        .await
        .map_err(store_error)?;
    if let Some(newest) = preview.sample.iter().map(|d| d.dead_lettered_at).max() {
        let pinned = newest + chrono::Duration::microseconds(1);
        let narrower = query.until.is_none_or(|until| pinned < until);
        if narrower {
            filter.until = Some(pinned.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
        }
    }
    Ok(BulkRetryView {
        filter_query: filter.to_query_string(),
        filter,
        preview,
        idempotency_key: idempotency_key(),
        counted_at,
    })
}

/// One bulk retry job; `None` when unknown. Operators only, like
/// `GET /api/v1/dlq/retry-jobs/{id}`.
#[server]
pub async fn fetch_retry_job(job_id: String) -> Result<Option<RetryJobView>, ServerFnError> {
    require_role("operator")?;
    store()?.retry_job(&job_id).await.map_err(store_error)
}

/// The newest bulk retry jobs; empty for anyone but operators (the job
/// API is theirs).
#[server]
pub async fn fetch_retry_jobs() -> Result<Vec<RetryJobView>, ServerFnError> {
    if require_role("operator").is_err() {
        return Ok(Vec::new());
    }
    store()?.retry_jobs(RECENT_JOBS).await.map_err(store_error)
}

// ---------- spans ----------

/// The span source the server puts in the context (its OTLP receiver's
/// store, or a Jaeger/Tempo query API with a cache).
#[cfg(feature = "ssr")]
fn span_service() -> Result<sagascope_spans::SpanService, ServerFnError> {
    use_context::<sagascope_spans::SpanService>().ok_or_else(|| {
        ServerFnError::new("the span source is not available (missing from the context)")
    })
}

/// The spans of each trace of a saga (traces without spans are left out).
/// An error says what failed at the span source; the saga page shows it
/// in its trace section and the rest of the page as usual.
#[server]
pub async fn fetch_saga_spans(
    saga_id: String,
) -> Result<Vec<sagascope_model::TraceSpans>, ServerFnError> {
    span_service()?
        .saga_spans(&saga_id)
        .await
        .map_err(|error| ServerFnError::new(format!("span source: {error}")))
}

/// The spans of one trace; `None` when none were received (or the remote
/// source does not know the trace).
#[server]
pub async fn fetch_trace_spans(
    trace_id: String,
) -> Result<Option<sagascope_model::TraceSpans>, ServerFnError> {
    span_service()?
        .trace_spans(&trace_id)
        .await
        .map_err(|error| ServerFnError::new(format!("span source: {error}")))
}
