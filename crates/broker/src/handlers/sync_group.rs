//! SyncGroup: the leader hands out the assignment; every member waits for
//! its share.

use std::sync::Arc;

use futures::FutureExt;
use kafka_protocol::messages::{ResponseKind, SyncGroupRequest, SyncGroupResponse};
use sluice_protocol::ErrorCode;

use super::{count_error, text, Reply, RequestMeta};
use crate::authz::group_access;
use crate::context::BrokerContext;
use crate::groups::classic::{Pending, SyncRequest, SyncResult};
use crate::session::Session;
use sluice_tenancy::acl::Operation;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: SyncGroupRequest,
    meta: RequestMeta,
) -> Reply {
    if let Err((code, _)) = group_access(ctx, session, Operation::Read, &req.group_id, false).await
    {
        return Reply::Ready(meta.encode(ResponseKind::SyncGroup(
            SyncGroupResponse::default().with_error_code(count_error(meta, code)),
        )));
    }
    let sync = SyncRequest {
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.map(|s| s.to_string()),
        generation: req.generation_id,
        protocol_type: req.protocol_type.map(|s| s.to_string()),
        protocol_name: req.protocol_name.map(|s| s.to_string()),
        assignments: req
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    let pending = ctx.groups.sync(&req.group_id, sync);
    match pending {
        Pending::Now(r) => Reply::Ready(meta.encode(ResponseKind::SyncGroup(respond(r, meta)))),
        Pending::Wait(rx) => Reply::Later(
            async move {
                let r = rx.await.unwrap_or(SyncResult {
                    error: Some(ErrorCode::RebalanceInProgress),
                    ..Default::default()
                });
                meta.encode(ResponseKind::SyncGroup(respond(r, meta)))
            }
            .boxed(),
        ),
    }
}

fn respond(r: SyncResult, meta: RequestMeta) -> SyncGroupResponse {
    let v5 = meta.api_version >= 5;
    SyncGroupResponse::default()
        .with_error_code(r.error.map_or(0, |c| count_error(meta, c)))
        .with_protocol_type(if v5 { r.protocol_type.map(text) } else { None })
        .with_protocol_name(if v5 { r.protocol_name.map(text) } else { None })
        .with_assignment(r.assignment)
}
