//! Message bytes as JSON: dead letters keep key, value and headers
//! byte-exact (a re-drive must produce exactly what failed), but JSON and
//! HTML need text. Readable UTF-8 is shown as is; anything else (invalid
//! UTF-8, or control characters such as the NULs of a Java long in a Spring
//! DLT header) as standard base64 with a flag, so nothing is lost or
//! mangled on the way to the UI.

use serde::{Deserialize, Serialize};

/// Bytes as text: UTF-8 when valid and free of control characters (tab,
/// newline and carriage return allowed), else base64 (`base64: true`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ByteText {
    pub text: String,
    /// `text` is the standard base64 (RFC 4648, padded) of bytes that are
    /// not UTF-8.
    pub base64: bool,
    /// Length of the original bytes.
    pub size: usize,
}

impl ByteText {
    pub fn of(bytes: &[u8]) -> ByteText {
        let readable = std::str::from_utf8(bytes).ok().filter(|t| {
            !t.chars()
                .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        });
        match readable {
            Some(text) => ByteText {
                text: text.to_string(),
                base64: false,
                size: bytes.len(),
            },
            None => ByteText {
                text: base64_encode(bytes),
                base64: true,
                size: bytes.len(),
            },
        }
    }

    /// The original bytes (None for a base64 text that does not decode).
    pub fn to_bytes(&self) -> Option<Vec<u8>> {
        if self.base64 {
            base64_decode(&self.text)
        } else {
            Some(self.text.as_bytes().to_vec())
        }
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard, padded base64.
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard, padded base64; None for anything else.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let quads = bytes.len() / 4;
    for (index, quad) in bytes.chunks(4).enumerate() {
        let padding = quad.iter().rev().take_while(|c| **c == b'=').count();
        if padding > 2 || (padding > 0 && index + 1 != quads) {
            return None;
        }
        let mut n = 0u32;
        for c in &quad[..4 - padding] {
            n = (n << 6) | value(*c)?;
        }
        n <<= 6 * padding as u32;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - padding]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
            assert_eq!(base64_decode(encoded).unwrap(), plain.as_bytes());
        }
        for bad in ["Zg=", "Zg===", "Z===", "Zm9v!A==", "Zg==Zg=="] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        for len in 0..all.len() {
            assert_eq!(
                base64_decode(&base64_encode(&all[..len])).unwrap(),
                &all[..len]
            );
        }
    }

    #[test]
    fn text_when_utf8_else_flagged_base64() {
        let text = ByteText::of("{\"ä\":1}".as_bytes());
        assert_eq!(
            (text.text.as_str(), text.base64, text.size),
            ("{\"ä\":1}", false, 8)
        );
        let binary = ByteText::of(&[0, 0, 0, 7, 0xff]);
        assert!(binary.base64);
        assert_eq!(binary.to_bytes().unwrap(), [0, 0, 0, 7, 0xff]);
        let java_long = ByteText::of(&40_i64.to_be_bytes());
        assert_eq!(
            (java_long.text.as_str(), java_long.base64),
            ("AAAAAAAAACg=", true)
        );
        assert!(!ByteText::of(b"at A\n\tat B\r\n").base64);
    }
}
