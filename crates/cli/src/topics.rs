//! `sluice topics list|create|info|destroy|retention|compaction|partitions`:
//! topics through the REST API (`/v1/topics`). `sluice topics write|tail`
//! are parsed here too and run in `topic_records`, with the `?tenant=`
//! query, topic paths and spinner from here.
//!
//! Names given without the tenant's prefix get it (the API adds it: from a
//! tenant token, or from `--tenant NAME` with the operator token), and
//! output shows full names.

use std::time::Duration;

use clap::{Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::api::{encode_path, print_json, ApiArgs};
use crate::output::{table, text, time};
use crate::topic_records::{self, TailOptions};

#[derive(Subcommand, Debug)]
pub enum TopicsCommand {
    /// Every topic with its partitions, retention, traffic and data size.
    List,
    /// Creates a topic (within the tenant's plan).
    Create {
        /// The topic; the tenant's prefix is added when missing.
        name: String,
        /// Partitions; the plan's default when left out.
        #[arg(long)]
        partitions: Option<i32>,
        /// How long records are kept: `36h`, `7d`, `1 day`, `90m`, or
        /// milliseconds; the plan's default when left out.
        #[arg(long, value_parser = parse_retention)]
        retention: Option<i64>,
        /// Keep the latest record of each key instead of deleting by age
        /// (cleanup.policy=compact).
        #[arg(long)]
        compaction: bool,
    },
    /// One topic: configs, partitions with their offsets, traffic, size.
    Info { name: String },
    /// Deletes a topic with its records.
    Destroy {
        name: String,
        /// The topic's name again (with or without the prefix), to confirm.
        #[arg(long)]
        confirm: Option<String>,
    },
    /// Sets how long a topic keeps records.
    Retention {
        name: String,
        /// `36h`, `7d`, `1 day`, `90m`, `30s`, `2w`, or milliseconds
        /// (-1: forever, where the plan allows it).
        #[arg(value_parser = parse_retention, allow_hyphen_values = true)]
        retention: i64,
    },
    /// Turns compaction on (cleanup.policy=compact) or off (delete).
    Compaction {
        name: String,
        #[arg(value_enum)]
        state: OnOff,
    },
    /// Adds partitions: grows the topic to COUNT partitions in all.
    Partitions {
        name: String,
        /// The new total partition count.
        count: i32,
    },
    /// Writes one record.
    Write {
        name: String,
        /// The value, as text.
        message: String,
        /// The record's key; picks the partition as Kafka clients do.
        #[arg(long)]
        key: Option<String>,
        /// The partition to write to.
        #[arg(long)]
        partition: Option<i32>,
    },
    /// Prints records as `topic partition offset length value`, new ones by
    /// default; runs until interrupted unless --count or --timeout stops it.
    Tail {
        name: String,
        /// Print at most this many characters of each value.
        #[arg(long)]
        max_length: Option<usize>,
        /// Start at the oldest record held instead of new records.
        #[arg(long)]
        from_beginning: bool,
        /// Read one partition only.
        #[arg(long)]
        partition: Option<i32>,
        /// Stop after this many records.
        #[arg(long)]
        count: Option<usize>,
        /// Stop after this long (`10s`, `2m`, or milliseconds); with
        /// --count, fewer records by then is an error (exit 1).
        #[arg(long, value_parser = topic_records::parse_timeout)]
        timeout: Option<Duration>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

pub fn run(command: TopicsCommand, tenant: Option<&str>, api: &ApiArgs) -> anyhow::Result<()> {
    let q = Query(tenant.map(|t| format!("tenant={}", encode_path(t))));
    match command {
        TopicsCommand::List => {
            let body = api.get(&q.path("/v1/topics"))?;
            if api.json {
                return print_json(&body);
            }
            let topics = body["topics"].as_array().cloned().unwrap_or_default();
            if topics.is_empty() {
                println!("No topics.");
                return Ok(());
            }
            let mut t = table(&[
                "TOPIC",
                "PARTITIONS",
                "RETENTION",
                "COMPACTION",
                "MESSAGES/S IN",
                "BYTES/S IN",
                "BYTES/S OUT",
                "DATA SIZE",
            ]);
            for topic in topics {
                t.add_row(vec![
                    text(&topic["name"]),
                    text(&topic["partitions"]),
                    retention_text(&topic["retention_ms"]),
                    on_off(&topic["compaction"]),
                    rate(&topic["messages_in_per_sec"]),
                    bytes_rate(&topic["bytes_in_per_sec"]),
                    bytes_rate(&topic["bytes_out_per_sec"]),
                    bytes(&topic["data_size_bytes"]),
                ]);
            }
            println!("{t}");
        }
        TopicsCommand::Create {
            name,
            partitions,
            retention,
            compaction,
        } => {
            let mut req = json!({ "name": name });
            if let Some(p) = partitions {
                req["partitions"] = p.into();
            }
            if let Some(r) = retention {
                req["retention_ms"] = r.into();
            }
            if compaction {
                req["compaction"] = true.into();
            }
            let body = waiting(api, &format!("Creating topic {name}"), || {
                api.post(&q.path("/v1/topics"), req)
            })?;
            if api.json {
                return print_json(&body);
            }
            println!(
                "Created topic {} with {} partitions, retention {}, compaction {}.",
                text(&body["name"]),
                text(&body["partitions"]),
                retention_text(&body["retention_ms"]),
                on_off(&body["compaction"])
            );
        }
        TopicsCommand::Info { name } => {
            let body = api.get(&q.path(&topic_path(&name)))?;
            if api.json {
                return print_json(&body);
            }
            print_info(&body);
        }
        TopicsCommand::Destroy { name, confirm } => {
            let info = api.get(&q.path(&topic_path(&name)))?;
            let full = text(&info["name"]);
            let confirm = match confirm {
                Some(c) if c == name => Some(full.clone()),
                other => other,
            };
            crate::confirm::require("topic", &full, confirm.as_deref())?;
            let body = waiting(api, &format!("Destroying topic {full}"), || {
                api.delete(&q.path(&topic_path(&full)))
            })?;
            if api.json {
                return print_json(&body);
            }
            println!(
                "Destroyed topic {} with its records.",
                text(&body["destroyed"])
            );
        }
        TopicsCommand::Retention { name, retention } => {
            let body = waiting(api, "Setting the retention time", || {
                api.patch(
                    &q.path(&topic_path(&name)),
                    json!({ "retention_ms": retention }),
                )
            })?;
            if api.json {
                return print_json(&body);
            }
            println!(
                "Topic {} keeps records for {} ({} ms).",
                text(&body["name"]),
                retention_text(&body["retention_ms"]),
                text(&body["retention_ms"])
            );
        }
        TopicsCommand::Compaction { name, state } => {
            let on = matches!(state, OnOff::On);
            let body = waiting(api, "Setting compaction", || {
                api.patch(&q.path(&topic_path(&name)), json!({ "compaction": on }))
            })?;
            if api.json {
                return print_json(&body);
            }
            println!(
                "Compaction is {} for topic {} (cleanup.policy={}).",
                on_off(&body["compaction"]),
                text(&body["name"]),
                text(&body["cleanup_policy"])
            );
        }
        TopicsCommand::Partitions { name, count } => {
            let body = waiting(api, "Adding partitions", || {
                api.patch(&q.path(&topic_path(&name)), json!({ "partitions": count }))
            })?;
            if api.json {
                return print_json(&body);
            }
            println!(
                "Topic {} now has {} partitions.",
                text(&body["name"]),
                text(&body["partitions"])
            );
        }
        TopicsCommand::Write {
            name,
            message,
            key,
            partition,
        } => topic_records::write(api, &q, &name, message, key, partition)?,
        TopicsCommand::Tail {
            name,
            max_length,
            from_beginning,
            partition,
            count,
            timeout,
        } => topic_records::tail(
            api,
            &q,
            &name,
            TailOptions {
                max_length,
                from_beginning,
                partition,
                count,
                timeout,
            },
        )?,
    }
    Ok(())
}

/// The `?tenant=` query, when given.
pub(crate) struct Query(Option<String>);

impl Query {
    pub(crate) fn path(&self, path: &str) -> String {
        self.with(path, &[])
    }

    pub(crate) fn with(&self, path: &str, params: &[String]) -> String {
        let all: Vec<&str> = self
            .0
            .iter()
            .map(String::as_str)
            .chain(params.iter().map(String::as_str))
            .collect();
        if all.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{}", all.join("&"))
        }
    }
}

pub(crate) fn topic_path(name: &str) -> String {
    format!("/v1/topics/{}", encode_path(name))
}

/// Runs `call` with a spinner on a terminal's stderr.
pub(crate) fn waiting<T>(
    api: &ApiArgs,
    message: &str,
    call: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let spinner = spinner(api, message);
    let out = call();
    spinner.finish_and_clear();
    out
}

/// A spinner on stderr; hidden when stderr is not a terminal (indicatif
/// draws nothing then) and with --json.
pub(crate) fn spinner(api: &ApiArgs, message: &str) -> ProgressBar {
    if api.json {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
        pb.set_style(style);
    }
    pb.set_message(format!("{message}…"));
    pb.enable_steady_tick(Duration::from_millis(100));
    pb
}

fn print_info(body: &Value) {
    let mut t = table(&["FIELD", "VALUE"]);
    t.add_row(vec!["topic".into(), text(&body["name"])]);
    t.add_row(vec!["id".into(), text(&body["id"])]);
    t.add_row(vec!["partitions".into(), text(&body["partitions"])]);
    t.add_row(vec![
        "retention".into(),
        format!(
            "{} ({} ms)",
            retention_text(&body["retention_ms"]),
            text(&body["retention_ms"])
        ),
    ]);
    t.add_row(vec![
        "compaction".into(),
        format!(
            "{} (cleanup.policy={})",
            on_off(&body["compaction"]),
            text(&body["cleanup_policy"])
        ),
    ]);
    t.add_row(vec!["messages".into(), text(&body["messages"])]);
    t.add_row(vec!["data size".into(), bytes(&body["data_size_bytes"])]);
    t.add_row(vec![
        "messages/s in".into(),
        rate(&body["messages_in_per_sec"]),
    ]);
    t.add_row(vec![
        "messages/s out".into(),
        rate(&body["messages_out_per_sec"]),
    ]);
    t.add_row(vec![
        "bytes/s in".into(),
        bytes_rate(&body["bytes_in_per_sec"]),
    ]);
    t.add_row(vec![
        "bytes/s out".into(),
        bytes_rate(&body["bytes_out_per_sec"]),
    ]);
    t.add_row(vec!["created".into(), time(&body["created_ms"])]);
    if let Some(configs) = body["configs"].as_object() {
        for (k, v) in configs {
            t.add_row(vec![format!("config {k}"), text(v)]);
        }
    }
    println!("{t}");
    let mut p = table(&["PARTITION", "LOG START", "HIGH WATERMARK"]);
    for part in body["partition_offsets"].as_array().into_iter().flatten() {
        p.add_row(vec![
            text(&part["partition"]),
            text(&part["log_start"]),
            text(&part["high_watermark"]),
        ]);
    }
    println!("{p}");
}

fn on_off(v: &Value) -> String {
    if v.as_bool() == Some(true) {
        "on"
    } else {
        "off"
    }
    .into()
}

fn rate(v: &Value) -> String {
    format!("{:.1}", v.as_f64().unwrap_or(0.0))
}

fn bytes_rate(v: &Value) -> String {
    format!("{}/s", human_bytes(v.as_f64().unwrap_or(0.0)))
}

fn bytes(v: &Value) -> String {
    human_bytes(v.as_f64().unwrap_or(0.0))
}

fn human_bytes(b: f64) -> String {
    const UNITS: [(&str, f64); 3] = [
        ("GiB", (1u64 << 30) as f64),
        ("MiB", (1u64 << 20) as f64),
        ("KiB", (1u64 << 10) as f64),
    ];
    for (unit, size) in UNITS {
        if b >= size {
            return format!("{:.1} {unit}", b / size);
        }
    }
    format!("{b:.0} B")
}

/// A retention time for people: `forever`, `7 days`, `36 hours`.
fn retention_text(v: &Value) -> String {
    let Some(ms) = v.as_i64() else {
        return text(v);
    };
    if ms < 0 {
        return "forever".into();
    }
    const UNITS: [(&str, i64); 4] = [
        ("day", 86_400_000),
        ("hour", 3_600_000),
        ("minute", 60_000),
        ("second", 1000),
    ];
    for (unit, size) in UNITS {
        if ms >= size && ms % size == 0 {
            let n = ms / size;
            return format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
        }
    }
    format!("{ms} ms")
}

/// `36h`, `7d`, `1 day`, `1.5 days`, `90m`, `30s`, `2w`, `500ms`, or plain
/// milliseconds (`-1`: forever) → milliseconds.
pub fn parse_retention(s: &str) -> Result<i64, String> {
    let t = s.trim();
    if let Ok(ms) = t.parse::<i64>() {
        return if ms >= -1 {
            Ok(ms)
        } else {
            Err(format!("`{s}`: milliseconds must be -1 (forever) or more"))
        };
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("`{s}` is not a duration"))?;
    let (number, unit) = t.split_at(split);
    let number: f64 = number.parse().map_err(|_| {
        format!("`{s}` is not a duration: use e.g. `36h`, `7d`, `1 day` or milliseconds")
    })?;
    let unit_ms: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "ms" | "millisecond" | "milliseconds" => 1.0,
        "s" | "sec" | "secs" | "second" | "seconds" => 1e3,
        "m" | "min" | "mins" | "minute" | "minutes" => 60e3,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600e3,
        "d" | "day" | "days" => 86_400e3,
        "w" | "week" | "weeks" => 604_800e3,
        other => {
            return Err(format!(
                "`{s}`: unknown unit `{other}`; use ms, s, m, h, d or w (e.g. `36h`, `7d`, `1 day`)"
            ))
        }
    };
    let ms = (number * unit_ms).round();
    if !(0.0..=i64::MAX as f64).contains(&ms) {
        return Err(format!("`{s}` is out of range"));
    }
    Ok(ms as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_takes_units_and_milliseconds() {
        assert_eq!(parse_retention("36h"), Ok(129_600_000));
        assert_eq!(parse_retention("7d"), Ok(604_800_000));
        assert_eq!(parse_retention("1 day"), Ok(86_400_000));
        assert_eq!(parse_retention("1.5 days"), Ok(129_600_000));
        assert_eq!(parse_retention("90m"), Ok(5_400_000));
        assert_eq!(parse_retention("2w"), Ok(1_209_600_000));
        assert_eq!(parse_retention("172800000"), Ok(172_800_000));
        assert_eq!(parse_retention("-1"), Ok(-1));
        assert!(parse_retention("-5").is_err());
        assert!(parse_retention("soon").is_err());
        assert!(parse_retention("3 fortnights").is_err());
    }

    #[test]
    fn retention_reads_back() {
        assert_eq!(retention_text(&json!(129_600_000)), "36 hours");
        assert_eq!(retention_text(&json!(604_800_000)), "7 days");
        assert_eq!(retention_text(&json!(172_800_000)), "2 days");
        assert_eq!(retention_text(&json!(-1)), "forever");
        assert_eq!(retention_text(&json!(1500)), "1500 ms");
    }
}
