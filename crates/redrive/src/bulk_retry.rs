//! Bulk retry: the preview with the produce targets as configured, job
//! creation (refused when the set is not what the operator confirmed, is
//! empty, or holds dead letters nothing can re-drive), release to the
//! runners once audited.

use std::collections::{BTreeMap, BTreeSet};

use sagascope_model::{BulkRetryPreview, DlqQuery, RetryJobView};
use sagascope_store::{JobCreation, NewRetryJob, NO_ORIGINAL_TOPIC};

use crate::produce_span::current_span_context;
use crate::{new_id, RedriveError, RedriveService};

/// Seconds a canary is watched when the request names none.
pub const DEFAULT_CANARY_WAIT_S: u32 = 10;

/// A bulk retry asked for by `actor`.
#[derive(Debug, Clone, Copy)]
pub struct BulkRetryCommand<'a> {
    /// The validated filter (its states are ignored).
    pub query: &'a DlqQuery,
    /// The filter as a query string (`DlqFilter::to_query_string`).
    pub filter: &'a str,
    pub actor: &'a str,
    pub reason: &'a str,
    pub canary: bool,
    pub canary_wait_s: Option<u32>,
    pub throttle_per_s: Option<u32>,
    pub expected_count: Option<u64>,
    pub idempotency_key: Option<&'a str>,
}

#[derive(Debug, Clone)]
pub enum CreatedJob {
    /// Frozen and waiting for [`RedriveService::release_job`] (after the
    /// audit entry) or [`RedriveService::drop_job`].
    New(RetryJobView),
    /// The idempotency key made this job before; nothing new happened.
    Replayed(RetryJobView),
}

impl RedriveService {
    /// What a bulk retry of `query` would re-drive now, per produce target
    /// (the `--retry-target` of its DLQ topic, else its original topic).
    #[tracing::instrument(skip(self), err)]
    pub async fn preview(&self, query: &DlqQuery) -> Result<BulkRetryPreview, RedriveError> {
        let store = &self.inner.store;
        let mut preview = store.bulk_retry_preview(query).await?;
        let mut by_target: BTreeMap<String, u64> = BTreeMap::new();
        for source in store.retryable_sources(query).await? {
            let target = self
                .inner
                .config
                .target_for(&source.dlq_topic, source.original_topic.as_deref())
                .unwrap_or_else(|| NO_ORIGINAL_TOPIC.to_string());
            *by_target.entry(target).or_default() += source.count;
        }
        let mut by_topic: Vec<(String, u64)> = by_target.into_iter().collect();
        by_topic.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        preview.by_topic = by_topic;
        Ok(preview)
    }

    /// Freezes the set and creates the job, unreleased (see
    /// [`CreatedJob`]). The span this is called in (the operator's
    /// request) is remembered for the links of the job's produce spans.
    pub async fn create_job(
        &self,
        command: BulkRetryCommand<'_>,
    ) -> Result<CreatedJob, RedriveError> {
        let request = current_span_context();
        let created = self.create_job_unlinked(command).await?;
        if let (CreatedJob::New(job), Some(request)) = (&created, request) {
            self.inner.job_links.remember(&job.id, request);
        }
        Ok(created)
    }

    #[tracing::instrument(name = "create_job", skip(self, command), fields(filter = command.filter, actor = command.actor), err)]
    async fn create_job_unlinked(
        &self,
        command: BulkRetryCommand<'_>,
    ) -> Result<CreatedJob, RedriveError> {
        let store = &self.inner.store;
        let mut untargeted = 0;
        let mut dlq_topics = BTreeSet::new();
        for source in store.retryable_sources(command.query).await? {
            if self
                .inner
                .config
                .target_for(&source.dlq_topic, source.original_topic.as_deref())
                .is_none()
            {
                untargeted += source.count;
                dlq_topics.insert(source.dlq_topic);
            }
        }
        if untargeted > 0 {
            return Err(RedriveError::NoTargetInSet {
                count: untargeted,
                dlq_topics: dlq_topics.into_iter().collect(),
            });
        }
        let id = new_id();
        let creation = store
            .create_retry_job(&NewRetryJob {
                id: &id,
                idempotency_key: command.idempotency_key,
                actor: command.actor,
                reason: command.reason,
                query: command.query,
                filter: command.filter,
                canary: command.canary,
                canary_wait_s: command.canary_wait_s.unwrap_or(DEFAULT_CANARY_WAIT_S),
                throttle_per_s: command.throttle_per_s.filter(|t| *t > 0),
                expected_count: command.expected_count,
                at: chrono::Utc::now(),
            })
            .await?;
        match creation {
            JobCreation::Created(job) => Ok(CreatedJob::New(job)),
            JobCreation::Replayed(job) => Ok(CreatedJob::Replayed(job)),
            JobCreation::CountMismatch { expected, actual } => {
                Err(RedriveError::CountMismatch { expected, actual })
            }
            JobCreation::Empty => Err(RedriveError::EmptySet),
            JobCreation::KeyUsedElsewhere { target } => {
                Err(RedriveError::KeyUsedElsewhere { target })
            }
        }
    }

    /// Hands a created job to the runners (its audit entry is written).
    #[tracing::instrument(skip(self), err)]
    pub async fn release_job(&self, id: &str) -> Result<(), RedriveError> {
        self.inner.store.release_retry_job(id).await?;
        self.inner.job_released.notify_one();
        Ok(())
    }

    /// Forgets a created job that could not be audited.
    #[tracing::instrument(skip(self), err)]
    pub async fn drop_job(&self, id: &str) -> Result<(), RedriveError> {
        self.inner.job_links.forget(id);
        self.inner.store.delete_unreleased_retry_job(id).await?;
        Ok(())
    }
}
