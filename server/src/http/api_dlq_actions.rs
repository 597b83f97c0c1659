//! Dead letters, write side (operator role, declared on the routes):
//!
//! - `POST /api/v1/dlq/{id}/retry` (also `/dlq/{topic}/{partition}/{offset}/retry`),
//!   body `RetryRequest`, idempotency key in the `Idempotency-Key` header
//!   or the body → `RetryOutcome`;
//! - `POST /api/v1/dlq/{id}/discard` (and the three-segment form), body
//!   `DiscardRequest` → the updated `DeadLetterDetail`;
//! - `POST /api/v1/dlq/retry`, body `BulkRetryRequest`: `dry_run` → the
//!   `BulkRetryPreview`, else 202 with the job (`RetryJobView`);
//! - `GET /api/v1/dlq/retry-jobs`, `GET /api/v1/dlq/retry-jobs/{id}`,
//!   `POST /api/v1/dlq/retry-jobs/{id}/cancel`.
//!
//! Every action is audited (`dlq.retry`, `dlq.discard`, `dlq.bulk_retry`,
//! `dlq.bulk_retry.cancel`; refusals as `failed`), and the entry is
//! written *before* the action takes effect: a retry is claimed, audited,
//! then produced (abandoned if the audit cannot be written); a job is
//! frozen, audited, then released to the runners. A broker refusal after
//! the audit adds a second, `failed` entry. The HTML forms
//! (`dlq_forms.rs`) call the same functions.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sagascope_model::{
    BulkRetryPreview, BulkRetryRequest, DeadLetterDetail, DiscardRequest, DlqFilter, RetryJobView,
    RetryOutcome, RetryRequest, DISCARDABLE_STATES, IDEMPOTENCY_KEY_HEADER,
};
use sagascope_redrive::{
    BulkRetryCommand, CreatedJob, RedriveError, RetryCommand, SingleRetryClaim,
};
use sagascope_store::{CancelOutcome, DiscardOutcome};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;

use crate::app_state::AppState;
use crate::auth::{audit, reject, Audit, RequestAuth};
use crate::http::openapi::{ErrorBody, RefusedRetryBody};

/// Longest reason kept (the audit log is no document store).
const MAX_REASON_CHARS: usize = 2000;
/// Longest idempotency key accepted.
const MAX_KEY_CHARS: usize = 200;
const DEFAULT_JOBS: u32 = 50;
const MAX_JOBS: u32 = 500;

/// A refused or failed action: its status and message (`{"error": …}`).
#[derive(Debug, Clone)]
pub struct ActionFailure {
    pub status: StatusCode,
    pub message: String,
    /// The retry's outcome when the broker refused it (state back to new).
    pub outcome: Option<Box<RetryOutcome>>,
}

impl ActionFailure {
    fn new(status: StatusCode, message: impl Into<String>) -> ActionFailure {
        ActionFailure {
            status,
            message: message.into(),
            outcome: None,
        }
    }

    fn bad_request(message: impl Into<String>) -> ActionFailure {
        ActionFailure::new(StatusCode::BAD_REQUEST, message)
    }

    fn unaudited() -> ActionFailure {
        ActionFailure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the audit log could not be written, so nothing was done; see the server log",
        )
    }
}

impl IntoResponse for ActionFailure {
    fn into_response(self) -> Response {
        match self.outcome {
            Some(outcome) => (
                self.status,
                Json(json!({ "error": self.message, "outcome": outcome })),
            )
                .into_response(),
            None => reject(self.status, &self.message),
        }
    }
}

impl From<RedriveError> for ActionFailure {
    fn from(error: RedriveError) -> ActionFailure {
        let status = match &error {
            RedriveError::NotFound(_) => StatusCode::NOT_FOUND,
            RedriveError::NotRetryable { .. }
            | RedriveError::KeyUsedElsewhere { .. }
            | RedriveError::StillInFlight { .. }
            | RedriveError::CountMismatch { .. } => StatusCode::CONFLICT,
            RedriveError::NoTarget { .. } | RedriveError::NoTargetInSet { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            RedriveError::EmptySet => StatusCode::BAD_REQUEST,
            RedriveError::BrokerRefused { .. } => StatusCode::BAD_GATEWAY,
            RedriveError::Store(_) | RedriveError::Producer(_) => {
                tracing::error!(%error, "re-drive failed");
                return ActionFailure::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the server log",
                );
            }
        };
        let outcome = match &error {
            RedriveError::BrokerRefused { outcome, .. } => Some(outcome.clone()),
            _ => None,
        };
        ActionFailure {
            status,
            message: error.to_string(),
            outcome,
        }
    }
}

impl From<sagascope_store::StoreError> for ActionFailure {
    fn from(error: sagascope_store::StoreError) -> ActionFailure {
        RedriveError::Store(error).into()
    }
}

/// The trimmed reason, required.
fn required_reason(reason: Option<&str>) -> Result<String, ActionFailure> {
    let reason = reason.map(str::trim).unwrap_or_default();
    if reason.is_empty() {
        return Err(ActionFailure::bad_request("a reason is required"));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(ActionFailure::bad_request(format!(
            "the reason is longer than {MAX_REASON_CHARS} characters"
        )));
    }
    Ok(reason.to_string())
}

fn valid_key(key: Option<&str>) -> Result<Option<String>, ActionFailure> {
    match key.map(str::trim).filter(|k| !k.is_empty()) {
        None => Ok(None),
        Some(key) if key.chars().count() > MAX_KEY_CHARS || key.chars().any(char::is_control) => {
            Err(ActionFailure::bad_request(format!(
                "the idempotency key must be at most {MAX_KEY_CHARS} printable characters"
            )))
        }
        Some(key) => Ok(Some(key.to_string())),
    }
}

/// Audits a refusal as `failed`; a refusal whose audit cannot be written
/// is still a refusal, so this only logs.
async fn audit_refusal(auth: &RequestAuth, entry: Audit, failure: &ActionFailure) {
    let entry = entry
        .detail(json!({ "error": failure.message, "status": failure.status.as_u16() }))
        .failed();
    if let Err(error) = audit(auth, entry).await {
        tracing::error!(%error, "could not write the audit log");
    }
}

fn redrive(state: &AppState) -> Result<&sagascope_redrive::RedriveService, ActionFailure> {
    state.redrive.as_ref().ok_or_else(|| {
        ActionFailure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "re-drive is not available: this sagascope runs without Kafka",
        )
    })
}

/// One retry, audited (see the module doc). Shared with the forms.
pub(crate) async fn retry_dead_letter(
    state: &AppState,
    auth: &RequestAuth,
    id: &str,
    reason: Option<&str>,
    key: Option<&str>,
) -> Result<RetryOutcome, ActionFailure> {
    let entry = Audit::new("dlq.retry").target(id);
    let checked = required_reason(reason).and_then(|reason| {
        let key = valid_key(key)?.ok_or_else(|| {
            ActionFailure::bad_request(
                "an idempotency key is required (header Idempotency-Key or body field idempotency_key)",
            )
        })?;
        Ok((reason, key))
    });
    let (reason, key) = match checked {
        Ok(checked) => checked,
        Err(failure) => {
            let entry = match reason {
                Some(r) => entry.reason(r),
                None => entry,
            };
            audit_refusal(auth, entry, &failure).await;
            return Err(failure);
        }
    };
    let entry = entry.reason(&reason);
    let service = match redrive(state) {
        Ok(service) => service,
        Err(failure) => {
            audit_refusal(auth, entry, &failure).await;
            return Err(failure);
        }
    };
    let claim = service
        .claim_retry(RetryCommand {
            dead_letter_id: id,
            idempotency_key: &key,
            actor: auth.actor(),
            reason: &reason,
        })
        .await;
    let claimed = match claim {
        Ok(SingleRetryClaim::Claimed(claimed)) => claimed,
        Ok(SingleRetryClaim::Replayed(outcome)) => {
            let replay = entry.detail(json!({
                "replayed": true,
                "attempt_id": outcome.attempt_id,
                "idempotency_key": key,
            }));
            if let Err(error) = audit(auth, replay.ok()).await {
                tracing::error!(%error, "could not write the audit log");
            }
            return Ok(outcome);
        }
        Err(error) => {
            let failure = ActionFailure::from(error);
            audit_refusal(auth, entry, &failure).await;
            return Err(failure);
        }
    };
    let detail = json!({
        "attempt_id": claimed.claimed.attempt_id,
        "target_topic": claimed.claimed.target_topic,
        "retry_count": claimed.claimed.retry_count,
        "idempotency_key": key,
    });
    if let Err(error) = audit(auth, entry.clone().detail(detail.clone()).ok()).await {
        tracing::error!(%error, "could not write the audit log; the retry is abandoned");
        if let Err(error) = service
            .abandon_claimed(claimed, "not produced: the audit log could not be written")
            .await
        {
            tracing::error!(%error, "could not abandon the unaudited retry");
        }
        return Err(ActionFailure::unaudited());
    }
    match service.produce_claimed(claimed).await {
        Ok(outcome) => Ok(outcome),
        Err(error) => {
            let failure = ActionFailure::from(error);
            let mut detail = detail;
            detail["error"] = json!(failure.message);
            detail["status"] = json!(failure.status.as_u16());
            if let Err(error) = audit(auth, entry.detail(detail).failed()).await {
                tracing::error!(%error, "could not write the audit log");
            }
            Err(failure)
        }
    }
}

/// One discard, audited before it happens. Shared with the forms.
pub(crate) async fn discard_dead_letter(
    state: &AppState,
    auth: &RequestAuth,
    id: &str,
    reason: Option<&str>,
) -> Result<DeadLetterDetail, ActionFailure> {
    let entry = Audit::new("dlq.discard").target(id);
    let reason = match required_reason(reason) {
        Ok(reason) => reason,
        Err(failure) => {
            audit_refusal(auth, entry, &failure).await;
            return Err(failure);
        }
    };
    let entry = entry.reason(&reason);
    let current = state.store.dead_letter(id).await?;
    let refusal = match &current {
        None => Some(ActionFailure::new(
            StatusCode::NOT_FOUND,
            format!("no dead letter with id `{id}`"),
        )),
        Some(letter) if !DISCARDABLE_STATES.contains(&letter.summary.state) => {
            Some(not_discardable(id, letter.summary.state))
        }
        Some(_) => None,
    };
    if let Some(failure) = refusal {
        audit_refusal(auth, entry, &failure).await;
        return Err(failure);
    }
    let from = current.map(|l| l.summary.state.as_str());
    if let Err(error) = audit(auth, entry.clone().detail(json!({ "from": from })).ok()).await {
        tracing::error!(%error, "could not write the audit log; the discard is not done");
        return Err(ActionFailure::unaudited());
    }
    let outcome = state
        .store
        .discard_dead_letter(id, auth.actor(), &reason, chrono::Utc::now())
        .await?;
    match outcome {
        DiscardOutcome::Discarded(detail) => Ok(*detail),
        // Someone else changed it between the check and the change.
        DiscardOutcome::NotDiscardable(state) => {
            let failure = not_discardable(id, state);
            audit_refusal(auth, entry, &failure).await;
            Err(failure)
        }
        DiscardOutcome::NotFound => Err(ActionFailure::new(
            StatusCode::NOT_FOUND,
            format!("no dead letter with id `{id}`"),
        )),
    }
}

fn not_discardable(id: &str, state: sagascope_model::DeadLetterState) -> ActionFailure {
    ActionFailure::new(
        StatusCode::CONFLICT,
        format!(
            "dead letter `{id}` is {} and cannot be discarded (only new and failed_again ones can)",
            state.as_str()
        ),
    )
}

/// What a bulk request answers.
pub(crate) enum BulkAnswer {
    Preview(BulkRetryPreview),
    /// Created (or replayed by its idempotency key) and released.
    Job(RetryJobView),
}

/// A bulk retry (or its dry run), audited before the job is released to
/// the runners. Shared with the forms.
pub(crate) async fn bulk_retry(
    state: &AppState,
    auth: &RequestAuth,
    request: BulkRetryRequest,
) -> Result<BulkAnswer, ActionFailure> {
    // The filter's state, limit and cursor do not apply to a bulk retry.
    let filter = DlqFilter {
        state: None,
        limit: None,
        cursor: None,
        ..request.filter
    };
    let filter_text = filter.to_query_string();
    let entry = Audit::new("dlq.bulk_retry").target(filter_text.clone());
    let checked = filter
        .validate()
        .map_err(ActionFailure::bad_request)
        .and_then(|query| {
            let key = valid_key(request.idempotency_key.as_deref())?;
            Ok((query, key))
        });
    let (query, key) = match checked {
        Ok(checked) => checked,
        Err(failure) if request.dry_run => return Err(failure),
        Err(failure) => {
            audit_refusal(auth, entry, &failure).await;
            return Err(failure);
        }
    };
    if request.dry_run {
        // Counting changes nothing: not audited, no Kafka needed.
        return Ok(BulkAnswer::Preview(match &state.redrive {
            Some(service) => service.preview(&query).await?,
            None => state.store.bulk_retry_preview(&query).await?,
        }));
    }
    let detail = json!({
        "filter": filter_text,
        "expected_count": request.expected_count,
        "canary": request.canary,
        "canary_wait_s": request.canary_wait_s,
        "throttle_per_s": request.throttle_per_s,
        "idempotency_key": key,
    });
    let reason = match required_reason(request.reason.as_deref()) {
        Ok(reason) => reason,
        Err(failure) => {
            audit_refusal(auth, entry, &failure).await;
            return Err(failure);
        }
    };
    let entry = entry.reason(&reason);
    // An empty filter selects every retryable dead letter: only on purpose.
    // And only a set that was previewed: its count confirms it.
    let unconfirmed = if !filter.has_criteria() && !request.all {
        Some("a bulk retry needs a filter (topic, failure_group, reason, saga_type, saga_id, since or until), or \"all\": true to re-drive every retryable dead letter")
    } else if request.expected_count.is_none() {
        Some("expected_count is required: preview the set first (\"dry_run\": true) and send the count you confirmed")
    } else {
        None
    };
    if let Some(message) = unconfirmed {
        let failure = ActionFailure::bad_request(message.to_string());
        audit_refusal(auth, entry, &failure).await;
        return Err(failure);
    }
    let service = match redrive(state) {
        Ok(service) => service,
        Err(failure) => {
            audit_refusal(auth, entry, &failure).await;
            return Err(failure);
        }
    };
    let created = service
        .create_job(BulkRetryCommand {
            query: &query,
            filter: &filter_text,
            actor: auth.actor(),
            reason: &reason,
            canary: request.canary,
            canary_wait_s: request.canary_wait_s,
            throttle_per_s: request.throttle_per_s,
            expected_count: request.expected_count,
            idempotency_key: key.as_deref(),
        })
        .await;
    let job = match created {
        Ok(CreatedJob::New(job)) => job,
        Ok(CreatedJob::Replayed(job)) => {
            let mut detail = detail;
            detail["replayed"] = json!(true);
            detail["job_id"] = json!(job.id);
            if let Err(error) = audit(auth, entry.detail(detail).ok()).await {
                tracing::error!(%error, "could not write the audit log");
            }
            return Ok(BulkAnswer::Job(job));
        }
        Err(error) => {
            let failure = ActionFailure::from(error);
            let mut detail = detail;
            detail["error"] = json!(failure.message);
            detail["status"] = json!(failure.status.as_u16());
            if let Err(error) = audit(auth, entry.detail(detail).failed()).await {
                tracing::error!(%error, "could not write the audit log");
            }
            return Err(failure);
        }
    };
    let mut detail = detail;
    detail["job_id"] = json!(job.id);
    detail["count"] = json!(job.total);
    if let Err(error) = audit(auth, entry.detail(detail).ok()).await {
        tracing::error!(%error, "could not write the audit log; the bulk retry is dropped");
        if let Err(error) = service.drop_job(&job.id).await {
            tracing::error!(%error, job_id = %job.id, "could not drop the unaudited job");
        }
        return Err(ActionFailure::unaudited());
    }
    service.release_job(&job.id).await?;
    Ok(BulkAnswer::Job(job))
}

/// Cancels a job, audited before it happens. Shared with the forms.
pub(crate) async fn cancel_job(
    state: &AppState,
    auth: &RequestAuth,
    job_id: &str,
) -> Result<RetryJobView, ActionFailure> {
    let entry = Audit::new("dlq.bulk_retry.cancel").target(job_id);
    let refusal = match state.store.retry_job(job_id).await? {
        None => Some(ActionFailure::new(
            StatusCode::NOT_FOUND,
            format!("no retry job with id `{job_id}`"),
        )),
        Some(job) if !job.state.is_active() => Some(job_finished(&job)),
        Some(_) => None,
    };
    if let Some(failure) = refusal {
        audit_refusal(auth, entry, &failure).await;
        return Err(failure);
    }
    if let Err(error) = audit(auth, entry.clone().ok()).await {
        tracing::error!(%error, "could not write the audit log; the job is not cancelled");
        return Err(ActionFailure::unaudited());
    }
    match state
        .store
        .cancel_retry_job(job_id, auth.actor(), chrono::Utc::now())
        .await?
    {
        CancelOutcome::Cancelled(job) => Ok(job),
        CancelOutcome::Finished(job) => {
            let failure = job_finished(&job);
            audit_refusal(auth, entry, &failure).await;
            Err(failure)
        }
        CancelOutcome::NotFound => Err(ActionFailure::new(
            StatusCode::NOT_FOUND,
            format!("no retry job with id `{job_id}`"),
        )),
    }
}

fn job_finished(job: &RetryJobView) -> ActionFailure {
    ActionFailure::new(
        StatusCode::CONFLICT,
        format!("retry job `{}` is already {}", job.id, job.state.as_str()),
    )
}

/// A JSON body whose refusal is a 400 with serde's message (a missing
/// `reason` included), not axum's 415/422.
fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ActionFailure> {
    body.map(|Json(value)| value)
        .map_err(|rejection| ActionFailure::bad_request(rejection.body_text()))
}

fn header_key(headers: &HeaderMap) -> Option<String> {
    headers
        .get(IDEMPOTENCY_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn retry_response(
    state: AppState,
    auth: RequestAuth,
    id: String,
    headers: HeaderMap,
    request: Result<Json<RetryRequest>, JsonRejection>,
) -> Result<Json<RetryOutcome>, ActionFailure> {
    let request = match body(request) {
        Ok(request) => request,
        Err(failure) => {
            audit_refusal(&auth, Audit::new("dlq.retry").target(&id), &failure).await;
            return Err(failure);
        }
    };
    let key = header_key(&headers).or(request.idempotency_key);
    retry_dead_letter(&state, &auth, &id, Some(&request.reason), key.as_deref())
        .await
        .map(Json)
}

/// `POST /api/v1/dlq/{id}/retry` with the id percent-encoded.
#[utoipa::path(
    post,
    path = "/api/v1/dlq/{id}/retry",
    tag = "retry",
    summary = "Re-drive one dead letter",
    description = "Produces the dead letter's key, value and headers byte-exact to its \
        original topic (without the DLQ's failure headers, with `x-retry-of` and \
        `x-retry-count`), audited before it is produced, and waits for the broker's ack. \
        Operator role.",
    params(("id" = String, Path, description = "The dead letter id `{topic}/{partition}/{offset}`, percent-encoded (`orders.DLT%2F0%2F7`)."), ("Idempotency-Key" = Option<String>, Header, description = "The idempotency key (or the body field `idempotency_key`): the same key again answers the first outcome and produces nothing.")),
    request_body = RetryRequest,
    security(("api_token" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 200, description = "Produced (or replayed by its idempotency key).", body = RetryOutcome),
        (status = 400, description = "The body is not a RetryRequest, the reason is missing or too long, or the idempotency key is missing or invalid.", body = ErrorBody),
        (status = 404, description = "No dead letter with that id.", body = ErrorBody),
        (status = 409, description = "Not retryable in its state, the key was used for another dead letter, or a retry of it is in flight.", body = ErrorBody),
        (status = 422, description = "No target topic is known for it.", body = ErrorBody),
        (status = 502, description = "The broker refused the copy: the dead letter is back to new and its key free.", body = RefusedRetryBody),
        (status = 503, description = "Re-drive is not available (no Kafka), or authentication is unavailable.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip(state, auth, headers, request))]
pub async fn retry(
    State(state): State<AppState>,
    auth: RequestAuth,
    Path(id): Path<String>,
    headers: HeaderMap,
    request: Result<Json<RetryRequest>, JsonRejection>,
) -> Result<Json<RetryOutcome>, ActionFailure> {
    retry_response(state, auth, id, headers, request).await
}

/// `POST /api/v1/dlq/{topic}/{partition}/{offset}/retry`.
#[utoipa::path(
    post,
    path = "/api/v1/dlq/{topic}/{partition}/{offset}/retry",
    tag = "retry",
    summary = "Re-drive one dead letter by its coordinates",
    description = "Produces the dead letter's key, value and headers byte-exact to its \
        original topic (without the DLQ's failure headers, with `x-retry-of` and \
        `x-retry-count`), audited before it is produced, and waits for the broker's ack. \
        Operator role.",
    params(
        ("topic" = String, Path, description = "The DLQ topic."),
        ("partition" = String, Path, description = "The partition."),
        ("offset" = String, Path, description = "The offset."),
        ("Idempotency-Key" = Option<String>, Header, description = "The idempotency key (or the body field `idempotency_key`): the same key again answers the first outcome and produces nothing.")
    ),
    request_body = RetryRequest,
    security(("api_token" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 200, description = "Produced (or replayed by its idempotency key).", body = RetryOutcome),
        (status = 400, description = "The body is not a RetryRequest, the reason is missing or too long, or the idempotency key is missing or invalid.", body = ErrorBody),
        (status = 404, description = "No dead letter with that id.", body = ErrorBody),
        (status = 409, description = "Not retryable in its state, the key was used for another dead letter, or a retry of it is in flight.", body = ErrorBody),
        (status = 422, description = "No target topic is known for it.", body = ErrorBody),
        (status = 502, description = "The broker refused the copy: the dead letter is back to new and its key free.", body = RefusedRetryBody),
        (status = 503, description = "Re-drive is not available (no Kafka), or authentication is unavailable.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip(state, auth, headers, request))]
pub async fn retry_at(
    State(state): State<AppState>,
    auth: RequestAuth,
    Path((topic, partition, offset)): Path<(String, String, String)>,
    headers: HeaderMap,
    request: Result<Json<RetryRequest>, JsonRejection>,
) -> Result<Json<RetryOutcome>, ActionFailure> {
    let id = format!("{topic}/{partition}/{offset}");
    retry_response(state, auth, id, headers, request).await
}

async fn discard_response(
    state: AppState,
    auth: RequestAuth,
    id: String,
    request: Result<Json<DiscardRequest>, JsonRejection>,
) -> Result<Json<DeadLetterDetail>, ActionFailure> {
    let request = match body(request) {
        Ok(request) => request,
        Err(failure) => {
            audit_refusal(&auth, Audit::new("dlq.discard").target(&id), &failure).await;
            return Err(failure);
        }
    };
    discard_dead_letter(&state, &auth, &id, Some(&request.reason))
        .await
        .map(Json)
}

/// `POST /api/v1/dlq/{id}/discard` with the id percent-encoded.
#[utoipa::path(
    post,
    path = "/api/v1/dlq/{id}/discard",
    tag = "retry",
    summary = "Discard one dead letter",
    description = "Marks the dead letter discarded, audited with the reason. Operator role.",
    params(("id" = String, Path, description = "The dead letter id `{topic}/{partition}/{offset}`, percent-encoded (`orders.DLT%2F0%2F7`).")),
    request_body = DiscardRequest,
    security(("api_token" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 200, description = "Discarded: the updated dead letter.", body = DeadLetterDetail),
        (status = 400, description = "The body is not a DiscardRequest, or the reason is missing or too long.", body = ErrorBody),
        (status = 404, description = "No dead letter with that id.", body = ErrorBody),
        (status = 409, description = "Not discardable in its state (only new and failed_again are).", body = ErrorBody),
    )
)]
#[tracing::instrument(skip(state, auth, request))]
pub async fn discard(
    State(state): State<AppState>,
    auth: RequestAuth,
    Path(id): Path<String>,
    request: Result<Json<DiscardRequest>, JsonRejection>,
) -> Result<Json<DeadLetterDetail>, ActionFailure> {
    discard_response(state, auth, id, request).await
}

/// `POST /api/v1/dlq/{topic}/{partition}/{offset}/discard`.
#[utoipa::path(
    post,
    path = "/api/v1/dlq/{topic}/{partition}/{offset}/discard",
    tag = "retry",
    summary = "Discard one dead letter by its coordinates",
    description = "Marks the dead letter discarded, audited with the reason. Operator role.",
    params(("topic" = String, Path, description = "The DLQ topic."),
        ("partition" = String, Path, description = "The partition."),
        ("offset" = String, Path, description = "The offset.")),
    request_body = DiscardRequest,
    security(("api_token" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 200, description = "Discarded: the updated dead letter.", body = DeadLetterDetail),
        (status = 400, description = "The body is not a DiscardRequest, or the reason is missing or too long.", body = ErrorBody),
        (status = 404, description = "No dead letter with that id.", body = ErrorBody),
        (status = 409, description = "Not discardable in its state (only new and failed_again are).", body = ErrorBody),
    )
)]
#[tracing::instrument(skip(state, auth, request))]
pub async fn discard_at(
    State(state): State<AppState>,
    auth: RequestAuth,
    Path((topic, partition, offset)): Path<(String, String, String)>,
    request: Result<Json<DiscardRequest>, JsonRejection>,
) -> Result<Json<DeadLetterDetail>, ActionFailure> {
    discard_response(
        state,
        auth,
        format!("{topic}/{partition}/{offset}"),
        request,
    )
    .await
}

/// `POST /api/v1/dlq/retry`: 200 with the preview for a dry run, else 202
/// with the job.
#[utoipa::path(
    post,
    path = "/api/v1/dlq/retry",
    tag = "retry",
    summary = "Bulk retry (or its dry run)",
    description = "Re-drives every retryable dead letter matching the filter as a job: the \
        set is frozen, audited, then produced in chunks (optionally a canary first, \
        optionally throttled). `dry_run` only counts. Send the preview's count as \
        `expected_count` to refuse a set that changed. Operator role.",
    request_body = BulkRetryRequest,
    security(("api_token" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 200, description = "The dry run's preview.", body = BulkRetryPreview),
        (status = 202, description = "The job, created (or replayed by its idempotency key) and started.", body = RetryJobView),
        (status = 400, description = "The body or the filter is invalid, the reason is missing, or nothing matches.", body = ErrorBody),
        (status = 409, description = "The frozen set differs from `expected_count`, or the key was used for another request.", body = ErrorBody),
        (status = 422, description = "No target topic is known for some of the set.", body = ErrorBody),
        (status = 503, description = "Re-drive is not available (no Kafka), or authentication is unavailable.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip(state, auth, request))]
pub async fn bulk(
    State(state): State<AppState>,
    auth: RequestAuth,
    request: Result<Json<BulkRetryRequest>, JsonRejection>,
) -> Result<Response, ActionFailure> {
    let request = match body(request) {
        Ok(request) => request,
        Err(failure) => {
            audit_refusal(&auth, Audit::new("dlq.bulk_retry"), &failure).await;
            return Err(failure);
        }
    };
    Ok(match bulk_retry(&state, &auth, request).await? {
        BulkAnswer::Preview(preview) => Json(preview).into_response(),
        BulkAnswer::Job(job) => (StatusCode::ACCEPTED, Json(job)).into_response(),
    })
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobsQuery {
    /// How many jobs (default 50; below 1 reads as 1, above 500 as 500).
    /// Text, parsed by the handler: a bad value is a JSON 400 like every
    /// other refusal, not axum's plain-text query rejection.
    pub limit: Option<String>,
}

/// `GET /api/v1/dlq/retry-jobs?limit=`: newest first.
#[utoipa::path(
    get,
    path = "/api/v1/dlq/retry-jobs",
    tag = "retry",
    summary = "Bulk retry jobs",
    description = "The bulk retry jobs, newest first. Operator role.",
    params(JobsQuery),
    responses(
        (status = 200, description = "The jobs.", body = Vec<RetryJobView>),
        (status = 400, description = "`limit` is not an integer.", body = ErrorBody),
        (status = 403, description = "The operator role is required.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip(state))]
pub async fn list_jobs(
    State(state): State<AppState>,
    Query(query): Query<JobsQuery>,
) -> Result<Json<Vec<RetryJobView>>, ActionFailure> {
    let limit = match query.limit.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_JOBS,
        Some(text) => text
            .parse::<i64>()
            .map_err(|_| {
                ActionFailure::bad_request(format!("`limit` must be an integer, got `{text}`"))
            })?
            .clamp(1, i64::from(MAX_JOBS)) as u32,
    };
    Ok(Json(state.store.retry_jobs(limit).await?))
}

/// `GET /api/v1/dlq/retry-jobs/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/dlq/retry-jobs/{id}",
    tag = "retry",
    summary = "One bulk retry job",
    description = "A job's frozen set size and progress. Operator role.",
    params(("id" = String, Path, description = "The job id.")),
    responses(
        (status = 200, description = "The job.", body = RetryJobView),
        (status = 403, description = "The operator role is required.", body = ErrorBody),
        (status = 404, description = "No job with that id.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip(state))]
pub async fn get_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RetryJobView>, ActionFailure> {
    state.store.retry_job(&id).await?.map(Json).ok_or_else(|| {
        ActionFailure::new(
            StatusCode::NOT_FOUND,
            format!("no retry job with id `{id}`"),
        )
    })
}

/// `POST /api/v1/dlq/retry-jobs/{id}/cancel`.
#[utoipa::path(
    post,
    path = "/api/v1/dlq/retry-jobs/{id}/cancel",
    tag = "retry",
    summary = "Cancel a bulk retry job",
    description = "Stops a pending, canary or running job; what was not produced yet is \
        skipped. Audited. Operator role.",
    params(("id" = String, Path, description = "The job id.")),
    security(("api_token" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 200, description = "The cancelled job.", body = RetryJobView),
        (status = 404, description = "No job with that id.", body = ErrorBody),
        (status = 409, description = "The job has already finished.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip(state, auth))]
pub async fn cancel(
    State(state): State<AppState>,
    auth: RequestAuth,
    Path(id): Path<String>,
) -> Result<Json<RetryJobView>, ActionFailure> {
    cancel_job(&state, &auth, &id).await.map(Json)
}
