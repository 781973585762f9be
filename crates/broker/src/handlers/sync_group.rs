//! SyncGroup: the leader hands out the assignment; every member waits for
//! its share.

use std::sync::Arc;

use futures::FutureExt;
use kafka_protocol::messages::{ResponseKind, SyncGroupRequest, SyncGroupResponse};
use sluice_protocol::ErrorCode;

use super::{count_error, text, Reply, RequestMeta};
use crate::context::BrokerContext;
use crate::groups::classic::{Pending, SyncResult};

pub fn handle(ctx: &Arc<BrokerContext>, req: SyncGroupRequest, meta: RequestMeta) -> Reply {
    let assignments = req
        .assignments
        .into_iter()
        .map(|a| (a.member_id.to_string(), a.assignment))
        .collect();
    let pending = ctx.groups.sync(
        &req.group_id,
        &req.member_id,
        req.group_instance_id.as_deref(),
        req.generation_id,
        req.protocol_type.as_deref(),
        req.protocol_name.as_deref(),
        assignments,
    );
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
