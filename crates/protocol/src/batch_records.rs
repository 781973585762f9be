//! The records inside a stored batch, and the batch rebuilt from some of
//! them: what log compaction needs.
//!
//! A rebuilt batch keeps everything readers and producers rely on: its base
//! offset and last offset delta (so its offsets, its chunk's range and an
//! idempotent producer's sequences stay where they were), its leader epoch,
//! attributes, producer id, epoch and base sequence, and every kept record's
//! bytes as they were (their offset and timestamp deltas are relative to the
//! unchanged base). Only the record count, the length, the max timestamp
//! (under CreateTime) and the CRC are new, and the records are compressed
//! again with the batch's own codec, as Kafka's log cleaner does.
//!
//! A batch holding tombstones can also be given a delete horizon (KIP-534):
//! the broker time after which compaction may remove them, carried in the
//! base timestamp with attribute bit 6 set. The records' timestamp deltas
//! are then rewritten against it, so every client still reads the same
//! timestamps.

use std::io::Read;
use std::ops::Range;

use crate::batch::{parse_header, BatchError, BatchHeader, HEADER_LEN};
use crate::codec::{compress, decompressing, MAX_RECORDS_BYTES};

const LENGTH_AT: usize = 8;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const MAX_TIMESTAMP_AT: usize = 35;
const BASE_TIMESTAMP_AT: usize = 27;
const RECORD_COUNT_AT: usize = 57;
/// Attribute bit 6: the base timestamp is the batch's delete horizon.
const DELETE_HORIZON_BIT: i16 = 0x40;

/// The delete horizon of a batch, if compaction gave it one.
pub fn delete_horizon(h: &BatchHeader) -> Option<i64> {
    (h.attributes & DELETE_HORIZON_BIT != 0).then_some(h.base_timestamp)
}

/// One batch's records, decompressed.
#[derive(Debug)]
pub struct BatchRecords {
    pub header: BatchHeader,
    /// The records' bytes, decompressed.
    records: Vec<u8>,
    /// Each record, in order.
    pub entries: Vec<RecordEntry>,
}

/// What compaction looks at in one record, and where it lies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordEntry {
    pub offset: i64,
    pub timestamp: i64,
    /// The key's bytes within the decompressed records; `None` for a
    /// record without a key.
    key: Option<Range<usize>>,
    /// False for a tombstone (a record whose value is null).
    pub has_value: bool,
    /// The whole record, its length prefix included.
    raw: Range<usize>,
    /// Where the record's attributes byte is (after its length prefix).
    after_length: usize,
    /// Where the record's offset delta starts: what follows the timestamp
    /// delta, kept as it is when the timestamp delta is rewritten.
    after_timestamp: usize,
}

impl BatchRecords {
    /// The key of `entry`, one of this batch's entries.
    pub fn key(&self, entry: &RecordEntry) -> Option<&[u8]> {
        entry.key.clone().map(|k| &self.records[k])
    }

    /// The batch again with only `kept` of its records (a subset of its
    /// entries, in order), compressed with its codec. `original` is the
    /// batch these records were read from. With `new_horizon`, the batch
    /// gets that delete horizon (it must not have one yet).
    pub fn rebuild<'a>(
        &self,
        original: &[u8],
        kept: impl IntoIterator<Item = &'a RecordEntry>,
        new_horizon: Option<i64>,
    ) -> Result<Vec<u8>, BatchError> {
        let h = &self.header;
        let mut records = Vec::new();
        let mut count: i32 = 0;
        let mut max_timestamp = -1;
        for e in kept {
            match new_horizon {
                None => records.extend_from_slice(&self.records[e.raw.clone()]),
                Some(horizon) => {
                    let mut body = vec![self.records[e.after_length]];
                    put_varint(&mut body, e.timestamp.wrapping_sub(horizon));
                    body.extend_from_slice(&self.records[e.after_timestamp..e.raw.end]);
                    put_varint(&mut records, body.len() as i64);
                    records.extend_from_slice(&body);
                }
            }
            count += 1;
            max_timestamp = max_timestamp.max(e.timestamp);
        }
        let payload = if count == 0 {
            Vec::new()
        } else {
            compress(h.compression(), &records).map_err(|e| {
                BatchError::Invalid(format!("cannot compress the kept records again: {e}"))
            })?
        };
        let header = original
            .get(..HEADER_LEN)
            .ok_or_else(|| BatchError::Truncated(format!("batch of {} bytes", original.len())))?;
        let mut batch = Vec::with_capacity(HEADER_LEN + payload.len());
        batch.extend_from_slice(header);
        batch.extend_from_slice(&payload);
        let length = (batch.len() - LENGTH_AT - 4) as i32;
        batch[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&length.to_be_bytes());
        let mut attributes = h.attributes;
        if count == 0 {
            // Stored uncompressed, as Kafka stores the empty batches its
            // cleaner keeps.
            attributes &= !0x07;
        }
        if let Some(horizon) = new_horizon {
            attributes |= DELETE_HORIZON_BIT;
            batch[BASE_TIMESTAMP_AT..BASE_TIMESTAMP_AT + 8].copy_from_slice(&horizon.to_be_bytes());
        }
        batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
        if !h.is_log_append_time() && count > 0 {
            batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8]
                .copy_from_slice(&max_timestamp.to_be_bytes());
        }
        batch[RECORD_COUNT_AT..HEADER_LEN].copy_from_slice(&count.to_be_bytes());
        let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
        batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        Ok(batch)
    }
}

/// Appends `v` as a zigzag varint.
fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push(z as u8 | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Reads the records of the batch at the start of `batch`, after checking
/// its CRC (a rebuilt batch gets a new CRC, so corruption must be caught
/// before, not blessed).
pub fn read_records(batch: &[u8]) -> Result<BatchRecords, BatchError> {
    let h = parse_header(batch)?;
    let computed = crc32c::crc32c(&batch[ATTRIBUTES_AT..h.size]);
    if computed != h.crc {
        return Err(BatchError::BadCrc {
            stored: h.crc,
            computed,
        });
    }
    let mut records = Vec::new();
    decompressing(h.compression(), &batch[HEADER_LEN..h.size])?
        .take(MAX_RECORDS_BYTES + 1)
        .read_to_end(&mut records)
        .map_err(|e| BatchError::Invalid(format!("cannot decompress records: {e}")))?;
    if records.len() as u64 > MAX_RECORDS_BYTES {
        return Err(BatchError::Invalid(format!(
            "the batch's records decompress to more than {} MiB",
            MAX_RECORDS_BYTES >> 20
        )));
    }
    let mut entries: Vec<RecordEntry> =
        Vec::with_capacity(h.record_count.clamp(0, 1 << 16) as usize);
    let mut at = 0;
    for _ in 0..h.record_count {
        let e = read_record(&records, &mut at, &h)?;
        // Offsets rise within the batch and end by its last offset; the
        // produce path checks only the header, so check them here.
        let last = h.base_offset.saturating_add(h.last_offset_delta.into());
        let in_order = entries.last().is_none_or(|p| e.offset > p.offset);
        if !in_order || e.offset < h.base_offset || e.offset > last {
            return Err(BatchError::Invalid(format!(
                "record offset {} out of order in the batch of offsets {} to {}",
                e.offset, h.base_offset, last
            )));
        }
        entries.push(e);
    }
    if at != records.len() {
        return Err(BatchError::Invalid(format!(
            "{} bytes follow the batch's {} records",
            records.len() - at,
            h.record_count
        )));
    }
    Ok(BatchRecords {
        header: h,
        records,
        entries,
    })
}

/// The record at `*at`, which is moved past it.
fn read_record(buf: &[u8], at: &mut usize, h: &BatchHeader) -> Result<RecordEntry, BatchError> {
    let start = *at;
    let length = varint(buf, at)?;
    let end = usize::try_from(length)
        .ok()
        .and_then(|l| at.checked_add(l))
        .filter(|&end| end <= buf.len())
        .ok_or_else(|| BatchError::Invalid(format!("a record claims {length} bytes")))?;
    let body = &buf[..end];
    let after_length = *at;
    *at += 1; // attributes
    let timestamp_delta = varint(body, at)?;
    let after_timestamp = *at;
    let offset_delta = varint(body, at)?;
    let key = bytes_field(body, at)?;
    let value = bytes_field(body, at)?;
    *at = end; // the headers are kept as they are, unread
    Ok(RecordEntry {
        offset: h.base_offset.wrapping_add(offset_delta),
        timestamp: h.base_timestamp.wrapping_add(timestamp_delta),
        key,
        has_value: value.is_some(),
        raw: start..end,
        after_length,
        after_timestamp,
    })
}

/// A length-prefixed field (a key or a value) at `*at`: its bytes' range,
/// or `None` for a null (length -1).
fn bytes_field(buf: &[u8], at: &mut usize) -> Result<Option<Range<usize>>, BatchError> {
    let length = varint(buf, at)?;
    if length < 0 {
        return Ok(None);
    }
    let start = *at;
    let end = usize::try_from(length)
        .ok()
        .and_then(|l| start.checked_add(l))
        .filter(|&end| end <= buf.len())
        .ok_or_else(|| {
            BatchError::Invalid(format!("a field of {length} bytes overruns its record"))
        })?;
    *at = end;
    Ok(Some(start..end))
}

/// A zigzag varint (Kafka's varint and varlong) at `*at`.
fn varint(buf: &[u8], at: &mut usize) -> Result<i64, BatchError> {
    let mut value: u64 = 0;
    for shift in (0..70).step_by(7) {
        let byte = *buf
            .get(*at)
            .ok_or_else(|| BatchError::Invalid("a record ends inside a varint".into()))?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok((value >> 1) as i64 ^ -((value & 1) as i64));
        }
    }
    Err(BatchError::Invalid("a varint longer than 10 bytes".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::tests::{encode_keyed, CODECS};
    use crate::batch::{set_base_offset, set_log_append_time};
    use kafka_protocol::records::RecordBatchDecoder;

    #[test]
    fn reads_every_record_with_its_key_offset_and_timestamp() {
        for c in CODECS {
            let mut b = encode_keyed(&[Some("a"), None, Some("a")], c);
            set_base_offset(&mut b, 100);
            let r = read_records(&b).unwrap();
            let seen: Vec<_> = r
                .entries
                .iter()
                .map(|e| (e.offset, e.timestamp, r.key(e), e.has_value))
                .collect();
            assert_eq!(
                seen,
                vec![
                    (100, 1_000, Some(&b"a"[..]), true),
                    (101, 1_001, None, true),
                    (102, 1_002, Some(&b"a"[..]), true),
                ],
                "{c:?}"
            );
        }
    }

    #[test]
    fn a_rebuilt_batch_keeps_its_offsets_and_decodes_with_its_codec() {
        for c in CODECS {
            let keys: Vec<String> = (0..300).map(|i| format!("key-{}", i % 7)).collect();
            let keys: Vec<Option<&str>> = keys.iter().map(|k| Some(k.as_str())).collect();
            let mut b = encode_keyed(&keys, c);
            set_base_offset(&mut b, 5_000);
            let r = read_records(&b).unwrap();
            // The records at odd offsets and not the last one.
            let kept: Vec<&RecordEntry> = r
                .entries
                .iter()
                .filter(|e| e.offset % 2 == 1 && e.offset < 5_299)
                .collect();
            let rebuilt = r.rebuild(&b, kept.iter().copied(), None).unwrap();
            let h = parse_header(&rebuilt).unwrap();
            assert_eq!(h.size, rebuilt.len());
            assert_eq!((h.base_offset, h.last_offset()), (5_000, 5_299), "{c:?}");
            assert_eq!(h.record_count, 149);
            assert_eq!(h.max_timestamp, 1_297, "the newest kept record's time");
            assert_eq!(h.compression(), r.header.compression(), "{c:?}");
            // kafka-protocol checks the CRC and decompresses.
            let decoded = RecordBatchDecoder::decode(&mut bytes::Bytes::from(rebuilt.clone()))
                .unwrap_or_else(|e| panic!("{c:?}: {e}"));
            let offsets: Vec<i64> = decoded.records.iter().map(|r| r.offset).collect();
            assert_eq!(offsets, kept.iter().map(|e| e.offset).collect::<Vec<_>>());
            let first = &decoded.records[0];
            assert_eq!(first.key.as_deref(), Some(&b"key-1"[..]));
            assert_eq!(first.value.as_deref(), Some(&b"value-1"[..]));
            assert_eq!(first.timestamp, 1_001);
            // And reads back the same way.
            let again = read_records(&rebuilt).unwrap();
            assert_eq!(again.entries.len(), 149);
        }
    }

    #[test]
    fn log_append_time_keeps_its_max_timestamp() {
        let mut b = encode_keyed(&[Some("a"), Some("b")], CODECS[0]);
        let size = b.len();
        set_log_append_time(&mut b, size, 9_999);
        let r = read_records(&b).unwrap();
        let rebuilt = r.rebuild(&b, &r.entries[..1], None).unwrap();
        let h = parse_header(&rebuilt).unwrap();
        assert_eq!((h.max_timestamp, h.record_count), (9_999, 1));
        assert!(RecordBatchDecoder::decode(&mut bytes::Bytes::from(rebuilt)).is_ok());
    }

    #[test]
    fn a_delete_horizon_keeps_every_timestamp() {
        for c in CODECS {
            let b = encode_keyed(&[Some("a"), Some("b"), Some("c")], c);
            let r = read_records(&b).unwrap();
            assert_eq!(delete_horizon(&r.header), None);
            // A horizon far from the records' times: multi-byte deltas.
            let horizon = 86_400_000_000;
            let rebuilt = r.rebuild(&b, &r.entries[1..], Some(horizon)).unwrap();
            let again = read_records(&rebuilt).unwrap();
            assert_eq!(delete_horizon(&again.header), Some(horizon), "{c:?}");
            let seen: Vec<_> = again
                .entries
                .iter()
                .map(|e| (e.offset, e.timestamp, again.key(e)))
                .collect();
            assert_eq!(
                seen,
                vec![(1, 1_001, Some(&b"b"[..])), (2, 1_002, Some(&b"c"[..]))]
            );
            assert_eq!(again.header.max_timestamp, 1_002);
            let decoded = RecordBatchDecoder::decode(&mut bytes::Bytes::from(rebuilt)).unwrap();
            let times: Vec<i64> = decoded.records.iter().map(|r| r.timestamp).collect();
            assert_eq!(times, vec![1_001, 1_002], "{c:?}");
            assert!(decoded.records.iter().all(|r| r.delete_horizon));
        }
    }

    #[test]
    fn an_emptied_batch_keeps_its_offsets_uncompressed() {
        let mut b = encode_keyed(&[Some("a"), Some("b")], CODECS[4]);
        set_base_offset(&mut b, 70);
        let r = read_records(&b).unwrap();
        let empty = r.rebuild(&b, [], None).unwrap();
        assert_eq!(empty.len(), HEADER_LEN);
        let h = parse_header(&empty).unwrap();
        assert_eq!(
            (h.base_offset, h.last_offset(), h.record_count),
            (70, 71, 0)
        );
        assert_eq!(h.compression(), 0);
        assert!(read_records(&empty).unwrap().entries.is_empty());
    }

    #[test]
    fn corruption_is_refused_not_rebuilt() {
        let mut b = encode_keyed(&[Some("a"), Some("b")], CODECS[1]);
        let last = b.len() - 1;
        b[last] ^= 0x55;
        assert!(matches!(read_records(&b), Err(BatchError::BadCrc { .. })));

        // A record claiming more bytes than the batch holds, CRC fixed up.
        let mut b = encode_keyed(&[Some("a")], CODECS[0]);
        b[HEADER_LEN] = 0x7e; // zigzag 63
        let crc = crc32c::crc32c(&b[ATTRIBUTES_AT..]);
        b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(read_records(&b), Err(BatchError::Invalid(m)) if m.contains("claims 63")));

        // Two records with the same offset delta, CRC fixed up.
        let mut b = encode_keyed(&[Some("a"), Some("b")], CODECS[0]);
        let second = HEADER_LEN + 1 + b[HEADER_LEN] as usize / 2;
        b[second + 3] = 0; // the second record's offset delta: 0
        let crc = crc32c::crc32c(&b[ATTRIBUTES_AT..]);
        b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(
            matches!(read_records(&b), Err(BatchError::Invalid(m)) if m.contains("out of order")),
        );
    }
}
