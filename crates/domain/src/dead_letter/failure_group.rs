//! Failure groups: dead letters that failed for the same reason share one
//! key, so the DLQ page can count, age and bulk-retry them together even
//! though every message names its own order id, UUID or timestamp.

/// Longest normalised message, in characters: enough to tell failures apart,
/// short enough to be a group key and a table cell.
pub const MAX_NORMALISED_CHARS: usize = 200;

/// `{topic}|{class}|{normalised message}`, `-` for a missing part. The
/// topic is part of the key because the same exception on two topics is
/// usually two different bugs (and two different retry decisions).
pub fn failure_group(
    original_topic: Option<&str>,
    exception_class: Option<&str>,
    message: Option<&str>,
) -> String {
    let part = |text: Option<&str>| {
        text.map(str::trim)
            .filter(|t| !t.is_empty())
            .unwrap_or("-")
            .to_string()
    };
    let message = message.map(normalise_message).unwrap_or_default();
    format!(
        "{}|{}|{}",
        part(original_topic),
        part(exception_class),
        part(Some(&message))
    )
}

/// The exception message with its volatile parts replaced, so the same
/// failure groups together: ISO timestamps → `<time>`, UUIDs → `<uuid>`, hex
/// ids of 8+ characters (or `0x…`) → `<hex>`, quoted substrings → `'<s>'`,
/// numbers → `<n>`. Only the first non-blank line counts (the rest is
/// usually a stack trace or a payload dump); whitespace is collapsed and the
/// result is cut to [`MAX_NORMALISED_CHARS`] characters.
///
/// Linear in the length of the first line, whatever it contains.
pub fn normalise_message(message: &str) -> String {
    let line = message
        .split(['\n', '\r'])
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("");
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len().min(4 * MAX_NORMALISED_CHARS));
    // Once a quote character has no closing partner from some position on,
    // it has none from any later position either: remember, stay linear.
    let mut unclosed = [false; 2];
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let at_boundary = i == 0 || !is_word(chars[i - 1]);
        if at_boundary {
            let matched = timestamp_end(&chars, i)
                .map(|end| ("<time>", end))
                .or_else(|| uuid_end(&chars, i).map(|end| ("<uuid>", end)))
                .or_else(|| hex_end(&chars, i).map(|end| ("<hex>", end)));
            if let Some((placeholder, end)) = matched {
                out.push_str(placeholder);
                i = end;
                continue;
            }
            if let Some(kind) = quote_kind(c) {
                if !unclosed[kind] {
                    match quote_end(&chars, i) {
                        Some(end) => {
                            out.push_str("'<s>'");
                            i = end;
                            continue;
                        }
                        None => unclosed[kind] = true,
                    }
                }
            }
        }
        if c.is_ascii_digit() {
            out.push_str("<n>");
            i = number_end(&chars, i);
        } else if c.is_whitespace() {
            if !out.is_empty() {
                out.push(' ');
            }
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
        // `out` is already collapsed, so once it holds far more than the
        // limit (bytes ≥ chars) the rest of the line cannot change the result.
        if out.len() > 8 * MAX_NORMALISED_CHARS {
            break;
        }
    }
    let cut: String = out.trim_end().chars().take(MAX_NORMALISED_CHARS).collect();
    cut.trim_end().to_string()
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn ends_word_at(chars: &[char], end: usize) -> bool {
    chars.get(end).is_none_or(|c| !is_word(*c))
}

fn quote_kind(c: char) -> Option<usize> {
    match c {
        '\'' => Some(0),
        '"' => Some(1),
        _ => None,
    }
}

/// The position after the closing quote: the first same quote that ends a
/// word, so apostrophes inside words (`can't`) neither open nor close.
fn quote_end(chars: &[char], start: usize) -> Option<usize> {
    let quote = chars[start];
    (start + 1..chars.len())
        .find(|&j| chars[j] == quote && ends_word_at(chars, j + 1))
        .map(|j| j + 1)
}

/// `n` ASCII digits at `at`, returning the position after them.
fn digits(chars: &[char], at: usize, n: usize) -> Option<usize> {
    let end = at.checked_add(n)?;
    (end <= chars.len() && chars[at..end].iter().all(char::is_ascii_digit)).then_some(end)
}

fn literal(chars: &[char], at: usize, c: char) -> Option<usize> {
    (chars.get(at) == Some(&c)).then_some(at + 1)
}

/// `YYYY-MM-DD`, optionally with `[T ]HH:MM[:SS[.fff]]` and a zone.
fn timestamp_end(chars: &[char], start: usize) -> Option<usize> {
    let mut end = digits(chars, start, 4)?;
    end = literal(chars, end, '-')?;
    end = digits(chars, end, 2)?;
    end = literal(chars, end, '-')?;
    end = digits(chars, end, 2)?;
    if let Some(time_end) = time_of_day_end(chars, end) {
        end = time_end;
    }
    (!chars.get(end).is_some_and(char::is_ascii_digit)).then_some(end)
}

fn time_of_day_end(chars: &[char], at: usize) -> Option<usize> {
    let mut end = match chars.get(at) {
        Some('T' | 't' | ' ') => at + 1,
        _ => return None,
    };
    end = digits(chars, end, 2)?;
    end = literal(chars, end, ':')?;
    end = digits(chars, end, 2)?;
    if let Some(seconds) = literal(chars, end, ':').and_then(|e| digits(chars, e, 2)) {
        end = seconds;
        if let Some(fraction) = literal(chars, end, '.')
            .or_else(|| literal(chars, end, ','))
            .and_then(|e| digits(chars, e, 1))
        {
            end = fraction;
            while chars.get(end).is_some_and(char::is_ascii_digit) {
                end += 1;
            }
        }
    }
    match chars.get(end) {
        Some('Z' | 'z') => end += 1,
        Some('+' | '-') => {
            if let Some(hours) = digits(chars, end + 1, 2) {
                end = hours;
                let minutes = literal(chars, end, ':').unwrap_or(end);
                if let Some(minutes) = digits(chars, minutes, 2) {
                    end = minutes;
                }
            }
        }
        _ => {}
    }
    Some(end)
}

fn hex_run(chars: &[char], at: usize) -> usize {
    chars[at..]
        .iter()
        .take_while(|c| c.is_ascii_hexdigit())
        .count()
}

/// 8-4-4-4-12 hex digits, standing alone.
fn uuid_end(chars: &[char], start: usize) -> Option<usize> {
    let mut end = start;
    for (index, length) in [8, 4, 4, 4, 12].into_iter().enumerate() {
        if index > 0 {
            end = literal(chars, end, '-')?;
        }
        if end + length > chars.len() || hex_run(&chars[..end + length], end) != length {
            return None;
        }
        end += length;
    }
    ends_word_at(chars, end).then_some(end)
}

/// `0x…`, or a standalone run of 8+ hex digits holding both a digit and a
/// letter (all digits is a number; all letters is likely a word).
fn hex_end(chars: &[char], start: usize) -> Option<usize> {
    if chars[start] == '0' && matches!(chars.get(start + 1), Some('x' | 'X')) {
        let run = hex_run(chars, start + 2);
        let end = start + 2 + run;
        if run > 0 && ends_word_at(chars, end) {
            return Some(end);
        }
    }
    let run = hex_run(chars, start);
    let end = start + run;
    let token = &chars[start..end];
    let mixed =
        token.iter().any(char::is_ascii_digit) && token.iter().any(char::is_ascii_alphabetic);
    (run >= 8 && mixed && ends_word_at(chars, end)).then_some(end)
}

/// Digits with optional `.digits` parts (decimals, versions, addresses).
fn number_end(chars: &[char], start: usize) -> usize {
    let mut end = start;
    loop {
        while chars.get(end).is_some_and(char::is_ascii_digit) {
            end += 1;
        }
        match (chars.get(end), chars.get(end + 1)) {
            (Some('.'), Some(next)) if next.is_ascii_digit() => end += 1,
            _ => return end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_failure_with_other_ids_shares_a_group() {
        let first = failure_group(
            Some("orders"),
            Some("com.shop.OrderNotFoundException"),
            Some("Order 123 not found (id=550e8400-e29b-41d4-a716-446655440000)"),
        );
        let second = failure_group(
            Some("orders"),
            Some("com.shop.OrderNotFoundException"),
            Some("Order 98765 not found (id=6ba7b810-9dad-11d1-80b4-00c04fd430c8)"),
        );
        assert_eq!(
            first,
            "orders|com.shop.OrderNotFoundException|Order <n> not found (id=<uuid>)"
        );
        assert_eq!(first, second);
    }

    #[test]
    fn missing_parts_are_dashes() {
        assert_eq!(failure_group(None, None, None), "-|-|-");
        assert_eq!(failure_group(Some(" "), Some(""), Some("\n \n")), "-|-|-");
        assert_eq!(
            failure_group(Some("payments"), None, Some("timeout")),
            "payments|-|timeout"
        );
    }

    #[test]
    fn volatile_parts_are_replaced() {
        for (input, expected) in [
            (
                "Payment 42 declined at 2025-11-21T10:00:00.123Z for 'alice@example.com'",
                "Payment <n> declined at <time> for '<s>'",
            ),
            (
                "Unrecognized field \"customerRef\" (class com.shop.Order)",
                "Unrecognized field '<s>' (class com.shop.Order)",
            ),
            (
                "span 4bf92f3577b34da6 trace 00f067aa0ba902b7 ptr 0x7ffe3a2b",
                "span <hex> trace <hex> ptr <hex>",
            ),
            (
                "Timed out after 30.5 s on 2025-11-21 10:00:01+09:00",
                "Timed out after <n> s on <time>",
            ),
            (
                "Can't reserve stock for ORD-1001",
                "Can't reserve stock for ORD-<n>",
            ),
            ("stock for 'sku' is 'low'", "stock for '<s>' is '<s>'"),
            ("deadline for facade", "deadline for facade"),
            ("date 2025-11-21 only", "date <time> only"),
            (
                "unbalanced 'quote and \"another",
                "unbalanced 'quote and \"another",
            ),
            ("user's 'cart' total 12", "user's '<s>' total <n>"),
        ] {
            assert_eq!(normalise_message(input), expected, "{input}");
        }
    }

    #[test]
    fn only_the_first_line_collapsed_and_cut() {
        assert_eq!(
            normalise_message("\n  Order   7\tfailed  \r\n\tat com.shop.Foo.bar(Foo.java:12)"),
            "Order <n> failed"
        );
        let long = "é".repeat(500);
        let normalised = normalise_message(&long);
        assert_eq!(normalised.chars().count(), MAX_NORMALISED_CHARS);
        let spaced = format!("{} end", "x ".repeat(150));
        assert!(normalise_message(&spaced).chars().count() <= MAX_NORMALISED_CHARS);
    }

    #[test]
    fn hostile_input_stays_fast_and_bounded() {
        let quotes = "'a ".repeat(50_000);
        let started = std::time::Instant::now();
        let normalised = normalise_message(&quotes);
        assert!(normalised.chars().count() <= MAX_NORMALISED_CHARS);
        let hex = "a1".repeat(100_000);
        assert_eq!(normalise_message(&hex), "<hex>");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
