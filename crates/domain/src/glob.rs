//! Shell-style globs for event names and topics in the rules file: `*`
//! matches any run of characters (also none), `?` exactly one; everything
//! else is literal and case-sensitive.

/// True when `text` matches `pattern` as a whole.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // Iterative matching with one backtrack point for the latest `*`:
    // linear in practice, never exponential.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some('?') => {
                p += 1;
                t += 1;
            }
            Some(c) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn stars_question_marks_and_literals() {
        for (pattern, text, expected) in [
            ("*", "", true),
            ("*", "anything", true),
            ("Payment*", "PaymentFailed", true),
            ("Payment*", "Payment", true),
            ("*Failed", "PaymentFailed", true),
            ("*Failed", "FailedPayment", false),
            ("Order*Created", "OrderDraftCreated", true),
            ("Order*Created", "OrderCreatedLate", false),
            ("Stock?eleased", "StockReleased", true),
            ("Stock?eleased", "Stockeleased", false),
            ("payments.*", "payments.events", true),
            ("payments.*", "payments", false),
            ("exact", "exact", true),
            ("exact", "Exact", false),
            ("*a*b*c*", "xxaxxbxxcxx", true),
            ("*a*b*c*", "xxaxxcxxbxx", false),
            ("é?", "éè", true),
        ] {
            assert_eq!(glob_match(pattern, text), expected, "{pattern} ~ {text}");
        }
    }
}
