//! Duration and lag histograms of the rollups. A value in milliseconds is
//! counted in the bucket of its first two significant digits (1234 → 1200,
//! 87 → 87), so buckets are at most 10 % wide at any scale, stay sparse
//! (at most 90 per decade) and add up across time buckets and replicas.

use sagascope_model::Percentiles;

/// The bucket of a value: its first two significant digits; negatives
/// (clock skew) count as 0.
pub fn value_bucket(ms: i64) -> i64 {
    if ms < 100 {
        return ms.max(0);
    }
    let mut scale = 1;
    while ms / scale >= 100 {
        scale *= 10;
    }
    ms / scale * scale
}

/// Nearest-rank percentiles (the smallest value with at least q·N values at
/// or below it) of `(bucket, count)` pairs in any order. Counts ≤ 0 are
/// ignored (rollups keep rows that decrements brought back to zero).
pub fn percentiles(buckets: &[(i64, i64)]) -> Percentiles {
    let mut sorted: Vec<(i64, i64)> = buckets.iter().copied().filter(|(_, n)| *n > 0).collect();
    sorted.sort_unstable();
    let count: i64 = sorted.iter().map(|(_, n)| n).sum();
    let at = |q: f64| -> Option<i64> {
        if count == 0 {
            return None;
        }
        // ceil(q·N) without float error on exact products such as 0.95·20.
        let rank = ((q * count as f64) - 1e-9).ceil().max(1.0) as i64;
        let mut seen = 0;
        for (value, n) in &sorted {
            seen += n;
            if seen >= rank {
                return Some(*value);
            }
        }
        sorted.last().map(|(v, _)| *v)
    };
    Percentiles {
        count,
        p50_ms: at(0.50),
        p95_ms: at(0.95),
        p99_ms: at(0.99),
        max_ms: sorted.last().map(|(v, _)| *v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_keep_two_significant_digits() {
        assert_eq!(value_bucket(-5), 0);
        assert_eq!(value_bucket(0), 0);
        assert_eq!(value_bucket(87), 87);
        assert_eq!(value_bucket(99), 99);
        assert_eq!(value_bucket(100), 100);
        assert_eq!(value_bucket(109), 100);
        assert_eq!(value_bucket(1234), 1200);
        assert_eq!(value_bucket(98_765), 98_000);
        assert_eq!(value_bucket(3_600_000), 3_600_000);
    }

    #[test]
    fn nearest_rank_percentiles_by_hand() {
        // 1..=20 × 100 ms: p50 = 10th value, p95 = 19th, p99 = 20th.
        let values: Vec<(i64, i64)> = (1..=20).map(|i| (i * 100, 1)).collect();
        let p = percentiles(&values);
        assert_eq!(p.count, 20);
        assert_eq!(p.p50_ms, Some(1000));
        assert_eq!(p.p95_ms, Some(1900));
        assert_eq!(p.p99_ms, Some(2000));
        assert_eq!(p.max_ms, Some(2000));
        // Counts add up across rows of the same bucket; zero rows vanish.
        let p = percentiles(&[(300, 2), (100, 1), (300, 1), (900, 0), (200, 0)]);
        assert_eq!((p.count, p.p50_ms, p.max_ms), (4, Some(300), Some(300)));
        assert_eq!(percentiles(&[]).p50_ms, None);
    }
}
