//! Identifiers drawn from the seeded RNG, so planned traffic is reproducible.

use rand::rngs::StdRng;
use rand::Rng;

/// `bytes` random bytes as lowercase hex.
pub fn hex_id(rng: &mut StdRng, bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

/// A W3C trace id: 32 hex digits, never all zero (which W3C forbids).
pub fn trace_id(rng: &mut StdRng) -> String {
    format!("{:032x}", rng.random::<u128>() | 1)
}

/// A version-4 UUID, as outbox rows and CloudEvents ids usually are.
pub fn uuid(rng: &mut StdRng) -> String {
    let mut bytes: [u8; 16] = rng.random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}
