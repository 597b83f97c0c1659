//! The spans the services of a simulated saga would have produced, with
//! the saga's trace id, so sagascope can show them beside its events.
//!
//! The shape of a trace: the request that starts it (a server span, e.g.
//! `order-service POST /orders`) does some work and publishes the first
//! message (`{topic} publish`, kind producer). Each message is then
//! processed (`{topic} process`, kind consumer) by the service that
//! publishes the next one: it queries its database, calls a gateway, writes
//! its outbox (client and internal children) and publishes. The last
//! message is processed by the notification service. A message's event
//! time lies inside its producer span, whose id its `traceparent` names.
//! A step that fails has its failing call marked error with an `exception`
//! event; a dead-lettered message gets an error consumer span and the
//! dead letter's publish; a re-driven copy that resumes the saga gets a
//! consumer span of its own, under which the saga goes on.
//!
//! Spans are made step by step as the simulator produces (a live saga's
//! later event times are not known in advance); [`spans_of_saga`] plays a
//! whole plan at once.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use crate::dead_letters::DeadLetterMessage;
use crate::message::{Body, PlannedMessage};
use crate::relay_delay::relay_delay_ms;
use crate::saga_plans::SagaPlan;
use crate::span_shapes::{
    hashed_span_id, span_id, AttributeValue, Attributes, SimulatedSpan, SimulatedSpanEvent,
    SimulatedSpanKind, SpanRole,
};
use crate::topics::{PAYMENT_EVENTS_TOPIC, SHOP_OUTBOX_CDC_TOPIC};

/// A message that was produced: its index in its traffic, event time and
/// (when known) where it landed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Produced {
    pub index: usize,
    pub at: DateTime<Utc>,
    pub partition: Option<i32>,
    pub offset: Option<i64>,
}

/// What led to the publish of a message.
#[derive(Debug, Clone, Copy)]
pub enum Before<'a> {
    /// Nothing: it is the trace's first message, published by the request
    /// that starts the trace.
    Start,
    /// The processing of this earlier message.
    Previous(&'a Produced),
    /// The processing of a re-driven copy of a dead-lettered message.
    Redelivered(&'a Redelivery),
}

/// A re-driven copy of the dead-lettered message `index`, processed by the
/// retry consumer from `started_at` on; the saga resumes under it.
#[derive(Debug, Clone, PartialEq)]
pub struct Redelivery {
    pub index: usize,
    pub started_at: DateTime<Utc>,
    pub retry_count: u32,
    pub dead_letter_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TraceKind {
    Order,
    ChatMessage,
    ScanReward,
    OrderChoreography,
    Product,
}

/// A saga's trace (or a product event's), read off its messages.
#[derive(Debug, Clone)]
pub struct SagaTrace<'a> {
    trace_id: &'a str,
    messages: &'a [PlannedMessage],
    kind: TraceKind,
    /// (saga.id, saga.type); None for traffic that is no saga.
    saga: Option<(String, &'static str)>,
}

/// What one message says, as far as its spans care.
struct Facts {
    publisher: &'static str,
    /// The event type (a saga state event's status).
    event: String,
    step: Option<String>,
    /// The error text of a message reporting a failure.
    failure: Option<String>,
    compensation: bool,
    via_outbox: bool,
}

/// A piece of work a service does before it publishes.
struct Work {
    name: String,
    kind: SimulatedSpanKind,
    attributes: Attributes,
}

impl Work {
    fn db(system: &str, operation: &str, table: &str, query: &str) -> Work {
        Work {
            name: format!("{operation} {table}"),
            kind: SimulatedSpanKind::Client,
            attributes: attributes([
                ("db.system", system.into()),
                ("db.system.name", system.into()),
                ("db.operation.name", operation.into()),
                ("db.collection.name", table.into()),
                ("db.query.text", query.into()),
            ]),
        }
    }

    fn sql(operation: &str, table: &str, query: &str) -> Work {
        Work::db("postgresql", operation, table, query)
    }

    fn http(method: &str, host: &str, path: &str, peer: &str, status: i64) -> Work {
        Work {
            name: format!("{method} {path}"),
            kind: SimulatedSpanKind::Client,
            attributes: attributes([
                ("http.request.method", method.into()),
                ("url.full", format!("https://{host}{path}").into()),
                ("server.address", host.into()),
                ("server.port", 443_i64.into()),
                ("peer.service", peer.into()),
                ("http.response.status_code", status.into()),
            ]),
        }
    }

    fn internal(name: &str) -> Work {
        Work {
            name: name.to_string(),
            kind: SimulatedSpanKind::Internal,
            attributes: Vec::new(),
        }
    }
}

fn attributes<const N: usize>(pairs: [(&str, AttributeValue); N]) -> Attributes {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn ms(milliseconds: f64) -> Duration {
    Duration::microseconds((milliseconds * 1000.0).round() as i64)
}

fn millis_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0
}

/// A uniform draw in [0, 1) fixed by the trace, the message and `salt`,
/// so spans vary without touching the traffic's RNG.
fn unit(trace_id: &str, index: usize, salt: &str) -> f64 {
    let id = hashed_span_id(&(trace_id, index, salt));
    (u64::from_str_radix(&id, 16).unwrap_or(0) >> 11) as f64 / (1u64 << 53) as f64
}

/// The service whose consumer group dead-letters or re-processes messages
/// of `topic` in the demo.
pub fn consuming_service(topic: &str) -> &'static str {
    match topic {
        PAYMENT_EVENTS_TOPIC => "order-service",
        SHOP_OUTBOX_CDC_TOPIC => "payment-service",
        _ => "order-service",
    }
}

/// `service.version` of a simulated service.
pub fn service_version(service: &str) -> String {
    let id = hashed_span_id(&service);
    let n = u64::from_str_radix(&id, 16).unwrap_or(0);
    format!("1.{}.{}", n % 9, (n >> 8) % 20)
}

fn consumer_group(service: &str) -> String {
    format!("shop-{service}")
}

/// The step the choreographed sagas' events stand for (as in
/// `rules.example.toml`).
fn choreographed_step(event: &str) -> Option<&'static str> {
    Some(match event {
        "ImageRegistered" => "RegisterImage",
        "ScanCompleted" => "Scan",
        "CharacterAcquired" | "CharacterAcquireFailed" => "AcquireCharacter",
        "ScanRewardCompensated" => "CompensateScanReward",
        "ProfileUpdated" => "UpdateProfile",
        "OrderCreated" => "CreateOrder",
        "StockReserved" => "ReserveStock",
        "PaymentRequested" | "PaymentAuthorized" | "PaymentFailed" => "AuthorizePayment",
        "ReleaseStockRequested" | "StockReleased" => "ReleaseStock",
        "OrderConfirmed" => "ConfirmOrder",
        _ => return None,
    })
}

impl<'a> SagaTrace<'a> {
    /// The trace of `messages` (all of one trace); None for traffic the
    /// simulated services would not trace (bad messages).
    pub fn of(trace_id: &'a str, messages: &'a [PlannedMessage]) -> Option<SagaTrace<'a>> {
        let first = messages.first()?;
        let (kind, saga) = match &first.body {
            Body::SagaState(state) => match state["saga_type"].as_str() {
                Some("order") => (TraceKind::Order, Some((first.key.clone(), "order"))),
                Some("chat_message") => (
                    TraceKind::ChatMessage,
                    Some((first.key.clone(), "chat_message")),
                ),
                _ => return None,
            },
            Body::Outbox { .. } => (
                TraceKind::ScanReward,
                Some((trace_id.to_string(), "scan_reward")),
            ),
            Body::CdcInsert { .. } => (
                TraceKind::OrderChoreography,
                Some((trace_id.to_string(), "order_choreography")),
            ),
            Body::PlainJson(_) => (TraceKind::Product, None),
            _ => return None,
        };
        Some(SagaTrace {
            trace_id,
            messages,
            kind,
            saga,
        })
    }

    fn facts(&self, index: usize) -> Facts {
        let message = &self.messages[index];
        let text = |value: &Value| value.as_str().map(str::to_string);
        match &message.body {
            Body::SagaState(state) => {
                let status = state["status"].as_str().unwrap_or("RUNNING").to_string();
                let step = text(&state["step"]);
                let failure = matches!(
                    status.as_str(),
                    "STEP_FAILED" | "COMPENSATION_FAILED" | "TIMED_OUT"
                )
                .then(|| text(&state["error"]).unwrap_or_else(|| status.clone()));
                let compensation = matches!(
                    status.as_str(),
                    "COMPENSATION_STARTED"
                        | "COMPENSATING_STEP"
                        | "STEP_COMPENSATED"
                        | "COMPENSATION_FAILED"
                        | "COMPENSATED"
                );
                let participant = matches!(
                    status.as_str(),
                    "STEP_COMPLETED" | "STEP_FAILED" | "STEP_COMPENSATED" | "COMPENSATION_FAILED"
                );
                let publisher = match (participant, step.as_deref(), self.kind) {
                    (true, Some("ReserveStock" | "ReleaseStock"), _) => "inventory-service",
                    (true, Some("AuthorizePayment"), _) => "payment-service",
                    (true, Some("SaveMessageToMongo"), _) => "message-store-service",
                    (true, Some("UpdateChatRoomMetadata"), _) => "chat-room-service",
                    (_, _, TraceKind::ChatMessage) => "chat-service",
                    _ => "order-service",
                };
                Facts {
                    publisher,
                    event: status,
                    step,
                    failure,
                    compensation,
                    via_outbox: false,
                }
            }
            Body::Outbox {
                event_type,
                payload,
            } => {
                let publisher = match message.topic {
                    "events.image" => "image-service",
                    "events.scan" => "scan-service",
                    "events.character" => "character-service",
                    _ => "my-service",
                };
                self.event_facts(publisher, event_type, payload, true)
            }
            Body::CdcInsert { row, .. } => {
                let publisher = if row.aggregate_type == "Stock" {
                    "stock-service"
                } else {
                    "order-service"
                };
                self.event_facts(publisher, &row.event_type, &row.payload, true)
            }
            Body::CloudEvent { event, .. } => {
                let short = event.event_type.rsplit('.').next().unwrap_or_default();
                self.event_facts("payment-service", short, &event.data, false)
            }
            Body::PlainJson(event) => Facts {
                publisher: "catalog-service",
                event: text(&event["type"]).unwrap_or_default(),
                step: None,
                failure: None,
                compensation: false,
                via_outbox: false,
            },
            _ => Facts {
                publisher: "order-service",
                event: String::new(),
                step: None,
                failure: None,
                compensation: false,
                via_outbox: false,
            },
        }
    }

    fn event_facts(
        &self,
        publisher: &'static str,
        event: &str,
        payload: &Value,
        via_outbox: bool,
    ) -> Facts {
        let failure = event.ends_with("Failed").then(|| {
            payload["reason"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| event.to_string())
        });
        Facts {
            publisher,
            event: event.to_string(),
            step: choreographed_step(event).map(str::to_string),
            failure,
            compensation: matches!(
                event,
                "ScanRewardCompensated" | "ReleaseStockRequested" | "StockReleased"
            ),
            via_outbox,
        }
    }

    /// What the publisher of message `index` does before publishing it;
    /// when the message reports a failure, the first piece is the one that
    /// failed (and the exception type it threw).
    fn work(&self, index: usize, facts: &Facts) -> (Vec<Work>, &'static str) {
        let step = facts.step.as_deref();
        let (mut work, exception) = match (facts.publisher, step) {
            ("inventory-service" | "stock-service", _) if facts.compensation => (
                vec![Work::sql(
                    "UPDATE",
                    "inventory",
                    "UPDATE inventory SET reserved = reserved - $1 WHERE sku = $2",
                )],
                "com.shop.inventory.StockReleaseException",
            ),
            ("inventory-service" | "stock-service", _) => (
                vec![
                    Work::sql(
                        "SELECT",
                        "inventory",
                        "SELECT on_hand, reserved FROM inventory WHERE sku = $1 FOR UPDATE",
                    ),
                    Work::sql(
                        "UPDATE",
                        "inventory",
                        "UPDATE inventory SET reserved = reserved + $1 WHERE sku = $2",
                    ),
                ],
                "com.shop.inventory.InsufficientStockException",
            ),
            ("payment-service", _) => {
                let status = if facts.failure.is_some() { 402 } else { 200 };
                (
                    vec![
                        Work::http(
                            "POST",
                            "psp.example.com",
                            "/payments/authorize",
                            "payment-gateway",
                            status,
                        ),
                        Work::sql(
                            "INSERT",
                            "payments",
                            "INSERT INTO payments (id, order_id, amount_cents, status) VALUES ($1, $2, $3, $4)",
                        ),
                    ],
                    "com.shop.payment.PaymentDeclinedException",
                )
            }
            ("order-service", _) if facts.event == "TIMED_OUT" => (
                vec![Work::internal("await AuthorizePayment reply")],
                "java.util.concurrent.TimeoutException",
            ),
            ("order-service", _) if index == 0 => (
                vec![Work::sql(
                    "INSERT",
                    "orders",
                    "INSERT INTO orders (id, customer_id, total_cents, status) VALUES ($1, $2, $3, 'PENDING')",
                )],
                "com.shop.order.OrderException",
            ),
            ("order-service", _) => (
                vec![Work::sql(
                    "UPDATE",
                    "orders",
                    "UPDATE orders SET status = $1, updated_at = now() WHERE id = $2",
                )],
                "com.shop.order.OrderException",
            ),
            ("message-store-service", _) if facts.compensation => (
                vec![Work::db(
                    "mongodb",
                    "delete",
                    "messages",
                    "{\"delete\":\"messages\",\"deletes\":[{\"q\":{\"_id\":\"?\"}}]}",
                )],
                "com.mongodb.MongoWriteConcernException",
            ),
            ("message-store-service", _) => (
                vec![Work::db(
                    "mongodb",
                    "insert",
                    "messages",
                    "{\"insert\":\"messages\",\"documents\":[\"?\"]}",
                )],
                "com.mongodb.MongoWriteConcernException",
            ),
            ("chat-room-service", _) => (
                vec![Work::sql(
                    "UPDATE",
                    "chat_rooms",
                    "UPDATE chat_rooms SET last_message_at = $1, message_count = message_count + 1 WHERE id = $2",
                )],
                "org.postgresql.util.PSQLException",
            ),
            ("chat-service", Some("PublishEventToOutbox")) => (
                vec![Work::sql(
                    "INSERT",
                    "outbox",
                    "INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) VALUES ($1, $2, $3, $4, $5)",
                )],
                "org.postgresql.util.PSQLException",
            ),
            ("chat-service", _) => (
                vec![Work::sql(
                    "UPDATE",
                    "saga_instance",
                    "UPDATE saga_instance SET state = $1, version = version + 1 WHERE id = $2",
                )],
                "io.eventuate.tram.sagas.SagaException",
            ),
            ("image-service", _) => (
                vec![Work {
                    name: "S3.PutObject".into(),
                    kind: SimulatedSpanKind::Client,
                    attributes: attributes([
                        ("rpc.system", "aws-api".into()),
                        ("rpc.service", "S3".into()),
                        ("rpc.method", "PutObject".into()),
                        ("aws.s3.bucket", "eco2-images".into()),
                    ]),
                }],
                "botocore.exceptions.ClientError",
            ),
            ("scan-service", _) if facts.compensation => (
                vec![Work::sql(
                    "UPDATE",
                    "user_points",
                    "UPDATE user_points SET points = points - $1 WHERE user_id = $2",
                )],
                "ScanServiceError",
            ),
            ("scan-service", _) => (
                vec![
                    Work::http("POST", "vision.internal", "/v1/classify", "vision-api", 200),
                    Work::sql(
                        "INSERT",
                        "scans",
                        "INSERT INTO scans (id, image_id, category, confidence) VALUES ($1, $2, $3, $4)",
                    ),
                ],
                "ScanServiceError",
            ),
            ("character-service", _) => (
                vec![
                    Work::sql(
                        "SELECT",
                        "user_characters",
                        "SELECT count(*) FROM user_characters WHERE user_id = $1",
                    ),
                    Work::sql(
                        "INSERT",
                        "user_characters",
                        "INSERT INTO user_characters (user_id, character_id) VALUES ($1, $2)",
                    ),
                ],
                "CharacterInventoryFullError",
            ),
            ("catalog-service", _) => (
                vec![Work::sql(
                    "UPDATE",
                    "products",
                    "UPDATE products SET payload = $1, updated_at = now() WHERE id = $2",
                )],
                "com.shop.catalog.CatalogException",
            ),
            _ => (
                vec![Work::sql(
                    "UPDATE",
                    "profiles",
                    "UPDATE profiles SET points = $1 WHERE user_id = $2",
                )],
                "ProfileServiceError",
            ),
        };
        if facts.failure.is_some() {
            work.truncate(1);
        }
        if facts.via_outbox {
            work.push(Work::sql(
                "INSERT",
                "outbox",
                "INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) VALUES ($1, $2, $3, $4, $5)",
            ));
        }
        (work, exception)
    }

    /// saga.id, saga.type and (when known) saga.step.
    fn saga_attributes(&self, step: Option<&str>) -> Attributes {
        let mut out = Attributes::new();
        if let Some((id, saga_type)) = &self.saga {
            out.push(("saga.id".into(), id.clone().into()));
            out.push(("saga.type".into(), (*saga_type).into()));
            if let Some(step) = step {
                out.push(("saga.step".into(), step.into()));
            }
        }
        out
    }

    fn messaging_attributes(&self, produced: &Produced, operation: &str) -> Attributes {
        let message = &self.messages[produced.index];
        let mut out = attributes([
            ("messaging.system", "kafka".into()),
            ("messaging.destination.name", message.topic.into()),
            (
                "messaging.operation.type",
                if operation == "publish" {
                    "send"
                } else {
                    "process"
                }
                .into(),
            ),
            ("messaging.operation.name", operation.into()),
            ("messaging.kafka.message.key", message.key.clone().into()),
        ]);
        if let Some(partition) = produced.partition {
            out.push((
                "messaging.destination.partition.id".into(),
                partition.to_string().into(),
            ));
        }
        if let Some(offset) = produced.offset {
            out.push(("messaging.kafka.offset".into(), offset.into()));
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn span(
        &self,
        span_id: String,
        parent: Option<String>,
        service: &str,
        name: String,
        kind: SimulatedSpanKind,
        (start, end): (DateTime<Utc>, DateTime<Utc>),
        attributes: Attributes,
    ) -> SimulatedSpan {
        SimulatedSpan {
            trace_id: self.trace_id.to_string(),
            span_id,
            parent_span_id: parent,
            service: service.to_string(),
            name,
            kind,
            start,
            end: end.max(start),
            attributes,
            events: Vec::new(),
            error: None,
        }
    }

    /// The producer span of `produced`, under `parent`.
    fn producer(&self, produced: &Produced, parent: String, facts: &Facts) -> SimulatedSpan {
        let (trace, index) = (self.trace_id, produced.index);
        let start = produced.at - ms(0.2 + 0.8 * unit(trace, index, "publish-lead"));
        let end = produced.at + ms(0.4 + 2.0 * unit(trace, index, "publish-tail"));
        let mut attributes = self.messaging_attributes(produced, "publish");
        attributes.push(("saga.event_type".into(), facts.event.clone().into()));
        attributes.extend(self.saga_attributes(facts.step.as_deref()));
        self.span(
            span_id(trace, index, SpanRole::Producer),
            Some(parent),
            facts.publisher,
            format!("{} publish", self.messages[index].topic),
            SimulatedSpanKind::Producer,
            (start, end),
            attributes,
        )
    }

    /// The work spans of `facts` (message `index`), laid out one after the
    /// other over the last part of `[from, to]` under `parent`; the first
    /// fails when the message reports a failure.
    fn work_spans(
        &self,
        index: usize,
        facts: &Facts,
        parent: &str,
        role: fn(usize) -> SpanRole,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
    ) -> Vec<SimulatedSpan> {
        let (work, exception_type) = self.work(index, facts);
        let window = millis_between(from, to).max(0.0);
        let busy = window * (0.35 + 0.5 * unit(self.trace_id, index, "busy"));
        let slot = busy / work.len().max(1) as f64;
        let first_start = from + ms(window - busy);
        work.into_iter()
            .enumerate()
            .map(|(k, work)| {
                let start = first_start + ms(slot * k as f64 + slot * 0.05);
                let end = first_start + ms(slot * (k as f64 + 1.0) - slot * 0.05);
                let mut attributes = work.attributes;
                attributes.extend(self.saga_attributes(facts.step.as_deref()));
                let mut span = self.span(
                    span_id(self.trace_id, index, role(k)),
                    Some(parent.to_string()),
                    facts.publisher,
                    work.name,
                    work.kind,
                    (start, end),
                    attributes,
                );
                if let (0, Some(failure)) = (k, &facts.failure) {
                    fail(&mut span, exception_type, failure, end);
                }
                span
            })
            .collect()
    }

    /// The spans made when message `produced` is published after `before`:
    /// its producer span and what led to it (the starting request, or the
    /// processing of the message before it), with their work.
    pub fn on_publish(&self, produced: &Produced, before: Before<'_>) -> Vec<SimulatedSpan> {
        let (trace, index) = (self.trace_id, produced.index);
        let facts = self.facts(index);
        let mut producer = self.producer(produced, String::new(), &facts);
        let mut spans = Vec::new();
        let parent = match before {
            Before::Start => {
                let root_id = span_id(trace, 0, SpanRole::Root);
                let start = produced.at - ms(8.0 + 25.0 * unit(trace, index, "root-lead"));
                let end = producer.end + ms(0.5 + 2.0 * unit(trace, index, "root-tail"));
                let (method, route) = self.root_route();
                let mut attributes = attributes([
                    ("http.request.method", method.into()),
                    ("http.route", route.into()),
                    ("url.scheme", "https".into()),
                    ("http.response.status_code", 201_i64.into()),
                ]);
                attributes.extend(self.saga_attributes(facts.step.as_deref()));
                spans.push(self.span(
                    root_id.clone(),
                    None,
                    facts.publisher,
                    format!("{method} {route}"),
                    SimulatedSpanKind::Server,
                    (start, end),
                    attributes,
                ));
                spans.extend(self.work_spans(
                    index,
                    &facts,
                    &root_id,
                    SpanRole::RootWork,
                    (start + ms(0.5), producer.start - ms(0.2)),
                ));
                root_id
            }
            Before::Previous(previous) => {
                let consumer_id = span_id(trace, previous.index, SpanRole::Consumer);
                let gap = millis_between(previous.at, produced.at).max(0.0);
                let relay = relay_delay_ms(trace, previous.index) as f64;
                let start = previous.at + ms(relay.clamp((gap * 0.1).min(2.5), gap * 0.3));
                let end = producer.end + ms(0.3);
                spans.push(self.consumer(previous, &facts, consumer_id.clone(), (start, end)));
                spans.extend(self.work_spans(
                    index,
                    &facts,
                    &consumer_id,
                    SpanRole::ConsumerWork,
                    (start + ms(0.3), producer.start - ms(0.2)),
                ));
                consumer_id
            }
            Before::Redelivered(redelivery) => {
                let original = span_id(trace, redelivery.index, SpanRole::Producer);
                let consumer_id = redelivery_span_id(trace, &original, redelivery.retry_count);
                let start = redelivery.started_at.min(producer.start - ms(1.0));
                let end = producer.end + ms(0.3);
                let topic = self.messages[redelivery.index].topic;
                let service = consuming_service(topic);
                let mut attributes = attributes([
                    ("messaging.system", "kafka".into()),
                    ("messaging.destination.name", topic.into()),
                    ("messaging.operation.type", "process".into()),
                    ("messaging.operation.name", "process".into()),
                    (
                        "messaging.consumer.group.name",
                        consumer_group(service).into(),
                    ),
                    ("x-retry-of", redelivery.dead_letter_id.clone().into()),
                    ("x-retry-count", i64::from(redelivery.retry_count).into()),
                ]);
                attributes.extend(self.saga_attributes(facts.step.as_deref()));
                spans.push(self.span(
                    consumer_id.clone(),
                    Some(original),
                    service,
                    format!("{topic} process"),
                    SimulatedSpanKind::Consumer,
                    (start, end),
                    attributes,
                ));
                consumer_id
            }
        };
        producer.parent_span_id = Some(parent);
        spans.push(producer);
        spans
    }

    /// The consumer span of message `consumed`, in the service that
    /// publishes next (`next`).
    fn consumer(
        &self,
        consumed: &Produced,
        next: &Facts,
        consumer_id: String,
        window: (DateTime<Utc>, DateTime<Utc>),
    ) -> SimulatedSpan {
        let consumed_facts = self.facts(consumed.index);
        let mut attributes = self.messaging_attributes(consumed, "process");
        attributes.push((
            "messaging.consumer.group.name".into(),
            consumer_group(next.publisher).into(),
        ));
        attributes.push((
            "saga.event_type".into(),
            consumed_facts.event.clone().into(),
        ));
        attributes.extend(self.saga_attributes(consumed_facts.step.as_deref()));
        let mut span = self.span(
            consumer_id,
            Some(span_id(self.trace_id, consumed.index, SpanRole::Producer)),
            next.publisher,
            format!("{} process", self.messages[consumed.index].topic),
            SimulatedSpanKind::Consumer,
            window,
            attributes,
        );
        if let Some(failure) = &next.failure {
            // The step failed in this processing (its failing call carries
            // the exception); the service reported it and went on.
            span.error = Some(failure.clone());
        }
        span
    }

    /// The spans of the last message's processing, once the trace has no
    /// more messages: the notification service (the search indexer for a
    /// product event) consumes it.
    pub fn on_end(&self, last: &Produced) -> Vec<SimulatedSpan> {
        let (trace, index) = (self.trace_id, last.index);
        let service = if self.saga.is_some() {
            "notification-service"
        } else {
            "search-indexer"
        };
        let relay = relay_delay_ms(trace, index) as f64;
        let start = last.at + ms(relay.clamp(2.5, 400.0));
        let end = start + ms(3.0 + 20.0 * unit(trace, index, "end"));
        let consumer_id = span_id(trace, index, SpanRole::Consumer);
        let facts = self.facts(index);
        let mut attributes = self.messaging_attributes(last, "process");
        attributes.push((
            "messaging.consumer.group.name".into(),
            consumer_group(service).into(),
        ));
        attributes.push(("saga.event_type".into(), facts.event.clone().into()));
        attributes.extend(self.saga_attributes(facts.step.as_deref()));
        let consumer = self.span(
            consumer_id.clone(),
            Some(span_id(trace, index, SpanRole::Producer)),
            service,
            format!("{} process", self.messages[index].topic),
            SimulatedSpanKind::Consumer,
            (start, end),
            attributes,
        );
        let work = if self.saga.is_some() {
            Work::sql(
                "INSERT",
                "notifications",
                "INSERT INTO notifications (id, recipient, template) VALUES ($1, $2, $3)",
            )
        } else {
            Work::http(
                "PUT",
                "search.internal",
                "/products/_doc",
                "elasticsearch",
                200,
            )
        };
        let work_start = start + ms(0.3);
        let work_end = end - ms(0.3);
        let mut attributes = work.attributes;
        attributes.extend(self.saga_attributes(None));
        let work = self.span(
            span_id(trace, index, SpanRole::FinalWork),
            Some(consumer_id),
            service,
            work.name,
            work.kind,
            (work_start, work_end.max(work_start)),
            attributes,
        );
        vec![consumer, work]
    }

    /// The spans of a service that gives up on message `dead` and
    /// dead-letters it as `letter`: an error consumer span with the
    /// exception, and the dead letter's publish inside it.
    pub fn on_dead_letter(
        &self,
        dead: &Produced,
        seen_at: DateTime<Utc>,
        letter: &DeadLetterMessage,
    ) -> Vec<SimulatedSpan> {
        let (trace, index) = (self.trace_id, dead.index);
        let failed_at = DateTime::from_timestamp_millis(letter.timestamp_ms).unwrap_or(seen_at);
        let start = seen_at.max(dead.at + ms(2.5));
        let end = failed_at.max(start + ms(3.0)) + ms(1.5);
        let consumer_id = span_id(trace, index, SpanRole::Consumer);
        let facts = self.facts(index);
        let header = |name: &str| {
            letter
                .headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        let service = header("kafka_dlt-original-consumer-group")
            .and_then(|group| group.strip_prefix("shop-").map(str::to_string))
            .unwrap_or_else(|| consuming_service(self.messages[index].topic).to_string());
        let mut attributes = self.messaging_attributes(dead, "process");
        attributes.push((
            "messaging.consumer.group.name".into(),
            consumer_group(&service).into(),
        ));
        attributes.push(("saga.event_type".into(), facts.event.clone().into()));
        attributes.extend(self.saga_attributes(facts.step.as_deref()));
        let mut consumer = self.span(
            consumer_id.clone(),
            Some(span_id(trace, index, SpanRole::Producer)),
            &service,
            format!("{} process", self.messages[index].topic),
            SimulatedSpanKind::Consumer,
            (start, end),
            attributes,
        );
        let exception_type = header("kafka_dlt-exception-cause-fqcn")
            .or_else(|| header("kafka_dlt-exception-fqcn"))
            .unwrap_or_else(|| "java.lang.RuntimeException".into());
        let message = header("kafka_dlt-exception-message").unwrap_or_default();
        fail(&mut consumer, &exception_type, &message, end - ms(1.2));
        let publish_start = end - ms(1.0);
        let mut publish_attributes = self::attributes([
            ("messaging.system", "kafka".into()),
            ("messaging.destination.name", letter.topic.clone().into()),
            ("messaging.operation.type", "send".into()),
            ("messaging.operation.name", "publish".into()),
            ("messaging.kafka.message.key", letter.key.clone().into()),
        ]);
        publish_attributes.extend(self.saga_attributes(facts.step.as_deref()));
        let publish = self.span(
            span_id(trace, index, SpanRole::DeadLetterPublish),
            Some(consumer_id),
            &service,
            format!("{} publish", letter.topic),
            SimulatedSpanKind::Producer,
            (publish_start, end - ms(0.2)),
            publish_attributes,
        );
        vec![consumer, publish]
    }

    fn root_route(&self) -> (&'static str, &'static str) {
        match self.kind {
            TraceKind::Order | TraceKind::OrderChoreography => ("POST", "/orders"),
            TraceKind::ChatMessage => ("POST", "/rooms/{room_id}/messages"),
            TraceKind::ScanReward => ("POST", "/images"),
            TraceKind::Product => ("PUT", "/products/{product_id}"),
        }
    }

    /// The index of the last message before `before` that is an event (the
    /// one a re-drive of a dead letter stands for).
    pub fn last_event_before(&self, before: usize) -> Option<usize> {
        self.messages[..before.min(self.messages.len())]
            .iter()
            .rposition(PlannedMessage::is_event)
    }
}

/// Marks `span` failed: status error and an `exception` event at `at`.
fn fail(span: &mut SimulatedSpan, exception_type: &str, message: &str, at: DateTime<Utc>) {
    span.error = Some(message.to_string());
    span.events.push(SimulatedSpanEvent {
        name: "exception".into(),
        at: at.clamp(span.start, span.end),
        attributes: attributes([
            ("exception.type", exception_type.into()),
            ("exception.message", message.into()),
        ]),
    });
}

/// The id of the consumer span of re-drive `retry_count` of the message
/// whose producer span is `redelivered_span_id`.
pub fn redelivery_span_id(trace_id: &str, redelivered_span_id: &str, retry_count: u32) -> String {
    hashed_span_id(&(trace_id, redelivered_span_id, retry_count, "redelivery"))
}

/// How the retry consumer's processing of a re-driven copy went, when no
/// saga resumes under it.
pub enum RedeliveryEnd<'a> {
    /// Processed; nothing waited on it.
    Succeeded(DateTime<Utc>),
    /// Failed again and dead-lettered anew.
    FailedAgain(&'a DeadLetterMessage),
}

/// The spans of a re-driven copy of a message of `topic` (whose producer
/// span was `parent_span_id`) processed by the retry consumer from
/// `started_at`: a consumer span, an error with the dead letter's publish
/// when it failed again.
pub fn redelivery_spans(
    trace_id: &str,
    parent_span_id: &str,
    topic: &str,
    redelivery: &Redelivery,
    ending: RedeliveryEnd<'_>,
) -> Vec<SimulatedSpan> {
    let service = consuming_service(topic);
    let consumer_id = redelivery_span_id(trace_id, parent_span_id, redelivery.retry_count);
    let start = redelivery.started_at;
    let end = match &ending {
        RedeliveryEnd::Succeeded(at) => *at,
        RedeliveryEnd::FailedAgain(letter) => {
            DateTime::from_timestamp_millis(letter.timestamp_ms).unwrap_or(start)
        }
    }
    .max(start + ms(2.0))
        + ms(1.5);
    let mut consumer = SimulatedSpan {
        trace_id: trace_id.to_string(),
        span_id: consumer_id.clone(),
        parent_span_id: Some(parent_span_id.to_string()),
        service: service.to_string(),
        name: format!("{topic} process"),
        kind: SimulatedSpanKind::Consumer,
        start,
        end,
        attributes: attributes([
            ("messaging.system", "kafka".into()),
            ("messaging.destination.name", topic.into()),
            ("messaging.operation.type", "process".into()),
            ("messaging.operation.name", "process".into()),
            (
                "messaging.consumer.group.name",
                consumer_group(service).into(),
            ),
            ("x-retry-of", redelivery.dead_letter_id.clone().into()),
            ("x-retry-count", i64::from(redelivery.retry_count).into()),
        ]),
        events: Vec::new(),
        error: None,
    };
    let RedeliveryEnd::FailedAgain(letter) = ending else {
        return vec![consumer];
    };
    let header = |name: &str| {
        letter
            .headers
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let exception_type = header("kafka_dlt-exception-cause-fqcn")
        .or_else(|| header("kafka_dlt-exception-fqcn"))
        .unwrap_or_else(|| "java.lang.RuntimeException".into());
    let message = header("kafka_dlt-exception-message").unwrap_or_default();
    fail(&mut consumer, &exception_type, &message, end - ms(1.2));
    let publish = SimulatedSpan {
        trace_id: trace_id.to_string(),
        span_id: hashed_span_id(&(trace_id, &consumer_id, "dead-letter")),
        parent_span_id: Some(consumer_id),
        service: service.to_string(),
        name: format!("{} publish", letter.topic),
        kind: SimulatedSpanKind::Producer,
        start: end - ms(1.0),
        end: end - ms(0.2),
        attributes: attributes([
            ("messaging.system", "kafka".into()),
            ("messaging.destination.name", letter.topic.clone().into()),
            ("messaging.operation.type", "send".into()),
            ("messaging.operation.name", "publish".into()),
        ]),
        events: Vec::new(),
        error: None,
    };
    vec![consumer, publish]
}

/// Every span of `plan` played at once with event times `base + delay`
/// (no dead letters): what its services produce when it runs to its end.
pub fn spans_of_saga(plan: &SagaPlan, base: DateTime<Utc>) -> Vec<SimulatedSpan> {
    let Some(trace) = SagaTrace::of(&plan.trace_id, &plan.messages) else {
        return Vec::new();
    };
    let mut spans = Vec::new();
    let mut previous: Option<Produced> = None;
    for (index, message) in plan.messages.iter().enumerate() {
        if !message.is_event() {
            continue;
        }
        let produced = Produced {
            index,
            at: base + Duration::milliseconds(message.delay_ms as i64),
            partition: None,
            offset: None,
        };
        let before = match &previous {
            Some(previous) => Before::Previous(previous),
            None => Before::Start,
        };
        spans.extend(trace.on_publish(&produced, before));
        previous = Some(produced);
    }
    if let Some(last) = &previous {
        spans.extend(trace.on_end(last));
    }
    spans
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chrono::TimeZone;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::dead_letters::{maybe_dead_letter, OriginalDelivery};
    use crate::saga_plans::{PlannedOutcome, SagaKind};
    use crate::span_shapes::parse_traceparent;

    fn base() -> DateTime<Utc> {
        Utc.timestamp_millis_opt(1_763_719_200_123).unwrap()
    }

    const OUTCOMES: [(SagaKind, PlannedOutcome); 11] = [
        (SagaKind::Order, PlannedOutcome::Completed),
        (SagaKind::Order, PlannedOutcome::Failed),
        (SagaKind::Order, PlannedOutcome::Compensated),
        (SagaKind::Order, PlannedOutcome::TimedOut),
        (SagaKind::ChatMessage, PlannedOutcome::Completed),
        (SagaKind::ChatMessage, PlannedOutcome::CompensationFailed),
        (SagaKind::ScanReward, PlannedOutcome::Completed),
        (SagaKind::ScanReward, PlannedOutcome::Compensated),
        (SagaKind::ScanReward, PlannedOutcome::Stalled),
        (SagaKind::OrderChoreography, PlannedOutcome::Completed),
        (SagaKind::OrderChoreography, PlannedOutcome::Compensated),
    ];

    /// Plans of every kind and outcome, and random ones.
    fn plans(seed: u64) -> Vec<SagaPlan> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut plans: Vec<SagaPlan> = OUTCOMES
            .iter()
            .map(|(kind, outcome)| SagaPlan::with_outcome(*kind, *outcome, &mut rng))
            .collect();
        plans.extend((0..60).map(|_| SagaPlan::random(SagaKind::random(&mut rng), &mut rng)));
        plans
    }

    fn by_id(spans: &[SimulatedSpan]) -> HashMap<&str, &SimulatedSpan> {
        let map: HashMap<&str, &SimulatedSpan> =
            spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
        assert_eq!(map.len(), spans.len(), "span ids are unique");
        map
    }

    /// One root; every parent exists; a consumer span starts after the
    /// publish it processes began, every other span lies within its
    /// parent; events lie within their span; all carry the saga.
    fn assert_well_formed(plan: &SagaPlan, spans: &[SimulatedSpan]) {
        let ids = by_id(spans);
        let roots: Vec<&SimulatedSpan> = spans
            .iter()
            .filter(|s| s.parent_span_id.is_none())
            .collect();
        assert_eq!(roots.len(), 1, "{:?}", plan.kind);
        assert_eq!(roots[0].kind, SimulatedSpanKind::Server);
        for span in spans {
            assert_eq!(span.trace_id, plan.trace_id);
            assert!(span.start <= span.end, "{}", span.name);
            assert_eq!(span.attribute("saga.id"), Some(plan.saga_id.as_str()));
            assert!(span.attribute("saga.type").is_some());
            for event in &span.events {
                assert!(span.start <= event.at && event.at <= span.end);
            }
            let Some(parent) = &span.parent_span_id else {
                continue;
            };
            let parent = ids
                .get(parent.as_str())
                .unwrap_or_else(|| panic!("parent of {} missing", span.name));
            if span.kind == SimulatedSpanKind::Consumer {
                assert_eq!(parent.kind, SimulatedSpanKind::Producer, "{}", span.name);
                assert!(parent.start <= span.start, "{}", span.name);
            } else {
                assert!(
                    parent.start <= span.start && span.end <= parent.end,
                    "{} ({} – {}) outside {} ({} – {})",
                    span.name,
                    span.start,
                    span.end,
                    parent.name,
                    parent.start,
                    parent.end
                );
            }
        }
    }

    #[test]
    fn spans_of_every_saga_are_well_formed() {
        for plan in plans(21) {
            let spans = spans_of_saga(&plan, base());
            assert_well_formed(&plan, &spans);
            // A producer span per event, and consumer spans for each.
            let producers = spans
                .iter()
                .filter(|s| s.kind == SimulatedSpanKind::Producer)
                .count();
            assert_eq!(producers, plan.event_count());
            let consumers = spans
                .iter()
                .filter(|s| s.kind == SimulatedSpanKind::Consumer)
                .count();
            assert_eq!(consumers, plan.event_count());
        }
    }

    /// Each event's traceparent names its producer span, in the right
    /// service's topic, and its event time lies inside that span.
    #[test]
    fn every_event_time_lies_inside_the_span_its_traceparent_names() {
        let mut rng = StdRng::seed_from_u64(3);
        for plan in plans(22) {
            let spans = spans_of_saga(&plan, base());
            let ids = by_id(&spans);
            for (index, message) in plan.messages.iter().enumerate() {
                if !message.is_event() {
                    continue;
                }
                let at = base() + Duration::milliseconds(message.delay_ms as i64);
                let rendered = plan.render(index, at, &mut rng);
                let traceparent = rendered
                    .headers
                    .iter()
                    .find(|(k, _)| k == "traceparent" || k == "ce_traceparent")
                    .map(|(_, v)| v.as_str())
                    .unwrap();
                let (trace_id, span_id) = parse_traceparent(traceparent).unwrap();
                assert_eq!(trace_id, plan.trace_id);
                let span = ids[span_id.as_str()];
                assert_eq!(span.kind, SimulatedSpanKind::Producer);
                assert_eq!(span.name, format!("{} publish", message.topic));
                assert_eq!(
                    span.attribute("messaging.destination.name"),
                    Some(message.topic)
                );
                assert!(span.start <= at && at <= span.end, "{}", span.name);
            }
        }
    }

    /// The span whose call failed carries status error, an `exception`
    /// event and the failing step.
    #[test]
    fn the_failing_step_has_an_error_span_with_its_exception() {
        let mut rng = StdRng::seed_from_u64(23);
        for (kind, outcome, steps) in [
            (
                SagaKind::Order,
                PlannedOutcome::Failed,
                &["ReserveStock"][..],
            ),
            (
                SagaKind::Order,
                PlannedOutcome::Compensated,
                &["AuthorizePayment"],
            ),
            (
                SagaKind::Order,
                PlannedOutcome::TimedOut,
                &["AuthorizePayment"],
            ),
            (
                SagaKind::ChatMessage,
                PlannedOutcome::CompensationFailed,
                &["PublishEventToOutbox", "SaveMessageToMongo"],
            ),
            (
                SagaKind::ScanReward,
                PlannedOutcome::Compensated,
                &["AcquireCharacter"],
            ),
            (
                SagaKind::OrderChoreography,
                PlannedOutcome::Compensated,
                &["AuthorizePayment"],
            ),
        ] {
            let plan = SagaPlan::with_outcome(kind, outcome, &mut rng);
            let spans = spans_of_saga(&plan, base());
            let mut failed: Vec<&str> = spans
                .iter()
                .filter(|s| s.error.is_some() && !s.events.is_empty())
                .map(|s| {
                    let exception = &s.events[0];
                    assert_eq!(exception.name, "exception");
                    let keys: Vec<&str> = exception
                        .attributes
                        .iter()
                        .map(|(k, _)| k.as_str())
                        .collect();
                    assert_eq!(keys, ["exception.type", "exception.message"]);
                    s.attribute("saga.step").unwrap()
                })
                .collect();
            failed.sort_unstable();
            let mut expected = steps.to_vec();
            expected.sort_unstable();
            assert_eq!(failed, expected, "{kind:?} {outcome:?}");
        }
        // A saga that completes has no error anywhere.
        let plan = SagaPlan::with_outcome(SagaKind::Order, PlannedOutcome::Completed, &mut rng);
        assert!(spans_of_saga(&plan, base())
            .iter()
            .all(|s| s.error.is_none()));
    }

    #[test]
    fn compensation_steps_have_spans_of_their_own() {
        let mut rng = StdRng::seed_from_u64(24);
        // One compensation in ten skips the release (an incomplete
        // compensation): take one that released the stock.
        let plan = std::iter::repeat_with(|| {
            SagaPlan::with_outcome(SagaKind::Order, PlannedOutcome::Compensated, &mut rng)
        })
        .find(|plan| {
            plan.messages.iter().any(
                |m| matches!(&m.body, Body::SagaState(state) if state["step"] == "ReleaseStock"),
            )
        })
        .unwrap();
        let spans = spans_of_saga(&plan, base());
        let release: Vec<(&str, SimulatedSpanKind)> = spans
            .iter()
            .filter(|s| s.attribute("saga.step") == Some("ReleaseStock"))
            .map(|s| (s.service.as_str(), s.kind))
            .collect();
        assert!(release.contains(&("inventory-service", SimulatedSpanKind::Client)));
        assert!(release.contains(&("inventory-service", SimulatedSpanKind::Producer)));
    }

    /// A dead-lettered stock event: an error consumer span in the payment
    /// service with the dead letter's exception, and the DLT publish in it;
    /// its re-drive resumes the saga under a consumer span of its own.
    #[test]
    fn dead_letters_and_their_redrives_have_consumer_spans() {
        let mut rng = StdRng::seed_from_u64(25);
        let plan = SagaPlan::with_outcome(
            SagaKind::OrderChoreography,
            PlannedOutcome::Completed,
            &mut rng,
        );
        let trace = SagaTrace::of(&plan.trace_id, &plan.messages).unwrap();
        let stock = plan
            .messages
            .iter()
            .position(
                |m| matches!(&m.body, Body::CdcInsert { row, .. } if row.aggregate_type == "Stock"),
            )
            .unwrap();
        let at = base() + Duration::milliseconds(plan.messages[stock].delay_ms as i64);
        let rendered = plan.render(stock, at, &mut rng);
        let delivered = OriginalDelivery {
            partition: 1,
            offset: 7,
            timestamp_ms: at.timestamp_millis() + 20,
        };
        let seen_at = at + Duration::milliseconds(20);
        let letter = maybe_dead_letter(
            &plan.messages[stock],
            &rendered,
            &delivered,
            seen_at,
            1.0,
            &mut rng,
        )
        .unwrap();
        let produced = Produced {
            index: stock,
            at,
            partition: Some(1),
            offset: Some(7),
        };
        let spans = trace.on_dead_letter(&produced, seen_at, &letter);
        let [consumer, publish] = &spans[..] else {
            panic!("{spans:?}");
        };
        assert_eq!(consumer.service, "payment-service");
        assert_eq!(consumer.kind, SimulatedSpanKind::Consumer);
        assert_eq!(
            consumer.parent_span_id.as_deref(),
            Some(span_id(&plan.trace_id, stock, SpanRole::Producer).as_str())
        );
        assert!(consumer.error.is_some());
        let fqcn = letter
            .headers
            .iter()
            .find(|(k, _)| k == "kafka_dlt-exception-cause-fqcn")
            .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
            .unwrap();
        assert_eq!(
            consumer.events[0].attributes[0],
            ("exception.type".to_string(), AttributeValue::Text(fqcn))
        );
        assert_eq!(
            consumer.attribute("messaging.destination.partition.id"),
            Some("1")
        );
        assert_eq!(publish.name, "dbserver1.shop.outbox.DLT publish");
        assert_eq!(
            publish.parent_span_id.as_deref(),
            Some(consumer.span_id.as_str())
        );
        assert!(consumer.start <= publish.start && publish.end <= consumer.end);

        let next = (stock + 1..plan.messages.len())
            .find(|i| plan.messages[*i].is_event())
            .unwrap();
        let redelivery = Redelivery {
            index: stock,
            started_at: base() + Duration::minutes(5),
            retry_count: 1,
            dead_letter_id: "dbserver1.shop.outbox.DLT/0/3".into(),
        };
        let resumed = Produced {
            index: next,
            at: redelivery.started_at + Duration::milliseconds(300),
            partition: None,
            offset: None,
        };
        let spans = trace.on_publish(&resumed, Before::Redelivered(&redelivery));
        let [retry, producer] = &spans[..] else {
            panic!("{spans:?}");
        };
        assert_eq!(retry.kind, SimulatedSpanKind::Consumer);
        assert_eq!(
            retry.attribute("x-retry-of"),
            Some("dbserver1.shop.outbox.DLT/0/3")
        );
        assert_eq!(retry.parent_span_id, consumer.parent_span_id);
        assert_eq!(
            producer.parent_span_id.as_deref(),
            Some(retry.span_id.as_str())
        );
        assert!(retry.start <= producer.start && producer.end <= retry.end);
    }

    #[test]
    fn product_events_are_traced_and_poison_is_not() {
        let mut rng = StdRng::seed_from_u64(26);
        let product = crate::product_events::product_event(&mut rng);
        let trace = SagaTrace::of(&product.trace_id, &product.messages).unwrap();
        let produced = Produced {
            index: 0,
            at: base(),
            partition: None,
            offset: None,
        };
        let spans = trace.on_publish(&produced, Before::Start);
        assert_eq!(spans[0].service, "catalog-service");
        assert!(spans.iter().all(|s| s.attribute("saga.id").is_none()));
        let poison = crate::poison::poison(&mut rng);
        assert!(SagaTrace::of(&poison.trace_id, &poison.messages).is_none());
    }
}
