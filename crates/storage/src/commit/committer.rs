//! A flush's task: writes the object, waits for the partitions' earlier
//! flushes, commits to the catalog, then moves high watermarks and acks.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::{AppendRequest, Appended, InFlight, ObjectPool, Refence};
use crate::catalog::{
    Catalog, Commit, CommitOutcome, ObjectRow, PartitionCommit, ProducerStateRow,
};
use crate::error::StorageError;
use crate::objects::Objects;
use crate::partition::{PartitionLog, TailBatch};

/// The requests of one partition in a flush, with their offsets.
pub(super) struct PartitionFlush {
    pub log: Arc<PartitionLog>,
    pub requests: Vec<AppendRequest>,
    /// First offset of each request, in order.
    pub bases: Vec<i64>,
    pub commit: PartitionCommit,
    /// The roll-back generation this flush was sequenced in.
    pub generation: u64,
    /// Producer state to upsert with the chunk.
    pub producers: Vec<ProducerStateRow>,
    /// Dropped, with this value, once the partition's part of the flush is
    /// settled (committed, or failed and rolled back): that releases the
    /// partition's next flush.
    pub _done: oneshot::Sender<()>,
}

/// A sequenced flush, handed to its own task.
pub(super) struct Flush {
    pub object: ObjectRow,
    /// The preparing of the object's place, if it was started; true once
    /// it succeeded.
    pub prepared: Option<tokio::task::JoinHandle<bool>>,
    /// The object's bytes; committed batches join the tail as slices of it.
    pub body: Bytes,
    pub partitions: Vec<PartitionFlush>,
    pub started: Instant,
    /// Its size class.
    pub large: bool,
}

/// What every flush task shares.
pub(super) struct Committer {
    pub catalog: Arc<dyn Catalog>,
    pub objects: Objects,
    pub pool: ObjectPool,
    pub refence: Refence,
    /// Flushes sequenced and not yet committed or failed.
    pub in_flight: Arc<InFlight>,
}

impl Committer {
    /// Writes the flush's object and, once the flushes in `predecessors`
    /// (the previous flush of each of its partitions) are settled, commits.
    pub(super) async fn run(&self, mut flush: Flush, predecessors: Vec<oneshot::Receiver<()>>) {
        let prepared = flush.prepared.take();
        let write = async {
            // Timed from here: a preparing still running is part of the
            // write's cost to this flush.
            let writing = Instant::now();
            // An object registered on the sequencer's path (the pool was
            // empty), or whose preparing failed, gets the full write.
            let ready = match prepared {
                Some(p) => p.await.unwrap_or(false),
                None => false,
            };
            let (path, body) = (&flush.object.path, flush.body.clone());
            let r = if ready {
                self.objects.put_prepared(path, body).await
            } else {
                self.objects.put(path, body).await
            };
            metrics::histogram!("sluice_object_write_seconds")
                .record(writing.elapsed().as_secs_f64());
            r
        };
        let settled = async {
            for p in predecessors {
                // The signal is its sender's drop: always an error here.
                let _ = p.await;
            }
        };
        let large = flush.large;
        let written = {
            let (mut write, mut settled) = (std::pin::pin!(write), std::pin::pin!(settled));
            tokio::select! {
                biased;
                () = &mut settled => write.await,
                written = &mut write => {
                    // Written, and waiting for the catalog: the sequencer
                    // lingers longer meanwhile.
                    let _waiting = written.is_ok().then(|| self.in_flight.wait(large));
                    settled.await;
                    written
                }
            }
        };
        self.commit(flush, written).await;
    }

    async fn commit(&self, flush: Flush, written: crate::error::Result<()>) {
        let Flush {
            object,
            body,
            partitions,
            started,
            ..
        } = flush;
        // A partition whose earlier flush failed was rolled back: this
        // flush's chunk no longer starts at its high watermark, and it
        // belongs to an older roll-back generation.
        let (mut partitions, stale): (Vec<_>, Vec<_>) = partitions
            .into_iter()
            .partition(|p| p.log.may_commit(p.generation, p.commit.chunk.base_offset));
        for p in stale {
            fail(
                p,
                &StorageError::Catalog("an earlier commit of this partition failed; retry".into()),
            );
        }
        if let Err(e) = written {
            tracing::error!(error = %e, "object write failed");
            // Not reused: a write that failed may still land (a store
            // request that timed out), and must not overwrite a later
            // one. The object stays prepared until the collector
            // deletes it.
            return partitions.into_iter().for_each(|p| fail(p, &e));
        }
        if partitions.is_empty() {
            return self.discard(&object).await;
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
                        return self.discard(&object).await;
                    }
                }
                Err(StorageError::ObjectClaimed(id)) => {
                    // Refused and rolled back: the write stalled past the
                    // object's registration, and the collector claimed it.
                    self.discard(&object).await;
                    let e = StorageError::ObjectClaimed(id);
                    tracing::error!(error = %e, "catalog commit refused");
                    return partitions.into_iter().for_each(|p| fail(p, &e));
                }
                Err(e) => {
                    // The outcome may be unknown (connection lost during
                    // COMMIT): ask the catalog before failing anything.
                    if let Ok(true) = self.catalog.object_committed(object.id).await {
                        break;
                    }
                    // Not seen committed, which on PostgreSQL does not rule
                    // out a COMMIT still landing: the object is never
                    // written again (in place, that would change committed
                    // bytes under readers); the collector deletes it once
                    // its registration expires if it stays prepared.
                    tracing::error!(error = %e, "catalog commit failed");
                    return partitions.into_iter().for_each(|p| fail(p, &e));
                }
            }
        }
        if let Some(next) = commit.next_object.take() {
            self.pool.restock(next);
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

    /// Deletes the file of an object that was written and that no commit
    /// will ever use (objects are never reused). Left to the collector,
    /// it would be deleted only if the collector had not claimed the
    /// object already: a write that stalled past the object's
    /// registration lands after the collector deleted the file.
    async fn discard(&self, object: &ObjectRow) {
        if let Err(e) = self.objects.delete(&object.path).await {
            tracing::error!(error = %e, object = object.id, path = %object.path,
                "deleting an object no commit will use");
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
    // `p._done` drops here: the partition's next flush may commit.
}

/// Fails a partition's requests and rolls its sequence back.
fn fail(p: PartitionFlush, e: &StorageError) {
    p.log.roll_back_sequence(p.generation);
    for r in p.requests {
        let _ = r.reply.send(Err(e.clone_for_reply()));
    }
    // `p._done` drops here: the partition's next flush finds it rolled back.
}

pub(super) fn not_leader(log: &PartitionLog) -> StorageError {
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
            StorageError::ObjectClaimed(id) => StorageError::ObjectClaimed(*id),
            other => StorageError::Catalog(other.to_string()),
        }
    }
}
