//! `sluice groups list|describe|create|destroy`: consumer groups, their
//! members, assignments, committed offsets and lag, from a running broker;
//! and a tenant's explicit groups.

use clap::Subcommand;
use serde_json::json;

use crate::api::{encode_path, print_json, ApiArgs};
use crate::output::{table, text};

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
    /// Creates a tenant's consumer group (plans with explicit groups need
    /// it before consumers join); the tenant's prefix is added if missing.
    Create {
        name: String,
        #[arg(long)]
        tenant: String,
    },
    /// Deletes a tenant's consumer group and its committed offsets; refused
    /// while it has members.
    Destroy {
        name: String,
        #[arg(long)]
        tenant: String,
        /// The group's name again, to confirm.
        #[arg(long)]
        confirm: Option<String>,
    },
}

pub fn run(command: GroupsCommand, api: &ApiArgs) -> anyhow::Result<()> {
    match command {
        GroupsCommand::Create { name, tenant } => {
            let body = api.post(
                &format!("/v1/tenants/{}/groups", encode_path(&tenant)),
                json!({ "name": name }),
            )?;
            if api.json {
                return print_json(&body);
            }
            println!("Created consumer group {}", text(&body["group"]));
        }
        GroupsCommand::Destroy {
            name,
            tenant,
            confirm,
        } => {
            crate::confirm::require("consumer group", &name, confirm.as_deref())?;
            let body = api.delete(&format!(
                "/v1/tenants/{}/groups/{}",
                encode_path(&tenant),
                encode_path(&name)
            ))?;
            if api.json {
                return print_json(&body);
            }
            println!("Deleted consumer group {}", text(&body["deleted"]));
        }
        GroupsCommand::List => {
            let body = api.get("/v1/groups")?;
            if api.json {
                return print_json(&body);
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
                return print_json(&body);
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
