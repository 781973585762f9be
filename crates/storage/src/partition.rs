//! A partition on its leader: the committed high watermark, the log start,
//! and a size-bounded tail of recently committed batches so that consumers
//! that keep up are served from memory.
//!
//! Offsets are sequenced by the group commit (see [`crate::commit`]) ahead
//! of the commit, so that several flushes can be in flight; the high
//! watermark moves only when a flush is committed, and the tail holds only
//! committed batches. Idempotent producers' state is checked and updated in
//! the same step that hands out offsets (see [`crate::producer`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::watch;

use crate::catalog::ChunkRow;
use crate::commit::PendingBatch;
use crate::producer::{Admission, ProducerStateRow, ProducerStates};

/// Committed batches kept in memory: one partition's consecutive batches
/// from one flush, back to back.
#[derive(Debug, Clone)]
pub struct TailBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub bytes: Bytes,
}

/// What a read found in the tail.
#[derive(Debug, Default)]
pub struct TailRead {
    pub batches: Vec<Bytes>,
    pub bytes: usize,
}

#[derive(Debug)]
struct State {
    /// The epoch this broker leads the partition with; commits carry it.
    leader_epoch: i32,
    log_start: i64,
    /// Everything below is committed and readable.
    high_watermark: i64,
    /// The next offset to hand out; ahead of the high watermark while
    /// flushes are in flight, and rolled back to it when one fails.
    next_offset: i64,
    tail: VecDeque<TailBatch>,
    tail_bytes: usize,
    /// Set when the catalog no longer accepts our commits for this
    /// partition (topic deleted, or leadership lost).
    fenced: bool,
    /// Counts roll-backs: a flush sequenced before the last roll-back is
    /// doomed, and its own failure must not roll back later flushes.
    generation: u64,
    producers: ProducerStates,
}

/// Drops the tail's oldest batches until it holds at most `budget` bytes
/// (all of them if the newest alone is larger: reads then go to the object
/// store, and the budget stays a bound).
fn trim_tail(s: &mut State, budget: usize) {
    while s.tail_bytes > budget {
        let Some(old) = s.tail.pop_front() else {
            break;
        };
        s.tail_bytes -= old.bytes.len();
    }
}

/// Offsets and producer checks for one flush of a partition.
#[derive(Debug)]
pub struct Sequenced {
    /// The offset the flush's chunk starts at.
    pub first: i64,
    pub leader_epoch: i32,
    /// The roll-back generation the flush was sequenced in.
    pub generation: u64,
    /// One per request, in order.
    pub admissions: Vec<Admission>,
    /// The state of the producers that wrote in this flush, to upsert
    /// with its chunk.
    pub producers: Vec<ProducerStateRow>,
}

/// The index in `page` (consecutive chunks, in offset order) of the first
/// chunk that ends at or after `offset`: the one holding it, if any.
pub fn chunk_holding(page: &[ChunkRow], offset: i64) -> usize {
    page.partition_point(|c| c.last_offset < offset)
}

/// One partition's leader state.
#[derive(Debug)]
pub struct PartitionLog {
    pub topic_id: i64,
    pub topic: String,
    pub partition: i32,
    /// Budget of the in-memory tail; storage shares one global budget
    /// among all partitions and updates this as partitions come and go.
    tail_budget: AtomicUsize,
    state: Mutex<State>,
    /// Wakes long-polling fetches when the high watermark moves.
    hw_tx: watch::Sender<i64>,
    /// The last page of consecutive chunks read from the catalog's index:
    /// a consumer reading old data finds its next chunks here rather than
    /// in a catalog query per fetch. A read checks the log start before it
    /// looks here. A merge moves committed chunks to a new object: it
    /// drops the page, and the old objects outlive a page cached just
    /// before by the collection grace period; past that, a read that fails
    /// reads the index again.
    chunk_page: Mutex<Arc<[ChunkRow]>>,
}

/// A snapshot of the offsets a fetch or ListOffsets response reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offsets {
    pub log_start: i64,
    pub high_watermark: i64,
    pub leader_epoch: i32,
}

impl PartitionLog {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        topic_id: i64,
        topic: &str,
        partition: i32,
        leader_epoch: i32,
        log_start: i64,
        next_offset: i64,
        tail_budget: usize,
        producers: ProducerStates,
    ) -> Self {
        let (hw_tx, _) = watch::channel(next_offset);
        PartitionLog {
            topic_id,
            topic: topic.to_string(),
            partition,
            tail_budget: AtomicUsize::new(tail_budget),
            state: Mutex::new(State {
                leader_epoch,
                log_start,
                high_watermark: next_offset,
                next_offset,
                tail: VecDeque::new(),
                tail_bytes: 0,
                fenced: false,
                generation: 0,
                producers,
            }),
            hw_tx,
            chunk_page: Mutex::new(Arc::from([])),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state half
        // written (every update is a few assignments), so poison is ignored.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn offsets(&self) -> Offsets {
        let s = self.lock();
        Offsets {
            log_start: s.log_start,
            high_watermark: s.high_watermark,
            leader_epoch: s.leader_epoch,
        }
    }

    pub fn is_fenced(&self) -> bool {
        self.lock().fenced
    }

    pub fn fence(&self) {
        self.lock().fenced = true;
        self.hw_tx.send_modify(|_| {});
    }

    /// Resets the partition after taking it over again with a new epoch.
    pub fn reset(
        &self,
        leader_epoch: i32,
        log_start: i64,
        next_offset: i64,
        producers: ProducerStates,
    ) {
        let mut s = self.lock();
        s.generation += 1;
        let mut producers = producers;
        producers.keep_resume_points(&s.producers);
        s.producers = producers;
        s.leader_epoch = leader_epoch;
        s.log_start = log_start;
        s.high_watermark = next_offset;
        s.next_offset = next_offset;
        s.tail.clear();
        s.tail_bytes = 0;
        s.fenced = false;
        drop(s);
        self.cache_chunk_page(Arc::from([]));
        self.hw_tx.send_replace(next_offset);
    }

    /// The cached page of chunks and the index in it of the chunk holding
    /// `offset`, if the page has it.
    pub fn cached_chunk_page(&self, offset: i64) -> Option<(Arc<[ChunkRow]>, usize)> {
        let page = self
            .chunk_page
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let i = chunk_holding(&page, offset);
        (i < page.len() && page[i].base_offset <= offset).then_some((page, i))
    }

    /// Drops the cached page of the chunk index (after a merge replaced
    /// its rows, or a read through it failed).
    pub fn forget_chunk_page(&self) {
        self.cache_chunk_page(Arc::from([]));
    }

    /// Remembers a page of consecutive chunks read from the catalog.
    pub fn cache_chunk_page(&self, page: Arc<[ChunkRow]>) {
        *self.chunk_page.lock().unwrap_or_else(|p| p.into_inner()) = page;
    }

    /// Checks each request's batches against producer state and hands out
    /// offsets to those admitted, in order, under one lock so that no
    /// commit or roll-back slips between the check and the offsets.
    pub fn sequence<'a>(
        &self,
        requests: impl IntoIterator<Item = &'a [PendingBatch]>,
    ) -> Sequenced {
        let mut guard = self.lock();
        let s = &mut *guard;
        let first = s.next_offset;
        let now = crate::now_ms();
        let mut touched = Vec::new();
        let mut admissions = Vec::new();
        for batches in requests {
            let admission = s.producers.admit(
                &self.topic,
                self.partition,
                batches.iter().map(|b| (b.records, b.producer)),
                s.next_offset,
                s.high_watermark,
                now,
                &mut touched,
            );
            if let Admission::Append { records, .. } = admission {
                s.next_offset += records;
            }
            admissions.push(admission);
        }
        touched.sort_unstable();
        touched.dedup();
        Sequenced {
            first,
            leader_epoch: s.leader_epoch,
            generation: s.generation,
            admissions,
            producers: s.producers.rows(self.topic_id, self.partition, &touched),
        }
    }

    /// After a failed flush: offsets handed out beyond the high watermark
    /// are handed out again, so offsets stay dense, and producer state
    /// forgets the batches in flight. A flush of an earlier generation was
    /// already rolled back with the flush that failed first.
    pub fn roll_back_sequence(&self, generation: u64) {
        let mut s = self.lock();
        if generation != s.generation {
            return;
        }
        s.generation += 1;
        s.next_offset = s.high_watermark;
        s.producers.roll_back();
    }

    /// Forgets producers idle since before `idle_before` (the broker's
    /// clock, ms); returns their ids.
    pub fn expire_producers(&self, idle_before: i64) -> Vec<i64> {
        self.lock().producers.expire(idle_before)
    }

    /// Producers with state in this partition (for tests and metrics).
    pub fn producer_count(&self) -> usize {
        self.lock().producers.len()
    }

    /// Sets this partition's share of the global tail budget, dropping its
    /// oldest batches until it fits.
    pub fn set_tail_budget(&self, bytes: usize) {
        self.tail_budget.store(bytes, Ordering::Relaxed);
        trim_tail(&mut self.lock(), bytes);
    }

    /// A receiver that changes whenever the high watermark moves.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.hw_tx.subscribe()
    }

    /// Records batches the catalog has committed and moves the high
    /// watermark past them. Called by the group commit only.
    pub fn committed(&self, batches: impl IntoIterator<Item = TailBatch>, next_offset: i64) {
        let mut s = self.lock();
        for b in batches {
            s.tail_bytes += b.bytes.len();
            s.tail.push_back(b);
        }
        trim_tail(&mut s, self.tail_budget.load(Ordering::Relaxed));
        s.high_watermark = next_offset;
        s.next_offset = s.next_offset.max(next_offset);
        s.producers.committed_through(next_offset);
        drop(s);
        self.hw_tx.send_replace(next_offset);
    }

    /// The committed end of the log, which a flush's chunk must start at.
    pub fn high_watermark(&self) -> i64 {
        self.lock().high_watermark
    }

    /// Whether a flush sequenced in roll-back `generation`, whose chunk
    /// starts at `base_offset`, may commit: nothing was rolled back since,
    /// and everything before its chunk is committed.
    pub fn may_commit(&self, generation: u64, base_offset: i64) -> bool {
        let s = self.lock();
        s.generation == generation && s.high_watermark == base_offset
    }

    /// Moves the log start forward after retention removed old chunks.
    pub fn advance_log_start(&self, log_start: i64) {
        let mut s = self.lock();
        if log_start > s.log_start {
            s.log_start = log_start;
            drop_tail_below(&mut s, log_start);
        }
    }

    /// Drops the tail's batches below `offset` after compaction rewrote
    /// them, so that reads of those offsets find the compacted log.
    pub fn forget_tail_below(&self, offset: i64) {
        drop_tail_below(&mut self.lock(), offset);
    }

    /// Reads from the tail if it covers `offset`: the batch holding
    /// `offset` and those after it, up to `max_bytes` (the first batch is
    /// returned whole even if larger). `None` if the tail starts later.
    pub fn read_tail(&self, offset: i64, max_bytes: usize) -> Option<TailRead> {
        let s = self.lock();
        let first = s.tail.front()?;
        if offset < first.base_offset {
            return None;
        }
        let mut out = TailRead::default();
        let start = s.tail.partition_point(|b| b.last_offset < offset);
        for b in s.tail.range(start..) {
            let (slice, full) =
                slice_batches(&b.bytes, offset, i64::MAX, max_bytes, &mut out.bytes);
            out.batches.extend(slice);
            if full {
                break;
            }
        }
        Some(out)
    }
}

/// Drops the tail's batches that end below `offset`.
fn drop_tail_below(s: &mut State, offset: i64) {
    while s.tail.front().is_some_and(|b| b.last_offset < offset) {
        if let Some(old) = s.tail.pop_front() {
            s.tail_bytes -= old.bytes.len();
        }
    }
}

/// Takes, from consecutive batches stored back to back, those holding
/// `from` and after, below `end`, while the running total `taken` stays
/// within `max_bytes` (a first batch is taken even if larger). Returns one
/// slice (no copy) and whether the read is complete.
pub fn slice_batches(
    chunk: &Bytes,
    from: i64,
    end: i64,
    max_bytes: usize,
    taken: &mut usize,
) -> (Option<Bytes>, bool) {
    let mut range: Option<(usize, usize)> = None;
    let mut full = false;
    for (at, h) in sluice_protocol::batch::batches(chunk) {
        if h.last_offset() < from {
            continue;
        }
        if h.base_offset >= end || (*taken > 0 && *taken + h.size > max_bytes) {
            full = true;
            break;
        }
        range = Some((range.map_or(at, |r| r.0), at + h.size));
        *taken += h.size;
        if *taken >= max_bytes {
            full = true;
            break;
        }
    }
    (range.map(|(a, b)| chunk.slice(a..b)), full)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chunk of one batch with a valid header, `size` bytes long.
    fn batch(base: i64, last: i64, size: usize) -> TailBatch {
        use bytes::BufMut;
        let mut b = bytes::BytesMut::new();
        b.put_i64(base);
        b.put_i32((size - 12) as i32);
        b.put_i32(0);
        b.put_i8(2);
        b.put_u32(0);
        b.put_i16(0);
        b.put_i32((last - base) as i32);
        b.resize(size, 0);
        TailBatch {
            base_offset: base,
            last_offset: last,
            bytes: b.freeze(),
        }
    }

    #[test]
    fn tail_serves_reads_and_stays_within_budget() {
        let log = PartitionLog::new(1, "t", 0, 1, 0, 0, 250, ProducerStates::default());
        assert!(log.read_tail(0, 100).is_none());
        log.committed([batch(0, 4, 100), batch(5, 9, 100)], 10);
        assert_eq!(log.offsets().high_watermark, 10);
        let r = log.read_tail(7, 1000).unwrap();
        assert_eq!((r.batches.len(), r.bytes), (1, 100));
        let r = log.read_tail(0, 150).unwrap();
        assert_eq!(r.batches.len(), 1, "stops before exceeding max_bytes");
        let r = log.read_tail(0, 10).unwrap();
        assert_eq!(
            r.batches.len(),
            1,
            "the first batch is returned even if larger"
        );
        log.committed([batch(10, 10, 100)], 11);
        assert!(
            log.read_tail(0, 100).is_none(),
            "oldest batch evicted over budget"
        );
        assert_eq!(log.read_tail(10, 1000).unwrap().bytes, 100);
        log.set_tail_budget(150);
        assert!(log.read_tail(5, 100).is_none(), "trimmed to a new budget");
        assert_eq!(log.read_tail(10, 1000).unwrap().bytes, 100);
        log.committed([batch(11, 11, 200)], 12);
        assert!(
            log.read_tail(11, 1000).is_none(),
            "a batch over the whole budget is not kept"
        );
        log.set_tail_budget(250);
        log.advance_log_start(10);
        assert_eq!(log.offsets().log_start, 10);
        assert!(log.read_tail(5, 100).is_none());
    }
}
