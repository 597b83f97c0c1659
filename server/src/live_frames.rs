//! The live stream's messages as SSE frames, numbered and serialised once
//! for every subscriber.
//!
//! Why: every SSE subscriber used to receive the `StreamMessage` itself
//! from `AppState.live`, and a broadcast receiver clones what it receives
//! — a deep clone (payload JSON, headers) per message *per subscriber*,
//! then a JSON serialisation per subscriber. With 500 viewers at 5,000
//! events/s that is millions of clones a second: subscribers fell behind
//! and were dropped messages (`lagged`) although none of them was slow
//! (`sagascope bench viewers`, docs/benchmarks.md). Here one task
//! receives each message once, serialises it once and broadcasts an
//! `Arc` of the result; a subscriber's clone is a reference count, and a
//! saga page's stream compares a saga id.
//!
//! Each frame carries a sequence number, sent as the SSE `id:`: a client
//! can tell that it missed messages by a gap, and every gap is announced
//! by a `lagged` message first (this task's own falling behind is
//! broadcast as a [`LiveFrame::Lagged`] that advances the numbers by what
//! it lost; a subscriber's is told by `api_stream.rs`).

use std::sync::Arc;

use sagascope_model::StreamMessage;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

/// One live message, ready for every subscriber.
#[derive(Debug)]
pub enum LiveFrame {
    Message {
        /// The SSE `id:`: consecutive across messages and losses.
        seq: u64,
        /// The SSE `event:` name (`StreamMessage::kind`).
        kind: &'static str,
        /// For the saga page's filter (`StreamMessage::saga_id`).
        saga_id: Option<String>,
        /// The message as JSON, the SSE `data:`.
        json: String,
    },
    /// This many messages were lost before they were framed.
    Lagged(u64),
}

/// Starts the framing of `live`'s messages; the frames' channel holds
/// `capacity` frames per subscriber. Ends when `live` closes.
pub fn start_live_frames(
    live: &broadcast::Sender<StreamMessage>,
    capacity: usize,
) -> broadcast::Sender<Arc<LiveFrame>> {
    let (frames, _) = broadcast::channel(capacity);
    tokio::spawn(frame_messages(live.subscribe(), frames.clone()));
    frames
}

async fn frame_messages(
    mut live: broadcast::Receiver<StreamMessage>,
    frames: broadcast::Sender<Arc<LiveFrame>>,
) {
    let mut seq = 0u64;
    loop {
        let frame = match live.recv().await {
            Ok(message) => {
                let Ok(json) = serde_json::to_string(&message) else {
                    continue;
                };
                seq += 1;
                LiveFrame::Message {
                    seq,
                    kind: message.kind(),
                    saga_id: message.saga_id().map(str::to_string),
                    json,
                }
            }
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "live framing fell behind; streams are told to refetch"
                );
                seq += missed;
                LiveFrame::Lagged(missed)
            }
            Err(RecvError::Closed) => return,
        };
        // No subscriber is not an error.
        let _ = frames.send(Arc::new(frame));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sagascope_model::IngestErrorView;

    fn error(id: i64) -> StreamMessage {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        StreamMessage::IngestError {
            error: IngestErrorView {
                id,
                topic: "t".into(),
                partition: 0,
                offset: id,
                reason: "r".into(),
                first_bytes: String::new(),
                key: None,
                published_at: None,
                ingested_at: at,
            },
        }
    }

    #[tokio::test]
    async fn messages_are_framed_once_in_order_and_losses_are_numbered() {
        let (live, _) = broadcast::channel(2);
        let frames = start_live_frames(&live, 16);
        let mut subscriber = frames.subscribe();
        live.send(error(1)).unwrap();
        let first = subscriber.recv().await.unwrap();
        let LiveFrame::Message {
            seq, kind, json, ..
        } = &*first
        else {
            panic!("{first:?}");
        };
        assert_eq!((*seq, *kind), (1, "ingest_error"));
        assert_eq!(
            serde_json::from_str::<StreamMessage>(json).unwrap(),
            error(1)
        );
        // Five sent at once into a channel of two: the framing task loses
        // three, says so, and numbers on after them.
        for id in 2..=6 {
            live.send(error(id)).unwrap();
        }
        let mut seen = Vec::new();
        while seen.len() < 3 {
            seen.push(match &*subscriber.recv().await.unwrap() {
                LiveFrame::Message { seq, .. } => format!("#{seq}"),
                LiveFrame::Lagged(n) => format!("lagged {n}"),
            });
        }
        assert_eq!(seen, ["lagged 3", "#5", "#6"]);
    }
}
