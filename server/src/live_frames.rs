//! The live stream's messages as SSE bytes: numbered, serialised once for
//! every subscriber, and handed out in batches.
//!
//! Why serialised once: every SSE subscriber used to receive the
//! `StreamMessage` itself from `AppState.live`, and a broadcast receiver
//! clones what it receives — a deep clone (payload JSON, headers) per
//! message *per subscriber*, then a JSON serialisation per subscriber.
//! With 500 viewers at 5,000 events/s that is millions of clones a second
//! (`sagascope bench viewers`, docs/benchmarks.md). Here one task receives
//! each message once and writes its whole SSE frame (`id:`, `event:`,
//! `data:`) once; a subscriber's copy is a reference count.
//!
//! Why batches: a broadcast wakes every subscriber for every value, so one
//! value per message meant 500 task wake-ups (and 500 HTTP body chunks)
//! per event, although a saga page's stream wants almost none of them.
//! The framing task takes every message that is waiting (an ingest batch
//! sends its messages back to back) and broadcasts them as one
//! [`FrameBatch`]: a whole-stream subscriber writes the batch's bytes as
//! one chunk, a saga page's stream picks its saga's frames out of it.
//!
//! Each message carries a sequence number, sent as the SSE `id:`: a client
//! can tell that it missed messages by a gap, and every gap is announced
//! by a `lagged` message first (this task's own falling behind is framed
//! as a `lagged` that advances the numbers by what it lost; a subscriber
//! that falls behind is told by [`subscriber_chunks`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use futures::Stream;
use sagascope_model::StreamMessage;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

/// At most this many messages in one batch. A subscriber that stops
/// reading (a stalled connection) keeps the channel's `capacity` batches
/// alive until it is dropped, so this times the capacity bounds the
/// memory it can hold (`run.rs`: 256 batches, some 40 MB of frames).
const MOST_PER_BATCH: usize = 128;

/// Who a frame is for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Audience {
    /// Every stream, a saga page's too (`lagged`).
    Everyone,
    /// The whole stream, and the page of this saga if there is one.
    Saga(Option<Box<str>>),
}

/// One frame of a batch: a complete SSE event, a slice of the batch's bytes.
#[derive(Debug)]
struct Frame {
    audience: Audience,
    bytes: Bytes,
}

/// Messages framed together, in order.
#[derive(Debug)]
pub struct FrameBatch {
    /// The number of the first message (or loss) in the batch.
    first_seq: u64,
    /// The number of the last: the next batch starts after it.
    last_seq: u64,
    /// Every frame, concatenated: what a whole-stream subscriber writes.
    all: Bytes,
    frames: Vec<Frame>,
}

/// The framed live stream: subscribe to receive [`FrameBatch`]es.
#[derive(Clone)]
pub struct LiveFrames {
    batches: broadcast::Sender<Arc<FrameBatch>>,
    /// The last number broadcast: where a new subscriber starts counting.
    published: Arc<AtomicU64>,
}

/// Starts the framing of `live`'s messages; each subscriber may fall
/// `capacity` batches behind before it is told `lagged`. Ends when `live`
/// closes.
pub fn start_live_frames(live: &broadcast::Sender<StreamMessage>, capacity: usize) -> LiveFrames {
    let (batches, _) = broadcast::channel(capacity);
    let frames = LiveFrames {
        batches,
        published: Arc::new(AtomicU64::new(0)),
    };
    tokio::spawn(frame_messages(live.subscribe(), frames.clone()));
    frames
}

impl LiveFrames {
    /// The SSE bytes for one response: the whole stream (`saga_id` None)
    /// or one saga's messages; one chunk per batch that has any.
    pub fn subscribe(&self, saga_id: Option<String>) -> impl Stream<Item = Bytes> + Send + 'static {
        let receiver = self.batches.subscribe();
        let seen = self.published.load(Ordering::Acquire);
        subscriber_chunks(receiver, saga_id, seen)
    }
}

/// The chunks of one subscriber; `seen` is the last number it need not
/// receive (counted from when it subscribed).
fn subscriber_chunks(
    receiver: broadcast::Receiver<Arc<FrameBatch>>,
    saga_id: Option<String>,
    seen: u64,
) -> impl Stream<Item = Bytes> + Send + 'static {
    struct State {
        receiver: broadcast::Receiver<Arc<FrameBatch>>,
        saga_id: Option<String>,
        seen: u64,
        lagged: bool,
    }
    let state = State {
        receiver,
        saga_id,
        seen,
        lagged: false,
    };
    futures::stream::unfold(state, |mut state| async move {
        loop {
            let batch = match state.receiver.recv().await {
                Ok(batch) => batch,
                // Batches were lost: say how many messages at the next one.
                Err(RecvError::Lagged(_)) => {
                    state.lagged = true;
                    continue;
                }
                Err(RecvError::Closed) => return None,
            };
            let mut chunk = Vec::new();
            if std::mem::take(&mut state.lagged) {
                let missed = batch.first_seq.saturating_sub(state.seen + 1);
                chunk.extend_from_slice(&lagged_frame(missed));
            }
            // A batch wholly before this subscriber started (it subscribed
            // while the batch was being sent) was not missed.
            state.seen = state.seen.max(batch.last_seq);
            let picked = match &state.saga_id {
                None => batch.all.clone(),
                Some(id) => batch.for_saga(id),
            };
            if chunk.is_empty() {
                if picked.is_empty() {
                    continue;
                }
                return Some((picked, state));
            }
            chunk.extend_from_slice(&picked);
            return Some((Bytes::from(chunk), state));
        }
    })
}

impl FrameBatch {
    /// The frames of one saga's page (and every `lagged`), as one chunk.
    fn for_saga(&self, saga_id: &str) -> Bytes {
        let mut picked = self.frames.iter().filter(|frame| match &frame.audience {
            Audience::Everyone => true,
            Audience::Saga(of) => of.as_deref() == Some(saga_id),
        });
        let Some(first) = picked.next() else {
            return Bytes::new();
        };
        let Some(second) = picked.next() else {
            return first.bytes.clone();
        };
        let mut chunk = Vec::with_capacity(first.bytes.len() + second.bytes.len());
        for frame in [first, second].into_iter().chain(picked) {
            chunk.extend_from_slice(&frame.bytes);
        }
        Bytes::from(chunk)
    }
}

/// `lagged`: this many messages were not sent; the client refetches.
pub fn lagged_frame(missed: u64) -> Bytes {
    Bytes::from(format!("event: lagged\ndata: {missed}\n\n"))
}

async fn frame_messages(mut live: broadcast::Receiver<StreamMessage>, frames: LiveFrames) {
    let mut seq = 0u64;
    loop {
        let first = live.recv().await;
        if matches!(first, Err(RecvError::Closed)) {
            return;
        }
        // The ingest sends a batch's messages back to back: let it finish
        // before taking what is waiting.
        tokio::task::yield_now().await;
        let mut received = vec![first.map_err(|e| match e {
            RecvError::Lagged(n) => n,
            RecvError::Closed => 0,
        })];
        let mut closed = false;
        while received.len() < MOST_PER_BATCH {
            match live.try_recv() {
                Ok(message) => received.push(Ok(message)),
                Err(TryRecvError::Lagged(n)) => received.push(Err(n)),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => {
                    closed = true;
                    break;
                }
            }
        }
        let first_seq = seq + 1;
        let mut all = Vec::new();
        let mut spans = Vec::with_capacity(received.len());
        for message in received {
            let start = all.len();
            let audience = match message {
                Ok(message) => {
                    let Ok(json) = serde_json::to_string(&message) else {
                        continue;
                    };
                    seq += 1;
                    // serde_json escapes newlines inside strings, so the
                    // JSON is one `data:` line.
                    all.extend_from_slice(
                        format!("id: {seq}\nevent: {}\ndata: {json}\n\n", message.kind())
                            .as_bytes(),
                    );
                    Audience::Saga(message.saga_id().map(Box::from))
                }
                Err(missed) => {
                    tracing::warn!(
                        missed,
                        "live framing fell behind; streams are told to refetch"
                    );
                    seq += missed;
                    all.extend_from_slice(&lagged_frame(missed));
                    Audience::Everyone
                }
            };
            spans.push((audience, start..all.len()));
        }
        if !spans.is_empty() {
            let all = Bytes::from(all);
            let batch = FrameBatch {
                first_seq,
                last_seq: seq,
                frames: spans
                    .into_iter()
                    .map(|(audience, range)| Frame {
                        audience,
                        bytes: all.slice(range),
                    })
                    .collect(),
                all,
            };
            // No subscriber is not an error.
            let _ = frames.batches.send(Arc::new(batch));
            frames.published.store(seq, Ordering::Release);
        }
        if closed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
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

    /// The SSE events of a chunk: (id, event, data) of each.
    fn events(chunk: &[u8]) -> Vec<(Option<u64>, String, String)> {
        std::str::from_utf8(chunk)
            .unwrap()
            .split_terminator("\n\n")
            .map(|frame| {
                let (mut id, mut event, mut data) = (None, String::new(), String::new());
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = Some(v.parse().unwrap());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event = v.to_string();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = v.to_string();
                    }
                }
                (id, event, data)
            })
            .collect()
    }

    async fn next_events(
        stream: &mut (impl Stream<Item = Bytes> + Unpin),
    ) -> Vec<(Option<u64>, String, String)> {
        events(&stream.next().await.unwrap())
    }

    #[tokio::test]
    async fn messages_are_framed_once_in_order_and_losses_are_numbered() {
        let (live, _) = broadcast::channel(2);
        let frames = start_live_frames(&live, 16);
        let mut subscriber = Box::pin(frames.subscribe(None));
        live.send(error(1)).unwrap();
        let first = next_events(&mut subscriber).await;
        assert_eq!(first.len(), 1);
        assert_eq!((first[0].0, first[0].1.as_str()), (Some(1), "ingest_error"));
        assert_eq!(
            serde_json::from_str::<StreamMessage>(&first[0].2).unwrap(),
            error(1)
        );
        // Five sent at once into a channel of two: the framing task loses
        // three, says so, and numbers on after them, in one batch.
        for id in 2..=6 {
            live.send(error(id)).unwrap();
        }
        let mut seen = Vec::new();
        while seen.len() < 3 {
            for (id, event, data) in next_events(&mut subscriber).await {
                seen.push(match id {
                    Some(id) => format!("#{id} {event}"),
                    None => format!("{event} {data}"),
                });
            }
        }
        assert_eq!(seen, ["lagged 3", "#5 ingest_error", "#6 ingest_error"]);
    }

    #[tokio::test]
    async fn a_saga_page_gets_its_saga_and_every_lagged_notice_only() {
        let (live, _) = broadcast::channel(64);
        let frames = start_live_frames(&live, 16);
        let mut page = Box::pin(frames.subscribe(Some("order-2".into())));
        let mut whole = Box::pin(frames.subscribe(None));
        let merged = |from: &str| StreamMessage::Merged {
            from: from.into(),
            into: "x".into(),
        };
        live.send(error(1)).unwrap();
        live.send(merged("order-1")).unwrap();
        live.send(merged("order-2")).unwrap();
        live.send(merged("order-3")).unwrap();
        let mut all = Vec::new();
        while all.len() < 4 {
            all.extend(next_events(&mut whole).await);
        }
        let ids: Vec<_> = all.iter().map(|e| e.0.unwrap()).collect();
        assert_eq!(ids, [1, 2, 3, 4]);
        let mine = next_events(&mut page).await;
        assert_eq!(mine.len(), 1, "{mine:?}");
        assert_eq!(mine[0].0, Some(3));
        assert_eq!(
            serde_json::from_str::<StreamMessage>(&mine[0].2).unwrap(),
            merged("order-2")
        );
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told_how_many_it_missed() {
        let (live, _) = broadcast::channel(64);
        // Room for one batch per subscriber.
        let frames = start_live_frames(&live, 1);
        let mut slow = Box::pin(frames.subscribe(None));
        let mut fast = Box::pin(frames.subscribe(None));
        // Three batches (each waits until the framing task has sent the
        // previous one); the slow subscriber reads nothing meanwhile.
        let mut last = 0;
        for id in 1..=3 {
            live.send(error(id)).unwrap();
            let got = next_events(&mut fast).await;
            last = got.last().unwrap().0.unwrap();
        }
        assert_eq!(last, 3);
        let got = next_events(&mut slow).await;
        assert_eq!(got[0].1, "lagged");
        assert_eq!(got[0].2, "2", "messages 1 and 2 were lost to it");
        assert_eq!(got[1].0, Some(3));
    }
}
