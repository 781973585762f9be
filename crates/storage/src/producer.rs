//! Idempotent producers: the per-partition producer state a leader checks
//! each batch against (KIP-98), so that a retried batch is acknowledged
//! with its original offsets instead of being appended twice, a gap in a
//! producer's sequence numbers is refused, and an older epoch is fenced.
//!
//! The leader's memory is authoritative while it leads. [`ProducerStates`]
//! holds two views: `committed`, which is what the catalog holds (it is
//! upserted in the same transaction as the chunks), and `current`, which
//! adds the batches sequenced but not yet committed. New batches are checked
//! against `current`; a failed flush rolls `current` back to `committed`,
//! along with the partition's offsets.
//!
//! A producer's state expires once it has written nothing to the partition
//! for Kafka's `producer.id.expiration.ms` ([`ProducerStates::expire`]).
//! Idleness is measured on the broker's clock, not by record timestamps as
//! Kafka does, so a producer writing old timestamps is not forgotten while
//! it writes. As in Kafka (KIP-360), a producer the partition has no state
//! for may start at any sequence, since its state may have expired; only a
//! producer whose first batches here were rolled back by a failed commit
//! must resend from the first of them.

use std::collections::{HashMap, HashSet, VecDeque};

use sluice_protocol::batch::{increment_sequence, BatchHeader};
use sluice_protocol::ErrorCode;
use tokio::sync::oneshot;

pub use crate::catalog::{ProducerBatch, ProducerStateRow, PRODUCER_BATCHES_KEPT};

/// The producer fields of an idempotent batch's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatchHeader {
    pub producer_id: i64,
    pub epoch: i16,
    pub first_seq: i32,
    /// The last record's sequence number (wrapped past `i32::MAX`).
    pub last_seq: i32,
}

impl ProducerBatchHeader {
    /// The producer fields of a validated batch; `None` for a batch that no
    /// idempotent producer wrote (producer id -1).
    pub fn from_header(h: &BatchHeader) -> Result<Option<Self>, ProducerError> {
        if !h.has_producer_id() {
            return Ok(None);
        }
        if h.is_transactional() {
            return Err(ProducerError::InvalidBatch(format!(
                "batch of producer {} is transactional; Sluice does not support transactions yet (use enable.idempotence without transactional.id)",
                h.producer_id
            )));
        }
        if h.producer_epoch < 0 || h.base_sequence < 0 {
            return Err(ProducerError::InvalidBatch(format!(
                "batch of producer {} has epoch {} and base sequence {}; an idempotent batch needs both at 0 or more",
                h.producer_id, h.producer_epoch, h.base_sequence
            )));
        }
        Ok(Some(ProducerBatchHeader {
            producer_id: h.producer_id,
            epoch: h.producer_epoch,
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
        }))
    }
}

/// Why an idempotent batch was refused; each maps to one Kafka error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerError {
    #[error("producer {producer_id} sent epoch {epoch} to {topic}-{partition}, but epoch {current} has fenced it: a newer instance of this producer took its id over")]
    InvalidEpoch {
        topic: String,
        partition: i32,
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
    #[error("out of order sequence number in {topic}-{partition}: {detail}")]
    OutOfOrder {
        topic: String,
        partition: i32,
        detail: String,
    },
    #[error("{0}")]
    InvalidBatch(String),
    #[error("producer {producer_id} retried sequence {first_seq}..={last_seq} in {topic}-{partition} while the original was being committed, and the original's commit failed; retry")]
    OriginalFailed {
        topic: String,
        partition: i32,
        producer_id: i64,
        first_seq: i32,
        last_seq: i32,
    },
}

impl ProducerError {
    pub fn code(&self) -> ErrorCode {
        match self {
            // Kafka 2.7+ answers a produce with a stale epoch so (KIP-588);
            // PRODUCER_FENCED is for InitProducerId and transactions.
            ProducerError::InvalidEpoch { .. } => ErrorCode::InvalidProducerEpoch,
            ProducerError::OutOfOrder { .. } => ErrorCode::OutOfOrderSequenceNumber,
            ProducerError::InvalidBatch(_) => ErrorCode::InvalidRecord,
            // Retriable: the retry finds no original and is appended.
            ProducerError::OriginalFailed { .. } => ErrorCode::KafkaStorageError,
        }
    }
}

/// One producer's state in one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    pub epoch: i16,
    /// The last batches, oldest first, at most [`PRODUCER_BATCHES_KEPT`].
    pub batches: VecDeque<ProducerBatch>,
    /// The broker's clock (ms) at the producer's last batch here: the
    /// state expires when this is old enough.
    pub last_timestamp: i64,
}

impl ProducerEntry {
    /// Records a batch; a new epoch forgets the batches of the old one.
    fn push(&mut self, epoch: i16, batch: ProducerBatch, timestamp: i64) {
        if epoch != self.epoch {
            self.epoch = epoch;
            self.batches.clear();
        }
        self.batches.push_back(batch);
        while self.batches.len() > PRODUCER_BATCHES_KEPT {
            self.batches.pop_front();
        }
        self.last_timestamp = timestamp;
    }

    fn new(epoch: i16, batch: ProducerBatch, timestamp: i64) -> Self {
        ProducerEntry {
            epoch,
            batches: VecDeque::from([batch]),
            last_timestamp: timestamp,
        }
    }
}

/// A batch sequenced and not yet committed.
#[derive(Debug)]
struct InFlightBatch {
    producer_id: i64,
    epoch: i16,
    batch: ProducerBatch,
    /// The broker's clock when the batch was sequenced.
    timestamp: i64,
    /// Retries of this batch that arrived while it was being committed;
    /// they get its base offset once it is committed, or an error (the
    /// sender dropped) if it fails.
    retries: Vec<oneshot::Sender<i64>>,
}

/// What the leader does with one produce request's batches.
#[derive(Debug)]
pub enum Admission {
    /// Append them at `base_offset`; they hold `records` records.
    Append {
        base_offset: i64,
        records: i64,
    },
    /// A retry of a committed batch: acknowledge with its offset.
    Duplicate {
        base_offset: i64,
    },
    /// A retry of a batch still being committed: answer with the
    /// original's result.
    DuplicateInFlight {
        original: oneshot::Receiver<i64>,
        failed: ProducerError,
    },
    Refused(ProducerError),
}

/// The result of checking one batch against a producer's state.
enum Check {
    New,
    Duplicate(ProducerBatch),
}

/// Where a producer with no committed state here must resume: its first
/// batches here were rolled back by a failed commit.
#[derive(Debug, Clone, Copy)]
struct Resume {
    epoch: i16,
    /// The first rolled-back batch's first sequence.
    first_seq: i32,
    /// The broker's clock when that batch was sequenced, for expiry.
    since: i64,
}

impl Resume {
    /// Resuming at `b`, the producer's first batch that will not commit.
    fn at(b: &InFlightBatch) -> Self {
        Resume {
            epoch: b.epoch,
            first_seq: b.batch.first_seq,
            since: b.timestamp,
        }
    }
}

/// The producer state of one partition on its leader.
#[derive(Debug, Default)]
pub struct ProducerStates {
    /// As of the high watermark: what the catalog holds.
    committed: HashMap<i64, ProducerEntry>,
    /// As of the next offset: `committed` plus the batches in flight.
    current: HashMap<i64, ProducerEntry>,
    /// Batches sequenced and not yet committed, in offset order.
    in_flight: VecDeque<InFlightBatch>,
    /// Producers without state here whose batches were rolled back: they
    /// must resend those before anything else, or the roll-back would
    /// leave a gap that accepting any first sequence cannot see.
    resuming: HashMap<i64, Resume>,
}

impl ProducerStates {
    /// The state a new leader loads from the catalog.
    pub fn load(rows: impl IntoIterator<Item = ProducerStateRow>) -> Self {
        // Rows written before the broker's clock was used hold record
        // timestamps; one in the future would never expire.
        let now = crate::now_ms();
        let committed: HashMap<i64, ProducerEntry> = rows
            .into_iter()
            .map(|r| {
                (
                    r.producer_id,
                    ProducerEntry {
                        epoch: r.producer_epoch,
                        batches: r.batches.into_iter().collect(),
                        last_timestamp: r.last_timestamp.min(now),
                    },
                )
            })
            .collect();
        ProducerStates {
            current: committed.clone(),
            committed,
            in_flight: VecDeque::new(),
            resuming: HashMap::new(),
        }
    }

    /// Carries over from `earlier` (the state this partition had before it
    /// was taken over again) where producers this state does not know must
    /// resume: their batches rolled back, or still in flight and about to
    /// fail with the old leadership. A request such a producer sent before
    /// hearing of the failure must not be accepted past the gap.
    pub fn keep_resume_points(&mut self, earlier: &ProducerStates) {
        let in_flight = earlier
            .in_flight
            .iter()
            .map(|b| (b.producer_id, Resume::at(b)));
        // Rolled-back batches came before those still in flight.
        let points = earlier.resuming.iter().map(|(id, r)| (*id, *r));
        for (id, r) in points.chain(in_flight) {
            if !self.current.contains_key(&id) {
                self.resuming.entry(id).or_insert(r);
            }
        }
    }

    /// Producers with state in this partition.
    pub fn len(&self) -> usize {
        self.current.len()
    }

    pub fn is_empty(&self) -> bool {
        self.current.is_empty()
    }

    /// A producer's state including batches in flight.
    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.current.get(&producer_id)
    }

    /// Checks one produce request's batches, given as (record count,
    /// producer fields), to be appended at `next_offset` at broker time
    /// `now_ms`. Accepted batches are recorded as in flight and their
    /// producers added to `touched`. A request is admitted or refused whole.
    #[allow(clippy::too_many_arguments)]
    pub fn admit(
        &mut self,
        topic: &str,
        partition: i32,
        batches: impl Iterator<Item = (i32, Option<ProducerBatchHeader>)>,
        next_offset: i64,
        high_watermark: i64,
        now_ms: i64,
        touched: &mut Vec<i64>,
    ) -> Admission {
        let mut offset = next_offset;
        // The request's effect, applied only if every batch passes.
        let mut staged: Vec<(i64, ProducerEntry)> = Vec::new();
        let mut accepted: Vec<InFlightBatch> = Vec::new();
        for (i, (records, producer)) in batches.enumerate() {
            let records = i64::from(records.max(0));
            let Some(h) = producer else {
                offset += records;
                continue;
            };
            let entry = staged
                .iter()
                .rev()
                .find(|(id, _)| *id == h.producer_id)
                .map(|(_, e)| e)
                .or_else(|| self.current.get(&h.producer_id));
            let resume = self.resuming.get(&h.producer_id);
            match check(topic, partition, entry, resume, &h) {
                Err(e) => return Admission::Refused(e),
                Ok(Check::Duplicate(original)) if i == 0 => {
                    // Kafka answers a request whose first batch is a retry
                    // with that batch's offsets.
                    return self.duplicate(topic, partition, &h, original, high_watermark);
                }
                Ok(Check::Duplicate(_)) => {
                    return Admission::Refused(ProducerError::OutOfOrder {
                        topic: topic.to_string(),
                        partition,
                        detail: format!(
                            "producer {} sent new batches and a retry of sequence {}..={} in one request",
                            h.producer_id, h.first_seq, h.last_seq
                        ),
                    })
                }
                Ok(Check::New) => {
                    let batch = ProducerBatch {
                        first_seq: h.first_seq,
                        last_seq: h.last_seq,
                        base_offset: offset,
                        last_offset: offset + records - 1,
                    };
                    let updated = match entry {
                        Some(e) => {
                            let mut e = e.clone();
                            e.push(h.epoch, batch, now_ms);
                            e
                        }
                        None => ProducerEntry::new(h.epoch, batch, now_ms),
                    };
                    staged.push((h.producer_id, updated));
                    accepted.push(InFlightBatch {
                        producer_id: h.producer_id,
                        epoch: h.epoch,
                        batch,
                        timestamp: now_ms,
                        retries: Vec::new(),
                    });
                }
            }
            offset += records;
        }
        for (id, entry) in staged {
            touched.push(id);
            self.resuming.remove(&id);
            self.current.insert(id, entry);
        }
        self.in_flight.extend(accepted);
        Admission::Append {
            base_offset: next_offset,
            records: offset - next_offset,
        }
    }

    fn duplicate(
        &mut self,
        topic: &str,
        partition: i32,
        h: &ProducerBatchHeader,
        original: ProducerBatch,
        high_watermark: i64,
    ) -> Admission {
        if original.last_offset < high_watermark {
            return Admission::Duplicate {
                base_offset: original.base_offset,
            };
        }
        let failed = ProducerError::OriginalFailed {
            topic: topic.to_string(),
            partition,
            producer_id: h.producer_id,
            first_seq: h.first_seq,
            last_seq: h.last_seq,
        };
        let (tx, rx) = oneshot::channel();
        match self
            .in_flight
            .iter_mut()
            .find(|b| b.producer_id == h.producer_id && b.batch == original)
        {
            Some(b) => b.retries.push(tx),
            // Not committed and not in flight cannot happen; the dropped
            // sender fails the retry, which is safe.
            None => drop(tx),
        }
        Admission::DuplicateInFlight {
            original: rx,
            failed,
        }
    }

    /// The current state of these producers, as rows to upsert.
    pub fn rows(&self, topic_id: i64, partition: i32, producers: &[i64]) -> Vec<ProducerStateRow> {
        producers
            .iter()
            .filter_map(|id| {
                self.current.get(id).map(|e| ProducerStateRow {
                    topic_id,
                    partition,
                    producer_id: *id,
                    producer_epoch: e.epoch,
                    batches: e.batches.iter().copied().collect(),
                    last_timestamp: e.last_timestamp,
                })
            })
            .collect()
    }

    /// Everything below `next_offset` is committed: its batches join the
    /// committed state, and retries waiting on them are answered.
    pub fn committed_through(&mut self, next_offset: i64) {
        while self
            .in_flight
            .front()
            .is_some_and(|b| b.batch.last_offset < next_offset)
        {
            let Some(b) = self.in_flight.pop_front() else {
                break;
            };
            match self.committed.get_mut(&b.producer_id) {
                Some(e) => e.push(b.epoch, b.batch, b.timestamp),
                None => {
                    self.committed.insert(
                        b.producer_id,
                        ProducerEntry::new(b.epoch, b.batch, b.timestamp),
                    );
                }
            }
            for r in b.retries {
                let _ = r.send(b.batch.base_offset);
            }
        }
    }

    /// A flush failed: every batch in flight is forgotten (its retries
    /// fail), and its producers are back at their committed state. A
    /// producer with none must resume at its first forgotten batch.
    pub fn roll_back(&mut self) {
        for b in self.in_flight.drain(..) {
            match self.committed.get(&b.producer_id) {
                Some(e) => {
                    self.current.insert(b.producer_id, e.clone());
                }
                // In offset order, so the first batch seen is its first.
                None => {
                    if self.current.remove(&b.producer_id).is_some() {
                        self.resuming.insert(b.producer_id, Resume::at(&b));
                    }
                }
            }
        }
    }

    /// Forgets the producers that wrote nothing here since `idle_before`
    /// (the broker's clock, ms) and have no batch in flight; returns their
    /// ids, for the catalog to forget them too.
    pub fn expire(&mut self, idle_before: i64) -> Vec<i64> {
        let busy: HashSet<i64> = self.in_flight.iter().map(|b| b.producer_id).collect();
        let expired: Vec<i64> = self
            .current
            .iter()
            .filter(|(id, e)| e.last_timestamp < idle_before && !busy.contains(id))
            .map(|(id, _)| *id)
            .collect();
        for id in &expired {
            self.current.remove(id);
            self.committed.remove(id);
        }
        self.resuming.retain(|_, r| r.since >= idle_before);
        expired
    }
}

/// Checks a batch against its producer's state, as Kafka's
/// ProducerAppendInfo does: a retry of one of the last batches is a
/// duplicate; an older epoch is fenced; a new epoch starts at sequence 0;
/// otherwise the batch must continue the producer's sequence.
fn check(
    topic: &str,
    partition: i32,
    entry: Option<&ProducerEntry>,
    resume: Option<&Resume>,
    h: &ProducerBatchHeader,
) -> Result<Check, ProducerError> {
    let out_of_order = |detail: String| ProducerError::OutOfOrder {
        topic: topic.to_string(),
        partition,
        detail,
    };
    let Some(e) = entry else {
        return match resume {
            // Kafka accepts any sequence from a producer it has no state
            // for, since that state may have expired.
            None => Ok(Check::New),
            Some(r) if h.epoch == r.epoch && h.first_seq == r.first_seq => Ok(Check::New),
            Some(r) if h.epoch > r.epoch && h.first_seq == 0 => Ok(Check::New),
            Some(r) => Err(out_of_order(format!(
                "producer {} sent sequence {} (epoch {}), but its batches here from sequence {} (epoch {}) failed to commit and must be resent first",
                h.producer_id, h.first_seq, h.epoch, r.first_seq, r.epoch
            ))),
        };
    };
    if h.epoch == e.epoch {
        if let Some(b) = e
            .batches
            .iter()
            .find(|b| b.first_seq == h.first_seq && b.last_seq == h.last_seq)
        {
            return Ok(Check::Duplicate(*b));
        }
    }
    if h.epoch < e.epoch {
        return Err(ProducerError::InvalidEpoch {
            topic: topic.to_string(),
            partition,
            producer_id: h.producer_id,
            epoch: h.epoch,
            current: e.epoch,
        });
    }
    if h.epoch > e.epoch {
        return if h.first_seq == 0 {
            Ok(Check::New)
        } else {
            Err(out_of_order(format!(
                "producer {} starts epoch {} at sequence {}; a new epoch must start at 0",
                h.producer_id, h.epoch, h.first_seq
            )))
        };
    }
    let last = e.batches.back().map_or(-1, |b| b.last_seq);
    let expected = increment_sequence(last, 1);
    if h.first_seq == expected {
        Ok(Check::New)
    } else {
        Err(out_of_order(format!(
            "producer {} (epoch {}) sent sequence {}..={}, but its last batch here ended at {} (expected {expected})",
            h.producer_id, h.epoch, h.first_seq, h.last_seq, last
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(producer_id: i64, epoch: i16, first_seq: i32, records: i32) -> ProducerBatchHeader {
        ProducerBatchHeader {
            producer_id,
            epoch,
            first_seq,
            last_seq: increment_sequence(first_seq, records - 1),
        }
    }

    /// Admits one batch of `records` records at `next_offset`, at broker
    /// time 1000.
    fn admit(
        s: &mut ProducerStates,
        h: ProducerBatchHeader,
        records: i32,
        next_offset: i64,
        hw: i64,
    ) -> Admission {
        admit_at(s, h, records, next_offset, hw, 1000)
    }

    fn admit_at(
        s: &mut ProducerStates,
        h: ProducerBatchHeader,
        records: i32,
        next_offset: i64,
        hw: i64,
        now_ms: i64,
    ) -> Admission {
        s.admit(
            "t",
            0,
            [(records, Some(h))].into_iter(),
            next_offset,
            hw,
            now_ms,
            &mut Vec::new(),
        )
    }

    fn refused_code(a: Admission) -> ErrorCode {
        match a {
            Admission::Refused(e) => e.code(),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn retries_of_the_last_five_batches_are_duplicates() {
        let mut s = ProducerStates::default();
        for i in 0..7 {
            let a = admit(&mut s, header(1, 0, i * 10, 10), 10, i as i64 * 10, 0);
            assert!(matches!(a, Admission::Append { records: 10, .. }), "{a:?}");
            s.committed_through((i as i64 + 1) * 10);
        }
        // Batches 2..=6 are remembered; 0 and 1 are too old.
        let a = admit(&mut s, header(1, 0, 20, 10), 10, 70, 70);
        assert!(
            matches!(a, Admission::Duplicate { base_offset: 20 }),
            "{a:?}"
        );
        let a = admit(&mut s, header(1, 0, 10, 10), 10, 70, 70);
        assert_eq!(refused_code(a), ErrorCode::OutOfOrderSequenceNumber);
        assert_eq!(s.get(1).unwrap().batches.len(), PRODUCER_BATCHES_KEPT);
    }

    #[test]
    fn gaps_stale_epochs_and_new_epochs() {
        let mut s = ProducerStates::default();
        assert!(matches!(
            admit(&mut s, header(1, 2, 0, 5), 5, 0, 0),
            Admission::Append { .. }
        ));
        let a = admit(&mut s, header(1, 2, 6, 1), 1, 5, 0);
        assert_eq!(refused_code(a), ErrorCode::OutOfOrderSequenceNumber);
        let a = admit(&mut s, header(1, 1, 5, 1), 1, 5, 0);
        assert_eq!(refused_code(a), ErrorCode::InvalidProducerEpoch);
        let a = admit(&mut s, header(1, 3, 5, 1), 1, 5, 0);
        assert_eq!(refused_code(a), ErrorCode::OutOfOrderSequenceNumber);
        assert!(matches!(
            admit(&mut s, header(1, 3, 0, 1), 1, 5, 0),
            Admission::Append { base_offset: 5, .. }
        ));
        assert_eq!(s.get(1).unwrap().epoch, 3);
        assert_eq!(s.get(1).unwrap().batches.len(), 1, "a new epoch forgets");
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        let mut s = ProducerStates::load([ProducerStateRow {
            topic_id: 1,
            partition: 0,
            producer_id: 9,
            producer_epoch: 0,
            batches: vec![ProducerBatch {
                first_seq: i32::MAX - 9,
                last_seq: i32::MAX - 1,
                base_offset: 0,
                last_offset: 8,
            }],
            last_timestamp: 0,
        }]);
        let h = header(9, 0, i32::MAX, 3);
        assert_eq!(h.last_seq, 1);
        assert!(matches!(
            admit(&mut s, h, 3, 9, 9),
            Admission::Append { .. }
        ));
        assert!(matches!(
            admit(&mut s, header(9, 0, 2, 1), 1, 12, 9),
            Admission::Append { .. }
        ));
        let a = admit(&mut s, header(9, 0, 0, 1), 1, 13, 9);
        assert_eq!(refused_code(a), ErrorCode::OutOfOrderSequenceNumber);
    }

    #[test]
    fn in_flight_retries_wait_and_roll_back() {
        let mut s = ProducerStates::default();
        assert!(matches!(
            admit(&mut s, header(1, 0, 0, 2), 2, 0, 0),
            Admission::Append { .. }
        ));
        let Admission::DuplicateInFlight { mut original, .. } =
            admit(&mut s, header(1, 0, 0, 2), 2, 2, 0)
        else {
            panic!("expected a wait on the original");
        };
        assert!(original.try_recv().is_err());
        s.committed_through(2);
        assert_eq!(original.try_recv().unwrap(), 0);

        // A failed flush: the in-flight batch and its retries are gone,
        // and the same sequence is new again.
        assert!(matches!(
            admit(&mut s, header(1, 0, 2, 1), 1, 2, 2),
            Admission::Append { .. }
        ));
        let Admission::DuplicateInFlight { original, .. } =
            admit(&mut s, header(1, 0, 2, 1), 1, 3, 2)
        else {
            panic!("expected a wait on the original");
        };
        s.roll_back();
        assert!(original.blocking_recv().is_err());
        assert!(matches!(
            admit(&mut s, header(1, 0, 2, 1), 1, 2, 2),
            Admission::Append { base_offset: 2, .. }
        ));
        // A producer whose only batches rolled back has no state again,
        // but must resend from its first rolled-back batch.
        for (seq, offset) in [(4, 3), (5, 4)] {
            assert!(matches!(
                admit(&mut s, header(2, 0, seq, 1), 1, offset, 2),
                Admission::Append { .. }
            ));
        }
        s.roll_back();
        assert!(s.get(2).is_none());
        assert_eq!(s.get(1).unwrap().batches.len(), 1);
        let a = admit(&mut s, header(2, 0, 5, 1), 1, 3, 3);
        assert_eq!(refused_code(a), ErrorCode::OutOfOrderSequenceNumber);
        assert!(matches!(
            admit(&mut s, header(2, 0, 4, 1), 1, 3, 3),
            Admission::Append { base_offset: 3, .. }
        ));
        assert!(matches!(
            admit(&mut s, header(2, 0, 5, 1), 1, 4, 3),
            Admission::Append { base_offset: 4, .. }
        ));
    }

    #[test]
    fn resume_points_survive_a_new_leadership() {
        // Producer 2 (no committed state) had 0..=1 rolled back and 2..=3
        // in flight; producer 3 had 0..=1 in flight only.
        let mut old = ProducerStates::default();
        admit(&mut old, header(2, 0, 0, 2), 2, 0, 0);
        old.roll_back();
        admit(&mut old, header(3, 0, 0, 2), 2, 0, 0);
        let mut new = ProducerStates::default();
        new.keep_resume_points(&old);
        for (producer, seq) in [(2, 2), (3, 2)] {
            let a = admit(&mut new, header(producer, 0, seq, 2), 2, 0, 0);
            assert_eq!(refused_code(a), ErrorCode::OutOfOrderSequenceNumber);
        }
        for producer in [2, 3] {
            assert!(matches!(
                admit(&mut new, header(producer, 0, 0, 2), 2, 0, 0),
                Admission::Append { .. }
            ));
        }
    }

    #[test]
    fn producers_without_state_start_anywhere() {
        // As in Kafka: the partition may have forgotten the producer.
        let mut s = ProducerStates::default();
        assert!(matches!(
            admit(&mut s, header(1, 0, 40, 2), 2, 0, 0),
            Admission::Append { .. }
        ));
        let a = admit(&mut s, header(1, 0, 43, 1), 1, 2, 0);
        assert_eq!(refused_code(a), ErrorCode::OutOfOrderSequenceNumber);
    }

    #[test]
    fn idle_producers_expire_unless_in_flight() {
        let mut s = ProducerStates::default();
        // Producer 1 wrote at 1000 and is committed; 2 wrote at 1000 and
        // is in flight; 3 wrote at 5000.
        admit_at(&mut s, header(1, 0, 0, 1), 1, 0, 0, 1000);
        s.committed_through(1);
        admit_at(&mut s, header(3, 0, 0, 1), 1, 1, 1, 5000);
        s.committed_through(2);
        admit_at(&mut s, header(2, 0, 0, 1), 1, 2, 2, 1000);
        assert_eq!(s.expire(3000), vec![1]);
        assert!(s.get(1).is_none());
        assert_eq!(s.len(), 2);
        // Producer 1 comes back: its state starts again, wherever it is.
        assert!(matches!(
            admit_at(&mut s, header(1, 0, 7, 1), 1, 3, 2, 6000),
            Admission::Append { base_offset: 3, .. }
        ));
        s.committed_through(4);
        let mut expired = s.expire(5500);
        expired.sort_unstable();
        assert_eq!(expired, vec![2, 3]);
        assert_eq!(s.len(), 1);
        assert!(s.expire(6000).is_empty(), "idle since 6000, not before");
    }
}
