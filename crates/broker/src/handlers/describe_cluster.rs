//! DescribeCluster: this broker is the whole cluster and its controller.

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use sluice_protocol::ErrorCode;
use sluice_tenancy::acl::{ResourceType, CLUSTER_NAME};

use super::{count_error, text, RequestMeta};
use crate::authz::{authorized_operations, OPERATIONS_NOT_REQUESTED};
use crate::context::BrokerContext;
use crate::session::Session;

const BROKERS: i8 = 1;
const CONTROLLERS: i8 = 2;

/// Answered for any authenticated principal: it names the brokers, which
/// Metadata shows everyone anyway.
pub fn handle(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: DescribeClusterRequest,
    meta: RequestMeta,
) -> DescribeClusterResponse {
    let c = &ctx.config;
    let l = &session.listener;
    // v1 asks for brokers (1) or controllers (2) (KIP-919); Sluice's
    // listeners are broker endpoints.
    if req.endpoint_type != BROKERS {
        let (code, message) = if req.endpoint_type == CONTROLLERS {
            (
                ErrorCode::MismatchedEndpointType,
                "this is a broker endpoint; ask it for brokers (endpoint type 1)".to_string(),
            )
        } else {
            (
                ErrorCode::UnsupportedEndpointType,
                format!(
                    "endpoint type {} is not known; use 1 (brokers)",
                    req.endpoint_type
                ),
            )
        };
        return DescribeClusterResponse::default()
            .with_endpoint_type(req.endpoint_type)
            .with_error_code(count_error(meta, code))
            .with_error_message(Some(text(message)));
    }
    DescribeClusterResponse::default()
        .with_endpoint_type(req.endpoint_type)
        .with_cluster_id(text(c.cluster_id.clone()))
        .with_controller_id(BrokerId(c.node_id))
        .with_cluster_authorized_operations(if req.include_cluster_authorized_operations {
            authorized_operations(ctx, session, ResourceType::Cluster, CLUSTER_NAME)
        } else {
            OPERATIONS_NOT_REQUESTED
        })
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(BrokerId(c.node_id))
            .with_host(text(l.advertised_host.clone()))
            .with_port(l.advertised_port)])
}
