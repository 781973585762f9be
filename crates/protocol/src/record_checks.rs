//! The checks of a produced batch that need its records, not only its
//! header: a key on every record of a compacted topic (compaction keeps the
//! last record of each key), and each record's timestamp against the
//! topic's bounds. As in Kafka (KIP-467), the records that break a rule
//! are reported by their index in the batch (the first
//! [`MAX_LISTED_RECORDS`] of them), and the batch is refused whole.
//!
//! The records are read as a stream, decompressed as they go, and only up
//! to each record's key length: memory stays small whatever a batch claims
//! to hold, and the work stops at the batch's record count or at
//! [`MAX_RECORDS_BYTES`] of decompressed records, whichever comes first.

use std::io::{self, Read};

use crate::batch::{
    BatchError, BatchHeader, BatchRules, RecordError, RecordFault, RefusedRecords, HEADER_LEN,
};
use crate::codec::{decompressing, MAX_RECORDS_BYTES};

/// What a batch's records are checked against.
#[derive(Debug, Clone, Copy)]
pub struct RecordRules {
    /// Every record needs a key (`cleanup.policy` includes `compact`).
    pub require_key: bool,
    /// The earliest and latest CreateTime timestamp accepted, if they are
    /// checked; a record without a timestamp (-1) is not.
    pub timestamps: Option<(i64, i64)>,
}

impl RecordRules {
    /// The rules of a topic at the broker's time `now_ms`. A
    /// `message.timestamp.before.max.ms` of `i64::MAX` (the default) sets
    /// no lower bound at all.
    pub fn new(batch: &BatchRules, require_key: bool, now_ms: i64) -> RecordRules {
        let earliest = if batch.max_before_ms == i64::MAX {
            i64::MIN
        } else {
            now_ms.saturating_sub(batch.max_before_ms)
        };
        RecordRules {
            require_key,
            timestamps: (!batch.log_append_time)
                .then(|| (earliest, now_ms.saturating_add(batch.max_after_ms))),
        }
    }

    /// Whether the batch's records must be read because its header cannot
    /// vouch for them: the header's max timestamp bounds every record's
    /// from above (the header is trusted when nothing else needs the
    /// records read), but only the records tell how early they are.
    pub fn need_records(&self, h: &BatchHeader) -> bool {
        self.require_key
            || self
                .timestamps
                .is_some_and(|(earliest, latest)| h.max_timestamp > latest || earliest > i64::MIN)
    }
}

/// At most this many refused records are listed in a response, each with
/// its message; the rest are counted. A batch of 64 MiB may hold millions
/// of five-byte records, and the list must not cost the broker more than
/// the batch did.
pub const MAX_LISTED_RECORDS: usize = 100;

/// Checks each record of `batch` (whose header `h` was validated) against
/// `rules`; refuses the batch with the records that break one. When the
/// records are read on a CreateTime topic, the header's max timestamp must
/// not be below theirs: the upper bound is checked on it alone otherwise.
pub fn check_records(batch: &[u8], h: &BatchHeader, rules: &RecordRules) -> Result<(), BatchError> {
    if !rules.need_records(h) {
        return Ok(());
    }
    let payload = batch
        .get(HEADER_LEN..h.size)
        .ok_or_else(|| BatchError::Truncated(format!("batch of {} bytes", batch.len())))?;
    let records = decompressing(h.compression(), payload)?;
    let mut records = records.take(MAX_RECORDS_BYTES);
    let mut refused = RefusedRecords::default();
    let mut max_timestamp = i64::MIN;
    let read = read_records(&mut records, h, |index, timestamp, keyless| {
        max_timestamp = max_timestamp.max(timestamp);
        if let Some((fault, message)) = broken_rule(rules, timestamp, keyless) {
            refused.total += 1;
            refused.timestamps |= fault == RecordFault::Timestamp;
            if refused.listed.len() < MAX_LISTED_RECORDS {
                refused.listed.push(RecordError {
                    index,
                    fault,
                    message,
                });
            }
        }
    });
    match read {
        Ok(()) if refused.total > 0 => Err(BatchError::Records(refused)),
        Ok(()) if rules.timestamps.is_some() && max_timestamp > h.max_timestamp => {
            Err(BatchError::Invalid(format!(
                "the batch header's maxTimestamp {} is earlier than its records' largest timestamp {max_timestamp}",
                h.max_timestamp
            )))
        }
        Ok(()) => Ok(()),
        Err(_) if records.limit() == 0 => Err(BatchError::Invalid(format!(
            "the batch's records decompress to more than {} MiB",
            MAX_RECORDS_BYTES >> 20
        ))),
        Err(e) => Err(BatchError::Invalid(format!("cannot read records: {e}"))),
    }
}

/// The rule a record breaks, if any, as the message a client gets.
fn broken_rule(
    rules: &RecordRules,
    timestamp: i64,
    keyless: bool,
) -> Option<(RecordFault, String)> {
    if rules.require_key && keyless {
        return Some((
            RecordFault::NoKey,
            "the record has no key, which a compacted topic needs".into(),
        ));
    }
    let (earliest, latest) = rules.timestamps?;
    // -1 is "no timestamp" (Kafka's NO_TIMESTAMP), never checked.
    if timestamp == -1 {
        None
    } else if timestamp < earliest {
        Some((
            RecordFault::Timestamp,
            format!("timestamp {timestamp} is earlier than {earliest} (message.timestamp.before.max.ms)"),
        ))
    } else if timestamp > latest {
        Some((
            RecordFault::Timestamp,
            format!(
                "timestamp {timestamp} is later than {latest} (message.timestamp.after.max.ms)"
            ),
        ))
    } else {
        None
    }
}

/// Reads the batch's records, calling `each` with every record's index,
/// timestamp and whether it has no key.
fn read_records(
    r: &mut impl Read,
    h: &BatchHeader,
    mut each: impl FnMut(i32, i64, bool),
) -> io::Result<()> {
    for index in 0..h.record_count {
        let length = read_varint(r)?;
        let Ok(length) = u64::try_from(length) else {
            return Err(io::Error::other(format!("record length {length}")));
        };
        let mut record = r.by_ref().take(length);
        let mut attributes = [0u8; 1];
        record.read_exact(&mut attributes)?;
        let timestamp_delta = read_varint(&mut record)?;
        read_varint(&mut record)?; // offset delta
        let keyless = read_varint(&mut record)? < 0;
        each(
            index,
            h.base_timestamp.saturating_add(timestamp_delta),
            keyless,
        );
        io::copy(&mut record, &mut io::sink())?;
        if record.limit() > 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(())
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

    const KEYS: RecordRules = RecordRules {
        require_key: true,
        timestamps: None,
    };

    fn check(b: &[u8], rules: &RecordRules) -> Result<(), BatchError> {
        check_records(b, &parse_header(b).unwrap(), rules)
    }

    /// The indices of the records a check refused.
    fn refused(b: &[u8], rules: &RecordRules) -> Vec<i32> {
        match check(b, rules) {
            Ok(()) => vec![],
            Err(BatchError::Records(r)) => r.listed.iter().map(|e| e.index).collect(),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn finds_every_record_without_a_key_with_every_codec() {
        for c in CODECS {
            // A long key makes the record's length a multi-byte varint.
            let long = "k".repeat(200);
            let keyed = batch(&[Some("a"), Some(""), Some(&long)], c);
            assert_eq!(check(&keyed, &KEYS), Ok(()), "{c:?}");
            let some = batch(&[None, Some(&long), Some("b"), None], c);
            assert_eq!(refused(&some, &KEYS), vec![0, 3], "{c:?}");
            let Err(BatchError::Records(r)) = check(&some, &KEYS) else {
                panic!()
            };
            assert!(r.listed[0].message.contains("no key"), "{r:?}");
        }
    }

    #[test]
    fn finds_every_record_out_of_the_timestamp_bounds() {
        // Records are stamped 1000, 1001, ...
        let rules = |earliest, latest| RecordRules {
            require_key: false,
            timestamps: Some((earliest, latest)),
        };
        for c in CODECS {
            let b = batch(&[Some("a"), None, Some("c"), None, None], c);
            assert_eq!(refused(&b, &rules(1001, 1003)), vec![0, 4], "{c:?}");
            assert_eq!(refused(&b, &rules(1000, 1004)), Vec::<i32>::new());
            assert_eq!(refused(&b, &rules(i64::MIN, 1002)), vec![3, 4]);
            let Err(BatchError::Records(r)) = check(&b, &rules(1001, 1003)) else {
                panic!()
            };
            assert!(r.listed[0].message.contains("before.max.ms"), "{r:?}");
            assert!(r.listed[1].message.contains("after.max.ms"), "{r:?}");
            assert!(r.timestamps && r.total == 2);
        }
        // Keys and timestamps at once: a record is reported once.
        let b = batch(&[None, Some("b")], Compression::None);
        let both = RecordRules {
            require_key: true,
            timestamps: Some((1001, 1001)),
        };
        assert_eq!(refused(&b, &both), vec![0]);
    }

    #[test]
    fn only_the_first_refused_records_are_listed_and_all_are_counted() {
        let b = batch(&vec![None; 150], Compression::Zstd);
        let Err(BatchError::Records(r)) = check(&b, &KEYS) else {
            panic!()
        };
        assert_eq!((r.listed.len(), r.total), (MAX_LISTED_RECORDS, 150));
        assert_eq!(r.listed.last().map(|e| e.index), Some(99));
        let message = BatchError::Records(r).to_string();
        assert!(message.contains("149 more"), "{message}");
    }

    #[test]
    fn only_the_missing_timestamp_escapes_the_bounds() {
        use crate::batch::tests::encode_stamped;
        let rules = RecordRules {
            require_key: false,
            timestamps: Some((0, 5_000)),
        };
        let b = encode_stamped(&[1_000, -1, -2, 2_000]);
        assert_eq!(refused(&b, &rules), vec![2]);
    }

    #[test]
    fn a_header_max_timestamp_below_the_records_is_refused_once_they_are_read() {
        let stamps = RecordRules {
            require_key: true,
            timestamps: Some((i64::MIN, i64::MAX)),
        };
        // maxTimestamp sits at byte 35 of the header; the records hold
        // 1000 and 1001.
        let mut b = batch(&[Some("a"), Some("b")], Compression::None);
        b[35..43].copy_from_slice(&1_000i64.to_be_bytes());
        assert!(
            matches!(check(&b, &stamps), Err(BatchError::Invalid(m)) if m.contains("maxTimestamp 1000")),
        );
        // A LogAppendTime topic stamps the batch itself.
        assert_eq!(check(&b, &KEYS), Ok(()));
        // Above the records (librdkafka starts its max at 0): accepted.
        b[35..43].copy_from_slice(&1_500i64.to_be_bytes());
        assert_eq!(check(&b, &stamps), Ok(()));
    }

    #[test]
    fn records_are_read_only_when_the_header_cannot_vouch_for_them() {
        let b = batch(&[None, None], Compression::None);
        let h = parse_header(&b).unwrap();
        let rules = |earliest, latest| RecordRules {
            require_key: false,
            timestamps: Some((earliest, latest)),
        };
        // The default: no lower bound, the max within the upper one.
        assert!(!rules(i64::MIN, 2000).need_records(&h));
        assert!(rules(i64::MIN, 1000).need_records(&h));
        assert!(rules(-5, 2000).need_records(&h));
        let defaults = BatchRules {
            max_message_bytes: 1 << 20,
            log_append_time: false,
            max_before_ms: i64::MAX,
            max_after_ms: 3_600_000,
        };
        assert!(!RecordRules::new(&defaults, false, 2_000).need_records(&h));
        assert!(KEYS.need_records(&h));
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
        assert_eq!(refused(&with_payload(&plain, 2, &raw), &KEYS), vec![1]);
    }

    #[test]
    fn malformed_records_and_bombs_are_refused() {
        let plain = batch(&[Some("a"), Some("b")], Compression::None);
        let mut h = parse_header(&plain).unwrap();
        h.record_count = 3;
        assert!(
            matches!(check_records(&plain, &h, &KEYS), Err(BatchError::Invalid(m)) if m.contains("cannot read records"))
        );
        let garbage = with_payload(&plain, 1, b"not gzip at all");
        assert!(matches!(
            check(&garbage, &KEYS),
            Err(BatchError::Invalid(_))
        ));

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
            matches!(check_records(&bomb, &h, &KEYS), Err(BatchError::Invalid(m)) if m.contains("more than 64 MiB")),
        );
    }
}
