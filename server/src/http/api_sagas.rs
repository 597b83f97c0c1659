use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sagascope_model::{SagaDetail, SagaFilter, SagaPage};

use crate::app_state::AppState;
use crate::error::AppError;
use crate::http::openapi::ErrorBody;

/// `GET /api/v1/sagas?saga_type=&status=&since=&until=&q=&limit=&cursor=&overdue=&sort=&incomplete_compensation=`
#[utoipa::path(
    get,
    path = "/api/v1/sagas",
    tag = "sagas",
    summary = "List sagas",
    description = "Sagas newest first, filtered by type, status (one or several, \
        comma-separated), start time and a search text (saga id, trace id or business key), \
        and `overdue=true` (running or compensating sagas that have waited longer for their next \
        event than their type's learned flow says that hop takes, its p99); keyset-paged by \
        `cursor` (pass `next_cursor` of the previous page). `sort=waiting` lists only running \
        and compensating sagas, the one waiting longest for its next event (oldest last event) \
        first. Each running or compensating saga listed carries `waiting_on`: the event its \
        type's flow expects next, the time waited and that hop's p99. \
        `incomplete_compensation=true` lists the sagas that read compensated while a forward \
        step that completed has no compensation event (`missing_compensations` names them).",
    params(SagaFilter),
    responses(
        (status = 200, description = "One page of sagas.", body = SagaPage),
        (status = 400, description = "A filter is invalid; the message names it.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip(state))]
pub async fn list_sagas(
    State(state): State<AppState>,
    Query(filter): Query<SagaFilter>,
) -> Result<Json<SagaPage>, AppError> {
    let query = filter.validate().map_err(AppError::BadRequest)?;
    let now = chrono::Utc::now();
    let overdue = if query.overdue {
        state.flows.overdue_rules(now)
    } else {
        Vec::new()
    };
    let mut page = state.store.list_sagas_overdue_by(&query, &overdue).await?;
    state.flows.annotate_waiting(&mut page.items, now);
    Ok(Json(page))
}

/// `GET /api/v1/sagas/{saga_id}`: the saga and its timeline. The body is
/// written by the store straight from the rows (stored payloads and headers
/// are not parsed again); an `If-None-Match` that still matches costs one
/// primary-key lookup and answers 304 without a body.
#[utoipa::path(
    get,
    path = "/api/v1/sagas/{saga_id}",
    tag = "sagas",
    summary = "One saga with its timeline",
    description = "The saga and every event of it in event-time order. The id of a saga \
        that was merged into another also finds the winner. The answer carries a strong `ETag` \
        that changes whenever the timeline does (new events, status changes, merges, \
        reprojection); send it back in `If-None-Match` to get 304 while nothing changed.",
    params(
        ("saga_id" = String, Path, description = "The saga id."),
        ("If-None-Match" = Option<String>, Header, description = "ETags of timelines the client has; \
            a match answers 304."),
    ),
    responses(
        (status = 200, description = "The saga and its events.", body = SagaDetail,
            headers(("ETag" = String, description = "Strong validator of this timeline."))),
        (status = 304, description = "Unchanged since the ETag sent in `If-None-Match`.",
            headers(("ETag" = String, description = "The current validator (the one sent)."))),
        (status = 404, description = "No saga with that id.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip(state, headers))]
pub async fn get_saga(
    State(state): State<AppState>,
    Path(saga_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let not_found = || AppError::NotFound(format!("no saga with id `{saga_id}`"));
    if let Some(if_none_match) = headers.get(header::IF_NONE_MATCH) {
        let Some(etag) = state.store.saga_timeline_etag(&saga_id).await? else {
            return Err(not_found());
        };
        if etag_matches(if_none_match.as_bytes(), &etag) {
            return Ok((StatusCode::NOT_MODIFIED, etag_headers(&etag)).into_response());
        }
    }
    let timeline = state
        .store
        .saga_timeline_json(&saga_id)
        .await?
        .ok_or_else(not_found)?;
    Ok((
        etag_headers(&timeline.etag),
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        timeline.body,
    )
        .into_response())
}

/// `ETag`, and `Cache-Control: no-cache` so a browser that keeps the body
/// asks again each time (with `If-None-Match`) instead of reusing it.
fn etag_headers(etag: &str) -> [(header::HeaderName, HeaderValue); 2] {
    [
        (
            header::ETAG,
            HeaderValue::from_str(etag).unwrap_or_else(|_| HeaderValue::from_static("\"\"")),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ]
}

/// `If-None-Match` against our (strong) ETag, by the weak comparison RFC
/// 9110 §13.1.2 prescribes for it: `*`, or any listed tag whose opaque
/// part equals ours, with or without `W/`.
fn etag_matches(if_none_match: &[u8], etag: &str) -> bool {
    let Ok(text) = std::str::from_utf8(if_none_match) else {
        return false;
    };
    text.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

#[cfg(test)]
mod tests {
    use super::etag_matches;

    #[test]
    fn if_none_match_lists_star_and_weak_tags_match() {
        let etag = "\"0.2.3.4.ab\"";
        assert!(etag_matches(b"\"0.2.3.4.ab\"", etag));
        assert!(etag_matches(b"\"x\", W/\"0.2.3.4.ab\"", etag));
        assert!(etag_matches(b"*", etag));
        assert!(!etag_matches(b"\"0.2.3.4.ac\"", etag));
        assert!(!etag_matches(b"0.2.3.4.ab", etag));
        assert!(!etag_matches(b"", etag));
    }
}
