//! Re-drive records, one behaviour on two backends: every test runs
//! against a fresh Postgres database and a fresh SQLite file, like
//! `dead_letter_suite.rs`. Dead letters come in as the ingest writes them
//! (Spring Kafka DLT messages through the domain's `decode_dead_letter`
//! and `write_batch`); the producing is simulated by recording the
//! broker's answers the re-drive service would record.

use chrono::{DateTime, TimeZone, Utc};
use sagascope_domain::{
    decode_dead_letter, DeadLetter, GenericDeadLetterFields, KafkaCoords, RawMessage, SagaEvent,
};
use sagascope_model::{DeadLetterState, DlqFilter, DlqQuery, Phase, RetryJobState, RetryOutcome};
use sagascope_store::{
    AttemptResult, CancelOutcome, ChunkClaim, ClaimedRetry, DiscardOutcome, InFlightItem,
    IngestBatch, JobCreation, NewRetry, NewRetryJob, RetryClaim, Store, INTERRUPTED, NOT_PRODUCED,
    SAGA_PROGRESSED,
};

sagascope_store::on_both_stores!(
    one_idempotency_key_claims_once_and_replays_the_outcome,
    state_changes_are_compare_and_set,
    a_job_freezes_its_set_and_refuses_an_unconfirmed_count,
    a_job_runs_in_chunks_and_skips_what_is_no_longer_retryable,
    cancel_skips_what_was_not_taken,
    a_stale_job_is_taken_over_and_its_in_flight_items_settled_by_what_the_topic_holds,
    the_sweep_resolves_when_the_saga_progressed_or_the_copy_did_not_return,
    attempts_link_to_the_dead_letter_their_copy_came_back_as,
    interrupted_single_retries_go_back_to_new,
);

/// 2025-11-21T04:40:00Z, the time every fixture counts from.
const T0_MS: i64 = 1_763_700_000_000;

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(T0_MS + seconds * 1000).unwrap()
}

/// A Spring Kafka DLT message of `payments.events` (or `original`).
fn spring(dlq_topic: &str, offset: i64, original: &str, extra: &[(&str, &[u8])]) -> DeadLetter {
    let mut headers: Vec<(String, Option<Vec<u8>>)> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), Some(v.to_vec())))
        .collect();
    for (name, value) in [
        (
            "kafka_dlt-exception-fqcn",
            b"java.net.SocketTimeoutException".to_vec(),
        ),
        ("kafka_dlt-exception-message", b"Read timed out".to_vec()),
        ("kafka_dlt-original-topic", original.as_bytes().to_vec()),
        ("kafka_dlt-original-partition", 2_i32.to_be_bytes().to_vec()),
        (
            "kafka_dlt-original-offset",
            (1000 + offset).to_be_bytes().to_vec(),
        ),
    ] {
        headers.push((name.to_string(), Some(value)));
    }
    let raw = RawMessage {
        coords: KafkaCoords {
            topic: dlq_topic.to_string(),
            partition: 0,
            offset,
        },
        key: Some(format!("key-{offset}").into_bytes()),
        value: Some(br#"{"order_id":"ORD-1"}"#.to_vec()),
        headers,
        timestamp: Some(at(offset)),
    };
    decode_dead_letter(&raw, &GenericDeadLetterFields::default())
}

fn batch(dead_letters: Vec<DeadLetter>, events: Vec<SagaEvent>) -> IngestBatch {
    IngestBatch {
        group_id: "g".into(),
        events,
        dead_letters,
        ..Default::default()
    }
}

async fn ingest(store: &Store, letters: Vec<DeadLetter>) {
    store.write_batch(&batch(letters, vec![])).await.unwrap();
}

async fn state_of(store: &Store, id: &str) -> (DeadLetterState, Option<String>) {
    let summary = store.dead_letter(id).await.unwrap().unwrap().summary;
    (summary.state, summary.state_reason)
}

fn retry<'a>(id: &'a str, key: &'a str, attempt: &'a str, seconds: i64) -> NewRetry<'a> {
    NewRetry {
        dead_letter_id: id,
        idempotency_key: key,
        attempt_id: attempt,
        actor: "otto",
        reason: "downstream fixed",
        target_topic: "payments.events",
        at: at(seconds),
    }
}

fn claimed(claim: RetryClaim) -> ClaimedRetry {
    match claim {
        RetryClaim::Claimed(c) => c,
        other => panic!("expected a claim, got {other:?}"),
    }
}

fn answer(claim: &ClaimedRetry, result: Result<(i32, i64), &str>) -> AttemptResult {
    AttemptResult {
        attempt_id: claim.attempt_id.clone(),
        dead_letter_id: claim.dead_letter_id.clone(),
        result: result.map_err(str::to_string),
    }
}

fn query(filter: DlqFilter) -> DlqQuery {
    filter.validate().unwrap()
}

fn topic(name: &str) -> DlqQuery {
    query(DlqFilter {
        topic: Some(name.into()),
        ..Default::default()
    })
}

fn new_job<'a>(id: &'a str, query: &'a DlqQuery, expected: Option<u64>) -> NewRetryJob<'a> {
    NewRetryJob {
        id,
        idempotency_key: None,
        actor: "otto",
        reason: "bulk",
        query,
        filter: "topic=orders.DLT",
        canary: false,
        canary_wait_s: 10,
        throttle_per_s: None,
        expected_count: expected,
        at: at(100),
    }
}

/// Created, released and claimed by `runner`.
async fn running_job(store: &Store, id: &str, query: &DlqQuery, runner: &str) {
    match store
        .create_retry_job(&new_job(id, query, None))
        .await
        .unwrap()
    {
        JobCreation::Created(_) => {}
        other => panic!("{other:?}"),
    }
    store.release_retry_job(id).await.unwrap();
    let claimed = store
        .claim_retry_job(runner, at(101), at(40))
        .await
        .unwrap()
        .expect("a claimable job");
    assert_eq!(claimed.job.id, id);
}

/// Chunk claims for `ids` at positions from 0.
async fn chunk_claims(store: &Store, job: &str, limit: usize) -> Vec<ChunkClaim> {
    store
        .pending_job_items(job, limit)
        .await
        .unwrap()
        .into_iter()
        .map(|item| ChunkClaim {
            attempt_id: format!("{job}-a{}", item.position),
            position: item.position,
            dead_letter_id: item.dead_letter_id,
            target_topic: Some("payments.events".into()),
            retry_count: 1,
        })
        .collect()
}

async fn one_idempotency_key_claims_once_and_replays_the_outcome(store: &Store) {
    ingest(
        store,
        vec![
            spring("orders.DLT", 1, "payments.events", &[]),
            spring(
                "orders.DLT",
                2,
                "payments.events",
                &[("x-retry-count", b"3")],
            ),
        ],
    )
    .await;
    let first = claimed(
        store
            .claim_retry(&retry("orders.DLT/0/1", "k1", "a1", 10))
            .await
            .unwrap(),
    );
    assert_eq!(first.retry_count, 1);
    assert_eq!(
        state_of(store, "orders.DLT/0/1").await.0,
        DeadLetterState::RetryRequested
    );
    // While the first waits for the broker, the same key is in flight and
    // claims nothing.
    assert_eq!(
        store
            .claim_retry(&retry("orders.DLT/0/1", "k1", "a1-again", 11))
            .await
            .unwrap(),
        RetryClaim::InFlight {
            attempt_id: "a1".into()
        }
    );
    let outcome = store
        .finish_retry(&answer(&first, Ok((2, 77))), "re-driven", at(12))
        .await
        .unwrap();
    let expected = RetryOutcome {
        dead_letter_id: "orders.DLT/0/1".into(),
        attempt_id: "a1".into(),
        state: DeadLetterState::Retried,
        target_topic: "payments.events".into(),
        partition: Some(2),
        offset: Some(77),
        retry_count: 1,
        produced_at: Some(at(12)),
        replayed: false,
    };
    assert_eq!(outcome, expected);
    assert_eq!(
        store
            .claim_retry(&retry("orders.DLT/0/1", "k1", "a1-third", 13))
            .await
            .unwrap(),
        RetryClaim::Replayed(RetryOutcome {
            replayed: true,
            ..expected
        })
    );
    // The same key for another dead letter: refused, nothing claimed.
    assert_eq!(
        store
            .claim_retry(&retry("orders.DLT/0/2", "k1", "a2", 14))
            .await
            .unwrap(),
        RetryClaim::KeyUsedElsewhere {
            target: "orders.DLT/0/1".into()
        }
    );
    assert_eq!(
        state_of(store, "orders.DLT/0/2").await.0,
        DeadLetterState::New
    );
    // A broker refusal: back to new with the error, and the key may try
    // again; the count continues from the dead letter's own.
    let refused = claimed(
        store
            .claim_retry(&retry("orders.DLT/0/2", "k2", "a2", 15))
            .await
            .unwrap(),
    );
    assert_eq!(refused.retry_count, 4);
    let outcome = store
        .finish_retry(&answer(&refused, Err("Message timed out")), "x", at(16))
        .await
        .unwrap();
    assert_eq!(
        (outcome.state, outcome.offset),
        (DeadLetterState::New, None)
    );
    let (state, reason) = state_of(store, "orders.DLT/0/2").await;
    assert_eq!(state, DeadLetterState::New);
    assert!(reason.unwrap().contains("Message timed out"));
    let again = claimed(
        store
            .claim_retry(&retry("orders.DLT/0/2", "k2", "a2-retry", 17))
            .await
            .unwrap(),
    );
    assert_eq!(again.attempt_id, "a2-retry");
    let attempts = store.retry_attempts_of("orders.DLT/0/2").await.unwrap();
    let outcomes: Vec<(&str, &str, Option<&str>)> = attempts
        .iter()
        .map(|a| (a.id.as_str(), a.outcome.as_str(), a.error.as_deref()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("a2", "failed", Some("Message timed out")),
            ("a2-retry", "pending", None)
        ]
    );
}

async fn state_changes_are_compare_and_set(store: &Store) {
    ingest(
        store,
        vec![
            spring("orders.DLT", 1, "payments.events", &[]),
            spring("orders.DLT", 2, "payments.events", &[]),
        ],
    )
    .await;
    let discarded = match store
        .discard_dead_letter("orders.DLT/0/1", "otto", "duplicate of ORD-1", at(10))
        .await
        .unwrap()
    {
        DiscardOutcome::Discarded(detail) => detail,
        other => panic!("{other:?}"),
    };
    assert_eq!(discarded.summary.state, DeadLetterState::Discarded);
    assert_eq!(
        discarded.summary.state_reason.as_deref(),
        Some("discarded by otto: duplicate of ORD-1")
    );
    // A discarded one is neither retried nor discarded again, and the
    // refused claim leaves its key free.
    assert_eq!(
        store
            .claim_retry(&retry("orders.DLT/0/1", "k", "a", 11))
            .await
            .unwrap(),
        RetryClaim::NotRetryable(DeadLetterState::Discarded)
    );
    assert_eq!(
        store
            .discard_dead_letter("orders.DLT/0/1", "otto", "again", at(12))
            .await
            .unwrap(),
        DiscardOutcome::NotDiscardable(DeadLetterState::Discarded)
    );
    assert_eq!(
        store
            .claim_retry(&retry("orders.DLT/0/404", "k", "a", 11))
            .await
            .unwrap(),
        RetryClaim::NotFound
    );
    assert_eq!(
        store
            .discard_dead_letter("orders.DLT/0/404", "otto", "x", at(12))
            .await
            .unwrap(),
        DiscardOutcome::NotFound
    );
    // The free key claims the other one; once retried it is not
    // retryable, nor discardable.
    let c = claimed(
        store
            .claim_retry(&retry("orders.DLT/0/2", "k", "a", 13))
            .await
            .unwrap(),
    );
    store
        .finish_retry(&answer(&c, Ok((0, 1))), "re-driven", at(14))
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_retry(&retry("orders.DLT/0/2", "k-other", "b", 15))
            .await
            .unwrap(),
        RetryClaim::NotRetryable(DeadLetterState::Retried)
    );
    assert_eq!(
        store
            .discard_dead_letter("orders.DLT/0/2", "otto", "x", at(16))
            .await
            .unwrap(),
        DiscardOutcome::NotDiscardable(DeadLetterState::Retried)
    );
    // failed_again is discardable (its copy is a dead letter of its own).
    ingest(
        store,
        vec![spring(
            "orders.DLT",
            3,
            "payments.events",
            &[("x-retry-of", b"orders.DLT/0/2"), ("x-retry-count", b"1")],
        )],
    )
    .await;
    assert_eq!(
        state_of(store, "orders.DLT/0/2").await.0,
        DeadLetterState::FailedAgain
    );
    assert!(matches!(
        store
            .discard_dead_letter("orders.DLT/0/2", "otto", "handled by hand", at(17))
            .await
            .unwrap(),
        DiscardOutcome::Discarded(_)
    ));
}

async fn a_job_freezes_its_set_and_refuses_an_unconfirmed_count(store: &Store) {
    ingest(
        store,
        vec![
            spring("orders.DLT", 1, "payments.events", &[]),
            spring("orders.DLT", 2, "payments.events", &[]),
            spring("orders.DLT", 3, "stock.events", &[]),
            spring("orders.DLT", 4, "payments.events", &[]),
            spring("other.DLT", 5, "payments.events", &[]),
        ],
    )
    .await;
    store
        .discard_dead_letter("orders.DLT/0/4", "otto", "x", at(10))
        .await
        .unwrap();
    // The filter's own states are ignored: only new ones count.
    let orders = query(DlqFilter {
        topic: Some("orders.DLT".into()),
        state: Some("discarded,new".into()),
        ..Default::default()
    });
    let preview = store.bulk_retry_preview(&orders).await.unwrap();
    assert_eq!(preview.count, 3);
    assert_eq!(
        preview.by_topic,
        [
            ("payments.events".to_string(), 2),
            ("stock.events".to_string(), 1)
        ]
    );
    let sample: Vec<&str> = preview.sample.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(
        sample,
        ["orders.DLT/0/3", "orders.DLT/0/2", "orders.DLT/0/1"]
    );

    // The operator confirmed 2: refused, nothing kept.
    assert_eq!(
        store
            .create_retry_job(&new_job("j0", &orders, Some(2)))
            .await
            .unwrap(),
        JobCreation::CountMismatch {
            expected: 2,
            actual: 3
        }
    );
    assert!(store.retry_job("j0").await.unwrap().is_none());
    assert_eq!(
        store
            .create_retry_job(&new_job("j-empty", &topic("nothing.DLT"), None))
            .await
            .unwrap(),
        JobCreation::Empty
    );
    let mut keyed = new_job("j1", &orders, Some(3));
    keyed.idempotency_key = Some("bulk-key");
    keyed.canary = true;
    keyed.throttle_per_s = Some(50);
    let job = match store.create_retry_job(&keyed).await.unwrap() {
        JobCreation::Created(job) => job,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (
            job.state,
            job.total,
            job.canary,
            job.canary_id.as_deref(),
            job.throttle_per_s,
            job.actor.as_str()
        ),
        (
            RetryJobState::Pending,
            3,
            true,
            Some("orders.DLT/0/1"),
            Some(50),
            "otto"
        ),
        "the canary is the oldest"
    );
    // Unreleased (not audited yet): not listed, not run.
    assert!(store.retry_jobs(10).await.unwrap().is_empty());
    assert!(store
        .claim_retry_job("r1", at(101), at(40))
        .await
        .unwrap()
        .is_none());
    // The same key again: the same job; with another filter: refused.
    let mut again = keyed.clone();
    again.id = "j1-again";
    assert_eq!(
        store.create_retry_job(&again).await.unwrap(),
        JobCreation::Replayed(job.clone())
    );
    again.filter = "topic=other.DLT";
    assert_eq!(
        store.create_retry_job(&again).await.unwrap(),
        JobCreation::KeyUsedElsewhere {
            target: "topic=orders.DLT".into()
        }
    );
    store.release_retry_job("j1").await.unwrap();
    assert_eq!(
        store
            .retry_jobs(10)
            .await
            .unwrap()
            .iter()
            .map(|j| j.id.as_str())
            .collect::<Vec<_>>(),
        ["j1"]
    );
    // Frozen: a dead letter arriving later is not part of it.
    ingest(store, vec![spring("orders.DLT", 6, "payments.events", &[])]).await;
    let items: Vec<String> = store
        .pending_job_items("j1", 100)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.dead_letter_id)
        .collect();
    assert_eq!(
        items,
        ["orders.DLT/0/1", "orders.DLT/0/2", "orders.DLT/0/3"]
    );
    // A job that could not be audited is dropped whole, key included.
    let mut dropped = new_job("j2", &orders, None);
    dropped.idempotency_key = Some("dropped-key");
    assert!(matches!(
        store.create_retry_job(&dropped).await.unwrap(),
        JobCreation::Created(_)
    ));
    assert!(store.delete_unreleased_retry_job("j2").await.unwrap());
    assert!(!store.delete_unreleased_retry_job("j1").await.unwrap());
    assert!(store.retry_job("j2").await.unwrap().is_none());
    assert!(store.pending_job_items("j2", 10).await.unwrap().is_empty());
    dropped.id = "j3";
    assert!(matches!(
        store.create_retry_job(&dropped).await.unwrap(),
        JobCreation::Created(_)
    ));
}

async fn a_job_runs_in_chunks_and_skips_what_is_no_longer_retryable(store: &Store) {
    ingest(
        store,
        (1..=4)
            .map(|n| spring("orders.DLT", n, "payments.events", &[]))
            .collect(),
    )
    .await;
    let orders = topic("orders.DLT");
    running_job(store, "j", &orders, "r1").await;
    assert_eq!(
        store.retry_job("j").await.unwrap().unwrap().started_at,
        Some(at(101))
    );
    // Someone discards one while the job waits; another has no target.
    store
        .discard_dead_letter("orders.DLT/0/2", "ada", "x", at(102))
        .await
        .unwrap();
    let mut claims = chunk_claims(store, "j", 10).await;
    claims[3].target_topic = None;
    // Only the lease holder claims.
    assert_eq!(
        store
            .claim_job_chunk("j", "r2", "otto", "bulk", &claims, at(103))
            .await
            .unwrap(),
        None
    );
    let chunk = store
        .claim_job_chunk("j", "r1", "otto", "bulk", &claims, at(103))
        .await
        .unwrap()
        .unwrap();
    let ids: Vec<&str> = chunk
        .claimed
        .iter()
        .map(|c| c.dead_letter_id.as_str())
        .collect();
    assert_eq!(
        (ids, chunk.skipped),
        (vec!["orders.DLT/0/1", "orders.DLT/0/3"], 2)
    );
    assert_eq!(
        state_of(store, "orders.DLT/0/1").await.0,
        DeadLetterState::RetryRequested
    );
    let results = vec![
        answer(&chunk.claimed[0], Ok((1, 10))),
        answer(
            &chunk.claimed[1],
            Err("Broker: Not enough in-sync replicas"),
        ),
    ];
    store
        .finish_job_chunk("j", "r1", &results, "re-driven by bulk retry j", at(104))
        .await
        .unwrap();
    let job = store.retry_job("j").await.unwrap().unwrap();
    assert_eq!(
        (job.total, job.produced, job.failed, job.skipped, job.done()),
        (4, 1, 1, 2, 4)
    );
    assert_eq!(
        state_of(store, "orders.DLT/0/1").await,
        (
            DeadLetterState::Retried,
            Some("re-driven by bulk retry j".into())
        )
    );
    assert_eq!(
        state_of(store, "orders.DLT/0/3").await.0,
        DeadLetterState::New
    );
    assert_eq!(
        state_of(store, "orders.DLT/0/4").await.0,
        DeadLetterState::New,
        "skipped for want of a target: untouched"
    );
    let attempt = &store.retry_attempts_of("orders.DLT/0/1").await.unwrap()[0];
    assert_eq!(
        (
            attempt.job_id.as_deref(),
            attempt.outcome.as_str(),
            attempt.partition,
            attempt.offset
        ),
        (Some("j"), "produced", Some(1), Some(10))
    );
    assert!(store.pending_job_items("j", 10).await.unwrap().is_empty());
    assert!(
        !store
            .set_retry_job_state(
                "j",
                "r1",
                RetryJobState::Running,
                RetryJobState::Completed,
                at(105)
            )
            .await
            .unwrap(),
        "still pending: not running yet"
    );
    assert!(store
        .set_retry_job_state(
            "j",
            "r1",
            RetryJobState::Pending,
            RetryJobState::Running,
            at(105)
        )
        .await
        .unwrap());
    assert!(store
        .set_retry_job_state(
            "j",
            "r1",
            RetryJobState::Running,
            RetryJobState::Completed,
            at(106)
        )
        .await
        .unwrap());
    let job = store.retry_job("j").await.unwrap().unwrap();
    assert_eq!(
        (job.state, job.finished_at),
        (RetryJobState::Completed, Some(at(106)))
    );
    assert_eq!(
        store.heartbeat_retry_job("j", "r1", at(107)).await.unwrap(),
        Some(RetryJobState::Completed)
    );
    assert_eq!(
        store.heartbeat_retry_job("j", "r2", at(107)).await.unwrap(),
        None
    );
}

async fn cancel_skips_what_was_not_taken(store: &Store) {
    ingest(
        store,
        (1..=3)
            .map(|n| spring("orders.DLT", n, "payments.events", &[]))
            .collect(),
    )
    .await;
    running_job(store, "j", &topic("orders.DLT"), "r1").await;
    let claims = chunk_claims(store, "j", 1).await;
    let chunk = store
        .claim_job_chunk("j", "r1", "otto", "bulk", &claims, at(103))
        .await
        .unwrap()
        .unwrap();
    let job = match store.cancel_retry_job("j", "ada", at(104)).await.unwrap() {
        CancelOutcome::Cancelled(job) => job,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (
            job.state,
            job.skipped,
            job.message.as_deref(),
            job.finished_at
        ),
        (
            RetryJobState::Cancelled,
            2,
            Some("cancelled by ada"),
            Some(at(104))
        )
    );
    // The chunk in flight finishes and counts; nothing else is claimed.
    store
        .finish_job_chunk(
            "j",
            "r1",
            &[answer(&chunk.claimed[0], Ok((0, 5)))],
            "re-driven",
            at(105),
        )
        .await
        .unwrap();
    let job = store.retry_job("j").await.unwrap().unwrap();
    assert_eq!(
        (job.state, job.produced, job.skipped, job.done(), job.total),
        (RetryJobState::Cancelled, 1, 2, 3, 3)
    );
    assert_eq!(
        store.heartbeat_retry_job("j", "r1", at(106)).await.unwrap(),
        Some(RetryJobState::Cancelled)
    );
    assert_eq!(
        store
            .claim_job_chunk("j", "r1", "otto", "bulk", &claims, at(106))
            .await
            .unwrap(),
        None
    );
    assert!(store.pending_job_items("j", 10).await.unwrap().is_empty());
    assert_eq!(
        state_of(store, "orders.DLT/0/2").await.0,
        DeadLetterState::New
    );
    assert!(matches!(
        store.cancel_retry_job("j", "ada", at(107)).await.unwrap(),
        CancelOutcome::Finished(_)
    ));
    assert_eq!(
        store
            .cancel_retry_job("nope", "ada", at(107))
            .await
            .unwrap(),
        CancelOutcome::NotFound
    );
}

async fn a_stale_job_is_taken_over_and_its_in_flight_items_settled_by_what_the_topic_holds(
    store: &Store,
) {
    ingest(
        store,
        (1..=3)
            .map(|n| spring("orders.DLT", n, "payments.events", &[]))
            .collect(),
    )
    .await;
    running_job(store, "j", &topic("orders.DLT"), "r1").await;
    let claims = chunk_claims(store, "j", 2).await;
    store
        .claim_job_chunk("j", "r1", "otto", "bulk", &claims, at(103))
        .await
        .unwrap()
        .unwrap();
    // r1 stops here (a crash). While its lease is fresh nobody takes it.
    assert!(store
        .claim_retry_job("r2", at(110), at(100))
        .await
        .unwrap()
        .is_none());
    let taken = store
        .claim_retry_job("r2", at(200), at(140))
        .await
        .unwrap()
        .expect("the stale job");
    assert_eq!((taken.job.id.as_str(), taken.interrupted), ("j", 2));
    assert_eq!(taken.job.skipped, 0, "nothing is given up");
    assert_eq!(
        taken.job.started_at,
        Some(at(101)),
        "kept from the first run"
    );
    // What r2 must look for on the target topic.
    let in_flight = store.in_flight_job_items("j").await.unwrap();
    assert_eq!(
        in_flight,
        vec![
            InFlightItem {
                position: 0,
                dead_letter_id: "orders.DLT/0/1".into(),
                attempt_id: "j-a0".into(),
                target_topic: "payments.events".into(),
                retry_count: 1,
                requested_at: at(103),
            },
            InFlightItem {
                position: 1,
                dead_letter_id: "orders.DLT/0/2".into(),
                attempt_id: "j-a1".into(),
                target_topic: "payments.events".into(),
                retry_count: 1,
                requested_at: at(103),
            },
        ]
    );
    // The first copy is on the topic, the second is not.
    let found = [AttemptResult {
        attempt_id: "j-a0".into(),
        dead_letter_id: "orders.DLT/0/1".into(),
        result: Ok((0, 7)),
    }];
    assert!(
        !store
            .settle_in_flight_items("j", "r1", &found, &in_flight[1..], "bulk", at(201))
            .await
            .unwrap(),
        "r1 has lost the job"
    );
    assert!(store
        .settle_in_flight_items("j", "r2", &found, &in_flight[1..], "bulk", at(201))
        .await
        .unwrap());
    assert_eq!(
        state_of(store, "orders.DLT/0/1").await.0,
        DeadLetterState::Retried
    );
    assert_eq!(
        state_of(store, "orders.DLT/0/2").await,
        (DeadLetterState::New, Some(NOT_PRODUCED.to_string()))
    );
    let first = &store.retry_attempts_of("orders.DLT/0/1").await.unwrap()[0];
    assert_eq!(
        (first.outcome.as_str(), first.partition, first.offset),
        ("produced", Some(0), Some(7))
    );
    let second = &store.retry_attempts_of("orders.DLT/0/2").await.unwrap()[0];
    assert_eq!(
        (second.outcome.as_str(), second.error.as_deref()),
        ("failed", Some(NOT_PRODUCED))
    );
    let job = store.retry_job("j").await.unwrap().unwrap();
    assert_eq!((job.produced, job.skipped), (1, 0));
    assert!(store.in_flight_job_items("j").await.unwrap().is_empty());
    // The second goes again, before the third.
    let left: Vec<String> = store
        .pending_job_items("j", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.dead_letter_id)
        .collect();
    assert_eq!(left, ["orders.DLT/0/2", "orders.DLT/0/3"]);
    // r1 has lost it; r2 may give it back for the next runner.
    assert_eq!(
        store.heartbeat_retry_job("j", "r1", at(201)).await.unwrap(),
        None
    );
    store.release_retry_job_lease("j", "r2").await.unwrap();
    assert!(store
        .claim_retry_job("r3", at(202), at(100))
        .await
        .unwrap()
        .is_some());
}

/// A saga event as the decoders place it.
fn event(saga_id: &str, n: i64, phase: Phase) -> SagaEvent {
    SagaEvent {
        event_id: format!("{saga_id}-e{n}"),
        saga_id: saga_id.to_string(),
        explicit_saga_id: Some(saga_id.to_string()),
        rule_classified: true,
        correlation_rank: 0,
        correlation_keys: vec![format!("saga:{saga_id}")],
        saga_type: Some("order".to_string()),
        step: None,
        phase,
        event_type: format!("{phase:?}"),
        trace_id: Some("0af7651916cd43dd8448eb211c80319c".to_string()),
        span_id: None,
        request_id: None,
        business_keys: vec![],
        occurred_at: at(n),
        published_at: Some(at(n)),
        ingested_at: at(n + 1),
        source_type: None,
        source_id: None,
        coords: KafkaCoords {
            topic: "saga.state".into(),
            partition: 0,
            offset: n,
        },
        headers: vec![],
        payload: serde_json::json!({}),
        error: None,
    }
}

async fn the_sweep_resolves_when_the_saga_progressed_or_the_copy_did_not_return(store: &Store) {
    store
        .write_batch(&batch(
            vec![
                spring("orders.DLT", 1, "saga.state", &[("saga_id", b"ord-1")]),
                spring("orders.DLT", 2, "payments.events", &[]),
                spring("orders.DLT", 3, "payments.events", &[]),
            ],
            vec![event("ord-1", 1, Phase::SagaStarted)],
        ))
        .await
        .unwrap();
    assert_eq!(
        store
            .dead_letter("orders.DLT/0/1")
            .await
            .unwrap()
            .unwrap()
            .summary
            .saga_id
            .as_deref(),
        Some("ord-1")
    );
    for (n, acked) in [(1, 21), (2, 21), (3, 100)] {
        let id = format!("orders.DLT/0/{n}");
        let key = format!("k{n}");
        let attempt = format!("a{n}");
        let c = claimed(
            store
                .claim_retry(&retry(&id, &key, &attempt, acked - 1))
                .await
                .unwrap(),
        );
        store
            .finish_retry(&answer(&c, Ok((0, n))), "re-driven", at(acked))
            .await
            .unwrap();
    }
    let window = std::time::Duration::from_secs(120);
    // Nothing yet: no event after the re-drive, and the window is open.
    assert_eq!(
        store.resolve_retried(at(40), window, "2m").await.unwrap(),
        Default::default()
    );
    // The saga moves on after the re-drive.
    store
        .write_batch(&batch(
            vec![],
            vec![event("ord-1", 30, Phase::SagaCompleted)],
        ))
        .await
        .unwrap();
    let report = store.resolve_retried(at(40), window, "2m").await.unwrap();
    assert_eq!((report.saga_progressed, report.not_returned), (1, 0));
    assert_eq!(
        state_of(store, "orders.DLT/0/1").await,
        (DeadLetterState::Resolved, Some(SAGA_PROGRESSED.to_string()))
    );
    // 2 was re-driven at 21 and never came back: resolved after 2 min; 3
    // (re-driven at 100) not yet.
    let report = store.resolve_retried(at(142), window, "2m").await.unwrap();
    assert_eq!((report.saga_progressed, report.not_returned), (0, 1));
    assert_eq!(
        state_of(store, "orders.DLT/0/2").await,
        (
            DeadLetterState::Resolved,
            Some("did not return within 2m".to_string())
        )
    );
    assert_eq!(
        state_of(store, "orders.DLT/0/3").await.0,
        DeadLetterState::Retried
    );
    // A copy that comes back after all still marks it failed_again.
    ingest(
        store,
        vec![spring(
            "orders.DLT",
            9,
            "payments.events",
            &[("x-retry-of", b"orders.DLT/0/2"), ("x-retry-count", b"1")],
        )],
    )
    .await;
    assert_eq!(
        state_of(store, "orders.DLT/0/2").await.0,
        DeadLetterState::FailedAgain
    );
}

async fn attempts_link_to_the_dead_letter_their_copy_came_back_as(store: &Store) {
    ingest(store, vec![spring("orders.DLT", 1, "payments.events", &[])]).await;
    let original = "orders.DLT/0/1";
    // A first attempt the broker refused, then one that was produced.
    let refused = claimed(
        store
            .claim_retry(&retry(original, "k1", "a1", 10))
            .await
            .unwrap(),
    );
    store
        .finish_retry(
            &answer(&refused, Err("Local: Message timed out")),
            "x",
            at(11),
        )
        .await
        .unwrap();
    let produced = claimed(
        store
            .claim_retry(&retry(original, "k2", "a2", 20))
            .await
            .unwrap(),
    );
    store
        .finish_retry(&answer(&produced, Ok((0, 3))), "re-driven", at(21))
        .await
        .unwrap();
    // A stray with the same x-retry-of but another count is not it.
    ingest(
        store,
        vec![
            spring(
                "orders.DLT",
                5,
                "payments.events",
                &[("x-retry-of", original.as_bytes()), ("x-retry-count", b"7")],
            ),
            spring(
                "orders.DLT",
                6,
                "payments.events",
                &[("x-retry-of", original.as_bytes()), ("x-retry-count", b"1")],
            ),
        ],
    )
    .await;
    assert_eq!(
        state_of(store, original).await.0,
        DeadLetterState::FailedAgain
    );
    let attempts = store.retry_attempts_of(original).await.unwrap();
    let linked: Vec<(&str, &str, u32, Option<&str>)> = attempts
        .iter()
        .map(|a| {
            (
                a.id.as_str(),
                a.outcome.as_str(),
                a.retry_count,
                a.came_back_as.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        linked,
        [
            ("a1", "failed", 1, None),
            ("a2", "produced", 1, Some("orders.DLT/0/6"))
        ],
        "oldest first; only the produced copy can come back"
    );
    assert_eq!(attempts[1].requested_at, at(20));
    assert_eq!(attempts[1].produced_at, Some(at(21)));
    assert_eq!(
        (attempts[1].actor.as_str(), attempts[1].reason.as_str()),
        ("otto", "downstream fixed")
    );
    assert_eq!(
        store
            .retry_attempt("a2")
            .await
            .unwrap()
            .unwrap()
            .came_back_as,
        attempts[1].came_back_as
    );
    assert!(store
        .retry_attempts_of("orders.DLT/0/6")
        .await
        .unwrap()
        .is_empty());
}

async fn interrupted_single_retries_go_back_to_new(store: &Store) {
    ingest(
        store,
        vec![
            spring("orders.DLT", 1, "payments.events", &[]),
            spring("orders.DLT", 2, "payments.events", &[]),
        ],
    )
    .await;
    claimed(
        store
            .claim_retry(&retry("orders.DLT/0/1", "k1", "a1", 10))
            .await
            .unwrap(),
    );
    claimed(
        store
            .claim_retry(&retry("orders.DLT/0/2", "k2", "a2", 90))
            .await
            .unwrap(),
    );
    // Only the one pending from before the cutoff.
    let report = store
        .recover_interrupted_retries(at(70), at(100))
        .await
        .unwrap();
    assert_eq!(report.attempts, 1);
    assert_eq!(
        state_of(store, "orders.DLT/0/1").await,
        (DeadLetterState::New, Some(INTERRUPTED.to_string()))
    );
    assert_eq!(
        state_of(store, "orders.DLT/0/2").await.0,
        DeadLetterState::RetryRequested
    );
    // Its key is free again.
    assert!(matches!(
        store
            .claim_retry(&retry("orders.DLT/0/1", "k1", "a1-again", 101))
            .await
            .unwrap(),
        RetryClaim::Claimed(_)
    ));
}
