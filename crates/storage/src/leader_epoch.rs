//! Leader epochs as clients see them (KIP-320): the check of the epoch a
//! request says it expects, and where an earlier epoch ended, which a
//! consumer asks (OffsetForLeaderEpoch) to tell a log truncated under it
//! from a log that only changed leader.
//!
//! Sluice never truncates a log (a record is visible only once committed,
//! and a deposed leader's commits fail), so the answer only has to be
//! right, never lower than the truth: a consumer that is told an epoch
//! ended before its position resets it.

use crate::catalog::EpochStart;
use crate::error::{Result, StorageError};
use crate::partition::{Offsets, PartitionLog};

/// Where a leader epoch ended: the epoch the answer is for (the largest
/// known epoch at or below the one asked about) and the first offset after
/// it. `-1` and `-1` when the epoch is unknown (Kafka's undefined answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEnd {
    pub leader_epoch: i32,
    pub end_offset: i64,
}

impl EpochEnd {
    pub const UNDEFINED: EpochEnd = EpochEnd {
        leader_epoch: -1,
        end_offset: -1,
    };
}

impl PartitionLog {
    /// Checks the leader epoch a request expects (`-1`: none), as Kafka
    /// checks Fetch, ListOffsets and OffsetForLeaderEpoch: an older one is
    /// fenced, a newer one unknown; either way the client refreshes its
    /// metadata.
    pub fn check_leader_epoch(&self, expected: i32) -> Result<()> {
        let current = self.offsets().leader_epoch;
        if expected < 0 || expected == current {
            return Ok(());
        }
        let (topic, partition, requested) = (self.topic.clone(), self.partition, expected);
        Err(if expected < current {
            StorageError::FencedLeaderEpoch {
                topic,
                partition,
                requested,
                current,
            }
        } else {
            StorageError::UnknownLeaderEpoch {
                topic,
                partition,
                requested,
                current,
            }
        })
    }
}

/// Where `requested` ended, from the partition's epoch starts and its
/// current offsets, with Kafka's semantics: the current epoch ends at the
/// high watermark; an earlier one at the start of the next epoch that led
/// any records, answered for the largest epoch at or below it that did
/// (or for itself if none is known); an epoch newer than the current one
/// is unknown.
pub fn end_of_epoch(starts: &[EpochStart], requested: i32, now: Offsets) -> EpochEnd {
    if requested < 0 || requested > now.leader_epoch {
        return EpochEnd::UNDEFINED;
    }
    if requested == now.leader_epoch {
        return EpochEnd {
            leader_epoch: requested,
            end_offset: now.high_watermark,
        };
    }
    // An epoch that began where the next one did led no records; Kafka's
    // epoch cache drops it, and so do we.
    let led: Vec<&EpochStart> = starts
        .iter()
        .enumerate()
        .filter(|(i, e)| {
            starts
                .get(i + 1)
                .is_none_or(|next| next.start_offset != e.start_offset)
        })
        .map(|(_, e)| e)
        .collect();
    let end_offset = led
        .iter()
        .find(|e| e.leader_epoch > requested)
        .map_or(now.high_watermark, |e| e.start_offset);
    let leader_epoch = led
        .iter()
        .rev()
        .find(|e| e.leader_epoch <= requested)
        .map_or(requested, |e| e.leader_epoch);
    EpochEnd {
        leader_epoch,
        end_offset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starts(pairs: &[(i32, i64)]) -> Vec<EpochStart> {
        pairs
            .iter()
            .map(|&(leader_epoch, start_offset)| EpochStart {
                leader_epoch,
                start_offset,
            })
            .collect()
    }

    fn now(leader_epoch: i32, high_watermark: i64) -> Offsets {
        Offsets {
            log_start: 0,
            high_watermark,
            leader_epoch,
        }
    }

    fn end(leader_epoch: i32, end_offset: i64) -> EpochEnd {
        EpochEnd {
            leader_epoch,
            end_offset,
        }
    }

    #[test]
    fn an_epoch_ends_where_the_next_epoch_that_led_records_began() {
        // Epoch 2 led nothing (3 began where it did), 5 neither.
        let s = starts(&[(1, 0), (2, 100), (3, 100), (4, 250), (5, 300), (6, 300)]);
        let n = now(6, 420);
        assert_eq!(end_of_epoch(&s, 1, n), end(1, 100));
        assert_eq!(end_of_epoch(&s, 2, n), end(1, 100));
        assert_eq!(end_of_epoch(&s, 3, n), end(3, 250));
        assert_eq!(end_of_epoch(&s, 4, n), end(4, 300));
        assert_eq!(end_of_epoch(&s, 5, n), end(4, 300));
        // The current epoch ends at the high watermark.
        assert_eq!(end_of_epoch(&s, 6, n), end(6, 420));
    }

    #[test]
    fn unknown_epochs() {
        let s = starts(&[(3, 50), (4, 80)]);
        let n = now(4, 90);
        // Newer than the leader, or none at all: undefined.
        assert_eq!(end_of_epoch(&s, 5, n), EpochEnd::UNDEFINED);
        assert_eq!(end_of_epoch(&s, -1, n), EpochEnd::UNDEFINED);
        // Older than any known (a catalog from before epochs were kept):
        // it ended at the latest where the first known one began.
        assert_eq!(end_of_epoch(&s, 1, n), end(1, 50));
        // No epochs known at all: the high watermark, never less.
        assert_eq!(end_of_epoch(&[], 2, n), end(2, 90));
    }
}
