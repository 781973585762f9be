//! Group commit: turns appended batches into durable, acknowledged records.
//!
//! Two tasks form a pipeline:
//!
//! - the **sequencer** gathers the batches of every partition for a flush,
//!   hands out their offsets, lays them out in one object (grouped by
//!   partition) and starts writing it;
//! - the **committer** takes flushes in sequencing order, waits for the
//!   object write, and commits the object's chunks to the catalog in one
//!   transaction guarded by each partition's leader epoch and next offset.
//!   Only then do high watermarks move and producers get their acks.
//!
//! So the object of one flush is written while the previous one commits.
//! When a flush fails, its partitions' sequences roll back to the high
//! watermark, and flushes already sequenced past the failure fail too for
//! those partitions (their chunk no longer starts at the high watermark);
//! nothing is ever committed with a gap, so offsets stay dense. Producer
//! state rolls back with the offsets, and is upserted with the chunks.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::catalog::{
    Catalog, ChunkRow, Commit, CommitOutcome, ObjectRow, PartitionCommit, ProducerStateRow,
};
use crate::error::{Result, StorageError};
use crate::objects::{object_path, ObjectBuilder, Objects};
use crate::partition::{PartitionLog, TailBatch};
use crate::producer::{Admission, ProducerBatchHeader};

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
    /// while earlier flushes are in flight (with none, it goes at once).
    pub linger: Duration,
    pub max_bytes: usize,
    pub max_chunks: usize,
    /// Flushes whose objects may be written while earlier ones commit.
    pub pipeline_depth: usize,
    /// How long a registered-but-unwritten object stays valid before the
    /// collector may delete it.
    pub prepared_ttl_ms: i64,
}

impl Default for FlushPolicy {
    fn default() -> Self {
        FlushPolicy {
            linger: Duration::from_millis(2),
            max_bytes: 8 << 20,
            max_chunks: 2_000,
            pipeline_depth: 3,
            prepared_ttl_ms: 10 * 60 * 1000,
        }
    }
}

/// Called when a partition is fenced, to take it over again.
pub type Refence = Arc<dyn Fn(Arc<PartitionLog>) + Send + Sync>;

/// The requests of one partition in a flush, with their offsets.
struct PartitionFlush {
    log: Arc<PartitionLog>,
    requests: Vec<AppendRequest>,
    /// First offset of each request, in order.
    bases: Vec<i64>,
    commit: PartitionCommit,
    /// The roll-back generation this flush was sequenced in.
    generation: u64,
    /// Producer state to upsert with the chunk.
    producers: Vec<ProducerStateRow>,
}

/// A flush on its way from the sequencer to the committer.
struct Flush {
    object: ObjectRow,
    /// The object's bytes; committed batches join the tail as slices of it.
    body: Bytes,
    write: JoinHandle<Result<()>>,
    partitions: Vec<PartitionFlush>,
    started: Instant,
}

/// Objects registered as prepared and not yet used. Each commit registers
/// one replacement in its own transaction, so a flush costs one catalog
/// transaction.
#[derive(Clone)]
struct ObjectPool {
    catalog: Arc<dyn Catalog>,
    owner: String,
    ttl_ms: i64,
    free: Arc<Mutex<Vec<ObjectRow>>>,
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
    async fn take(&self) -> Result<ObjectRow> {
        let fresh = |o: &ObjectRow| crate::now_ms() < o.created_ms + self.ttl_ms / 2;
        loop {
            let candidate = self.free.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match candidate {
                Some(o) if fresh(&o) => return Ok(o),
                Some(_) => continue, // expired: the collector deletes it
                None => {
                    let o = self.new_row();
                    self.catalog.register_object(&o).await?;
                    return Ok(o);
                }
            }
        }
    }

    fn give_back(&self, o: ObjectRow) {
        self.free.lock().unwrap_or_else(|p| p.into_inner()).push(o);
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
        owner,
        ttl_ms: policy.prepared_ttl_ms,
        free: Arc::new(Mutex::new(Vec::new())),
    };
    let (flush_tx, flush_rx) = mpsc::channel(policy.pipeline_depth.max(1));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let sequencer = tokio::spawn(sequence(
        rx,
        flush_tx,
        objects,
        pool.clone(),
        policy,
        in_flight.clone(),
    ));
    let committer = Committer {
        catalog,
        pool,
        refence,
        in_flight,
    };
    let handle = tokio::spawn(async move {
        committer.run(flush_rx).await;
        let _ = sequencer.await;
    });
    (tx, handle)
}

/// The sequencer: gathers batches into flushes and starts their writes.
async fn sequence(
    mut rx: mpsc::Receiver<AppendRequest>,
    flushes: mpsc::Sender<Flush>,
    objects: Objects,
    pool: ObjectPool,
    policy: FlushPolicy,
    in_flight: Arc<AtomicUsize>,
) {
    while let Some(first) = rx.recv().await {
        // With nothing in flight, waiting only adds latency: flush what is
        // here now, and let later batches gather behind this flush. With
        // flushes in flight, linger so that each flush carries more.
        let deadline = if in_flight.load(Ordering::Acquire) == 0 {
            Instant::now()
        } else {
            first.enqueued + policy.linger
        };
        let mut bytes = first.bytes();
        let mut requests = vec![first];
        while bytes < policy.max_bytes && requests.len() < policy.max_chunks {
            let next = match rx.try_recv() {
                Ok(r) => Some(r),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) => {
                    tokio::time::timeout_at(deadline.into(), rx.recv())
                        .await
                        .unwrap_or_default()
                }
            };
            let Some(r) = next else { break };
            bytes += r.bytes();
            requests.push(r);
        }
        if let Some(flush) = build_flush(requests, &objects, &pool).await {
            in_flight.fetch_add(1, Ordering::AcqRel);
            if flushes.send(flush).await.is_err() {
                return;
            }
        }
    }
}

/// Hands out offsets, lays out the object and starts writing it.
async fn build_flush(
    requests: Vec<AppendRequest>,
    objects: &Objects,
    pool: &ObjectPool,
) -> Option<Flush> {
    let started = Instant::now();
    let mut groups: BTreeMap<(i64, i32), Vec<AppendRequest>> = BTreeMap::new();
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
    let object = match pool.take().await {
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
                    object_id: object.id,
                    byte_start: start as i64,
                    byte_len: len as i64,
                },
            },
            generation: sequenced.generation,
            producers: sequenced.producers,
        });
    }
    if partitions.is_empty() {
        // Every request was a retry or refused: nothing to write.
        pool.give_back(object);
        return None;
    }
    let body = builder.finish();
    let objects = objects.clone();
    let path = object.path.clone();
    let written = body.clone();
    let write = tokio::spawn(async move {
        let writing = Instant::now();
        let r = objects.put(&path, written).await;
        metrics::histogram!("sluice_object_write_seconds").record(writing.elapsed().as_secs_f64());
        r
    });
    Some(Flush {
        object,
        body,
        write,
        partitions,
        started,
    })
}

struct Committer {
    catalog: Arc<dyn Catalog>,
    pool: ObjectPool,
    refence: Refence,
    /// Flushes sequenced and not yet committed or failed.
    in_flight: Arc<AtomicUsize>,
}

impl Committer {
    async fn run(self, mut flushes: mpsc::Receiver<Flush>) {
        while let Some(flush) = flushes.recv().await {
            self.commit(flush).await;
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }

    async fn commit(&self, flush: Flush) {
        let Flush {
            object,
            body,
            write,
            partitions,
            started,
        } = flush;
        // A partition whose earlier flush failed was rolled back: this
        // flush's chunk no longer starts at its high watermark.
        let (mut partitions, stale): (Vec<_>, Vec<_>) = partitions
            .into_iter()
            .partition(|p| p.commit.chunk.base_offset == p.log.high_watermark());
        for p in stale {
            fail(
                p,
                &StorageError::Catalog("an earlier commit of this partition failed; retry".into()),
            );
        }
        match write
            .await
            .unwrap_or_else(|e| Err(StorageError::Objects(e.to_string())))
        {
            Ok(()) => {}
            Err(e) => {
                tracing::error!(error = %e, "object write failed");
                // The object stays registered as prepared; reuse it.
                self.pool.give_back(object);
                return partitions.into_iter().for_each(|p| fail(p, &e));
            }
        }
        if partitions.is_empty() {
            return;
        }
        let committing = Instant::now();
        let mut commit = Commit {
            object_id: object.id,
            object_size: body.len() as i64,
            partitions: partitions.iter().map(|p| p.commit).collect(),
            producers: partitions
                .iter()
                .flat_map(|p| p.producers.iter().cloned())
                .collect(),
            next_object: Some(self.pool.new_row()),
        };
        loop {
            match self.catalog.commit(&commit).await {
                Ok(CommitOutcome::Committed) => break,
                Ok(CommitOutcome::Fenced(fenced)) => {
                    let (gone, kept): (Vec<_>, Vec<_>) = partitions.into_iter().partition(|p| {
                        fenced.contains(&(p.commit.chunk.topic_id, p.commit.chunk.partition))
                    });
                    for p in gone {
                        let log = p.log.clone();
                        log.fence();
                        let e = not_leader(&log);
                        fail(p, &e);
                        (self.refence)(log);
                    }
                    partitions = kept;
                    commit
                        .partitions
                        .retain(|c| !fenced.contains(&(c.chunk.topic_id, c.chunk.partition)));
                    commit
                        .producers
                        .retain(|r| !fenced.contains(&(r.topic_id, r.partition)));
                    if partitions.is_empty() {
                        // Nothing to commit; the object is collected later.
                        return;
                    }
                }
                Err(e) => {
                    // The outcome may be unknown (connection lost during
                    // COMMIT): ask the catalog before failing anything.
                    if let Ok(true) = self.catalog.object_committed(object.id).await {
                        break;
                    }
                    tracing::error!(error = %e, "catalog commit failed");
                    self.pool.give_back(object);
                    return partitions.into_iter().for_each(|p| fail(p, &e));
                }
            }
        }
        if let Some(next) = commit.next_object.take() {
            self.pool.give_back(next);
        }
        metrics::histogram!("sluice_catalog_commit_seconds")
            .record(committing.elapsed().as_secs_f64());
        metrics::histogram!("sluice_commit_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("sluice_commits_total").increment(1);
        metrics::counter!("sluice_commit_bytes_total").increment(body.len() as u64);
        for p in partitions {
            acknowledge(p, &body);
        }
    }
}

/// Moves the partition's high watermark past a committed flush, then acks.
fn acknowledge(p: PartitionFlush, body: &Bytes) {
    let chunk = p.commit.chunk;
    let range = chunk.byte_start as usize..(chunk.byte_start + chunk.byte_len) as usize;
    // A slice keeps its whole object alive: a small chunk gets its own copy
    // so that a quiet partition's tail cannot pin many large objects.
    let bytes = if range.len() * 8 < body.len() {
        Bytes::copy_from_slice(&body[range])
    } else {
        body.slice(range)
    };
    // The high watermark moves before the acks go out, so a consumer told
    // of an ack can always read the record.
    let tail = TailBatch {
        base_offset: chunk.base_offset,
        last_offset: chunk.last_offset,
        bytes,
    };
    p.log.committed([tail], chunk.last_offset + 1);
    let log_start = p.log.offsets().log_start;
    for (r, base_offset) in p.requests.into_iter().zip(p.bases) {
        let records = r.batches.iter().map(|b| b.records.max(0) as u64).sum();
        let _ = r.reply.send(Ok(Appended {
            base_offset,
            log_start,
            records,
        }));
    }
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

/// Fails a partition's requests and rolls its sequence back.
fn fail(p: PartitionFlush, e: &StorageError) {
    p.log.roll_back_sequence(p.generation);
    for r in p.requests {
        let _ = r.reply.send(Err(e.clone_for_reply()));
    }
}

fn not_leader(log: &PartitionLog) -> StorageError {
    StorageError::NotLeader {
        topic: log.topic.clone(),
        partition: log.partition,
    }
}

impl StorageError {
    /// A copy of this error for each of the producers waiting on one flush.
    pub fn clone_for_reply(&self) -> StorageError {
        match self {
            StorageError::NotLeader { topic, partition } => StorageError::NotLeader {
                topic: topic.clone(),
                partition: *partition,
            },
            StorageError::Objects(s) => StorageError::Objects(s.clone()),
            other => StorageError::Catalog(other.to_string()),
        }
    }
}
