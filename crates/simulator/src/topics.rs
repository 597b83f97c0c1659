//! The topics the simulated services write to. The demo creates all of
//! them on its in-process cluster.

/// Orchestrators' saga state events (order, chat message).
pub const SAGA_STATE_TOPIC: &str = "saga.state";
/// Debezium outbox EventRouter topics of the scan-reward saga.
pub const IMAGE_TOPIC: &str = "events.image";
pub const SCAN_TOPIC: &str = "events.scan";
pub const CHARACTER_TOPIC: &str = "events.character";
pub const MY_TOPIC: &str = "events.my";
/// Debezium CDC of the shop database's `outbox` table (order and stock
/// services of the choreographed order saga), named `<server>.<schema>.<table>`.
pub const SHOP_OUTBOX_CDC_TOPIC: &str = "dbserver1.shop.outbox";
/// CloudEvents of the payment service (choreographed order saga).
pub const PAYMENT_EVENTS_TOPIC: &str = "payments.events";
/// Catalog product events: plain JSON, no saga at all.
pub const PRODUCT_EVENTS_TOPIC: &str = "catalog.products";

pub const ALL_TOPICS: [&str; 8] = [
    SAGA_STATE_TOPIC,
    IMAGE_TOPIC,
    SCAN_TOPIC,
    CHARACTER_TOPIC,
    MY_TOPIC,
    SHOP_OUTBOX_CDC_TOPIC,
    PAYMENT_EVENTS_TOPIC,
    PRODUCT_EVENTS_TOPIC,
];

/// The dead-letter topics the simulated services write to (Spring's
/// `<topic>.DLT`): payment events failed in the order service, stock events
/// in the payment service.
pub const DLT_TOPICS: [&str; 2] = ["payments.events.DLT", "dbserver1.shop.outbox.DLT"];

/// The topics whose messages the simulated services dead-letter, in the
/// order of [`DLT_TOPICS`]: where re-driven dead letters arrive.
pub const DEAD_LETTERED_TOPICS: [&str; 2] = [PAYMENT_EVENTS_TOPIC, SHOP_OUTBOX_CDC_TOPIC];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letter_topics_are_spring_names_of_simulated_topics() {
        for (dlt, topic) in DLT_TOPICS.iter().zip(DEAD_LETTERED_TOPICS) {
            assert_eq!(*dlt, crate::dead_letters::dlt_topic(topic));
        }
    }
}
