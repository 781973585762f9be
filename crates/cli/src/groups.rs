//! `sluice groups list|describe`: consumer groups, their members,
//! assignments, committed offsets and lag, from a running broker.

use clap::Subcommand;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde_json::Value;

use crate::api::ApiArgs;

#[derive(Subcommand, Debug)]
pub enum GroupsCommand {
    /// Every consumer group with its state, members and total lag.
    List,
    /// One group: members and their partitions, and per partition the
    /// committed offset, the log end and the lag.
    Describe {
        /// The group id.
        group: String,
    },
}

pub fn run(command: GroupsCommand, api: &ApiArgs) -> anyhow::Result<()> {
    match command {
        GroupsCommand::List => {
            let body = api.get("/v1/groups")?;
            if api.json {
                println!("{}", serde_json::to_string_pretty(&body)?);
                return Ok(());
            }
            let groups = body["groups"].as_array().cloned().unwrap_or_default();
            if groups.is_empty() {
                println!("No consumer groups.");
                return Ok(());
            }
            let mut table = table(&["GROUP", "TYPE", "STATE", "MEMBERS", "LAG"]);
            for g in groups {
                table.add_row(vec![
                    text(&g["group_id"]),
                    text(&g["group_type"]),
                    text(&g["state"]),
                    text(&g["members"]),
                    text(&g["total_lag"]),
                ]);
            }
            println!("{table}");
        }
        GroupsCommand::Describe { group } => {
            let body = api.get(&format!("/v1/groups/{}", encode_path(&group)))?;
            if api.json {
                println!("{}", serde_json::to_string_pretty(&body)?);
                return Ok(());
            }
            println!(
                "Group {} ({}, {}), assignor {}, epoch {}, total lag {}",
                text(&body["group_id"]),
                text(&body["group_type"]),
                text(&body["state"]),
                text(&body["assignor"]),
                text(&body["epoch"]),
                text(&body["total_lag"]),
            );
            let members = body["members"].as_array().cloned().unwrap_or_default();
            if members.is_empty() {
                println!("\nNo members.");
            } else {
                let mut table = table(&["MEMBER", "CLIENT", "HOST", "PARTITIONS"]);
                for m in members {
                    let parts: Vec<String> = m["assignment"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .map(|p| format!("{}-{}", text(&p["topic"]), text(&p["partition"])))
                                .collect()
                        })
                        .unwrap_or_default();
                    table.add_row(vec![
                        text(&m["member_id"]),
                        text(&m["client_id"]),
                        text(&m["client_host"]),
                        parts.join(", "),
                    ]);
                }
                println!("\n{table}");
            }
            let partitions = body["partitions"].as_array().cloned().unwrap_or_default();
            if !partitions.is_empty() {
                let mut table = table(&[
                    "TOPIC",
                    "PARTITION",
                    "COMMITTED",
                    "LOG END",
                    "LAG",
                    "MEMBER",
                ]);
                for p in partitions {
                    table.add_row(vec![
                        text(&p["topic"]),
                        text(&p["partition"]),
                        text(&p["committed_offset"]),
                        text(&p["log_end_offset"]),
                        text(&p["lag"]),
                        text(&p["member_id"]),
                    ]);
                }
                println!("\n{table}");
            }
        }
    }
    Ok(())
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    t
}

/// A JSON value for a table cell: strings bare, null as `-`.
fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Group ids may hold any character; keep the path one segment.
fn encode_path(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
