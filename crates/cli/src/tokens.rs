//! `sluice tokens create|list|revoke`: a tenant's REST API tokens. A tenant
//! token lets the tenant's own people and scripts run `sluice topics`,
//! `sluice groups`, `sluice info` and the like for that tenant alone.

use clap::Subcommand;

use crate::api::{encode_path, print_json, ApiArgs};
use crate::output::{table, text, time};

#[derive(Subcommand, Debug)]
pub enum TokensCommand {
    /// Issues an API token for a tenant (operator only); it is shown once.
    Create {
        #[arg(long)]
        tenant: String,
    },
    /// A tenant's tokens (ids and creation times, never the tokens).
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Revokes a token; it stops working at once.
    Revoke {
        /// The token's id, as `sluice tokens list` shows it.
        id: String,
        #[arg(long)]
        tenant: String,
        /// The id again, to confirm.
        #[arg(long)]
        confirm: Option<String>,
    },
}

pub fn run(command: TokensCommand, api: &ApiArgs) -> anyhow::Result<()> {
    let base = |tenant: &str| format!("/v1/tenants/{}/tokens", encode_path(tenant));
    match command {
        TokensCommand::Create { tenant } => {
            let body = api.post(&base(&tenant), serde_json::json!({}))?;
            if api.json {
                return print_json(&body);
            }
            println!(
                "Created token {} for tenant {}. It is shown only now; use it as --token or SLUICE_TOKEN:\n\n{}",
                text(&body["id"]),
                text(&body["tenant"]),
                text(&body["token"])
            );
        }
        TokensCommand::List { tenant } => {
            let body = api.get(&base(&tenant))?;
            if api.json {
                return print_json(&body);
            }
            let tokens = body["tokens"].as_array().cloned().unwrap_or_default();
            if tokens.is_empty() {
                println!("No tokens.");
                return Ok(());
            }
            let mut t = table(&["ID", "TENANT", "CREATED"]);
            for k in tokens {
                t.add_row(vec![
                    text(&k["id"]),
                    text(&k["tenant"]),
                    time(&k["created_ms"]),
                ]);
            }
            println!("{t}");
        }
        TokensCommand::Revoke {
            id,
            tenant,
            confirm,
        } => {
            crate::confirm::require("token", &id, confirm.as_deref())?;
            let body = api.delete(&format!("{}/{}", base(&tenant), encode_path(&id)))?;
            if api.json {
                return print_json(&body);
            }
            println!("Revoked token {}", text(&body["revoked"]));
        }
    }
    Ok(())
}
