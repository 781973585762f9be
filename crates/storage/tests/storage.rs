//! The storage service end to end on the embedded backends: appends become
//! readable at dense offsets, retention removes whole chunks and moves the
//! log start, and objects nobody refers to (or whose commit never
//! happened) are collected.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sluice_storage::catalog::ObjectRow;
use sluice_storage::objects::object_path;
use sluice_storage::storage::{EARLIEST, LATEST};
use sluice_storage::{Storage, StorageError, StorageOptions};

/// A batch of `n` records ("r0", "r1", ...) stamped `timestamp`.
fn batch(n: i32, timestamp: i64) -> Bytes {
    common::record_batch((0..n).map(|i| format!("r{i}").into_bytes()), timestamp)
}

async fn open(dir: &std::path::Path) -> Arc<Storage> {
    open_with_tail(dir, 256 << 20).await
}

/// `open` with an in-memory tail of `tail_bytes` (0: every read is cold).
async fn open_with_tail(dir: &std::path::Path, tail_bytes: usize) -> Arc<Storage> {
    let mut opts = StorageOptions::new(
        format!("sqlite://{}/catalog.db", dir.display()),
        format!("file://{}/objects", dir.display()),
    );
    opts.maintenance_interval = Duration::from_secs(3600);
    opts.collect_grace_ms = 0;
    opts.tail_bytes = tail_bytes;
    Storage::open(opts).await.unwrap()
}

/// A fresh store in a temp dir, with one topic of `partitions`.
async fn with_topic(topic: &str, partitions: i32) -> (tempfile::TempDir, Arc<Storage>) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    s.create_topic(topic, partitions, BTreeMap::new(), false)
        .await
        .unwrap();
    (dir, s)
}

/// Shuts the store down and opens it again on the same data.
async fn reopen(s: Arc<Storage>, dir: &std::path::Path) -> Arc<Storage> {
    s.shutdown().await;
    drop(s);
    open(dir).await
}

/// Object files holding data. (Each commit also prepares an empty file for
/// a later flush's object.)
fn object_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("objects/objects"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.metadata().is_ok_and(|m| m.len() > 0))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn appends_are_dense_and_survive_reopen() {
    let (dir, s) = with_topic("t", 2).await;
    let now = sluice_storage::now_ms();
    let mut expected = 0;
    for round in 0..5 {
        let (a, _) = s.append("t", 1, batch(round + 1, now)).await.unwrap();
        assert_eq!(a.base_offset, expected);
        expected += (round + 1) as i64;
    }
    let r = s.read("t", 1, 4, 1 << 20).await.unwrap();
    assert_eq!(r.high_watermark, 15);
    // The batch holding offset 4 (offsets 3..=5) comes back whole.
    assert_eq!(r.batches.len(), 3);

    let s = reopen(s, dir.path()).await;
    let r = s.read("t", 1, 0, 1 << 20).await.unwrap();
    assert_eq!((r.log_start, r.high_watermark, r.batches.len()), (0, 15, 5));
    assert!(matches!(
        s.read("t", 1, 16, 100).await,
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    let (a, _) = s.append("t", 1, batch(1, now)).await.unwrap();
    assert_eq!(a.base_offset, 15);
}

#[tokio::test]
async fn retention_by_time_and_size_moves_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    let hour = 3_600_000;
    s.create_topic(
        "by-time",
        1,
        BTreeMap::from([("retention.ms".into(), hour.to_string())]),
        false,
    )
    .await
    .unwrap();
    s.create_topic(
        "by-size",
        1,
        BTreeMap::from([("retention.bytes".into(), "300".into())]),
        false,
    )
    .await
    .unwrap();
    let now = sluice_storage::now_ms();
    // Two old batches, then a fresh one (each append is its own chunk).
    s.append("by-time", 0, batch(3, now - 3 * hour))
        .await
        .unwrap();
    s.append("by-time", 0, batch(3, now - 2 * hour))
        .await
        .unwrap();
    s.append("by-time", 0, batch(3, now)).await.unwrap();
    for _ in 0..4 {
        s.append("by-size", 0, batch(3, now)).await.unwrap();
    }
    let size_one = batch(3, now).len() as i64;
    s.apply_retention().await.unwrap();

    assert_eq!(s.offset_at("by-time", 0, EARLIEST).await.unwrap().offset, 6);
    assert!(matches!(
        s.read("by-time", 0, 0, 100).await,
        Err(StorageError::OffsetOutOfRange { log_start: 6, .. })
    ));
    assert_eq!(
        s.read("by-time", 0, 6, 1 << 20)
            .await
            .unwrap()
            .batches
            .len(),
        1
    );

    // Keep the newest chunks while the rest is at least retention.bytes.
    let kept = (300 + size_one - 1) / size_one; // chunks needed to hold 300 bytes
    let start = s.offset_at("by-size", 0, EARLIEST).await.unwrap().offset;
    assert_eq!(start, (4 - kept) * 3);
    assert_eq!(s.offset_at("by-size", 0, LATEST).await.unwrap().offset, 12);

    // The log start is durable.
    let s = reopen(s, dir.path()).await;
    assert_eq!(s.offset_at("by-time", 0, EARLIEST).await.unwrap().offset, 6);
}

#[tokio::test]
async fn unreferenced_and_uncommitted_objects_are_collected() {
    let (dir, s) = with_topic("gone", 1).await;
    let now = sluice_storage::now_ms();
    s.append("gone", 0, batch(2, now)).await.unwrap();
    assert_eq!(object_files(dir.path()), 1);

    // An object written without its catalog commit (a crash between the
    // write and the commit): registered as prepared, already expired.
    let orphan = ObjectRow {
        id: 4242,
        path: object_path(4242),
        owner: "crashed-broker".into(),
        created_ms: 0,
        expires_ms: 1,
    };
    s.catalog().register_object(&orphan).await.unwrap();
    s.objects()
        .put(&orphan.path, Bytes::from_static(b"half a flush"))
        .await
        .unwrap();
    assert_eq!(object_files(dir.path()), 2);

    // The orphan goes; the committed object stays while its chunk is live.
    // (Grace is 0 here: the first pass marks, the second deletes.)
    s.collect_objects().await.unwrap();
    s.collect_objects().await.unwrap();
    assert_eq!(object_files(dir.path()), 1);
    assert_eq!(s.read("gone", 0, 0, 100).await.unwrap().batches.len(), 1);

    s.delete_topic("gone").await.unwrap();
    s.collect_objects().await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    s.collect_objects().await.unwrap();
    assert_eq!(
        object_files(dir.path()),
        0,
        "a deleted topic's objects are collected"
    );
}

#[tokio::test]
async fn failed_object_writes_fail_their_appends_and_offsets_stay_dense() {
    let (dir, s) = with_topic("flaky", 1).await;
    let now = sluice_storage::now_ms();
    assert_eq!(
        s.append("flaky", 0, batch(3, now))
            .await
            .unwrap()
            .0
            .base_offset,
        0
    );

    // Break the object directory: every write fails from now on.
    let objects = dir.path().join("objects/objects");
    std::fs::rename(&objects, dir.path().join("objects/moved")).unwrap();
    std::fs::write(&objects, b"not a directory").unwrap();
    let attempts: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.append("flaky", 0, batch(2, now)).await })
        })
        .collect();
    for a in attempts {
        let e = a.await.unwrap().unwrap_err();
        assert_eq!(
            e.code(),
            sluice_protocol::ErrorCode::KafkaStorageError,
            "{e}"
        );
    }
    assert_eq!(
        s.offset_at("flaky", 0, LATEST).await.unwrap().offset,
        3,
        "nothing failed became visible"
    );

    // Repair it: the next append takes the next dense offset.
    std::fs::remove_file(&objects).unwrap();
    std::fs::rename(dir.path().join("objects/moved"), &objects).unwrap();
    assert_eq!(
        s.append("flaky", 0, batch(1, now))
            .await
            .unwrap()
            .0
            .base_offset,
        3
    );
    let r = s.read("flaky", 0, 0, 1 << 20).await.unwrap();
    assert_eq!((r.high_watermark, r.batches.len()), (4, 2));
}

#[tokio::test]
async fn cold_reads_walk_the_chunk_index_past_one_page() {
    let (dir, s) = with_topic("many", 1).await;
    let now = sluice_storage::now_ms();
    // One commit, so one chunk, per append.
    for _ in 0..150 {
        s.append("many", 0, batch(1, now)).await.unwrap();
    }

    // After a restart every read is cold: through the catalog's index, a
    // page of 64 chunks at a time, and the partition's cached page.
    let s = reopen(s, dir.path()).await;
    for from in [0, 10, 63, 64, 70, 149, 5] {
        let r = s.read("many", 0, from, 1 << 20).await.unwrap();
        assert_eq!(r.batches.len(), 150 - from as usize, "from {from}");
    }
    // A budget still stops a read within a page.
    let r = s.read("many", 0, 0, 1).await.unwrap();
    assert_eq!(r.batches.len(), 1);
}

/// Every batch of a partition from offset 0, as one byte string.
async fn all_bytes(s: &Storage, topic: &str, partition: i32) -> Vec<u8> {
    s.read(topic, partition, 0, 64 << 20)
        .await
        .unwrap()
        .batches
        .concat()
}

#[tokio::test]
async fn small_objects_are_merged_and_read_back_the_same() {
    // No tail: every read goes through the index and the objects.
    let dir = tempfile::tempdir().unwrap();
    let s = open_with_tail(dir.path(), 0).await;
    s.create_topic("small", 2, BTreeMap::new(), false)
        .await
        .unwrap();
    let now = sluice_storage::now_ms();
    // One commit, so one object, per append.
    for i in 0..40 {
        s.append("small", i % 2, batch(1 + i % 3, now))
            .await
            .unwrap();
        if i == 9 {
            assert_eq!(
                s.merge_small_objects().await.unwrap(),
                None,
                "ten young objects are not worth a merge yet"
            );
        }
    }
    assert_eq!(object_files(dir.path()), 40);
    let before = [
        all_bytes(&s, "small", 0).await,
        all_bytes(&s, "small", 1).await,
    ];
    let topic_id = s.topic("small").unwrap().id;
    let old_page = s.catalog().chunks_from(topic_id, 0, 0, 100).await.unwrap();
    assert_eq!(old_page.len(), 20);

    let m = s.merge_small_objects().await.unwrap().expect("a merge");
    assert_eq!(
        (m.objects, m.chunks_before, m.chunks_after),
        (40, 40, 2),
        "each partition's chunks become one"
    );
    // The copied objects go once nothing refers to them (grace is 0 here:
    // the first pass marks, the second deletes).
    s.collect_objects().await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    s.collect_objects().await.unwrap();
    assert_eq!(object_files(dir.path()), 1);
    for p in 0..2 {
        assert_eq!(
            all_bytes(&s, "small", p).await,
            before[p as usize],
            "partition {p}"
        );
        // From inside the merged chunk: the batch holding offset 7 first.
        let r = s.read("small", p, 7, 64 << 20).await.unwrap();
        let first = sluice_protocol::batch::parse_header(&r.batches[0]).unwrap();
        assert!(
            first.base_offset <= 7 && first.last_offset() >= 7,
            "{first:?}"
        );
    }
    // After a restart; and nothing more to merge.
    s.shutdown().await;
    drop(s);
    let s = open_with_tail(dir.path(), 0).await;
    for p in 0..2 {
        assert_eq!(all_bytes(&s, "small", p).await, before[p as usize]);
    }
    // A read through an index page cached before the merge (and chunks not
    // in the read cache: this is a new process) finds its objects gone and
    // reads the index again.
    s.shutdown().await;
    drop(s);
    let s = open_with_tail(dir.path(), 0).await;
    s.partition("small", 0)
        .unwrap()
        .cache_chunk_page(old_page.into());
    assert_eq!(all_bytes(&s, "small", 0).await, before[0]);
    assert_eq!(s.merge_small_objects().await.unwrap(), None);
    // Offsets stay dense across the merged chunks: the next append lands
    // right after them.
    let end = s.offset_at("small", 0, LATEST).await.unwrap().offset;
    let next = s.append("small", 0, batch(1, now)).await.unwrap();
    assert_eq!(next.0.base_offset, end);
}

#[tokio::test]
async fn a_damaged_object_is_left_out_of_merges() {
    let (dir, s) = with_topic("damaged", 1).await;
    let now = sluice_storage::now_ms();
    for _ in 0..33 {
        s.append("damaged", 0, batch(1, now)).await.unwrap();
    }
    // The oldest object's bytes no longer match its checksum.
    let topic_id = s.topic("damaged").unwrap().id;
    let first = s.catalog().chunks_from(topic_id, 0, 0, 1).await.unwrap()[0];
    let file = dir
        .path()
        .join("objects")
        .join(object_path(first.object_id));
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[first.byte_start as usize + 20] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();

    let m = s.merge_small_objects().await.unwrap().expect("a merge");
    assert_eq!(
        (m.objects, m.chunks_after),
        (32, 1),
        "all but the damaged one"
    );
    let chunks = s.catalog().chunks_from(topic_id, 0, 0, 10).await.unwrap();
    assert_eq!(
        chunks
            .iter()
            .map(|c| (c.base_offset, c.last_offset))
            .collect::<Vec<_>>(),
        vec![(0, 0), (1, 32)]
    );
    assert_eq!(chunks[0].object_id, first.object_id, "left where it was");
    // Passed over from now on, rather than keeping a merge due.
    for _ in 0..31 {
        s.append("damaged", 0, batch(1, now)).await.unwrap();
    }
    assert_eq!(s.merge_small_objects().await.unwrap(), None);
}
