//! Metadata: the broker, and the topics asked for (or all), creating unknown
//! ones when `auto.create.topics.enable` is on and the client allows it.

use std::sync::Arc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::ErrorCode;
use sluice_storage::storage::Topic;
use uuid::Uuid;

use sluice_tenancy::acl::{ResourceType, CLUSTER_NAME};

use super::{count_error, text, RequestMeta};
use crate::authz::{authorized_operations, can_describe_topic};
use crate::context::BrokerContext;
use crate::session::Session;

pub use crate::authz::OPERATIONS_NOT_REQUESTED;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: MetadataRequest,
    meta: RequestMeta,
) -> MetadataResponse {
    let storage = &ctx.storage;
    let ops = |topic: &str| {
        if req.include_topic_authorized_operations {
            authorized_operations(ctx, session, ResourceType::Topic, topic)
        } else {
            OPERATIONS_NOT_REQUESTED
        }
    };
    // v0 asks for all topics with an empty list; v1+ with null.
    let wanted = match req.topics {
        Some(t) if !(t.is_empty() && meta.api_version == 0) => Some(t),
        _ => None,
    };
    let topics = match wanted {
        // Everything the principal may see, and nothing else.
        None => storage
            .topics()
            .iter()
            .filter(|t| can_describe_topic(ctx, session, &t.name))
            .map(|t| describe(ctx, t, ops(&t.name)))
            .collect(),
        Some(requested) => {
            // Before v4 the flag does not exist and topics are always
            // created. Tenants create topics explicitly, never by asking.
            let tenant = session.principal.as_ref().is_some_and(|p| !p.superuser);
            let may_create = ctx.config.auto_create_topics
                && !tenant
                && (req.allow_auto_topic_creation || meta.api_version < 4);
            let mut out = Vec::with_capacity(requested.len());
            for r in requested {
                // By id when the id is set and the name is null (or empty).
                let by_id = !r.topic_id.is_nil() && r.name.as_ref().is_none_or(|n| n.is_empty());
                let name = if !by_id {
                    match &r.name {
                        Some(n) => n.to_string(),
                        None => continue,
                    }
                } else {
                    match storage.topic_by_uuid(r.topic_id.as_bytes()) {
                        Some(t) => t.name.clone(),
                        None => {
                            out.push(unknown_id(r.topic_id, meta));
                            continue;
                        }
                    }
                };
                if !can_describe_topic(ctx, session, &name) {
                    // Asked by id, the name is not the asker's to learn:
                    // an id it may not see is as unknown (as DeleteTopics
                    // answers it).
                    if by_id {
                        out.push(unknown_id(r.topic_id, meta));
                        continue;
                    }
                    out.push(
                        MetadataResponseTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(name))))
                            .with_error_code(count_error(
                                meta,
                                ErrorCode::TopicAuthorizationFailed,
                            )),
                    );
                    continue;
                }
                let ops = ops(&name);
                out.push(topic_metadata(ctx, &name, may_create, ops, meta).await);
            }
            out
        }
    };
    let c = &ctx.config;
    let l = &session.listener;
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(c.node_id))
            .with_host(text(l.advertised_host.clone()))
            .with_port(l.advertised_port)])
        .with_cluster_id(Some(text(c.cluster_id.clone())))
        .with_controller_id(BrokerId(c.node_id))
        // Asked for in v8-10 only; later versions use DescribeCluster.
        .with_cluster_authorized_operations(
            if req.include_cluster_authorized_operations && (8..=10).contains(&meta.api_version) {
                authorized_operations(ctx, session, ResourceType::Cluster, CLUSTER_NAME)
            } else {
                OPERATIONS_NOT_REQUESTED
            },
        )
        .with_topics(topics)
}

/// UNKNOWN_TOPIC_ID for a topic asked for by id, with no name (nullable
/// from v12, as Kafka sends it; empty before).
fn unknown_id(topic_id: Uuid, meta: RequestMeta) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(count_error(meta, ErrorCode::UnknownTopicId))
        .with_topic_id(topic_id)
        .with_name(if meta.api_version >= 12 {
            None
        } else {
            Some(TopicName(StrBytes::default()))
        })
}

async fn topic_metadata(
    ctx: &Arc<BrokerContext>,
    name: &str,
    may_create: bool,
    ops: i32,
    meta: RequestMeta,
) -> MetadataResponseTopic {
    let storage = &ctx.storage;
    let unknown = |code: ErrorCode| {
        MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(name.to_string()))))
            .with_error_code(count_error(meta, code))
    };
    if let Ok(t) = storage.topic(name) {
        return describe(ctx, &t, ops);
    }
    // An invalid name is reported as such whether or not it could be
    // created, as Kafka does.
    if sluice_storage::storage::validate_topic_name(name).is_err() {
        return unknown(ErrorCode::InvalidTopicException);
    }
    if !may_create || sluice_storage::storage::is_internal_topic(name) {
        return unknown(ErrorCode::UnknownTopicOrPartition);
    }
    match storage
        .create_topic(
            name,
            ctx.config.default_partitions,
            Default::default(),
            false,
        )
        .await
    {
        Ok(Some(t)) => describe(ctx, &t, ops),
        // Created concurrently by another request.
        Err(sluice_storage::StorageError::TopicExists(_)) | Ok(None) => match storage.topic(name) {
            Ok(t) => describe(ctx, &t, ops),
            Err(_) => unknown(ErrorCode::LeaderNotAvailable),
        },
        Err(e) => unknown(e.code()),
    }
}

fn describe(ctx: &Arc<BrokerContext>, t: &Topic, ops: i32) -> MetadataResponseTopic {
    let node = BrokerId(ctx.config.node_id);
    let partitions = t
        .partitions()
        .iter()
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p.partition)
                .with_leader_id(node)
                .with_leader_epoch(p.offsets().leader_epoch)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(t.name.clone()))))
        .with_topic_id(Uuid::from_bytes(t.uuid))
        .with_partitions(partitions)
        .with_topic_authorized_operations(ops)
}
