//! The SSE viewers of `bench viewers`: each reads `/api/v1/stream` as a
//! page does — the whole stream (saga list, ingest errors, trace pages) or
//! one saga's (`?saga_id=`, the saga page) — as its own proxy user, and
//! records which events arrived (by Kafka coordinates), the `lagged`
//! notices it was given, and gaps in the messages' sequence numbers (the
//! SSE `id:`, when the server sends one): a gap no `lagged` notice
//! announced is a silent miss.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::live_stream::{self, Coords};

/// Which page's stream a viewer follows.
#[derive(Debug, Clone)]
pub enum Follows {
    /// `/api/v1/stream`: every message.
    Everything,
    /// `/api/v1/stream?saga_id=…`.
    Saga(String),
}

/// Event coordinates as one bit per offset, per topic and partition: a
/// whole-stream viewer receives every event, and hundreds of them each
/// keep a set.
#[derive(Default)]
pub struct CoordSet {
    bits: HashMap<(u16, i32), Vec<u64>>,
}

impl CoordSet {
    pub fn insert(&mut self, (topic, partition, offset): Coords) {
        let Ok(offset) = usize::try_from(offset) else {
            return;
        };
        let words = self.bits.entry((topic, partition)).or_default();
        let (word, bit) = (offset / 64, offset % 64);
        if words.len() <= word {
            words.resize(word + 1, 0);
        }
        words[word] |= 1 << bit;
    }

    pub fn contains(&self, (topic, partition, offset): Coords) -> bool {
        let Ok(offset) = usize::try_from(offset) else {
            return false;
        };
        self.bits
            .get(&(topic, partition))
            .and_then(|words| words.get(offset / 64))
            .is_some_and(|word| word & (1 << (offset % 64)) != 0)
    }
}

/// What one viewer saw.
#[derive(Default)]
pub struct ViewerLog {
    /// The `hello` arrived: the server has subscribed this viewer.
    pub hello: bool,
    pub events: CoordSet,
    /// Messages of every kind (events, sagas, errors, merges).
    pub messages: u64,
    pub lagged_notices: u64,
    /// Messages the `lagged` notices said were dropped.
    pub lagged_messages: u64,
    /// Messages missing between two sequence numbers after a `lagged`
    /// notice (told), and without one (silent).
    pub told_gap: u64,
    pub silent_gap: u64,
    /// Sequence numbers were seen (the server sends `id:`).
    pub sequenced: bool,
    last_id: Option<u64>,
    lagged_since_last_id: bool,
    /// Why the viewer stopped early, if it did: refused, broke, ended.
    pub error: Option<String>,
}

impl ViewerLog {
    fn frame(&mut self, frame: &str) {
        let (mut kind, mut id, mut data) = ("", None, String::new());
        for line in frame.lines() {
            if let Some(k) = line.strip_prefix("event:") {
                kind = k.trim();
            } else if let Some(i) = line.strip_prefix("id:") {
                id = i.trim().parse::<u64>().ok();
            } else if let Some(d) = line.strip_prefix("data:") {
                data.push_str(d.strip_prefix(' ').unwrap_or(d));
            }
        }
        match kind {
            "" => return, // a keep-alive comment
            "hello" => self.hello = true,
            "lagged" => {
                self.lagged_notices += 1;
                self.lagged_messages += data.trim().parse::<u64>().unwrap_or(0);
                self.lagged_since_last_id = true;
            }
            "event" => {
                self.messages += 1;
                if let Some(coords) = live_stream::event_coords(&data) {
                    self.events.insert(coords);
                }
            }
            _ => self.messages += 1,
        }
        if let Some(id) = id {
            self.sequenced = true;
            if let Some(last) = self.last_id {
                let missing = id.saturating_sub(last + 1);
                if std::mem::take(&mut self.lagged_since_last_id) {
                    self.told_gap += missing;
                } else {
                    self.silent_gap += missing;
                }
            }
            self.last_id = Some(id);
        }
    }
}

pub type SharedLog = Arc<Mutex<ViewerLog>>;

/// Opens the stream as `user` (the trusted proxy's header) and reads it
/// until `stop`, into `log`.
pub async fn follow(
    client: reqwest::Client,
    base: String,
    user: String,
    follows: Follows,
    log: SharedLog,
    stop: Arc<AtomicBool>,
) {
    let url = match &follows {
        Follows::Everything => format!("{base}/api/v1/stream"),
        Follows::Saga(id) => format!(
            "{base}/api/v1/stream?saga_id={}",
            sagascope_model::percent_encode(id)
        ),
    };
    let outcome = read(&client, &url, &user, &log, &stop).await;
    if let Err(error) = outcome {
        lock(&log).error = Some(error);
    }
}

fn lock(log: &SharedLog) -> std::sync::MutexGuard<'_, ViewerLog> {
    log.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn read(
    client: &reqwest::Client,
    url: &str,
    user: &str,
    log: &SharedLog,
    stop: &AtomicBool,
) -> Result<(), String> {
    let mut response = client
        .get(url)
        .header(super::viewers::USER_HEADER, user)
        .send()
        .await
        .map_err(|e| format!("connect: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("refused: {}", response.status()));
    }
    let mut buffer: Vec<u8> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let chunk = match tokio::time::timeout(Duration::from_millis(200), response.chunk()).await {
            Err(_quiet) => continue,
            Ok(Ok(Some(chunk))) => chunk,
            Ok(Ok(None)) => return Err("the server ended the stream".into()),
            Ok(Err(error)) => return Err(format!("the stream broke: {error}")),
        };
        buffer.extend_from_slice(&chunk);
        let mut log = lock(log);
        // Every whole frame, then one shift of the rest.
        let mut start = 0;
        while let Some(end) = buffer[start..].windows(2).position(|w| w == b"\n\n") {
            log.frame(&String::from_utf8_lossy(&buffer[start..start + end]));
            start += end + 2;
        }
        buffer.drain(..start);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinates_are_kept_as_bits() {
        let mut set = CoordSet::default();
        set.insert((1, 2, 130));
        set.insert((1, 2, 130));
        set.insert((0, 0, 0));
        assert!(set.contains((0, 0, 0)));
        assert!(set.contains((1, 2, 130)));
        assert!(!set.contains((1, 2, 129)) && !set.contains((1, 1, 130)));
        assert!(!set.contains((0, 0, -1)));
    }

    #[test]
    fn sequence_gaps_are_told_or_silent() {
        let mut log = ViewerLog::default();
        let topic = sagascope_simulator::ALL_TOPICS[0];
        log.frame("event: hello\ndata: {}");
        log.frame(&format!(
            "id: 1\nevent: event\ndata: {{\"event\":{{\"topic\":\"{topic}\",\"partition\":0,\"offset\":5}}}}"
        ));
        log.frame("id: 2\nevent: saga\ndata: {}");
        // Two messages dropped, and said so.
        log.frame("event: lagged\ndata: 2");
        log.frame("id: 5\nevent: saga\ndata: {}");
        // One dropped without a word.
        log.frame("id: 7\nevent: saga\ndata: {}");
        log.frame(": keep-alive");
        assert!(log.hello && log.sequenced);
        assert!(log.events.contains((0, 0, 5)));
        assert_eq!(log.messages, 4);
        assert_eq!((log.lagged_notices, log.lagged_messages), (1, 2));
        assert_eq!((log.told_gap, log.silent_gap), (2, 1));
    }
}
