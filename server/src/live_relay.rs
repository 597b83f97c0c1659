//! Live updates across replicas: every replica publishes the changes it
//! committed with `pg_notify('sagascope_live', …)` and `LISTEN`s on the same
//! channel, re-broadcasting to its own SSE subscribers what *another*
//! replica committed (payloads carry a per-process instance id, so nobody
//! echoes its own). Postgres only: SQLite is one process, nothing to relay.
//!
//! Where the NOTIFY is issued: by a task that forwards the local broadcast
//! after commit, not inside the ingest's write transaction. The live
//! messages are built (and ordered: merges, events, sagas, errors) by the
//! ingest from the batch outcome after `write_batch` returns, and the stall
//! sweep and other producers commit in their own transactions; a hook in
//! the write transaction would duplicate that in the store for each of
//! them. A NOTIFY inside the write transaction would also take Postgres's
//! global notification-queue lock at every commit, serialising the batch
//! commits of all replicas. The cost of the forwarder: a crash between a
//! commit and its NOTIFY loses that notification (the other replicas' pages
//! catch up at their next refetch), and failures are answered by a `lagged`
//! notice so the other replicas' pages refetch.
//!
//! Channels: producers in this process (ingest, stall sweep) send on the
//! *local* channel; the relay copies it to `AppState.live` (what SSE reads)
//! and NOTIFYs it; messages from other replicas go to `AppState.live` only,
//! so they are never published again. A lost `LISTEN` connection means
//! missed notifications: after reconnecting the relay bumps
//! `AppState.live_resync`, which SSE turns into a `lagged` event (pages
//! refetch), as for a slow subscriber.

use std::time::Duration;

use metrics::{counter, describe_counter};
use sagascope_model::StreamMessage;
use sagascope_store::Store;
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

/// The Postgres notification channel shared by the replicas.
pub const LIVE_CHANNEL: &str = "sagascope_live";

/// Postgres refuses payloads of 8000 bytes or more; keep a margin.
const MAX_PAYLOAD_BYTES: usize = 7900;

/// Messages per NOTIFY statement.
const NOTIFY_CHUNK: usize = 500;

/// Longest wait between two attempts to reconnect the listener.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// One notification on [`LIVE_CHANNEL`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Notification {
    /// Instance id of the sending process.
    from: String,
    body: Body,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Body {
    /// The message itself, when it fits (boxed: the other forms are small).
    Message(Box<StreamMessage>),
    /// Too large for a payload: the receiver reads it from the store.
    Refetch(Refetch),
    /// The sender lost messages (a failed NOTIFY, or it fell behind its
    /// own producers): receivers tell their pages to refetch.
    Lagged,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Refetch {
    Saga { saga_id: String },
    Event { saga_id: String, event_id: String },
}

/// The payload to NOTIFY for `message`: its JSON when it fits, else a
/// refetch by id, else (nothing to refetch by) a `lagged` notice.
fn payload(from: &str, message: &StreamMessage) -> String {
    let encode = |body: Body| {
        serde_json::to_string(&Notification {
            from: from.to_string(),
            body,
        })
        .unwrap_or_default()
    };
    let full = encode(Body::Message(Box::new(message.clone())));
    if !full.is_empty() && full.len() <= MAX_PAYLOAD_BYTES {
        return full;
    }
    let refetch = match message {
        StreamMessage::Saga { saga } => Some(Refetch::Saga {
            saga_id: saga.saga_id.clone(),
        }),
        StreamMessage::Event { event } => Some(Refetch::Event {
            saga_id: event.saga_id.clone(),
            event_id: event.event_id.clone(),
        }),
        StreamMessage::IngestError { .. } | StreamMessage::Merged { .. } => None,
    };
    match refetch.map(|r| encode(Body::Refetch(r))) {
        Some(small) if small.len() <= MAX_PAYLOAD_BYTES => small,
        _ => encode(Body::Lagged),
    }
}

/// The relay's tasks; [`LiveRelay::stop`] ends them after the last local
/// messages went out.
pub struct LiveRelay {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// The sender that this process's producers (ingest, stall sweep) use, and
/// the relay behind it when the store is Postgres. On SQLite the sender is
/// `live` itself. Returns once this process `LISTEN`s (or the first attempt
/// failed: the relay keeps trying), so what other replicas commit after
/// the start reaches its subscribers.
pub async fn start_live_relay(
    store: &Store,
    live: broadcast::Sender<StreamMessage>,
    resync: watch::Sender<u64>,
    buffer: usize,
) -> anyhow::Result<(broadcast::Sender<StreamMessage>, Option<LiveRelay>)> {
    let Some(url) = store.postgres_url() else {
        return Ok((live, None));
    };
    describe_live_relay_metrics();
    let instance = format!("{}-{:016x}", std::process::id(), rand::random::<u64>());
    // Its own small pool: NOTIFY needs no `Any` translation and must not
    // queue behind the ingest's connections.
    let notify_pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy(url)?;
    let (local, _) = broadcast::channel(buffer);
    let (stop, stop_rx) = watch::channel(false);
    let first_listener = match tokio::time::timeout(Duration::from_secs(10), listen(url)).await {
        Ok(Ok(listener)) => Some(listener),
        Ok(Err(error)) => {
            tracing::warn!(%error, "cannot LISTEN for other replicas' live updates yet; retrying");
            None
        }
        Err(_) => {
            tracing::warn!("LISTEN for other replicas' live updates timed out; retrying");
            None
        }
    };
    let tasks = vec![
        tokio::spawn(fan_out_locally(
            local.subscribe(),
            live.clone(),
            resync.clone(),
            stop_rx.clone(),
        )),
        tokio::spawn(notify_other_replicas(
            local.subscribe(),
            notify_pool,
            instance.clone(),
            stop_rx.clone(),
        )),
        tokio::spawn(listen_to_other_replicas(
            first_listener,
            url.to_string(),
            store.clone(),
            instance.clone(),
            live,
            resync,
            stop_rx,
        )),
    ];
    tracing::info!(%instance, channel = LIVE_CHANNEL, "live relay across replicas started");
    Ok((local, Some(LiveRelay { stop, tasks })))
}

impl LiveRelay {
    /// Publishes what the local producers have sent so far, then stops
    /// listening. Call after the ingest has drained.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                tracing::warn!("live relay task did not stop within 5 s");
            }
        }
    }
}

fn describe_live_relay_metrics() {
    describe_counter!(
        "sagascope_live_notifications_sent_total",
        "Live messages published to the other replicas (Postgres NOTIFY)."
    );
    describe_counter!(
        "sagascope_live_notifications_received_total",
        "Live messages received from other replicas (Postgres LISTEN), by form: message, refetch, lagged."
    );
    describe_counter!(
        "sagascope_live_notification_failures_total",
        "NOTIFY statements that failed; the other replicas are told to refetch."
    );
    describe_counter!(
        "sagascope_live_listener_reconnects_total",
        "Times the LISTEN connection was lost and re-established (notifications in between are missed; pages refetch)."
    );
}

/// Bumps the resync counter: SSE subscribers get a `lagged` event.
fn ask_pages_to_refetch(resync: &watch::Sender<u64>) {
    resync.send_modify(|n| *n = n.wrapping_add(1));
}

/// Local producers → this process's SSE subscribers.
async fn fan_out_locally(
    mut local: broadcast::Receiver<StreamMessage>,
    live: broadcast::Sender<StreamMessage>,
    resync: watch::Sender<u64>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let received = tokio::select! {
            received = local.recv() => received,
            _ = stop.wait_for(|stopping| *stopping) => {
                // What is already queued still goes out.
                while let Ok(message) = local.try_recv() {
                    let _ = live.send(message);
                }
                return;
            }
        };
        match received {
            Ok(message) => {
                // No subscriber is not an error.
                let _ = live.send(message);
            }
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "live fan-out fell behind");
                ask_pages_to_refetch(&resync);
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Local producers → NOTIFY, in chunks of what has queued up meanwhile.
async fn notify_other_replicas(
    mut local: broadcast::Receiver<StreamMessage>,
    pool: PgPool,
    instance: String,
    mut stop: watch::Receiver<bool>,
) {
    // Set when messages were lost on the way out: the next NOTIFY first
    // tells the others to refetch.
    let mut lost = false;
    let mut stopping = false;
    loop {
        let mut payloads = Vec::new();
        // Announced now; set again if more is lost below.
        if std::mem::take(&mut lost) {
            payloads.push(
                serde_json::to_string(&Notification {
                    from: instance.clone(),
                    body: Body::Lagged,
                })
                .unwrap_or_default(),
            );
        }
        // Wait for a message only when there is nothing to send yet.
        if !stopping && payloads.is_empty() {
            tokio::select! {
                received = local.recv() => match received {
                    Ok(message) => payloads.push(payload(&instance, &message)),
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "live relay fell behind; other replicas will refetch");
                        lost = true;
                        continue;
                    }
                    Err(RecvError::Closed) => stopping = true,
                },
                _ = stop.wait_for(|stopping| *stopping) => stopping = true,
            }
        }
        while payloads.len() < NOTIFY_CHUNK {
            match local.try_recv() {
                Ok(message) => payloads.push(payload(&instance, &message)),
                Err(broadcast::error::TryRecvError::Lagged(_)) => lost = true,
                Err(_) => break,
            }
        }
        if !payloads.is_empty() {
            let sent =
                sqlx::query("SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload")
                    .bind(LIVE_CHANNEL)
                    .bind(&payloads)
                    .execute(&pool)
                    .await;
            match sent {
                Ok(_) => {
                    counter!("sagascope_live_notifications_sent_total")
                        .increment(payloads.len() as u64);
                }
                Err(error) => {
                    tracing::warn!(%error, messages = payloads.len(), "NOTIFY failed; other replicas will refetch");
                    counter!("sagascope_live_notification_failures_total").increment(1);
                    lost = true;
                    if !stopping {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }
        if stopping && local.is_empty() {
            pool.close().await;
            return;
        }
    }
}

/// LISTEN → this process's SSE subscribers, for what other replicas
/// committed; reconnects with backoff and asks pages to refetch after a gap.
async fn listen_to_other_replicas(
    mut first_listener: Option<PgListener>,
    url: String,
    store: Store,
    instance: String,
    live: broadcast::Sender<StreamMessage>,
    resync: watch::Sender<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    // Notifications may have been missed since the connection dropped (or
    // since the start, when the first attempt failed).
    let mut gap = first_listener.is_none();
    loop {
        let first = first_listener.take();
        let connected = async {
            match first {
                Some(listener) => Ok(listener),
                None => listen(&url).await,
            }
        };
        let connected = tokio::select! {
            connected = connected => connected,
            _ = stop.wait_for(|stopping| *stopping) => return,
        };
        let mut listener = match connected {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "cannot LISTEN for other replicas' live updates");
                gap = true;
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.wait_for(|stopping| *stopping) => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        if gap {
            // Pages refetch now that nothing more is missed.
            counter!("sagascope_live_listener_reconnects_total").increment(1);
            ask_pages_to_refetch(&resync);
        }
        loop {
            let received = tokio::select! {
                received = listener.try_recv() => received,
                _ = stop.wait_for(|stopping| *stopping) => return,
            };
            match received {
                Ok(Some(notification)) => {
                    receive(notification.payload(), &instance, &store, &live, &resync).await;
                }
                // The connection was lost (`try_recv` says so instead of
                // silently reconnecting like `recv`): start over.
                Ok(None) => {
                    tracing::warn!("LISTEN connection lost; reconnecting");
                    gap = true;
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "LISTEN failed; reconnecting");
                    gap = true;
                    break;
                }
            }
        }
    }
}

/// A connection that `LISTEN`s on [`LIVE_CHANNEL`].
async fn listen(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(LIVE_CHANNEL).await?;
    Ok(listener)
}

/// Re-broadcasts one notification of another replica.
async fn receive(
    payload: &str,
    instance: &str,
    store: &Store,
    live: &broadcast::Sender<StreamMessage>,
    resync: &watch::Sender<u64>,
) {
    let notification: Notification = match serde_json::from_str(payload) {
        Ok(notification) => notification,
        Err(error) => {
            // Another version of sagascope, or someone else's NOTIFY.
            tracing::debug!(%error, "ignoring an unreadable live notification");
            return;
        }
    };
    if notification.from == instance {
        return;
    }
    let form = match &notification.body {
        Body::Message(_) => "message",
        Body::Refetch(_) => "refetch",
        Body::Lagged => "lagged",
    };
    counter!("sagascope_live_notifications_received_total", "form" => form).increment(1);
    match notification.body {
        Body::Message(message) => {
            let _ = live.send(*message);
        }
        Body::Lagged => ask_pages_to_refetch(resync),
        Body::Refetch(refetch) => match refetched(store, refetch).await {
            Ok(Some(message)) => {
                let _ = live.send(message);
            }
            // Gone meanwhile (merged or removed): nothing to show.
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "cannot read a relayed change; pages will refetch");
                ask_pages_to_refetch(resync);
            }
        },
    }
}

async fn refetched(
    store: &Store,
    refetch: Refetch,
) -> sagascope_store::Result<Option<StreamMessage>> {
    Ok(match refetch {
        Refetch::Saga { saga_id } => store
            .saga_detail(&saga_id)
            .await?
            .map(|detail| StreamMessage::Saga { saga: detail.saga }),
        Refetch::Event { saga_id, event_id } => {
            store.saga_detail(&saga_id).await?.and_then(|detail| {
                detail
                    .events
                    .into_iter()
                    .find(|event| event.event_id == event_id)
                    .map(|event| StreamMessage::Event { event })
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sagascope_model::{IngestErrorView, Phase, TimelineEvent};

    fn at() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn event(payload_bytes: usize) -> StreamMessage {
        StreamMessage::Event {
            event: TimelineEvent {
                event_id: "e1".into(),
                saga_id: "s1".into(),
                phase: Phase::StepStarted,
                step: None,
                event_type: "Reserve".into(),
                occurred_at: at(),
                published_at: None,
                ingested_at: at(),
                topic: "t".into(),
                partition: 0,
                offset: 1,
                trace_id: None,
                span_id: None,
                headers: vec![],
                payload: serde_json::json!({ "blob": "x".repeat(payload_bytes) }),
                error: None,
            },
        }
    }

    #[test]
    fn small_messages_travel_whole_and_large_ones_as_a_refetch() {
        let message = event(100);
        let small = payload("me", &message);
        assert!(small.len() <= MAX_PAYLOAD_BYTES);
        let decoded: Notification = serde_json::from_str(&small).unwrap();
        assert_eq!(decoded.from, "me");
        assert_eq!(decoded.body, Body::Message(Box::new(message)));

        let large = payload("me", &event(20_000));
        assert!(large.len() <= MAX_PAYLOAD_BYTES, "{}", large.len());
        let decoded: Notification = serde_json::from_str(&large).unwrap();
        assert_eq!(
            decoded.body,
            Body::Refetch(Refetch::Event {
                saga_id: "s1".into(),
                event_id: "e1".into()
            })
        );

        // Nothing to refetch an ingest error by: the others refetch pages.
        let error = StreamMessage::IngestError {
            error: IngestErrorView {
                id: 1,
                topic: "t".into(),
                partition: 0,
                offset: 1,
                reason: "r".repeat(10_000),
                first_bytes: String::new(),
                key: None,
                published_at: None,
                ingested_at: at(),
            },
        };
        let decoded: Notification = serde_json::from_str(&payload("me", &error)).unwrap();
        assert_eq!(decoded.body, Body::Lagged);
    }
}
