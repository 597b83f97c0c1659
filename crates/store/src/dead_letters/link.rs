//! Which saga instance a dead letter belongs to. The message names a saga
//! id and/or a trace id; the saga pages use the instance id the correlation
//! chose (a trace id for choreographies, the winner after a merge), so both
//! are resolved through the same tables placement writes: the
//! `correlation_keys` (`saga:…`, `trace:…`), then the search keys (merged
//! ids, trace ids) and finally the saga id itself. Only listed sagas (kind
//! `saga`) are linked; a dead letter whose saga is not known yet is linked
//! when its saga's events arrive (see `write.rs`).

use std::collections::{BTreeSet, HashMap};

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::AnyQuery;
use crate::{bulk_placeholders, Result, Store};

const KEYS_PER_STATEMENT: usize = 500;

/// What a dead letter says about its saga.
#[derive(Debug, Clone, Default)]
pub(crate) struct SagaRef {
    pub saga_id: Option<String>,
    pub trace_id: Option<String>,
}

/// The saga instance a dead letter resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkedSaga {
    pub saga_id: String,
    pub saga_type: String,
}

/// `{select} IN (…)` over `keys` in bounded chunks.
pub(crate) async fn select_in(
    tx: &mut Transaction<'_, Any>,
    select: &str,
    keys: &BTreeSet<String>,
) -> Result<Vec<AnyRow>> {
    let keys: Vec<&String> = keys.iter().collect();
    let mut rows = Vec::new();
    for chunk in keys.chunks(KEYS_PER_STATEMENT) {
        let sql = format!("{select} IN ({})", bulk_placeholders(tx, chunk.len()));
        let mut query: AnyQuery<'_> =
            sqlx::query(&sql).persistent(chunk.len() == KEYS_PER_STATEMENT);
        for key in chunk {
            query = query.bind((*key).clone());
        }
        rows.extend(query.fetch_all(&mut **tx).await?);
    }
    Ok(rows)
}

impl Store {
    /// Resolves each reference to a listed saga, in the order of `refs`.
    pub(crate) async fn resolve_sagas(
        &self,
        tx: &mut Transaction<'_, Any>,
        refs: &[SagaRef],
    ) -> Result<Vec<Option<LinkedSaga>>> {
        let mut correlation: BTreeSet<String> = BTreeSet::new();
        let mut searched: BTreeSet<String> = BTreeSet::new();
        for r in refs {
            if let Some(id) = &r.saga_id {
                correlation.insert(format!("saga:{id}"));
                searched.insert(id.clone());
            }
            if let Some(trace) = &r.trace_id {
                correlation.insert(format!("trace:{trace}"));
                searched.insert(trace.clone());
            }
        }
        if searched.is_empty() {
            return Ok(vec![None; refs.len()]);
        }
        let mut owner: HashMap<String, String> = HashMap::new();
        for row in select_in(
            tx,
            "SELECT correlation_key, saga_id FROM correlation_keys WHERE correlation_key",
            &correlation,
        )
        .await?
        {
            owner.insert(row.try_get(0)?, row.try_get(1)?);
        }
        // search key → (kind, saga id), sorted so the choice is stable.
        let mut by_search_key: HashMap<String, BTreeSet<(String, String)>> = HashMap::new();
        for row in select_in(
            tx,
            "SELECT search_key, kind, saga_id FROM saga_keys WHERE search_key",
            &searched,
        )
        .await?
        {
            by_search_key
                .entry(row.try_get(0)?)
                .or_default()
                .insert((row.try_get(1)?, row.try_get(2)?));
        }

        let candidates_of = |r: &SagaRef| -> Vec<String> {
            let mut ids = Vec::new();
            let searched_of = |key: &str, kinds: &[&str]| -> Vec<String> {
                let found = by_search_key.get(key);
                kinds
                    .iter()
                    .flat_map(|kind| {
                        found
                            .into_iter()
                            .flatten()
                            .filter(move |(k, _)| k == kind)
                            .map(|(_, id)| id.clone())
                    })
                    .collect()
            };
            if let Some(id) = &r.saga_id {
                ids.extend(owner.get(&format!("saga:{id}")).cloned());
                ids.push(id.clone());
                ids.extend(searched_of(id, &["merged", "business"]));
            }
            if let Some(trace) = &r.trace_id {
                ids.extend(owner.get(&format!("trace:{trace}")).cloned());
                ids.extend(searched_of(trace, &["trace"]));
            }
            ids
        };
        let all: BTreeSet<String> = refs.iter().flat_map(candidates_of).collect();
        let mut sagas: HashMap<String, String> = HashMap::new();
        for row in select_in(
            tx,
            "SELECT saga_id, saga_type FROM sagas WHERE kind = 'saga' AND saga_id",
            &all,
        )
        .await?
        {
            sagas.insert(row.try_get(0)?, row.try_get(1)?);
        }
        Ok(refs
            .iter()
            .map(|r| {
                candidates_of(r).into_iter().find_map(|id| {
                    sagas.get(&id).map(|saga_type| LinkedSaga {
                        saga_type: saga_type.clone(),
                        saga_id: id,
                    })
                })
            })
            .collect())
    }
}
