//! `sluice groups list|describe|create|destroy`: consumer groups, their
//! members, assignments, committed offsets and lag, from a running broker;
//! and a tenant's explicit groups.

use clap::Subcommand;
use serde_json::json;

use crate::api::{encode_path, print_json, ApiArgs};
use crate::output::{table, text};

#[derive(Subcommand, Debug)]
pub enum GroupsCommand {
    /// Consumer groups with their state, members and total lag: a tenant
    /// token's own, or (operator) every tenant's or one's with --tenant.
    List {
        /// Only this tenant's groups.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// One group: members and their partitions, and per partition the
    /// committed offset, the log end and the lag.
    Describe {
        /// The group id; a tenant's prefix is added when missing.
        group: String,
        /// The tenant whose prefix a bare name gets (a tenant token's own
        /// by default).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Creates a tenant's consumer group (plans with explicit groups need
    /// it before consumers join); the tenant's prefix is added if missing.
    Create {
        name: String,
        /// The tenant; a tenant token's own by default.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Deletes a tenant's consumer group and its committed offsets; refused
    /// while it has members.
    Destroy {
        name: String,
        /// The tenant; a tenant token's own by default.
        #[arg(long)]
        tenant: Option<String>,
        /// The group's name again (with or without the prefix), to confirm.
        #[arg(long)]
        confirm: Option<String>,
    },
}

/// `name` with the tenant's prefix, as the API will name it.
fn full_name(tenant: &str, name: &str) -> String {
    let prefix = sluice_tenancy::names::prefix(tenant);
    if name.starts_with(&prefix) {
        name.to_string()
    } else {
        format!("{prefix}{name}")
    }
}

fn tenant_query(tenant: &Option<String>) -> String {
    tenant
        .as_deref()
        .map(|t| format!("?tenant={}", encode_path(t)))
        .unwrap_or_default()
}

pub fn run(command: GroupsCommand, api: &ApiArgs) -> anyhow::Result<()> {
    match command {
        GroupsCommand::Create { name, tenant } => {
            let tenant = api.require_tenant(tenant)?;
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
            let tenant = api.require_tenant(tenant)?;
            let full = full_name(&tenant, &name);
            if confirm.as_deref() != Some(full.as_str()) {
                crate::confirm::require("consumer group", &name, confirm.as_deref())?;
            }
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
        GroupsCommand::List { tenant } => {
            let body = api.get(&format!("/v1/groups{}", tenant_query(&tenant)))?;
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
        GroupsCommand::Describe { group, tenant } => {
            let body = api.get(&format!(
                "/v1/groups/{}{}",
                encode_path(&group),
                tenant_query(&tenant)
            ))?;
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
