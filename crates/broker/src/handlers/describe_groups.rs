//! DescribeGroups: a classic group's state, assignor and members with their
//! metadata and assignments.

use std::sync::Arc;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, GroupId};
use sluice_protocol::ErrorCode;

use super::{count_error, text, RequestMeta};
use crate::authz::authorize;
use crate::context::BrokerContext;
use crate::groups::Group;
use crate::session::Session;
use sluice_tenancy::acl::{Operation, ResourceType};

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: DescribeGroupsRequest,
    meta: RequestMeta,
) -> DescribeGroupsResponse {
    let v = meta.api_version;
    let known: Vec<String> = match ctx.storage.catalog().list_groups().await {
        Ok(rows) => rows.into_iter().map(|r| r.group_id).collect(),
        Err(_) => Vec::new(),
    };
    let groups = req
        .groups
        .into_iter()
        .map(|id| {
            let live = ctx.groups.group(&id);
            let guard = live
                .as_ref()
                .map(|g| g.lock().unwrap_or_else(|p| p.into_inner()));
            let base = DescribedGroup::default().with_group_id(GroupId(id.0.clone()));
            if authorize(ctx, session, Operation::Describe, ResourceType::Group, &id).is_err() {
                return base
                    .with_error_code(count_error(meta, ErrorCode::GroupAuthorizationFailed));
            }
            match guard.as_deref() {
                Some(Group::Classic(c)) if !c.is_empty() => base
                    .with_group_state(text(c.state.name()))
                    .with_protocol_type(text(c.protocol_type.clone().unwrap_or_default()))
                    .with_protocol_data(text(c.protocol_name.clone().unwrap_or_default()))
                    .with_members(
                        c.members
                            .values()
                            .map(|m| {
                                DescribedGroupMember::default()
                                    .with_member_id(text(m.id.clone()))
                                    .with_group_instance_id(if v >= 4 {
                                        m.instance_id.clone().map(text)
                                    } else {
                                        None
                                    })
                                    .with_client_id(text(m.client_id.clone()))
                                    .with_client_host(text(m.client_host.clone()))
                                    .with_member_metadata(m.metadata_for(
                                        c.protocol_name.as_deref().unwrap_or_default(),
                                    ))
                                    .with_member_assignment(m.assignment.clone())
                            })
                            .collect(),
                    ),
                Some(Group::Consumer(g)) if !g.members.is_empty() => refused(
                    base,
                    meta,
                    format!(
                        "group `{}` uses the consumer protocol; use ConsumerGroupDescribe",
                        *id
                    ),
                ),
                _ if known.iter().any(|k| **id == **k) => base
                    .with_group_state(text("Empty"))
                    .with_protocol_type(text("consumer")),
                _ if v >= 6 => refused(base, meta, format!("group `{}` does not exist", *id)),
                _ => base.with_group_state(text("Dead")),
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

fn refused(base: DescribedGroup, meta: RequestMeta, message: String) -> DescribedGroup {
    let with_code = base.with_error_code(count_error(meta, ErrorCode::GroupIdNotFound));
    if meta.api_version >= 6 {
        with_code.with_error_message(Some(text(message)))
    } else {
        with_code.with_group_state(text("Dead"))
    }
}
