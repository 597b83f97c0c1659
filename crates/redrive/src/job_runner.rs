//! The job runner: takes the released jobs no live runner holds (new ones,
//! and those of a process that stopped: their lease runs out), and runs
//! each in its own task: the canary first if asked, then chunks of a few
//! hundred with every copy of a chunk in flight at once, paced by the
//! throttle. Between two chunks it renews its lease and stops if the job
//! was cancelled; at shutdown it gives the job back after the chunk in
//! flight, so the next start resumes it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sagascope_model::{DeadLetterState, RetryJobState, RetryJobView};
use sagascope_store::{AttemptResult, ChunkClaim, ClaimedJob, JobItem, StoreError, RETRY_CHUNK};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::{new_id, RedriveService};

/// How often a canary's dead letter is checked while it is watched.
const CANARY_POLL: Duration = Duration::from_secs(1);
/// How long shutdown waits for the running jobs to reach a chunk boundary.
const STOP_WAIT: Duration = Duration::from_secs(30);

/// One chunk's figures, for benchmarks (see
/// [`RedriveService::with_chunk_timings`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChunkTiming {
    /// Claimed, produced, acked and recorded.
    pub elapsed: Duration,
    pub produced: u64,
    pub failed: u64,
}

pub(crate) async fn run(service: RedriveService, mut shutdown: watch::Receiver<bool>) {
    let inner = &service.inner;
    let mut jobs = JoinSet::new();
    let mut tick = tokio::time::interval(inner.config.sweep_every);
    loop {
        loop {
            let now = chrono::Utc::now();
            let stale = now
                - chrono::Duration::from_std(inner.config.lease).unwrap_or(chrono::Duration::MAX);
            match inner
                .store
                .claim_retry_job(&inner.runner_id, now, stale)
                .await
            {
                Ok(Some(claimed)) => {
                    jobs.spawn(run_job(service.clone(), claimed, shutdown.clone()));
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%error, "cannot look for retry jobs");
                    break;
                }
            }
        }
        tokio::select! {
            changed = shutdown.changed() => if changed.is_err() || *shutdown.borrow() { break },
            _ = inner.job_released.notified() => {}
            _ = tick.tick() => {}
            Some(_) = jobs.join_next(), if !jobs.is_empty() => {}
        }
    }
    let _ = tokio::time::timeout(STOP_WAIT, async {
        while jobs.join_next().await.is_some() {}
    })
    .await;
}

async fn run_job(
    service: RedriveService,
    claimed: ClaimedJob,
    mut shutdown: watch::Receiver<bool>,
) {
    let inner = &service.inner;
    let id = claimed.job.id.clone();
    if claimed.interrupted > 0 {
        tracing::warn!(
            job_id = %id,
            interrupted = claimed.interrupted,
            "resumed a retry job: the items its previous runner had in flight are skipped"
        );
    }
    tracing::info!(job_id = %id, state = claimed.job.state.as_str(), "running retry job");
    if let Err(error) = drive_job(&service, &claimed, &mut shutdown).await {
        tracing::error!(%error, job_id = %id, "retry job interrupted; it resumes from its last chunk");
    }
    if let Err(error) = inner
        .store
        .release_retry_job_lease(&id, &inner.runner_id)
        .await
    {
        tracing::warn!(%error, job_id = %id, "cannot give the retry job back");
    }
}

/// Spaces the sends of a throttled job over the whole run.
struct Pacer {
    per_second: Option<u32>,
    started: Instant,
    sent: u64,
}

impl Pacer {
    fn new(per_second: Option<u32>) -> Pacer {
        Pacer {
            per_second: per_second.filter(|p| *p > 0),
            started: Instant::now(),
            sent: 0,
        }
    }

    /// When the next send may start (None: now).
    fn next_slot(&mut self) -> Option<Instant> {
        let per_second = self.per_second?;
        let slot = self.started + Duration::from_secs_f64(self.sent as f64 / f64::from(per_second));
        self.sent += 1;
        Some(slot)
    }

    /// Items per chunk: about a second's worth when throttled, so cancel
    /// and the lease stay responsive.
    fn chunk(&self) -> usize {
        self.per_second
            .map_or(RETRY_CHUNK, |p| (p as usize).clamp(1, RETRY_CHUNK))
    }
}

/// What became of one chunk; None when the job stopped being ours.
struct ChunkReport {
    produced: u64,
    failed: u64,
    first_error: Option<String>,
}

async fn drive_job(
    service: &RedriveService,
    claimed: &ClaimedJob,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), StoreError> {
    let inner = &service.inner;
    let store = &inner.store;
    let job = &claimed.job;
    let runner = inner.runner_id.as_str();
    let mut state = job.state;
    if state == RetryJobState::Pending {
        let next = if job.canary {
            RetryJobState::Canary
        } else {
            RetryJobState::Running
        };
        if !store
            .set_retry_job_state(&job.id, runner, state, next, chrono::Utc::now())
            .await?
        {
            return Ok(());
        }
        state = next;
    }
    let mut pacer = Pacer::new(job.throttle_per_s);
    if state == RetryJobState::Canary {
        if !canary(service, job, claimed.canary_wait_s, &mut pacer, shutdown).await? {
            return Ok(());
        }
        if !store
            .set_retry_job_state(
                &job.id,
                runner,
                RetryJobState::Canary,
                RetryJobState::Running,
                chrono::Utc::now(),
            )
            .await?
        {
            return Ok(());
        }
    }
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        match store
            .heartbeat_retry_job(&job.id, runner, chrono::Utc::now())
            .await?
        {
            Some(state) if state.is_active() => {}
            _ => return Ok(()),
        }
        let items = store.pending_job_items(&job.id, pacer.chunk()).await?;
        if items.is_empty() {
            store
                .set_retry_job_state(
                    &job.id,
                    runner,
                    RetryJobState::Running,
                    RetryJobState::Completed,
                    chrono::Utc::now(),
                )
                .await?;
            tracing::info!(job_id = %job.id, "retry job completed");
            return Ok(());
        }
        let Some(report) = process_chunk(service, job, &items, &mut pacer).await? else {
            return Ok(());
        };
        if report.produced == 0 && report.failed > 0 {
            let message = format!(
                "stopped: the broker refused every copy of a chunk ({}): {}",
                report.failed,
                report.first_error.unwrap_or_default()
            );
            store
                .stop_retry_job(&job.id, RetryJobState::Failed, &message, chrono::Utc::now())
                .await?;
            tracing::warn!(job_id = %job.id, "retry job failed: the broker refused a whole chunk");
            return Ok(());
        }
    }
}

/// The canary: re-drive the first item, watch it for `wait_s`. True: go on.
async fn canary(
    service: &RedriveService,
    job: &RetryJobView,
    wait_s: u32,
    pacer: &mut Pacer,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<bool, StoreError> {
    let inner = &service.inner;
    let store = &inner.store;
    let Some(canary_id) = job.canary_id.clone() else {
        return Ok(true);
    };
    let fail = |message: String| async move {
        store
            .stop_retry_job(&job.id, RetryJobState::Failed, &message, chrono::Utc::now())
            .await
            .map(|_| false)
    };
    let status = store.job_item_status(&job.id, &canary_id).await?;
    if matches!(&status, Some((s, _)) if s == "pending") {
        let items = store.pending_job_items(&job.id, 1).await?;
        if process_chunk(service, job, &items, pacer).await?.is_none() {
            return Ok(false);
        }
    }
    let (status, attempt_id) = store
        .job_item_status(&job.id, &canary_id)
        .await?
        .unwrap_or_default();
    let attempt = match attempt_id {
        Some(attempt_id) => store.retry_attempt(&attempt_id).await?,
        None => None,
    };
    let attempt = match (status.as_str(), attempt) {
        ("produced", Some(attempt)) => attempt,
        ("failed", attempt) => {
            let error = attempt.and_then(|a| a.error).unwrap_or_default();
            return fail(format!(
                "stopped: the canary {canary_id} could not be produced: {error}; nothing else was re-driven"
            ))
            .await;
        }
        _ => {
            return fail(format!(
                "stopped: the canary {canary_id} was no longer retryable when its turn came; nothing else was re-driven"
            ))
            .await;
        }
    };
    let produced_at = attempt.produced_at.unwrap_or_else(chrono::Utc::now);
    let watch_until = produced_at + chrono::Duration::seconds(i64::from(wait_s));
    tracing::info!(job_id = %job.id, canary = %canary_id, wait_s, "watching the canary");
    loop {
        let letter = store.dead_letter(&canary_id).await?;
        if letter.is_some_and(|l| l.summary.state == DeadLetterState::FailedAgain) {
            let back = store
                .retry_attempt(&attempt.id)
                .await?
                .and_then(|a| a.came_back_as)
                .map_or_else(String::new, |id| format!(" as dead letter {id}"));
            return fail(format!(
                "stopped: the canary {canary_id} came back to a DLQ{back}; nothing else was re-driven"
            ))
            .await;
        }
        match store
            .heartbeat_retry_job(&job.id, &inner.runner_id, chrono::Utc::now())
            .await?
        {
            Some(state) if state.is_active() => {}
            _ => return Ok(false),
        }
        let left = (watch_until - chrono::Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        if left.is_zero() {
            return Ok(true);
        }
        tokio::select! {
            changed = shutdown.changed() => if changed.is_err() || *shutdown.borrow() { return Ok(false) },
            _ = tokio::time::sleep(left.min(CANARY_POLL)) => {}
        }
    }
}

/// Claims `items`, produces the claimed ones (all in flight at once,
/// paced by the throttle) and records the answers.
async fn process_chunk(
    service: &RedriveService,
    job: &RetryJobView,
    items: &[JobItem],
    pacer: &mut Pacer,
) -> Result<Option<ChunkReport>, StoreError> {
    let inner = &service.inner;
    let store = &inner.store;
    let started = Instant::now();
    let ids: Vec<String> = items.iter().map(|i| i.dead_letter_id.clone()).collect();
    let payloads: HashMap<String, sagascope_store::RetryPayload> = store
        .retry_payloads(&ids)
        .await?
        .into_iter()
        .map(|p| (p.id.clone(), p))
        .collect();
    let claims: Vec<ChunkClaim> = items
        .iter()
        .map(|item| {
            let payload = payloads.get(&item.dead_letter_id);
            ChunkClaim {
                position: item.position,
                dead_letter_id: item.dead_letter_id.clone(),
                attempt_id: new_id(),
                target_topic: payload.and_then(|p| {
                    inner
                        .config
                        .target_for(&p.dlq_topic, p.original_topic.as_deref())
                }),
                retry_count: payload.map_or(1, |p| p.retry_count.saturating_add(1)),
            }
        })
        .collect();
    let Some(chunk) = store
        .claim_job_chunk(
            &job.id,
            &inner.runner_id,
            &job.actor,
            &job.reason,
            &claims,
            chrono::Utc::now(),
        )
        .await?
    else {
        return Ok(None);
    };
    let sends = chunk.claimed.iter().filter_map(|claimed| {
        let payload = payloads.get(&claimed.dead_letter_id)?;
        let slot = pacer.next_slot();
        let producer = &inner.producer;
        Some(async move {
            if let Some(slot) = slot {
                tokio::time::sleep_until(slot.into()).await;
            }
            let result = producer
                .produce(&claimed.target_topic, payload, claimed.retry_count)
                .await;
            AttemptResult {
                attempt_id: claimed.attempt_id.clone(),
                dead_letter_id: claimed.dead_letter_id.clone(),
                result,
            }
        })
    });
    let results: Vec<AttemptResult> = futures::future::join_all(sends).await;
    store
        .finish_job_chunk(
            &job.id,
            &inner.runner_id,
            &results,
            &format!("re-driven by bulk retry {} of {}", job.id, job.actor),
            chrono::Utc::now(),
        )
        .await?;
    let produced = results.iter().filter(|r| r.is_produced()).count() as u64;
    let failed = results.len() as u64 - produced;
    if let Some(timings) = &inner.chunk_timings {
        let _ = timings.send(ChunkTiming {
            elapsed: started.elapsed(),
            produced,
            failed,
        });
    }
    Ok(Some(ChunkReport {
        produced,
        failed,
        first_error: results.iter().find_map(|r| r.result.clone().err()),
    }))
}
