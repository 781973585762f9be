//! Guard rails: what a tenant's plan lets it do to topics and groups
//! (counts, partitions, which configs and within which bounds). Each check
//! returns a refusal whose message names the rule, the plan and the fix.

use std::collections::BTreeMap;

use crate::plan::{Plan, TENANT_TOPIC_CONFIGS};

/// What a tenant holds now, as the broker counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopicUsage {
    pub topics: u32,
    pub partitions: u32,
}

/// Why a guard rail refused; the broker maps it to a Kafka error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A plan limit (POLICY_VIOLATION).
    #[error("{0}")]
    Policy(String),
    /// A partition count out of the plan's range (INVALID_PARTITIONS).
    #[error("{0}")]
    Partitions(String),
    /// A config the plan does not let tenants set, or out of bounds
    /// (POLICY_VIOLATION as well, as Kafka's create-topic policies answer).
    #[error("{0}")]
    Config(String),
}

fn days_or_hours(ms: i64) -> String {
    const HOUR: i64 = 3_600_000;
    if ms == 24 * HOUR {
        "1 day".into()
    } else if ms % (24 * HOUR) == 0 {
        format!("{} days", ms / (24 * HOUR))
    } else {
        format!("{} h", ms as f64 / HOUR as f64)
    }
}

/// Checks the configs a tenant sets (on create or alter).
pub fn check_configs(plan: &Plan, configs: &BTreeMap<String, String>) -> Result<(), Refusal> {
    for (name, value) in configs {
        if !TENANT_TOPIC_CONFIGS.contains(&name.as_str()) {
            return Err(Refusal::Config(format!(
                "topic config `{name}` is managed by the operator on plan `{}`; tenants may set {}",
                plan.name,
                TENANT_TOPIC_CONFIGS.join(", ")
            )));
        }
        let number = || value.trim().parse::<i64>().ok();
        match name.as_str() {
            "retention.ms" => {
                let ms = number().unwrap_or(i64::MIN);
                if ms < plan.retention_ms_min || ms > plan.retention_ms_max {
                    return Err(Refusal::Config(format!(
                        "retention.ms={value} is outside plan `{}`'s range of {} ({} ms) to {} ({} ms); pick a value in that range",
                        plan.name,
                        days_or_hours(plan.retention_ms_min),
                        plan.retention_ms_min,
                        days_or_hours(plan.retention_ms_max),
                        plan.retention_ms_max
                    )));
                }
            }
            "max.message.bytes" => {
                let bytes = number().unwrap_or(i64::MAX);
                if bytes < 0 || bytes as u64 > plan.max_message_bytes {
                    return Err(Refusal::Config(format!(
                        "max.message.bytes={value} is above plan `{}`'s limit of {} bytes",
                        plan.name, plan.max_message_bytes
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks a new topic and fills in the plan's defaults: the partition
/// count (for -1) and `retention.ms` when none is given. Returns the
/// partition count to create.
pub fn check_new_topic(
    plan: &Plan,
    usage: TopicUsage,
    requested_partitions: i32,
    configs: &mut BTreeMap<String, String>,
) -> Result<i32, Refusal> {
    let partitions = if requested_partitions == -1 {
        plan.default_partitions as i32
    } else {
        requested_partitions
    };
    if partitions < 1 || partitions as u32 > plan.max_partitions_per_topic {
        return Err(Refusal::Partitions(format!(
            "{partitions} partitions is outside plan `{}`'s range of 1 to {} per topic",
            plan.name, plan.max_partitions_per_topic
        )));
    }
    if usage.topics >= plan.max_topics {
        return Err(Refusal::Policy(format!(
            "plan `{}` allows {} topics and the tenant has {}; delete a topic or move to a larger plan",
            plan.name, plan.max_topics, usage.topics
        )));
    }
    check_partition_total(plan, usage, partitions as u32)?;
    check_configs(plan, configs)?;
    configs
        .entry("retention.ms".into())
        .or_insert_with(|| plan.retention_ms_default.to_string());
    Ok(partitions)
}

/// Checks growing a topic from `current` to `total` partitions.
pub fn check_more_partitions(
    plan: &Plan,
    usage: TopicUsage,
    current: i32,
    total: i32,
) -> Result<(), Refusal> {
    if total as u32 > plan.max_partitions_per_topic {
        return Err(Refusal::Partitions(format!(
            "{total} partitions is above plan `{}`'s limit of {} per topic",
            plan.name, plan.max_partitions_per_topic
        )));
    }
    check_partition_total(plan, usage, (total - current).max(0) as u32)
}

fn check_partition_total(plan: &Plan, usage: TopicUsage, adding: u32) -> Result<(), Refusal> {
    if usage.partitions + adding > plan.max_partitions {
        return Err(Refusal::Policy(format!(
            "plan `{}` allows {} partitions in all and the tenant has {}; adding {adding} would exceed it: delete topics, use fewer partitions, or move to a larger plan",
            plan.name, plan.max_partitions, usage.partitions
        )));
    }
    Ok(())
}

/// Checks creating one more consumer group.
pub fn check_new_group(plan: &Plan, groups: u32) -> Result<(), Refusal> {
    if groups >= plan.max_groups {
        return Err(Refusal::Policy(format!(
            "plan `{}` allows {} consumer groups and the tenant has {groups}; destroy one or move to a larger plan",
            plan.name, plan.max_groups
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Plans;

    fn basic() -> std::sync::Arc<Plan> {
        Plans::built_in().get("basic-0").unwrap()
    }

    #[test]
    fn new_topics_get_plan_defaults() {
        let mut configs = BTreeMap::new();
        let n = check_new_topic(&basic(), TopicUsage::default(), -1, &mut configs).unwrap();
        assert_eq!(n, 8);
        assert_eq!(configs["retention.ms"], "86400000");
    }

    #[test]
    fn retention_must_stay_in_bounds() {
        let mut configs = BTreeMap::from([("retention.ms".to_string(), "3600000".to_string())]);
        let e = check_new_topic(&basic(), TopicUsage::default(), 1, &mut configs).unwrap_err();
        assert!(
            e.to_string().contains("1 day (86400000 ms) to 7 days"),
            "{e}"
        );
        let ok = BTreeMap::from([("retention.ms".to_string(), "172800000".to_string())]);
        check_configs(&basic(), &ok).unwrap();
        let operator_only = BTreeMap::from([("segment.bytes".to_string(), "1".to_string())]);
        assert!(matches!(
            check_configs(&basic(), &operator_only),
            Err(Refusal::Config(_))
        ));
    }

    #[test]
    fn counts_are_limited() {
        let plan = basic();
        let full = TopicUsage {
            topics: plan.max_topics,
            partitions: 0,
        };
        assert!(matches!(
            check_new_topic(&plan, full, 1, &mut BTreeMap::new()),
            Err(Refusal::Policy(_))
        ));
        let nearly = TopicUsage {
            topics: 1,
            partitions: plan.max_partitions - 4,
        };
        assert!(check_new_topic(&plan, nearly, 4, &mut BTreeMap::new()).is_ok());
        assert!(check_new_topic(&plan, nearly, 5, &mut BTreeMap::new()).is_err());
        assert!(check_more_partitions(&plan, nearly, 4, 8).is_ok());
        assert!(check_more_partitions(&plan, nearly, 4, 9).is_err());
        assert!(matches!(
            check_more_partitions(&plan, TopicUsage::default(), 1, 65),
            Err(Refusal::Partitions(_))
        ));
        assert!(check_new_group(&plan, plan.max_groups).is_err());
    }
}
