//! The consume benchmark: assigns every partition of the topic at the beginning
//! (no group membership, no commits) and reads until N records or until no
//! record arrived for the idle timeout; reports throughput and the gaps between
//! consecutive records as the consumer's polls return them.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::disk::DiskArgs;
use crate::kafka::{self, ClientArgs, ErrorTally};
use crate::report::{latency_histogram, Latency, Report, Value};

/// Options of `sluice-bench consume`.
#[derive(Args, Debug, Clone)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub client: ClientArgs,

    /// Records to read (default: read until the idle timeout).
    #[arg(long, value_name = "N")]
    pub messages: Option<u64>,

    /// Stop when no record arrived for this long.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub idle_timeout_ms: u64,

    #[command(flatten)]
    pub disk: DiskArgs,
}

/// Consumer context that prints librdkafka's global errors.
struct BenchContext;

impl ClientContext for BenchContext {
    fn error(&self, error: KafkaError, reason: &str) {
        kafka::print_client_error(&error, reason);
    }
}

impl ConsumerContext for BenchContext {}

/// Runs the consume benchmark.
pub fn run(args: &ConsumeArgs) -> anyhow::Result<Report> {
    let topic = args.client.topic.as_str();
    // librdkafka needs a group.id for assign(); it is never joined or committed to.
    let settings = [
        ("group.id", format!("sluice-bench-{}", std::process::id())),
        ("enable.auto.commit", "false".to_string()),
        ("enable.auto.offset.store", "false".to_string()),
        ("enable.partition.eof", "false".to_string()),
        ("auto.offset.reset", "earliest".to_string()),
    ];
    let consumer: BaseConsumer<BenchContext> = args
        .client
        .config(&settings)
        .create_with_context(BenchContext)
        .context("creating the consumer")?;
    let partitions = kafka::wait_for_partitions(consumer.client(), topic)?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer
        .assign(&assignment)
        .context("assigning partitions")?;

    let idle = Duration::from_millis(args.idle_timeout_ms);
    let target = args.messages.unwrap_or(u64::MAX);
    let mut gaps_us = latency_histogram();
    let mut errors = ErrorTally::default();
    let (mut records, mut bytes, mut failed) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    let mut last = start;
    let mut idled = false;
    while records < target {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let now = Instant::now();
                if records > 0 {
                    gaps_us.saturating_record((now - last).as_micros() as u64);
                }
                last = now;
                records += 1;
                bytes += message.payload_len() as u64;
            }
            Some(Err(err)) => {
                failed += 1;
                errors.add(err.to_string());
            }
            None => {}
        }
        if last.elapsed() >= idle {
            idled = true;
            break;
        }
    }

    let mut report = Report::new("consume", topic);
    report.settings = vec![
        ("partitions", Value::from(partitions as u64)),
        ("idle_timeout_ms", Value::from(args.idle_timeout_ms)),
    ];
    report.requested = args.messages;
    report.records = records;
    report.errors = failed;
    report.bytes = bytes;
    // From assignment to the last record; the idle wait is not counted.
    report.elapsed = last - start;
    report.latency =
        Latency::from_histogram("gap between consecutive records", "poll_gap_us", &gaps_us);
    report.error_samples = errors.samples();
    if idled {
        report.note = Some(format!(
            "stopped after {} ms without records",
            args.idle_timeout_ms
        ));
    }
    Ok(report)
}
