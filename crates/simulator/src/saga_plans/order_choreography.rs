//! The order saga without an orchestrator, and without a saga id anywhere:
//! the order and stock services write their events to the shop database's
//! outbox table, which Debezium captures (CDC envelopes on
//! `dbserver1.shop.outbox`); the payment service publishes CloudEvents on
//! `payments.events`. Only the trace id ties the steps together (every
//! payload also names the `order_id`).
//!
//! OrderCreated → StockReserved → PaymentRequested → PaymentAuthorized →
//! OrderConfirmed; or PaymentFailed → ReleaseStockRequested → StockReleased;
//! or nothing after PaymentRequested (the payment service never answers).

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};

use super::{PlannedOutcome, SagaKind, SagaPlan};
use crate::ids::{hex_id, trace_id, uuid};
use crate::message::{Body, CloudEvent, CloudEventMode, OutboxRow, PlannedMessage};
use crate::topics::{PAYMENT_EVENTS_TOPIC, SHOP_OUTBOX_CDC_TOPIC};

/// Share of outbox rows the relay deletes once captured (Debezium then
/// sends a delete and a tombstone, which sagascope must only count).
const DELETED_ROWS: f64 = 0.35;
/// Share of change events sent with the JsonConverter's schema wrapper.
const WITH_SCHEMA: f64 = 0.5;

const PAYMENT_SOURCE: &str = "/shop/payment-service";
const PAYMENT_FAILURES: [&str; 2] = ["card declined", "insufficient funds"];

/// The messages of one instance, with a clock advancing step by step.
struct Saga {
    order_id: String,
    clock_ms: u64,
    messages: Vec<PlannedMessage>,
}

impl Saga {
    fn push(&mut self, delay_ms: u64, topic: &'static str, key: String, body: Body) {
        self.clock_ms += delay_ms;
        self.messages.push(PlannedMessage {
            delay_ms: self.clock_ms,
            topic,
            key,
            body,
        });
    }

    /// The order or stock service inserts an outbox row; sometimes the
    /// relay deletes it again a few ms after Debezium captured it.
    fn outbox(
        &mut self,
        rng: &mut StdRng,
        aggregate_type: &'static str,
        event_type: &str,
        payload: Value,
    ) {
        let row = OutboxRow {
            id: uuid(rng),
            aggregate_type,
            aggregate_id: self.order_id.clone(),
            event_type: event_type.to_string(),
            payload,
        };
        // Debezium keys change events by the table's primary key.
        let key = json!({ "id": row.id }).to_string();
        let with_schema = rng.random_bool(WITH_SCHEMA);
        let step_delay = rng.random_range(50..450);
        let body = Body::CdcInsert {
            row: row.clone(),
            with_schema,
        };
        self.push(step_delay, SHOP_OUTBOX_CDC_TOPIC, key.clone(), body);
        if rng.random_bool(DELETED_ROWS) {
            let inserted_ms_ago = rng.random_range(3..30);
            let body = Body::CdcDelete {
                row,
                with_schema,
                inserted_ms_ago,
            };
            self.push(inserted_ms_ago, SHOP_OUTBOX_CDC_TOPIC, key.clone(), body);
            self.push(1, SHOP_OUTBOX_CDC_TOPIC, key, Body::Tombstone);
        }
    }

    /// The payment service publishes a CloudEvent, in either content mode.
    fn payment(&mut self, rng: &mut StdRng, event_type: &str, data: Value) {
        let event = CloudEvent {
            id: uuid(rng),
            event_type: format!("com.shop.payment.{event_type}"),
            source: PAYMENT_SOURCE.to_string(),
            subject: self.order_id.clone(),
            data,
        };
        let mode = if rng.random_bool(0.5) {
            CloudEventMode::Binary
        } else {
            CloudEventMode::Structured
        };
        let delay = rng.random_range(80..600);
        let key = self.order_id.clone();
        self.push(
            delay,
            PAYMENT_EVENTS_TOPIC,
            key,
            Body::CloudEvent { event, mode },
        );
    }
}

pub fn plan(rng: &mut StdRng) -> SagaPlan {
    let trace_id = trace_id(rng);
    let order_id = format!("ord-{}", hex_id(rng, 3));
    let reservation_id = format!("res-{}", hex_id(rng, 4));
    let payment_id = format!("pay-{}", hex_id(rng, 4));
    let customer_id = format!("C-{}", rng.random_range(1000..9999));
    let qty: u32 = rng.random_range(1..4);
    let unit_cents: u32 = rng.random_range(199..9_999);
    let items = json!([{"sku": format!("SKU-{}", rng.random_range(10..99)), "qty": qty, "unit_price_cents": unit_cents}]);
    let amount = json!({"amount_cents": qty * unit_cents, "currency": "EUR"});
    let mut saga = Saga {
        order_id: order_id.clone(),
        clock_ms: 0,
        messages: Vec::new(),
    };
    saga.outbox(
        rng,
        "Order",
        "OrderCreated",
        json!({"order_id": order_id, "customer_id": customer_id, "items": items, "total": amount}),
    );
    saga.outbox(
        rng,
        "Stock",
        "StockReserved",
        json!({"order_id": order_id, "reservation_id": reservation_id, "warehouse": "ber-1", "items": items}),
    );
    saga.outbox(
        rng,
        "Order",
        "PaymentRequested",
        json!({"order_id": order_id, "customer_id": customer_id, "amount": amount}),
    );
    let roll: f64 = rng.random();
    let outcome = if roll < 0.03 {
        PlannedOutcome::Stalled
    } else if roll < 0.15 {
        let reason = PAYMENT_FAILURES[rng.random_range(0..PAYMENT_FAILURES.len())];
        saga.payment(
            rng,
            "PaymentFailed",
            json!({"order_id": order_id, "payment_id": payment_id, "amount": amount, "reason": reason}),
        );
        saga.outbox(
            rng,
            "Order",
            "ReleaseStockRequested",
            json!({"order_id": order_id, "reservation_id": reservation_id, "cause": format!("payment failed: {reason}")}),
        );
        saga.outbox(
            rng,
            "Stock",
            "StockReleased",
            json!({"order_id": order_id, "reservation_id": reservation_id, "items": items}),
        );
        PlannedOutcome::Compensated
    } else {
        let authorization_code = hex_id(rng, 3).to_uppercase();
        saga.payment(
            rng,
            "PaymentAuthorized",
            json!({"order_id": order_id, "payment_id": payment_id, "amount": amount, "authorization_code": authorization_code}),
        );
        saga.outbox(
            rng,
            "Order",
            "OrderConfirmed",
            json!({"order_id": order_id, "payment_id": payment_id}),
        );
        PlannedOutcome::Completed
    };
    SagaPlan {
        kind: SagaKind::OrderChoreography,
        saga_id: trace_id.clone(),
        trace_id,
        outcome,
        messages: saga.messages,
    }
}

#[cfg(test)]
mod tests;
