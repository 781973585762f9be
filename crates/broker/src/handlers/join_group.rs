//! JoinGroup: a member joins a classic group and waits for the rebalance.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse, ResponseKind};
use sluice_protocol::ErrorCode;

use super::{count_error, text, ClientInfo, Reply, RequestMeta};
use crate::authz::group_access;
use crate::context::BrokerContext;
use crate::groups::classic::{JoinRequest, JoinResult, Pending};
use crate::session::Session;
use sluice_tenancy::acl::Operation;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: JoinGroupRequest,
    meta: RequestMeta,
    client: ClientInfo,
) -> Reply {
    // JoinGroup has no error message: group_access logs the reason.
    if let Err((code, _)) = group_access(ctx, session, Operation::Read, &req.group_id, true).await {
        let result = JoinResult {
            error: Some(code),
            generation: -1,
            member_id: req.member_id.to_string(),
            ..Default::default()
        };
        return Reply::Ready(meta.encode(ResponseKind::JoinGroup(respond(result, meta))));
    }
    if req.group_id.is_empty() {
        let result = JoinResult {
            error: Some(ErrorCode::InvalidGroupId),
            error_message: Some("the group id is empty".into()),
            generation: -1,
            member_id: req.member_id.to_string(),
            ..Default::default()
        };
        return Reply::Ready(meta.encode(ResponseKind::JoinGroup(respond(result, meta))));
    }
    let join = JoinRequest {
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.map(|s| s.to_string()),
        client_id: client.client_id,
        client_host: client.host,
        session_timeout: millis(req.session_timeout_ms),
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout: if meta.api_version >= 1 {
            millis(req.rebalance_timeout_ms)
        } else {
            millis(req.session_timeout_ms)
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        require_known_member_id: meta.api_version >= 4,
    };
    match ctx.groups.join(&req.group_id, join) {
        Pending::Now(result) => {
            Reply::Ready(meta.encode(ResponseKind::JoinGroup(respond(result, meta))))
        }
        Pending::Wait(rx) => Reply::Later(
            async move {
                let result = rx.await.unwrap_or_else(|_| JoinResult {
                    error: Some(ErrorCode::RebalanceInProgress),
                    generation: -1,
                    ..Default::default()
                });
                meta.encode(ResponseKind::JoinGroup(respond(result, meta)))
            }
            .boxed(),
        ),
    }
}

fn millis(ms: i32) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

/// Shapes a join result for the request's version: fields a version lacks
/// stay at their defaults, and v0-6 have no null protocol name.
fn respond(r: JoinResult, meta: RequestMeta) -> JoinGroupResponse {
    let v = meta.api_version;
    let error_code = r.error.map_or(0, |c| count_error(meta, c));
    if let (Some(code), Some(message)) = (r.error, &r.error_message) {
        tracing::debug!(?code, message, "JoinGroup refused");
    }
    let protocol_name = match (v >= 7, r.protocol_name) {
        (true, name) => name.map(text),
        (false, name) => Some(text(name.unwrap_or_default())),
    };
    JoinGroupResponse::default()
        .with_error_code(error_code)
        .with_generation_id(r.generation)
        .with_protocol_type(if v >= 7 {
            r.protocol_type.map(text)
        } else {
            None
        })
        .with_protocol_name(protocol_name)
        .with_leader(text(r.leader))
        .with_skip_assignment(v >= 9 && r.skip_assignment)
        .with_member_id(text(r.member_id))
        .with_members(
            r.members
                .into_iter()
                .map(|(id, instance, metadata)| {
                    JoinGroupResponseMember::default()
                        .with_member_id(text(id))
                        .with_group_instance_id(if v >= 5 { instance.map(text) } else { None })
                        .with_metadata(metadata)
                })
                .collect(),
        )
}
