//! `sluice wait`: waits until a broker is ready (its HTTP `/healthz`
//! answers and its Kafka listeners accept connections), and optionally
//! until a tenant exists; like `heroku kafka:wait`, for scripts and CI.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::api::{encode_path, print_json, ApiArgs};

#[derive(Args, Debug)]
pub struct WaitArgs {
    /// How long to wait before giving up (exit 1): `90s`, `2m`, `500ms`, or
    /// seconds.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Also wait until this tenant exists.
    #[arg(long)]
    pub tenant: Option<String>,
    /// The Kafka listener to probe (`host:port`, repeatable); by default
    /// the broker's own, from `GET /v1/status`.
    #[arg(long = "kafka-addr")]
    pub kafka_addr: Vec<String>,
}

/// `60s`, `2m`, `500ms`, `1h` or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("`{s}` is not a duration; try 60s, 2m or 500ms"))?;
    let d = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("`{s}` is not a duration; try 60s, 2m or 500ms")),
    };
    Ok(d)
}

/// What we wait for, in order.
enum Stage {
    Http,
    Kafka(Vec<String>),
    Tenant(String),
}

pub fn run(args: WaitArgs, api: &ApiArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let deadline = started + args.timeout;
    let spinner = ProgressBar::new_spinner();
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    spinner.enable_steady_tick(Duration::from_millis(100));
    let mut stage = Stage::Http;
    let mut kafka = args.kafka_addr.clone();
    let mut last = String::new();
    let outcome = loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            break Err(last);
        }
        let step = remaining.min(Duration::from_secs(2));
        let next = match &stage {
            Stage::Http => {
                spinner.set_message(format!("Waiting for Sluice at {}", api.url));
                match api.probe("/healthz", step) {
                    Ok(200) => Some(next_after_http(api, &mut kafka)?),
                    Ok(status) => {
                        last = format!("{}/healthz answered HTTP {status}", api.url);
                        None
                    }
                    Err(e) => {
                        last = format!("{e:#}");
                        None
                    }
                }
            }
            Stage::Kafka(addrs) => {
                spinner.set_message(format!(
                    "Waiting for the Kafka listener {}",
                    addrs.join(", ")
                ));
                match addrs.iter().find(|a| !accepts(a, step)) {
                    Some(a) => {
                        last = format!("the Kafka listener {a} does not accept connections");
                        None
                    }
                    None => Some(match &args.tenant {
                        Some(t) => Stage::Tenant(t.clone()),
                        None => break Ok(()),
                    }),
                }
            }
            Stage::Tenant(t) => {
                spinner.set_message(format!("Waiting for tenant {t}"));
                match api.request(
                    "GET",
                    &format!("/v1/tenants/{}", encode_path(t)),
                    None,
                    step,
                ) {
                    Ok((200, _)) => break Ok(()),
                    Ok((404, body)) => {
                        last = body["message"].as_str().unwrap_or("not found").to_string();
                        None
                    }
                    // 401, 403, 400: waiting will not change it.
                    Ok((_, body)) => {
                        spinner.finish_and_clear();
                        bail!("{}", body["message"].as_str().unwrap_or("refused"));
                    }
                    Err(e) => {
                        last = format!("{e:#}");
                        None
                    }
                }
            }
        };
        match next {
            Some(s) => stage = s,
            None => {
                let pause = deadline
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(200));
                std::thread::sleep(pause);
            }
        }
    };
    spinner.finish_and_clear();
    match outcome {
        Ok(()) => {
            let elapsed = started.elapsed();
            if api.json {
                return print_json(&json!({
                    "ready": true,
                    "url": api.url,
                    "kafka": kafka,
                    "tenant": args.tenant,
                    "elapsed_ms": elapsed.as_millis() as u64,
                }));
            }
            println!(
                "Sluice is ready at {} (Kafka {}{}) after {:.1}s.",
                api.url,
                kafka.join(", "),
                args.tenant
                    .as_deref()
                    .map(|t| format!("; tenant {t} exists"))
                    .unwrap_or_default(),
                elapsed.as_secs_f64()
            );
            Ok(())
        }
        Err(last) => bail!(
            "Sluice was not ready within {:?}: {}",
            args.timeout,
            if last.is_empty() { "no answer" } else { &last }
        ),
    }
}

/// After `/healthz`: the Kafka listeners to probe, given or learnt from
/// `/v1/status`.
fn next_after_http(api: &ApiArgs, kafka: &mut Vec<String>) -> anyhow::Result<Stage> {
    if kafka.is_empty() {
        let status = api.get("/v1/status")?;
        *kafka = status["kafka"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect();
    }
    Ok(Stage::Kafka(kafka.clone()))
}

/// Whether `addr` accepts a TCP connection within `timeout`.
fn accepts(addr: &str, timeout: Duration) -> bool {
    let Ok(resolved) = addr.to_socket_addrs() else {
        return false;
    };
    resolved
        .into_iter()
        .any(|a| TcpStream::connect_timeout(&a, timeout.max(Duration::from_millis(50))).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5x").is_err());
    }
}
