//! Authorization of a request's resources for its session's principal.
//! Every handler asks here before touching a topic, group or the cluster;
//! a refusal carries the tenancy's explanation for the `error_message`.

use sluice_tenancy::acl::{Operation, ResourceType, CLUSTER_NAME};

use crate::context::BrokerContext;
use crate::session::Session;

/// `Err(message)` when the session may not do `operation` on the resource.
pub fn authorize(
    ctx: &BrokerContext,
    session: &Session,
    operation: Operation,
    resource_type: ResourceType,
    name: &str,
) -> Result<(), String> {
    let Some(principal) = &session.principal else {
        return Err("authenticate first".into());
    };
    let outcome = ctx
        .tenancy
        .authorize(principal, &session.host(), operation, resource_type, name);
    if let Err(reason) = &outcome {
        metrics::counter!("sluice_authorization_denied_total", "resource" => resource_type.name())
            .increment(1);
        tracing::debug!(principal = %principal.name, peer = %session.peer, %operation, %resource_type, name, %reason, "denied");
    }
    outcome
}

/// What Kafka reports when authorized operations were not requested.
pub const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

/// Kafka's bit set of the operations the session may do on a topic or the
/// cluster (those Kafka defines for that resource type), for the
/// `authorized_operations` fields of Metadata and DescribeCluster.
pub fn authorized_operations(
    ctx: &BrokerContext,
    session: &Session,
    resource_type: ResourceType,
    name: &str,
) -> i32 {
    use Operation as O;
    let operations: &[Operation] = match resource_type {
        ResourceType::Cluster => &[
            O::Create,
            O::ClusterAction,
            O::DescribeConfigs,
            O::AlterConfigs,
            O::IdempotentWrite,
            O::Alter,
            O::Describe,
        ],
        _ => &[
            O::Read,
            O::Write,
            O::Create,
            O::Delete,
            O::Alter,
            O::Describe,
            O::DescribeConfigs,
            O::AlterConfigs,
        ],
    };
    operations
        .iter()
        // Asked, not attempted: not counted as denials.
        .filter(|op| {
            session.principal.as_ref().is_some_and(|p| {
                ctx.tenancy
                    .authorize(p, &session.host(), **op, resource_type, name)
                    .is_ok()
            })
        })
        .fold(0, |bits, op| bits | (1 << op.code()))
}

/// Authorization on the cluster resource.
pub fn authorize_cluster(
    ctx: &BrokerContext,
    session: &Session,
    operation: Operation,
) -> Result<(), String> {
    authorize(ctx, session, operation, ResourceType::Cluster, CLUSTER_NAME)
}

/// Whether the session may see a topic exists (DESCRIBE).
pub fn can_describe_topic(ctx: &BrokerContext, session: &Session, topic: &str) -> bool {
    authorize(
        ctx,
        session,
        Operation::Describe,
        ResourceType::Topic,
        topic,
    )
    .is_ok()
}

/// A tenant session's tenant, prefix and current plan.
pub struct TenantPlan {
    pub tenant: String,
    pub prefix: String,
    pub plan: std::sync::Arc<sluice_tenancy::Plan>,
}

/// The plan that applies to the session: `None` for operators and open
/// brokers, whose requests only Kafka's own rules limit. Cheap: no scan.
pub fn tenant_plan(ctx: &BrokerContext, session: &Session) -> Option<TenantPlan> {
    let principal = session.principal.as_ref()?;
    if principal.superuser {
        return None;
    }
    let (tenant, plan) = ctx.tenancy.principal_plan(principal)?;
    let prefix = sluice_tenancy::names::prefix(&tenant);
    Some(TenantPlan {
        tenant,
        prefix,
        plan,
    })
}

/// A tenant session's plan and what the tenant holds now.
pub struct TenantScope {
    pub plan: std::sync::Arc<sluice_tenancy::Plan>,
    pub usage: sluice_tenancy::limits::TopicUsage,
}

/// [`tenant_plan`] with the tenant's topic usage, counted over every topic:
/// only for the requests that create or grow topics.
pub fn tenant_scope(ctx: &BrokerContext, session: &Session) -> Option<TenantScope> {
    let TenantPlan { prefix, plan, .. } = tenant_plan(ctx, session)?;
    let mut usage = sluice_tenancy::limits::TopicUsage::default();
    for t in ctx.storage.topics() {
        if t.name.starts_with(&prefix) {
            usage.topics += 1;
            usage.partitions += t.partition_count().max(0) as u32;
        }
    }
    Some(TenantScope { plan, usage })
}

/// The Kafka error code of a guard-rail refusal.
pub fn refusal_code(r: &sluice_tenancy::limits::Refusal) -> sluice_protocol::ErrorCode {
    use sluice_tenancy::limits::Refusal;
    match r {
        Refusal::Policy(_) | Refusal::Config(_) => sluice_protocol::ErrorCode::PolicyViolation,
        Refusal::Partitions(_) => sluice_protocol::ErrorCode::InvalidPartitions,
    }
}

/// Whether the session may do `operation` on a consumer group: its ACLs,
/// and, when `bring_into_use` (finding, joining, committing) on a plan with
/// explicit groups, that the group was created first.
pub async fn group_access(
    ctx: &BrokerContext,
    session: &Session,
    operation: Operation,
    group: &str,
    bring_into_use: bool,
) -> Result<(), (sluice_protocol::ErrorCode, String)> {
    use sluice_protocol::ErrorCode;
    authorize(ctx, session, operation, ResourceType::Group, group)
        .map_err(|m| (ErrorCode::GroupAuthorizationFailed, m))?;
    if !bring_into_use {
        return Ok(());
    }
    let Some(scope) = tenant_plan(ctx, session) else {
        return Ok(());
    };
    if !scope.plan.explicit_groups {
        return Ok(());
    }
    match ctx.storage.catalog().group_exists(group).await {
        Ok(true) => Ok(()),
        Ok(false) => {
            let short = group.strip_prefix(&scope.prefix).unwrap_or(group);
            let message = format!(
                "consumer group `{group}` does not exist: on plan `{}` groups are created before use; run `sluice groups create {short} --tenant {}`",
                scope.plan.name, scope.tenant
            );
            tracing::warn!(principal = ?session.principal.as_ref().map(|p| &p.name), group, "refused: {message}");
            Err((ErrorCode::GroupAuthorizationFailed, message))
        }
        Err(e) => Err((
            ErrorCode::CoordinatorNotAvailable,
            format!("checking group `{group}`: {e}"),
        )),
    }
}
