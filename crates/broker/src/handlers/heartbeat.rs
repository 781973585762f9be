//! Heartbeat: keeps a classic member's session alive and tells it when a
//! rebalance started.

use std::sync::Arc;

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::{count_error, RequestMeta};
use crate::authz::group_access;
use crate::context::BrokerContext;
use crate::session::Session;
use sluice_tenancy::acl::Operation;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: HeartbeatRequest,
    meta: RequestMeta,
) -> HeartbeatResponse {
    if let Err((code, _)) = group_access(ctx, session, Operation::Read, &req.group_id, false).await
    {
        return HeartbeatResponse::default().with_error_code(count_error(meta, code));
    }
    let error = ctx.groups.heartbeat(
        &req.group_id,
        &req.member_id,
        req.group_instance_id.as_deref(),
        req.generation_id,
    );
    HeartbeatResponse::default().with_error_code(error.map_or(0, |c| count_error(meta, c)))
}
