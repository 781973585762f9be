//! Group commit: the single writer that turns appended batches into durable,
//! acknowledged records.
//!
//! One task receives the batches of every partition. Each flush it assigns
//! offsets from each partition's high watermark, writes one object holding
//! all of them (grouped by partition), and commits the object's chunks to
//! the catalog in one transaction guarded by each partition's leader epoch.
//! Only then do the high watermarks move and producers get their acks. A
//! failed flush moves nothing, so the next flush reuses the same offsets and
//! offsets stay dense.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::sync::{mpsc, oneshot};

use crate::catalog::{Catalog, ChunkRow, Commit, CommitOutcome, ObjectRow, PartitionCommit};
use crate::error::{Result, StorageError};
use crate::objects::{object_path, ObjectBuilder, Objects};
use crate::partition::{PartitionLog, TailBatch};

/// A validated batch waiting for its offsets.
#[derive(Debug)]
pub struct PendingBatch {
    pub bytes: BytesMut,
    pub records: i32,
    pub max_timestamp: i64,
}

/// What an append returns once committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub base_offset: i64,
    pub log_start: i64,
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

/// When a flush happens: whichever of these comes first.
#[derive(Debug, Clone, Copy)]
pub struct FlushPolicy {
    /// How long the first waiting batch may wait for others to join it.
    pub linger: Duration,
    pub max_bytes: usize,
    pub max_chunks: usize,
    /// How long a registered-but-unwritten object stays valid before the
    /// collector may delete it.
    pub prepared_ttl_ms: i64,
}

impl Default for FlushPolicy {
    fn default() -> Self {
        FlushPolicy {
            linger: Duration::from_millis(2),
            max_bytes: 4 << 20,
            max_chunks: 2_000,
            prepared_ttl_ms: 10 * 60 * 1000,
        }
    }
}

/// Called when a partition is fenced, to take it over again.
pub type Refence = Arc<dyn Fn(Arc<PartitionLog>) + Send + Sync>;

/// The group commit task's state.
pub struct GroupCommit {
    catalog: Arc<dyn Catalog>,
    objects: Objects,
    owner: String,
    policy: FlushPolicy,
    /// The object the next flush writes, already registered as prepared.
    next_object: Option<ObjectRow>,
    refence: Refence,
}

impl GroupCommit {
    pub fn new(
        catalog: Arc<dyn Catalog>,
        objects: Objects,
        owner: String,
        policy: FlushPolicy,
        refence: Refence,
    ) -> Self {
        GroupCommit {
            catalog,
            objects,
            owner,
            policy,
            next_object: None,
            refence,
        }
    }

    fn new_object_row(&self) -> ObjectRow {
        let id = (rand::random::<u64>() >> 1) as i64;
        let now = crate::now_ms();
        ObjectRow {
            id,
            path: object_path(id),
            owner: self.owner.clone(),
            created_ms: now,
            expires_ms: now + self.policy.prepared_ttl_ms,
        }
    }

    /// Runs until every sender is dropped, flushing what is left.
    pub async fn run(mut self, mut rx: mpsc::Receiver<AppendRequest>) {
        while let Some(first) = rx.recv().await {
            let deadline = first.enqueued + self.policy.linger;
            let mut bytes = first.bytes();
            let mut requests = vec![first];
            while bytes < self.policy.max_bytes && requests.len() < self.policy.max_chunks {
                let next = match rx.try_recv() {
                    Ok(r) => Some(r),
                    Err(mpsc::error::TryRecvError::Disconnected) => None,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
                            Ok(r) => r,
                            Err(_) => None,
                        }
                    }
                };
                let Some(r) = next else { break };
                bytes += r.bytes();
                requests.push(r);
            }
            self.flush(requests).await;
        }
    }

    /// Makes sure a fresh prepared object is registered for this flush.
    async fn object_for_flush(&mut self) -> Result<ObjectRow> {
        let fresh_enough =
            |o: &ObjectRow| crate::now_ms() < o.created_ms + self.policy.prepared_ttl_ms / 2;
        match self.next_object.take() {
            Some(o) if fresh_enough(&o) => Ok(o),
            _ => {
                let o = self.new_object_row();
                self.catalog.register_object(&o).await?;
                Ok(o)
            }
        }
    }

    async fn flush(&mut self, requests: Vec<AppendRequest>) {
        let started = Instant::now();
        // Group by partition in (topic id, partition) order, keeping each
        // partition's arrival order.
        let mut groups: BTreeMap<(i64, i32), Vec<AppendRequest>> = BTreeMap::new();
        for r in requests {
            if r.log.is_fenced() {
                let _ = r.reply.send(Err(StorageError::NotLeader {
                    topic: r.log.topic.clone(),
                    partition: r.log.partition,
                }));
                continue;
            }
            groups
                .entry((r.log.topic_id, r.log.partition))
                .or_default()
                .push(r);
        }
        if groups.is_empty() {
            return;
        }
        let object = match self.object_for_flush().await {
            Ok(o) => o,
            Err(e) => return fail_all(groups, &e),
        };

        // Sequence offsets and lay out the object.
        let total: usize = groups.values().flatten().map(|r| r.bytes()).sum();
        let mut builder = ObjectBuilder::with_capacity(total);
        let mut commits = Vec::with_capacity(groups.len());
        let mut bases: BTreeMap<(i64, i32), Vec<i64>> = BTreeMap::new();
        for (key, reqs) in groups.iter_mut() {
            let log = &reqs[0].log;
            let offsets = log.offsets();
            let first = offsets.high_watermark;
            let mut next = first;
            let mut max_ts = -1;
            let mut req_bases = Vec::with_capacity(reqs.len());
            for r in reqs.iter_mut() {
                req_bases.push(next);
                for b in r.batches.iter_mut() {
                    sluice_protocol::batch::set_base_offset(&mut b.bytes, next);
                    sluice_protocol::batch::set_leader_epoch(&mut b.bytes, offsets.leader_epoch);
                    next += b.records as i64;
                    max_ts = max_ts.max(b.max_timestamp);
                }
            }
            let (start, len) = builder.push_chunk(
                key.0,
                key.1,
                first,
                next - 1,
                reqs.iter()
                    .flat_map(|r| r.batches.iter().map(|b| &b.bytes[..])),
            );
            bases.insert(*key, req_bases);
            commits.push(PartitionCommit {
                leader_epoch: offsets.leader_epoch,
                chunk: ChunkRow {
                    topic_id: key.0,
                    partition: key.1,
                    base_offset: first,
                    last_offset: next - 1,
                    max_timestamp: max_ts,
                    leader_epoch: offsets.leader_epoch,
                    object_id: object.id,
                    byte_start: start as i64,
                    byte_len: len as i64,
                },
            });
        }
        let body = builder.finish();
        let size = body.len();
        if let Err(e) = self.objects.put(&object.path, body).await {
            // The object stays registered as prepared; reuse it next time.
            self.next_object = Some(object);
            return fail_all(groups, &e);
        }

        let mut commit = Commit {
            object_id: object.id,
            object_size: size as i64,
            partitions: commits,
            next_object: Some(self.new_object_row()),
        };
        loop {
            match self.catalog.commit(&commit).await {
                Ok(CommitOutcome::Committed) => break,
                Ok(CommitOutcome::Fenced(fenced)) => {
                    for key in &fenced {
                        if let Some(reqs) = groups.remove(key) {
                            let log = reqs[0].log.clone();
                            log.fence();
                            let e = StorageError::NotLeader {
                                topic: log.topic.clone(),
                                partition: log.partition,
                            };
                            for r in reqs {
                                let _ = r.reply.send(Err(e.clone_for_reply()));
                            }
                            (self.refence)(log);
                        }
                    }
                    commit
                        .partitions
                        .retain(|p| !fenced.contains(&(p.chunk.topic_id, p.chunk.partition)));
                    if commit.partitions.is_empty() {
                        // Nothing to commit; the object is collected later.
                        return;
                    }
                }
                Err(e) => {
                    // The outcome may be unknown (connection lost during
                    // COMMIT): ask the catalog before failing anything.
                    match self.catalog.object_committed(object.id).await {
                        Ok(true) => break,
                        _ => {
                            tracing::error!(error = %e, "group commit failed");
                            self.next_object = Some(object);
                            return fail_all(groups, &e);
                        }
                    }
                }
            }
        }
        self.next_object = commit.next_object.take();
        metrics::histogram!("sluice_commit_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("sluice_commits_total").increment(1);
        metrics::counter!("sluice_commit_bytes_total").increment(size as u64);

        for (key, reqs) in groups {
            let log = reqs[0].log.clone();
            let mut next = 0;
            let mut tail = Vec::new();
            let mut replies = Vec::with_capacity(reqs.len());
            for (r, base) in reqs.into_iter().zip(&bases[&key]) {
                let mut offset = *base;
                for b in r.batches {
                    let last = offset + b.records as i64 - 1;
                    tail.push(TailBatch {
                        base_offset: offset,
                        last_offset: last,
                        bytes: b.bytes.freeze(),
                    });
                    offset = last + 1;
                }
                next = offset;
                replies.push((r.reply, *base));
            }
            // The high watermark moves before the acks go out, so a
            // consumer told of an ack can always read the record.
            log.committed(tail, next);
            let log_start = log.offsets().log_start;
            for (reply, base_offset) in replies {
                let _ = reply.send(Ok(Appended {
                    base_offset,
                    log_start,
                }));
            }
        }
    }
}

fn fail_all(groups: BTreeMap<(i64, i32), Vec<AppendRequest>>, e: &StorageError) {
    for r in groups.into_values().flatten() {
        let _ = r.reply.send(Err(e.clone_for_reply()));
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
