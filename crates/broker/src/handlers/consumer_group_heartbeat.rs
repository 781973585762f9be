//! ConsumerGroupHeartbeat (KIP-848): joins, heartbeats and leaves a
//! consumer-protocol group; the answer carries the member's epoch and, when
//! it changed, its assignment. Topics travel by id.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use sluice_protocol::ErrorCode;
use uuid::Uuid;

use super::{count_error, text, ClientInfo, RequestMeta};
use crate::authz::group_access;
use crate::context::BrokerContext;
use crate::groups::consumer::Heartbeat;
use crate::session::Session;
use sluice_tenancy::acl::Operation;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: ConsumerGroupHeartbeatRequest,
    meta: RequestMeta,
    client: ClientInfo,
) -> ConsumerGroupHeartbeatResponse {
    let refuse = |code: ErrorCode, message: &str| {
        ConsumerGroupHeartbeatResponse::default()
            .with_error_code(count_error(meta, code))
            .with_error_message(Some(text(message)))
            .with_member_epoch(-1)
    };
    // Joining (epoch 0) brings the group into use; later heartbeats only
    // need the ACL.
    let joining = req.member_epoch == 0;
    if let Err((code, message)) =
        group_access(ctx, session, Operation::Read, &req.group_id, joining).await
    {
        return refuse(code, &message);
    }
    // A tenant's member is assigned only topics under its prefix.
    let topic_scope = crate::authz::tenant_plan(ctx, session).map(|s| s.prefix);
    if req.group_id.is_empty() {
        return refuse(ErrorCode::InvalidRequest, "the group id is empty");
    }
    let mut member_id = req.member_id.to_string();
    if member_id.is_empty() {
        // v0 lets the coordinator choose the id; from v1 the client does.
        if meta.api_version >= 1 || req.member_epoch != 0 {
            return refuse(ErrorCode::InvalidRequest, "the member id is empty");
        }
        member_id = Uuid::new_v4().simple().to_string();
    }
    let topics = ctx.storage.topics();
    let name_of: BTreeMap<Uuid, String> = topics
        .iter()
        .map(|t| (Uuid::from_bytes(t.uuid), t.name.clone()))
        .collect();
    let id_of: BTreeMap<&str, Uuid> = topics
        .iter()
        .map(|t| (t.name.as_str(), Uuid::from_bytes(t.uuid)))
        .collect();
    let owned = req.topic_partitions.map(|tps| {
        tps.iter()
            .filter_map(|tp| name_of.get(&tp.topic_id).map(|name| (name, &tp.partitions)))
            .flat_map(|(name, parts)| parts.iter().map(move |p| (name.clone(), *p)))
            .collect::<BTreeSet<_>>()
    });
    let hb = Heartbeat {
        member_id,
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.map(|s| s.to_string()),
        rack_id: req.rack_id.map(|s| s.to_string()),
        client_id: client.client_id,
        client_host: client.host,
        rebalance_timeout: Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64),
        subscribed_names: req
            .subscribed_topic_names
            .map(|names| names.iter().map(|n| n.to_string()).collect()),
        subscribed_regex: req.subscribed_topic_regex.map(|s| s.to_string()),
        server_assignor: req.server_assignor.map(|s| s.to_string()),
        owned,
        topic_scope,
    };
    let result = ctx.groups.consumer_heartbeat(&req.group_id, hb);
    let interval = ctx.groups.config().consumer.heartbeat_interval.as_millis() as i32;
    if let Some((code, message)) = result.error {
        return refuse(code, &message).with_member_id(Some(text(result.member_id)));
    }
    let assignment = result.assignment.map(|parts| {
        let mut by_topic: BTreeMap<Uuid, Vec<i32>> = BTreeMap::new();
        for (topic, p) in parts {
            if let Some(id) = id_of.get(topic.as_str()) {
                by_topic.entry(*id).or_default().push(p);
            }
        }
        Assignment::default().with_topic_partitions(
            by_topic
                .into_iter()
                .map(|(id, partitions)| {
                    TopicPartitions::default()
                        .with_topic_id(id)
                        .with_partitions(partitions)
                })
                .collect(),
        )
    });
    ConsumerGroupHeartbeatResponse::default()
        .with_member_id(Some(text(result.member_id)))
        .with_member_epoch(result.member_epoch)
        .with_heartbeat_interval_ms(interval)
        .with_assignment(assignment)
}
