//! The dead-letter actions as HTML forms (`application/x-www-form-urlencoded`,
//! for the pages without JavaScript): the same functions, role and audit as
//! the JSON API (`api_dlq_actions.rs`), answered with `303 See Other`.
//!
//! - `POST /dlq/actions/retry` (csrf_token, id, reason, idempotency_key,
//!   return_to) and `POST /dlq/actions/discard` (csrf_token, id, reason,
//!   return_to) go back to `return_to` (a local path, else `/dlq`) with
//!   `notice=…` or `error=…`;
//! - `POST /dlq/actions/bulk-retry` (csrf_token, filter, reason, canary,
//!   canary_wait_s, throttle_per_s, expected_count, idempotency_key) goes to
//!   the job's page `/dlq/jobs/{job_id}`, or back to the confirmation page
//!   `/dlq/bulk-retry?{filter}` with `error=…`;
//! - `POST /dlq/actions/cancel-job` (csrf_token, job_id) goes to the job's
//!   page.
//!
//! The CSRF token is checked by the auth middleware before these run.

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use sagascope_model::{percent_encode, BulkRetryRequest, DeadLetterState, DlqFilter};
use serde::Deserialize;

use super::api_dlq_actions::{
    bulk_retry, cancel_job, discard_dead_letter, retry_dead_letter, ActionFailure, BulkAnswer,
};
use crate::app_state::AppState;
use crate::auth::RequestAuth;

/// Where a form goes back to when `return_to` is missing or not local.
const DLQ_PAGE: &str = "/dlq";
const BULK_PAGE: &str = "/dlq/bulk-retry";

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RetryForm {
    pub csrf_token: String,
    pub id: String,
    pub reason: String,
    pub idempotency_key: String,
    pub return_to: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DiscardForm {
    pub csrf_token: String,
    pub id: String,
    pub reason: String,
    pub return_to: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct BulkRetryForm {
    pub csrf_token: String,
    /// A `DlqFilter` query string.
    pub filter: String,
    pub reason: String,
    /// `on` when the box is checked.
    pub canary: String,
    pub canary_wait_s: String,
    pub throttle_per_s: String,
    pub expected_count: String,
    /// `true` when the filter is empty on purpose (every retryable one).
    pub all: String,
    pub idempotency_key: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CancelJobForm {
    pub csrf_token: String,
    pub job_id: String,
}

/// `return_to` if it is a path of this site (one leading `/`, no scheme,
/// no host, no control characters), else `/dlq`: no open redirect.
pub fn local_return_path(return_to: &str) -> &str {
    let local = return_to.starts_with('/')
        && !return_to.starts_with("//")
        && !return_to.starts_with("/\\")
        && !return_to.chars().any(|c| c.is_control() || c == '\\');
    if local {
        return_to
    } else {
        DLQ_PAGE
    }
}

/// `path` with `name=<text>` added to its query (before any fragment),
/// replacing the notice or error an earlier action left there.
pub fn with_message(path: &str, name: &str, text: &str) -> String {
    let (path, fragment) = match path.split_once('#') {
        Some((path, fragment)) => (path, format!("#{fragment}")),
        None => (path, String::new()),
    };
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut pairs: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let key = pair.split('=').next().unwrap_or_default();
            !pair.is_empty() && key != "notice" && key != "error"
        })
        .collect();
    let message = format!("{name}={}", percent_encode(text));
    pairs.push(&message);
    format!("{path}?{}{fragment}", pairs.join("&"))
}

fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}

fn back(return_to: &str, result: Result<String, ActionFailure>) -> Response {
    let path = local_return_path(return_to);
    match result {
        Ok(notice) => see_other(&with_message(path, "notice", &notice)),
        Err(failure) => see_other(&with_message(path, "error", &failure.message)),
    }
}

fn unreadable(rejection: FormRejection) -> Response {
    see_other(&with_message(
        DLQ_PAGE,
        "error",
        &format!("the form could not be read: {}", rejection.body_text()),
    ))
}

/// `POST /dlq/actions/retry`.
#[tracing::instrument(skip(state, auth, form))]
pub async fn retry(
    State(state): State<AppState>,
    auth: RequestAuth,
    form: Result<Form<RetryForm>, FormRejection>,
) -> Response {
    let Form(form) = match form {
        Ok(form) => form,
        Err(rejection) => return unreadable(rejection),
    };
    let result = retry_dead_letter(
        &state,
        &auth,
        form.id.trim(),
        Some(&form.reason),
        Some(&form.idempotency_key),
    )
    .await
    .map(|outcome| {
        let place = match (outcome.partition, outcome.offset) {
            (Some(p), Some(o)) => format!(" (partition {p}, offset {o})"),
            _ => String::new(),
        };
        if outcome.replayed {
            format!(
                "Already retried {}: this was a repeat of the same request, nothing was produced again",
                outcome.dead_letter_id
            )
        } else if outcome.state == DeadLetterState::Retried {
            format!(
                "Retried {}: produced to {}{place}",
                outcome.dead_letter_id, outcome.target_topic
            )
        } else {
            format!("Retry of {} is {}", outcome.dead_letter_id, outcome.state.as_str())
        }
    });
    back(&form.return_to, result)
}

/// `POST /dlq/actions/discard`.
#[tracing::instrument(skip(state, auth, form))]
pub async fn discard(
    State(state): State<AppState>,
    auth: RequestAuth,
    form: Result<Form<DiscardForm>, FormRejection>,
) -> Response {
    let Form(form) = match form {
        Ok(form) => form,
        Err(rejection) => return unreadable(rejection),
    };
    let result = discard_dead_letter(&state, &auth, form.id.trim(), Some(&form.reason))
        .await
        .map(|detail| format!("Discarded {}", detail.summary.id));
    back(&form.return_to, result)
}

/// An optional number field: blank is None.
fn number<T: std::str::FromStr>(name: &str, text: &str) -> Result<Option<T>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| format!("`{name}` must be a whole number, got `{text}`"))
}

fn bulk_request(form: &BulkRetryForm) -> Result<BulkRetryRequest, String> {
    let filter: DlqFilter = serde_urlencoded::from_str(form.filter.trim_start_matches('?'))
        .map_err(|e| format!("the filter could not be read: {e}"))?;
    Ok(BulkRetryRequest {
        filter,
        reason: Some(form.reason.clone()),
        dry_run: false,
        canary: matches!(form.canary.trim(), "on" | "true" | "1"),
        canary_wait_s: number("canary_wait_s", &form.canary_wait_s)?,
        throttle_per_s: number("throttle_per_s", &form.throttle_per_s)?,
        expected_count: number("expected_count", &form.expected_count)?,
        all: matches!(form.all.trim(), "on" | "true" | "1"),
        idempotency_key: Some(form.idempotency_key.clone()),
    })
}

/// `POST /dlq/actions/bulk-retry`.
#[tracing::instrument(skip(state, auth, form))]
pub async fn bulk(
    State(state): State<AppState>,
    auth: RequestAuth,
    form: Result<Form<BulkRetryForm>, FormRejection>,
) -> Response {
    let Form(form) = match form {
        Ok(form) => form,
        Err(rejection) => return unreadable(rejection),
    };
    let filter = form.filter.trim().trim_start_matches('?');
    let confirmation = if filter.is_empty() {
        BULK_PAGE.to_string()
    } else {
        format!("{BULK_PAGE}?{filter}")
    };
    let request = match bulk_request(&form) {
        Ok(request) => request,
        Err(message) => return see_other(&with_message(&confirmation, "error", &message)),
    };
    match bulk_retry(&state, &auth, request).await {
        Ok(BulkAnswer::Job(job)) => see_other(&with_message(
            &job_page(&job.id),
            "notice",
            &format!("Bulk retry of {} dead letters started", job.total),
        )),
        // Not asked for by the form (dry_run is never set).
        Ok(BulkAnswer::Preview(_)) => see_other(&confirmation),
        Err(failure) => see_other(&with_message(&confirmation, "error", &failure.message)),
    }
}

fn job_page(job_id: &str) -> String {
    format!("/dlq/jobs/{}", percent_encode(job_id))
}

/// `POST /dlq/actions/cancel-job`.
#[tracing::instrument(skip(state, auth, form))]
pub async fn cancel_job_form(
    State(state): State<AppState>,
    auth: RequestAuth,
    form: Result<Form<CancelJobForm>, FormRejection>,
) -> Response {
    let Form(form) = match form {
        Ok(form) => form,
        Err(rejection) => return unreadable(rejection),
    };
    let job_id = form.job_id.trim();
    let page = job_page(job_id);
    match cancel_job(&state, &auth, job_id).await {
        Ok(_) => see_other(&with_message(
            &page,
            "notice",
            "Cancelled: nothing more will be re-driven",
        )),
        Err(failure) => see_other(&with_message(&page, "error", &failure.message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(local_return_path("/dlq?topic=a.DLT"), "/dlq?topic=a.DLT");
        assert_eq!(
            local_return_path("/dlq/messages/a.DLT/0/7"),
            "/dlq/messages/a.DLT/0/7"
        );
        for bad in [
            "",
            "dlq",
            "//evil.example/x",
            "/\\evil.example",
            "https://evil.example/",
            "/dlq\r\nSet-Cookie: x",
        ] {
            assert_eq!(local_return_path(bad), "/dlq", "{bad:?}");
        }
    }

    #[test]
    fn messages_join_the_query_and_are_encoded() {
        assert_eq!(
            with_message("/dlq", "notice", "Retried a/0/1"),
            "/dlq?notice=Retried%20a%2F0%2F1"
        );
        assert_eq!(
            with_message("/dlq?topic=x#row", "error", "no & yes"),
            "/dlq?topic=x&error=no%20%26%20yes#row"
        );
        assert_eq!(
            with_message("/dlq?notice=old&topic=x&error=older", "notice", "new"),
            "/dlq?topic=x&notice=new"
        );
    }

    #[test]
    fn the_bulk_form_reads_its_filter_and_numbers() {
        let form = BulkRetryForm {
            filter: "topic=orders.DLT&reason=timed%20out&state=discarded".into(),
            reason: "fixed".into(),
            canary: "on".into(),
            canary_wait_s: "5".into(),
            throttle_per_s: " ".into(),
            expected_count: "12".into(),
            idempotency_key: "k".into(),
            ..Default::default()
        };
        let request = bulk_request(&form).unwrap();
        assert_eq!(request.filter.topic.as_deref(), Some("orders.DLT"));
        assert_eq!(request.filter.reason.as_deref(), Some("timed out"));
        assert!(request.canary);
        assert_eq!(
            (
                request.canary_wait_s,
                request.throttle_per_s,
                request.expected_count
            ),
            (Some(5), None, Some(12))
        );
        let bad = BulkRetryForm {
            expected_count: "twelve".into(),
            ..Default::default()
        };
        assert!(bulk_request(&bad).unwrap_err().contains("expected_count"));
    }
}
