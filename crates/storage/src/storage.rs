//! The storage service the broker calls: topics and their partitions,
//! append, read, list offsets, and the background retention, compaction,
//! merging and collection.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_protocol::batch;
use sluice_protocol::record_checks::{check_records, RecordRules};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::catalog::{
    sql::SqlCatalog, Catalog, ChunkRow, PartitionRow, ProducerIdAndEpoch, ProducerStateRow,
    TopicRow,
};
use crate::chunk_reader::ChunkReader;
use crate::commit::{self, AppendRequest, Appended, PendingBatch};
use crate::error::{Result, StorageError};
use crate::leader_epoch::{end_of_epoch, EpochEnd};
use crate::objects::{object_path, Objects};
use crate::partition::{chunk_holding, Offsets, PartitionLog};
use crate::producer::{ProducerBatchHeader, ProducerStates};
use crate::topic_config::{self, TopicConfig};

/// Chunks per page read from the catalog's index on a cold read.
const CHUNK_PAGE: i64 = 64;
/// Pages of chunks one cold read goes through at most.
const PAGES_PER_READ: usize = 4;

/// The longest topic name Kafka allows.
pub const MAX_TOPIC_NAME: usize = 249;
/// A sanity bound on partitions per topic (plans set lower ones).
pub const MAX_PARTITIONS: i32 = 10_000;

/// How storage is set up.
#[derive(Debug, Clone)]
pub struct StorageOptions {
    /// `sqlite://PATH` or `postgres://…`.
    pub catalog_url: String,
    /// `file://DIR` or `memory://`.
    pub objects_url: String,
    pub flush: commit::FlushPolicy,
    /// In-memory tail of recent batches, shared by all partitions, in bytes.
    pub tail_bytes: usize,
    /// Cache of chunks read from the object store, in bytes.
    pub read_cache_bytes: usize,
    /// How often retention and collection run.
    pub maintenance_interval: Duration,
    /// How long an object that lost its last chunk is kept for reads in flight.
    pub collect_grace_ms: i64,
    /// Kafka's `producer.id.expiration.ms`: how long a partition keeps an
    /// idempotent producer's state after its last write there.
    pub producer_id_expiration_ms: i64,
    /// What one compaction pass may hold and change at once.
    pub compaction: crate::compaction::CompactionLimits,
}

impl StorageOptions {
    pub fn new(catalog_url: impl Into<String>, objects_url: impl Into<String>) -> Self {
        StorageOptions {
            catalog_url: catalog_url.into(),
            objects_url: objects_url.into(),
            flush: commit::FlushPolicy::default(),
            tail_bytes: 256 << 20,
            read_cache_bytes: 256 << 20,
            maintenance_interval: Duration::from_secs(30),
            collect_grace_ms: 60_000,
            producer_id_expiration_ms: 86_400_000,
            compaction: Default::default(),
        }
    }
}

/// A topic and its partitions on this broker.
#[derive(Debug)]
pub struct Topic {
    pub id: i64,
    pub name: String,
    pub uuid: [u8; 16],
    pub created_ms: i64,
    config: RwLock<TopicConfig>,
    partitions: RwLock<Vec<Arc<PartitionLog>>>,
}

impl Topic {
    pub fn config(&self) -> TopicConfig {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn partition_count(&self) -> i32 {
        self.partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len() as i32
    }

    pub fn partition(&self, partition: i32) -> Result<Arc<PartitionLog>> {
        let parts = self.partitions.read().unwrap_or_else(|p| p.into_inner());
        usize::try_from(partition)
            .ok()
            .and_then(|i| parts.get(i).cloned())
            .ok_or_else(|| StorageError::UnknownPartition {
                topic: self.name.clone(),
                partition,
                count: parts.len() as i32,
            })
    }

    pub fn partitions(&self) -> Vec<Arc<PartitionLog>> {
        self.partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// An append queued to the group commit.
pub struct AppendTicket {
    rx: oneshot::Receiver<Result<Appended>>,
    /// The broker time stamped on LogAppendTime topics, else -1.
    log_append_time: i64,
}

impl AppendTicket {
    /// Waits for the commit: the base offset and the LogAppendTime.
    pub async fn wait(self) -> Result<(Appended, i64)> {
        let appended = self.rx.await.map_err(|_| StorageError::ShuttingDown)??;
        Ok((appended, self.log_append_time))
    }
}

/// Batches read for a fetch, with the offsets to report.
#[derive(Debug, Default)]
pub struct ReadResult {
    pub batches: Vec<Bytes>,
    pub bytes: usize,
    pub log_start: i64,
    pub high_watermark: i64,
}

/// A ListOffsets answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetAt {
    pub offset: i64,
    pub timestamp: i64,
    pub leader_epoch: i32,
}

/// ListOffsets' special timestamps.
pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;
pub const MAX_TIMESTAMP: i64 = -3;
pub const EARLIEST_LOCAL: i64 = -4;

/// The storage service.
pub struct Storage {
    catalog: Arc<dyn Catalog>,
    objects: Objects,
    /// This process's identity as a leader and object owner.
    owner: String,
    opts: StorageOptions,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Serialises topic creation and deletion on this broker.
    admin: tokio::sync::Mutex<()>,
    appender: Mutex<Option<mpsc::Sender<AppendRequest>>>,
    committer: Mutex<Option<JoinHandle<()>>>,
    /// Committed chunks through the read cache, with read-ahead.
    chunks: ChunkReader,
    /// The per-partition tail budget last handed out.
    applied_tail_share: Mutex<usize>,
    /// Small objects a merge could not read or check, passed over by later
    /// merges (see [`crate::merge::merge_small_objects`]).
    unmergeable: Mutex<std::collections::HashSet<i64>>,
}

impl Storage {
    /// Connects the catalog and object store, takes over every partition,
    /// and starts the group commit and the maintenance task.
    pub async fn open(opts: StorageOptions) -> Result<Arc<Storage>> {
        let objects = Objects::open(&opts.objects_url)?;
        Self::open_with(opts, objects).await
    }

    /// Like [`Storage::open`], on an object store built in code
    /// (`opts.objects_url` is not used).
    pub async fn open_with(opts: StorageOptions, objects: Objects) -> Result<Arc<Storage>> {
        let catalog: Arc<dyn Catalog> = Arc::new(SqlCatalog::connect(&opts.catalog_url).await?);
        let owner = format!("broker-{:016x}", rand::random::<u64>());

        let (refence_tx, refence_rx) = mpsc::unbounded_channel::<Arc<PartitionLog>>();
        let refence = Arc::new(move |log: Arc<PartitionLog>| {
            let _ = refence_tx.send(log);
        });
        let (tx, committer) = commit::start(
            catalog.clone(),
            objects.clone(),
            owner.clone(),
            opts.flush,
            refence,
        );

        let storage = Arc::new(Storage {
            catalog,
            chunks: ChunkReader::new(objects.clone(), opts.read_cache_bytes),
            objects,
            owner,
            opts,
            topics: RwLock::new(BTreeMap::new()),
            admin: tokio::sync::Mutex::new(()),
            appender: Mutex::new(Some(tx)),
            committer: Mutex::new(Some(committer)),
            applied_tail_share: Mutex::new(0),
            unmergeable: Mutex::new(Default::default()),
        });
        for row in storage.catalog.list_topics().await? {
            storage.load_topic(row).await?;
        }
        tokio::spawn(Self::retake_fenced(Arc::downgrade(&storage), refence_rx));
        tokio::spawn(Self::maintenance(Arc::downgrade(&storage)));
        tokio::spawn(Self::compaction(Arc::downgrade(&storage)));
        Ok(storage)
    }

    pub fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.catalog
    }

    pub fn objects(&self) -> &Objects {
        &self.objects
    }

    /// Stops accepting appends and waits for the last flush.
    pub async fn shutdown(&self) {
        let sender = self
            .appender
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        drop(sender);
        let handle = self
            .committer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(h) = handle {
            let _ = h.await;
        }
    }

    async fn load_topic(&self, row: TopicRow) -> Result<Arc<Topic>> {
        let parts = self.catalog.take_over(row.id, &self.owner, None).await?;
        // Read after the take-over: the previous leader can commit no more.
        let mut producers =
            producers_by_partition(self.catalog.producer_states(row.id, None).await?);
        let share = self.tail_share();
        let logs = parts
            .iter()
            .map(|p| {
                let states = producers.remove(&p.partition).unwrap_or_default();
                new_log(&row.name, p, share, ProducerStates::load(states))
            })
            .collect();
        let topic = Arc::new(Topic {
            id: row.id,
            name: row.name.clone(),
            uuid: row.uuid,
            created_ms: row.created_ms,
            config: RwLock::new(TopicConfig::new(row.configs)),
            partitions: RwLock::new(logs),
        });
        self.topics
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(row.name, topic.clone());
        self.rebalance_tail();
        Ok(topic)
    }

    /// Each partition's share of the tail budget (see [`tail_share`]).
    fn tail_share(&self) -> usize {
        let partitions: usize = self
            .topics()
            .iter()
            .map(|t| t.partition_count() as usize)
            .sum();
        tail_share(self.opts.tail_bytes, partitions)
    }

    /// Re-splits the tail budget after partitions came or went.
    fn rebalance_tail(&self) {
        // Computed and applied under one lock: two re-splits racing could
        // otherwise apply the older (larger) share last.
        let mut applied = self
            .applied_tail_share
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let share = self.tail_share();
        if *applied == share {
            return;
        }
        *applied = share;
        for t in self.topics() {
            for p in t.partitions() {
                p.set_tail_budget(share);
            }
        }
    }

    /// Takes fenced partitions over again with a new epoch, so that a commit
    /// whose outcome was misjudged costs a retry, not the partition.
    async fn retake_fenced(
        storage: std::sync::Weak<Storage>,
        mut rx: mpsc::UnboundedReceiver<Arc<PartitionLog>>,
    ) {
        while let Some(log) = rx.recv().await {
            let Some(s) = storage.upgrade() else { return };
            let taken = async {
                let rows = s
                    .catalog
                    .take_over(log.topic_id, &s.owner, Some(log.partition))
                    .await?;
                let producers = s
                    .catalog
                    .producer_states(log.topic_id, Some(log.partition))
                    .await?;
                Ok::<_, StorageError>((rows, producers))
            };
            match taken.await {
                Ok((rows, producers)) => {
                    if let Some(p) = rows.first() {
                        tracing::warn!(topic = %log.topic, partition = log.partition, epoch = p.leader_epoch, "partition taken over again after a fenced commit");
                        log.reset(
                            p.leader_epoch,
                            p.log_start,
                            p.next_offset,
                            ProducerStates::load(producers),
                        );
                    }
                }
                Err(e) => tracing::error!(error = %e, "could not take over a fenced partition"),
            }
        }
    }

    // ----- topics -----

    pub fn topic(&self, name: &str) -> Result<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| StorageError::UnknownTopic(name.to_string()))
    }

    /// The topic with Kafka's topic id `uuid`, if any.
    pub fn topic_by_uuid(&self, uuid: &[u8; 16]) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .find(|t| &t.uuid == uuid)
            .cloned()
    }

    pub fn topics(&self) -> Vec<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Result<Arc<PartitionLog>> {
        self.topic(topic)?.partition(partition)
    }

    /// Creates a topic (or only checks that it could be, with `validate_only`).
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Option<Arc<Topic>>> {
        validate_topic_name(name)?;
        if is_internal_topic(name) {
            return Err(StorageError::InvalidTopic(format!(
                "`{name}` is the name of a topic internal to Kafka; Sluice keeps what it holds in its catalog, so it cannot be created"
            )));
        }
        if partitions < 1 {
            return Err(StorageError::InvalidPartitions(format!(
                "number of partitions must be at least 1, got {partitions}"
            )));
        }
        if partitions > MAX_PARTITIONS {
            return Err(StorageError::InvalidPartitions(format!(
                "number of partitions {partitions} exceeds the limit of {MAX_PARTITIONS}"
            )));
        }
        let configs = topic_config::validate_all(&configs)?;
        let _guard = self.admin.lock().await;
        {
            let topics = self.topics.read().unwrap_or_else(|p| p.into_inner());
            if topics.contains_key(name) {
                return Err(StorageError::TopicExists(name.to_string()));
            }
            let canon = collision_form(name);
            if let Some(other) = topics.keys().find(|t| collision_form(t) == canon) {
                return Err(StorageError::InvalidTopic(format!(
                    "topic `{name}` collides with existing topic `{other}`: names that differ only in `.` and `_` are not allowed together"
                )));
            }
        }
        if validate_only {
            return Ok(None);
        }
        let row = TopicRow {
            id: (rand::random::<u64>() >> 1) as i64,
            name: name.to_string(),
            uuid: rand::random(),
            partitions,
            configs,
            created_ms: crate::now_ms(),
        };
        self.catalog.create_topic(&row, &self.owner).await?;
        let topic = self.load_topic(row).await?;
        tracing::info!(topic = name, partitions, "topic created");
        Ok(Some(topic))
    }

    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let _guard = self.admin.lock().await;
        let topic = self.topic(name)?;
        self.catalog.delete_topic(topic.id).await?;
        for p in topic.partitions() {
            p.fence();
        }
        self.topics
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        self.rebalance_tail();
        tracing::info!(topic = name, "topic deleted");
        Ok(())
    }

    /// Grows a topic to `count` partitions.
    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<()> {
        let _guard = self.admin.lock().await;
        let topic = self.topic(name)?;
        let current = topic.partition_count();
        if count <= current {
            return Err(StorageError::InvalidPartitions(format!(
                "topic `{name}` has {current} partitions; the new count must be larger, got {count}"
            )));
        }
        if count > MAX_PARTITIONS {
            return Err(StorageError::InvalidPartitions(format!(
                "number of partitions {count} exceeds the limit of {MAX_PARTITIONS}"
            )));
        }
        if validate_only {
            return Ok(());
        }
        let rows = self
            .catalog
            .add_partitions(topic.id, count, &self.owner)
            .await?;
        let share = self.tail_share();
        let logs: Vec<_> = rows
            .iter()
            .map(|p| new_log(name, p, share, ProducerStates::default()))
            .collect();
        topic
            .partitions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .extend(logs);
        self.rebalance_tail();
        Ok(())
    }

    /// Replaces a topic's explicit configs.
    pub async fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<()> {
        let configs = topic_config::validate_all(&configs)?;
        let topic = self.topic(name)?;
        if validate_only {
            return Ok(());
        }
        self.catalog.set_topic_configs(topic.id, &configs).await?;
        *topic.config.write().unwrap_or_else(|p| p.into_inner()) = TopicConfig::new(configs);
        Ok(())
    }

    // ----- the write path -----

    /// Validates a partition's records from a produce request and queues
    /// them to the group commit. Batches queued by successive calls are
    /// committed in that order; the ticket waits for the commit.
    pub async fn enqueue_append(
        &self,
        topic: &str,
        partition: i32,
        records: Bytes,
    ) -> Result<AppendTicket> {
        let t = self.topic(topic)?;
        let log = t.partition(partition)?;
        let config = t.config();
        let now = crate::now_ms();
        let batch_rules = config.batch_rules();
        let headers = batch::validate_produced(&records, &batch_rules)?;
        let log_append_time = config.log_append_time().then_some(now);
        // As Kafka: compaction keeps the last record of each key, so a
        // compacted topic refuses records without one; and CreateTime
        // timestamps must lie within the topic's bounds.
        let record_rules = RecordRules::new(&batch_rules, config.compacts(), now);
        let mut batches = Vec::with_capacity(headers.len());
        let mut pos = 0;
        for h in headers {
            if record_rules.need_records(&h) {
                // Reading the records may mean decompressing 64 MiB: CPU
                // work, kept off the async workers.
                let batch = records.slice(pos..pos + h.size);
                tokio::task::spawn_blocking(move || check_records(&batch, &h, &record_rules))
                    .await
                    .map_err(|e| StorageError::Background(e.to_string()))??;
            }
            let producer = ProducerBatchHeader::from_header(&h)?;
            batches.push(PendingBatch {
                bytes: records.slice(pos..pos + h.size),
                records: h.record_count,
                // The index needs a time for retention: batches without one
                // (-1) count as written now.
                max_timestamp: log_append_time.unwrap_or(if h.max_timestamp >= 0 {
                    h.max_timestamp
                } else {
                    now
                }),
                log_append_time,
                producer,
            });
            pos += h.size;
        }
        let sender = self
            .appender
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(StorageError::ShuttingDown)?;
        let (reply, rx) = oneshot::channel();
        sender
            .send(AppendRequest {
                log,
                batches,
                enqueued: Instant::now(),
                reply,
            })
            .await
            .map_err(|_| StorageError::ShuttingDown)?;
        Ok(AppendTicket {
            rx,
            log_append_time: log_append_time.unwrap_or(-1),
        })
    }

    /// Appends and waits for the commit.
    pub async fn append(
        &self,
        topic: &str,
        partition: i32,
        records: Bytes,
    ) -> Result<(Appended, i64)> {
        self.enqueue_append(topic, partition, records)
            .await?
            .wait()
            .await
    }

    /// InitProducerId for an idempotent producer: a new producer id, or
    /// the next epoch of the one it holds (KIP-360).
    pub async fn init_producer_id(
        &self,
        held: Option<ProducerIdAndEpoch>,
    ) -> Result<ProducerIdAndEpoch> {
        self.catalog.init_producer_id(held).await
    }

    // ----- the read path -----

    /// Reads committed batches from `offset`, up to about `max_bytes` (the
    /// first batch is returned whole even if larger, as Kafka does).
    pub async fn read(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: usize,
    ) -> Result<ReadResult> {
        match self
            .read_through(topic, partition, offset, max_bytes, true)
            .await
        {
            // The partition's cached index page may be older than a merge
            // whose copied objects are gone by now: once more, from the
            // catalog.
            Err(StorageError::Objects(e)) => {
                tracing::debug!(topic, partition, offset, error = %e, "object read failed; reading the index again");
                self.read_through(topic, partition, offset, max_bytes, false)
                    .await
            }
            other => other,
        }
    }

    /// [`Storage::read`], with or without the partition's cached page of
    /// the chunk index.
    async fn read_through(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: usize,
        cached_index: bool,
    ) -> Result<ReadResult> {
        let log = self.partition(topic, partition)?;
        let Offsets {
            log_start,
            high_watermark,
            ..
        } = log.offsets();
        let mut result = ReadResult {
            log_start,
            high_watermark,
            ..Default::default()
        };
        if offset < log_start || offset > high_watermark {
            return Err(StorageError::OffsetOutOfRange {
                topic: topic.to_string(),
                partition,
                offset,
                log_start,
                high_watermark,
            });
        }
        if offset == high_watermark {
            return Ok(result);
        }
        if let Some(tail) = log.read_tail(offset, max_bytes) {
            result.batches = tail.batches;
            result.bytes = tail.bytes;
            return Ok(result);
        }
        // Cold read through the catalog's index and the object store, a
        // page of chunks at a time, a few pages at most (each chunk is an
        // object read, and the consumer can fetch again).
        if !cached_index {
            log.forget_chunk_page();
        }
        let (mut page, mut at) = self.chunk_page(&log, offset).await?;
        let mut next = offset;
        let mut pages = 1;
        'pages: loop {
            let mut full = false;
            while at < page.len() && !full && page[at].base_offset < high_watermark {
                let chunk = &page[at];
                if chunk.last_offset < next {
                    // Chunks never overlap; a catalog saying otherwise
                    // must not make a read go backwards.
                    break 'pages;
                }
                let bytes = self.chunks.chunk(chunk).await?;
                let (slice, filled) = crate::partition::slice_batches(
                    &bytes,
                    offset,
                    high_watermark,
                    max_bytes,
                    &mut result.bytes,
                );
                result.batches.extend(slice);
                full = filled;
                next = chunk.last_offset + 1;
                at += 1;
            }
            if full
                || page.is_empty()
                || at < page.len()
                || next >= high_watermark
                || pages == PAGES_PER_READ
            {
                break;
            }
            // The page ran out before the budget did: the next page.
            (page, at) = self.chunk_page(&log, next).await?;
            pages += 1;
        }
        // The consumer will most likely ask for what follows next.
        let ahead = &page[at.min(page.len())..];
        let committed = ahead
            .iter()
            .take_while(|c| c.base_offset < high_watermark)
            .count();
        self.chunks.read_ahead(&ahead[..committed], max_bytes);
        Ok(result)
    }

    /// The page of chunks holding `offset` and the index of its chunk in
    /// it: the partition's cached page if it has it, else a new page from
    /// the catalog (which the partition then caches). An index past the
    /// page's end means no committed chunk holds `offset`.
    async fn chunk_page(
        &self,
        log: &PartitionLog,
        offset: i64,
    ) -> Result<(Arc<[ChunkRow]>, usize)> {
        if let Some(found) = log.cached_chunk_page(offset) {
            return Ok(found);
        }
        let page: Arc<[ChunkRow]> = self
            .catalog
            .chunks_from(log.topic_id, log.partition, offset, CHUNK_PAGE)
            .await?
            .into();
        if !page.is_empty() {
            log.cache_chunk_page(page.clone());
        }
        let at = chunk_holding(&page, offset);
        Ok((page, at))
    }

    /// ListOffsets for one partition: latest, earliest, max timestamp, or
    /// the first offset whose timestamp is at or after `timestamp`.
    pub async fn offset_at(&self, topic: &str, partition: i32, timestamp: i64) -> Result<OffsetAt> {
        let log = self.partition(topic, partition)?;
        let o = log.offsets();
        let at = |offset, timestamp| OffsetAt {
            offset,
            timestamp,
            leader_epoch: o.leader_epoch,
        };
        match timestamp {
            LATEST => Ok(at(o.high_watermark, -1)),
            EARLIEST | EARLIEST_LOCAL => Ok(at(o.log_start, -1)),
            MAX_TIMESTAMP => {
                let Some(chunk) = self
                    .catalog
                    .chunk_with_max_time(log.topic_id, partition)
                    .await?
                else {
                    return Ok(at(-1, -1));
                };
                let found = self
                    .find_in_chunk(&chunk, |ts, best: Option<(i64, i64)>| {
                        best.is_none_or(|(_, b)| ts > b)
                    })
                    .await?;
                Ok(found.map(|(off, ts)| at(off, ts)).unwrap_or(at(-1, -1)))
            }
            ts if ts >= 0 => {
                let Some(chunk) = self
                    .catalog
                    .chunk_at_time(log.topic_id, partition, ts)
                    .await?
                else {
                    return Ok(at(-1, -1));
                };
                let found = self
                    .find_in_chunk(&chunk, |rec_ts, best: Option<(i64, i64)>| {
                        best.is_none() && rec_ts >= ts
                    })
                    .await?;
                Ok(found
                    .map(|(off, t)| at(off.max(o.log_start), t))
                    .unwrap_or(at(-1, -1)))
            }
            other => Err(StorageError::InvalidConfig(format!(
                "unsupported ListOffsets timestamp {other}"
            ))),
        }
    }

    /// OffsetForLeaderEpoch for one partition: where `epoch` ended.
    pub async fn epoch_end(&self, topic: &str, partition: i32, epoch: i32) -> Result<EpochEnd> {
        let log = self.partition(topic, partition)?;
        let now = log.offsets();
        if epoch < 0 || epoch >= now.leader_epoch {
            // The current epoch or none: no history needed.
            return Ok(end_of_epoch(&[], epoch, now));
        }
        let starts = self.catalog.epoch_starts(log.topic_id, partition).await?;
        Ok(end_of_epoch(&starts, epoch, now))
    }

    /// Walks the records of a chunk, keeping the (offset, timestamp) that
    /// `better` prefers; decompresses only the batches it has to.
    async fn find_in_chunk(
        &self,
        chunk: &ChunkRow,
        better: impl Fn(i64, Option<(i64, i64)>) -> bool,
    ) -> Result<Option<(i64, i64)>> {
        let bytes = self.chunks.chunk(chunk).await?;
        let mut best: Option<(i64, i64)> = None;
        for (at, h) in batch::batches(&bytes) {
            if h.is_log_append_time() {
                if better(h.max_timestamp, best) {
                    best = Some((h.base_offset, h.max_timestamp));
                }
                continue;
            }
            // A batch whose max timestamp loses cannot hold a winner.
            if !better(h.max_timestamp, best) {
                continue;
            }
            let mut b = bytes.slice(at..at + h.size);
            let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut b).map_err(|e| {
                StorageError::CorruptObject(object_path(chunk.object_id), e.to_string())
            })?;
            for r in set.records {
                if better(r.timestamp, best) {
                    best = Some((r.offset, r.timestamp));
                }
            }
        }
        Ok(best)
    }

    // ----- background work -----

    /// Waits one maintenance interval; the storage then, unless it is gone.
    async fn next_pass(storage: &std::sync::Weak<Storage>) -> Option<Arc<Storage>> {
        let interval = storage.upgrade()?.opts.maintenance_interval;
        tokio::time::sleep(interval).await;
        storage.upgrade()
    }

    async fn maintenance(storage: std::sync::Weak<Storage>) {
        while let Some(s) = Self::next_pass(&storage).await {
            if let Err(e) = s.apply_retention().await {
                tracing::warn!(error = %e, "retention pass failed");
            }
            if let Err(e) = s.merge_small_objects().await {
                tracing::warn!(error = %e, "merging small objects failed");
            }
            if let Err(e) = s.collect_objects().await {
                tracing::warn!(error = %e, "object collection failed");
            }
            s.expire_producers().await;
        }
    }

    /// Compaction runs on its own schedule, so that a long pass over a
    /// large log holds up neither retention nor the collection of objects.
    /// (It races them safely: every index swap checks the rows it replaces.)
    async fn compaction(storage: std::sync::Weak<Storage>) {
        while let Some(s) = Self::next_pass(&storage).await {
            if let Err(e) = s.compact_logs().await {
                tracing::warn!(error = %e, "compaction pass failed");
            }
        }
    }

    /// Forgets, in memory and in the catalog, the idempotent producers
    /// that wrote nothing to a partition for `producer_id_expiration_ms`.
    /// Without this, every producer that ever wrote would be kept forever
    /// (Java clients are idempotent by default, with a new id each run).
    pub async fn expire_producers(&self) {
        let idle_before = crate::now_ms() - self.opts.producer_id_expiration_ms;
        for topic in self.topics() {
            for log in topic.partitions() {
                if log.is_fenced() {
                    continue;
                }
                let expired = log.expire_producers(idle_before);
                if expired.is_empty() {
                    continue;
                }
                metrics::counter!("sluice_producers_expired_total").increment(expired.len() as u64);
                // Should this fail, the rows stay until the partition is
                // loaded again, and expire then.
                if let Err(e) = self
                    .catalog
                    .forget_producers(topic.id, log.partition, &expired, idle_before)
                    .await
                {
                    tracing::warn!(error = %e, topic = %topic.name, partition = log.partition,
                        "forgetting expired producers in the catalog failed");
                }
            }
        }
    }

    /// Removes whole chunks older than `retention.ms` or beyond
    /// `retention.bytes`, and moves each log start past them.
    pub async fn apply_retention(&self) -> Result<()> {
        let now = crate::now_ms();
        for topic in self.topics() {
            let config = topic.config();
            if !config.deletes_old_data() {
                continue;
            }
            let (retention_ms, retention_bytes) = (config.retention_ms(), config.retention_bytes());
            if retention_ms < 0 && retention_bytes < 0 {
                continue;
            }
            for log in topic.partitions() {
                if log.is_fenced() {
                    continue;
                }
                let o = log.offsets();
                let mut new_start = o.log_start;
                if retention_ms >= 0 {
                    new_start = self
                        .first_offset_kept(topic.id, log.partition, new_start, |c| {
                            c.max_timestamp < now - retention_ms
                        })
                        .await?;
                }
                if retention_bytes >= 0 {
                    let mut excess = self
                        .catalog
                        .partition_bytes(topic.id, log.partition)
                        .await?
                        - retention_bytes;
                    if excess > 0 {
                        // Drop whole chunks while what stays is still at
                        // least retention.bytes, as Kafka drops segments.
                        new_start = self
                            .first_offset_kept(topic.id, log.partition, o.log_start, |c| {
                                let drop = excess >= c.byte_len;
                                if drop {
                                    excess -= c.byte_len;
                                }
                                drop
                            })
                            .await?
                            .max(new_start);
                    }
                }
                let new_start = new_start.min(o.high_watermark);
                if new_start > o.log_start
                    && self
                        .catalog
                        .advance_log_start(topic.id, log.partition, o.leader_epoch, new_start)
                        .await?
                {
                    log.advance_log_start(new_start);
                    tracing::info!(topic = %topic.name, partition = log.partition, log_start = new_start, "retention removed old data");
                }
            }
        }
        Ok(())
    }

    /// Walks a partition's chunks from `from` while `expired` says so, a
    /// page at a time; returns the first offset to keep. Cheap when nothing
    /// has expired: one short index lookup.
    async fn first_offset_kept(
        &self,
        topic_id: i64,
        partition: i32,
        from: i64,
        mut expired: impl FnMut(&ChunkRow) -> bool,
    ) -> Result<i64> {
        const PAGE: i64 = 256;
        let mut start = from;
        loop {
            let page = self
                .catalog
                .chunks_from(topic_id, partition, start, PAGE)
                .await?;
            for c in &page {
                if !expired(c) {
                    return Ok(start);
                }
                start = c.last_offset + 1;
            }
            if (page.len() as i64) < PAGE {
                return Ok(start);
            }
        }
    }

    /// Compacts the partitions of compacted topics that are due (see
    /// [`crate::compaction`]); returns the records removed. A partition
    /// whose pass fails is logged and left for the next pass; the others go
    /// on.
    pub async fn compact_logs(&self) -> Result<u64> {
        let mut removed = 0;
        for topic in self.topics() {
            let config = topic.config();
            if !config.compacts() {
                continue;
            }
            let rules = crate::compaction::CompactionRules::of(&config);
            for log in topic.partitions() {
                if log.is_fenced() {
                    continue;
                }
                let o = log.offsets();
                let p = crate::compaction::PartitionToCompact {
                    topic_id: topic.id,
                    partition: log.partition,
                    log_start: o.log_start,
                    high_watermark: o.high_watermark,
                    rules,
                };
                let started = Instant::now();
                let done = match crate::compaction::compact_partition(
                    &*self.catalog,
                    &self.objects,
                    &self.owner,
                    p,
                    self.opts.compaction,
                    crate::now_ms(),
                )
                .await
                {
                    Ok(Some(done)) => done,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(topic = %topic.name, partition = log.partition, error = %e,
                            "compacting a partition failed; the next pass tries again");
                        continue;
                    }
                };
                if done.sections > 0 {
                    log.forget_chunk_page();
                    log.forget_tail_below(done.rewritten_to);
                }
                removed += done.records_removed;
                metrics::counter!("sluice_compaction_records_removed_total")
                    .increment(done.records_removed);
                metrics::counter!("sluice_compaction_bytes_removed_total")
                    .increment(done.bytes_before.saturating_sub(done.bytes_after));
                tracing::info!(topic = %topic.name, partition = log.partition,
                    cleaned_to = done.cleaned_to, finished = done.finished,
                    records_removed = done.records_removed,
                    bytes_before = done.bytes_before, bytes_after = done.bytes_after,
                    ms = started.elapsed().as_millis() as u64, "compacted");
            }
        }
        Ok(removed)
    }

    /// Merges small objects if enough wait (see [`crate::merge`]). The
    /// partitions whose index rows changed forget their cached index page,
    /// so that reads find the merged chunks before the old objects go.
    pub async fn merge_small_objects(&self) -> Result<Option<crate::merge::Merged>> {
        let merged = crate::merge::merge_small_objects(
            &*self.catalog,
            &self.objects,
            &self.owner,
            &self.unmergeable,
        )
        .await?;
        if let Some(m) = &merged {
            let touched: std::collections::HashSet<&(i64, i32)> = m.partitions.iter().collect();
            for topic in self.topics() {
                for log in topic.partitions() {
                    if touched.contains(&(topic.id, log.partition)) {
                        log.forget_chunk_page();
                    }
                }
            }
            tracing::info!(
                objects = m.objects,
                chunks_before = m.chunks_before,
                chunks_after = m.chunks_after,
                bytes = m.bytes,
                "merged small objects"
            );
        }
        Ok(merged)
    }

    /// Deletes objects no chunk refers to any more, and prepared objects
    /// whose commit never happened.
    pub async fn collect_objects(&self) -> Result<usize> {
        let found = self
            .catalog
            .collectable_objects(crate::now_ms(), self.opts.collect_grace_ms)
            .await?;
        for o in &found {
            self.objects.delete(&o.path).await?;
            self.catalog.forget_object(o.id).await?;
        }
        if !found.is_empty() {
            tracing::info!(objects = found.len(), "collected unreferenced objects");
        }
        Ok(found.len())
    }
}

/// A partition's share of the global tail `budget` among `partitions`: an
/// even split, at most 8 MiB (one partition's consumers rarely lag by more
/// than that and still read from memory). No floor: with very many
/// partitions each tail is small, or empty and read from the object store
/// through the read cache, but the tails together stay within the budget.
fn tail_share(budget: usize, partitions: usize) -> usize {
    (budget / partitions.max(1)).min(8 << 20)
}

/// This broker's state for a partition it just took over, with its share
/// of the tail budget (computed once per topic, not once per partition).
fn new_log(
    topic: &str,
    p: &PartitionRow,
    tail_share: usize,
    producers: ProducerStates,
) -> Arc<PartitionLog> {
    Arc::new(PartitionLog::new(
        p.topic_id,
        topic,
        p.partition,
        p.leader_epoch,
        p.log_start,
        p.next_offset,
        tail_share,
        producers,
    ))
}

fn producers_by_partition(rows: Vec<ProducerStateRow>) -> BTreeMap<i32, Vec<ProducerStateRow>> {
    let mut by_partition: BTreeMap<i32, Vec<ProducerStateRow>> = BTreeMap::new();
    for r in rows {
        by_partition.entry(r.partition).or_default().push(r);
    }
    by_partition
}

/// Kafka's internal topics. Sluice keeps their contents (cluster metadata,
/// group offsets, transaction state) in the catalog; a user topic by one of
/// these names would look like Kafka's to tools while holding nothing of it.
const INTERNAL_TOPICS: [&str; 4] = [
    "__cluster_metadata",
    "__consumer_offsets",
    "__transaction_state",
    "__share_group_state",
];

/// Whether `name` is one of Kafka's internal topics, which cannot be
/// created here.
pub fn is_internal_topic(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}

/// Kafka's topic name rules.
pub fn validate_topic_name(name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(StorageError::InvalidTopic(format!(
            "invalid topic name `{name}`: {why}"
        )))
    };
    if name.is_empty() {
        return bad("the name is empty");
    }
    if name == "." || name == ".." {
        return bad("`.` and `..` are not allowed");
    }
    if name.len() > MAX_TOPIC_NAME {
        return bad(&format!("longer than {MAX_TOPIC_NAME} characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return bad(&format!(
            "`{c}` is not allowed; use ASCII letters, digits, `.`, `_` and `-`"
        ));
    }
    Ok(())
}

/// `.` and `_` collide in metric names, so Kafka refuses topics that differ
/// only in them.
fn collision_form(name: &str) -> String {
    name.replace('.', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_shares_add_up_to_at_most_the_budget() {
        let budget = 256 << 20;
        assert_eq!(tail_share(budget, 0), 8 << 20);
        assert_eq!(tail_share(budget, 8), 8 << 20);
        for partitions in [32, 4096, 10_000, 1_000_000] {
            let share = tail_share(budget, partitions);
            assert!(share * partitions <= budget, "{partitions}: {share}");
            assert!(share * partitions > budget - partitions, "{partitions}");
        }
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        for bad in ["", ".", "..", "a b", "é", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }
}
