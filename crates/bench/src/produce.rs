//! The produce benchmark: sends N values of exactly SIZE bytes (no keys) through
//! a librdkafka `ThreadedProducer`, spreading them round-robin over the topic's
//! partitions, optionally paced to a fixed rate, and records each record's
//! latency from send to its delivery report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use rdkafka::ClientContext;

use crate::disk::DiskArgs;
use crate::kafka::{self, ClientArgs, ErrorTally};
use crate::payload::{Payloads, Rng};
use crate::report::{latency_histogram, Latency, Report, Value};

/// Options of `sluice-bench produce`.
#[derive(Args, Debug, Clone)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub client: ClientArgs,

    /// Records to produce.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub messages: u64,

    /// Value size in bytes (values are random letters, keys are empty).
    #[arg(long, value_name = "BYTES", default_value_t = 1024)]
    pub size: usize,

    /// Acknowledgements the producer waits for.
    #[arg(long, value_enum, default_value_t = Acks::All)]
    pub acks: Acks,

    /// Partition count for --create; records go round-robin over the topic's actual partitions.
    #[arg(long, value_name = "P", default_value_t = 1)]
    pub partitions: i32,

    /// Create the topic (with --partitions and --replication-factor) first; an existing topic is kept.
    #[arg(long)]
    pub create: bool,

    /// Replication factor for --create.
    #[arg(long, value_name = "R", default_value_t = 1)]
    pub replication_factor: i32,

    /// Pace sends to this many records per second (default: as fast as possible).
    /// Paced latency counts from each record's scheduled send time.
    #[arg(long, value_name = "RECORDS_PER_SEC")]
    pub rate: Option<u64>,

    /// Compression codec of the produced batches.
    #[arg(long, value_enum, default_value_t = Compression::None)]
    pub compression: Compression,

    /// librdkafka linger.ms: how long a batch waits for more records.
    #[arg(long, value_name = "MS", default_value_t = 5)]
    pub linger_ms: u64,

    #[command(flatten)]
    pub disk: DiskArgs,
}

/// The producer's `acks` setting.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// Wait for all in-sync replicas (acks=-1).
    #[value(name = "all", alias = "-1")]
    All,
    /// Wait for the leader only.
    #[value(name = "1")]
    Leader,
    /// Do not wait for the broker.
    #[value(name = "0")]
    None,
}

impl Acks {
    fn as_str(self) -> &'static str {
        match self {
            Acks::All => "all",
            Acks::Leader => "1",
            Acks::None => "0",
        }
    }
}

/// The producer's `compression.type`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Producer context that tallies delivery reports. The delivery opaque is the
/// send time in nanoseconds since `base`.
struct DeliveryStats {
    base: Instant,
    latency_us: Mutex<Histogram<u64>>,
    delivered: AtomicU64,
    failed: AtomicU64,
    errors: Mutex<ErrorTally>,
}

impl DeliveryStats {
    fn nanos_since_base(&self, at: Instant) -> usize {
        at.saturating_duration_since(self.base).as_nanos() as usize
    }

    fn record_failure(&self, message: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.errors.lock().unwrap().add(message);
    }

    fn done(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed)
    }
}

impl ClientContext for DeliveryStats {
    fn error(&self, error: KafkaError, reason: &str) {
        kafka::print_client_error(&error, reason);
    }
}

impl ProducerContext for DeliveryStats {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_nanos: usize) {
        match result {
            Ok(_) => {
                let now = self.nanos_since_base(Instant::now());
                let micros = now.saturating_sub(sent_nanos) as u64 / 1_000;
                self.latency_us.lock().unwrap().saturating_record(micros);
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((err, _)) => self.record_failure(err.to_string()),
        }
    }
}

/// Runs the produce benchmark.
pub fn run(args: &ProduceArgs) -> anyhow::Result<Report> {
    if args.rate == Some(0) {
        bail!("--rate must be positive");
    }
    if args.create {
        kafka::create_topic(&args.client, args.partitions, args.replication_factor)?;
    }
    let settings = [
        ("acks", args.acks.as_str().to_string()),
        ("compression.type", args.compression.as_str().to_string()),
        ("linger.ms", args.linger_ms.to_string()),
        // Batch up to ~1 MB and queue generously, so the client is not the bottleneck.
        ("batch.size", "1000000".to_string()),
        ("batch.num.messages", "1000000".to_string()),
        ("queue.buffering.max.messages", "1000000".to_string()),
        ("queue.buffering.max.kbytes", "1048576".to_string()),
    ];
    let stats = DeliveryStats {
        base: Instant::now(),
        latency_us: Mutex::new(latency_histogram()),
        delivered: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        errors: Mutex::new(ErrorTally::default()),
    };
    let producer: ThreadedProducer<DeliveryStats> = args
        .client
        .config(&settings)
        .create_with_context(stats)
        .context("creating the producer")?;
    // Also connects to the brokers, so setup stays out of the measurement.
    let partitions = kafka::wait_for_partitions(producer.client(), &args.client.topic)?;
    if args.create && partitions != args.partitions {
        eprintln!(
            "sluice-bench: topic {} already has {partitions} partitions (asked for {})",
            args.client.topic, args.partitions
        );
    }
    let payloads = Payloads::new(args.size, &mut Rng::from_clock());
    let stats = producer.context();
    let topic = args.client.topic.as_str();

    let start = Instant::now();
    for i in 0..args.messages {
        let sent_at = match args.rate {
            Some(rate) => {
                let due = start
                    + Duration::from_nanos(
                        (u128::from(i) * 1_000_000_000 / u128::from(rate)) as u64,
                    );
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                due
            }
            None => Instant::now(),
        };
        let mut record =
            BaseRecord::<(), [u8], usize>::with_opaque_to(topic, stats.nanos_since_base(sent_at))
                .partition((i % partitions as u64) as i32)
                .payload(payloads.get(i));
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err((err, _)) => {
                    stats.record_failure(err.to_string());
                    break;
                }
            }
        }
    }
    producer
        .flush(Timeout::Never)
        .context("flushing the producer")?;
    // flush returns once every delivery report has been dequeued; the polling
    // thread may still be inside the last callbacks.
    while stats.done() < args.messages {
        std::thread::sleep(Duration::from_micros(100));
    }
    let elapsed = start.elapsed();

    let delivered = stats.delivered.load(Ordering::Relaxed);
    let mut report = Report::new("produce", topic);
    report.settings = vec![
        ("partitions", Value::from(partitions as u64)),
        ("size", Value::from(args.size as u64)),
        ("acks", Value::from(args.acks.as_str())),
        ("compression", Value::from(args.compression.as_str())),
        ("linger_ms", Value::from(args.linger_ms)),
        ("rate", Value::from(args.rate)),
    ];
    report.requested = Some(args.messages);
    report.records = delivered;
    report.errors = stats.failed.load(Ordering::Relaxed);
    report.bytes = delivered * args.size as u64;
    report.elapsed = elapsed;
    report.latency = Latency::from_histogram(
        "send to delivery report",
        "latency_us",
        &stats.latency_us.lock().unwrap(),
    );
    report.error_samples = stats.errors.lock().unwrap().samples();
    Ok(report)
}
