//! librdkafka plumbing shared by the subcommands: connection options, client
//! configuration, topic creation through the AdminClient, waiting for a topic's
//! metadata, and a short tally of error messages.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{Client, DefaultClientContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, ClientContext};

/// How long to wait for a topic's metadata (after creating it, or at start).
const METADATA_WAIT: Duration = Duration::from_secs(15);

/// Distinct error messages kept for the report.
const MAX_ERROR_SAMPLES: usize = 8;

/// Connection options shared by all subcommands.
#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    /// Bootstrap servers, host:port[,host:port...].
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9092")]
    pub bootstrap: String,

    /// Topic to produce to or consume from.
    #[arg(long, value_name = "TOPIC", default_value = "sluice-bench")]
    pub topic: String,

    /// Extra librdkafka property, applied after the benchmark's own (repeatable).
    #[arg(short = 'X', long = "property", value_name = "KEY=VALUE", value_parser = parse_property)]
    pub properties: Vec<(String, String)>,
}

fn parse_property(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

impl ClientArgs {
    /// A client config with the bootstrap servers and then `settings`, then the
    /// `-X` overrides.
    pub fn config(&self, settings: &[(&str, String)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        for (key, value) in settings {
            config.set(*key, value);
        }
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

/// Creates the topic with `partitions` partitions; an existing topic is fine.
pub fn create_topic(args: &ClientArgs, partitions: i32, replication: i32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = args
        .config(&[])
        .create()
        .context("creating the admin client")?;
    let topic = NewTopic::new(
        &args.topic,
        partitions,
        TopicReplication::Fixed(replication),
    );
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let results = runtime
        .block_on(admin.create_topics([&topic], &options))
        .context("CreateTopics request")?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("creating topic {name}: {code}"),
        }
    }
    Ok(())
}

/// Waits until the broker reports the topic with at least one partition and
/// returns its partition count.
pub fn wait_for_partitions<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
) -> anyhow::Result<i32> {
    let deadline = Instant::now() + METADATA_WAIT;
    loop {
        let last_error = match client.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            Ok(metadata) => match metadata.topics().iter().find(|t| t.name() == topic) {
                Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                    return Ok(t.partitions().len() as i32);
                }
                Some(t) => match t.error() {
                    Some(code) => RDKafkaErrorCode::from(code).to_string(),
                    None => "no partitions".to_string(),
                },
                None => "not in metadata".to_string(),
            },
            Err(err) => err.to_string(),
        };
        if Instant::now() >= deadline {
            bail!(
                "topic {topic} not available after {}s: {last_error} (create it, e.g. with `produce --create`)",
                METADATA_WAIT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Prints a librdkafka global error (connection failures and the like) to stderr.
pub fn print_client_error(error: &KafkaError, reason: &str) {
    eprintln!("sluice-bench: librdkafka: {error}: {reason}");
}

/// Counts of distinct error messages, the first few kept.
#[derive(Debug, Default)]
pub struct ErrorTally {
    counts: HashMap<String, u64>,
    other: u64,
}

impl ErrorTally {
    pub fn add(&mut self, message: String) {
        if let Some(count) = self.counts.get_mut(&message) {
            *count += 1;
        } else if self.counts.len() < MAX_ERROR_SAMPLES {
            self.counts.insert(message, 1);
        } else {
            self.other += 1;
        }
    }

    /// The tallied messages, most frequent first.
    pub fn samples(&self) -> Vec<(String, u64)> {
        let mut samples: Vec<_> = self.counts.iter().map(|(m, c)| (m.clone(), *c)).collect();
        samples.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        if self.other > 0 {
            samples.push(("(other errors)".to_string(), self.other));
        }
        samples
    }
}
