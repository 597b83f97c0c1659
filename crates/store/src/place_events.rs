//! Placing events in saga instances across batches. Each event brings its
//! correlation keys (see `sagascope_domain::correlate`); the
//! `correlation_keys` table remembers which saga owns each key. Events,
//! stored sagas and batch-local instances that share a key form one group,
//! and the group's saga is the member with the lowest (rank, saga_id). That
//! choice depends only on the set of events, never on their arrival order,
//! so the projections stay order-independent. Stored sagas that lose are
//! merged into the winner: their events, keys and search keys move over,
//! the old id stays searchable (kind `merged`), and the winner is rebuilt
//! from all of its events.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sagascope_domain::{project_all, SagaEvent, SagaFact, SagaProjection};
use sagascope_model::SagaStatus;
use sqlx::{Any, Row, Transaction};

use crate::rows::{projection_from_json, saga_event_from_row, FULL_EVENT_COLUMNS};
use crate::{bulk_placeholders, bulk_rows, Result, Store};

const KEYS_PER_STATEMENT: usize = 500;

/// What placing a batch decided.
#[derive(Debug, Default)]
pub(crate) struct Placement {
    /// Winners that absorbed stored sagas: rebuild them from every event.
    pub rebuild: BTreeSet<String>,
    /// (old saga id, saga id it was merged into).
    pub merged: Vec<(String, String)>,
    /// The id rank of every saga the batch touches.
    pub ranks: HashMap<String, i64>,
    /// The rollup contributions of the merged-away sagas (to subtract).
    pub removed: Vec<SagaFact>,
}

/// The keys an event is known by: its correlation keys, or its saga id when
/// it came without any (events built by hand, rows from before correlation).
pub(crate) fn keys_of(event: &SagaEvent) -> Vec<String> {
    if event.correlation_keys.is_empty() {
        vec![format!("saga:{}", event.saga_id)]
    } else {
        event.correlation_keys.clone()
    }
}

#[derive(Default)]
struct UnionFind {
    parent: HashMap<String, String>,
}

impl UnionFind {
    fn find(&mut self, id: &str) -> String {
        let parent = self
            .parent
            .entry(id.to_string())
            .or_insert_with(|| id.to_string())
            .clone();
        if parent == id {
            return parent;
        }
        let root = self.find(&parent);
        self.parent.insert(id.to_string(), root.clone());
        root
    }

    fn union(&mut self, a: &str, b: &str) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.parent.insert(ra, rb);
        }
    }
}

impl Store {
    /// Sets the final `saga_id` of every event, merges stored sagas that
    /// the batch proves to be one instance, and registers the keys.
    pub(crate) async fn place_events(
        &self,
        tx: &mut Transaction<'_, Any>,
        events: &mut [SagaEvent],
    ) -> Result<Placement> {
        let all_keys: BTreeSet<String> = events.iter().flat_map(keys_of).collect();
        let stored_owner = self.key_owners(tx, &all_keys).await?;

        let mut candidates: BTreeSet<String> = events.iter().map(|e| e.saga_id.clone()).collect();
        candidates.extend(stored_owner.values().cloned());
        let stored_rank = self.stored_ranks(tx, &candidates).await?;

        let mut groups = UnionFind::default();
        let mut batch_rank: HashMap<String, i64> = HashMap::new();
        let mut batch_owner: HashMap<String, String> = HashMap::new();
        for event in events.iter() {
            let id = event.saga_id.as_str();
            let rank = i64::from(event.correlation_rank);
            batch_rank
                .entry(id.to_string())
                .and_modify(|r| *r = (*r).min(rank))
                .or_insert(rank);
            groups.find(id);
            for key in keys_of(event) {
                if let Some(owner) = stored_owner.get(&key) {
                    groups.union(id, owner);
                }
                match batch_owner.get(&key) {
                    Some(owner) => groups.union(id, &owner.clone()),
                    None => {
                        batch_owner.insert(key, id.to_string());
                    }
                }
            }
        }

        let rank_of = |id: &str| -> i64 {
            match (stored_rank.get(id), batch_rank.get(id)) {
                (Some(a), Some(b)) => (*a).min(*b),
                (Some(a), None) | (None, Some(a)) => *a,
                (None, None) => i64::MAX,
            }
        };
        let mut members: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for id in candidates.iter() {
            let root = groups.find(id);
            members.entry(root).or_default().insert(id.clone());
        }
        let mut winner_of: HashMap<String, String> = HashMap::new();
        let mut placement = Placement::default();
        for group in members.values() {
            let Some(winner) = group
                .iter()
                .min_by(|a, b| (rank_of(a), a.as_str()).cmp(&(rank_of(b), b.as_str())))
                .cloned()
            else {
                continue;
            };
            placement.ranks.insert(winner.clone(), rank_of(&winner));
            for id in group {
                winner_of.insert(id.clone(), winner.clone());
                if *id != winner && stored_rank.contains_key(id) {
                    placement
                        .removed
                        .extend(self.merge_saga(tx, id, &winner).await?);
                    placement.rebuild.insert(winner.clone());
                    placement.merged.push((id.clone(), winner.clone()));
                }
            }
        }
        for event in events.iter_mut() {
            if let Some(winner) = winner_of.get(&event.saga_id) {
                event.saga_id = winner.clone();
            }
        }

        let mut new_keys: Vec<(String, String)> = Vec::new();
        for event in events.iter() {
            for key in keys_of(event) {
                if !stored_owner.contains_key(&key) {
                    new_keys.push((key, event.saga_id.clone()));
                }
            }
        }
        new_keys.sort();
        new_keys.dedup_by(|a, b| a.0 == b.0);
        for chunk in new_keys.chunks(KEYS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO correlation_keys (correlation_key, saga_id) VALUES {} ON CONFLICT (correlation_key) DO NOTHING",
                bulk_rows(tx, chunk.len(), 2)
            );
            let mut query = sqlx::query(&sql).persistent(chunk.len() == KEYS_PER_STATEMENT);
            for (key, saga_id) in chunk {
                query = query.bind(key.clone()).bind(saga_id.clone());
            }
            query.execute(&mut **tx).await?;
        }
        Ok(placement)
    }

    async fn key_owners(
        &self,
        tx: &mut Transaction<'_, Any>,
        keys: &BTreeSet<String>,
    ) -> Result<HashMap<String, String>> {
        lookup(
            tx,
            "SELECT correlation_key, saga_id FROM correlation_keys WHERE correlation_key",
            keys,
        )
        .await
    }

    async fn stored_ranks(
        &self,
        tx: &mut Transaction<'_, Any>,
        ids: &BTreeSet<String>,
    ) -> Result<HashMap<String, i64>> {
        lookup(tx, "SELECT saga_id, id_rank FROM sagas WHERE saga_id", ids).await
    }

    /// Moves everything of `loser` to `winner` and drops the loser's row;
    /// its id stays searchable. Returns the loser's rollup contribution.
    async fn merge_saga(
        &self,
        tx: &mut Transaction<'_, Any>,
        loser: &str,
        winner: &str,
    ) -> Result<Option<SagaFact>> {
        let row = sqlx::query("SELECT status, projection FROM sagas WHERE saga_id = $1")
            .bind(loser.to_string())
            .fetch_optional(&mut **tx)
            .await?;
        let removed = match row {
            Some(row) => stored_fact(&row)?,
            None => None,
        };
        for sql in [
            "UPDATE events SET saga_id = $2 WHERE saga_id = $1",
            "UPDATE correlation_keys SET saga_id = $2 WHERE saga_id = $1",
            "INSERT INTO saga_keys (search_key, saga_id, kind) SELECT search_key, $2, kind FROM saga_keys WHERE saga_id = $1 ON CONFLICT (search_key, saga_id) DO NOTHING",
            "DELETE FROM saga_keys WHERE saga_id = $1",
            // The old id may already be a business key of the winner.
            "INSERT INTO saga_keys (search_key, saga_id, kind) VALUES ($1, $2, 'merged') ON CONFLICT (search_key, saga_id) DO UPDATE SET kind = 'merged'",
            "DELETE FROM sagas WHERE saga_id = $1",
        ] {
            sqlx::query(sql)
                .bind(loser.to_string())
                .bind(winner.to_string())
                .execute(&mut **tx)
                .await?;
        }
        tracing::info!(
            loser,
            winner,
            "merged saga instances that share a correlation key"
        );
        Ok(removed)
    }

    /// The projection of one saga from all of its stored events.
    pub(crate) async fn rebuild_projection(
        &self,
        tx: &mut Transaction<'_, Any>,
        saga_id: &str,
    ) -> Result<SagaProjection> {
        let sql = format!(
            "SELECT {FULL_EVENT_COLUMNS} FROM events WHERE saga_id = $1 ORDER BY occurred_at_us, event_id"
        );
        let events = sqlx::query(&sql)
            .bind(saga_id.to_string())
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(saga_event_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(project_all(saga_id, &events))
    }
}

/// The rollup contribution of a stored saga row (`status`, `projection`).
pub(crate) fn stored_fact(row: &sqlx::any::AnyRow) -> Result<Option<SagaFact>> {
    let status: String = row.try_get("status")?;
    let status = SagaStatus::parse(&status)
        .ok_or_else(|| crate::StoreError::Corrupt(format!("unknown saga status `{status}`")))?;
    let projection: String = row.try_get("projection")?;
    Ok(SagaFact::of(&projection_from_json(&projection)?, status))
}

/// `{select} IN (…)` over `keys` in bounded chunks: the first selected
/// column (text) → the second.
async fn lookup<T>(
    tx: &mut Transaction<'_, Any>,
    select: &str,
    keys: &BTreeSet<String>,
) -> Result<HashMap<String, T>>
where
    T: for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    let keys: Vec<&String> = keys.iter().collect();
    let mut found = HashMap::new();
    for chunk in keys.chunks(KEYS_PER_STATEMENT) {
        let sql = format!("{select} IN ({})", bulk_placeholders(tx, chunk.len()));
        let mut query = sqlx::query(&sql).persistent(chunk.len() == KEYS_PER_STATEMENT);
        for key in chunk {
            query = query.bind((*key).clone());
        }
        for row in query.fetch_all(&mut **tx).await? {
            found.insert(row.try_get(0)?, row.try_get(1)?);
        }
    }
    Ok(found)
}
