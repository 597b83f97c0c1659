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
