//! OffsetCommit: checks the committer against its group, then stores the
//! offsets in the catalog.

use std::sync::Arc;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, TopicName};

use super::{count_error, text, RequestMeta};
use crate::context::BrokerContext;
use crate::groups::offsets::{Committer, OffsetToCommit};

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    req: OffsetCommitRequest,
    meta: RequestMeta,
) -> OffsetCommitResponse {
    let committer = Committer {
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.map(|s| s.to_string()),
        generation_or_epoch: req.generation_id_or_member_epoch,
    };
    let offsets = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| OffsetToCommit {
                topic: t.name.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            })
        })
        .collect();
    let results = ctx
        .groups
        .commit_offsets(&req.group_id, &committer, offsets)
        .await;
    let mut topics: Vec<OffsetCommitResponseTopic> = Vec::new();
    for (o, error) in results {
        let partition = OffsetCommitResponsePartition::default()
            .with_partition_index(o.partition)
            .with_error_code(error.map_or(0, |c| count_error(meta, c)));
        match topics.last_mut() {
            Some(t) if *t.name == *o.topic => t.partitions.push(partition),
            _ => topics.push(
                OffsetCommitResponseTopic::default()
                    .with_name(TopicName(text(o.topic)))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    OffsetCommitResponse::default().with_topics(topics)
}
