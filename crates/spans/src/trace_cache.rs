//! Traces fetched from a query API, kept for a while: the saga page and
//! the trace page ask for the same trace again and again while someone
//! looks at it. Bounded by count and age; when full, expired entries go
//! first, then the oldest. A trace that was not found is kept for a sixth
//! of the time only: its spans may be on their way to the backend.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sagascope_model::TraceSpans;

/// A cached answer: the trace, or None when the API did not know it.
pub(crate) type Cached = Option<Arc<TraceSpans>>;

struct Entry {
    stored: Instant,
    expires: Instant,
    value: Cached,
}

pub(crate) struct TraceCache {
    entries: Mutex<HashMap<String, Entry>>,
    capacity: usize,
    ttl: Duration,
}

impl TraceCache {
    pub(crate) fn new(capacity: usize, ttl: Duration) -> TraceCache {
        TraceCache {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            ttl,
        }
    }

    /// The cached answer, if one is fresh.
    pub(crate) fn get(&self, trace_id: &str, now: Instant) -> Option<Cached> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(trace_id)
            .filter(|entry| entry.expires > now)
            .map(|entry| entry.value.clone())
    }

    pub(crate) fn put(&self, trace_id: &str, value: Cached, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let ttl = if value.is_some() {
            self.ttl
        } else {
            self.ttl / 6
        };
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(trace_id) {
            entries.retain(|_, entry| entry.expires > now);
            if entries.len() >= self.capacity {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, entry)| entry.stored)
                    .map(|(id, _)| id.clone());
                if let Some(oldest) = oldest {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(
            trace_id.to_string(),
            Entry {
                stored: now,
                expires: now + ttl,
                value,
            },
        );
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sagascope_model::SpanSource;

    fn trace(id: &str) -> Cached {
        Some(Arc::new(TraceSpans {
            trace_id: id.into(),
            source: SpanSource::Jaeger,
            spans: vec![],
            truncated: false,
            external_url: None,
        }))
    }

    #[test]
    fn entries_expire_and_the_oldest_make_room() {
        let cache = TraceCache::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        cache.put("a", trace("a"), t0);
        cache.put("b", None, t0 + Duration::from_secs(1));
        assert_eq!(
            cache.get("a", t0 + Duration::from_secs(59)),
            Some(trace("a"))
        );
        assert_eq!(cache.get("a", t0 + Duration::from_secs(61)), None);
        // Not found: a sixth of the time.
        assert_eq!(cache.get("b", t0 + Duration::from_secs(5)), Some(None));
        assert_eq!(cache.get("b", t0 + Duration::from_secs(12)), None);
        // Full: the oldest goes.
        cache.put("c", trace("c"), t0 + Duration::from_secs(2));
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get("a", t0 + Duration::from_secs(3)), None);
        assert!(cache.get("c", t0 + Duration::from_secs(3)).is_some());
    }
}
