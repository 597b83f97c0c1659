//! `GET /api/v1/stream[?saga_id=]`: Server-Sent Events of committed changes.
//! Each message is named (`saga`, `event`, `ingest_error`) and carries a
//! `StreamMessage` as JSON.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::{Stream, StreamExt};
use sagascope_model::StreamMessage;
use serde::Deserialize;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::{BroadcastStream, WatchStream};
use utoipa::IntoParams;

use crate::app_state::AppState;

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
        `data:`. `lagged` (data: how many were missed) tells a slow client to refetch. A \
        keep-alive comment comes every 15 s.",
    params(StreamQuery),
    responses(
        (status = 200, description = "An endless event stream; each `data:` line is a StreamMessage.",
            body = StreamMessage, content_type = "text/event-stream"),
    )
)]
pub async fn stream(
    State(state): State<AppState>,
    Query(query): Query<StreamQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let saga_id = query.saga_id.filter(|s| !s.is_empty());
    let shutdown = WatchStream::new(state.shutdown.clone())
        .filter(|stopping| futures::future::ready(*stopping));
    let hello = futures::stream::once(futures::future::ready(Ok(Event::default()
        .event("hello")
        .data("{}"))));
    let updates = BroadcastStream::new(state.live.subscribe()).filter_map(move |received| {
        let event = match received {
            Ok(message)
                if saga_id
                    .as_deref()
                    .is_none_or(|id| message.saga_id() == Some(id)) =>
            {
                serde_json::to_string(&message)
                    .ok()
                    .map(|json| Event::default().event(message.kind()).data(json))
            }
            Ok(_) => None,
            // A slow client missed messages: tell it to refetch.
            Err(BroadcastStreamRecvError::Lagged(n)) => {
                Some(Event::default().event("lagged").data(n.to_string()))
            }
        };
        futures::future::ready(event.map(Ok))
    });
    // Messages of another replica may have been missed (its LISTEN
    // connection dropped, see live_relay.rs): refetch, as when lagging.
    let resync = WatchStream::from_changes(state.live_resync.clone())
        .map(|_| Ok::<_, Infallible>(Event::default().event("lagged").data("0")));
    let updates = futures::stream::select(updates, resync);
    Sse::new(hello.chain(updates).take_until(shutdown.into_future()))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
