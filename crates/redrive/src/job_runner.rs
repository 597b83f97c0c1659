//! The job runner: takes the released jobs no live runner holds (new ones,
//! and those of a process that stopped: their lease runs out), and runs
//! each in its own task: the canary first if asked, then chunks of a few
//! hundred with every copy of a chunk in flight at once, paced by the
//! throttle, in two stages (the next chunk is claimed while the previous
//! one is produced and recorded). Between two chunks it renews its lease
//! and stops if the job was cancelled; at shutdown it gives the job back
//! after the chunk in flight, so the next start resumes it. A job taken
//! over from a runner that died mid-chunk first has its items in flight
//! settled by what the target topics hold (`copy_finder.rs`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use opentelemetry::trace::SpanContext;
use sagascope_model::{DeadLetterState, RetryJobState, RetryJobView};
use sagascope_store::{
    AttemptResult, ChunkClaim, ClaimedJob, ClaimedRetry, InFlightItem, JobItem, RetryPayload,
    StoreError,
};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::produce_span::{produce_traced, ProduceOf};
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
        if let Err(error) = settle_in_flight(&service, &claimed.job).await {
            tracing::error!(
                %error,
                job_id = %id,
                "cannot tell which copies a stopped runner produced; the job waits for the next look"
            );
            if let Err(error) = inner
                .store
                .release_retry_job_lease(&id, &inner.runner_id)
                .await
            {
                tracing::warn!(%error, job_id = %id, "cannot give the retry job back");
            }
            return;
        }
    }
    tracing::info!(job_id = %id, state = claimed.job.state.as_str(), "running retry job");
    match drive_job(&service, &claimed, &mut shutdown).await {
        // Done, cancelled, or stopping with the process: the request's
        // link is no longer needed here.
        Ok(()) => inner.job_links.forget(&id),
        Err(error) => {
            tracing::error!(%error, job_id = %id, "retry job interrupted; it resumes from its last chunk");
        }
    }
    if let Err(error) = inner
        .store
        .release_retry_job_lease(&id, &inner.runner_id)
        .await
    {
        tracing::warn!(%error, job_id = %id, "cannot give the retry job back");
    }
}

/// The items a stopped runner left in flight: those whose copies are on
/// their target topics are recorded as produced, the others go back to
/// pending and are produced again, so each is copied once.
async fn settle_in_flight(service: &RedriveService, job: &RetryJobView) -> Result<(), String> {
    let inner = &service.inner;
    let items: Vec<InFlightItem> = inner
        .store
        .in_flight_job_items(&job.id)
        .await
        .map_err(|error| error.to_string())?;
    if items.is_empty() {
        return Ok(());
    }
    let config = inner.config.clone();
    let looked_up = items.clone();
    let found =
        tokio::task::spawn_blocking(move || crate::copy_finder::find_copies(&config, &looked_up))
            .await
            .map_err(|error| error.to_string())?
            .map_err(|error| error.to_string())?;
    let mut produced = Vec::new();
    let mut again = Vec::new();
    for item in items {
        match found.get(&item.attempt_id) {
            Some(&coordinates) => produced.push(AttemptResult {
                attempt_id: item.attempt_id,
                dead_letter_id: item.dead_letter_id,
                result: Ok(coordinates),
            }),
            None => again.push(item),
        }
    }
    let settled = inner
        .store
        .settle_in_flight_items(
            &job.id,
            &inner.runner_id,
            &produced,
            &again,
            &format!("re-driven by bulk retry {} of {}", job.id, job.actor),
            chrono::Utc::now(),
        )
        .await
        .map_err(|error| error.to_string())?;
    if settled {
        tracing::warn!(
            job_id = %job.id,
            found = produced.len(),
            produced_again = again.len(),
            "resumed a retry job: the copies its stopped runner produced are recorded, the others are produced again"
        );
    }
    Ok(())
}

/// Spaces the sends of a throttled job over the whole run, and sizes its
/// chunks.
struct Pacer {
    per_second: Option<u32>,
    chunk_size: usize,
    started: Instant,
    sent: u64,
}

impl Pacer {
    fn new(per_second: Option<u32>, chunk_size: usize) -> Pacer {
        Pacer {
            per_second: per_second.filter(|p| *p > 0),
            chunk_size: chunk_size.max(1),
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
            .map_or(self.chunk_size, |p| (p as usize).clamp(1, self.chunk_size))
    }
}

/// What became of one chunk.
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
    let chunk_size = inner
        .config
        .chunk_size
        .unwrap_or_else(|| crate::default_chunk_size(store.backend()))
        .min(sagascope_store::RETRY_CHUNK);
    let mut pacer = Pacer::new(job.throttle_per_s, chunk_size);
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
    // Two stages: while one chunk's copies are produced and recorded (a
    // task), the next chunk is read and claimed here.
    let mut in_flight: Option<JoinHandle<Result<ChunkReport, StoreError>>> = None;
    let outcome = loop {
        if *shutdown.borrow() {
            break Ok(());
        }
        match store
            .heartbeat_retry_job(&job.id, runner, chrono::Utc::now())
            .await
        {
            Ok(Some(state)) if state.is_active() => {}
            Ok(_) => break Ok(()),
            Err(error) => break Err(error),
        }
        let items = match store.pending_job_items(&job.id, pacer.chunk()).await {
            Ok(items) => items,
            Err(error) => break Err(error),
        };
        if items.is_empty() {
            if let Some(report) = finish_stage(&mut in_flight).await? {
                if stop_if_refused(store, job, report).await? {
                    return Ok(());
                }
            }
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
        let work = match claim_chunk(service, job, &items, &mut pacer).await {
            Ok(Some(work)) => work,
            Ok(None) => break Ok(()),
            Err(error) => break Err(error),
        };
        if let Some(report) = finish_stage(&mut in_flight).await? {
            if stop_if_refused(store, job, report).await? {
                // The chunk just claimed goes back, not produced.
                abandon(service, job, work).await?;
                return Ok(());
            }
        }
        in_flight = Some(tokio::spawn(produce_and_record(
            service.clone(),
            job.clone(),
            work,
        )));
    };
    finish_stage(&mut in_flight).await?;
    outcome
}

/// Waits for the chunk in its second stage, if any.
async fn finish_stage(
    in_flight: &mut Option<JoinHandle<Result<ChunkReport, StoreError>>>,
) -> Result<Option<ChunkReport>, StoreError> {
    let Some(task) = in_flight.take() else {
        return Ok(None);
    };
    match task.await {
        Ok(report) => report.map(Some),
        Err(error) => {
            tracing::error!(%error, "a retry chunk task failed");
            Ok(None)
        }
    }
}

/// Stops the job as failed when the broker refused every copy of a
/// chunk (it is down, or refuses the target); true when it did.
async fn stop_if_refused(
    store: &sagascope_store::Store,
    job: &RetryJobView,
    report: ChunkReport,
) -> Result<bool, StoreError> {
    if report.produced > 0 || report.failed == 0 {
        return Ok(false);
    }
    let message = format!(
        "stopped: the broker refused every copy of a chunk ({}): {}",
        report.failed,
        report.first_error.unwrap_or_default()
    );
    store
        .stop_retry_job(&job.id, RetryJobState::Failed, &message, chrono::Utc::now())
        .await?;
    tracing::warn!(job_id = %job.id, "retry job failed: the broker refused a whole chunk");
    Ok(true)
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

/// A claimed chunk on its way to the broker.
struct ClaimedWork {
    claimed: Vec<ClaimedRetry>,
    payloads: HashMap<String, RetryPayload>,
    /// When each copy may be sent (the throttle), in `claimed` order.
    slots: Vec<Option<Instant>>,
    started: Instant,
}

/// Stage one: reads the items' bytes and claims the retryable ones. None
/// when the job is no longer this runner's.
async fn claim_chunk(
    service: &RedriveService,
    job: &RetryJobView,
    items: &[JobItem],
    pacer: &mut Pacer,
) -> Result<Option<ClaimedWork>, StoreError> {
    let inner = &service.inner;
    let store = &inner.store;
    let started = Instant::now();
    let ids: Vec<String> = items.iter().map(|i| i.dead_letter_id.clone()).collect();
    let payloads: HashMap<String, RetryPayload> = store
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
    let slots = chunk.claimed.iter().map(|_| pacer.next_slot()).collect();
    Ok(Some(ClaimedWork {
        claimed: chunk.claimed,
        payloads,
        slots,
        started,
    }))
}

/// Stage two: produces a claimed chunk (every copy in flight at once,
/// each not before its slot) and records the broker's answers. The
/// chunk's span and each copy's `redrive.produce` span link to the
/// request that started the job (when it was started in this process).
#[tracing::instrument(name = "redrive.chunk", skip_all, fields(job_id = %job.id, items = work.claimed.len()))]
async fn produce_and_record(
    service: RedriveService,
    job: RetryJobView,
    work: ClaimedWork,
) -> Result<ChunkReport, StoreError> {
    let inner = &service.inner;
    let producer = &inner.producer;
    let request: Option<SpanContext> = inner.job_links.get(&job.id);
    if let Some(request) = &request {
        tracing::Span::current().add_link(request.clone());
    }
    let request = request.as_ref();
    let sends = work
        .claimed
        .iter()
        .zip(&work.slots)
        .filter_map(|(claimed, slot)| {
            let payload = work.payloads.get(&claimed.dead_letter_id)?;
            Some(async move {
                if let Some(slot) = slot {
                    tokio::time::sleep_until((*slot).into()).await;
                }
                let result = produce_traced(
                    producer,
                    ProduceOf {
                        topic: &claimed.target_topic,
                        payload,
                        retry_count: claimed.retry_count,
                        attempt_id: &claimed.attempt_id,
                        request,
                    },
                )
                .await;
                AttemptResult {
                    attempt_id: claimed.attempt_id.clone(),
                    dead_letter_id: claimed.dead_letter_id.clone(),
                    result,
                }
            })
        });
    let results: Vec<AttemptResult> = futures::future::join_all(sends).await;
    inner
        .store
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
            elapsed: work.started.elapsed(),
            produced,
            failed,
        });
    }
    Ok(ChunkReport {
        produced,
        failed,
        first_error: results.iter().find_map(|r| r.result.clone().err()),
    })
}

/// A claimed chunk the job will not produce after all: its dead letters
/// go back to `new`, its attempts keep why.
async fn abandon(
    service: &RedriveService,
    job: &RetryJobView,
    work: ClaimedWork,
) -> Result<(), StoreError> {
    let results: Vec<AttemptResult> = work
        .claimed
        .iter()
        .map(|claimed| AttemptResult {
            attempt_id: claimed.attempt_id.clone(),
            dead_letter_id: claimed.dead_letter_id.clone(),
            result: Err("not produced: the job stopped".to_string()),
        })
        .collect();
    service
        .inner
        .store
        .finish_job_chunk(
            &job.id,
            &service.inner.runner_id,
            &results,
            "",
            chrono::Utc::now(),
        )
        .await
}

/// Both stages, one after the other (the canary).
async fn process_chunk(
    service: &RedriveService,
    job: &RetryJobView,
    items: &[JobItem],
    pacer: &mut Pacer,
) -> Result<Option<ChunkReport>, StoreError> {
    match claim_chunk(service, job, items, pacer).await? {
        Some(work) => Ok(Some(
            produce_and_record(service.clone(), job.clone(), work).await?,
        )),
        None => Ok(None),
    }
}
