/// Durations in the largest fitting unit (UI.md): 850 ms, 2.4 s, 3 m 10 s, 2 h 5 m.
pub fn format_duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{} m {} s", ms / 60_000, (ms % 60_000) / 1000)
    } else if ms < 86_400_000 {
        format!("{} h {} m", ms / 3_600_000, (ms % 3_600_000) / 60_000)
    } else {
        format!("{} d {} h", ms / 86_400_000, (ms % 86_400_000) / 3_600_000)
    }
}

/// Shortens an id in the middle (`ord_8f3a…91c2`); the full value stays
/// available on hover and through the copy button.
pub fn shorten_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 18 {
        return id.to_string();
    }
    let head: String = chars[..10].iter().collect();
    let tail: String = chars[chars.len() - 6..].iter().collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_use_the_largest_fitting_unit() {
        assert_eq!(format_duration_ms(850), "850 ms");
        assert_eq!(format_duration_ms(2_400), "2.4 s");
        assert_eq!(format_duration_ms(190_000), "3 m 10 s");
        assert_eq!(format_duration_ms(7_500_000), "2 h 5 m");
        assert_eq!(format_duration_ms(-5), "0 ms");
    }

    #[test]
    fn long_ids_are_shortened_in_the_middle() {
        assert_eq!(shorten_id("short"), "short");
        assert_eq!(
            shorten_id("4bf92f3577b34da6a3ce929d0e0e4736"),
            "4bf92f3577…0e4736"
        );
    }
}
