//! Plans: the quotas, capacity, limits and guard rails a tenant gets.
//!
//! Plans are data: the built-in table (`plans.toml`, compiled in) can be
//! extended or overridden by an operator's TOML file of the same shape.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Result, TenancyError};

/// Topic configs a tenant may set on its topics, whatever its plan. Others
/// (segment sizes, replication settings) belong to the operator.
pub const TENANT_TOPIC_CONFIGS: &[&str] = &[
    "cleanup.policy",
    "compression.type",
    "delete.retention.ms",
    "max.compaction.lag.ms",
    "max.message.bytes",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.type",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "retention.bytes",
    "retention.ms",
];

/// One plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The plan's name (the key in the plans table).
    #[serde(skip_deserializing)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Produce quota for the whole tenant, across the cluster.
    pub produce_bytes_per_sec: u64,
    /// Fetch quota for the whole tenant, across the cluster.
    pub consume_bytes_per_sec: u64,
    /// Bytes the tenant may keep stored; produce is refused beyond it.
    pub capacity_bytes: u64,
    /// Partitions across all of the tenant's topics.
    pub max_partitions: u32,
    pub max_partitions_per_topic: u32,
    /// Partitions of a topic created without a count.
    pub default_partitions: u32,
    pub max_topics: u32,
    pub max_groups: u32,
    /// Bounds of `retention.ms`; topics get the default when none is set.
    pub retention_ms_min: i64,
    pub retention_ms_max: i64,
    pub retention_ms_default: i64,
    /// Upper bound of a topic's `max.message.bytes`.
    pub max_message_bytes: u64,
    /// Consumer groups must be created (CLI or REST) before use.
    pub explicit_groups: bool,
    /// The tenant may create, grow, alter and delete its topics through the
    /// Kafka Admin API.
    pub admin_topics: bool,
    /// Open connections of the tenant on one broker.
    pub max_connections: u32,
    /// Requests per second of the tenant, across the cluster.
    pub max_requests_per_sec: u32,
}

/// Every plan an operator offers, by name.
#[derive(Debug, Clone)]
pub struct Plans {
    plans: BTreeMap<String, Arc<Plan>>,
}

const BUILT_IN: &str = include_str!("plans.toml");

/// The plan new tenants get when none is named.
pub const DEFAULT_PLAN: &str = "basic-0";

impl Plans {
    /// The built-in plans.
    pub fn built_in() -> Plans {
        // The table is compiled in and covered by a test.
        Plans::parse(BUILT_IN, "built-in plans").unwrap_or_else(|e| panic!("{e}"))
    }

    /// The built-in plans, with those of `path` added or replacing them.
    pub fn with_file(path: &Path) -> Result<Plans> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            TenancyError::Plans(format!("reading plans file {}: {e}", path.display()))
        })?;
        let mut plans = Plans::built_in();
        let extra = Plans::parse(&text, &path.display().to_string())?;
        plans.plans.extend(extra.plans);
        Ok(plans)
    }

    fn parse(text: &str, source: &str) -> Result<Plans> {
        let table: BTreeMap<String, Plan> =
            toml::from_str(text).map_err(|e| TenancyError::Plans(format!("{source}: {e}")))?;
        let mut plans = BTreeMap::new();
        for (name, mut plan) in table {
            plan.name = name.clone();
            plan.check()
                .map_err(|e| TenancyError::Plans(format!("{source}: plan `{name}`: {e}")))?;
            plans.insert(name, Arc::new(plan));
        }
        Ok(Plans { plans })
    }

    pub fn get(&self, name: &str) -> Result<Arc<Plan>> {
        self.plans
            .get(name)
            .cloned()
            .ok_or_else(|| TenancyError::UnknownPlan {
                plan: name.to_string(),
                known: self.names().join(", "),
            })
    }

    pub fn names(&self) -> Vec<String> {
        self.plans.keys().cloned().collect()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Plan>> {
        self.plans.values()
    }
}

impl Plan {
    fn check(&self) -> std::result::Result<(), String> {
        if self.retention_ms_min > self.retention_ms_max
            || !(self.retention_ms_min..=self.retention_ms_max).contains(&self.retention_ms_default)
        {
            return Err(
                "retention_ms_default must lie within retention_ms_min..=retention_ms_max".into(),
            );
        }
        if self.default_partitions == 0 || self.default_partitions > self.max_partitions_per_topic {
            return Err("default_partitions must be between 1 and max_partitions_per_topic".into());
        }
        if self.produce_bytes_per_sec == 0 || self.consume_bytes_per_sec == 0 {
            return Err("byte rates must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_plans_follow_the_brief() {
        let plans = Plans::built_in();
        let b0 = plans.get("basic-0").unwrap();
        assert_eq!(b0.produce_bytes_per_sec, 64 * 1024);
        assert_eq!(b0.consume_bytes_per_sec, 256 * 1024);
        assert_eq!(b0.max_partitions, 240);
        assert_eq!(b0.default_partitions, 8);
        assert_eq!(b0.retention_ms_min, 24 * 3600 * 1000);
        assert_eq!(b0.retention_ms_max, 7 * 24 * 3600 * 1000);
        assert!(b0.explicit_groups && b0.admin_topics);
        assert_eq!(plans.get("basic-2").unwrap().max_partitions, 960);
        let dedicated = plans.get("standard-0").unwrap();
        assert_eq!(dedicated.default_partitions, 32);
        assert!(!dedicated.explicit_groups);
        assert!(plans.all().all(|p| p.admin_topics));
    }

    #[test]
    fn a_plans_file_adds_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plans.toml");
        let plan = BUILT_IN
            .split("[basic-1]")
            .next()
            .unwrap()
            .replace("[basic-0]", "[tiny]")
            .replace("max_topics = 40", "max_topics = 3");
        std::fs::write(&path, plan).unwrap();
        let plans = Plans::with_file(&path).unwrap();
        assert_eq!(plans.get("tiny").unwrap().max_topics, 3);
        assert_eq!(plans.get("basic-0").unwrap().max_topics, 40);

        std::fs::write(&path, "[bad]\nproduce_bytes_per_sec = 1\n").unwrap();
        let e = Plans::with_file(&path).unwrap_err().to_string();
        assert!(e.contains("missing field"), "{e}");
        let e = plans.get("gold").unwrap_err().to_string();
        assert!(e.contains("basic-0") && e.contains("tiny"), "{e}");
    }
}
