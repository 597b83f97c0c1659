//! What an event's name says by itself, for events no rule names: the
//! defaults behind [`crate::rules::default_classification`] and the
//! projection's outcome of an undeclared choreography
//! ([`crate::SagaProjection::status`]).
//!
//! Names are read as lower-case words, whatever their style:
//! `PaymentFailed`, `payment_failed`, `PAYMENT-FAILED` and the last token of
//! a reverse-DNS CloudEvents type such as `com.acme.payment.failed` are all
//! `[payment, failed]`. Only whole trailing words count (`TimedOut` and
//! `timed_out` end in `timedout`; `Prefailed` does not end in `failed`).

/// A failure: `…Failed`, `…Rejected`, `…Declined`, `…Error`, `…TimedOut`…
const FAILURE_WORDS: [&str; 10] = [
    "failed", "failure", "rejected", "declined", "error", "errored", "timedout", "timeout",
    "aborted", "expired",
];
/// A compensation done: `StockReleased`, `PaymentRefunded`, `OrderCancelled`…
const COMPENSATED_WORDS: [&str; 8] = [
    "compensated",
    "released",
    "cancelled",
    "canceled",
    "refunded",
    "reverted",
    "rolledback",
    "undone",
];
/// The end of a request or command (`ReleaseStockRequested`,
/// `CancelOrderCommand`, `CompensationStarted`); a compensation request
/// when a word of the name is a compensation word.
const REQUEST_WORDS: [&str; 6] = [
    "requested",
    "request",
    "command",
    "cmd",
    "started",
    "initiated",
];
/// Word beginnings that make a request a compensation (`compensat` covers
/// compensate and compensation, `cancel` cancellation).
const COMPENSATION_STEMS: [&str; 7] = [
    "compensat",
    "release",
    "refund",
    "cancel",
    "revert",
    "rollback",
    "undo",
];
const SUCCESS_WORDS: [&str; 6] = [
    "completed",
    "succeeded",
    "acquired",
    "updated",
    "confirmed",
    "finished",
];
/// `{Type}Completed`, `{Type}Confirmed`, `{Type}Finished` end a saga of
/// that type.
const COMPLETION_WORDS: [&str; 3] = ["completed", "confirmed", "finished"];

/// What a name means by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameMeaning {
    Failure,
    /// A failure of a compensation (`ReleaseStockFailed`,
    /// `RefundPaymentDeclined`): the saga cannot undo what it did.
    CompensationFailure,
    /// A compensation asked for (a request or command).
    CompensationRequest,
    /// A compensation done.
    Compensated,
    Success,
    Plain,
}

/// Lower-case words of `name`: split at anything not alphanumeric and at
/// case changes (`HTTPErrorRaised` → http, error, raised).
pub fn words(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut words = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            continue;
        }
        if c.is_uppercase() && !current.is_empty() {
            let previous = chars[i - 1];
            let next_is_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if previous.is_lowercase()
                || previous.is_numeric()
                || (previous.is_uppercase() && next_is_lower)
            {
                words.push(std::mem::take(&mut current));
            }
        }
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// The non-blank dotted segments of a name (`com.acme.payment.failed`).
fn segments(event_type: &str) -> Vec<&str> {
    event_type
        .split('.')
        .filter(|s| !s.trim().is_empty())
        .collect()
}

/// The words of the last dotted segment, and of the one before it (the
/// entity in `com.acme.payment.failed`), if any.
fn last_two(event_type: &str) -> (Vec<String>, Vec<String>) {
    let segments = segments(event_type);
    match segments.as_slice() {
        [] => (words(event_type), Vec::new()),
        [only] => (words(only), Vec::new()),
        [.., previous, last] => (words(last), words(previous)),
    }
}

/// True when the name's last word, or its last two words joined
/// (`timed out`, `rolled back`), is one of `set`.
fn ends_in(words: &[String], set: &[&str]) -> bool {
    let n = words.len();
    let last = words.last().map(String::as_str);
    let last_two = (n >= 2).then(|| format!("{}{}", words[n - 2], words[n - 1]));
    last.is_some_and(|w| set.contains(&w)) || last_two.is_some_and(|w| set.contains(&w.as_str()))
}

fn has_compensation_word(words: &[String]) -> bool {
    let starts = |w: &str| COMPENSATION_STEMS.iter().any(|s| w.starts_with(s));
    words.iter().any(|w| starts(w))
        || words
            .windows(2)
            .any(|pair| starts(&format!("{}{}", pair[0], pair[1])))
}

/// What `event_type` (full, possibly namespaced) means by its name: by the
/// last dotted segment; a compensation request may name its compensation
/// in the segment before (`com.acme.stock.release.requested`).
pub fn meaning(event_type: &str) -> NameMeaning {
    let (last, previous) = last_two(event_type);
    if last.is_empty() {
        return NameMeaning::Plain;
    }
    if ends_in(&last, &FAILURE_WORDS) {
        if has_compensation_word(&last[..last.len() - 1]) {
            return NameMeaning::CompensationFailure;
        }
        return NameMeaning::Failure;
    }
    if ends_in(&last, &COMPENSATED_WORDS) {
        return NameMeaning::Compensated;
    }
    // The segment before names the compensation only when the last one is
    // a lone request word (`com.acme.stock.release.requested`), not in
    // `com.acme.refund.PaymentRequested`.
    let context: Vec<String> = if last.len() == 1 {
        previous.iter().chain(&last).cloned().collect()
    } else {
        last.clone()
    };
    let request =
        ends_in(&last, &REQUEST_WORDS) && has_compensation_word(&context[..context.len() - 1]);
    if request || last.first().is_some_and(|w| w == "compensate") {
        return NameMeaning::CompensationRequest;
    }
    if ends_in(&last, &SUCCESS_WORDS) {
        return NameMeaning::Success;
    }
    NameMeaning::Plain
}

/// The default step of an event: its last dotted segment, or the last two
/// when the last is a single word (`com.acme.payment.failed` →
/// `payment.failed`, not a step called `failed` shared by every failure).
pub fn default_step(event_type: &str) -> String {
    let segments = segments(event_type);
    match segments.as_slice() {
        [] => event_type.to_string(),
        [.., previous, last] if words(last).len() == 1 && event_type.ends_with(*last) => {
            format!("{previous}.{last}")
        }
        // A trailing dot (`trailing.`) keeps the whole name.
        _ if event_type.ends_with('.') => event_type.to_string(),
        [.., last] => last.to_string(),
    }
}

/// The saga entity a completion event ends (`OrderCompleted`,
/// `OrderConfirmed`, `com.acme.order.completed`, `order_finished` →
/// `order`), as lower-case letters and digits; None for other names.
pub fn completion_entity(event_type: &str) -> Option<String> {
    let (last, previous) = last_two(event_type);
    if !last
        .last()
        .is_some_and(|w| COMPLETION_WORDS.contains(&w.as_str()))
    {
        return None;
    }
    let entity = if last.len() >= 2 {
        last[..last.len() - 1].concat()
    } else {
        previous.concat()
    };
    (!entity.is_empty()).then_some(entity)
}

/// The entities a saga type answers to when matching completion events:
/// the type itself without separators and case (`Order`, `order` →
/// `order`), and, when the type is an event name (the fallback type of a
/// saga whose first event has no plain aggregate type), that event's
/// entity: `com.acme.order.created` and `OrderCreated` → `order` (a name
/// counts as an event name when it is dotted or its last word ends in
/// `ed`).
pub fn type_entities(saga_type: &str) -> Vec<String> {
    let mut entities = vec![words(saga_type).concat()];
    let (last, previous) = last_two(saga_type);
    let dotted = segments(saga_type).len() >= 2;
    let event_like = dotted || last.last().is_some_and(|w| w.ends_with("ed"));
    if event_like {
        let entity = if last.len() >= 2 {
            last[..last.len() - 1].concat()
        } else {
            previous.concat()
        };
        entities.push(entity);
    }
    entities.retain(|e| !e.is_empty());
    entities.dedup();
    entities
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_lower_case_words_in_any_style() {
        assert_eq!(words("PaymentFailed"), ["payment", "failed"]);
        assert_eq!(words("payment_timed_out"), ["payment", "timed", "out"]);
        assert_eq!(words("PAYMENT-FAILED"), ["payment", "failed"]);
        assert_eq!(words("HTTPErrorRaised"), ["http", "error", "raised"]);
        assert_eq!(words("Step2Failed"), ["step2", "failed"]);
        assert_eq!(words(""), Vec::<String>::new());
    }

    #[test]
    fn failures_compensations_and_successes_by_name() {
        use NameMeaning::*;
        for (name, expected) in [
            ("PaymentFailed", Failure),
            ("PaymentRejected", Failure),
            ("CardDeclined", Failure),
            ("ValidationError", Failure),
            ("PaymentTimedOut", Failure),
            ("ReservationExpired", Failure),
            ("CheckoutAborted", Failure),
            ("com.acme.payment.failed", Failure),
            ("com.acme.payment.DECLINED", Failure),
            ("com.acme.payment.timed_out", Failure),
            ("com.acme.payment.timedout", Failure),
            ("com.acme.payment.error", Failure),
            ("com.shop.payment.PaymentFailed", Failure),
            ("ReleaseStockFailed", CompensationFailure),
            ("RefundPaymentDeclined", CompensationFailure),
            ("com.acme.refund.PaymentRequested", Plain),
            ("com.acme.release.DeployStarted", Plain),
            ("Prefailed", Plain),
            ("StockReleased", Compensated),
            ("PaymentRefunded", Compensated),
            ("OrderCancelled", Compensated),
            ("OrderCanceled", Compensated),
            ("ChangeReverted", Compensated),
            ("TransferRolledBack", Compensated),
            ("ScanRewardCompensated", Compensated),
            ("com.acme.stock.released", Compensated),
            ("com.acme.transfer.rolled_back", Compensated),
            ("ReleaseStockRequested", CompensationRequest),
            ("RefundPaymentRequested", CompensationRequest),
            ("CancelOrderCommand", CompensationRequest),
            ("CompensatePayment", CompensationRequest),
            ("CompensationStarted", CompensationRequest),
            ("OrderCancellationRequested", CompensationRequest),
            ("TransferRollBackRequested", CompensationRequest),
            ("com.acme.stock.release.requested", CompensationRequest),
            ("com.acme.payment.refund_requested", CompensationRequest),
            ("PaymentRequested", Plain),
            ("com.acme.payment.requested", Plain),
            ("OrderCompleted", Success),
            ("OrderConfirmed", Success),
            ("ScanCompleted", Success),
            ("com.acme.order.completed", Success),
            ("OrderCreated", Plain),
            ("", Plain),
        ] {
            assert_eq!(meaning(name), expected, "{name}");
        }
    }

    #[test]
    fn default_steps_keep_a_lone_word_with_its_entity() {
        assert_eq!(default_step("PaymentFailed"), "PaymentFailed");
        assert_eq!(
            default_step("com.shop.payment.PaymentFailed"),
            "PaymentFailed"
        );
        assert_eq!(default_step("com.acme.payment.failed"), "payment.failed");
        assert_eq!(default_step("com.acme.payment.timed_out"), "timed_out");
        assert_eq!(default_step("failed"), "failed");
        assert_eq!(default_step("trailing."), "trailing.");
    }

    #[test]
    fn completion_events_name_the_entity_they_end() {
        assert_eq!(
            completion_entity("OrderCompleted").as_deref(),
            Some("order")
        );
        assert_eq!(
            completion_entity("OrderConfirmed").as_deref(),
            Some("order")
        );
        assert_eq!(
            completion_entity("com.acme.order.completed").as_deref(),
            Some("order")
        );
        assert_eq!(
            completion_entity("purchase_order_finished").as_deref(),
            Some("purchaseorder")
        );
        assert_eq!(completion_entity("Completed"), None);
        assert_eq!(completion_entity("OrderCreated"), None);
        assert_eq!(type_entities("Order"), ["order"]);
        assert_eq!(type_entities("purchase-order"), ["purchaseorder"]);
        assert_eq!(type_entities("OrderCreated"), ["ordercreated", "order"]);
        assert_eq!(
            type_entities("com.acme.order.created"),
            ["comacmeordercreated", "order"]
        );
    }
}
