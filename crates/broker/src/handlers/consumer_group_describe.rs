//! ConsumerGroupDescribe (KIP-848): a consumer-protocol group's epochs,
//! assignor and members with their current and target assignments.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, GroupId, TopicName,
};
use sluice_protocol::ErrorCode;
use uuid::Uuid;

use super::{count_error, text, RequestMeta};
use crate::authz::authorize;
use crate::context::BrokerContext;
use crate::groups::{Group, TopicPartition};
use crate::session::Session;
use sluice_tenancy::acl::{Operation, ResourceType};

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: ConsumerGroupDescribeRequest,
    meta: RequestMeta,
) -> ConsumerGroupDescribeResponse {
    let known: Vec<String> = match ctx.storage.catalog().list_groups().await {
        Ok(rows) => rows.into_iter().map(|r| r.group_id).collect(),
        Err(_) => Vec::new(),
    };
    let ids: BTreeMap<String, Uuid> = ctx
        .storage
        .topics()
        .iter()
        .map(|t| (t.name.clone(), Uuid::from_bytes(t.uuid)))
        .collect();
    let groups = req
        .group_ids
        .into_iter()
        .map(|id| {
            let base = DescribedGroup::default()
                .with_group_id(GroupId(id.0.clone()))
                .with_authorized_operations(i32::MIN);
            let not_found = |message: String| {
                base.clone()
                    .with_error_code(count_error(meta, ErrorCode::GroupIdNotFound))
                    .with_error_message(Some(text(message)))
            };
            if let Err(message) =
                authorize(ctx, session, Operation::Describe, ResourceType::Group, &id)
            {
                return base
                    .clone()
                    .with_error_code(count_error(meta, ErrorCode::GroupAuthorizationFailed))
                    .with_error_message(Some(text(message)));
            }
            let live = ctx.groups.group(&id);
            let guard = live
                .as_ref()
                .map(|g| g.lock().unwrap_or_else(|p| p.into_inner()));
            match guard.as_deref() {
                Some(Group::Consumer(g)) => base
                    .clone()
                    .with_group_state(text(g.state()))
                    .with_group_epoch(g.group_epoch)
                    .with_assignment_epoch(g.assignment_epoch)
                    .with_assignor_name(text(g.assignor.clone()))
                    .with_members(
                        g.members
                            .values()
                            .map(|m| {
                                let target = g.target.get(&m.id).cloned().unwrap_or_default();
                                Member::default()
                                    .with_member_id(text(m.id.clone()))
                                    .with_instance_id(m.instance_id.clone().map(text))
                                    .with_rack_id(m.rack_id.clone().map(text))
                                    .with_member_epoch(m.member_epoch)
                                    .with_client_id(text(m.client_id.clone()))
                                    .with_client_host(text(m.client_host.clone()))
                                    .with_subscribed_topic_names(
                                        m.subscribed_names
                                            .iter()
                                            .map(|n| TopicName(text(n.clone())))
                                            .collect(),
                                    )
                                    .with_subscribed_topic_regex(
                                        m.subscribed_regex.clone().map(text),
                                    )
                                    .with_assignment(assignment(&m.assigned, &ids))
                                    .with_target_assignment(assignment(&target, &ids))
                                    .with_member_type(if meta.api_version >= 1 { 1 } else { -1 })
                            })
                            .collect(),
                    ),
                Some(Group::Classic(c)) if !c.is_empty() => not_found(format!(
                    "group `{}` is a classic group; use DescribeGroups",
                    *id
                )),
                _ if known.iter().any(|k| **id == **k) => base
                    .clone()
                    .with_group_state(text("Empty"))
                    .with_assignor_name(text("uniform")),
                _ => not_found(format!("group `{}` does not exist", *id)),
            }
        })
        .collect();
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}

fn assignment(parts: &BTreeSet<TopicPartition>, ids: &BTreeMap<String, Uuid>) -> Assignment {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, p) in parts {
        by_topic.entry(topic).or_default().push(*p);
    }
    Assignment::default().with_topic_partitions(
        by_topic
            .into_iter()
            .map(|(topic, partitions)| {
                TopicPartitions::default()
                    .with_topic_id(ids.get(topic).copied().unwrap_or_default())
                    .with_topic_name(TopicName(text(topic)))
                    .with_partitions(partitions)
            })
            .collect(),
    )
}
