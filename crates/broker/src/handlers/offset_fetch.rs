//! OffsetFetch: a group's committed offsets (one group before v8, several
//! from v8; all committed partitions when no topics are named).

use std::sync::Arc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};
use sluice_protocol::ErrorCode;

use super::{count_error, text, RequestMeta};
use crate::authz::authorize;
use crate::context::BrokerContext;
use crate::groups::offsets::CommittedOffset;
use crate::session::Session;
use sluice_tenancy::acl::{Operation, ResourceType};

type Offsets = std::collections::BTreeMap<String, Vec<CommittedOffset>>;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: OffsetFetchRequest,
    meta: RequestMeta,
) -> OffsetFetchResponse {
    if meta.api_version < 8 {
        let topics = req.topics.map(|ts| {
            ts.into_iter()
                .map(|t| (t.name.to_string(), t.partition_indexes))
                .collect()
        });
        let (offsets, error) = fetch(ctx, session, &req.group_id, None, topics, meta).await;
        let topics = offsets
            .into_iter()
            .map(|(name, parts)| {
                OffsetFetchResponseTopic::default()
                    .with_name(TopicName(text(name)))
                    .with_partitions(
                        parts
                            .into_iter()
                            .map(|c| {
                                OffsetFetchResponsePartition::default()
                                    .with_partition_index(c.partition)
                                    .with_committed_offset(c.offset)
                                    .with_committed_leader_epoch(if meta.api_version >= 5 {
                                        c.leader_epoch
                                    } else {
                                        -1
                                    })
                                    .with_metadata(c.metadata.map(text))
                            })
                            .collect(),
                    )
            })
            .collect();
        return OffsetFetchResponse::default()
            .with_topics(topics)
            .with_error_code(if meta.api_version >= 2 { error } else { 0 });
    }
    let mut groups = Vec::with_capacity(req.groups.len());
    for g in req.groups {
        let member = g
            .member_id
            .as_ref()
            .map(|m| (m.to_string(), g.member_epoch));
        let topics = g.topics.map(|ts| {
            ts.into_iter()
                .map(|t| (t.name.to_string(), t.partition_indexes))
                .collect()
        });
        let (offsets, error) = fetch(ctx, session, &g.group_id, member, topics, meta).await;
        let topics = offsets
            .into_iter()
            .map(|(name, parts)| {
                OffsetFetchResponseTopics::default()
                    .with_name(TopicName(text(name)))
                    .with_partitions(
                        parts
                            .into_iter()
                            .map(|c| {
                                OffsetFetchResponsePartitions::default()
                                    .with_partition_index(c.partition)
                                    .with_committed_offset(c.offset)
                                    .with_committed_leader_epoch(c.leader_epoch)
                                    .with_metadata(c.metadata.map(text))
                            })
                            .collect(),
                    )
            })
            .collect();
        groups.push(
            OffsetFetchResponseGroup::default()
                .with_group_id(GroupId(g.group_id.0))
                .with_topics(topics)
                .with_error_code(error),
        );
    }
    OffsetFetchResponse::default().with_groups(groups)
}

/// One group's offsets and its group-level error code. A member of a
/// consumer-protocol group (v9+) must fetch at its current epoch.
async fn fetch(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    group_id: &str,
    member: Option<(String, i32)>,
    topics: Option<Vec<(String, Vec<i32>)>>,
    meta: RequestMeta,
) -> (Offsets, i16) {
    if authorize(
        ctx,
        session,
        Operation::Describe,
        ResourceType::Group,
        group_id,
    )
    .is_err()
    {
        return (
            Offsets::new(),
            count_error(meta, ErrorCode::GroupAuthorizationFailed),
        );
    }
    if let Some((member_id, epoch)) = member.filter(|(_, e)| *e >= 0) {
        if let Some(g) = ctx.groups.group(group_id) {
            let g = g.lock().unwrap_or_else(|p| p.into_inner());
            if let crate::groups::Group::Consumer(c) = &*g {
                if let Some(code) = c.check_member_epoch(&member_id, epoch) {
                    return (Offsets::new(), count_error(meta, code));
                }
            }
        }
    }
    match ctx.groups.fetch_offsets(group_id, topics).await {
        // Offsets of topics the principal may not see are left out.
        Ok(mut offsets) => {
            offsets.retain(|topic, _| crate::authz::can_describe_topic(ctx, session, topic));
            (offsets, 0)
        }
        Err(e) => {
            tracing::warn!(group = group_id, error = %e, "offset fetch failed");
            (
                Offsets::new(),
                count_error(meta, ErrorCode::CoordinatorNotAvailable),
            )
        }
    }
}
