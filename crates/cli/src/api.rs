//! The CLI's client of the control plane's REST API.

use anyhow::{bail, Context};
use clap::Args;
use serde_json::Value;
use std::time::Duration;

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
        let (status, body) = self.request(method, path, body, Duration::from_secs(30))?;
        if !(200..300).contains(&status) {
            let message = body["message"].as_str().unwrap_or("no message");
            bail!("{message}");
        }
        Ok(body)
    }

    /// One request; the HTTP status and the JSON body, whatever the status.
    /// Fails only when the broker cannot be reached or answers no JSON.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        timeout: Duration,
    ) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}{}", self.url.trim_end_matches('/'), path);
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
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
        Ok((status.as_u16(), body))
    }

    /// GETs `path` without a token and returns the HTTP status, whatever
    /// the body (for `/healthz`, which answers plain text).
    pub fn probe(&self, path: &str, timeout: Duration) -> anyhow::Result<u16> {
        let url = format!("{}{}", self.url.trim_end_matches('/'), path);
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .new_agent();
        let response = agent
            .get(&url)
            .call()
            .with_context(|| format!("could not reach Sluice at {}", self.url))?;
        Ok(response.status().as_u16())
    }

    /// `GET /v1/whoami`: the token's role, tenant and the Kafka listeners.
    pub fn whoami(&self) -> anyhow::Result<Value> {
        self.get("/v1/whoami")
    }

    /// The tenant a command acts on: `given`, else a tenant token's own
    /// tenant; `None` for the operator without `--tenant`.
    pub fn tenant_or_own(&self, given: Option<String>) -> anyhow::Result<Option<String>> {
        if given.is_some() {
            return Ok(given);
        }
        let me = self.whoami()?;
        Ok(me["tenant"].as_str().map(str::to_string))
    }

    /// Like [`ApiArgs::tenant_or_own`], for commands that need a tenant:
    /// the operator must name it.
    pub fn require_tenant(&self, given: Option<String>) -> anyhow::Result<String> {
        match self.tenant_or_own(given)? {
            Some(t) => Ok(t),
            None => Err(UsageError(
                "this command acts on one tenant: name it (--tenant NAME; `sluice config NAME`) or use that tenant's token"
                    .into(),
            )
            .into()),
        }
    }
}

/// A command-line mistake found after parsing: exit status 2, like clap's.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

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
