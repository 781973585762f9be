//! Merging small objects into larger ones.
//!
//! Every flush writes one object, so a topic written a little at a time
//! leaves one small file per flush in the object store and one index row per
//! flush and partition in the catalog: millions of each within days, slow
//! to list, back up or read from cold. A merge copies the chunks of many
//! small objects into one object, combining each partition's consecutive
//! chunks into one, and swaps the index rows in one catalog transaction
//! (ARCHITECTURE.md, background work). Offsets, timestamps and bytes are
//! unchanged; only where the bytes live and how many rows describe them.
//!
//! The copied objects are left without chunks and collected after the grace
//! period like any other, so a read that found them in the index before the
//! swap still completes. Nothing is decided on the copy: the transaction
//! checks that every row it replaces is still there as it was read, and a
//! merge that lost a race with retention, a deleted topic or another merge
//! changes nothing (its object, left prepared, is collected on expiry).

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Mutex;

use bytes::Bytes;

use crate::catalog::{Catalog, ChunkRow, Merge, ObjectRow, SmallObject};
use crate::error::Result;
use crate::objects::{object_path, read_footer, ObjectBuilder, Objects};

/// Objects smaller than this are merged. Under load a flush is larger and
/// is left as it is: merging it would double the bytes written for little.
pub const SMALL_OBJECT_BYTES: i64 = 1 << 20;
/// A merge runs once this many small objects wait...
pub const MERGE_AT: usize = 32;
/// ...or once the oldest of two or more has waited this long.
pub const MERGE_AFTER_MS: i64 = 5 * 60 * 1000;
/// Most objects one merge reads.
const MAX_INPUTS: i64 = 1024;
/// Most bytes one merge reads (and holds in memory at once).
const MAX_INPUT_BYTES: i64 = 64 << 20;
/// Most index rows one merge replaces: its catalog transaction holds the
/// writer (SQLite) or the partitions' rows (PostgreSQL) meanwhile, and
/// commits wait for it.
const MAX_REPLACED_ROWS: usize = 4096;
/// A partition's consecutive chunks are combined while the result stays
/// within this: a cold read loads a whole chunk, so a chunk should not be
/// much larger than a fetch asks for.
pub const MAX_CHUNK_BYTES: i64 = 1 << 20;
/// How long the merged object stays collectable if its merge never
/// commits (a crash between the write and the commit).
const PREPARED_TTL_MS: i64 = 10 * 60 * 1000;

/// What a merge did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// Objects whose chunks were copied (each now collectable).
    pub objects: usize,
    pub chunks_before: usize,
    pub chunks_after: usize,
    pub bytes: u64,
    /// The partitions whose index rows changed.
    pub partitions: Vec<(i64, i32)>,
}

/// Whether the small objects found (oldest first) call for a merge.
fn due(small: &[SmallObject], now_ms: i64) -> bool {
    small.len() >= MERGE_AT || (small.len() >= 2 && small[0].created_ms <= now_ms - MERGE_AFTER_MS)
}

/// Runs of chunks (sorted by topic, partition and offset) that become one
/// chunk each: consecutive offsets of one partition, written under one
/// leader epoch, within [`MAX_CHUNK_BYTES`] together.
pub fn plan_runs(chunks: &[ChunkRow]) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, c) in chunks.iter().enumerate() {
        if i > start {
            let prev = &chunks[i - 1];
            let joins = c.topic_id == prev.topic_id
                && c.partition == prev.partition
                && c.base_offset == prev.last_offset + 1
                && c.leader_epoch == prev.leader_epoch
                && bytes + c.byte_len <= MAX_CHUNK_BYTES;
            if !joins {
                runs.push(start..i);
                start = i;
                bytes = 0;
            }
        }
        bytes += c.byte_len;
    }
    if start < chunks.len() {
        runs.push(start..chunks.len());
    }
    runs
}

/// Merges the oldest small objects if enough of them wait; `None` if none
/// was due, or the merge lost a race and changed nothing. Objects that
/// cannot be read and checked are added to `unreadable` and passed over
/// from then on (they would otherwise stay the oldest, and keep a merge
/// due on every pass).
pub async fn merge_small_objects(
    catalog: &dyn Catalog,
    objects: &Objects,
    owner: &str,
    unreadable: &Mutex<HashSet<i64>>,
) -> Result<Option<Merged>> {
    let now = crate::now_ms();
    let small: Vec<SmallObject> = {
        let found = catalog
            .small_objects(SMALL_OBJECT_BYTES, MAX_INPUTS)
            .await?;
        let skip = unreadable.lock().unwrap_or_else(|p| p.into_inner());
        found
            .into_iter()
            .filter(|o| !skip.contains(&o.id))
            .collect()
    };
    if !due(&small, now) {
        return Ok(None);
    }
    let mut total = 0;
    let candidates: Vec<i64> = small
        .iter()
        .take_while(|o| {
            total += o.size_bytes;
            total <= MAX_INPUT_BYTES
        })
        .map(|o| o.id)
        .collect();
    let mut chunks = catalog.chunks_in_objects(&candidates).await?;
    // The oldest objects whose rows fit in one transaction.
    let mut rows_of: HashMap<i64, usize> = HashMap::new();
    for c in &chunks {
        *rows_of.entry(c.object_id).or_default() += 1;
    }
    let mut inputs = HashSet::new();
    let mut rows = 0;
    for id in &candidates {
        let n = rows_of.get(id).copied().unwrap_or(0);
        if rows + n > MAX_REPLACED_ROWS && !inputs.is_empty() {
            break;
        }
        rows += n;
        inputs.insert(*id);
    }
    chunks.retain(|c| inputs.contains(&c.object_id));
    let bodies = read_objects(objects, &chunks).await;
    {
        let mut skip = unreadable.lock().unwrap_or_else(|p| p.into_inner());
        skip.extend(
            rows_of
                .keys()
                .filter(|id| inputs.contains(*id) && !bodies.contains_key(*id)),
        );
    }
    chunks.retain(|c| bodies.contains_key(&c.object_id));
    if bodies.len() < 2 {
        return Ok(None);
    }

    let id = (rand::random::<u64>() >> 1) as i64;
    let runs = plan_runs(&chunks);
    let size: i64 = chunks.iter().map(|c| c.byte_len).sum();
    let mut builder = ObjectBuilder::with_capacity(size as usize);
    let mut merged = Vec::with_capacity(runs.len());
    for run in runs {
        let run = &chunks[run];
        let start = builder.position();
        for c in run {
            let body = &bodies[&c.object_id];
            let at = c.byte_start as usize;
            builder.push_batch(&body[at..at + c.byte_len as usize]);
        }
        let (first, last) = (&run[0], &run[run.len() - 1]);
        let max_timestamp = run.iter().map(|c| c.max_timestamp).max().unwrap_or(-1);
        merged.push(end_copied_chunk(
            &mut builder,
            start,
            first,
            last,
            max_timestamp,
            id,
        ));
    }
    let body = builder.finish();
    let mut partitions: Vec<(i64, i32)> =
        merged.iter().map(|c| (c.topic_id, c.partition)).collect();
    partitions.dedup();
    let outcome = Merged {
        objects: bodies.len(),
        chunks_before: chunks.len(),
        chunks_after: merged.len(),
        bytes: body.len() as u64,
        partitions,
    };
    let merge = Merge {
        object_id: id,
        object_size: body.len() as i64,
        replaced: chunks,
        merged,
    };
    if !commit_copy(catalog, objects, owner, now, merge, body).await? {
        tracing::info!(
            object = %object_path(id),
            "a merge lost a race with retention, a deletion or another merge and changed nothing; its object will be collected"
        );
        return Ok(None);
    }
    Ok(Some(outcome))
}

/// Records the batches pushed since `start` as one chunk copied from the
/// rows `first` to `last` (one partition, consecutive offsets), in object
/// `object_id`; returns its index row. Shared by merges and compaction.
pub(crate) fn end_copied_chunk(
    builder: &mut ObjectBuilder,
    start: usize,
    first: &ChunkRow,
    last: &ChunkRow,
    max_timestamp: i64,
    object_id: i64,
) -> ChunkRow {
    let (byte_start, byte_len) = builder.end_chunk(
        start,
        first.topic_id,
        first.partition,
        first.base_offset,
        last.last_offset,
    );
    ChunkRow {
        topic_id: first.topic_id,
        partition: first.partition,
        base_offset: first.base_offset,
        last_offset: last.last_offset,
        max_timestamp,
        leader_epoch: first.leader_epoch,
        object_id,
        byte_start: byte_start as i64,
        byte_len: byte_len as i64,
    }
}

/// Registers, writes and commits the object of a copy (a merge, or a
/// compaction section): false if its swap lost a race, in which case the
/// object, left prepared, is collected on expiry. Shared by merges and
/// compaction.
pub(crate) async fn commit_copy(
    catalog: &dyn Catalog,
    objects: &Objects,
    owner: &str,
    now_ms: i64,
    copy: Merge,
    body: Bytes,
) -> Result<bool> {
    let object = ObjectRow {
        id: copy.object_id,
        path: object_path(copy.object_id),
        owner: owner.to_string(),
        created_ms: now_ms,
        expires_ms: now_ms + PREPARED_TTL_MS,
    };
    catalog.register_object(&object).await?;
    objects.put(&object.path, body).await?;
    catalog.merge_chunks(&copy).await
}

/// The objects holding `chunks`, each read whole, its checksum checked and
/// its footer agreeing with the index about every chunk in it. One that
/// does not is left out (and logged), and so are its chunks: a merge must
/// not copy a mismatch between the index and the bytes for good.
async fn read_objects(objects: &Objects, chunks: &[ChunkRow]) -> HashMap<i64, Bytes> {
    let mut by_object: HashMap<i64, Vec<&ChunkRow>> = HashMap::new();
    for c in chunks {
        by_object.entry(c.object_id).or_default().push(c);
    }
    let mut bodies = HashMap::with_capacity(by_object.len());
    for (id, rows) in by_object {
        let path = object_path(id);
        let body = match objects.get(&path).await {
            Ok(body) => body,
            Err(e) => {
                tracing::warn!(object = %path, error = %e, "not merging an unreadable object");
                continue;
            }
        };
        let footer = match read_footer(&body) {
            Ok(footer) => footer,
            Err(e) => {
                tracing::warn!(object = %path, error = %e, "not merging a damaged object");
                continue;
            }
        };
        let described = |c: &ChunkRow| {
            let within = c.byte_start >= 0 && c.byte_start + c.byte_len <= body.len() as i64;
            within
                && footer.iter().any(|e| {
                    e.topic_id == c.topic_id
                        && e.partition == c.partition
                        && e.base_offset == c.base_offset
                        && e.last_offset == c.last_offset
                        && e.byte_start as i64 == c.byte_start
                        && e.byte_len as i64 == c.byte_len
                })
        };
        if let Some(c) = rows.iter().find(|c| !described(c)) {
            tracing::warn!(object = %path, chunk = ?c, "not merging an object whose footer does not list a chunk the index puts in it");
            continue;
        }
        bodies.insert(id, body);
    }
    bodies
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(partition: i32, base: i64, last: i64, epoch: i32, len: i64) -> ChunkRow {
        ChunkRow {
            topic_id: 1,
            partition,
            base_offset: base,
            last_offset: last,
            max_timestamp: base,
            leader_epoch: epoch,
            object_id: base,
            byte_start: 0,
            byte_len: len,
        }
    }

    #[test]
    fn runs_join_consecutive_chunks_of_one_partition_and_epoch_within_the_size() {
        let chunks = [
            chunk(0, 0, 4, 1, 100),
            chunk(0, 5, 9, 1, 100),
            // A gap (offsets 10-11 live in an object not merged).
            chunk(0, 12, 12, 1, 100),
            // A new leader epoch.
            chunk(0, 13, 13, 2, 100),
            chunk(0, 14, 20, 2, MAX_CHUNK_BYTES - 100),
            // Over the size with the previous one.
            chunk(0, 21, 21, 2, 200),
            // Another partition.
            chunk(1, 22, 22, 2, 10),
        ];
        assert_eq!(plan_runs(&chunks), vec![0..2, 2..3, 3..5, 5..6, 6..7]);
        assert!(plan_runs(&[]).is_empty());
    }

    #[test]
    fn a_merge_is_due_by_count_or_by_age() {
        let at = |created_ms| SmallObject {
            id: created_ms,
            size_bytes: 10,
            created_ms,
        };
        let now = MERGE_AFTER_MS * 10;
        let fresh: Vec<_> = (0..MERGE_AT as i64 - 1).map(|i| at(now - i)).collect();
        assert!(!due(&fresh, now));
        let many: Vec<_> = (0..MERGE_AT as i64).map(|i| at(now - i)).collect();
        assert!(due(&many, now));
        assert!(due(&[at(now - MERGE_AFTER_MS), at(now)], now));
        assert!(!due(&[at(now - MERGE_AFTER_MS)], now), "one object alone");
    }
}
