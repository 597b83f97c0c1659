//! Pretty JSON and headers, rendered as text nodes (escaped by Leptos; never
//! as HTML). The text content is exactly `serde_json`'s pretty form, so it
//! can be copied and parsed back.

use leptos::prelude::*;
use sagascope_model::Header;
use serde_json::Value;

/// Token classes of the highlighted JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Punct,
    Key,
    Str,
    Num,
    Lit,
}

impl Tok {
    fn class(self) -> &'static str {
        match self {
            Tok::Punct => "j-p",
            Tok::Key => "j-k",
            Tok::Str => "j-s",
            Tok::Num => "j-n",
            Tok::Lit => "j-l",
        }
    }
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("{text:?}"))
}

fn push(out: &mut Vec<(Tok, String)>, tok: Tok, text: impl Into<String>) {
    let text = text.into();
    // Merge runs of punctuation/whitespace into one node.
    if let Some((last, prev)) = out.last_mut() {
        if *last == tok && tok == Tok::Punct {
            prev.push_str(&text);
            return;
        }
    }
    out.push((tok, text));
}

fn tokens(value: &Value, indent: usize, out: &mut Vec<(Tok, String)>) {
    let pad = |n: usize| "  ".repeat(n);
    match value {
        Value::Null => push(out, Tok::Lit, "null"),
        Value::Bool(b) => push(out, Tok::Lit, b.to_string()),
        Value::Number(n) => push(out, Tok::Num, n.to_string()),
        Value::String(s) => push(out, Tok::Str, quoted(s)),
        Value::Array(items) if items.is_empty() => push(out, Tok::Punct, "[]"),
        Value::Object(map) if map.is_empty() => push(out, Tok::Punct, "{}"),
        Value::Array(items) => {
            push(out, Tok::Punct, "[\n");
            for (i, item) in items.iter().enumerate() {
                push(out, Tok::Punct, pad(indent + 1));
                tokens(item, indent + 1, out);
                let sep = if i + 1 < items.len() { ",\n" } else { "\n" };
                push(out, Tok::Punct, sep);
            }
            push(out, Tok::Punct, format!("{}]", pad(indent)));
        }
        Value::Object(map) => {
            push(out, Tok::Punct, "{\n");
            let len = map.len();
            for (i, (key, item)) in map.iter().enumerate() {
                push(out, Tok::Punct, pad(indent + 1));
                push(out, Tok::Key, quoted(key));
                push(out, Tok::Punct, ": ");
                tokens(item, indent + 1, out);
                let sep = if i + 1 < len { ",\n" } else { "\n" };
                push(out, Tok::Punct, sep);
            }
            push(out, Tok::Punct, format!("{}}}", pad(indent)));
        }
    }
}

const MAX_HIGHLIGHTED_TOKENS: usize = 1500;

/// The payload of an event, pretty-printed and highlighted.
#[component]
pub fn JsonView(value: Value) -> impl IntoView {
    let mut toks = Vec::new();
    tokens(&value, 0, &mut toks);
    if toks.len() > MAX_HIGHLIGHTED_TOKENS {
        // Huge payloads: one text node keeps the page light.
        let text: String = toks.into_iter().map(|(_, t)| t).collect();
        return view! { <pre class="json" data-test="event-payload">{text}</pre> }.into_any();
    }
    view! {
        <pre class="json" data-test="event-payload">
            {toks
                .into_iter()
                .map(|(tok, text)| view! { <span class=tok.class()>{text}</span> })
                .collect_view()}
        </pre>
    }
    .into_any()
}

/// Kafka headers as a key/value table (text only).
#[component]
pub fn HeadersView(headers: Vec<Header>) -> impl IntoView {
    if headers.is_empty() {
        return view! { <p class="muted" data-test="event-headers">"No headers"</p> }.into_any();
    }
    view! {
        <table class="kv" data-test="event-headers">
            <tbody>
                {headers
                    .into_iter()
                    .map(|h| {
                        view! {
                            <tr>
                                <th scope="row" class="mono">{h.key}</th>
                                <td class="mono">{h.value}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlighted_text_equals_serde_pretty_output() {
        let value = serde_json::json!({
            "order_id": "ord-1", "items": [1, 2.5, {"sku": "a\"b<c>"}],
            "empty": {}, "none": [], "ok": true, "missing": null
        });
        let mut toks = Vec::new();
        tokens(&value, 0, &mut toks);
        let text: String = toks.into_iter().map(|(_, t)| t).collect();
        assert_eq!(text, serde_json::to_string_pretty(&value).unwrap());
    }
}

/// The expanded body of an event: its payload and its Kafka headers, both
/// escaped. Shared by the saga timeline and the trace axis.
#[component]
pub fn PayloadAndHeaders(payload: Value, headers: Vec<Header>) -> impl IntoView {
    view! {
        <section class="tl-section">
            <h4>"Payload"</h4>
            <JsonView value=payload/>
        </section>
        <section class="tl-section">
            <h4>"Headers"</h4>
            <HeadersView headers=headers/>
        </section>
    }
}
