//! The group commit's ordering on the real SQLite catalog, with an object
//! store whose writes a test can hold and fail: commits are ordered per
//! partition, not globally (a flush of one partition commits while an
//! earlier flush of another is still writing); a large request does not
//! hold up the small ones gathered with it; while a written flush waits to
//! commit, later requests gather into one flush instead of queueing behind
//! it; a failed flush fails the later flushes of its partitions only,
//! leaving offsets dense; and an object written for nothing (its
//! registration expired during the write, or its partitions were taken
//! over) leaves no file behind.

mod common;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use sluice_storage::commit::{Appended, FlushPolicy};
use sluice_storage::objects::Objects;
use sluice_storage::{Storage, StorageOptions};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A batch of `n` records whose values are `value_len` bytes each.
fn batch(n: i32, value_len: usize) -> Bytes {
    let values = (0..n).map(|_| vec![b'v'; value_len]);
    common::record_batch(values, sluice_storage::now_ms())
}

/// A write held by [`Gated`]: `held` fires when the write arrives, and it
/// proceeds (`true`) or fails (`false`) when `release` is sent.
struct Held {
    held: oneshot::Receiver<()>,
    release: oneshot::Sender<bool>,
}

impl Held {
    async fn arrived(&mut self) {
        tokio::time::timeout(Duration::from_secs(10), &mut self.held)
            .await
            .expect("the held write never came")
            .unwrap();
    }
}

struct Hold {
    min_len: usize,
    held: oneshot::Sender<()>,
    release: oneshot::Receiver<bool>,
}

/// An in-memory object store that holds, and can fail, chosen writes.
#[derive(Default)]
struct Gated {
    inner: InMemory,
    holds: Mutex<Vec<Hold>>,
}

impl Gated {
    /// Holds the next write of at least `min_len` bytes.
    fn hold_next(&self, min_len: usize) -> Held {
        let (held_tx, held) = oneshot::channel();
        let (release, release_rx) = oneshot::channel();
        self.holds.lock().unwrap().push(Hold {
            min_len,
            held: held_tx,
            release: release_rx,
        });
        Held { held, release }
    }
}

impl fmt::Debug for Gated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Gated")
    }
}

impl fmt::Display for Gated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Gated")
    }
}

#[async_trait]
impl ObjectStore for Gated {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let hold = {
            let mut holds = self.holds.lock().unwrap();
            let len = payload.content_length();
            holds
                .iter()
                .position(|h| len >= h.min_len)
                .map(|i| holds.remove(i))
        };
        if let Some(h) = hold {
            let _ = h.held.send(());
            if !h.release.await.unwrap_or(true) {
                return Err(object_store::Error::Generic {
                    store: "Gated",
                    source: "injected write failure".into(),
                });
            }
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// Storage on a SQLite catalog in `dir` and the gated store, flushing with
/// `linger` (long enough in some tests that requests sent together are
/// gathered together whenever a flush is in flight).
async fn open(dir: &std::path::Path, store: &Arc<Gated>, linger: Duration) -> Arc<Storage> {
    open_flushing(dir, store, with_linger(linger)).await
}

fn with_linger(linger: Duration) -> FlushPolicy {
    FlushPolicy {
        linger,
        ..FlushPolicy::default()
    }
}

async fn open_flushing(
    dir: &std::path::Path,
    store: &Arc<Gated>,
    flush: FlushPolicy,
) -> Arc<Storage> {
    let mut opts = StorageOptions::new(
        format!("sqlite://{}/catalog.db", dir.display()),
        "memory://",
    );
    opts.maintenance_interval = Duration::from_secs(3600);
    opts.flush = flush;
    let objects = Objects::from_store(store.clone(), "gated memory");
    Storage::open_with(opts, objects).await.unwrap()
}

/// A fresh storage on a [`Gated`] store with topic `t` of `partitions`.
async fn with_topic(
    partitions: i32,
    linger: Duration,
) -> (tempfile::TempDir, Arc<Gated>, Arc<Storage>) {
    with_topic_flushing(partitions, with_linger(linger)).await
}

async fn with_topic_flushing(
    partitions: i32,
    flush: FlushPolicy,
) -> (tempfile::TempDir, Arc<Gated>, Arc<Storage>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Gated::default());
    let s = open_flushing(dir.path(), &store, flush).await;
    s.create_topic("t", partitions, BTreeMap::new(), false)
        .await
        .unwrap();
    (dir, store, s)
}

type Pending = JoinHandle<sluice_storage::error::Result<(Appended, i64)>>;

/// Queues an append to partition `p` of `t`; the handle ends at its commit.
async fn send(s: &Storage, p: i32, records: Bytes) -> Pending {
    let ticket = s.enqueue_append("t", p, records).await.unwrap();
    tokio::spawn(ticket.wait())
}

async fn base_offset(pending: Pending) -> i64 {
    tokio::time::timeout(Duration::from_secs(10), pending)
        .await
        .expect("the append was not answered")
        .unwrap()
        .unwrap()
        .0
        .base_offset
}

/// The error an append was refused with.
async fn refused(pending: Pending) -> sluice_storage::error::StorageError {
    tokio::time::timeout(Duration::from_secs(10), pending)
        .await
        .expect("the append was not answered")
        .unwrap()
        .unwrap_err()
}

fn high_watermark(s: &Storage, p: i32) -> i64 {
    s.partition("t", p).unwrap().offsets().high_watermark
}

/// Partition `p` as a fetch from offset 0 sees it: `count` records at
/// offsets 0, 1, 2… with no gap or overlap.
async fn assert_dense(s: &Storage, p: i32, count: i64) {
    let r = s.read("t", p, 0, 1 << 20).await.unwrap();
    assert_eq!(r.high_watermark, count);
    let mut next = 0;
    for chunk in &r.batches {
        for (_, h) in sluice_protocol::batch::batches(chunk) {
            assert_eq!(h.base_offset, next, "partition {p}: a gap or overlap");
            next = h.last_offset() + 1;
        }
    }
    assert_eq!(next, count, "partition {p}: records missing");
}

#[tokio::test]
async fn a_flush_of_one_partition_commits_while_an_earlier_flush_of_another_is_writing() {
    let (dir, store, s) = with_topic(2, Duration::from_millis(2)).await;

    let mut held = store.hold_next(0);
    let a1 = send(&s, 0, batch(3, 10)).await;
    held.arrived().await;

    // Partition 1's flush comes later and commits while partition 0's
    // object is still being written.
    let b = send(&s, 1, batch(1, 10)).await;
    assert_eq!(base_offset(b).await, 0);
    assert_eq!(high_watermark(&s, 1), 1);
    assert!(!a1.is_finished());
    assert_eq!(high_watermark(&s, 0), 0);

    // A later flush of partition 0 waits for the held one, even though its
    // own object is written.
    let a2 = send(&s, 0, batch(2, 10)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!a1.is_finished() && !a2.is_finished());
    assert_eq!(high_watermark(&s, 0), 0);

    held.release.send(true).unwrap();
    assert_eq!(base_offset(a1).await, 0);
    assert_eq!(base_offset(a2).await, 3);
    assert_dense(&s, 0, 5).await;
    assert_dense(&s, 1, 1).await;

    // The catalog agrees after a restart.
    s.shutdown().await;
    drop(s);
    let s = open(dir.path(), &store, Duration::from_millis(2)).await;
    assert_dense(&s, 0, 5).await;
    assert_dense(&s, 1, 1).await;
}

#[tokio::test]
async fn a_large_request_does_not_hold_up_the_small_ones_gathered_with_it() {
    let (_dir, store, s) = with_topic(3, Duration::from_millis(300)).await;
    let isolate = FlushPolicy::default().isolate_bytes;

    // A small flush in flight, so that the next requests are gathered
    // together (the sequencer lingers).
    let mut first = store.hold_next(0);
    let c = send(&s, 2, batch(1, 10)).await;
    first.arrived().await;

    // A small request and a large one sent together: the large one's
    // write is held, the small one commits regardless.
    let mut large_write = store.hold_next(isolate);
    let small = send(&s, 1, batch(1, 10)).await;
    let large = send(&s, 0, batch(4, isolate / 4 + 1)).await;
    large_write.arrived().await;
    assert_eq!(base_offset(small).await, 0);
    assert!(!large.is_finished());
    assert_eq!(high_watermark(&s, 0), 0);

    // A small request behind the large flush of its partition goes with
    // the large ones: it waits, and the small requests sent with it don't.
    let behind = send(&s, 0, batch(1, 10)).await;
    let other = send(&s, 1, batch(1, 10)).await;
    assert_eq!(base_offset(other).await, 1);
    assert!(!behind.is_finished());

    large_write.release.send(true).unwrap();
    first.release.send(true).unwrap();
    assert_eq!(base_offset(large).await, 0);
    assert_eq!(base_offset(behind).await, 4);
    assert_eq!(base_offset(c).await, 0);
    assert_dense(&s, 0, 5).await;
    assert_dense(&s, 1, 2).await;
    assert_dense(&s, 2, 1).await;
}

/// The paths in the store.
async fn stored(store: &Gated) -> Vec<String> {
    store
        .inner
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap()
}

/// A 2 ms linger, stretched up to `max_linger` while a flush waits.
fn stretching_to(max_linger: Duration) -> FlushPolicy {
    FlushPolicy {
        max_linger,
        ..with_linger(Duration::from_millis(2))
    }
}

/// Partition 0's first flush held in its write, and its second written
/// and waiting for the first: the catalog is "behind" as far as the
/// sequencer can tell. Returns the first write's hold and both appends.
async fn a_written_flush_waiting(s: &Storage, store: &Gated) -> (Held, Pending, Pending) {
    let mut held = store.hold_next(0);
    let a1 = send(s, 0, batch(1, 10)).await;
    held.arrived().await;
    let a2 = send(s, 0, batch(1, 10)).await;
    // a2's flush is cut after the linger; its object is in the store once
    // written.
    stored_until(store, "the second flush was never written", |p| {
        !p.is_empty()
    })
    .await;
    assert!(!a2.is_finished());
    (held, a1, a2)
}

/// Waits, 10 s at most, until the store's paths pass `done`; `what` says
/// what failed to happen.
async fn stored_until(store: &Gated, what: &str, done: impl Fn(&[String]) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let paths = stored(store).await;
        if done(&paths) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {paths:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn while_a_written_flush_waits_to_commit_later_requests_gather_into_one_flush() {
    let (_dir, store, s) = with_topic_flushing(2, stretching_to(Duration::from_secs(60))).await;
    let (held, a1, a2) = a_written_flush_waiting(&s, &store).await;

    // Requests of partition 1, each sent long after the linger: none is cut
    // into a flush of its own while the written flush waits.
    let mut later = Vec::new();
    for _ in 0..3 {
        later.push(send(&s, 1, batch(1, 10)).await);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(later.iter().all(|r| !r.is_finished()));

    // Once it commits, they go at once (not at max_linger), in one flush:
    // one chunk holds all three.
    held.release.send(true).unwrap();
    assert_eq!(base_offset(a1).await, 0);
    assert_eq!(base_offset(a2).await, 1);
    for (i, r) in later.into_iter().enumerate() {
        let base = tokio::time::timeout(Duration::from_secs(2), base_offset(r)).await;
        assert_eq!(base.expect("held past the wait"), i as i64);
    }
    let read = s.read("t", 1, 0, 1 << 20).await.unwrap();
    assert_eq!(read.batches.len(), 1, "one chunk for the three requests");
    assert_dense(&s, 1, 3).await;
}

#[tokio::test]
async fn a_flush_waiting_behind_a_stalled_write_holds_others_up_for_max_linger_at_most() {
    let (_dir, store, s) = with_topic_flushing(2, stretching_to(Duration::from_millis(50))).await;
    let (held, a1, a2) = a_written_flush_waiting(&s, &store).await;

    // Partition 1 commits while partition 0's write is still stalled.
    let b = send(&s, 1, batch(1, 10)).await;
    let base = tokio::time::timeout(Duration::from_secs(2), base_offset(b)).await;
    assert_eq!(base.expect("held behind the stalled write"), 0);
    assert!(!a1.is_finished() && !a2.is_finished());

    held.release.send(true).unwrap();
    assert_eq!(base_offset(a1).await, 0);
    assert_eq!(base_offset(a2).await, 1);
    assert_dense(&s, 0, 2).await;
}

#[tokio::test]
async fn a_failed_flush_fails_its_partitions_later_flushes_and_offsets_stay_dense() {
    let (dir, store, s) = with_topic(3, Duration::from_millis(300)).await;
    assert_eq!(base_offset(send(&s, 0, batch(1, 10)).await).await, 0);

    // The flush of offsets 1..=3 of partition 0 is held, to fail.
    let mut doomed = store.hold_next(0);
    let a1 = send(&s, 0, batch(3, 10)).await;
    doomed.arrived().await;

    // A later flush holds partition 0 (offsets 4..=5) and partition 2.
    let a2 = send(&s, 0, batch(2, 10)).await;
    let c = send(&s, 2, batch(1, 10)).await;
    // And partition 1 on its own, after them.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let b = send(&s, 1, batch(1, 10)).await;
    assert_eq!(base_offset(b).await, 0);
    assert!(!a2.is_finished() && !c.is_finished());

    doomed.release.send(false).unwrap();
    let e = refused(a1).await;
    assert_eq!(
        e.code(),
        sluice_protocol::ErrorCode::KafkaStorageError,
        "{e}"
    );
    refused(a2).await;
    assert_eq!(base_offset(c).await, 0, "partition 2 committed regardless");
    assert_eq!(high_watermark(&s, 0), 1, "nothing failed became visible");

    // Partition 0 goes on from its high watermark, in order.
    let a3 = send(&s, 0, batch(2, 10)).await;
    let a4 = send(&s, 0, batch(1, 10)).await;
    assert_eq!(base_offset(a3).await, 1);
    assert_eq!(base_offset(a4).await, 3);
    assert_dense(&s, 0, 4).await;
    assert_dense(&s, 1, 1).await;
    assert_dense(&s, 2, 1).await;

    s.shutdown().await;
    drop(s);
    let s = open(dir.path(), &store, Duration::from_millis(2)).await;
    assert_dense(&s, 0, 4).await;
    assert_dense(&s, 2, 1).await;
    assert_eq!(base_offset(send(&s, 0, batch(1, 10)).await).await, 4);
}

#[tokio::test]
async fn a_flush_rolled_back_behind_a_failed_one_leaves_no_file() {
    let (_dir, store, s) = with_topic(1, Duration::from_millis(2)).await;
    // The next flush of the partition is written and waits for the held one.
    let (doomed, a1, a2) = a_written_flush_waiting(&s, &store).await;

    // The held write fails: the partition rolls back, the second flush has
    // nothing left to commit, and its object is deleted at once.
    doomed.release.send(false).unwrap();
    refused(a1).await;
    let e = refused(a2).await;
    assert!(e.to_string().contains("an earlier commit"), "{e}");
    // The refusal goes out before the delete. The collector runs hourly
    // here, so only the committer can remove the file.
    stored_until(&store, "files left behind", |p| p.is_empty()).await;
    assert_eq!(high_watermark(&s, 0), 0);
}

#[tokio::test]
async fn a_write_that_lands_after_its_object_was_collected_leaves_no_file() {
    // Objects are handed out while younger than half the registration's
    // 300 ms, and collectable once it has passed.
    let (_dir, store, s) = with_topic_flushing(
        1,
        FlushPolicy {
            prepared_ttl_ms: 300,
            ..with_linger(Duration::from_millis(2))
        },
    )
    .await;
    let mut held = store.hold_next(0);
    let stalled = send(&s, 0, batch(1, 10)).await;
    held.arrived().await;

    // The registration expires while the write stalls; the collector
    // claims the object and deletes its (not yet existing) file.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(s.collect_objects().await.unwrap(), 1);

    // The write lands; the commit is refused, the file deleted again.
    held.release.send(true).unwrap();
    let e = refused(stalled).await;
    assert_eq!(e.code(), sluice_protocol::ErrorCode::KafkaStorageError);
    let left = stored(&store).await;
    assert!(left.is_empty(), "files left behind: {left:?}");
    assert_eq!(high_watermark(&s, 0), 0);

    // The partition goes on.
    assert_eq!(base_offset(send(&s, 0, batch(1, 10)).await).await, 0);
    assert_dense(&s, 0, 1).await;
}

#[tokio::test]
async fn a_flush_whose_partitions_were_all_taken_over_leaves_no_file() {
    let (dir, store, s) = with_topic(1, Duration::from_millis(2)).await;
    let mut held = store.hold_next(0);
    let fenced = send(&s, 0, batch(1, 10)).await;
    held.arrived().await;

    // Another broker takes the partition over while the write stalls.
    let other = open(dir.path(), &store, Duration::from_millis(2)).await;

    // The write lands; the commit is fenced, and the object, which no
    // commit will ever use, is deleted at once.
    held.release.send(true).unwrap();
    let e = refused(fenced).await;
    assert_eq!(e.code(), sluice_protocol::ErrorCode::NotLeaderOrFollower);
    // The refusal goes out before the delete.
    stored_until(&store, "files left behind", |p| p.is_empty()).await;
    drop(other);
}
