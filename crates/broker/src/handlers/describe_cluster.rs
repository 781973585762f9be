//! DescribeCluster: this broker is the whole cluster and its controller.

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::text;
use crate::context::BrokerContext;
use crate::session::Session;

/// Answered for any authenticated principal: it names the brokers, which
/// Metadata shows everyone anyway.
pub fn handle(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let c = &ctx.config;
    let l = &session.listener;
    DescribeClusterResponse::default()
        .with_endpoint_type(req.endpoint_type)
        .with_cluster_id(text(c.cluster_id.clone()))
        .with_controller_id(BrokerId(c.node_id))
        .with_cluster_authorized_operations(i32::MIN)
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(BrokerId(c.node_id))
            .with_host(text(l.advertised_host.clone()))
            .with_port(l.advertised_port)])
}
