//! `sluice topics write|tail`: a topic's records through the REST API
//! (`/v1/topics/{topic}/records`). `TopicsCommand` in `topics` parses the
//! arguments and calls these.

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::api::{print_json, ApiArgs};
use crate::output::text;
use crate::topics::{parse_retention, spinner, topic_path, waiting, Query};

/// `topics write`: writes one record.
pub(crate) fn write(
    api: &ApiArgs,
    q: &Query,
    name: &str,
    message: String,
    key: Option<String>,
    partition: Option<i32>,
) -> anyhow::Result<()> {
    let mut req = json!({ "value": message });
    if let Some(k) = key {
        req["key"] = k.into();
    }
    if let Some(p) = partition {
        req["partition"] = p.into();
    }
    let body = waiting(api, "Writing", || {
        api.post(&q.path(&format!("{}/records", topic_path(name))), req)
    })?;
    if api.json {
        return print_json(&body);
    }
    println!(
        "Wrote to {} partition {} at offset {}.",
        text(&body["topic"]),
        text(&body["partition"]),
        text(&body["offset"])
    );
    Ok(())
}

/// `topics tail`'s options, as `TopicsCommand::Tail` documents them.
pub(crate) struct TailOptions {
    pub(crate) max_length: Option<usize>,
    pub(crate) from_beginning: bool,
    pub(crate) partition: Option<i32>,
    pub(crate) count: Option<usize>,
    pub(crate) timeout: Option<Duration>,
}

/// `topics tail`: polls each partition's records from the start or the end.
pub(crate) fn tail(api: &ApiArgs, q: &Query, name: &str, o: TailOptions) -> anyhow::Result<()> {
    if api.json && o.count.is_none() && o.timeout.is_none() {
        eprintln!("error: `topics tail --json` prints one document at the end: give --count or --timeout so that it ends");
        std::process::exit(2);
    }
    let info = api.get(&q.path(&topic_path(name)))?;
    let full = text(&info["name"]);
    let path = topic_path(&full);
    let mut positions: Vec<(i64, i64)> = info["partition_offsets"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| {
                    let partition = p["partition"].as_i64()?;
                    let at = if o.from_beginning {
                        p["log_start"].as_i64()?
                    } else {
                        p["high_watermark"].as_i64()?
                    };
                    Some((partition, at))
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(p) = o.partition {
        positions.retain(|(partition, _)| *partition == p as i64);
        if positions.is_empty() {
            bail!(
                "topic `{full}` has no partition {p} (it has {})",
                text(&info["partitions"])
            );
        }
    }
    let deadline = o.timeout.map(|t| Instant::now() + t);
    let spinner = spinner(api, &format!("Waiting for records on {full}"));
    let mut seen = 0usize;
    let mut collected = Vec::new();
    let stdout = std::io::stdout();
    'polling: loop {
        let mut any = false;
        for (partition, offset) in positions.iter_mut() {
            let left = o.count.map_or(1000, |c| c - seen).clamp(1, 1000);
            let page = api
                .get(&q.with(
                    &format!("{path}/records"),
                    &[
                        format!("partition={partition}"),
                        format!("offset={offset}"),
                        format!("limit={left}"),
                    ],
                ))
                .with_context(|| format!("reading {full} partition {partition}"))?;
            if let Some(next) = page["next_offset"].as_i64() {
                *offset = next;
            }
            for r in page["records"].as_array().into_iter().flatten() {
                any = true;
                seen += 1;
                if api.json {
                    collected.push(r.clone());
                } else {
                    let line = tail_line(r, o.max_length);
                    spinner.suspend(|| {
                        let mut out = stdout.lock();
                        let _ = writeln!(out, "{line}");
                        let _ = out.flush();
                    });
                }
                if o.count.is_some_and(|c| seen >= c) {
                    break 'polling;
                }
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if !any {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    spinner.finish_and_clear();
    if api.json {
        print_json(&json!({ "records": collected }))?;
    }
    if let (Some(c), Some(t)) = (o.count, o.timeout) {
        if seen < c {
            bail!(
                "only {seen} of {c} records arrived within {} s",
                t.as_secs_f64()
            );
        }
    }
    Ok(())
}

/// `topic partition offset length value`, the value cut to `max_length`
/// characters, control characters escaped (`\n`), and `base64:` before a
/// value that is not UTF-8 text.
fn tail_line(r: &Value, max_length: Option<usize>) -> String {
    let value = match (&r["value"], r["value_encoding"].as_str()) {
        (Value::Null, _) => "null".to_string(),
        (v, Some("base64")) => format!("base64:{}", text(v)),
        (v, _) => text(v),
    };
    let value: String = match max_length {
        Some(n) => value.chars().take(n).collect(),
        None => value,
    };
    let value: String = value
        .chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect();
    format!(
        "{} {} {} {} {}",
        text(&r["topic"]),
        text(&r["partition"]),
        text(&r["offset"]),
        text(&r["length"]),
        value
    )
}

/// `10s`, `2m`, or milliseconds, as for a retention time, but not negative.
pub(crate) fn parse_timeout(s: &str) -> Result<Duration, String> {
    match parse_retention(s)? {
        ms if ms >= 0 => Ok(Duration::from_millis(ms as u64)),
        _ => Err(format!("`{s}`: a timeout cannot be negative")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_lines_cut_and_escape_values() {
        let r = json!({"topic": "a.t", "partition": 0, "offset": 7, "length": 11,
                       "value": "hello\nworld", "value_encoding": "utf8"});
        assert_eq!(tail_line(&r, None), "a.t 0 7 11 hello\\nworld");
        assert_eq!(tail_line(&r, Some(4)), "a.t 0 7 11 hell");
        let b = json!({"topic": "t", "partition": 1, "offset": 0, "length": 2,
                       "value": "/wA=", "value_encoding": "base64"});
        assert_eq!(tail_line(&b, None), "t 1 0 2 base64:/wA=");
    }
}
