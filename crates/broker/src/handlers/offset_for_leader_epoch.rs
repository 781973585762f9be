//! OffsetForLeaderEpoch (KIP-320): where a leader epoch ended. Consumers
//! ask after their partition's leader epoch changes, or when they resume
//! from an offset that carries an epoch, to tell whether the log was
//! truncated under their position.

use std::sync::Arc;

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use sluice_protocol::ErrorCode;
use sluice_tenancy::acl::Operation;

use super::{check_leader_epoch, count_error, storage_error, RequestMeta};
use crate::authz::{authorize_cluster, can_describe_topic};
use crate::context::BrokerContext;
use crate::session::Session;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: OffsetForLeaderEpochRequest,
    meta: RequestMeta,
) -> OffsetForLeaderEpochResponse {
    // As in Kafka, whatever the replica id: CLUSTER_ACTION (brokers)
    // answers every topic, DESCRIBE on a topic answers that one.
    let cluster = authorize_cluster(ctx, session, Operation::ClusterAction).is_ok();
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let refused = (!cluster && !can_describe_topic(ctx, session, &t.topic))
            .then_some(ErrorCode::TopicAuthorizationFailed);
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let r = EpochEndOffset::default().with_partition(p.partition);
            if let Some(code) = refused {
                partitions.push(r.with_error_code(count_error(meta, code)));
                continue;
            }
            let end = async {
                check_leader_epoch(ctx, &t.topic, p.partition, p.current_leader_epoch)?;
                ctx.storage
                    .epoch_end(&t.topic, p.partition, p.leader_epoch)
                    .await
            };
            partitions.push(match end.await {
                Ok(end) => r
                    .with_leader_epoch(end.leader_epoch)
                    .with_end_offset(end.end_offset),
                // The response has no message field; the code says it.
                Err(e) => r.with_error_code(storage_error(meta, &e).0),
            });
        }
        topics.push(
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions),
        );
    }
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
