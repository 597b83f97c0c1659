//! A Produce request written by hand, for records librdkafka's API cannot
//! send: its header keys are `&str`, so a producer built on it can never
//! put a key that is not UTF-8 on the wire, yet other clients (and the
//! protocol, which carries header keys as bytes) can. Produce v3 with one
//! uncompressed record batch (magic 2), sent straight to the bootstrap
//! address: valid for one-broker clusters only, where that broker leads
//! every partition (both brokers of [`crate::TestBroker`]).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::Context;

/// One record's key, value and headers, as bytes; `None` is null.
#[derive(Debug, Clone, Default)]
pub struct RawRecord {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

const PRODUCE: i16 = 0;
const PRODUCE_VERSION: i16 = 3;

/// Appends `records` to `topic`/`partition` as one batch (acks = 1) and
/// returns the offset of the first; an error code from the broker is an
/// error.
pub fn produce_raw_records(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    records: &[RawRecord],
) -> anyhow::Result<i64> {
    anyhow::ensure!(!records.is_empty(), "no records to produce");
    let batch = record_batch(records, unix_now_ms());
    let mut body = Vec::new();
    put_i16(&mut body, -1); // transactional id: null
    put_i16(&mut body, 1); // acks
    put_i32(&mut body, 30_000); // timeout
    put_i32(&mut body, 1);
    put_string(&mut body, topic);
    put_i32(&mut body, 1);
    put_i32(&mut body, partition);
    put_i32(&mut body, i32::try_from(batch.len())?);
    body.extend_from_slice(&batch);
    let correlation_id = 1;
    let mut request = Vec::new();
    put_i16(&mut request, PRODUCE);
    put_i16(&mut request, PRODUCE_VERSION);
    put_i32(&mut request, correlation_id);
    put_string(&mut request, "sagascope-raw-produce");
    request.extend_from_slice(&body);

    let mut stream =
        TcpStream::connect(bootstrap).with_context(|| format!("cannot connect to {bootstrap}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.write_all(&i32::try_from(request.len())?.to_be_bytes())?;
    stream.write_all(&request)?;
    let mut size = [0u8; 4];
    stream
        .read_exact(&mut size)
        .context("the broker closed the connection instead of answering the Produce request")?;
    let mut response = vec![0u8; usize::try_from(i32::from_be_bytes(size))?];
    stream.read_exact(&mut response)?;
    let mut reader = Reader(&response);
    anyhow::ensure!(reader.i32()? == correlation_id, "answer to another request");
    anyhow::ensure!(reader.i32()? == 1, "one topic in the answer");
    let name_len = usize::try_from(reader.i16()?)?;
    reader.skip(name_len)?;
    anyhow::ensure!(reader.i32()? == 1, "one partition in the answer");
    let _partition = reader.i32()?;
    let error_code = reader.i16()?;
    let base_offset = reader.i64()?;
    anyhow::ensure!(
        error_code == 0,
        "the broker refused the batch: Kafka error code {error_code}"
    );
    Ok(base_offset)
}

fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A v2 record batch: the fixed header, the CRC-32C of everything after
/// the CRC field, then the records with zigzag varint lengths.
fn record_batch(records: &[RawRecord], timestamp_ms: i64) -> Vec<u8> {
    let mut after_crc = Vec::new();
    put_i16(&mut after_crc, 0); // attributes: no compression, create time
    put_i32(&mut after_crc, records.len() as i32 - 1); // last offset delta
    put_i64(&mut after_crc, timestamp_ms); // base timestamp
    put_i64(&mut after_crc, timestamp_ms); // max timestamp
    put_i64(&mut after_crc, -1); // producer id
    put_i16(&mut after_crc, -1); // producer epoch
    put_i32(&mut after_crc, -1); // base sequence
    put_i32(&mut after_crc, records.len() as i32);
    for (offset_delta, record) in records.iter().enumerate() {
        let mut body = vec![0u8]; // attributes
        put_varint(&mut body, 0); // timestamp delta
        put_varint(&mut body, offset_delta as i64);
        put_bytes(&mut body, record.key.as_deref());
        put_bytes(&mut body, record.value.as_deref());
        put_varint(&mut body, record.headers.len() as i64);
        for (key, value) in &record.headers {
            put_bytes(&mut body, Some(key));
            put_bytes(&mut body, value.as_deref());
        }
        put_varint(&mut after_crc, body.len() as i64);
        after_crc.extend_from_slice(&body);
    }
    let mut from_epoch = Vec::new();
    put_i32(&mut from_epoch, -1); // partition leader epoch
    from_epoch.push(2); // magic
    from_epoch.extend_from_slice(&crc32c(&after_crc).to_be_bytes());
    from_epoch.extend_from_slice(&after_crc);
    let mut batch = Vec::new();
    put_i64(&mut batch, 0); // base offset: the broker assigns it
    put_i32(&mut batch, from_epoch.len() as i32);
    batch.extend_from_slice(&from_epoch);
    batch
}

/// CRC-32C (Castagnoli, reflected), bit by bit: the batches here are small.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn put_i16(out: &mut Vec<u8>, value: i16) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_i32(out: &mut Vec<u8>, value: i32) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_i64(out: &mut Vec<u8>, value: i64) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_string(out: &mut Vec<u8>, text: &str) {
    put_i16(out, text.len() as i16);
    out.extend_from_slice(text.as_bytes());
}

/// A record field: zigzag varint length (-1 for null), then the bytes.
fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varint(out, -1),
        Some(bytes) => {
            put_varint(out, bytes.len() as i64);
            out.extend_from_slice(bytes);
        }
    }
}

fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8 & 0x7f) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> anyhow::Result<[u8; N]> {
        anyhow::ensure!(self.0.len() >= N, "the answer is cut short");
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        Ok(head.try_into()?)
    }

    fn skip(&mut self, n: usize) -> anyhow::Result<()> {
        anyhow::ensure!(self.0.len() >= n, "the answer is cut short");
        self.0 = &self.0[n..];
        Ok(())
    }

    fn i16(&mut self) -> anyhow::Result<i16> {
        Ok(i16::from_be_bytes(self.take()?))
    }

    fn i32(&mut self) -> anyhow::Result<i32> {
        Ok(i32::from_be_bytes(self.take()?))
    }

    fn i64(&mut self) -> anyhow::Result<i64> {
        Ok(i64::from_be_bytes(self.take()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The check value of CRC-32C (RFC 3720's test vector).
    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn varints_are_zigzag() {
        let encoded = |v| {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            out
        };
        assert_eq!(encoded(0), [0]);
        assert_eq!(encoded(-1), [1]);
        assert_eq!(encoded(1), [2]);
        assert_eq!(encoded(300), [0xd8, 0x04]);
    }
}
