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
