//! Group commit: turns appended batches into durable, acknowledged records.
//!
//! - The **sequencer** (one task, `sequencer.rs`) gathers the batches of
//!   every partition for a flush, hands out their offsets, lays them out in
//!   one object (grouped by partition) and spawns the flush's task.
//! - Each **flush task** (`committer.rs`) writes its object, waits until
//!   every earlier flush that shares a partition with it is done with that
//!   partition, and then commits the object's chunks to the catalog in one
//!   transaction guarded by each partition's leader epoch and next offset.
//!   Only then do high watermarks move and producers get their acks.
//!
//! # Ordering
//!
//! Commits are ordered per partition, not globally. When the sequencer
//! builds a flush it takes, for each of the flush's partitions, the
//! completion signal of the previous flush of that partition and leaves its
//! own in its place: a chain of signals per partition, in sequencing order.
//! A flush's signal for a partition fires when that flush has committed the
//! partition's chunk (the high watermark moved) or failed it (the sequence
//! rolled back), and also if its task ends any other way, since the signal
//! is the drop of a sender the partition's part of the flush owns. So a
//! flush commits once its own object is written and its predecessors on
//! each of its partitions are settled; flushes with disjoint partitions
//! commit independently, and a slow write holds up only the partitions in
//! it.
//!
//! A flush decides nothing about a partition before that partition's
//! predecessors are settled, failures included: a failed flush rolls its
//! partitions' sequences back to their high watermarks, and flushes already
//! sequenced after it fail too for those partitions (their chunk no longer
//! starts at the high watermark, and they belong to an older roll-back
//! generation). Nothing is ever committed with a gap, so offsets stay dense.
//! Producer state rolls back with the offsets, and is upserted with the
//! chunks. A fenced partition fails the same way and is taken over again.
//!
//! # Size classes
//!
//! A request of at least [`FlushPolicy::isolate_bytes`] is *large*: it goes
//! into a flush of large requests, never into one with small requests, so
//! a small request does not wait for a big write and fsync. The requests of
//! a partition stay in their order: once a partition has a large request in
//! a round, its later requests in that round go with it, and a partition
//! whose last flush is a large one still in flight sends its requests to
//! the large flush as well (they would wait for that flush anyway, and
//! must not hold up the small flush's other partitions). A round builds
//! its small flush before its large one. Under saturation, when every
//! request is large, flushes are as big as before: large requests share
//! flushes with each other.
//!
//! Each class has [`FlushPolicy::pipeline_depth`] flushes in flight at
//! most; the sequencer waits for a slot before it builds a flush.
//!
//! # Keeping up with the catalog
//!
//! Commits of flushes that share partitions are serial, and each costs a
//! catalog transaction whatever its size. When flushes come faster than
//! the catalog commits them, a flush whose object is written waits for
//! its predecessors, and cutting more flushes behind it only lengthens
//! that queue. So while a flush of a size class is written and waiting,
//! the sequencer goes on gathering requests of that class past
//! [`FlushPolicy::linger`], up to [`FlushPolicy::max_linger`]: the next
//! flush is cut when the waiting one starts to commit, and carries
//! everything that came meanwhile in one transaction. The bound keeps a
//! flush stuck behind a slow write from holding up other partitions for
//! longer than that.

mod committer;
mod sequencer;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

use crate::catalog::{Catalog, ObjectRow};
use crate::error::Result;
use crate::objects::{object_path, Objects};
use crate::partition::PartitionLog;
use crate::producer::ProducerBatchHeader;

/// A validated batch waiting for its offsets: a slice of the produce
/// request, copied once, into the object, where its offsets are stamped.
#[derive(Debug)]
pub struct PendingBatch {
    pub bytes: Bytes,
    pub records: i32,
    pub max_timestamp: i64,
    /// The broker time to stamp for LogAppendTime topics.
    pub log_append_time: Option<i64>,
    /// Set for an idempotent producer's batch: checked against producer
    /// state when the batch is sequenced.
    pub producer: Option<ProducerBatchHeader>,
}

/// What an append returns once committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub base_offset: i64,
    pub log_start: i64,
    /// Records appended (for metrics).
    pub records: u64,
}

/// Batches of one partition from one produce request.
pub struct AppendRequest {
    pub log: Arc<PartitionLog>,
    pub batches: Vec<PendingBatch>,
    pub enqueued: Instant,
    pub reply: oneshot::Sender<Result<Appended>>,
}

impl AppendRequest {
    fn bytes(&self) -> usize {
        self.batches.iter().map(|b| b.bytes.len()).sum()
    }
}

/// When a flush happens, and how many may be in flight.
#[derive(Debug, Clone, Copy)]
pub struct FlushPolicy {
    /// How long the first waiting batch may wait for others to join it
    /// while earlier flushes of its size class are in flight (with none,
    /// it goes at once).
    pub linger: Duration,
    /// How long it may wait, at most, while a flush of its class is
    /// written and waiting for an earlier one to commit (see "Keeping up
    /// with the catalog"). Counted, like `linger`, from the first
    /// request's arrival; never shorter than `linger`.
    pub max_linger: Duration,
    pub max_bytes: usize,
    pub max_chunks: usize,
    /// Flushes of each size class (small, large) that may be in flight,
    /// written or committing, at once.
    pub pipeline_depth: usize,
    /// A request of at least this many bytes is large: it never shares a
    /// flush with small requests (see the module doc).
    pub isolate_bytes: usize,
    /// How long a registered-but-unwritten object stays valid before the
    /// collector may delete it.
    pub prepared_ttl_ms: i64,
}

impl Default for FlushPolicy {
    fn default() -> Self {
        FlushPolicy {
            linger: Duration::from_millis(1),
            max_linger: Duration::from_millis(5),
            max_bytes: 8 << 20,
            max_chunks: 2_000,
            pipeline_depth: 4,
            isolate_bytes: 256 << 10,
            prepared_ttl_ms: 10 * 60 * 1000,
        }
    }
}

/// Called when a partition is fenced, to take it over again.
pub type Refence = Arc<dyn Fn(Arc<PartitionLog>) + Send + Sync>;

/// Objects registered as prepared and not yet used. Each commit registers
/// one replacement in its own transaction, so a flush costs one catalog
/// transaction; the replacement's place in the store is prepared in the
/// background (`Objects::prepare`), so that its write costs less.
#[derive(Clone)]
struct ObjectPool {
    catalog: Arc<dyn Catalog>,
    objects: Objects,
    owner: String,
    ttl_ms: i64,
    /// Oldest first: a restocked object's file is being prepared, so the
    /// object that waited longest is the likeliest to be ready.
    free: Arc<Mutex<VecDeque<PooledObject>>>,
}

/// A registered object, not yet written.
struct PooledObject {
    row: ObjectRow,
    /// Preparing the object's place in the store, if it was started: its
    /// write waits for it, and is cheaper only if it succeeded (true).
    prepared: Option<JoinHandle<bool>>,
}

impl PooledObject {
    /// An object with nothing being done to it.
    fn idle(row: ObjectRow) -> Self {
        PooledObject {
            row,
            prepared: None,
        }
    }
}

impl ObjectPool {
    fn new_row(&self) -> ObjectRow {
        let id = (rand::random::<u64>() >> 1) as i64;
        let now = crate::now_ms();
        ObjectRow {
            id,
            path: object_path(id),
            owner: self.owner.clone(),
            created_ms: now,
            expires_ms: now + self.ttl_ms,
        }
    }

    /// A registered object young enough to be written and committed long
    /// before its registration expires.
    async fn take(&self) -> Result<PooledObject> {
        let fresh = |o: &ObjectRow| crate::now_ms() < o.created_ms + self.ttl_ms / 2;
        loop {
            let candidate = self
                .free
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop_front();
            match candidate {
                Some(o) if fresh(&o.row) => return Ok(o),
                Some(_) => continue, // expired: the collector deletes it
                None => {
                    let o = self.new_row();
                    self.catalog.register_object(&o).await?;
                    return Ok(PooledObject::idle(o));
                }
            }
        }
    }

    fn give_back(&self, o: PooledObject) {
        self.free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(o);
    }

    /// Adds a newly registered object at once, and prepares its place in
    /// the background. Should the preparing fail, the object is still
    /// good: its write does the work instead.
    fn restock(&self, row: ObjectRow) {
        let objects = self.objects.clone();
        let path = row.path.clone();
        let prepared = tokio::spawn(async move {
            let r = objects.prepare(&path).await;
            if let Err(e) = &r {
                tracing::warn!(error = %e, "preparing an object for a later flush");
            }
            r.is_ok()
        });
        self.give_back(PooledObject {
            row,
            prepared: Some(prepared),
        });
    }
}

/// Flushes in flight (sequenced, not yet committed or failed), per size
/// class; the sequencer lingers while flushes of a class are in flight,
/// and lingers longer while one is written and waiting to commit.
#[derive(Default)]
struct InFlight {
    /// Per size class: small, large.
    flushes: [AtomicUsize; 2],
    /// Of those, the flushes whose object is written and which wait for an
    /// earlier flush of their partitions: the catalog is behind.
    waiting: [AtomicUsize; 2],
    /// Woken whenever a waiting flush stops waiting.
    waited: Notify,
}

impl InFlight {
    /// Flushes of a class in flight.
    fn flushes(&self, large: bool) -> usize {
        self.flushes[large as usize].load(Ordering::Acquire)
    }

    /// Flushes of a class written and waiting.
    fn waiting(&self, large: bool) -> usize {
        self.waiting[large as usize].load(Ordering::Acquire)
    }

    /// Counts a flush in until the returned guard is dropped, however its
    /// task ends.
    fn count(self: &Arc<Self>, large: bool) -> Counted {
        Counted::new(self, large, false)
    }

    /// Counts a written flush as waiting until the guard is dropped.
    fn wait(self: &Arc<Self>, large: bool) -> Counted {
        Counted::new(self, large, true)
    }
}

/// A flush counted in [`InFlight`], in flight or (`waiting`) waiting.
struct Counted {
    in_flight: Arc<InFlight>,
    large: bool,
    waiting: bool,
}

impl Counted {
    fn new(in_flight: &Arc<InFlight>, large: bool, waiting: bool) -> Self {
        let c = Counted {
            in_flight: in_flight.clone(),
            large,
            waiting,
        };
        c.counter().fetch_add(1, Ordering::AcqRel);
        c
    }

    fn counter(&self) -> &AtomicUsize {
        let counters = if self.waiting {
            &self.in_flight.waiting
        } else {
            &self.in_flight.flushes
        };
        &counters[self.large as usize]
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.counter().fetch_sub(1, Ordering::AcqRel);
        if self.waiting {
            self.in_flight.waited.notify_waiters();
        }
    }
}

/// Starts the group commit; it runs until every sender of the returned
/// channel is dropped, and the handle finishes after the last commit.
pub fn start(
    catalog: Arc<dyn Catalog>,
    objects: Objects,
    owner: String,
    policy: FlushPolicy,
    refence: Refence,
) -> (mpsc::Sender<AppendRequest>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(4096);
    let pool = ObjectPool {
        catalog: catalog.clone(),
        objects: objects.clone(),
        owner,
        ttl_ms: policy.prepared_ttl_ms,
        free: Arc::new(Mutex::new(VecDeque::new())),
    };
    let committer = Arc::new(committer::Committer {
        catalog,
        objects,
        pool,
        refence,
        in_flight: Arc::new(InFlight::default()),
    });
    let handle = tokio::spawn(sequencer::run(rx, committer, policy));
    (tx, handle)
}
