//! `sluice dev` settings: command-line flags over a TOML config file over
//! defaults.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::Deserialize;

#[derive(Args, Debug, Default)]
pub struct DevArgs {
    /// TOML file with any of the settings below (flags win).
    #[arg(long, env = "SLUICE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the catalog and objects live by default [default: ./sluice-data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Kafka listener [default: 127.0.0.1:9092].
    #[arg(long)]
    pub kafka_addr: Option<String>,
    /// HTTP listener for /healthz and /metrics [default: 127.0.0.1:8080].
    #[arg(long)]
    pub http_addr: Option<String>,
    /// Catalog database: sqlite://PATH or postgres://USER@HOST:PORT/DB
    /// [default: sqlite://DATA_DIR/catalog.db].
    #[arg(long)]
    pub catalog: Option<String>,
    /// Object store: file://DIR or memory:// [default: file://DATA_DIR/objects].
    #[arg(long)]
    pub objects: Option<String>,
    /// Largest request accepted, in bytes [default: 104857600].
    #[arg(long)]
    pub max_request_bytes: Option<usize>,
    /// Host name clients are told to connect to [default: the Kafka
    /// listener's address].
    #[arg(long)]
    pub advertised_host: Option<String>,
    /// Partitions of auto-created topics [default: 1].
    #[arg(long)]
    pub num_partitions: Option<i32>,
    /// How often retention, object collection and producer state expiry
    /// run, in ms [default: 30000].
    #[arg(long)]
    pub maintenance_interval_ms: Option<u64>,
    /// Kafka's `producer.id.expiration.ms`: how long a partition keeps an
    /// idempotent producer's state after its last write there [default:
    /// 86400000, a day].
    #[arg(long)]
    pub producer_id_expiration_ms: Option<u64>,
    /// Kafka's `group.initial.rebalance.delay.ms`: how long the first
    /// rebalance of an empty classic group waits for more members [default: 3000].
    #[arg(long)]
    pub group_initial_rebalance_delay_ms: Option<u64>,
    /// Kafka's `group.consumer.heartbeat.interval.ms` for consumer-protocol
    /// (KIP-848) groups [default: 5000].
    #[arg(long)]
    pub group_consumer_heartbeat_interval_ms: Option<u64>,
    /// Kafka's `group.consumer.session.timeout.ms` [default: 45000].
    #[arg(long)]
    pub group_consumer_session_timeout_ms: Option<u64>,
    /// Serve tenants: clients must authenticate (SASL PLAIN or SCRAM on the
    /// Kafka listener; mTLS or SASL on the TLS listener) and each sees only
    /// its own topics and groups.
    #[arg(long)]
    pub multi_tenant: bool,
    /// TOML file of plans that add to or replace the built-in ones.
    #[arg(long)]
    pub plans: Option<PathBuf>,
    /// A principal (`User:NAME`) that operates everything, besides the
    /// operator; may be repeated.
    #[arg(long = "superuser")]
    pub superusers: Vec<String>,
    /// TLS Kafka listener, with --multi-tenant: mTLS or SASL_SSL [default:
    /// the Kafka listener's host, its port + 1].
    #[arg(long)]
    pub kafka_tls_addr: Option<String>,
    /// Another name or address the broker certificate is valid for, besides
    /// the advertised host, localhost, 127.0.0.1, ::1 and the machine's
    /// hostname; may be repeated.
    #[arg(long = "tls-san")]
    pub tls_sans: Vec<String>,
}

/// The same settings in a config file.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    data_dir: Option<PathBuf>,
    kafka_addr: Option<String>,
    http_addr: Option<String>,
    catalog: Option<String>,
    objects: Option<String>,
    max_request_bytes: Option<usize>,
    advertised_host: Option<String>,
    num_partitions: Option<i32>,
    maintenance_interval_ms: Option<u64>,
    producer_id_expiration_ms: Option<u64>,
    group_initial_rebalance_delay_ms: Option<u64>,
    group_consumer_heartbeat_interval_ms: Option<u64>,
    group_consumer_session_timeout_ms: Option<u64>,
    multi_tenant: Option<bool>,
    plans: Option<PathBuf>,
    superusers: Option<Vec<String>>,
    kafka_tls_addr: Option<String>,
    tls_sans: Option<Vec<String>>,
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct DevConfig {
    pub data_dir: PathBuf,
    pub kafka_addr: String,
    pub http_addr: String,
    pub catalog: String,
    pub objects: String,
    pub max_request_bytes: usize,
    pub advertised_host: Option<String>,
    pub num_partitions: i32,
    pub maintenance_interval_ms: u64,
    pub producer_id_expiration_ms: u64,
    pub group_initial_rebalance_delay_ms: u64,
    pub group_consumer_heartbeat_interval_ms: u64,
    pub group_consumer_session_timeout_ms: u64,
    pub multi_tenant: bool,
    pub plans: Option<PathBuf>,
    pub superusers: Vec<String>,
    /// Where the TLS listener binds (used only with `multi_tenant`).
    pub kafka_tls_addr: String,
    pub tls_sans: Vec<String>,
}

impl DevArgs {
    pub fn resolve(self) -> anyhow::Result<DevConfig> {
        let file: FileConfig = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("parsing config file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let data_dir = self
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("sluice-data"));
        let catalog = self
            .catalog
            .or(file.catalog)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("catalog.db").display()));
        let objects = self
            .objects
            .or(file.objects)
            .unwrap_or_else(|| format!("file://{}", data_dir.join("objects").display()));
        let num_partitions = self.num_partitions.or(file.num_partitions).unwrap_or(1);
        anyhow::ensure!(num_partitions >= 1, "num-partitions must be at least 1");
        let max_request_bytes = self
            .max_request_bytes
            .or(file.max_request_bytes)
            .unwrap_or(100 << 20);
        anyhow::ensure!(
            (1024..=i32::MAX as usize).contains(&max_request_bytes),
            "max-request-bytes must be between 1024 and {}",
            i32::MAX
        );
        let group_consumer_heartbeat_interval_ms = self
            .group_consumer_heartbeat_interval_ms
            .or(file.group_consumer_heartbeat_interval_ms)
            .unwrap_or(5000);
        let group_consumer_session_timeout_ms = self
            .group_consumer_session_timeout_ms
            .or(file.group_consumer_session_timeout_ms)
            .unwrap_or(45_000);
        anyhow::ensure!(
            group_consumer_heartbeat_interval_ms >= 1
                && group_consumer_heartbeat_interval_ms < group_consumer_session_timeout_ms,
            "group-consumer-heartbeat-interval-ms must be positive and below group-consumer-session-timeout-ms"
        );
        let kafka_addr = self
            .kafka_addr
            .or(file.kafka_addr)
            .unwrap_or_else(|| "127.0.0.1:9092".into());
        let kafka_tls_addr = match self.kafka_tls_addr.or(file.kafka_tls_addr) {
            Some(addr) => addr,
            None => next_port(&kafka_addr)?,
        };
        Ok(DevConfig {
            data_dir,
            kafka_addr,
            kafka_tls_addr,
            tls_sans: if self.tls_sans.is_empty() {
                file.tls_sans.unwrap_or_default()
            } else {
                self.tls_sans
            },
            http_addr: self
                .http_addr
                .or(file.http_addr)
                .unwrap_or_else(|| "127.0.0.1:8080".into()),
            catalog,
            objects,
            max_request_bytes,
            advertised_host: self.advertised_host.or(file.advertised_host),
            num_partitions,
            maintenance_interval_ms: self
                .maintenance_interval_ms
                .or(file.maintenance_interval_ms)
                .unwrap_or(30_000),
            producer_id_expiration_ms: self
                .producer_id_expiration_ms
                .or(file.producer_id_expiration_ms)
                .unwrap_or(86_400_000),
            group_initial_rebalance_delay_ms: self
                .group_initial_rebalance_delay_ms
                .or(file.group_initial_rebalance_delay_ms)
                .unwrap_or(3000),
            group_consumer_heartbeat_interval_ms,
            group_consumer_session_timeout_ms,
            multi_tenant: self.multi_tenant || file.multi_tenant.unwrap_or(false),
            plans: self.plans.or(file.plans),
            superusers: if self.superusers.is_empty() {
                file.superusers.unwrap_or_default()
            } else {
                self.superusers
            },
        })
    }
}

/// The TLS listener's default: the Kafka listener's host, its port + 1
/// (port 0, any free port, stays 0).
fn next_port(kafka_addr: &str) -> anyhow::Result<String> {
    let (host, port) = kafka_addr
        .rsplit_once(':')
        .with_context(|| format!("kafka address `{kafka_addr}` is not HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .with_context(|| format!("kafka address `{kafka_addr}` has no valid port"))?;
    let tls_port = match port {
        0 => 0,
        p => p.checked_add(1).with_context(|| {
            format!("kafka port {p} has no next port for TLS; set --kafka-tls-addr")
        })?,
    };
    Ok(format!("{host}:{tls_port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.toml");
        std::fs::write(&path, "kafka-addr = \"127.0.0.1:1234\"\nhttp-addr = \"127.0.0.1:5678\"\ndata-dir = \"/tmp/x\"\n").unwrap();
        let c = DevArgs {
            config: Some(path.clone()),
            http_addr: Some("127.0.0.1:9999".into()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(c.kafka_addr, "127.0.0.1:1234");
        assert_eq!(c.http_addr, "127.0.0.1:9999");
        assert_eq!(c.catalog, "sqlite:///tmp/x/catalog.db");
        assert_eq!(c.objects, "file:///tmp/x/objects");
        assert_eq!(c.kafka_tls_addr, "127.0.0.1:1235");

        std::fs::write(&path, "no-such-setting = 1\n").unwrap();
        let e = DevArgs {
            config: Some(path),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(format!("{e:#}").contains("no-such-setting"));
    }

    #[test]
    fn tls_settings_come_from_flags_or_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.toml");
        std::fs::write(
            &path,
            "kafka-addr = \"[::1]:0\"\ntls-sans = [\"kafka.example\"]\n",
        )
        .unwrap();
        let c = DevArgs {
            config: Some(path.clone()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(c.kafka_tls_addr, "[::1]:0");
        assert_eq!(c.tls_sans, vec!["kafka.example".to_string()]);
        let c = DevArgs {
            config: Some(path),
            kafka_tls_addr: Some("0.0.0.0:9443".into()),
            tls_sans: vec!["a.example".into(), "10.0.0.7".into()],
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(c.kafka_tls_addr, "0.0.0.0:9443");
        assert_eq!(c.tls_sans.len(), 2);
    }
}
