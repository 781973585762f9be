//! Committed offsets: OffsetCommit checks the committer against its group,
//! then stores the offsets in the catalog; OffsetFetch and OffsetDelete read
//! and remove them. Also decodes the consumer protocol's subscription and
//! assignment bytes, which the coordinator otherwise passes through opaque.

use std::collections::BTreeMap;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
use kafka_protocol::protocol::Decodable;
use sluice_protocol::ErrorCode;
use sluice_storage::catalog::{GroupRow, OffsetRow};

use super::{lock, Group, GroupCoordinator};

/// Kafka's `offset.metadata.max.bytes`.
pub const MAX_METADATA_BYTES: usize = 4096;

/// Who commits: the member and its generation (classic) or epoch
/// (consumer protocol); an admin commit has no member and -1.
#[derive(Debug, Clone)]
pub struct Committer {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation_or_epoch: i32,
}

/// One partition's offset to commit.
#[derive(Debug, Clone)]
pub struct OffsetToCommit {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// One partition's committed offset as OffsetFetch reports it (-1 if none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

impl GroupCoordinator {
    /// Checks the committer against the group as Kafka does: a member of
    /// the current generation (classic), at its current epoch (consumer
    /// protocol), or an admin commit into a group without members.
    pub fn check_committer(&self, group_id: &str, c: &Committer) -> Option<ErrorCode> {
        let Some(g) = self.group(group_id) else {
            // No live group: only commits that do not claim membership. A
            // member of a generation this broker does not know (it
            // restarted) must rejoin.
            return (c.generation_or_epoch >= 0 || !c.member_id.is_empty())
                .then_some(ErrorCode::IllegalGeneration);
        };
        let mut g = lock(&g);
        match &mut *g {
            Group::Classic(classic) => classic.check_commit(
                &c.member_id,
                c.instance_id.as_deref(),
                c.generation_or_epoch,
                std::time::Instant::now(),
            ),
            Group::Consumer(consumer) => {
                consumer.check_member_epoch(&c.member_id, c.generation_or_epoch)
            }
        }
    }

    /// Commits offsets; returns each partition's error (None when stored).
    pub async fn commit_offsets(
        &self,
        group_id: &str,
        committer: &Committer,
        offsets: Vec<OffsetToCommit>,
    ) -> Vec<(OffsetToCommit, Option<ErrorCode>)> {
        if let Some(code) = self.check_committer(group_id, committer) {
            return offsets.into_iter().map(|o| (o, Some(code))).collect();
        }
        let counts = self.topic_partition_counts();
        let now = sluice_storage::now_ms();
        let mut results = Vec::with_capacity(offsets.len());
        let mut rows = Vec::new();
        for o in offsets {
            let error = if !counts
                .get(&o.topic)
                .is_some_and(|&n| o.partition >= 0 && o.partition < n)
            {
                Some(ErrorCode::UnknownTopicOrPartition)
            } else if o
                .metadata
                .as_ref()
                .is_some_and(|m| m.len() > MAX_METADATA_BYTES)
            {
                Some(ErrorCode::OffsetMetadataTooLarge)
            } else {
                rows.push(OffsetRow {
                    topic: o.topic.clone(),
                    partition: o.partition,
                    offset: o.offset,
                    leader_epoch: o.leader_epoch,
                    metadata: o.metadata.clone(),
                    commit_ms: now,
                });
                None
            };
            results.push((o, error));
        }
        if !rows.is_empty() {
            let group = GroupRow {
                group_id: group_id.to_string(),
                protocol_type: "consumer".into(),
                created_ms: now,
            };
            if let Err(e) = self.storage.catalog().commit_offsets(&group, &rows).await {
                tracing::warn!(group = group_id, error = %e, "offset commit failed");
                for (_, error) in results.iter_mut().filter(|(_, e)| e.is_none()) {
                    *error = Some(ErrorCode::CoordinatorNotAvailable);
                }
            }
        }
        results
    }

    /// A group's committed offsets, by topic: every committed one when
    /// `topics` is None, else the partitions asked for (-1 where none).
    pub async fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> Result<BTreeMap<String, Vec<CommittedOffset>>, sluice_storage::StorageError> {
        let stored = self.storage.catalog().group_offsets(group_id).await?;
        let mut by_topic: BTreeMap<String, Vec<CommittedOffset>> = BTreeMap::new();
        for r in stored {
            by_topic.entry(r.topic).or_default().push(CommittedOffset {
                partition: r.partition,
                offset: r.offset,
                leader_epoch: r.leader_epoch,
                metadata: r.metadata,
            });
        }
        let Some(topics) = topics else {
            return Ok(by_topic);
        };
        let mut out = BTreeMap::new();
        for (topic, partitions) in topics {
            let known = by_topic.get(&topic);
            let list = partitions
                .into_iter()
                .map(|p| {
                    known
                        .and_then(|k| k.iter().find(|c| c.partition == p).cloned())
                        .unwrap_or(CommittedOffset {
                            partition: p,
                            offset: -1,
                            leader_epoch: -1,
                            metadata: Some(String::new()),
                        })
                })
                .collect();
            out.insert(topic, list);
        }
        Ok(out)
    }

    /// OffsetDelete: removes committed offsets of topics the group is not
    /// consuming. Err is the group-level error.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: Vec<(String, i32)>,
    ) -> Result<Vec<((String, i32), Option<ErrorCode>)>, ErrorCode> {
        let known = self
            .storage
            .catalog()
            .list_groups()
            .await
            .map_err(|_| ErrorCode::CoordinatorNotAvailable)?
            .iter()
            .any(|g| g.group_id == group_id);
        if !known && self.group(group_id).is_none() {
            return Err(ErrorCode::GroupIdNotFound);
        }
        let subscribed = self.subscribed_topics(group_id);
        let mut results = Vec::new();
        let mut delete = Vec::new();
        for tp in partitions {
            if subscribed.contains(&tp.0) {
                results.push((tp, Some(ErrorCode::GroupSubscribedToTopic)));
            } else {
                delete.push(tp.clone());
                results.push((tp, None));
            }
        }
        self.storage
            .catalog()
            .delete_offsets(group_id, &delete)
            .await
            .map_err(|_| ErrorCode::CoordinatorNotAvailable)?;
        Ok(results)
    }
}

/// Reads the version prefix and body of a consumer protocol message;
/// versions newer than we know are read as the newest, as Kafka does.
fn decode_versioned<T: Decodable>(bytes: &Bytes) -> Option<T> {
    let mut buf = bytes.clone();
    if buf.remaining() < 2 {
        return None;
    }
    let version = buf.get_i16().clamp(0, 3);
    T::decode(&mut buf, version).ok()
}

/// The topics a classic consumer subscribed to, from its JoinGroup metadata.
pub fn subscription_topics(metadata: &Bytes) -> Vec<String> {
    decode_versioned::<ConsumerProtocolSubscription>(metadata)
        .map(|s| s.topics.iter().map(|t| t.to_string()).collect())
        .unwrap_or_default()
}

/// The partitions a classic consumer was assigned, from its SyncGroup bytes.
pub fn assignment_partitions(assignment: &Bytes) -> Vec<(String, i32)> {
    decode_versioned::<ConsumerProtocolAssignment>(assignment)
        .map(|a| {
            a.assigned_partitions
                .iter()
                .flat_map(|tp| tp.partitions.iter().map(|p| (tp.topic.to_string(), *p)))
                .collect()
        })
        .unwrap_or_default()
}
