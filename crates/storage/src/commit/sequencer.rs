//! The sequencer: gathers requests into flushes by size class, hands out
//! offsets, keeps each partition's chain of completion signals and spawns
//! one task per flush.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::oneshot::error::TryRecvError;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinSet;

use super::committer::{not_leader, Committer, Flush, PartitionFlush};
use super::{AppendRequest, Appended, FlushPolicy, ObjectPool};
use crate::catalog::{ChunkRow, PartitionCommit};
use crate::error::StorageError;
use crate::objects::ObjectBuilder;
use crate::partition::PartitionLog;
use crate::producer::Admission;

/// A partition: (topic id, partition).
type Key = (i64, i32);

/// The last flush sequenced for a partition.
struct Link {
    /// Fires (its sender is dropped) when that flush is done with the
    /// partition: committed, or failed and rolled back.
    done: oneshot::Receiver<()>,
    /// Whether that flush is a large one.
    large: bool,
}

/// Each partition's last flush, in sequencing order: the chains of
/// completion signals that order commits per partition.
#[derive(Default)]
struct Chains {
    links: HashMap<Key, Link>,
    /// Links kept at the last pruning.
    pruned_at: usize,
}

impl Chains {
    /// Whether the partition's last flush is a large one still in flight.
    fn behind_large(&mut self, key: Key) -> bool {
        let Some(link) = self.links.get_mut(&key) else {
            return false;
        };
        match link.done.try_recv() {
            Err(TryRecvError::Empty) => link.large,
            _ => {
                self.links.remove(&key);
                false
            }
        }
    }

    /// Makes `next` the partition's last flush; returns the signal of the
    /// one before it, if that may still be in flight.
    fn link(&mut self, key: Key, next: Link) -> Option<oneshot::Receiver<()>> {
        self.links.insert(key, next).map(|l| l.done)
    }

    /// Forgets partitions whose last flush is done (a deleted topic's
    /// partitions would otherwise stay forever).
    fn prune(&mut self) {
        if self.links.len() > 2 * self.pruned_at + 1024 {
            self.links
                .retain(|_, l| matches!(l.done.try_recv(), Err(TryRecvError::Empty)));
            self.pruned_at = self.links.len();
        }
    }
}

/// The requests gathered for one round, split by size class.
#[derive(Default)]
struct Round {
    small: Vec<AppendRequest>,
    small_bytes: usize,
    large: Vec<AppendRequest>,
    large_bytes: usize,
    /// Partitions whose requests go to the large flush for the rest of
    /// this round, so that each partition's requests keep their order.
    large_partitions: HashSet<Key>,
}

impl Round {
    fn add(&mut self, r: AppendRequest, policy: &FlushPolicy, chains: &mut Chains) {
        let key = (r.log.topic_id, r.log.partition);
        let bytes = r.bytes();
        if bytes >= policy.isolate_bytes
            || self.large_partitions.contains(&key)
            || chains.behind_large(key)
        {
            self.large_partitions.insert(key);
            self.large_bytes += bytes;
            self.large.push(r);
        } else {
            self.small_bytes += bytes;
            self.small.push(r);
        }
    }

    fn full(&self, policy: &FlushPolicy) -> bool {
        self.small_bytes >= policy.max_bytes
            || self.small.len() >= policy.max_chunks
            || self.large_bytes >= policy.max_bytes
            || self.large.len() >= policy.max_chunks
    }
}

/// Runs until every sender of `rx` is dropped and the last flush is done.
pub(super) async fn run(
    mut rx: mpsc::Receiver<AppendRequest>,
    committer: Arc<Committer>,
    policy: FlushPolicy,
) {
    let depth = policy.pipeline_depth.max(1);
    // Flush slots per size class: small, large.
    let slots = [
        Arc::new(Semaphore::new(depth)),
        Arc::new(Semaphore::new(depth)),
    ];
    let mut chains = Chains::default();
    let mut tasks = JoinSet::new();
    while let Some(first) = rx.recv().await {
        let enqueued = first.enqueued;
        let mut round = Round::default();
        round.add(first, &policy, &mut chains);
        // With no flush of its class in flight, waiting only adds latency:
        // flush what is here now, and let later batches gather behind this
        // flush. With flushes in flight, linger so that each carries more.
        let first_large = round.small.is_empty();
        let deadline = if committer.in_flight.flushes(first_large) == 0 {
            Instant::now()
        } else {
            enqueued + policy.linger
        };
        let stretched = enqueued + policy.max_linger.max(policy.linger);
        while !round.full(&policy) {
            let next = match rx.try_recv() {
                Ok(r) => Some(r),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
                        Ok(r) => r,
                        Err(_) => {
                            gather_while_waiting(&mut rx, &committer, first_large, stretched).await
                        }
                    }
                }
            };
            let Some(r) = next else { break };
            round.add(r, &policy, &mut chains);
        }
        // The small flush first: a partition's small requests in this round
        // came before its large ones.
        for (large, requests) in [(false, round.small), (true, round.large)] {
            if requests.is_empty() {
                continue;
            }
            // (The semaphores are never closed: the result is the slot.)
            let slot = slots[large as usize].clone().acquire_owned().await;
            let Some((flush, predecessors)) =
                build_flush(requests, large, &committer.pool, &mut chains).await
            else {
                continue;
            };
            let counted = committer.in_flight.count(large);
            let committer = committer.clone();
            tasks.spawn(async move {
                committer.run(flush, predecessors).await;
                drop((slot, counted));
            });
        }
        while tasks.try_join_next().is_some() {}
        chains.prune();
    }
    while tasks.join_next().await.is_some() {}
}

/// Past the linger: the next request while a flush of the round's class
/// is written and waiting to commit, until `stretched`; `None` once none
/// waits (or at `stretched`), which cuts the round.
async fn gather_while_waiting(
    rx: &mut mpsc::Receiver<AppendRequest>,
    committer: &Committer,
    large: bool,
    stretched: Instant,
) -> Option<AppendRequest> {
    let in_flight = &committer.in_flight;
    loop {
        // Registered before the check, so that a wake-up in between is
        // not lost.
        let waited = in_flight.waited.notified();
        if in_flight.waiting(large) == 0 {
            return None;
        }
        tokio::select! {
            r = rx.recv() => return r,
            () = waited => {}
            () = tokio::time::sleep_until(stretched.into()) => return None,
        }
    }
}

/// Hands out offsets, lays out the object, and links the flush into its
/// partitions' chains. Returns the flush and the completion signals of
/// the flushes it must wait for.
async fn build_flush(
    requests: Vec<AppendRequest>,
    large: bool,
    pool: &ObjectPool,
    chains: &mut Chains,
) -> Option<(Flush, Vec<oneshot::Receiver<()>>)> {
    let started = Instant::now();
    let mut groups: BTreeMap<Key, Vec<AppendRequest>> = BTreeMap::new();
    for r in requests {
        if r.log.is_fenced() {
            let e = not_leader(&r.log);
            let _ = r.reply.send(Err(e));
            continue;
        }
        groups
            .entry((r.log.topic_id, r.log.partition))
            .or_default()
            .push(r);
    }
    if groups.is_empty() {
        return None;
    }
    let pooled = match pool.take().await {
        Ok(o) => o,
        Err(e) => {
            for r in groups.into_values().flatten() {
                let _ = r.reply.send(Err(e.clone_for_reply()));
            }
            return None;
        }
    };
    let total: usize = groups.values().flatten().map(|r| r.bytes()).sum();
    let mut builder = ObjectBuilder::with_capacity(total);
    let mut partitions = Vec::with_capacity(groups.len());
    let mut predecessors = Vec::new();
    for ((topic_id, partition), requests) in groups {
        let log = requests[0].log.clone();
        let sequenced = log.sequence(requests.iter().map(|r| r.batches.as_slice()));
        let epoch = sequenced.leader_epoch;
        let mut admitted = Vec::with_capacity(requests.len());
        for (r, admission) in requests.into_iter().zip(sequenced.admissions) {
            match admission {
                Admission::Append { base_offset, .. } => admitted.push((r, base_offset)),
                other => answer_unappended(&log, r, other),
            }
        }
        if admitted.is_empty() {
            continue;
        }
        let first = sequenced.first;
        let chunk_start = builder.position();
        let mut next = first;
        let mut max_ts = -1;
        let mut bases = Vec::with_capacity(admitted.len());
        let mut requests = Vec::with_capacity(admitted.len());
        for (r, base) in admitted {
            debug_assert_eq!(base, next);
            bases.push(next);
            for b in &r.batches {
                let stored = builder.push_batch(&b.bytes);
                sluice_protocol::batch::set_base_offset(stored, next);
                sluice_protocol::batch::set_leader_epoch(stored, epoch);
                if let Some(now) = b.log_append_time {
                    sluice_protocol::batch::set_log_append_time(stored, b.bytes.len(), now);
                }
                next += b.records as i64;
                max_ts = max_ts.max(b.max_timestamp);
            }
            requests.push(r);
        }
        let (start, len) = builder.end_chunk(chunk_start, topic_id, partition, first, next - 1);
        // Offsets are handed out: from here the partition's next flush
        // waits for this one.
        let (done, signal) = oneshot::channel();
        predecessors.extend(chains.link(
            (topic_id, partition),
            Link {
                done: signal,
                large,
            },
        ));
        partitions.push(PartitionFlush {
            log,
            requests,
            bases,
            commit: PartitionCommit {
                leader_epoch: epoch,
                chunk: ChunkRow {
                    topic_id,
                    partition,
                    base_offset: first,
                    last_offset: next - 1,
                    max_timestamp: max_ts,
                    leader_epoch: epoch,
                    object_id: pooled.row.id,
                    byte_start: start as i64,
                    byte_len: len as i64,
                },
            },
            generation: sequenced.generation,
            producers: sequenced.producers,
            _done: done,
        });
    }
    if partitions.is_empty() {
        // Every request was a retry or refused: nothing to write.
        pool.give_back(pooled);
        return None;
    }
    let flush = Flush {
        object: pooled.row,
        prepared: pooled.prepared,
        body: builder.finish(),
        partitions,
        started,
        large,
    };
    Some((flush, predecessors))
}

/// Answers a request that is not appended: a retry of a committed batch
/// at once, a retry of a batch in flight when that one is committed, and a
/// refused one with its error.
fn answer_unappended(log: &Arc<PartitionLog>, r: AppendRequest, admission: Admission) {
    let acknowledge = |log: &PartitionLog, base_offset| Appended {
        base_offset,
        log_start: log.offsets().log_start,
        records: 0,
    };
    if matches!(
        admission,
        Admission::Duplicate { .. } | Admission::DuplicateInFlight { .. }
    ) {
        metrics::counter!("sluice_produce_duplicates_total").increment(1);
    }
    match admission {
        Admission::Append { .. } => {}
        Admission::Duplicate { base_offset } => {
            let _ = r.reply.send(Ok(acknowledge(log, base_offset)));
        }
        Admission::DuplicateInFlight { original, failed } => {
            let log = log.clone();
            tokio::spawn(async move {
                let result = match original.await {
                    Ok(base_offset) => Ok(acknowledge(&log, base_offset)),
                    Err(_) => Err(StorageError::Producer(failed)),
                };
                let _ = r.reply.send(result);
            });
        }
        Admission::Refused(e) => {
            let _ = r.reply.send(Err(StorageError::Producer(e)));
        }
    }
}
