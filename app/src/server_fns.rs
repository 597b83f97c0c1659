//! Server functions: the pages' data, read from the store the server puts in
//! the Leptos context (`provide_context(store.clone())`). During SSR they run
//! in-process; after hydration the browser calls them over HTTP (client-side
//! navigation, filter changes).

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use sagascope_model::{
    AuditFilter, AuditPage, IngestErrorView, OverviewMetrics, SagaDetail, SagaPage, SessionInfo,
    TraceView,
};

use crate::filters::ListParams;

/// How many ingest errors the ingest page shows.
pub const INGEST_ERROR_LIMIT: u32 = 200;

#[cfg(feature = "ssr")]
fn store() -> Result<sagascope_store::Store, ServerFnError> {
    use_context::<sagascope_store::Store>()
        .ok_or_else(|| ServerFnError::new("the store is not available (missing from the context)"))
}

#[cfg(feature = "ssr")]
fn store_error(error: sagascope_store::StoreError) -> ServerFnError {
    ServerFnError::new(format!("store: {error}"))
}

/// One page of the saga list. Invalid filters come back as an error whose
/// text says which field is wrong. JSON-encoded: an all-empty filter would
/// be an empty URL-encoded body, which does not decode.
#[server(input = Json)]
pub async fn fetch_saga_page(params: ListParams) -> Result<SagaPage, ServerFnError> {
    let filter = params.resolve(crate::state::now_ms());
    let query = filter.validate().map_err(ServerFnError::new)?;
    store()?.list_sagas(&query).await.map_err(store_error)
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
    match session.user {
        Some(user) if user.has_role(role) => Ok(user),
        Some(_) => Err(ServerFnError::new(format!("{role} role required"))),
        None => Err(ServerFnError::new(format!(
            "sign in first: {role} role required"
        ))),
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
