//! The CLI's client of the control plane's REST API.

use anyhow::{bail, Context};
use clap::Args;
use serde_json::Value;

/// Where the control plane is.
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
    /// Print one JSON document instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

impl ApiArgs {
    /// GETs `path` and returns its JSON body; an API refusal becomes an
    /// error carrying the API's message.
    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        let url = format!("{}{}", self.url.trim_end_matches('/'), path);
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(30)))
            .build()
            .new_agent();
        let mut response = agent.get(&url).call().with_context(|| {
            format!(
                "could not reach Sluice at {}; is it running? (set --url or SLUICE_URL)",
                self.url
            )
        })?;
        let status = response.status();
        let body: Value = response
            .body_mut()
            .read_json()
            .with_context(|| format!("{url} did not answer with JSON"))?;
        if !status.is_success() {
            let message = body["message"].as_str().unwrap_or("no message");
            bail!("{message}");
        }
        Ok(body)
    }
}
