//! Finds records without a key in a produced batch, which Kafka refuses on
//! compacted topics (compaction keeps the last record of each key).
//!
//! The records are read as a stream, decompressed as they go, and only up
//! to each record's key length: memory stays small whatever a batch claims
//! to hold, and the work stops at the batch's record count or at
//! [`MAX_RECORDS_BYTES`] of decompressed records, whichever comes first.

use std::io::{self, Read};

use crate::batch::{BatchError, BatchHeader, HEADER_LEN};
use crate::codec::{decompressing, MAX_RECORDS_BYTES};

/// Whether any record of `batch` (whose header `h` was validated) has no
/// key.
pub fn has_keyless_record(batch: &[u8], h: &BatchHeader) -> Result<bool, BatchError> {
    let payload = batch
        .get(HEADER_LEN..h.size)
        .ok_or_else(|| BatchError::Truncated(format!("batch of {} bytes", batch.len())))?;
    let records = decompressing(h.compression(), payload)?;
    let mut records = records.take(MAX_RECORDS_BYTES);
    match keyless_among(&mut records, h.record_count) {
        Ok(found) => Ok(found),
        Err(_) if records.limit() == 0 => Err(BatchError::Invalid(format!(
            "the batch's records decompress to more than {} MiB",
            MAX_RECORDS_BYTES >> 20
        ))),
        Err(e) => Err(BatchError::Invalid(format!("cannot read records: {e}"))),
    }
}

/// Reads `count` records and stops at the first without a key.
fn keyless_among(r: &mut impl Read, count: i32) -> io::Result<bool> {
    for _ in 0..count {
        let length = read_varint(r)?;
        let Ok(length) = u64::try_from(length) else {
            return Err(io::Error::other(format!("record length {length}")));
        };
        let mut record = r.by_ref().take(length);
        let mut attributes = [0u8; 1];
        record.read_exact(&mut attributes)?;
        read_varint(&mut record)?; // timestamp delta (a varlong)
        read_varint(&mut record)?; // offset delta
        if read_varint(&mut record)? < 0 {
            return Ok(true);
        }
        io::copy(&mut record, &mut io::sink())?;
        if record.limit() > 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(false)
}

/// A zigzag varint (Kafka's varint and varlong), as i64.
fn read_varint(r: &mut impl Read) -> io::Result<i64> {
    let mut value: u64 = 0;
    for shift in (0..70).step_by(7) {
        let mut byte = [0u8; 1];
        r.read_exact(&mut byte)?;
        value |= u64::from(byte[0] & 0x7f) << shift;
        if byte[0] & 0x80 == 0 {
            return Ok((value >> 1) as i64 ^ -((value & 1) as i64));
        }
    }
    Err(io::Error::other("varint longer than 10 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::parse_header;
    use crate::batch::tests::{encode_keyed as batch, CODECS};
    use bytes::BytesMut;
    use kafka_protocol::records::Compression;

    fn keyless(b: &[u8]) -> Result<bool, BatchError> {
        has_keyless_record(b, &parse_header(b).unwrap())
    }

    #[test]
    fn finds_a_record_without_a_key_with_every_codec() {
        for c in CODECS {
            // A long key makes the record's length a multi-byte varint.
            let long = "k".repeat(200);
            let keyed = batch(&[Some("a"), Some(""), Some(&long)], c);
            assert_eq!(keyless(&keyed), Ok(false), "{c:?}");
            let last = batch(&[Some(&long), Some("b"), None], c);
            assert_eq!(keyless(&last), Ok(true), "{c:?}");
        }
    }

    /// `plain`'s header with `payload` as its records, compressed with
    /// `codec` (the batch length and attributes updated; the CRC is not
    /// checked here).
    fn with_payload(plain: &[u8], codec: u8, payload: &[u8]) -> BytesMut {
        let mut b = BytesMut::from(&plain[..HEADER_LEN]);
        b.extend_from_slice(payload);
        let batch_length = (b.len() - 12) as u32;
        b[8..12].copy_from_slice(&batch_length.to_be_bytes());
        b[22] = (b[22] & !0x07) | codec;
        b
    }

    #[test]
    fn raw_snappy_is_read_too() {
        let plain = batch(&[Some("a"), None], Compression::None);
        let raw = snap::raw::Encoder::new()
            .compress_vec(&plain[HEADER_LEN..])
            .unwrap();
        assert_eq!(keyless(&with_payload(&plain, 2, &raw)), Ok(true));
    }

    #[test]
    fn malformed_records_and_bombs_are_refused() {
        let plain = batch(&[Some("a"), Some("b")], Compression::None);
        let mut h = parse_header(&plain).unwrap();
        h.record_count = 3;
        assert!(
            matches!(has_keyless_record(&plain, &h), Err(BatchError::Invalid(m)) if m.contains("cannot read records"))
        );
        let garbage = with_payload(&plain, 1, b"not gzip at all");
        assert!(matches!(keyless(&garbage), Err(BatchError::Invalid(_))));

        // One record claiming 100 MiB, with a key, its body zeros: a small
        // zstd frame. Refused at the limit, never held in memory.
        let mut records = vec![0x80, 0x80, 0x80, 0x64]; // zigzag(100 MiB)
        records.extend_from_slice(&[0, 0, 0, 2]); // attributes, deltas, key length 1
        records.resize(70 << 20, 0);
        let frame = zstd::encode_all(&records[..], 1).unwrap();
        drop(records);
        let bomb = with_payload(&plain, 4, &frame);
        let mut h = parse_header(&bomb).unwrap();
        h.record_count = 1;
        assert!(
            matches!(has_keyless_record(&bomb, &h), Err(BatchError::Invalid(m)) if m.contains("more than 64 MiB")),
        );
    }
}
