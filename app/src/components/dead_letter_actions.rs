//! The operators' forms on one dead letter: retry (re-drive) and discard.
//! Plain HTML forms posting to the server's form endpoints, which answer
//! with a redirect to `return_to` (plus `?notice=` or `?error=`), so they
//! work without JavaScript. Each carries the session's CSRF token; a retry
//! form also a random idempotency key made when the page was rendered, so
//! submitting it twice produces once.

use leptos::prelude::*;
use sagascope_model::DeadLetterSummary;

use crate::components::dead_letter::CsrfField;

pub const RETRY_ACTION: &str = "/dlq/actions/retry";
pub const DISCARD_ACTION: &str = "/dlq/actions/discard";
pub const BULK_RETRY_ACTION: &str = "/dlq/actions/bulk-retry";
pub const CANCEL_JOB_ACTION: &str = "/dlq/actions/cancel-job";

/// What a retry of `letter` does, in words.
pub fn retry_statement(letter: &DeadLetterSummary) -> String {
    let target = letter
        .original_topic
        .clone()
        .unwrap_or_else(|| "its original topic".to_string());
    format!(
        "Produces this 1 message again to {target}: key, value and headers byte-exact, without the DLQ's failure headers, with x-retry-of: {} and x-retry-count: {}.",
        letter.id,
        letter.retry_count + 1
    )
}

/// The one-line form of [`retry_statement`] (the saga timeline).
pub fn short_statement(letter: &DeadLetterSummary) -> String {
    match &letter.original_topic {
        Some(topic) => format!("re-drives this 1 message to {topic}"),
        None => "re-drives this 1 message to its original topic".to_string(),
    }
}

/// Retry one dead letter: a required reason and the button.
#[component]
pub fn RetryForm(
    letter: DeadLetterSummary,
    csrf_token: String,
    idempotency_key: String,
    return_to: String,
    /// Button text.
    #[prop(optional)]
    label: Option<&'static str>,
    /// One line (the saga timeline) instead of a block with the statement.
    #[prop(optional)]
    inline: bool,
    /// `data-test` of the form.
    #[prop(optional)]
    test: Option<&'static str>,
) -> impl IntoView {
    let statement = retry_statement(&letter);
    let label = label.unwrap_or("Retry this dead letter");
    view! {
        <form
            method="post"
            action=RETRY_ACTION
            class={if inline { "action-form inline" } else { "action-form" }}
            data-test=test.unwrap_or("retry-form")
            data-id=letter.id.clone()
        >
            <CsrfField token=csrf_token/>
            <input type="hidden" name="id" value=letter.id.clone()/>
            <input type="hidden" name="idempotency_key" value=idempotency_key/>
            <input type="hidden" name="return_to" value=return_to/>
            {(!inline).then(|| view! { <p class="action-statement">{statement.clone()}</p> })}
            {inline.then(|| view! {
                <span class="action-statement small" title=statement.clone()>{short_statement(&letter)}</span>
            })}
            <label class="field field-grow">
                <span class="field-label">"Reason (for the audit log)"</span>
                <input
                    type="text"
                    name="reason"
                    required
                    minlength="3"
                    maxlength="500"
                    placeholder="why retry now, e.g. payment gateway back up"
                    data-test="retry-reason"
                />
            </label>
            <button type="submit" class="button primary" data-test="retry-submit" title=statement>
                <span aria-hidden="true">"↻ "</span>
                {label}
            </button>
        </form>
    }
}

/// Discard one dead letter: it will not be re-driven (kept, not deleted).
#[component]
pub fn DiscardForm(
    letter: DeadLetterSummary,
    csrf_token: String,
    return_to: String,
) -> impl IntoView {
    view! {
        <form method="post" action=DISCARD_ACTION class="action-form discard" data-test="discard-form" data-id=letter.id.clone()>
            <CsrfField token=csrf_token/>
            <input type="hidden" name="id" value=letter.id.clone()/>
            <input type="hidden" name="return_to" value=return_to/>
            <p class="action-statement">
                "Marks this 1 dead letter discarded: nothing is produced, it stops counting in the DLQ depth, and it can no longer be retried. The message itself stays visible here."
            </p>
            <label class="field field-grow">
                <span class="field-label">"Reason (for the audit log)"</span>
                <input
                    type="text"
                    name="reason"
                    required
                    minlength="3"
                    maxlength="500"
                    placeholder="why it must not be processed, e.g. duplicate order"
                    data-test="discard-reason"
                />
            </label>
            <button type="submit" class="button danger" data-test="discard-submit">
                <span aria-hidden="true">"⊘ "</span>
                "Discard this dead letter"
            </button>
        </form>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_names_target_and_headers() {
        let letter: DeadLetterSummary = serde_json::from_value(serde_json::json!({
            "id": "payments.DLT/0/7", "dlq_topic": "payments.DLT", "dlq_partition": 0,
            "dlq_offset": 7, "dead_lettered_at": "2026-11-21T10:00:00Z",
            "ingested_at": "2026-11-21T10:00:00Z", "format": "spring",
            "original_topic": "payments", "original_partition": 1, "original_offset": 3,
            "exception_class": null, "exception_message": null, "failure_group": "-|-|-",
            "saga_id": null, "saga_type": null, "declared_saga_id": null, "trace_id": null,
            "event_id": null, "event_type": null, "state": "new",
            "state_changed_at": "2026-11-21T10:00:00Z", "state_reason": null, "retry_of": null,
            "retry_count": 0, "failed_again_of": null
        }))
        .unwrap();
        let text = retry_statement(&letter);
        assert!(text.contains("1 message again to payments"), "{text}");
        assert!(text.contains("x-retry-of: payments.DLT/0/7"), "{text}");
        assert!(text.contains("x-retry-count: 1"), "{text}");

        #[cfg(feature = "ssr")]
        {
            let owner = Owner::new();
            let html = owner.with(|| {
                view! {
                    <RetryForm
                        letter=letter.clone()
                        csrf_token="tok\"en".to_string()
                        idempotency_key="key-1".to_string()
                        return_to="/sagas/s1".to_string()
                    />
                }
                .to_html()
            });
            for needle in [
                "action=\"/dlq/actions/retry\"",
                "method=\"post\"",
                "name=\"csrf_token\" value=\"tok&quot;en\"",
                "name=\"idempotency_key\" value=\"key-1\"",
                "name=\"return_to\" value=\"/sagas/s1\"",
                "name=\"id\" value=\"payments.DLT/0/7\"",
                "name=\"reason\" required",
            ] {
                assert!(html.contains(needle), "{needle} in {html}");
            }
        }
    }
}
