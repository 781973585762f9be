//! Record batch (magic 2) headers: parsed and checked without decompressing.
//!
//! The produce path validates each batch here (length, magic, CRC32C,
//! record count, offset deltas and size; the checks that need the records,
//! keys and timestamps, are in `record_checks`), and the leader later
//! rewrites `baseOffset` and `partitionLeaderEpoch`, neither of which the
//! CRC covers. Only LogAppendTime changes a CRC-covered field.

use bytes::Buf;

/// Bytes of the fixed batch header, up to and including the record count.
pub const HEADER_LEN: usize = 61;
/// Bytes before `batchLength`'s payload: baseOffset and batchLength.
pub const LOG_OVERHEAD: usize = 12;

const ATTRIBUTES_AT: usize = 21;
const CRC_AT: usize = 17;
const MAGIC_AT: usize = 16;
const MAX_TIMESTAMP_AT: usize = 35;

const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

/// The header fields of one record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Total size of the batch in bytes, the 12-byte log overhead included.
    pub size: usize,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }
    pub fn compression(&self) -> i16 {
        self.attributes & 0x07
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }
    /// Whether an idempotent or transactional producer wrote the batch.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
    /// The sequence number of the batch's last record. Sequences wrap from
    /// `i32::MAX` to 0, as Kafka's do.
    pub fn last_sequence(&self) -> i32 {
        increment_sequence(self.base_sequence, self.last_offset_delta)
    }
}

/// `sequence + increment`, wrapping past `i32::MAX` to 0 as Kafka does.
pub fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if increment >= 0 && sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence.wrapping_add(increment)
    }
}

/// Why a batch was refused; each maps to one Kafka error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("record batch is truncated: {0}")]
    Truncated(String),
    #[error("record batch has magic {0}; only magic 2 (Kafka 0.11+) is accepted")]
    WrongMagic(i8),
    #[error(
        "record batch CRC mismatch: header says {stored:#010x}, contents give {computed:#010x}"
    )]
    BadCrc { stored: u32, computed: u32 },
    #[error("invalid record batch: {0}")]
    Invalid(String),
    #[error("record batch of {size} bytes exceeds max.message.bytes={limit}")]
    TooLarge { size: usize, limit: usize },
    /// Records that break the topic's rules (KIP-467).
    #[error("{}", records_message(.0))]
    Records(RefusedRecords),
}

/// The records a produced batch was refused for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefusedRecords {
    /// The first of them, in batch order (at most
    /// `record_checks::MAX_LISTED_RECORDS`).
    pub listed: Vec<RecordError>,
    /// How many there are in all.
    pub total: usize,
    /// Whether any was refused for its timestamp.
    pub timestamps: bool,
}

/// One record a produced batch was refused for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// The record's index in its batch (Kafka's `batch_index`).
    pub index: i32,
    pub fault: RecordFault,
    pub message: String,
}

/// The rule a refused record breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFault {
    /// No key, on a compacted topic.
    NoKey,
    /// A CreateTime timestamp outside the topic's bounds.
    Timestamp,
}

fn records_message(r: &RefusedRecords) -> String {
    let Some(first) = r.listed.first() else {
        return "the batch has invalid records".into();
    };
    let mut m = format!("record {} of the batch: {}", first.index, first.message);
    if r.total > 1 {
        m.push_str(&format!(
            " (and {} more records; the response's record errors list the first {})",
            r.total - 1,
            r.listed.len()
        ));
    }
    m
}

impl BatchError {
    /// The Kafka error code a produce response carries for this refusal.
    pub fn code(&self) -> crate::ErrorCode {
        use crate::ErrorCode as E;
        match self {
            BatchError::Truncated(_) | BatchError::BadCrc { .. } => E::CorruptMessage,
            BatchError::WrongMagic(_) | BatchError::Invalid(_) => E::InvalidRecord,
            BatchError::TooLarge { .. } => E::MessageTooLarge,
            // Kafka answers INVALID_TIMESTAMP if any record's timestamp
            // is to blame.
            BatchError::Records(r) if r.timestamps => E::InvalidTimestamp,
            BatchError::Records(_) => E::InvalidRecord,
        }
    }
}

/// Parses the header at the start of `buf` and checks that the whole batch
/// is present. Does not verify the CRC.
pub fn parse_header(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    // The magic byte first: an old-format message set is refused as such
    // however short it is.
    if let Some(&magic) = buf.get(MAGIC_AT) {
        if magic != 2 {
            return Err(BatchError::WrongMagic(magic as i8));
        }
    }
    if buf.len() < HEADER_LEN {
        return Err(BatchError::Truncated(format!(
            "{} bytes is shorter than the {HEADER_LEN}-byte batch header",
            buf.len()
        )));
    }
    let mut b = buf;
    let base_offset = b.get_i64();
    let batch_length = b.get_i32();
    let partition_leader_epoch = b.get_i32();
    let magic = b.get_i8();
    if batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
        return Err(BatchError::Truncated(format!(
            "batchLength {batch_length} is shorter than the header"
        )));
    }
    let size = LOG_OVERHEAD + batch_length as usize;
    if size > buf.len() {
        return Err(BatchError::Truncated(format!(
            "batchLength says {size} bytes but only {} are present",
            buf.len()
        )));
    }
    Ok(BatchHeader {
        base_offset,
        size,
        partition_leader_epoch,
        magic,
        crc: b.get_u32(),
        attributes: b.get_i16(),
        last_offset_delta: b.get_i32(),
        base_timestamp: b.get_i64(),
        max_timestamp: b.get_i64(),
        producer_id: b.get_i64(),
        producer_epoch: b.get_i16(),
        base_sequence: b.get_i32(),
        record_count: b.get_i32(),
    })
}

/// Iterates over the batches stored back to back in `buf` (as a log or a
/// fetch response holds them). Stops at the first incomplete batch.
pub fn batches(buf: &[u8]) -> impl Iterator<Item = (usize, BatchHeader)> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || {
        let h = parse_header(&buf[pos..]).ok()?;
        let at = pos;
        pos += h.size;
        Some((at, h))
    })
}

/// The topic rules a produced batch is checked against.
#[derive(Debug, Clone, Copy)]
pub struct BatchRules {
    pub max_message_bytes: usize,
    /// `message.timestamp.type=LogAppendTime`.
    pub log_append_time: bool,
    /// `message.timestamp.before.max.ms` and `after.max.ms` (CreateTime only).
    pub max_before_ms: i64,
    pub max_after_ms: i64,
}

/// Checks every batch of a produce request's records for one partition by
/// its header, and returns the headers. A producer must send at least one
/// batch. (The checks that need the records are in `record_checks`.)
pub fn validate_produced(
    records: &[u8],
    rules: &BatchRules,
) -> Result<Vec<BatchHeader>, BatchError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < records.len() {
        let h = parse_header(&records[pos..])?;
        let body = &records[pos + ATTRIBUTES_AT..pos + h.size];
        let computed = crc32c::crc32c(body);
        if computed != h.crc {
            return Err(BatchError::BadCrc {
                stored: h.crc,
                computed,
            });
        }
        if h.size > rules.max_message_bytes {
            return Err(BatchError::TooLarge {
                size: h.size,
                limit: rules.max_message_bytes,
            });
        }
        if h.record_count <= 0 {
            return Err(BatchError::Invalid(format!(
                "batch has {} records; a produced batch needs at least one",
                h.record_count
            )));
        }
        if h.last_offset_delta != h.record_count - 1 {
            return Err(BatchError::Invalid(format!(
                "lastOffsetDelta {} does not match {} records",
                h.last_offset_delta, h.record_count
            )));
        }
        if h.is_control() {
            return Err(BatchError::Invalid(
                "clients may not produce control batches".into(),
            ));
        }
        if h.compression() > 4 {
            return Err(BatchError::Invalid(format!(
                "unknown compression codec {}",
                h.compression()
            )));
        }
        out.push(h);
        pos += h.size;
    }
    if out.is_empty() {
        return Err(BatchError::Invalid("no record batch in the request".into()));
    }
    Ok(out)
}

/// Rewrites `baseOffset` of the batch at the start of `batch`.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Stamps `partitionLeaderEpoch` of the batch at the start of `batch`.
pub fn set_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[12..16].copy_from_slice(&epoch.to_be_bytes());
}

/// Marks the batch LogAppendTime with `now_ms` as its max timestamp and
/// recomputes the CRC, as Kafka does for topics with that timestamp type.
pub fn set_log_append_time(batch: &mut [u8], size: usize, now_ms: i64) {
    let mut attrs = i16::from_be_bytes([batch[ATTRIBUTES_AT], batch[ATTRIBUTES_AT + 1]]);
    attrs |= TIMESTAMP_TYPE_BIT;
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attrs.to_be_bytes());
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..size]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    debug_assert_eq!(batch[MAGIC_AT], 2);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    fn rules() -> BatchRules {
        BatchRules {
            max_message_bytes: 1 << 20,
            log_append_time: false,
            max_before_ms: i64::MAX,
            max_after_ms: i64::MAX,
        }
    }

    /// Every codec a produced batch may use.
    pub(crate) const CODECS: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// A batch of `n` records without keys.
    fn encode(n: usize, compression: Compression) -> BytesMut {
        encode_keyed(&vec![None; n], compression)
    }

    /// One batch (magic 2) of records with these keys; record `i` is
    /// stamped 1000 + i and holds "value-i".
    pub(crate) fn encode_keyed(keys: &[Option<&str>], compression: Compression) -> BytesMut {
        let stamped: Vec<_> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (*k, 1_000 + i as i64))
            .collect();
        encode_records(&stamped, compression)
    }

    /// One uncompressed batch of keyed records with these timestamps.
    pub(crate) fn encode_stamped(timestamps: &[i64]) -> BytesMut {
        let stamped: Vec<_> = timestamps.iter().map(|&t| (Some("k"), t)).collect();
        encode_records(&stamped, Compression::None)
    }

    fn encode_records(records: &[(Option<&str>, i64)], compression: Compression) -> BytesMut {
        let records: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(i, (key, timestamp))| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: i as i32,
                timestamp: *timestamp,
                key: key.map(|k| bytes::Bytes::from(k.to_string())),
                value: Some(bytes::Bytes::from(format!("value-{i}"))),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .unwrap();
        buf
    }

    #[test]
    fn accepts_valid_batches_of_every_codec() {
        for c in CODECS {
            let b = encode(5, c);
            let hs = validate_produced(&b, &rules()).unwrap();
            assert_eq!(hs.iter().map(|h| h.record_count).sum::<i32>(), 5);
            assert_eq!(hs.iter().map(|h| h.max_timestamp).max(), Some(1_004));
            assert_eq!(hs.len(), 1);
            assert_eq!(batches(&b).count(), 1);
        }
    }

    #[test]
    fn refuses_corruption_with_the_kafka_error() {
        let mut b = encode(3, Compression::Gzip);
        let last = b.len() - 1;
        b[last] ^= 0xff;
        let e = validate_produced(&b, &rules()).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::CorruptMessage);

        let mut b = encode(3, Compression::None);
        b[MAGIC_AT] = 1;
        let e = validate_produced(&b, &rules()).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::InvalidRecord);

        let b = encode(3, Compression::None);
        let e = validate_produced(&b[..b.len() - 1], &rules()).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::CorruptMessage);

        let b = encode(50, Compression::Gzip);
        let small = BatchRules {
            max_message_bytes: 100,
            ..rules()
        };
        let e = validate_produced(&b, &small).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::MessageTooLarge);
        assert!(e.to_string().contains("max.message.bytes=100"));

        let e = validate_produced(&[], &rules()).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::InvalidRecord);
    }

    #[test]
    fn rewrites_keep_the_crc_valid() {
        let mut b = encode(4, Compression::Lz4);
        set_base_offset(&mut b, 1234);
        set_leader_epoch(&mut b, 9);
        let size = b.len();
        set_log_append_time(&mut b, size, 77);
        let h = validate_produced(&b, &rules()).unwrap()[0];
        assert_eq!(h.base_offset, 1234);
        assert_eq!(h.last_offset(), 1237);
        assert_eq!(h.partition_leader_epoch, 9);
        assert_eq!(h.max_timestamp, 77);
        assert!(h.is_log_append_time());
        assert_eq!(batches(&b).count(), 1);
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        assert_eq!(increment_sequence(5, 3), 8);
        assert_eq!(increment_sequence(i32::MAX, 0), i32::MAX);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
    }
}
