//! ListOffsets: earliest, latest, max timestamp, or by timestamp, from a
//! leader at the epoch the request expects (KIP-320).
//!
//! The codec refuses to encode fields a version lacks, so fields newer than
//! the request's version stay at their defaults.

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use sluice_protocol::ErrorCode;

use super::{check_leader_epoch, count_error, repeated, storage_error, RequestMeta};
use crate::authz::can_describe_topic;
use crate::context::BrokerContext;
use crate::session::Session;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: ListOffsetsRequest,
    meta: RequestMeta,
) -> ListOffsetsResponse {
    // A partition asked for twice gets INVALID_REQUEST both times, as in
    // Kafka (its answers are collected by partition).
    let repeated = repeated(req.topics.iter().flat_map(|t| {
        t.partitions
            .iter()
            .map(|p| (t.name.to_string(), p.partition_index))
    }));
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        let allowed = can_describe_topic(ctx, session, &t.name);
        for p in t.partitions {
            let r = ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
            let refused = if repeated.contains(&(t.name.to_string(), p.partition_index)) {
                Some(ErrorCode::InvalidRequest)
            } else if !allowed {
                Some(ErrorCode::TopicAuthorizationFailed)
            } else if min_version(p.timestamp) > meta.api_version {
                Some(ErrorCode::UnsupportedVersion)
            } else {
                None
            };
            if let Some(code) = refused {
                partitions.push(
                    r.with_error_code(count_error(meta, code))
                        .with_offset(-1)
                        .with_timestamp(-1),
                );
                continue;
            }
            let found = async {
                check_leader_epoch(ctx, &t.name, p.partition_index, p.current_leader_epoch)?;
                ctx.storage
                    .offset_at(&t.name, p.partition_index, p.timestamp)
                    .await
            };
            partitions.push(match found.await {
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
            });
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}

/// The first ListOffsets version that knows a special timestamp: max
/// timestamp (-3) from v7, earliest local (-4) from v8, latest tiered (-5)
/// from v9, earliest pending upload (-6) from v11 (KIP-734, KIP-405,
/// KIP-1005, KIP-1023). An older request carrying one is refused with
/// UNSUPPORTED_VERSION, as Kafka does.
fn min_version(timestamp: i64) -> i16 {
    match timestamp {
        -3 => 7,
        -4 => 8,
        -5 => 9,
        -6 => 11,
        _ => 0,
    }
}
