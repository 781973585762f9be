//! ListOffsets: earliest, latest, max timestamp, or by timestamp.
//!
//! The codec refuses to encode fields a version lacks, so fields newer than
//! the request's version stay at their defaults.

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use sluice_protocol::ErrorCode;

use super::{count_error, storage_error, RequestMeta};
use crate::authz::can_describe_topic;
use crate::context::BrokerContext;
use crate::session::Session;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: ListOffsetsRequest,
    meta: RequestMeta,
) -> ListOffsetsResponse {
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        let allowed = can_describe_topic(ctx, session, &t.name);
        for p in t.partitions {
            let r = ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
            if !allowed {
                partitions.push(
                    r.with_error_code(count_error(meta, ErrorCode::TopicAuthorizationFailed))
                        .with_offset(-1)
                        .with_timestamp(-1),
                );
                continue;
            }
            partitions.push(
                match ctx
                    .storage
                    .offset_at(&t.name, p.partition_index, p.timestamp)
                    .await
                {
                    Ok(at) => r
                        .with_offset(at.offset)
                        .with_timestamp(at.timestamp)
                        .with_leader_epoch(if at.offset >= 0 && meta.api_version >= 4 {
                            at.leader_epoch
                        } else {
                            -1
                        }),
                    Err(e) => r
                        .with_error_code(storage_error(meta, &e).0)
                        .with_offset(-1)
                        .with_timestamp(-1),
                },
            );
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}
