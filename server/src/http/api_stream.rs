//! `GET /api/v1/stream[?saga_id=]`: Server-Sent Events of committed changes.
//! Each message is named (`saga`, `event`, `ingest_error`) and carries a
//! `StreamMessage` as JSON.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::stream::StreamExt;
use sagascope_model::StreamMessage;
use serde::Deserialize;
use tokio_stream::wrappers::WatchStream;
use utoipa::IntoParams;

use crate::app_state::AppState;
use crate::auth::{reject, RequestAuth};
use crate::http::stream_limits::RECHECK_EVERY;
use crate::live_frames::lagged_frame;

/// How often an idle stream gets a comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Only the messages of this saga (its events, its summary, and its
    /// merge into another).
    saga_id: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/stream",
    tag = "stream",
    summary = "Live updates (Server-Sent Events)",
    description = "Committed changes as Server-Sent Events, until the client or the server \
        goes away. The first event is `hello` (`{}`); then each message is named by its kind \
        (`saga`, `event`, `ingest_error`, `merged`) and carries a `StreamMessage` as JSON in \
        `data:`, numbered by the SSE `id:` (consecutive over all messages; a saga's stream \
        skips the other sagas' numbers). `lagged` (data: how many were missed) tells a slow \
        client to refetch; it comes before any gap in the numbers. A keep-alive comment \
        comes every 15 s.",
    params(StreamQuery),
    responses(
        (status = 200, description = "An endless event stream; each `data:` line is a StreamMessage. \
            It ends with the session that opened it (logout, a disabled user, expiry).",
            body = StreamMessage, content_type = "text/event-stream"),
        (status = 429, description = "Too many live streams for this session (16) or this server (2,000).",
            body = crate::http::openapi::ErrorBody),
    )
)]
pub async fn stream(
    State(state): State<AppState>,
    auth: RequestAuth,
    Query(query): Query<StreamQuery>,
) -> Response {
    let owner = stream_owner(&auth);
    let permit = match state.streams.acquire(&owner) {
        Ok(permit) => permit,
        Err(refused) => {
            let mut response = reject(StatusCode::TOO_MANY_REQUESTS, &refused.message());
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(30u64));
            return response;
        }
    };
    let ended_here = permit.ended();
    // Logout on another replica, a disabled user, an expired session: the
    // stream re-checks its session (cookie sessions; API tokens and proxy
    // identities have no session to end).
    let session_gone = {
        let store = state.store.clone();
        let session = auth.session_hash.clone();
        async move {
            let Some(hash) = session else {
                return futures::future::pending().await;
            };
            loop {
                tokio::time::sleep(RECHECK_EVERY).await;
                match store.find_session(&hash, chrono::Utc::now()).await {
                    Ok(None) => return,
                    Ok(Some(_)) => {}
                    Err(error) => tracing::warn!(%error, "live stream: session re-check failed"),
                }
            }
        }
    };
    let session_ended = Box::pin(async move {
        tokio::select! {
            _ = ended_here => {}
            _ = session_gone => {}
        }
    });
    let saga_id = query.saga_id.filter(|s| !s.is_empty());
    let shutdown = WatchStream::new(state.shutdown.clone())
        .filter(|stopping| futures::future::ready(*stopping));
    let hello = futures::stream::once(futures::future::ready(Bytes::from_static(
        b"event: hello\ndata: {}\n\n",
    )));
    // Frames serialised once for every subscriber, a batch per chunk
    // (live_frames.rs).
    let updates = state.live_frames.subscribe(saga_id);
    // Messages of another replica may have been missed (its LISTEN
    // connection dropped, see live_relay.rs): refetch, as when lagging.
    let resync = WatchStream::from_changes(state.live_resync.clone()).map(|_| lagged_frame(0));
    // A comment now and then keeps proxies from closing an idle stream.
    let keep_alive = futures::stream::unfold((), |()| async {
        tokio::time::sleep(KEEP_ALIVE).await;
        Some((Bytes::from_static(b":\n\n"), ()))
    });
    let updates = futures::stream::select(futures::stream::select(updates, resync), keep_alive);
    let chunks = hello
        .chain(updates)
        .take_until(shutdown.into_future())
        .take_until(session_ended)
        // The permit lives as long as the stream: dropping the stream (the
        // client went away, or one of the ends above) frees its place.
        .map(move |chunk| {
            let _held = &permit;
            Ok::<_, Infallible>(chunk)
        });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(chunks),
    )
        .into_response()
}

/// Whose streams these are: the cookie session, else the principal (API
/// token, proxy), else the anonymous client's address.
fn stream_owner(auth: &RequestAuth) -> String {
    match (&auth.session_hash, &auth.principal) {
        (Some(hash), _) => format!("session:{hash}"),
        (None, Some(principal)) => format!("user:{}", principal.name),
        (None, None) => format!("anonymous:{}", auth.client_ip),
    }
}

/// Ends the live streams of a session that ended (logout).
pub fn end_session_streams(state: &AppState, session_hash: &str) {
    state.streams.end_owner(&format!("session:{session_hash}"));
}
