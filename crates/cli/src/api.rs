//! The CLI's client of the control plane's REST API.

use anyhow::{bail, Context};
use clap::Args;
use serde_json::Value;

/// Where the control plane is, and the token to call it with.
#[derive(Args, Debug, Clone)]
pub struct ApiArgs {
    /// The broker's HTTP address.
    #[arg(
        long,
        env = "SLUICE_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// The operator token (printed by `sluice dev --multi-tenant`, saved in
    /// <data-dir>/operator.token), or a tenant API token (`sluice tokens
    /// create`), which sees only its tenant.
    #[arg(long, env = "SLUICE_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Print one JSON document instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

impl ApiArgs {
    /// GETs `path` and returns its JSON body; an API refusal becomes an
    /// error carrying the API's message.
    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call("GET", path, None)
    }

    pub fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.call("POST", path, Some(body))
    }

    pub fn patch(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.call("PATCH", path, Some(body))
    }

    pub fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.call("DELETE", path, None)
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}{}", self.url.trim_end_matches('/'), path);
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(30)))
            .build()
            .new_agent();
        let auth = self.token.as_ref().map(|t| format!("Bearer {}", t.trim()));
        let sent = match (method, body) {
            ("POST" | "PATCH", body) => {
                let mut req = if method == "PATCH" {
                    agent.patch(&url)
                } else {
                    agent.post(&url)
                };
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.send_json(body.unwrap_or_else(|| Value::Object(Default::default())))
            }
            ("DELETE", _) => {
                let mut req = agent.delete(&url);
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.call()
            }
            _ => {
                let mut req = agent.get(&url);
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.call()
            }
        };
        let mut response = sent.with_context(|| {
            format!(
                "could not reach Sluice at {}; is it running? (set --url or SLUICE_URL)",
                self.url
            )
        })?;
        let status = response.status();
        let body: Value = response
            .body_mut()
            .read_json()
            .with_context(|| format!("{url} did not answer with JSON (HTTP {status})"))?;
        if !status.is_success() {
            let message = body["message"].as_str().unwrap_or("no message");
            bail!("{message}");
        }
        Ok(body)
    }
}

/// Keeps a user-given name one path segment.
pub fn encode_path(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Prints `body` as one JSON document.
pub fn print_json(body: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(body)?);
    Ok(())
}
