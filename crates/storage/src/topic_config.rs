//! Topic configs: the names Kafka clients set, their Kafka defaults, and
//! validation. Only values set explicitly are stored; describing a topic
//! reports every known config with its default where none was set.

use std::collections::BTreeMap;

use crate::error::{Result, StorageError};

/// How a config's value is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A signed 64-bit number, with the smallest value allowed.
    Long(i64),
    /// A signed 32-bit number (Kafka's INT), with the smallest value allowed.
    Int(i32),
    /// A comma-separated list of words from a fixed set, each at most once.
    List(&'static [&'static str]),
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
    Bool,
    /// A floating-point number between 0 and 1.
    Ratio,
    /// Any text (lists of throttled replicas and the like).
    Text,
}

/// A known topic config.
#[derive(Debug, Clone, Copy)]
pub struct ConfigDef {
    pub name: &'static str,
    pub default: &'static str,
    pub kind: Kind,
    /// Documentation shown by DescribeConfigs v3+.
    pub doc: &'static str,
}

const fn def(
    name: &'static str,
    default: &'static str,
    kind: Kind,
    doc: &'static str,
) -> ConfigDef {
    ConfigDef {
        name,
        default,
        kind,
        doc,
    }
}

/// Every topic config Sluice accepts, with Apache Kafka's defaults.
pub const TOPIC_CONFIGS: &[ConfigDef] = &[
    def(
        "cleanup.policy",
        "delete",
        Kind::List(&["delete", "compact"]),
        "Retention policy: delete old data, or compact to the latest value per key.",
    ),
    def(
        "compression.type",
        "producer",
        Kind::Choice(&["producer"]),
        "Sluice stores batches as the producer compressed them.",
    ),
    def(
        "delete.retention.ms",
        "86400000",
        Kind::Long(0),
        "How long tombstones are kept on compacted topics.",
    ),
    def(
        "file.delete.delay.ms",
        "60000",
        Kind::Long(0),
        "Delay before deleting a file from the object store.",
    ),
    def(
        "flush.messages",
        "9223372036854775807",
        Kind::Long(1),
        "Accepted for compatibility; every acknowledged batch is already durable.",
    ),
    def(
        "flush.ms",
        "9223372036854775807",
        Kind::Long(0),
        "Accepted for compatibility; every acknowledged batch is already durable.",
    ),
    def(
        "index.interval.bytes",
        "4096",
        Kind::Int(0),
        "Accepted for compatibility.",
    ),
    def(
        "max.compaction.lag.ms",
        "9223372036854775807",
        Kind::Long(1),
        "Longest time a message stays ineligible for compaction.",
    ),
    def(
        "max.message.bytes",
        "1048588",
        Kind::Int(0),
        "Largest record batch size allowed, after compression.",
    ),
    def(
        "message.timestamp.after.max.ms",
        "3600000",
        Kind::Long(0),
        "How far a CreateTime timestamp may be ahead of the broker's clock.",
    ),
    def(
        "message.timestamp.before.max.ms",
        "9223372036854775807",
        Kind::Long(0),
        "How far a CreateTime timestamp may be behind the broker's clock.",
    ),
    def(
        "message.timestamp.type",
        "CreateTime",
        Kind::Choice(&["CreateTime", "LogAppendTime"]),
        "Whether record timestamps come from the producer or the broker.",
    ),
    def(
        "min.cleanable.dirty.ratio",
        "0.5",
        Kind::Ratio,
        "Dirty ratio at which compaction starts.",
    ),
    def(
        "min.compaction.lag.ms",
        "0",
        Kind::Long(0),
        "Shortest time a message stays uncompacted.",
    ),
    def(
        "min.insync.replicas",
        "1",
        Kind::Int(1),
        "Durability comes from the object store and catalog; accepted for compatibility.",
    ),
    def(
        "preallocate",
        "false",
        Kind::Bool,
        "Accepted for compatibility.",
    ),
    def(
        "retention.bytes",
        "-1",
        Kind::Long(-1),
        "Largest size a partition keeps before old data is removed; -1 for no limit.",
    ),
    def(
        "retention.ms",
        "604800000",
        Kind::Long(-1),
        "How long data is kept; -1 for ever.",
    ),
    def(
        "segment.bytes",
        "1073741824",
        Kind::Int(14),
        "Accepted for compatibility; Sluice stores data in group-commit objects.",
    ),
    def(
        "segment.index.bytes",
        "10485760",
        Kind::Int(4),
        "Accepted for compatibility.",
    ),
    def(
        "segment.jitter.ms",
        "0",
        Kind::Long(0),
        "Accepted for compatibility.",
    ),
    def(
        "segment.ms",
        "604800000",
        Kind::Long(1),
        "Accepted for compatibility.",
    ),
    def(
        "unclean.leader.election.enable",
        "false",
        Kind::Bool,
        "Accepted for compatibility; leadership moves by lease, never uncleanly.",
    ),
];

/// Looks up a known config by name.
pub fn definition(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Checks one config value, returning the value as it is stored.
/// The broker config a topic config takes its default from, as Kafka
/// names it (the most precise of its synonyms): DescribeConfigs lists it
/// among the topic config's synonyms. Sluice's broker defaults are fixed,
/// so its value is the topic config's default.
pub fn broker_synonym(name: &str) -> Option<&'static str> {
    Some(match name {
        "cleanup.policy" => "log.cleanup.policy",
        "compression.type" => "compression.type",
        "delete.retention.ms" => "log.cleaner.delete.retention.ms",
        "file.delete.delay.ms" => "log.segment.delete.delay.ms",
        "flush.messages" => "log.flush.interval.messages",
        "flush.ms" => "log.flush.interval.ms",
        "index.interval.bytes" => "log.index.interval.bytes",
        "max.compaction.lag.ms" => "log.cleaner.max.compaction.lag.ms",
        "max.message.bytes" => "message.max.bytes",
        "message.timestamp.after.max.ms" => "log.message.timestamp.after.max.ms",
        "message.timestamp.before.max.ms" => "log.message.timestamp.before.max.ms",
        "message.timestamp.type" => "log.message.timestamp.type",
        "min.cleanable.dirty.ratio" => "log.cleaner.min.cleanable.ratio",
        "min.compaction.lag.ms" => "log.cleaner.min.compaction.lag.ms",
        "min.insync.replicas" => "min.insync.replicas",
        "preallocate" => "log.preallocate",
        "retention.bytes" => "log.retention.bytes",
        "retention.ms" => "log.retention.ms",
        "segment.bytes" => "log.segment.bytes",
        "segment.index.bytes" => "log.index.size.max.bytes",
        "segment.jitter.ms" => "log.roll.jitter.ms",
        "segment.ms" => "log.roll.ms",
        "unclean.leader.election.enable" => "unclean.leader.election.enable",
        _ => return None,
    })
}

pub fn validate(name: &str, value: &str) -> Result<String> {
    let d = definition(name)
        .ok_or_else(|| StorageError::InvalidConfig(format!("unknown topic config `{name}`")))?;
    let bad = |why: String| {
        StorageError::InvalidConfig(format!("invalid value `{value}` for `{name}`: {why}"))
    };
    let v = value.trim();
    match d.kind {
        Kind::Long(min) => {
            let n: i64 = v
                .parse()
                .map_err(|_| bad("expected a whole number".into()))?;
            if n < min {
                return Err(bad(format!("must be at least {min}")));
            }
        }
        Kind::Int(min) => {
            let n: i32 = v
                .parse()
                .map_err(|_| bad(format!("expected a whole number up to {}", i32::MAX)))?;
            if n < min {
                return Err(bad(format!("must be at least {min}")));
            }
        }
        Kind::List(items) => {
            let mut out: Vec<&str> = Vec::new();
            for given in v.split(',').map(str::trim) {
                let item = items
                    .iter()
                    .find(|i| i.eq_ignore_ascii_case(given))
                    .ok_or_else(|| bad(format!("expected a list of {}", items.join(", "))))?;
                if !out.contains(item) {
                    out.push(item);
                }
            }
            return Ok(out.join(","));
        }
        Kind::Choice(options) => {
            let normalized: String = v.split(',').map(str::trim).collect::<Vec<_>>().join(",");
            if !options.iter().any(|o| o.eq_ignore_ascii_case(&normalized)) {
                return Err(bad(format!("expected one of {}", options.join(" | "))));
            }
            return Ok(options
                .iter()
                .find(|o| o.eq_ignore_ascii_case(&normalized))
                .map(|o| o.to_string())
                .unwrap_or(normalized));
        }
        Kind::Bool => {
            if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                return Err(bad("expected true or false".into()));
            }
            return Ok(v.to_ascii_lowercase());
        }
        Kind::Ratio => {
            let f: f64 = v.parse().map_err(|_| bad("expected a number".into()))?;
            if !(0.0..=1.0).contains(&f) {
                return Err(bad("must be between 0 and 1".into()));
            }
        }
        Kind::Text => {}
    }
    Ok(v.to_string())
}

/// Validates a whole set of explicitly set configs.
pub fn validate_all(configs: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
    configs
        .iter()
        .map(|(k, v)| Ok((k.clone(), validate(k, v)?)))
        .collect()
}

/// A topic's explicitly set configs, with typed accessors that fall back to
/// Kafka's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicConfig {
    pub explicit: BTreeMap<String, String>,
}

impl TopicConfig {
    pub fn new(explicit: BTreeMap<String, String>) -> Self {
        Self { explicit }
    }

    /// The effective value and whether it was set explicitly.
    pub fn get(&self, name: &str) -> Option<(String, bool)> {
        if let Some(v) = self.explicit.get(name) {
            return Some((v.clone(), true));
        }
        definition(name).map(|d| (d.default.to_string(), false))
    }

    fn long(&self, name: &str) -> i64 {
        self.get(name)
            .and_then(|(v, _)| v.parse().ok())
            .unwrap_or(-1)
    }

    pub fn retention_ms(&self) -> i64 {
        self.long("retention.ms")
    }
    pub fn retention_bytes(&self) -> i64 {
        self.long("retention.bytes")
    }
    pub fn max_message_bytes(&self) -> usize {
        self.long("max.message.bytes").max(0) as usize
    }
    pub fn log_append_time(&self) -> bool {
        self.get("message.timestamp.type")
            .is_some_and(|(v, _)| v == "LogAppendTime")
    }
    pub fn timestamp_before_max_ms(&self) -> i64 {
        self.long("message.timestamp.before.max.ms")
    }
    pub fn timestamp_after_max_ms(&self) -> i64 {
        self.long("message.timestamp.after.max.ms")
    }
    pub fn deletes_old_data(&self) -> bool {
        self.get("cleanup.policy")
            .is_some_and(|(v, _)| v.contains("delete"))
    }
    /// `cleanup.policy` includes `compact`: every record needs a key.
    pub fn compacts(&self) -> bool {
        self.get("cleanup.policy")
            .is_some_and(|(v, _)| v.contains("compact"))
    }
    pub fn min_cleanable_dirty_ratio(&self) -> f64 {
        self.get("min.cleanable.dirty.ratio")
            .and_then(|(v, _)| v.parse().ok())
            .unwrap_or(0.5)
    }
    pub fn min_compaction_lag_ms(&self) -> i64 {
        self.long("min.compaction.lag.ms").max(0)
    }
    pub fn max_compaction_lag_ms(&self) -> i64 {
        match self.long("max.compaction.lag.ms") {
            ms if ms > 0 => ms,
            _ => i64::MAX,
        }
    }
    pub fn delete_retention_ms(&self) -> i64 {
        self.long("delete.retention.ms").max(0)
    }

    /// The rules the produce path checks batches against.
    pub fn batch_rules(&self) -> sluice_protocol::batch::BatchRules {
        sluice_protocol::batch::BatchRules {
            max_message_bytes: self.max_message_bytes(),
            log_append_time: self.log_append_time(),
            max_before_ms: self.timestamp_before_max_ms(),
            max_after_ms: self.timestamp_after_max_ms(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topic_config_has_a_broker_synonym() {
        for d in TOPIC_CONFIGS {
            assert!(broker_synonym(d.name).is_some(), "{}", d.name);
        }
    }

    #[test]
    fn validates_and_defaults() {
        assert_eq!(validate("retention.ms", "3600000").unwrap(), "3600000");
        assert!(validate("retention.ms", "-2").is_err());
        assert!(validate("retention.ms", "soon").is_err());
        assert_eq!(validate("cleanup.policy", "Compact").unwrap(), "compact");
        assert_eq!(
            validate("cleanup.policy", "delete, compact").unwrap(),
            "delete,compact"
        );
        let e = validate("no.such.config", "1").unwrap_err();
        assert!(e
            .to_string()
            .contains("unknown topic config `no.such.config`"));
        assert!(validate("compression.type", "gzip").is_err());

        let c = TopicConfig::default();
        assert_eq!(c.retention_ms(), 604_800_000);
        assert_eq!(c.max_message_bytes(), 1_048_588);
        assert!(!c.log_append_time());
        let c = TopicConfig::new(
            [(
                "message.timestamp.type".to_string(),
                "LogAppendTime".to_string(),
            )]
            .into(),
        );
        assert!(c.log_append_time());
        assert_eq!(
            c.get("message.timestamp.type"),
            Some(("LogAppendTime".into(), true))
        );
    }
}
