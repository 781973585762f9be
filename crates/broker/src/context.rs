//! What every handler can reach.

use std::sync::Arc;

use sluice_storage::Storage;
use sluice_tenancy::Tenancy;

use crate::auth_failures::AuthFailures;
use crate::groups::{GroupConfig, GroupCoordinator};
use crate::quota::Quotas;
use crate::traffic::Traffic;

/// The broker's identity and policies.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Our node id in Metadata and DescribeCluster.
    pub node_id: i32,
    pub cluster_id: String,
    /// Largest request frame accepted; larger frames close the connection.
    pub max_request_bytes: usize,
    /// Kafka's `auto.create.topics.enable`: Metadata for an unknown topic
    /// creates it, as many tutorials and client test suites expect.
    pub auto_create_topics: bool,
    /// Kafka's `num.partitions`: partitions of auto-created topics and of
    /// CreateTopics requests that leave the count at -1.
    pub default_partitions: i32,
    /// Requests in flight per connection before reading pauses.
    pub max_in_flight_per_connection: usize,
    /// Group coordinator timings.
    pub groups: GroupConfig,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            node_id: 1,
            cluster_id: "sluice-dev-cluster".into(),
            max_request_bytes: 100 << 20,
            auto_create_topics: true,
            default_partitions: 1,
            max_in_flight_per_connection: 64,
            groups: GroupConfig::default(),
        }
    }
}

/// Shared by every connection.
pub struct BrokerContext {
    pub config: BrokerConfig,
    pub storage: Arc<Storage>,
    pub groups: Arc<GroupCoordinator>,
    /// Principals, ACLs, plans: who may do what.
    pub tenancy: Arc<Tenancy>,
    pub auth_failures: AuthFailures,
    /// Per-tenant rates, connections and capacity.
    pub quotas: Arc<Quotas>,
    /// Recent messages and bytes per second by topic, for the REST API.
    pub traffic: Arc<Traffic>,
}

impl BrokerContext {
    /// Builds the context and starts the group coordinator (inside a Tokio
    /// runtime).
    pub fn new(config: BrokerConfig, storage: Arc<Storage>, tenancy: Arc<Tenancy>) -> Arc<Self> {
        let groups = GroupCoordinator::start(storage.clone(), config.groups);
        let quotas = Quotas::new(tenancy.clone());
        quotas.start_capacity_scan(storage.clone());
        Arc::new(BrokerContext {
            config,
            storage,
            groups,
            tenancy,
            auth_failures: AuthFailures::default(),
            quotas,
            traffic: Arc::default(),
        })
    }
}
