//! OffsetCommit: checks the committer against its group, then stores the
//! offsets in the catalog.

use std::sync::Arc;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, TopicName};

use super::{count_error, text, RequestMeta};
use crate::authz::authorize;
use crate::authz::group_access;
use crate::context::BrokerContext;
use crate::groups::offsets::{Committer, OffsetToCommit};
use crate::session::Session;
use sluice_protocol::ErrorCode;
use sluice_tenancy::acl::{Operation, ResourceType};

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: OffsetCommitRequest,
    meta: RequestMeta,
) -> OffsetCommitResponse {
    let group_access = group_access(ctx, session, Operation::Read, &req.group_id, true).await;
    // Refused partitions, by the group check or their topic's READ check;
    // the response has no message, so the reason is logged.
    let refusal = |topic: &str| -> Option<ErrorCode> {
        if let Err((code, message)) = &group_access {
            tracing::info!(group = %req.group_id.as_str(), %message, "offset commit refused");
            return Some(*code);
        }
        authorize(ctx, session, Operation::Read, ResourceType::Topic, topic)
            .err()
            .map(|_| ErrorCode::TopicAuthorizationFailed)
    };
    let refused: std::collections::BTreeMap<String, ErrorCode> = req
        .topics
        .iter()
        .filter_map(|t| refusal(&t.name).map(|code| (t.name.to_string(), code)))
        .collect();
    let committer = Committer {
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.map(|s| s.to_string()),
        generation_or_epoch: req.generation_id_or_member_epoch,
    };
    let offsets = req
        .topics
        .iter()
        .filter(|t| !refused.contains_key(t.name.as_str()))
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
    for t in &req.topics {
        if let Some(code) = refused.get(t.name.as_str()) {
            topics.push(
                OffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(count_error(meta, *code))
                            })
                            .collect(),
                    ),
            );
        }
    }
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
