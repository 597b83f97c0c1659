//! A consumed message's headers, whatever bytes their keys hold.
//!
//! rust-rdkafka 0.39 hands header keys out as `&str` and unwraps the UTF-8
//! check (`BorrowedHeaders::try_get`), so one message whose header key is
//! not UTF-8 — legal on the wire, and other clients send them — panicked
//! the ingest's receive loop, and since its offset was never stored, every
//! restart read it and panicked again: the ingest stopped for good (found
//! by `tests/bad_input_on_real_brokers.rs`). Unsafe code is forbidden in
//! the workspace, so the key's bytes cannot be read past that check; the
//! header is kept under [`HEADER_KEY_NOT_UTF8`] instead and the message
//! goes on like any other.

use std::panic::{catch_unwind, AssertUnwindSafe};

use rdkafka::message::{BorrowedMessage, Headers, Message};

/// Stands for a header whose key is not UTF-8 (its key and value cannot be
/// read through librdkafka's Rust binding); its value is null.
pub const HEADER_KEY_NOT_UTF8: &str = "sagascope.header_key_not_utf8";

/// Every header of `message`, in order, as (key, value bytes).
pub(crate) fn headers_of(message: &BorrowedMessage<'_>) -> Vec<(String, Option<Vec<u8>>)> {
    let Some(headers) = message.headers() else {
        return Vec::new();
    };
    (0..headers.count())
        .filter_map(|index| {
            // The panic is rust-rdkafka's own UTF-8 unwrap, after the FFI
            // call has returned: nothing is left half-done.
            let read = catch_unwind(AssertUnwindSafe(|| {
                headers
                    .try_get(index)
                    .map(|header| (header.key.to_string(), header.value.map(<[u8]>::to_vec)))
            }));
            match read {
                Ok(header) => header,
                Err(_) => {
                    tracing::warn!(
                        topic = message.topic(),
                        partition = message.partition(),
                        offset = message.offset(),
                        header = index,
                        "a header key is not UTF-8 (the panic above is the Kafka client's); it is kept as {HEADER_KEY_NOT_UTF8}"
                    );
                    Some((HEADER_KEY_NOT_UTF8.to_string(), None))
                }
            }
        })
        .collect()
}
