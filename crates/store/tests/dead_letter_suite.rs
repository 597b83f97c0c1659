//! Dead letters, one behaviour on two backends: every test runs against a
//! fresh Postgres database and a fresh SQLite file, like `store_suite.rs`.
//! Inputs are Spring Kafka DLT messages decoded by the domain's
//! `decode_dead_letter`, so the store sees what the ingest gives it.

use chrono::{DateTime, TimeZone, Utc};
use sagascope_domain::{
    decode_dead_letter, DeadLetter, GenericDeadLetterFields, KafkaCoords, RawMessage, SagaEvent,
};
use sagascope_model::{ByteText, DeadLetterState, DlqFilter, DlqQuery, Phase};
use sagascope_store::{
    dead_letter_id, dead_letter_id_at_reused_coordinates, IngestBatch, PartitionOffset, Store,
};

sagascope_store::on_both_stores!(
    dead_letters_are_written_once_per_coordinate,
    a_different_dead_letter_at_reused_coordinates_is_kept_beside_the_first,
    key_value_and_headers_round_trip_byte_exact,
    list_filters_and_keyset_paging,
    groups_count_depth_and_age_exactly,
    a_redriven_letter_that_comes_back_marks_the_original_failed_again,
    dead_letters_link_to_sagas_by_saga_id_and_by_trace_id,
    depth_counters_equal_a_recount_through_every_change,
);

/// 2025-11-21T04:40:00Z, the time every fixture counts from.
const T0_MS: i64 = 1_763_700_000_000;

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(T0_MS + seconds * 1000).unwrap()
}

/// A Spring Kafka DLT message, as `DeadLetterPublishingRecoverer` writes
/// it: the original headers first, then the `kafka_dlt-*` ones (ints and
/// longs as big-endian bytes).
struct Spring<'a> {
    dlq_topic: &'a str,
    offset: i64,
    dead_lettered_s: i64,
    original_topic: &'a str,
    original_offset: i64,
    class: &'a str,
    message: &'a str,
    extra_headers: Vec<(&'a str, Vec<u8>)>,
    value: Option<Vec<u8>>,
}

impl<'a> Spring<'a> {
    fn new(dlq_topic: &'a str, offset: i64, dead_lettered_s: i64) -> Spring<'a> {
        Spring {
            dlq_topic,
            offset,
            dead_lettered_s,
            original_topic: "payments.events",
            original_offset: 1000 + offset,
            class: "java.net.SocketTimeoutException",
            message: "Read timed out after 30000 ms",
            extra_headers: Vec::new(),
            value: Some(br#"{"order_id":"ORD-1","amount":12.5}"#.to_vec()),
        }
    }

    fn failing(mut self, original_topic: &'a str, class: &'a str, message: &'a str) -> Self {
        self.original_topic = original_topic;
        self.class = class;
        self.message = message;
        self
    }

    fn header(mut self, name: &'a str, value: &[u8]) -> Self {
        self.extra_headers.push((name, value.to_vec()));
        self
    }

    fn raw(&self) -> RawMessage {
        let mut headers: Vec<(String, Option<Vec<u8>>)> = self
            .extra_headers
            .iter()
            .map(|(k, v)| (k.to_string(), Some(v.clone())))
            .collect();
        for (name, value) in [
            ("kafka_dlt-exception-fqcn", self.class.as_bytes().to_vec()),
            (
                "kafka_dlt-exception-message",
                self.message.as_bytes().to_vec(),
            ),
            (
                "kafka_dlt-exception-stacktrace",
                format!(
                    "{}: {}\n\tat com.shop.Listener.on(Listener.java:42)",
                    self.class, self.message
                )
                .into_bytes(),
            ),
            (
                "kafka_dlt-original-topic",
                self.original_topic.as_bytes().to_vec(),
            ),
            ("kafka_dlt-original-partition", 2_i32.to_be_bytes().to_vec()),
            (
                "kafka_dlt-original-offset",
                self.original_offset.to_be_bytes().to_vec(),
            ),
            (
                "kafka_dlt-original-timestamp",
                (T0_MS - 5_000).to_be_bytes().to_vec(),
            ),
            (
                "kafka_dlt-original-consumer-group",
                b"shop-order-service".to_vec(),
            ),
        ] {
            headers.push((name.to_string(), Some(value)));
        }
        RawMessage {
            coords: KafkaCoords {
                topic: self.dlq_topic.to_string(),
                partition: 0,
                offset: self.offset,
            },
            key: Some(format!("key-{}", self.offset).into_bytes()),
            value: self.value.clone(),
            headers,
            timestamp: Some(at(self.dead_lettered_s)),
        }
    }

    fn letter(&self) -> DeadLetter {
        decode_dead_letter(&self.raw(), &GenericDeadLetterFields::default())
    }
}

fn batch(dead_letters: Vec<DeadLetter>, events: Vec<SagaEvent>) -> IngestBatch {
    IngestBatch {
        group_id: "g".into(),
        events,
        dead_letters,
        ..Default::default()
    }
}

fn traceparent(trace_id: &str) -> Vec<u8> {
    format!("00-{trace_id}-00f067aa0ba902b7-01").into_bytes()
}

fn query(filter: DlqFilter) -> DlqQuery {
    filter.validate().unwrap()
}

async fn ids(store: &Store, filter: DlqFilter) -> Vec<String> {
    store
        .list_dead_letters(&query(filter))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|l| l.id)
        .collect()
}

async fn dead_letters_are_written_once_per_coordinate(store: &Store) {
    let letters = vec![
        Spring::new("payments.events.DLT", 7, 10).letter(),
        Spring::new("payments.events.DLT", 8, 20).letter(),
    ];
    let mut b = batch(letters.clone(), vec![]);
    b.offsets = vec![PartitionOffset {
        topic: "payments.events.DLT".into(),
        partition: 0,
        next_offset: 9,
    }];
    let outcome = store.write_batch(&b).await.unwrap();
    let written: Vec<&str> = outcome.dead_letters.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(
        written,
        ["payments.events.DLT/0/7", "payments.events.DLT/0/8"]
    );
    assert_eq!(dead_letter_id(&letters[0]), "payments.events.DLT/0/7");

    // A redelivery (after a crash before the offset commit) changes nothing.
    store
        .set_dead_letter_state(
            "payments.events.DLT/0/7",
            &[DeadLetterState::New],
            DeadLetterState::Discarded,
            Some("known bad"),
            at(30),
        )
        .await
        .unwrap();
    let before = store.dead_letter("payments.events.DLT/0/7").await.unwrap();
    let again = store.write_batch(&b).await.unwrap();
    assert!(again.dead_letters.is_empty());
    assert_eq!(
        store.dead_letter("payments.events.DLT/0/7").await.unwrap(),
        before
    );
    assert_eq!(ids(store, DlqFilter::default()).await.len(), 2);

    let detail = before.unwrap();
    let s = &detail.summary;
    assert_eq!(
        (s.dlq_topic.as_str(), s.dlq_partition, s.dlq_offset),
        ("payments.events.DLT", 0, 7)
    );
    assert_eq!(
        (
            s.original_topic.as_deref(),
            s.original_partition,
            s.original_offset
        ),
        (Some("payments.events"), Some(2), Some(1007))
    );
    assert_eq!(s.format, "spring");
    assert_eq!(s.dead_lettered_at, at(10));
    assert_eq!(detail.dlq_timestamp, Some(at(10)));
    assert_eq!(detail.original_timestamp, Some(at(-5)));
    assert_eq!(
        detail.original_consumer_group.as_deref(),
        Some("shop-order-service")
    );
    assert_eq!(
        s.exception_class.as_deref(),
        Some("java.net.SocketTimeoutException")
    );
    assert_eq!(
        s.failure_group,
        "payments.events|java.net.SocketTimeoutException|Read timed out after <n> ms"
    );
    assert!(detail.stacktrace.unwrap().contains("Listener.java:42"));
    assert_eq!(
        (s.state, s.state_reason.as_deref(), s.state_changed_at),
        (DeadLetterState::Discarded, Some("known bad"), at(30))
    );
    let progress = store.partition_progress("g").await.unwrap();
    assert_eq!(progress[0].next_offset, 9);
    assert!(store.dead_letter("nope/0/1").await.unwrap().is_none());
}

/// Issue 21: a recreated topic starts again at offset 0, so new dead
/// letters arrive at coordinates already stored. Each different message is
/// kept (the first under the plain id, later ones under a derived id that
/// works in URLs); a redelivery of any of them still changes nothing.
async fn a_different_dead_letter_at_reused_coordinates_is_kept_beside_the_first(store: &Store) {
    let first = Spring::new("payments.events.DLT", 7, 10).letter();
    store
        .write_batch(&batch(vec![first.clone()], vec![]))
        .await
        .unwrap();

    // The topic was recreated: offset 7 again, a later message.
    let mut second = Spring::new("payments.events.DLT", 7, 500);
    second.value = Some(br#"{"order_id":"ORD-2","amount":99}"#.to_vec());
    let second = second.letter();
    // And a third generation, same body as the second but sent later.
    let third = Spring::new("payments.events.DLT", 7, 900);
    let mut third = third.letter();
    third.value = second.value.clone();

    let outcome = store
        .write_batch(&batch(vec![second.clone(), third.clone()], vec![]))
        .await
        .unwrap();
    let second_id = dead_letter_id_at_reused_coordinates(&second);
    let third_id = dead_letter_id_at_reused_coordinates(&third);
    assert_ne!(second_id, third_id);
    assert!(
        second_id.starts_with("payments.events.DLT/0/7~"),
        "{second_id}"
    );
    assert!(
        second_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/~".contains(&b)),
        "the id needs no escaping beyond its slashes: {second_id}"
    );
    let mut written: Vec<&str> = outcome.dead_letters.iter().map(|l| l.id.as_str()).collect();
    written.sort();
    let mut expected = vec![second_id.as_str(), third_id.as_str()];
    expected.sort();
    assert_eq!(written, expected);
    assert_eq!(outcome.reused_coordinates.len(), 2);
    assert!(outcome
        .reused_coordinates
        .iter()
        .all(|c| (c.topic.as_str(), c.partition, c.offset) == ("payments.events.DLT", 0, 7)));

    // Redeliveries of every generation, alone and together: nothing new.
    for letters in [
        vec![first.clone()],
        vec![second.clone()],
        vec![third.clone(), first.clone(), second.clone()],
    ] {
        let again = store.write_batch(&batch(letters, vec![])).await.unwrap();
        assert!(again.dead_letters.is_empty());
        assert!(again.reused_coordinates.is_empty());
    }
    let mut all = ids(store, DlqFilter::default()).await;
    all.sort();
    let mut expected = vec![
        "payments.events.DLT/0/7".to_string(),
        second_id.clone(),
        third_id.clone(),
    ];
    expected.sort();
    assert_eq!(all, expected);

    // Each is whole under its own id, with the same coordinates.
    let stored = store.dead_letter(&second_id).await.unwrap().unwrap();
    assert_eq!(stored.summary.dead_lettered_at, at(500));
    assert_eq!(
        (stored.summary.dlq_partition, stored.summary.dlq_offset),
        (0, 7)
    );
    let plain = store
        .dead_letter("payments.events.DLT/0/7")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(plain.summary.dead_lettered_at, at(10));
}

async fn key_value_and_headers_round_trip_byte_exact(store: &Store) {
    let binary_value = vec![0x00, 0x00, 0x00, 0x00, 0x2a, 0xff, 0xde, 0xad, 0xbe, 0xef];
    let mut raw = Spring::new("orders.DLT", 1, 0)
        .header(
            "traceparent",
            &traceparent("4bf92f3577b34da6a3ce929d0e0e4736"),
        )
        .header("x-binary", &[0xff, 0xfe, 0x00, 0x01])
        .header("x-empty", b"")
        .raw();
    raw.key = Some(vec![0xc3, 0x28, 0x00]);
    raw.value = Some(binary_value.clone());
    raw.headers.push(("x-null".into(), None));
    raw.headers
        .push(("x-binary".into(), Some("ünïcödé".as_bytes().to_vec())));
    let letter = decode_dead_letter(&raw, &GenericDeadLetterFields::default());
    let mut tombstone = Spring::new("orders.DLT", 2, 0).raw();
    tombstone.key = Some(Vec::new());
    tombstone.value = None;
    let empty = decode_dead_letter(&tombstone, &GenericDeadLetterFields::default());
    store
        .write_batch(&batch(vec![letter, empty], vec![]))
        .await
        .unwrap();

    let detail = store.dead_letter("orders.DLT/0/1").await.unwrap().unwrap();
    let key = detail.key.unwrap();
    assert!(key.base64);
    assert_eq!(key.to_bytes().unwrap(), [0xc3, 0x28, 0x00]);
    assert_eq!(detail.value, Some(ByteText::of(&binary_value)));
    assert_eq!(detail.value.unwrap().to_bytes().unwrap(), binary_value);
    let stored: Vec<(String, Option<Vec<u8>>)> = detail
        .headers
        .iter()
        .map(|h| {
            (
                h.key.clone(),
                h.value.as_ref().map(|v| v.to_bytes().unwrap()),
            )
        })
        .collect();
    assert_eq!(
        stored, raw.headers,
        "names, order, duplicates, nulls, bytes"
    );
    let offset = detail
        .headers
        .iter()
        .find(|h| h.key == "kafka_dlt-original-offset")
        .unwrap();
    assert!(
        offset.value.as_ref().unwrap().base64,
        "a Java long is binary"
    );
    let trace = detail
        .headers
        .iter()
        .find(|h| h.key == "traceparent")
        .unwrap();
    assert_eq!(
        trace.value,
        Some(ByteText::of(&traceparent(
            "4bf92f3577b34da6a3ce929d0e0e4736"
        )))
    );

    let detail = store.dead_letter("orders.DLT/0/2").await.unwrap().unwrap();
    assert_eq!(
        detail.key.map(|k| (k.text, k.base64, k.size)),
        Some((String::new(), false, 0))
    );
    assert_eq!(detail.value, None, "a null value stays null, not empty");
}

async fn list_filters_and_keyset_paging(store: &Store) {
    let letters = vec![
        Spring::new("payments.events.DLT", 1, 100).letter(),
        Spring::new("payments.events.DLT", 2, 200)
            .failing(
                "payments.events",
                "org.springframework.dao.DataIntegrityViolationException",
                "duplicate key value violates unique constraint \"payments_pkey\" 100% sure",
            )
            .letter(),
        Spring::new("dbserver1.shop.outbox.DLT", 1, 300)
            .failing(
                "dbserver1.shop.outbox",
                "org.springframework.dao.QueryTimeoutException",
                "Statement TIMED OUT after 5000 ms",
            )
            .letter(),
        Spring::new("dbserver1.shop.outbox.DLT", 2, 400).letter(),
        Spring::new("payments.events.DLT", 3, 400).letter(),
    ];
    store.write_batch(&batch(letters, vec![])).await.unwrap();
    store
        .set_dead_letter_state(
            "payments.events.DLT/0/1",
            &[DeadLetterState::New],
            DeadLetterState::Resolved,
            None,
            at(500),
        )
        .await
        .unwrap();

    // Newest first; ties on time by id, descending.
    assert_eq!(
        ids(store, DlqFilter::default()).await,
        [
            "payments.events.DLT/0/3",
            "dbserver1.shop.outbox.DLT/0/2",
            "dbserver1.shop.outbox.DLT/0/1",
            "payments.events.DLT/0/2",
            "payments.events.DLT/0/1",
        ]
    );
    let filter = |f: fn(&mut DlqFilter)| {
        let mut filter = DlqFilter::default();
        f(&mut filter);
        filter
    };
    assert_eq!(
        ids(
            store,
            filter(|f| f.topic = Some("dbserver1.shop.outbox.DLT".into()))
        )
        .await,
        [
            "dbserver1.shop.outbox.DLT/0/2",
            "dbserver1.shop.outbox.DLT/0/1"
        ]
    );
    assert_eq!(
        ids(store, filter(|f| f.reason = Some("timed out".into()))).await,
        [
            "payments.events.DLT/0/3",
            "dbserver1.shop.outbox.DLT/0/2",
            "dbserver1.shop.outbox.DLT/0/1",
            "payments.events.DLT/0/1",
        ],
        "case-insensitive substring of the exception message"
    );
    assert_eq!(
        ids(store, filter(|f| f.reason = Some("100%".into()))).await,
        ["payments.events.DLT/0/2"],
        "% in the text is literal"
    );
    assert!(ids(store, filter(|f| f.reason = Some("1_0".into())))
        .await
        .is_empty());
    assert_eq!(
        ids(
            store,
            filter(|f| f.failure_group = Some(
                "dbserver1.shop.outbox|org.springframework.dao.QueryTimeoutException|Statement TIMED OUT after <n> ms".into()
            ))
        )
        .await,
        ["dbserver1.shop.outbox.DLT/0/1"]
    );
    assert_eq!(
        ids(
            store,
            filter(|f| f.state = Some("resolved,discarded".into()))
        )
        .await,
        ["payments.events.DLT/0/1"]
    );
    assert_eq!(
        ids(store, filter(|f| f.state = Some("new".into())))
            .await
            .len(),
        4
    );
    let mut window = DlqFilter {
        since: Some(at(200).to_rfc3339()),
        until: Some(at(400).to_rfc3339()),
        ..Default::default()
    };
    assert_eq!(
        ids(store, window.clone()).await,
        ["dbserver1.shop.outbox.DLT/0/1", "payments.events.DLT/0/2"],
        "since inclusive, until exclusive"
    );
    window.saga_type = Some("order".into());
    assert!(ids(store, window).await.is_empty());

    // Keyset paging: every row once, in order, across pages.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_dead_letters(&query(DlqFilter {
                limit: Some("2".into()),
                cursor: cursor.clone(),
                ..Default::default()
            }))
            .await
            .unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.into_iter().map(|l| l.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ids(store, DlqFilter::default()).await);
}

async fn groups_count_depth_and_age_exactly(store: &Store) {
    let timeout = |offset, s| Spring::new("payments.events.DLT", offset, s);
    let duplicate = |offset, s| {
        Spring::new("payments.events.DLT", offset, s).failing(
            "payments.events",
            "org.springframework.dao.DataIntegrityViolationException",
            "duplicate key value violates unique constraint \"payments_pkey\" Key (id)=(pay-1)",
        )
    };
    let mut letters = vec![
        timeout(1, 60).letter(),
        timeout(2, 120).letter(),
        timeout(3, 180).letter(),
        duplicate(4, 30).letter(),
        duplicate(5, 90).letter(),
    ];
    let mut other = Spring::new("dbserver1.shop.outbox.DLT", 1, 240).raw();
    other.headers.clear();
    letters.push(decode_dead_letter(
        &other,
        &GenericDeadLetterFields::default(),
    ));
    store.write_batch(&batch(letters, vec![])).await.unwrap();
    // Handled ones leave the depth but stay in the total.
    for (id, to) in [
        ("payments.events.DLT/0/1", DeadLetterState::Discarded),
        ("payments.events.DLT/0/4", DeadLetterState::Retried),
    ] {
        assert!(store
            .set_dead_letter_state(id, &[DeadLetterState::New], to, None, at(300))
            .await
            .unwrap());
    }
    let now = at(600);
    let groups = store
        .dead_letter_groups(&DlqQuery::default(), now)
        .await
        .unwrap();
    assert_eq!(groups.depth_states, DeadLetterState::OPEN);
    let topics: Vec<(&str, i64, i64, Option<i64>)> = groups
        .topics
        .iter()
        .map(|t| (t.topic.as_str(), t.depth, t.total, t.oldest_age_ms))
        .collect();
    assert_eq!(
        topics,
        [
            // open: offsets 2, 3, 5 → oldest at 90 s, 510 s ago
            ("payments.events.DLT", 3, 5, Some(510_000)),
            ("dbserver1.shop.outbox.DLT", 1, 1, Some(360_000)),
        ]
    );
    assert_eq!(groups.topics[0].newest_at, Some(at(180)));
    assert_eq!(groups.topics[0].oldest_open_at, Some(at(90)));

    let by_group: Vec<(&str, i64, i64, Option<i64>)> = groups
        .groups
        .iter()
        .map(|g| (g.failure_group.as_str(), g.depth, g.total, g.oldest_age_ms))
        .collect();
    assert_eq!(
        by_group,
        [
            (
                "payments.events|java.net.SocketTimeoutException|Read timed out after <n> ms",
                2,
                3,
                Some(480_000)
            ),
            (
                "payments.events|org.springframework.dao.DataIntegrityViolationException|duplicate key value violates unique constraint '<s>' Key (id)=(pay-<n>)",
                1,
                2,
                Some(510_000)
            ),
            ("-|-|-", 1, 1, Some(360_000)),
        ]
    );
    let duplicates = &groups.groups[1];
    assert_eq!(
        duplicates.original_topic.as_deref(),
        Some("payments.events")
    );
    assert_eq!(
        duplicates.exception_class.as_deref(),
        Some("org.springframework.dao.DataIntegrityViolationException")
    );
    assert_eq!(
        duplicates.sample_id.as_deref(),
        Some("payments.events.DLT/0/5")
    );
    assert!(duplicates
        .sample_message
        .as_deref()
        .unwrap()
        .contains("payments_pkey"));
    let unknown = &groups.groups[2];
    assert_eq!(
        (
            unknown.original_topic.as_deref(),
            unknown.normalised_message.as_deref()
        ),
        (None, None)
    );

    // The same figures for one topic, and per topic for /metrics.
    let payments = store
        .dead_letter_groups(
            &query(DlqFilter {
                topic: Some("payments.events.DLT".into()),
                ..Default::default()
            }),
            now,
        )
        .await
        .unwrap();
    assert_eq!(payments.topics.len(), 1);
    assert_eq!(payments.groups.len(), 2);
    let depths = store.dlq_depth_by_topic(now).await.unwrap();
    assert_eq!(depths, groups.topics);

    // Everything handled: depth 0, no age, the topic still reported.
    for id in [
        "payments.events.DLT/0/2",
        "payments.events.DLT/0/3",
        "payments.events.DLT/0/5",
    ] {
        store
            .set_dead_letter_state(
                id,
                &DeadLetterState::OPEN,
                DeadLetterState::Resolved,
                None,
                now,
            )
            .await
            .unwrap();
    }
    let depths = store.dlq_depth_by_topic(now).await.unwrap();
    let payments = depths
        .iter()
        .find(|t| t.topic == "payments.events.DLT")
        .unwrap();
    assert_eq!(
        (payments.depth, payments.total, payments.oldest_age_ms),
        (0, 5, None)
    );
}

async fn a_redriven_letter_that_comes_back_marks_the_original_failed_again(store: &Store) {
    store
        .write_batch(&batch(
            vec![Spring::new("orders.DLT", 1, 10).letter()],
            vec![],
        ))
        .await
        .unwrap();
    let original = "orders.DLT/0/1";
    // Compare-and-set: only from the expected state.
    assert!(!store
        .set_dead_letter_state(
            original,
            &[DeadLetterState::RetryRequested],
            DeadLetterState::Retried,
            None,
            at(20)
        )
        .await
        .unwrap());
    assert!(store
        .set_dead_letter_state(
            original,
            &[DeadLetterState::New, DeadLetterState::FailedAgain],
            DeadLetterState::RetryRequested,
            Some("operator asked"),
            at(20)
        )
        .await
        .unwrap());
    assert!(store
        .set_dead_letter_state(
            original,
            &[DeadLetterState::RetryRequested],
            DeadLetterState::Retried,
            None,
            at(21)
        )
        .await
        .unwrap());
    assert!(!store
        .set_dead_letter_state(
            "orders.DLT/0/404",
            &[DeadLetterState::New],
            DeadLetterState::Discarded,
            None,
            at(21)
        )
        .await
        .unwrap());

    // The re-driven copy fails again and is dead-lettered anew.
    let back = Spring::new("orders.DLT", 9, 60)
        .header("x-retry-of", original.as_bytes())
        .header("x-retry-count", b"1")
        .letter();
    let b = batch(vec![back], vec![]);
    let outcome = store.write_batch(&b).await.unwrap();
    assert_eq!(
        outcome.dead_letters[0].failed_again_of.as_deref(),
        Some(original)
    );
    let first = store.dead_letter(original).await.unwrap().unwrap().summary;
    assert_eq!(first.state, DeadLetterState::FailedAgain);
    assert!(first.state_reason.unwrap().contains("orders.DLT/0/9"));
    let second = store
        .dead_letter("orders.DLT/0/9")
        .await
        .unwrap()
        .unwrap()
        .summary;
    assert_eq!(
        (
            second.state,
            second.retry_of.as_deref(),
            second.retry_count,
            second.failed_again_of.as_deref()
        ),
        (DeadLetterState::New, Some(original), 1, Some(original))
    );

    // Redelivered: nothing moves, even after the original was handled.
    store
        .set_dead_letter_state(
            original,
            &[DeadLetterState::FailedAgain],
            DeadLetterState::Discarded,
            None,
            at(70),
        )
        .await
        .unwrap();
    assert!(store.write_batch(&b).await.unwrap().dead_letters.is_empty());
    assert_eq!(
        store
            .dead_letter(original)
            .await
            .unwrap()
            .unwrap()
            .summary
            .state,
        DeadLetterState::Discarded
    );

    // A retry of something never stored links nothing.
    let stray = Spring::new("orders.DLT", 10, 80)
        .header("x-retry-of", b"elsewhere.DLT/0/1")
        .letter();
    let outcome = store
        .write_batch(&batch(vec![stray], vec![]))
        .await
        .unwrap();
    assert_eq!(outcome.dead_letters[0].failed_again_of, None);
    assert_eq!(
        outcome.dead_letters[0].retry_of.as_deref(),
        Some("elsewhere.DLT/0/1")
    );
}

/// A saga event as the decoders place it: the saga id, its correlation
/// key and the trace id.
fn event(
    saga_id: &str,
    key: &str,
    trace_id: &str,
    saga_type: &str,
    n: i64,
    phase: Phase,
) -> SagaEvent {
    SagaEvent {
        event_id: format!("{saga_id}-e{n}"),
        saga_id: saga_id.to_string(),
        explicit_saga_id: key.starts_with("saga:").then(|| saga_id.to_string()),
        rule_classified: true,
        correlation_rank: 0,
        correlation_keys: vec![key.to_string()],
        saga_type: Some(saga_type.to_string()),
        step: None,
        phase,
        event_type: format!("{phase:?}"),
        trace_id: Some(trace_id.to_string()),
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

async fn dead_letters_link_to_sagas_by_saga_id_and_by_trace_id(store: &Store) {
    let orchestrated_trace = "0af7651916cd43dd8448eb211c80319c";
    let choreography = "4bf92f3577b34da6a3ce929d0e0e4736";
    let events = vec![
        event(
            "ord-1",
            "saga:ord-1",
            orchestrated_trace,
            "order",
            1,
            Phase::SagaStarted,
        ),
        event(
            choreography,
            &format!("trace:{choreography}"),
            choreography,
            "order_choreography",
            2,
            Phase::StepSucceeded,
        ),
    ];
    let letters = vec![
        // The saga id in the payload (saga-state shape: the instance id).
        Spring::new("orders.DLT", 1, 10)
            .failing("saga.state", "java.lang.IllegalStateException", "boom")
            .header("saga_id", b"ord-1")
            .letter(),
        // Only a traceparent, of a choreography (saga id = trace id).
        Spring::new("orders.DLT", 2, 20)
            .header("traceparent", &traceparent(choreography))
            .letter(),
        // Only the trace of the orchestrated saga: found by its search key.
        Spring::new("orders.DLT", 3, 30)
            .header("traceparent", &traceparent(orchestrated_trace))
            .letter(),
        // Its saga has not arrived yet.
        Spring::new("orders.DLT", 4, 40)
            .header("saga_id", b"ord-2")
            .letter(),
    ];
    let outcome = store.write_batch(&batch(letters, events)).await.unwrap();
    let links: Vec<(Option<&str>, Option<&str>)> = outcome
        .dead_letters
        .iter()
        .map(|l| (l.saga_id.as_deref(), l.saga_type.as_deref()))
        .collect();
    assert_eq!(
        links,
        [
            (Some("ord-1"), Some("order")),
            (Some(choreography), Some("order_choreography")),
            (Some("ord-1"), Some("order")),
            (None, None),
        ]
    );
    assert_eq!(
        outcome.dead_letters[3].declared_saga_id.as_deref(),
        Some("ord-2")
    );

    // ord-2's events come later: the waiting dead letter links to it.
    store
        .write_batch(&batch(
            vec![],
            vec![event(
                "ord-2",
                "saga:ord-2",
                "11111111111111111111111111111111",
                "order",
                5,
                Phase::SagaStarted,
            )],
        ))
        .await
        .unwrap();
    let late = store
        .dead_letter("orders.DLT/0/4")
        .await
        .unwrap()
        .unwrap()
        .summary;
    assert_eq!(
        (late.saga_id.as_deref(), late.saga_type.as_deref()),
        (Some("ord-2"), Some("order"))
    );

    let of_saga: Vec<String> = store
        .dead_letters_of_saga("ord-1")
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(
        of_saga,
        ["orders.DLT/0/1", "orders.DLT/0/3"],
        "oldest first"
    );
    assert_eq!(
        ids(
            store,
            DlqFilter {
                saga_type: Some("order".into()),
                ..Default::default()
            }
        )
        .await,
        ["orders.DLT/0/4", "orders.DLT/0/3", "orders.DLT/0/1"]
    );
    assert_eq!(
        ids(
            store,
            DlqFilter {
                saga_id: Some(choreography.into()),
                ..Default::default()
            }
        )
        .await,
        ["orders.DLT/0/2"]
    );
    // A reprojection rebuilds every saga; the links are rebuilt with them
    // (all cleared first, so this proves they are found again).
    let before = all_links(store).await;
    store
        .reproject(
            &sagascope_domain::Decoder::new(sagascope_domain::Rules::default()),
            3,
            |_| {},
        )
        .await
        .unwrap();
    let after = all_links(store).await;
    assert_eq!(before.len(), 4);
    assert_eq!(
        after
            .iter()
            .map(|(id, saga, _)| (id, saga))
            .collect::<Vec<_>>(),
        before
            .iter()
            .map(|(id, saga, _)| (id, saga))
            .collect::<Vec<_>>(),
        "the same instances"
    );
    // The fixture's hand-set types were re-classified by the default
    // rules; each dead letter carries its saga's new type.
    for (id, saga, saga_type) in &after {
        let saga = saga.as_deref().unwrap_or_else(|| panic!("{id} unlinked"));
        let detail = store.saga_detail(saga).await.unwrap().unwrap();
        assert_eq!(
            saga_type.as_deref(),
            Some(detail.saga.saga_type.as_str()),
            "{id}"
        );
    }
}

async fn all_links(store: &Store) -> Vec<(String, Option<String>, Option<String>)> {
    let page = store
        .list_dead_letters(&DlqFilter::default().validate().unwrap())
        .await
        .unwrap();
    let mut links: Vec<_> = page
        .items
        .into_iter()
        .map(|l| (l.id, l.saga_id, l.saga_type))
        .collect();
    links.sort();
    links
}

/// The counters against a recount of the rows, and the per-topic depths
/// they give against the same figures counted from the table (a filter
/// that selects every state takes the counting path).
async fn assert_counters_match(store: &Store, when: &str) {
    use sagascope_store::test_support::{dead_letter_counters, dead_letter_recount};
    assert_eq!(
        dead_letter_counters(store).await,
        dead_letter_recount(store).await,
        "{when}"
    );
    let now = at(10_000);
    let every_state = DlqFilter {
        state: Some("new,retry_requested,retried,resolved,failed_again,discarded".into()),
        ..DlqFilter::default()
    }
    .validate()
    .unwrap();
    let counted = store
        .dead_letter_groups(&every_state, now)
        .await
        .unwrap()
        .topics;
    assert_eq!(
        store.dlq_depth_by_topic(now).await.unwrap(),
        counted,
        "{when}"
    );
    let unfiltered = store
        .dead_letter_groups(&DlqQuery::default(), now)
        .await
        .unwrap()
        .topics;
    assert_eq!(unfiltered, counted, "{when}");
}

async fn depth_counters_equal_a_recount_through_every_change(store: &Store) {
    use sagascope_store::{AttemptResult, NewRetry, RetryClaim};
    let letters = || {
        let mut letters: Vec<DeadLetter> = (1..=6)
            .map(|offset| Spring::new("orders.DLT", offset, 10 + offset).letter())
            .collect();
        letters.extend(
            (1..=3).map(|offset| Spring::new("payments.DLT", offset, 30 - offset).letter()),
        );
        letters
    };
    store.write_batch(&batch(letters(), vec![])).await.unwrap();
    assert_counters_match(store, "inserted").await;
    store.write_batch(&batch(letters(), vec![])).await.unwrap();
    assert_counters_match(store, "redelivered").await;

    // Single re-drives: one produced (retried), one refused (back to new).
    for (n, produced) in [(1, true), (2, false)] {
        let id = format!("orders.DLT/0/{n}");
        let key = format!("key-{n}");
        let attempt = format!("attempt-{n}");
        let claim = store
            .claim_retry(&NewRetry {
                dead_letter_id: &id,
                idempotency_key: &key,
                attempt_id: &attempt,
                actor: "otto",
                reason: "downstream fixed",
                target_topic: "payments.events",
                at: at(40),
            })
            .await
            .unwrap();
        let claim = match claim {
            RetryClaim::Claimed(claim) => claim,
            other => panic!("expected a claim, got {other:?}"),
        };
        assert_counters_match(store, "claimed").await;
        store
            .finish_retry(
                &AttemptResult {
                    attempt_id: claim.attempt_id.clone(),
                    dead_letter_id: claim.dead_letter_id.clone(),
                    result: if produced {
                        Ok((0, 77))
                    } else {
                        Err("broker down".into())
                    },
                },
                "re-driven",
                at(41),
            )
            .await
            .unwrap();
        assert_counters_match(store, "retry finished").await;
    }

    // A re-driven copy comes back: its original is failed_again.
    assert!(store
        .set_dead_letter_state(
            "orders.DLT/0/3",
            &[DeadLetterState::New],
            DeadLetterState::Retried,
            None,
            at(42)
        )
        .await
        .unwrap());
    let back = Spring::new("orders.DLT", 9, 60)
        .header("x-retry-of", b"orders.DLT/0/3")
        .header("x-retry-count", b"1")
        .letter();
    store.write_batch(&batch(vec![back], vec![])).await.unwrap();
    assert_counters_match(store, "failed again").await;

    // Discards.
    for id in ["orders.DLT/0/4", "payments.DLT/0/1"] {
        store
            .discard_dead_letter(id, "otto", "obsolete", at(50))
            .await
            .unwrap();
    }
    assert_counters_match(store, "discarded").await;

    // The resolve sweep: retried and never back within the window.
    let report = store
        .resolve_retried(at(1_000), std::time::Duration::from_secs(120), "2m")
        .await
        .unwrap();
    assert_eq!(report.not_returned, 1);
    assert_counters_match(store, "resolved").await;

    // Retention removes closed ones, one at a time and then the rest.
    let cutoff = at(5_000);
    assert_eq!(
        store
            .delete_closed_dead_letters_before(cutoff, 1)
            .await
            .unwrap(),
        1
    );
    assert_counters_match(store, "one removed").await;
    let removed = store
        .delete_closed_dead_letters_before(cutoff, 100)
        .await
        .unwrap();
    assert!(removed > 0);
    assert_counters_match(store, "closed removed").await;
    let depths = store.dlq_depth_by_topic(at(10_000)).await.unwrap();
    let orders = depths.iter().find(|t| t.topic == "orders.DLT").unwrap();
    // 2 (back to new), 5, 6 and the returned copy 9 are still open.
    assert_eq!((orders.depth, orders.total), (4, 4));
}
