//! `sluice credentials create|list|rotate|revoke`: a tenant's SASL
//! credentials (and client certificates when the broker has TLS).

use clap::Subcommand;
use serde_json::{json, Value};

use crate::api::{encode_path, print_json, ApiArgs};
use crate::output::{table, text, time};

#[derive(Subcommand, Debug)]
pub enum CredentialsCommand {
    /// Issues a new credential (username `<tenant>-<name>`); its password
    /// is shown once here.
    Create {
        /// The tenant; a tenant token's own by default.
        #[arg(long)]
        tenant: Option<String>,
        /// The credential's name; generated when left out.
        #[arg(long)]
        name: Option<String>,
    },
    /// A tenant's credentials (never their secrets).
    List {
        /// The tenant; a tenant token's own by default.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Replaces a credential's password (and certificate); the old one
    /// stops working at once.
    Rotate {
        username: String,
        /// The tenant; a tenant token's own by default.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Removes a credential and its ACLs.
    Revoke {
        username: String,
        /// The tenant; a tenant token's own by default.
        #[arg(long)]
        tenant: Option<String>,
        /// The username again, to confirm.
        #[arg(long)]
        confirm: Option<String>,
    },
}

pub fn run(command: CredentialsCommand, api: &ApiArgs) -> anyhow::Result<()> {
    let base = |tenant: &str| format!("/v1/tenants/{}/credentials", encode_path(tenant));
    match command {
        CredentialsCommand::Create { tenant, name } => {
            let tenant = api.require_tenant(tenant)?;
            let req = match name {
                Some(n) => json!({ "name": n }),
                None => json!({}),
            };
            let body = api.post(&base(&tenant), req)?;
            issued(api, "Created", &body)?;
        }
        CredentialsCommand::List { tenant } => {
            let tenant = api.require_tenant(tenant)?;
            let body = api.get(&base(&tenant))?;
            if api.json {
                return print_json(&body);
            }
            let creds = body["credentials"].as_array().cloned().unwrap_or_default();
            if creds.is_empty() {
                println!("No credentials.");
                return Ok(());
            }
            let mut t = table(&["USERNAME", "PRINCIPAL", "CREATED", "CERTIFICATE"]);
            for c in creds {
                t.add_row(vec![
                    text(&c["username"]),
                    text(&c["principal"]),
                    time(&c["created_ms"]),
                    if c["has_certificate"].as_bool() == Some(true) {
                        "yes".into()
                    } else {
                        "no".into()
                    },
                ]);
            }
            println!("{t}");
        }
        CredentialsCommand::Rotate { username, tenant } => {
            let tenant = api.require_tenant(tenant)?;
            let body = api.post(
                &format!("{}/{}/rotate", base(&tenant), encode_path(&username)),
                json!({}),
            )?;
            issued(api, "Rotated", &body)?;
        }
        CredentialsCommand::Revoke {
            username,
            tenant,
            confirm,
        } => {
            let tenant = api.require_tenant(tenant)?;
            crate::confirm::require("credential", &username, confirm.as_deref())?;
            let body = api.delete(&format!("{}/{}", base(&tenant), encode_path(&username)))?;
            if api.json {
                return print_json(&body);
            }
            println!("Revoked credential {}", text(&body["revoked"]));
        }
    }
    Ok(())
}

/// Prints a credential with its secrets (shown once).
fn issued(api: &ApiArgs, verb: &str, body: &Value) -> anyhow::Result<()> {
    if api.json {
        return print_json(body);
    }
    println!(
        "{verb} credential {} for tenant {}. Keep the password: only the tenant's first credential is shown again (by `sluice config`).\n",
        text(&body["username"]),
        text(&body["tenant"])
    );
    let mut t = table(&["FIELD", "VALUE"]);
    t.add_row(vec!["username".into(), text(&body["username"])]);
    t.add_row(vec!["password".into(), text(&body["password"])]);
    println!("{t}");
    for (field, label) in [
        ("client_cert", "Client certificate"),
        ("client_cert_key", "Client key"),
    ] {
        if let Some(pem) = body[field].as_str() {
            println!("\n{label}:\n{}", pem.trim_end());
        }
    }
    Ok(())
}
