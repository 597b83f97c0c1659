//! The orchestrated order saga (seed 004): reserve stock, authorise the
//! payment, complete; the orchestrator reports each transition as a saga
//! state event. Now and then its compensation forgets to release the stock
//! (an incomplete compensation).

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::json;

use super::orchestrated::Orchestrated;
use super::{PlannedOutcome, SagaKind, SagaPlan};
use crate::ids::hex_id;

pub fn plan(rng: &mut StdRng) -> SagaPlan {
    let instance = format!("ord-{}", hex_id(rng, 6));
    let order_id = format!("O-{}", rng.random_range(100_000..999_999));
    let sku = format!("SKU-{}", rng.random_range(10..99));
    let mut saga = Orchestrated {
        saga_type: "order",
        definition: Some("order_fulfillment"),
        instance: instance.clone(),
        context: json!({"order_id": order_id, "customer_id": format!("C-{}", rng.random_range(1000..9999)), "sku": sku, "amount": rng.random_range(5..500)}),
        clock_ms: 0,
        messages: Vec::new(),
    };
    saga.emit(rng, "STARTED", None, None);
    let roll: f64 = rng.random();
    let outcome = if roll < 0.05 {
        saga.emit(rng, "RUNNING", Some("ReserveStock"), None);
        saga.emit(
            rng,
            "STEP_FAILED",
            Some("ReserveStock"),
            Some(&format!("insufficient stock for {sku}")),
        );
        saga.emit(
            rng,
            "FAILED",
            Some("ReserveStock"),
            Some("stock reservation failed; nothing to compensate"),
        );
        PlannedOutcome::Failed
    } else {
        saga.step_ok(rng, "ReserveStock");
        saga.emit(rng, "RUNNING", Some("AuthorizePayment"), None);
        if roll < 0.15 {
            saga.emit(
                rng,
                "STEP_FAILED",
                Some("AuthorizePayment"),
                Some("card declined: insufficient funds"),
            );
            saga.emit(rng, "COMPENSATION_STARTED", None, None);
            // One compensation in ten (1 % of orders) skips the stock
            // release and still reports COMPENSATED: the "wrong but green"
            // saga that sagascope flags as an incomplete compensation. Cut
            // from the same roll, so other plans draw as before.
            if roll < 0.14 {
                saga.emit(rng, "COMPENSATING_STEP", Some("ReleaseStock"), None);
                saga.emit(rng, "STEP_COMPENSATED", Some("ReleaseStock"), None);
            }
            saga.emit(rng, "COMPENSATED", None, None);
            PlannedOutcome::Compensated
        } else if roll < 0.18 {
            // The orchestrator's timeout sweep gives up on the payment reply.
            saga.clock_ms += 3_000;
            saga.emit(
                rng,
                "TIMED_OUT",
                Some("AuthorizePayment"),
                Some("payment service did not reply within 3 s"),
            );
            PlannedOutcome::TimedOut
        } else {
            saga.emit(rng, "STEP_COMPLETED", Some("AuthorizePayment"), None);
            saga.step_ok(rng, "Complete");
            saga.emit(rng, "COMPLETED", None, None);
            PlannedOutcome::Completed
        }
    };
    SagaPlan {
        kind: SagaKind::Order,
        saga_id: instance,
        trace_id: hex_id(rng, 16),
        outcome,
        messages: saga.messages,
    }
}
