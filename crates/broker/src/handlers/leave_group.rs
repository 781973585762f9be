//! LeaveGroup: members leave a classic group (one per request before v3,
//! a batch from v3, identified by member id or group.instance.id).

use std::sync::Arc;

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::{count_error, RequestMeta};
use crate::authz::group_access;
use crate::context::BrokerContext;
use crate::session::Session;
use sluice_tenancy::acl::Operation;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: LeaveGroupRequest,
    meta: RequestMeta,
) -> LeaveGroupResponse {
    if let Err((code, _)) = group_access(ctx, session, Operation::Read, &req.group_id, false).await
    {
        return LeaveGroupResponse::default().with_error_code(count_error(meta, code));
    }
    if meta.api_version < 3 {
        let error = ctx.groups.leave(&req.group_id, &req.member_id, None);
        return LeaveGroupResponse::default()
            .with_error_code(error.map_or(0, |c| count_error(meta, c)));
    }
    let members = req
        .members
        .into_iter()
        .map(|m| {
            let error =
                ctx.groups
                    .leave(&req.group_id, &m.member_id, m.group_instance_id.as_deref());
            MemberResponse::default()
                .with_member_id(m.member_id)
                .with_group_instance_id(m.group_instance_id)
                .with_error_code(error.map_or(0, |c| count_error(meta, c)))
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}
