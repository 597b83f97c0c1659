//! The SSE subscriber of `bench live`: reads `/api/v1/stream` and records
//! when each event arrived, by its Kafka coordinates (which the producer's
//! delivery reports give for the send side).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use sagascope_simulator::ALL_TOPICS;
use serde::Deserialize;
use tokio::sync::Mutex;

/// Topic (its index in `ALL_TOPICS`), partition, offset: small and
/// without a heap string, as hundreds of thousands are kept per step and
/// count in the RSS being measured.
pub type Coords = (u16, i32, i64);

pub fn topic_index(topic: &str) -> Option<u16> {
    ALL_TOPICS
        .iter()
        .position(|t| *t == topic)
        .and_then(|i| u16::try_from(i).ok())
}

/// The part of a stream `event` message needed to match it.
#[derive(Deserialize)]
struct StreamEvent {
    event: EventCoords,
}

impl StreamEvent {
    fn coords(self) -> Option<Coords> {
        let e = self.event;
        let partition = i32::try_from(e.partition).unwrap_or_default();
        Some((topic_index(&e.topic)?, partition, e.offset))
    }
}

#[derive(Deserialize)]
struct EventCoords {
    topic: String,
    partition: i64,
    offset: i64,
}

/// What the SSE client saw (since the last step took it).
#[derive(Default)]
pub struct Seen {
    pub arrivals: HashMap<Coords, Instant>,
    /// `lagged` messages: the server's broadcast channel overflowed and
    /// this client lost messages.
    pub lagged_notices: u64,
    pub lagged_messages: u64,
}

/// Reads the stream until `stop`, recording when each event arrived.
pub async fn read_stream(
    mut response: reqwest::Response,
    seen: Arc<Mutex<Seen>>,
    any_event: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let mut buffer: Vec<u8> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let chunk = match tokio::time::timeout(Duration::from_millis(200), response.chunk()).await {
            Err(_quiet) => continue,
            Ok(chunk) => chunk.context("the stream broke")?,
        };
        let Some(chunk) = chunk else { break };
        let arrived = Instant::now();
        buffer.extend_from_slice(&chunk);
        let mut seen = seen.lock().await;
        // Every whole frame of the buffer, then one shift of the rest (a
        // shift per frame would be quadratic in the frames per chunk).
        let mut start = 0;
        while let Some(end) = buffer[start..].windows(2).position(|w| w == b"\n\n") {
            let frame = String::from_utf8_lossy(&buffer[start..start + end]);
            if record_frame(&frame, arrived, &mut seen) {
                any_event.store(true, Ordering::Relaxed);
            }
            start += end + 2;
        }
        buffer.drain(..start);
    }
    Ok(())
}

/// The Kafka coordinates of a stream `event` message's JSON, if it is one
/// of the simulator's topics.
pub fn event_coords(data: &str) -> Option<Coords> {
    serde_json::from_str::<StreamEvent>(data).ok()?.coords()
}

/// Records one SSE frame; true if it was an event.
fn record_frame(frame: &str, arrived: Instant, seen: &mut Seen) -> bool {
    let mut kind = "";
    let mut data = String::new();
    for line in frame.lines() {
        if let Some(k) = line.strip_prefix("event:") {
            kind = k.trim();
        } else if let Some(d) = line.strip_prefix("data:") {
            data.push_str(d.strip_prefix(' ').unwrap_or(d));
        }
    }
    match kind {
        "event" => {
            let Ok(message) = serde_json::from_str::<StreamEvent>(&data) else {
                return false;
            };
            if let Some(coords) = message.coords() {
                seen.arrivals.entry(coords).or_insert(arrived);
            }
            true
        }
        "lagged" => {
            seen.lagged_notices += 1;
            seen.lagged_messages += data.trim().parse::<u64>().unwrap_or(0);
            false
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_matched_by_coordinates() {
        let mut seen = Seen::default();
        let at = Instant::now();
        let topic = ALL_TOPICS[0];
        let frame = format!(
            "event: event\ndata: {{\"event\":{{\"topic\":\"{topic}\",\"partition\":2,\"offset\":7,\"x\":1}}}}"
        );
        assert!(record_frame(&frame, at, &mut seen));
        assert_eq!(seen.arrivals.get(&(0, 2, 7)), Some(&at));
        assert!(!record_frame("event: lagged\ndata: 12", at, &mut seen));
        assert_eq!((seen.lagged_notices, seen.lagged_messages), (1, 12));
        assert!(!record_frame("event: saga\ndata: {}", at, &mut seen));
        assert_eq!(topic_index("no.such.topic"), None);
    }
}
