//! The catalog: every piece of durable metadata (topics, partitions and their
//! leader epochs, the offset index of stored chunks, the object table,
//! producer ids and per-partition producer state, consumer groups and their
//! committed offsets, and the tenancy records: tenants, credentials, ACLs).
//! The catalog stores tenancy records as rows; what they mean (plans,
//! secrets, ACL evaluation) belongs to the tenancy crate.
//!
//! [`Catalog`] is the interface; [`sql::SqlCatalog`] implements it on SQLite
//! and PostgreSQL with the same SQL, and [`conformance`] is the suite both
//! must pass.

pub mod conformance;
pub mod sql;

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::error::Result;

/// A topic as the catalog records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRow {
    /// Internal id; a topic deleted and created again gets a new one, so
    /// the old one's chunks can never mix with the new one's.
    pub id: i64,
    pub name: String,
    /// Kafka's topic id (16 bytes), reported in Metadata v10+.
    pub uuid: [u8; 16],
    pub partitions: i32,
    /// Explicitly set topic configs.
    pub configs: BTreeMap<String, String>,
    pub created_ms: i64,
}

/// A partition's durable state, returned when a leader takes it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionRow {
    pub topic_id: i64,
    pub partition: i32,
    pub leader_epoch: i32,
    pub log_start: i64,
    pub next_offset: i64,
}

/// The offset a partition's leader epoch began at: the partition's next
/// offset when that leader took it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochStart {
    pub leader_epoch: i32,
    pub start_offset: i64,
}

/// One index entry: the consecutive batches of one partition stored in a
/// byte range of one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRow {
    pub topic_id: i64,
    pub partition: i32,
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub leader_epoch: i32,
    pub object_id: i64,
    pub byte_start: i64,
    pub byte_len: i64,
}

/// An object registered before it is written, so that an object whose
/// commit never happens is found and collected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRow {
    pub id: i64,
    pub path: String,
    /// The broker instance that registered it.
    pub owner: String,
    pub created_ms: i64,
    pub expires_ms: i64,
}

/// One partition's share of a group commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionCommit {
    pub leader_epoch: i32,
    /// The chunk's base offset must equal the partition's `next_offset`,
    /// and `chunk.last_offset + 1` becomes the new one.
    pub chunk: ChunkRow,
}

/// One batch an idempotent producer wrote, as producer state remembers it:
/// enough to recognise a retry and answer it with the original offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
    pub last_offset: i64,
}

/// An idempotent producer's state in one partition, as of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerStateRow {
    pub topic_id: i64,
    pub partition: i32,
    pub producer_id: i64,
    /// Batches of older epochs are forgotten; older epochs are fenced.
    pub producer_epoch: i16,
    /// The producer's last batches (at most [`PRODUCER_BATCHES_KEPT`]),
    /// oldest first: retries of any of them are acknowledged, not appended.
    pub batches: Vec<ProducerBatch>,
    /// The max timestamp of the producer's last batch.
    pub last_timestamp: i64,
}

/// Kafka keeps the metadata of a producer's last five batches per
/// partition, matching the five requests a producer may have in flight.
pub const PRODUCER_BATCHES_KEPT: usize = 5;

/// A producer id and the epoch a producer holds it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdAndEpoch {
    pub producer_id: i64,
    pub epoch: i16,
}

/// What InitProducerId does with the id and epoch a producer already
/// holds (KIP-360), given the latest epoch the catalog handed out for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochBump {
    /// Store and return this epoch.
    Bump(i16),
    /// A retry of a bump whose answer was lost: return the latest epoch again.
    Repeat(i16),
    /// The producer holds an older epoch than the one before the latest.
    Fenced,
    /// Epochs are exhausted (or the epoch was never handed out): a new id.
    NewId,
}

/// Decides an epoch bump; shared by every catalog implementation.
pub fn epoch_bump(latest: i16, held: i16) -> EpochBump {
    if held == latest {
        // Kafka starts a new id once the epoch would reach Short.MAX_VALUE.
        if latest >= i16::MAX - 1 {
            EpochBump::NewId
        } else {
            EpochBump::Bump(latest + 1)
        }
    } else if held == latest - 1 {
        EpochBump::Repeat(latest)
    } else if held < latest {
        EpochBump::Fenced
    } else {
        EpochBump::NewId
    }
}

/// A group commit: one object and the chunks it holds.
#[derive(Debug, Clone)]
pub struct Commit {
    pub object_id: i64,
    pub object_size: i64,
    /// Sorted by (topic id, partition), the order rows are locked in.
    pub partitions: Vec<PartitionCommit>,
    /// Producer state after this commit, one row per (partition, producer)
    /// that wrote to it, upserted in the same transaction as the chunks so
    /// that a new leader never sees chunks without the state that dedups
    /// their retries.
    pub producers: Vec<ProducerStateRow>,
    /// The object the next commit will use, registered in the same
    /// transaction so that a flush costs one catalog transaction.
    pub next_object: Option<ObjectRow>,
}

/// A committed object small enough to be merged with others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmallObject {
    pub id: i64,
    pub size_bytes: i64,
    pub created_ms: i64,
}

/// A copy of index rows into one new object: a merge (the chunks of small
/// objects, consecutive chunks of a partition combined; offsets, timestamps
/// and bytes unchanged), or a compaction section (the same offset ranges,
/// fewer records). Either way the new object is not merged again.
#[derive(Debug, Clone)]
pub struct Merge {
    /// The new object: registered (prepared) and written before the merge
    /// is committed.
    pub object_id: i64,
    pub object_size: i64,
    /// The index rows the merge copied, which must all still be there.
    pub replaced: Vec<ChunkRow>,
    /// The rows that replace them, all in the new object.
    pub merged: Vec<ChunkRow>,
}

/// What happened to a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    Committed,
    /// These partitions no longer match the writer's epoch or offset (a new
    /// leader, or the topic was deleted); nothing was committed.
    Fenced(Vec<(i64, i32)>),
}

/// An object the collector may delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectableObject {
    pub id: i64,
    pub path: String,
}

/// A consumer group the catalog knows: one that committed offsets or was
/// created explicitly. Members and generations live in the coordinator's
/// memory; members rejoin after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    pub group_id: String,
    /// `consumer` for Kafka consumers; what ListGroups reports for a group
    /// with no members.
    pub protocol_type: String,
    pub created_ms: i64,
}

/// A group's committed offset for one partition, as OffsetCommit gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetRow {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The leader epoch the consumer saw at that offset (-1 if unknown);
    /// clients use it to detect log truncation.
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    pub commit_ms: i64,
}

/// A tenant: a name (its topics and groups carry the prefix `<name>.`) on a
/// plan, named as the plan table names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRow {
    pub name: String,
    pub plan: String,
    pub created_ms: i64,
}

/// One credential of a tenant: a SASL username (its principal is
/// `User:<username>`, also the common name of its client certificate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRow {
    pub username: String,
    pub tenant: String,
    /// Salted keys and certificate fingerprint, encoded by the tenancy
    /// crate; never a clear password.
    pub secret: String,
    pub created_ms: i64,
}

/// An API token of a tenant: it authorizes the REST API for that tenant
/// alone. Only a hash of the token is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// Names the token in lists and revocation; not a secret.
    pub id: String,
    pub tenant: String,
    /// SHA-256 of the token, hex.
    pub hash: String,
    pub created_ms: i64,
}

/// One ACL binding in Kafka's model, with Kafka's numeric codes for the
/// resource type, pattern type, operation and permission.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclRow {
    pub resource_type: i8,
    pub resource_name: String,
    pub pattern_type: i8,
    pub principal: String,
    pub host: String,
    pub operation: i8,
    pub permission: i8,
}

/// Durable metadata. Implementations must pass [`conformance::run`].
#[async_trait]
pub trait Catalog: Send + Sync + 'static {
    /// Creates the schema if it is missing.
    async fn migrate(&self) -> Result<()>;

    /// Creates a topic and its partitions, led by `leader` from epoch 1.
    async fn create_topic(&self, topic: &TopicRow, leader: &str) -> Result<()>;
    async fn list_topics(&self) -> Result<Vec<TopicRow>>;
    /// Removes the topic, its partitions, index rows and producer state. Objects that
    /// no longer hold any chunk are collected later.
    async fn delete_topic(&self, topic_id: i64) -> Result<()>;
    async fn set_topic_configs(
        &self,
        topic_id: i64,
        configs: &BTreeMap<String, String>,
    ) -> Result<()>;
    /// Grows a topic to `count` partitions, led by `leader` from epoch 1,
    /// and returns the new partitions.
    async fn add_partitions(
        &self,
        topic_id: i64,
        count: i32,
        leader: &str,
    ) -> Result<Vec<PartitionRow>>;

    /// Takes over the partitions of a topic (all, or only `partition`):
    /// bumps each leader epoch so that the previous leader's commits fail,
    /// and returns their new state.
    async fn take_over(
        &self,
        topic_id: i64,
        leader: &str,
        partition: Option<i32>,
    ) -> Result<Vec<PartitionRow>>;

    /// Registers an object as prepared before it is written.
    async fn register_object(&self, object: &ObjectRow) -> Result<()>;
    /// Commits a group: advances each partition's `next_offset` only if its
    /// epoch and offset still match, inserts the chunks, marks the object
    /// committed, and registers the next object, in one transaction.
    async fn commit(&self, commit: &Commit) -> Result<CommitOutcome>;
    /// Whether an object was committed (for commits whose outcome is unknown).
    async fn object_committed(&self, object_id: i64) -> Result<bool>;

    /// InitProducerId for an idempotent producer: a producer id never
    /// handed out before, at epoch 0; or, given the id and epoch a producer
    /// holds, the same id at the next epoch (KIP-360, see [`epoch_bump`]).
    /// A stale epoch is refused with `StorageError::ProducerFenced`.
    async fn init_producer_id(
        &self,
        held: Option<ProducerIdAndEpoch>,
    ) -> Result<ProducerIdAndEpoch>;
    /// The producer state of a topic's partitions (all, or only
    /// `partition`), loaded by a leader when it takes them over.
    async fn producer_states(
        &self,
        topic_id: i64,
        partition: Option<i32>,
    ) -> Result<Vec<ProducerStateRow>>;
    /// Deletes the state of these producers in one partition, each only
    /// if its last write is older than `idle_before` (so a commit racing
    /// the expiry keeps its row).
    async fn forget_producers(
        &self,
        topic_id: i64,
        partition: i32,
        producer_ids: &[i64],
        idle_before: i64,
    ) -> Result<()>;

    /// Chunks of a partition whose last offset is at or after `offset`, in
    /// offset order.
    async fn chunks_from(
        &self,
        topic_id: i64,
        partition: i32,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<ChunkRow>>;
    /// The first chunk (by offset) holding a timestamp at or after `timestamp`.
    async fn chunk_at_time(
        &self,
        topic_id: i64,
        partition: i32,
        timestamp: i64,
    ) -> Result<Option<ChunkRow>>;
    /// The chunk holding the partition's largest timestamp (earliest such).
    async fn chunk_with_max_time(&self, topic_id: i64, partition: i32) -> Result<Option<ChunkRow>>;
    /// Total stored bytes of a partition.
    async fn partition_bytes(&self, topic_id: i64, partition: i32) -> Result<i64> {
        self.partition_bytes_from(topic_id, partition, i64::MIN)
            .await
    }
    /// Total stored bytes of every topic, by name, in one query (tenant
    /// capacity accounting).
    async fn bytes_by_topic(&self) -> Result<Vec<(String, i64)>>;
    /// Stored bytes of a partition's chunks that start at or after
    /// `offset` (a compacted log's part not cleaned yet).
    async fn partition_bytes_from(&self, topic_id: i64, partition: i32, offset: i64)
        -> Result<i64>;

    /// Where each epoch a partition was led with began, in epoch order.
    async fn epoch_starts(&self, topic_id: i64, partition: i32) -> Result<Vec<EpochStart>>;

    /// The offset below which compaction last cleaned a partition's log,
    /// if it ever did.
    async fn cleaned_offset(&self, topic_id: i64, partition: i32) -> Result<Option<i64>>;
    /// Records that compaction cleaned a partition's log below `offset`.
    /// Does nothing if the partition no longer exists, or was recorded as
    /// cleaned further.
    async fn set_cleaned_offset(&self, topic_id: i64, partition: i32, offset: i64) -> Result<()>;

    /// Moves a partition's log start forward (retention) and removes the
    /// chunks wholly below it, and the starts of epochs that ended before
    /// it, if `leader_epoch` still leads it.
    async fn advance_log_start(
        &self,
        topic_id: i64,
        partition: i32,
        leader_epoch: i32,
        log_start: i64,
    ) -> Result<bool>;

    /// Objects to delete: prepared ones past their expiry, and committed ones
    /// that have held no chunk for `grace_ms`. Marks newly unreferenced
    /// objects so that the grace period starts now, and claims the ones it
    /// returns for collection, so that no commit can use them any more
    /// (and returns them again until they are forgotten).
    async fn collectable_objects(
        &self,
        now_ms: i64,
        grace_ms: i64,
    ) -> Result<Vec<CollectableObject>>;
    /// Forgets an object claimed for collection after its bytes were deleted.
    async fn forget_object(&self, object_id: i64) -> Result<()>;

    /// Committed objects of fewer than `max_bytes` that no merge wrote and
    /// that still hold chunks, oldest first, at most `limit`: the
    /// candidates for a merge. (A merge's
    /// own objects are not merged again, so that a chunk stops growing and
    /// retention can drop it.)
    async fn small_objects(&self, max_bytes: i64, limit: i64) -> Result<Vec<SmallObject>>;
    /// Every chunk stored in these objects, ordered by topic, partition and
    /// offset.
    async fn chunks_in_objects(&self, object_ids: &[i64]) -> Result<Vec<ChunkRow>>;
    /// Commits a merge or a compaction section in one transaction: removes
    /// the replaced rows, inserts the new ones and marks the new object
    /// committed. Returns false, changing nothing, if a replaced row is gone
    /// (retention, a deleted topic, another merge or compaction got there
    /// first) or the new object is no longer prepared.
    async fn merge_chunks(&self, merge: &Merge) -> Result<bool>;

    /// Records a group if it is not known yet.
    async fn save_group(&self, group: &GroupRow) -> Result<()>;
    /// Every known group, by id.
    async fn list_groups(&self) -> Result<Vec<GroupRow>>;
    /// Whether a group is known (created explicitly or by committing).
    async fn group_exists(&self, group_id: &str) -> Result<bool>;
    /// Forgets a group and its committed offsets; false if it was unknown.
    async fn delete_group(&self, group_id: &str) -> Result<bool>;
    /// Stores committed offsets (replacing earlier ones of the same
    /// partitions) and records the group, in one transaction.
    async fn commit_offsets(&self, group: &GroupRow, offsets: &[OffsetRow]) -> Result<()>;
    /// A group's committed offsets, by topic and partition.
    async fn group_offsets(&self, group_id: &str) -> Result<Vec<OffsetRow>>;
    /// Removes a group's committed offsets for these partitions.
    async fn delete_offsets(&self, group_id: &str, partitions: &[(String, i32)]) -> Result<()>;
    /// Stores a group's membership snapshot (opaque to the catalog),
    /// replacing the previous one, so a restarted coordinator resumes the
    /// group where it was instead of starting a new generation.
    async fn save_group_state(&self, group_id: &str, state: &str, now_ms: i64) -> Result<()>;
    /// Every stored membership snapshot: (group id, snapshot).
    async fn group_states(&self) -> Result<Vec<(String, String)>>;

    /// Records a new tenant; false if the name is taken.
    async fn create_tenant(&self, tenant: &TenantRow) -> Result<bool>;
    async fn list_tenants(&self) -> Result<Vec<TenantRow>>;
    /// Moves a tenant to another plan; false if it is unknown.
    async fn set_tenant_plan(&self, name: &str, plan: &str) -> Result<bool>;
    /// Forgets a tenant, its credentials and its API tokens, in one transaction; false if
    /// it was unknown. Its topics, groups and ACLs are removed by the caller.
    async fn delete_tenant(&self, name: &str) -> Result<bool>;
    /// Stores a credential, replacing the secret of an existing username
    /// of the same tenant. False (and nothing stored) if the username
    /// belongs to another tenant or the tenant is gone.
    async fn save_credential(&self, credential: &CredentialRow) -> Result<bool>;
    async fn list_credentials(&self) -> Result<Vec<CredentialRow>>;
    /// Forgets a credential; false if it was unknown.
    async fn delete_credential(&self, username: &str) -> Result<bool>;
    /// Stores a tenant's API token; false (nothing stored) if the tenant is
    /// gone.
    async fn save_token(&self, token: &TokenRow) -> Result<bool>;
    async fn list_tokens(&self) -> Result<Vec<TokenRow>>;
    /// Forgets a token; false if it was unknown.
    async fn delete_token(&self, id: &str) -> Result<bool>;
    /// Adds ACL bindings; bindings already present are left as they are.
    async fn add_acls(&self, acls: &[AclRow]) -> Result<()>;
    async fn list_acls(&self) -> Result<Vec<AclRow>>;
    /// Removes these exact bindings; returns how many were present.
    async fn delete_acls(&self, acls: &[AclRow]) -> Result<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_bumps_follow_kip_360() {
        assert_eq!(epoch_bump(0, 0), EpochBump::Bump(1));
        assert_eq!(epoch_bump(5, 4), EpochBump::Repeat(5));
        assert_eq!(epoch_bump(5, 3), EpochBump::Fenced);
        assert_eq!(epoch_bump(5, 6), EpochBump::NewId);
        assert_eq!(epoch_bump(i16::MAX - 1, i16::MAX - 1), EpochBump::NewId);
        assert_eq!(
            epoch_bump(i16::MAX - 2, i16::MAX - 2),
            EpochBump::Bump(i16::MAX - 1)
        );
    }
}
