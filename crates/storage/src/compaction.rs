//! Log compaction: a topic whose `cleanup.policy` includes `compact` keeps
//! the latest record of each key (ARCHITECTURE.md, background work).
//!
//! A partition's log has a cleaned part, below the offset its last
//! compaction reached (kept in the catalog), and a dirty part from there
//! on. Once the dirty part is `min.cleanable.dirty.ratio` of the log's
//! bytes, or its oldest chunk has waited `max.compaction.lag.ms`, a pass:
//!
//! 1. maps each key of the dirty part to its latest offset, stopping before
//!    the log's last chunk, before the first chunk newer than
//!    `min.compaction.lag.ms`, or once the map fills its memory budget (the
//!    next pass goes on from there);
//! 2. copies the log from its start up to where the map stopped, keeping a
//!    record unless the map holds a later offset for its key, and dropping
//!    records without a key (as Kafka's cleaner does) and tombstones whose
//!    batch's delete horizon has passed;
//! 3. swaps each copied section's index rows in one catalog transaction, as
//!    a merge does (see `crate::merge`), so a section that lost a race with
//!    retention or a deletion changes nothing;
//! 4. records the new cleaned offset.
//!
//! Tombstones expire as in Kafka since KIP-534: the first pass that keeps
//! a tombstone gives its batch a delete horizon, the broker's time plus
//! `delete.retention.ms`, and a pass after that horizon drops it. A
//! consumer that reads the log from the start within `delete.retention.ms`
//! of its cleaning sees the deletion, whatever timestamp the producer gave.
//!
//! Offsets never move: a batch that lost records keeps its base and last
//! offset (see `sluice_protocol::batch_records`), and a chunk that lost
//! them all leaves a gap that readers step over, as Kafka's do. The log's
//! last chunk is never cleaned (Kafka never cleans its active segment), so
//! a consumer at the end of a quiet log always has records to step past to
//! the high watermark. A record is only dropped when a later record of its
//! key stays (or it is an expired tombstone), so a pass cut short anywhere
//! leaves a correct log. Batches of transactions (Sluice writes none yet)
//! and batches whose records cannot be read are kept whole and left out of
//! the map, so they never cause another record's removal; no tombstone
//! after such a batch expires, since the batch may hold an older value of
//! its key.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use sluice_protocol::batch::{parse_header, BatchError, BatchHeader};
use sluice_protocol::batch_records::{delete_horizon, read_records, BatchRecords, RecordEntry};

use crate::catalog::{Catalog, ChunkRow, Merge};
use crate::error::{Result, StorageError};
use crate::merge::{commit_copy, end_copied_chunk, MAX_CHUNK_BYTES};
use crate::objects::{object_path, ObjectBuilder, Objects};
use crate::topic_config::TopicConfig;

/// Per-entry bytes of the key map counted on top of the key.
const ENTRY_OVERHEAD: usize = 48;

/// How much one pass may hold and change at once.
#[derive(Debug, Clone, Copy)]
pub struct CompactionLimits {
    /// Memory the key map of one pass may use (keys plus about 48 bytes of
    /// bookkeeping each), as Kafka's `log.cleaner.dedupe.buffer.size`
    /// bounds its cleaner; the pass cleans as far as the map reaches.
    pub map_bytes: usize,
    /// Most chunk bytes one section copies (and holds in memory at once).
    pub section_bytes: i64,
    /// Most index rows one section replaces, as for a merge: its catalog
    /// transaction holds up commits meanwhile.
    pub section_rows: usize,
}

impl Default for CompactionLimits {
    fn default() -> Self {
        CompactionLimits {
            map_bytes: 64 << 20,
            section_bytes: 64 << 20,
            section_rows: 4096,
        }
    }
}
/// Index rows read from the catalog at a time.
const PAGE: i64 = 256;

/// The topic's compaction settings.
#[derive(Debug, Clone, Copy)]
pub struct CompactionRules {
    pub min_dirty_ratio: f64,
    pub min_lag_ms: i64,
    pub max_lag_ms: i64,
    pub delete_retention_ms: i64,
}

impl CompactionRules {
    pub fn of(config: &TopicConfig) -> Self {
        CompactionRules {
            min_dirty_ratio: config.min_cleanable_dirty_ratio(),
            min_lag_ms: config.min_compaction_lag_ms(),
            max_lag_ms: config.max_compaction_lag_ms(),
            delete_retention_ms: config.delete_retention_ms(),
        }
    }
}

/// One partition as a pass finds it, with its topic's rules.
#[derive(Debug, Clone, Copy)]
pub struct PartitionToCompact {
    pub topic_id: i64,
    pub partition: i32,
    pub log_start: i64,
    pub high_watermark: i64,
    pub rules: CompactionRules,
}

/// What a pass over one partition did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compacted {
    /// The offset the pass cleaned the log up to.
    pub cleaned_to: i64,
    /// Whether it got there: false if a section lost a race (the sections
    /// before it stay compacted; the next pass goes on).
    pub finished: bool,
    /// The offset below which the rewritten sections lie.
    pub rewritten_to: i64,
    pub records_removed: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Sections rewritten (0 when nothing changed).
    pub sections: usize,
}

/// What one pass keeps and drops (shared with the blocking pool, where
/// the records are read and rebuilt).
struct Cleaner {
    /// The latest offset of each key of the mapped dirty part.
    latest: HashMap<Vec<u8>, i64>,
    now_ms: i64,
    /// The delete horizon a batch gets when its tombstones are first kept.
    new_horizon: i64,
}

/// One chunk's batches as they will be stored.
struct FilteredChunk {
    kept: Vec<Bytes>,
    removed: u64,
    changed: bool,
    /// Whether a batch was kept whole without its keys being known
    /// (transactional, or unreadable) by the end of this chunk.
    unknown_below: bool,
}

impl Cleaner {
    /// Whether a record stays. `unknown_below`: a batch kept whole without
    /// its keys being known lies below it, which may hold an older value
    /// of a tombstone's key, so no tombstone may expire.
    fn keeps(
        &self,
        h: &BatchHeader,
        e: &RecordEntry,
        key: Option<&[u8]>,
        unknown_below: bool,
    ) -> bool {
        let Some(key) = key else { return false };
        if self
            .latest
            .get(key)
            .is_some_and(|&latest| latest > e.offset)
        {
            return false;
        }
        let expired_tombstone = !e.has_value
            && !unknown_below
            && delete_horizon(h).is_some_and(|horizon| horizon <= self.now_ms);
        !expired_tombstone
    }

    /// Filters one chunk's batches (CPU work: run on the blocking pool).
    fn filter(&self, c: &ChunkRow, bytes: &Bytes, unknown_below: bool) -> Result<FilteredChunk> {
        let mut out = FilteredChunk {
            kept: Vec::new(),
            removed: 0,
            changed: false,
            unknown_below,
        };
        let batches = chunk_batches(c, bytes)?;
        for &(at, h) in &batches {
            let batch = bytes.slice(at..at + h.size);
            if h.is_transactional() || h.is_control() {
                out.unknown_below = true;
                out.kept.push(batch);
                continue;
            }
            let Some(records) = readable(c, &h, &batch)? else {
                out.unknown_below = true;
                out.kept.push(batch);
                continue;
            };
            let retained: Vec<&RecordEntry> = records
                .entries
                .iter()
                .filter(|e| self.keeps(&h, e, records.key(e), out.unknown_below))
                .collect();
            out.removed += (records.entries.len() - retained.len()) as u64;
            let new_horizon = (delete_horizon(&h).is_none()
                && retained.iter().any(|e| !e.has_value))
            .then_some(self.new_horizon);
            if retained.is_empty() {
                out.changed = true;
            } else if retained.len() == records.entries.len() && new_horizon.is_none() {
                out.kept.push(batch);
            } else {
                out.changed = true;
                let rebuilt = records
                    .rebuild(&batch, retained, new_horizon)
                    .map_err(|e| {
                        StorageError::CorruptObject(object_path(c.object_id), e.to_string())
                    })?;
                out.kept.push(Bytes::from(rebuilt));
            }
        }
        Ok(out)
    }
}

/// Runs CPU work (decompressing, hashing keys, compressing again) on the
/// blocking pool, so that a long pass never holds up produce and fetch on
/// the broker's workers.
async fn on_blocking_pool<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StorageError::Background(format!("compaction: {e}")))?
}

/// Compacts one partition if it is due; `None` if it was not, or no chunk
/// was old enough to map. A pass whose section lost a race returns what it
/// did before that, unfinished (the next pass goes on).
pub async fn compact_partition(
    catalog: &dyn Catalog,
    objects: &Objects,
    owner: &str,
    p: PartitionToCompact,
    limits: CompactionLimits,
    now_ms: i64,
) -> Result<Option<Compacted>> {
    let rules = p.rules;
    let cleaned = catalog
        .cleaned_offset(p.topic_id, p.partition)
        .await?
        .unwrap_or(p.log_start)
        .max(p.log_start);
    if !due(catalog, p, cleaned, rules, now_ms).await? {
        return Ok(None);
    }
    let (latest, end) = latest_offsets(catalog, objects, p, cleaned, limits, now_ms).await?;
    if end <= cleaned {
        return Ok(None);
    }
    let cleaner = Arc::new(Cleaner {
        latest,
        now_ms,
        new_horizon: now_ms.saturating_add(rules.delete_retention_ms),
    });
    let mut unknown_below = false;
    let mut done = Compacted {
        cleaned_to: end,
        rewritten_to: p.log_start,
        ..Default::default()
    };
    let mut chunks = ChunkCursor::new(catalog, &p, p.log_start);
    let mut section: Vec<ChunkRow> = Vec::new();
    let mut section_bytes = 0;
    loop {
        let mut next = chunks.next().await?;
        if let Some(c) = next.filter(|c| c.last_offset >= end) {
            // A chunk a merge joined across `end` is left for the next
            // pass: part of it was never mapped.
            if c.base_offset < end {
                done.cleaned_to = c.base_offset;
            }
            next = None;
        }
        let full = next.is_none_or(|c| {
            section_bytes + c.byte_len > limits.section_bytes
                || section.len() == limits.section_rows
        });
        if !section.is_empty() && full {
            let copied = copy_section(
                catalog,
                objects,
                owner,
                &section,
                &cleaner,
                &mut unknown_below,
                &mut done,
            )
            .await?;
            if !copied {
                return Ok(Some(done));
            }
            section.clear();
            section_bytes = 0;
        }
        let Some(c) = next else { break };
        section_bytes += c.byte_len;
        section.push(c);
    }
    catalog
        .set_cleaned_offset(p.topic_id, p.partition, done.cleaned_to)
        .await?;
    done.finished = true;
    Ok(Some(done))
}

/// Whether the dirty part is large enough, or old enough, to compact.
async fn due(
    catalog: &dyn Catalog,
    p: PartitionToCompact,
    cleaned: i64,
    rules: CompactionRules,
    now_ms: i64,
) -> Result<bool> {
    let dirty = catalog
        .partition_bytes_from(p.topic_id, p.partition, cleaned)
        .await?;
    if dirty == 0 {
        return Ok(false);
    }
    let total = catalog.partition_bytes(p.topic_id, p.partition).await?;
    if dirty as f64 >= rules.min_dirty_ratio * total as f64 {
        return Ok(true);
    }
    if rules.max_lag_ms == i64::MAX {
        return Ok(false);
    }
    let oldest = catalog
        .chunks_from(p.topic_id, p.partition, cleaned, 1)
        .await?;
    Ok(oldest
        .first()
        .is_some_and(|c| c.max_timestamp <= now_ms.saturating_sub(rules.max_lag_ms)))
}

/// The latest offset of each key from `cleaned` on, and the offset the map
/// reaches (a chunk boundary; `cleaned` if no chunk could be mapped).
async fn latest_offsets(
    catalog: &dyn Catalog,
    objects: &Objects,
    p: PartitionToCompact,
    cleaned: i64,
    limits: CompactionLimits,
    now_ms: i64,
) -> Result<(HashMap<Vec<u8>, i64>, i64)> {
    let newest_cleanable = match p.rules.min_lag_ms {
        0 => i64::MAX,
        lag => now_ms.saturating_sub(lag),
    };
    let mut map: HashMap<Vec<u8>, i64> = HashMap::new();
    let mut map_bytes = 0;
    let mut end = cleaned;
    let mut chunks = ChunkCursor::new(catalog, &p, cleaned);
    while let Some(c) = chunks.next().await? {
        // The log's last chunk is never cleaned, as Kafka never cleans its
        // active segment: a consumer at the end of a quiet log always has
        // records to step past to the high watermark.
        let last_chunk = c.last_offset + 1 >= p.high_watermark;
        if last_chunk || c.max_timestamp > newest_cleanable {
            break;
        }
        let bytes = read_chunk(objects, &c).await?;
        let keys = on_blocking_pool(move || chunk_keys(&c, &bytes)).await?;
        let adds: usize = keys.iter().map(|(k, _)| k.len() + ENTRY_OVERHEAD).sum();
        if end > cleaned && map_bytes + adds > limits.map_bytes {
            break;
        }
        for (key, offset) in keys {
            let len = key.len();
            if map.insert(key, offset).is_none() {
                map_bytes += len + ENTRY_OVERHEAD;
            }
        }
        end = c.last_offset + 1;
    }
    Ok((map, end))
}

/// A partition's chunks from an offset on, in offset order, read from the
/// catalog a page at a time.
struct ChunkCursor<'a> {
    catalog: &'a dyn Catalog,
    topic_id: i64,
    partition: i32,
    /// Where the next page starts.
    from: i64,
    page: std::collections::VecDeque<ChunkRow>,
    /// The last page was short: there is no next one.
    exhausted: bool,
}

impl<'a> ChunkCursor<'a> {
    fn new(catalog: &'a dyn Catalog, p: &PartitionToCompact, from: i64) -> Self {
        ChunkCursor {
            catalog,
            topic_id: p.topic_id,
            partition: p.partition,
            from,
            page: Default::default(),
            exhausted: false,
        }
    }

    async fn next(&mut self) -> Result<Option<ChunkRow>> {
        if self.page.is_empty() && !self.exhausted {
            let page = self
                .catalog
                .chunks_from(self.topic_id, self.partition, self.from, PAGE)
                .await?;
            self.exhausted = page.len() < PAGE as usize;
            if let Some(last) = page.last() {
                self.from = last.last_offset + 1;
            }
            self.page = page.into();
        }
        Ok(self.page.pop_front())
    }
}

/// The keys of a chunk's records with their offsets, leaving out batches
/// of transactions and batches whose records cannot be read.
fn chunk_keys(c: &ChunkRow, bytes: &[u8]) -> Result<Vec<(Vec<u8>, i64)>> {
    let mut keys = Vec::new();
    for (at, h) in chunk_batches(c, bytes)? {
        if h.is_transactional() || h.is_control() {
            continue;
        }
        let Some(records) = readable(c, &h, &bytes[at..at + h.size])? else {
            continue;
        };
        for e in &records.entries {
            if let Some(key) = records.key(e) {
                keys.push((key.to_vec(), e.offset));
            }
        }
    }
    Ok(keys)
}

/// The records of a batch; `None` for a batch whose records cannot be
/// read, which is kept whole and out of the map (always safe, and logged).
/// Corruption stops the pass instead: a rebuilt batch would bless it with
/// a new CRC.
fn readable(c: &ChunkRow, h: &BatchHeader, batch: &[u8]) -> Result<Option<BatchRecords>> {
    match read_records(batch) {
        Ok(records) => Ok(Some(records)),
        Err(e @ (BatchError::BadCrc { .. } | BatchError::Truncated(_))) => {
            Err(StorageError::CorruptObject(
                object_path(c.object_id),
                format!("batch at offset {}: {e}", h.base_offset),
            ))
        }
        Err(e) => {
            tracing::warn!(object = %object_path(c.object_id), offset = h.base_offset, error = %e,
                "compaction keeps a batch whose records it cannot read");
            Ok(None)
        }
    }
}

/// Copies one section's chunks keeping what the cleaner says, and swaps
/// its index rows; false if the swap lost a race. A section where nothing
/// changes is left as it is.
async fn copy_section(
    catalog: &dyn Catalog,
    objects: &Objects,
    owner: &str,
    section: &[ChunkRow],
    cleaner: &Arc<Cleaner>,
    unknown_below: &mut bool,
    done: &mut Compacted,
) -> Result<bool> {
    // Each chunk's batches as they will be stored.
    let mut copies: Vec<(ChunkRow, Vec<Bytes>)> = Vec::with_capacity(section.len());
    let mut removed = 0;
    let mut changed = false;
    for c in section {
        let bytes = read_chunk(objects, c).await?;
        let (chunk, below, shared) = (*c, *unknown_below, cleaner.clone());
        let filtered = on_blocking_pool(move || shared.filter(&chunk, &bytes, below)).await?;
        *unknown_below = filtered.unknown_below;
        removed += filtered.removed;
        changed |= filtered.changed;
        copies.push((*c, filtered.kept));
    }
    let section_end = section
        .last()
        .map_or(done.rewritten_to, |c| c.last_offset + 1);
    if !changed {
        done.rewritten_to = section_end;
        return Ok(true);
    }

    let id = (rand::random::<u64>() >> 1) as i64;
    let mut builder = ObjectBuilder::with_capacity(
        copies
            .iter()
            .flat_map(|(_, kept)| kept.iter().map(Bytes::len))
            .sum(),
    );
    let mut rows = Vec::new();
    for run in plan_copies(&copies) {
        let (first, last) = (&copies[run.start].0, &copies[run.end - 1].0);
        let start = builder.position();
        let mut max_timestamp = -1;
        for (_, kept) in &copies[run] {
            for b in kept {
                builder.push_batch(b);
                max_timestamp = max_timestamp.max(parse_header(b).map_or(-1, |h| h.max_timestamp));
            }
        }
        rows.push(end_copied_chunk(
            &mut builder,
            start,
            first,
            last,
            max_timestamp,
            id,
        ));
    }
    let body = builder.finish();
    let bytes_before: i64 = section.iter().map(|c| c.byte_len).sum();
    let bytes_after: i64 = rows.iter().map(|c| c.byte_len).sum();
    let copy = Merge {
        object_id: id,
        object_size: body.len() as i64,
        replaced: section.to_vec(),
        merged: rows,
    };
    if !commit_copy(catalog, objects, owner, cleaner.now_ms, copy, body).await? {
        tracing::info!(object = %object_path(id),
            "a compaction lost a race with retention, a deletion or a merge and changed nothing; its object will be collected");
        return Ok(false);
    }
    done.rewritten_to = section_end;
    done.records_removed += removed;
    done.bytes_before += bytes_before as u64;
    done.bytes_after += bytes_after as u64;
    done.sections += 1;
    Ok(true)
}

/// Runs of copied chunks (in offset order) stored as one chunk each: those
/// left with batches, of one leader epoch, within [`MAX_CHUNK_BYTES`]
/// together. A run's offset range spans the chunks left empty inside it;
/// chunks left empty at a run's edge leave a gap in the index.
fn plan_copies(copies: &[(ChunkRow, Vec<Bytes>)]) -> Vec<std::ops::Range<usize>> {
    let mut runs = Vec::new();
    let mut run: Option<(usize, usize, i32)> = None; // start, bytes, epoch
    for (i, (c, kept)) in copies.iter().enumerate() {
        if kept.is_empty() {
            continue;
        }
        let len: usize = kept.iter().map(Bytes::len).sum();
        run = match run {
            Some((start, bytes, epoch))
                if epoch == c.leader_epoch && (bytes + len) as i64 <= MAX_CHUNK_BYTES =>
            {
                Some((start, bytes + len, epoch))
            }
            Some((start, ..)) => {
                runs.push(start..last_kept(copies, i));
                Some((i, len, c.leader_epoch))
            }
            None => Some((i, len, c.leader_epoch)),
        };
    }
    if let Some((start, ..)) = run {
        runs.push(start..last_kept(copies, copies.len()));
    }
    runs
}

/// One past the last chunk before `before` that kept a batch.
fn last_kept(copies: &[(ChunkRow, Vec<Bytes>)], before: usize) -> usize {
    copies[..before]
        .iter()
        .rposition(|(_, kept)| !kept.is_empty())
        .map_or(0, |i| i + 1)
}

/// A chunk's bytes from the object store (not through the read cache,
/// which is for consumers).
async fn read_chunk(objects: &Objects, c: &ChunkRow) -> Result<Bytes> {
    let path = object_path(c.object_id);
    let bytes = objects
        .get_range(&path, c.byte_start as u64, c.byte_len as u64)
        .await?;
    if bytes.len() as i64 != c.byte_len {
        return Err(StorageError::CorruptObject(
            path,
            format!(
                "expected {} bytes at {}, got {}",
                c.byte_len,
                c.byte_start,
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

/// The batches of a chunk, which must fill it exactly, with rising
/// offsets inside the chunk's range (the batch CRC does not cover the base
/// offset, so this is what catches a damaged one before it is copied).
fn chunk_batches(c: &ChunkRow, bytes: &[u8]) -> Result<Vec<(usize, BatchHeader)>> {
    let damaged = |why: String| {
        StorageError::CorruptObject(
            object_path(c.object_id),
            format!(
                "chunk of offsets {} to {}: {why}",
                c.base_offset, c.last_offset
            ),
        )
    };
    let mut out = Vec::new();
    let mut at = 0;
    let mut next = c.base_offset;
    while at < bytes.len() {
        let h = parse_header(&bytes[at..]).map_err(|e| damaged(e.to_string()))?;
        // The base offset first: it comes from disk, and the last offset is
        // computed from it.
        if h.base_offset < next
            || h.base_offset > c.last_offset
            || h.last_offset_delta < 0
            || h.last_offset() > c.last_offset
        {
            return Err(damaged(format!(
                "a batch of offsets {} to {} after offset {next}",
                h.base_offset,
                h.last_offset()
            )));
        }
        next = h.last_offset() + 1;
        out.push((at, h));
        at += h.size;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(base: i64, last: i64, epoch: i32, batches: &[usize]) -> (ChunkRow, Vec<Bytes>) {
        let row = ChunkRow {
            topic_id: 1,
            partition: 0,
            base_offset: base,
            last_offset: last,
            max_timestamp: 0,
            leader_epoch: epoch,
            object_id: 1,
            byte_start: 0,
            byte_len: 0,
        };
        (
            row,
            batches.iter().map(|&n| Bytes::from(vec![0u8; n])).collect(),
        )
    }

    #[test]
    fn copies_join_across_empty_chunks_and_split_at_epochs_and_size() {
        let big = MAX_CHUNK_BYTES as usize - 10;
        let copies = [
            copy(0, 9, 1, &[]), // empty at the start: a gap
            copy(10, 19, 1, &[100]),
            copy(20, 29, 1, &[]), // empty inside a run: spanned
            copy(30, 39, 1, &[100]),
            copy(40, 49, 2, &[100]), // a new epoch
            copy(50, 59, 2, &[big]), // over the size
            copy(60, 69, 2, &[]),    // empty at the end: a gap
        ];
        assert_eq!(plan_copies(&copies), vec![1..4, 4..5, 5..6]);
        assert!(plan_copies(&[copy(0, 1, 1, &[])]).is_empty());
    }
}
