//! Correlation: which saga instance an event belongs to.
//!
//! The sources of a saga type's order (rules `correlate`, else saga id →
//! trace id → aggregate id) are tried in turn; the first one the event has
//! gives the saga id and its rank (its position in the order). Every source
//! yields a namespaced *key*; the store maps keys to sagas, so two instances
//! that turn out to share a key are merged into the one with the best
//! (rank, id), whatever order their events arrive in.
//!
//! Only an explicit `correlate` order registers all of an event's keys (the
//! operator vouches that each identifies one instance). The default order
//! registers just the winning key: an aggregate such as a user profile is
//! touched by many sagas and must not merge them.

use serde_json::Value;

use crate::rules::CorrelationSource;
use crate::saga_event::SagaEvent;

/// Where an event was placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correlation {
    pub saga_id: String,
    /// Position of the winning source in the order (lower wins a merge).
    pub rank: u8,
    /// Namespaced keys; the first is the winning source's.
    pub keys: Vec<String>,
}

/// Places `event` by `order`. `merge_by_all_keys` is true when the order
/// came from the rules file (see the module doc).
pub fn correlate(
    event: &SagaEvent,
    order: &[CorrelationSource],
    merge_by_all_keys: bool,
) -> Correlation {
    let mut winner: Option<(String, u8)> = None;
    let mut keys = Vec::new();
    for (index, source) in order.iter().enumerate() {
        let rank = u8::try_from(index).unwrap_or(u8::MAX);
        let Some((key, value)) = key_of(event, source) else {
            continue;
        };
        if *source == CorrelationSource::SagaId && winner.is_none() {
            // An id the message names itself is never merged by other keys.
            return Correlation {
                saga_id: value,
                rank,
                keys: vec![key],
            };
        }
        if winner.is_none() {
            winner = Some((value, rank));
        } else if !merge_by_all_keys {
            break;
        }
        keys.push(key);
    }
    match winner {
        Some((saga_id, rank)) => Correlation {
            saga_id,
            rank,
            keys,
        },
        None => Correlation {
            saga_id: event.event_id.clone(),
            rank: u8::try_from(order.len()).unwrap_or(u8::MAX),
            keys: vec![format!("event:{}", event.event_id)],
        },
    }
}

/// The key and the raw value of one source, when the event has it.
fn key_of(event: &SagaEvent, source: &CorrelationSource) -> Option<(String, String)> {
    match source {
        CorrelationSource::SagaId => {
            let id = event.explicit_saga_id.clone()?;
            Some((format!("saga:{id}"), id))
        }
        CorrelationSource::TraceId => {
            let id = event.trace_id.clone()?;
            Some((format!("trace:{id}"), id))
        }
        CorrelationSource::AggregateId => {
            let id = event.source_id.clone()?;
            let scope = event.source_type.as_deref().unwrap_or_default();
            Some((format!("aggregate:{scope}:{id}"), id))
        }
        CorrelationSource::Pointer(pointer) => {
            let value = match event.payload.pointer(pointer)? {
                Value::String(s) if !s.trim().is_empty() => s.trim().to_string(),
                Value::Number(n) => n.to_string(),
                _ => return None,
            };
            let scope = event.saga_type.as_deref().unwrap_or_default();
            Some((format!("pointer:{scope}:{pointer}={value}"), value))
        }
    }
}
