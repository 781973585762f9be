//! OffsetDelete: removes a group's committed offsets for partitions of
//! topics it no longer consumes.

use std::sync::Arc;

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse, TopicName};

use super::{count_error, text, RequestMeta};
use crate::authz::authorize;
use crate::authz::group_access;
use crate::context::BrokerContext;
use crate::session::Session;
use sluice_tenancy::acl::{Operation, ResourceType};

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: OffsetDeleteRequest,
    meta: RequestMeta,
) -> OffsetDeleteResponse {
    if let Err((code, _)) =
        group_access(ctx, session, Operation::Delete, &req.group_id, false).await
    {
        return OffsetDeleteResponse::default().with_error_code(count_error(meta, code));
    }
    let readable =
        |topic: &str| authorize(ctx, session, Operation::Read, ResourceType::Topic, topic).is_ok();
    let partitions = req
        .topics
        .iter()
        .filter(|t| readable(&t.name))
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.to_string(), p.partition_index))
        })
        .collect();
    let results = match ctx.groups.delete_offsets(&req.group_id, partitions).await {
        Ok(r) => r,
        Err(code) => {
            return OffsetDeleteResponse::default().with_error_code(count_error(meta, code))
        }
    };
    let mut topics: Vec<OffsetDeleteResponseTopic> = req
        .topics
        .iter()
        .filter(|t| !readable(&t.name))
        .map(|t| {
            OffsetDeleteResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(count_error(
                                    meta,
                                    sluice_protocol::ErrorCode::TopicAuthorizationFailed,
                                ))
                        })
                        .collect(),
                )
        })
        .collect();
    for ((topic, partition), error) in results {
        let p = OffsetDeleteResponsePartition::default()
            .with_partition_index(partition)
            .with_error_code(error.map_or(0, |c| count_error(meta, c)));
        match topics.last_mut() {
            Some(t) if *t.name == *topic => t.partitions.push(p),
            _ => topics.push(
                OffsetDeleteResponseTopic::default()
                    .with_name(TopicName(text(topic)))
                    .with_partitions(vec![p]),
            ),
        }
    }
    OffsetDeleteResponse::default().with_topics(topics)
}
