//! What a tenant (or the whole broker) uses: topics, partitions, groups,
//! stored bytes against its plan's limits, and recent traffic rates. Shared
//! by the tenant info (`GET /v1/tenants/{name}`) and the cluster view
//! (`GET /v1/cluster`).

use std::collections::HashMap;

use serde::Serialize;
use sluice_broker::traffic::Rates;
use sluice_tenancy::plan::Plan;

use crate::error::ApiError;
use crate::ControlPlane;

/// Stored bytes per topic, from the catalog's offset index.
pub async fn sizes(plane: &ControlPlane) -> Result<HashMap<String, i64>, ApiError> {
    Ok(plane
        .storage
        .catalog()
        .bytes_by_topic()
        .await?
        .into_iter()
        .collect())
}

/// Topics, partitions, bytes and rates of the topics whose names start
/// with `prefix` (every topic for `""`).
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub topics: u64,
    pub partitions: u64,
    pub data_bytes: u64,
    pub rates: Rates,
}

pub fn measure(plane: &ControlPlane, prefix: &str, sizes: &HashMap<String, i64>) -> Measured {
    let mut m = Measured::default();
    for t in plane.storage.topics() {
        if !t.name.starts_with(prefix) {
            continue;
        }
        m.topics += 1;
        m.partitions += t.partition_count().max(0) as u64;
        m.data_bytes += sizes.get(&t.name).copied().unwrap_or(0).max(0) as u64;
        m.rates += plane.traffic.rates(&t.name);
    }
    m
}

/// `available`, or `over capacity` once the stored bytes reach the plan's
/// capacity (produce is refused then).
pub fn status(data_bytes: u64, capacity_bytes: u64) -> &'static str {
    if capacity_bytes > 0 && data_bytes >= capacity_bytes {
        "over capacity"
    } else {
        "available"
    }
}

/// `data_bytes` as a percentage of `capacity_bytes`, rounded to 2 decimals.
pub fn percent(data_bytes: u64, capacity_bytes: u64) -> f64 {
    if capacity_bytes == 0 {
        return 0.0;
    }
    let p = data_bytes as f64 * 100.0 / capacity_bytes as f64;
    (p * 100.0).round() / 100.0
}

/// A tenant's usage against its plan, as `GET /v1/tenants/{name}` shows it
/// under `usage`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TenantUsage {
    /// Topics under the tenant's prefix.
    pub topics: u64,
    /// The plan's `max_topics`.
    pub max_topics: u64,
    /// Partitions across those topics.
    pub partitions: u64,
    /// The plan's `max_partitions`.
    pub max_partitions: u64,
    /// Consumer groups under the prefix (in memory or in the catalog).
    pub groups: u64,
    /// The plan's `max_groups`.
    pub max_groups: u64,
    /// SASL credentials of the tenant.
    pub credentials: u64,
    /// Records appended per second (last 10 s, this broker).
    pub messages_in_per_sec: f64,
    /// Records served to consumers per second.
    pub messages_out_per_sec: f64,
    /// Bytes appended per second.
    pub bytes_in_per_sec: f64,
    /// Bytes served to consumers per second.
    pub bytes_out_per_sec: f64,
    /// Bytes stored for the tenant's topics.
    pub data_bytes: u64,
    /// The plan's `capacity_bytes`.
    pub capacity_bytes: u64,
    /// `data_bytes` as a percentage of `capacity_bytes` (2 decimals).
    pub capacity_percent: f64,
}

impl TenantUsage {
    pub fn new(m: &Measured, plan: &Plan, groups: u64, credentials: u64) -> TenantUsage {
        TenantUsage {
            topics: m.topics,
            max_topics: plan.max_topics.into(),
            partitions: m.partitions,
            max_partitions: plan.max_partitions.into(),
            groups,
            max_groups: plan.max_groups.into(),
            credentials,
            messages_in_per_sec: m.rates.messages_in_per_sec,
            messages_out_per_sec: m.rates.messages_out_per_sec,
            bytes_in_per_sec: m.rates.bytes_in_per_sec,
            bytes_out_per_sec: m.rates.bytes_out_per_sec,
            data_bytes: m.data_bytes,
            capacity_bytes: plan.capacity_bytes,
            capacity_percent: percent(m.data_bytes, plan.capacity_bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_turns_at_full_capacity() {
        assert_eq!(status(0, 100), "available");
        assert_eq!(status(99, 100), "available");
        assert_eq!(status(100, 100), "over capacity");
        assert_eq!(percent(1, 3), 33.33);
        assert_eq!(percent(5, 0), 0.0);
    }
}
