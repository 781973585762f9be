//! ListGroups: groups with members or committed offsets, optionally
//! filtered by state (v4+) and type (v5+).

use std::sync::Arc;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use sluice_protocol::ErrorCode;

use super::{count_error, text, RequestMeta};
use crate::context::BrokerContext;
use crate::session::Session;
use sluice_tenancy::acl::{Operation, ResourceType};

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: ListGroupsRequest,
    meta: RequestMeta,
) -> ListGroupsResponse {
    let groups = match ctx.groups.list().await {
        Ok(g) => g,
        Err(e) => {
            tracing::warn!(error = %e, "could not list groups");
            return ListGroupsResponse::default()
                .with_error_code(count_error(meta, ErrorCode::CoordinatorNotAvailable));
        }
    };
    // Kafka matches state and type filters case-insensitively.
    let wanted = |filter: &[kafka_protocol::protocol::StrBytes], value: &str| {
        filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(value))
    };
    // Only the groups the principal may describe (not counted as denials).
    let visible = |group: &str| {
        session.principal.as_ref().is_some_and(|p| {
            ctx.tenancy
                .authorize(
                    p,
                    &session.host(),
                    Operation::Describe,
                    ResourceType::Group,
                    group,
                )
                .is_ok()
        })
    };
    let listed = groups
        .into_iter()
        .filter(|g| visible(&g.group_id))
        .filter(|g| {
            wanted(&req.states_filter, &g.state) && wanted(&req.types_filter, &g.group_type)
        })
        .map(|g| {
            ListedGroup::default()
                .with_group_id(GroupId(text(g.group_id)))
                .with_protocol_type(text(g.protocol_type))
                .with_group_state(if meta.api_version >= 4 {
                    text(g.state)
                } else {
                    text("")
                })
                .with_group_type(if meta.api_version >= 5 {
                    text(g.group_type)
                } else {
                    text("")
                })
        })
        .collect();
    ListGroupsResponse::default().with_groups(listed)
}
