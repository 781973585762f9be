//! DeleteGroups: removes groups without members, with their offsets.

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::{count_error, RequestMeta};
use crate::authz::authorize;
use crate::context::BrokerContext;
use crate::session::Session;
use sluice_tenancy::acl::{Operation, ResourceType};

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: DeleteGroupsRequest,
    meta: RequestMeta,
) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(req.groups_names.len());
    for group in req.groups_names {
        let error = match authorize(ctx, session, Operation::Delete, ResourceType::Group, &group) {
            Ok(()) => ctx.groups.delete(&group).await,
            Err(_) => Some(sluice_protocol::ErrorCode::GroupAuthorizationFailed),
        };
        results.push(
            DeletableGroupResult::default()
                .with_group_id(group)
                .with_error_code(error.map_or(0, |c| count_error(meta, c))),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
