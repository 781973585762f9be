//! Heartbeat: keeps a classic member's session alive and tells it when a
//! rebalance started.

use std::sync::Arc;

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::{count_error, RequestMeta};
use crate::context::BrokerContext;

pub fn handle(
    ctx: &Arc<BrokerContext>,
    req: HeartbeatRequest,
    meta: RequestMeta,
) -> HeartbeatResponse {
    let error = ctx.groups.heartbeat(
        &req.group_id,
        &req.member_id,
        req.group_instance_id.as_deref(),
        req.generation_id,
    );
    HeartbeatResponse::default().with_error_code(error.map_or(0, |c| count_error(meta, c)))
}
