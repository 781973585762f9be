//! `sluice tenants create|list|info|plan|destroy` and `sluice config NAME`:
//! tenants of a multi-tenant broker and their connection config.

use clap::Subcommand;
use serde_json::{json, Value};

use crate::api::{encode_path, print_json, ApiArgs};
use crate::output::{env_lines, table, text, time};

#[derive(Subcommand, Debug)]
pub enum TenantsCommand {
    /// Creates a tenant with its first credential and prints its config.
    Create {
        /// The tenant's name (lower-case letters, digits, `-`); generated
        /// when left out.
        name: Option<String>,
        /// The plan (see plans.toml); basic-0 when left out.
        #[arg(long)]
        plan: Option<String>,
    },
    /// Every tenant with its plan and prefix.
    List,
    /// One tenant with what it uses.
    Info { name: String },
    /// Moves a tenant to another plan in place: its topics, data, offsets
    /// and credentials stay, the new limits and rates apply at once.
    Plan {
        name: String,
        /// The new plan.
        plan: String,
    },
    /// Deletes a tenant with its topics, groups, credentials and ACLs.
    Destroy {
        name: String,
        /// The tenant's name again, to confirm.
        #[arg(long)]
        confirm: Option<String>,
    },
}

pub fn run(command: TenantsCommand, api: &ApiArgs) -> anyhow::Result<()> {
    match command {
        TenantsCommand::Create { name, plan } => {
            let mut req = json!({});
            if let Some(n) = name {
                req["name"] = n.into();
            }
            if let Some(p) = plan {
                req["plan"] = p.into();
            }
            let body = api.post("/v1/tenants", req)?;
            if api.json {
                return print_json(&body);
            }
            let t = &body["tenant"];
            println!(
                "Created tenant {} on plan {} (topics and groups start with `{}`).\n",
                text(&t["name"]),
                text(&t["plan"]),
                text(&t["prefix"])
            );
            print!("{}", env_lines(&body["config"]));
        }
        TenantsCommand::List => {
            let body = api.get("/v1/tenants")?;
            if api.json {
                return print_json(&body);
            }
            let tenants = body["tenants"].as_array().cloned().unwrap_or_default();
            if tenants.is_empty() {
                println!("No tenants.");
                return Ok(());
            }
            let mut t = table(&["TENANT", "PLAN", "PREFIX", "CREATED"]);
            for tenant in tenants {
                t.add_row(vec![
                    text(&tenant["name"]),
                    text(&tenant["plan"]),
                    text(&tenant["prefix"]),
                    time(&tenant["created_ms"]),
                ]);
            }
            println!("{t}");
        }
        TenantsCommand::Info { name } => {
            let body = api.get(&format!("/v1/tenants/{}", encode_path(&name)))?;
            if api.json {
                return print_json(&body);
            }
            let mut t = table(&["FIELD", "VALUE"]);
            t.add_row(vec!["tenant".into(), text(&body["name"])]);
            t.add_row(vec!["plan".into(), text(&body["plan"])]);
            t.add_row(vec!["prefix".into(), text(&body["prefix"])]);
            t.add_row(vec!["created".into(), time(&body["created_ms"])]);
            if let Some(usage) = body["usage"].as_object() {
                for (k, v) in usage {
                    t.add_row(vec![k.replace('_', " "), text(v)]);
                }
            }
            println!("{t}");
        }
        TenantsCommand::Plan { name, plan } => {
            let body = api.patch(
                &format!("/v1/tenants/{}", encode_path(&name)),
                json!({ "plan": plan }),
            )?;
            if api.json {
                return print_json(&body);
            }
            println!(
                "Tenant {} is now on plan {}.",
                text(&body["name"]),
                text(&body["plan"])
            );
        }
        TenantsCommand::Destroy { name, confirm } => {
            crate::confirm::require("tenant", &name, confirm.as_deref())?;
            let body = api.delete(&format!("/v1/tenants/{}", encode_path(&name)))?;
            if api.json {
                return print_json(&body);
            }
            println!(
                "Destroyed tenant {} with its topics, groups, credentials and ACLs.",
                text(&body["destroyed"])
            );
        }
    }
    Ok(())
}

/// `sluice config NAME`: the tenant's config vars as `KEY=value` lines.
pub fn config(name: &str, api: &ApiArgs) -> anyhow::Result<()> {
    let body: Value = api.get(&format!("/v1/tenants/{}/config", encode_path(name)))?;
    if api.json {
        return print_json(&body);
    }
    print!("{}", env_lines(&body));
    Ok(())
}
