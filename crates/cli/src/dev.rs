//! `sluice dev`: one process with the Kafka listener, the HTTP listener and
//! embedded storage. Ctrl-C or SIGTERM stops accepting, lets the last group
//! commit finish, and exits.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusBuilder;
use sluice_broker::groups::GroupConfig;
use sluice_broker::{BrokerConfig, BrokerContext, Listener, Server};
use sluice_storage::{Storage, StorageOptions};
use sluice_tenancy::pki::Pki;
use sluice_tenancy::{OperatorCredential, Plans, Sealer, Tenancy, TenancyOptions};
use tokio::sync::watch;

use crate::config::DevConfig;
use crate::tls;

pub async fn run(config: DevConfig) -> anyhow::Result<()> {
    let metrics = PrometheusBuilder::new()
        // Every histogram is a latency in seconds.
        .set_buckets(&[
            0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0,
        ])
        .context("configuring metrics")?
        .install_recorder()
        .context("installing the metrics recorder")?;

    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let mut opts = StorageOptions::new(config.catalog.clone(), config.objects.clone());
    opts.maintenance_interval = Duration::from_millis(config.maintenance_interval_ms.max(100));
    opts.producer_id_expiration_ms = i64::try_from(config.producer_id_expiration_ms)
        .ok()
        .filter(|ms| *ms >= 1)
        .context("--producer-id-expiration-ms must be at least 1 (Kafka's minimum)")?;
    let storage = Storage::open(opts).await.with_context(|| {
        format!(
            "opening storage (catalog {}, objects {})",
            redact(&config.catalog),
            config.objects
        )
    })?;

    let kafka_listener_addr: std::net::SocketAddr = config
        .kafka_addr
        .parse()
        .with_context(|| format!("kafka address `{}` is not HOST:PORT", config.kafka_addr))?;
    let advertised_host = config.advertised_host.clone().unwrap_or_else(|| {
        if kafka_listener_addr.ip().is_unspecified() {
            "localhost".into()
        } else {
            kafka_listener_addr.ip().to_string()
        }
    });
    let broker_config = BrokerConfig {
        max_request_bytes: config.max_request_bytes,
        default_partitions: config.num_partitions,
        groups: group_config(&config),
        ..BrokerConfig::default()
    };
    let pki = if config.multi_tenant {
        Some(tls::load_pki(&config, &advertised_host)?)
    } else {
        None
    };
    let tenancy = open_tenancy(&config, &storage, pki.clone()).await?;
    // Port 0 (tests) is advertised as the port bound.
    let port = kafka_listener_addr.port() as i32;
    let listener = if config.multi_tenant {
        Listener::sasl_plaintext(&advertised_host, port)
    } else {
        Listener::open(&advertised_host, port)
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let ctx = BrokerContext::new(broker_config, storage.clone(), tenancy);
    let tls_server = match &pki {
        Some(pki) => Some(tls::bind(&config, &advertised_host, pki, ctx.clone()).await?),
        None => None,
    };
    let server = Server::bind(&config.kafka_addr, ctx, listener)
        .await
        .with_context(|| format!("binding the Kafka listener on {}", config.kafka_addr))?;
    // Where tenants' clients connect: KAFKA_URL is the TLS listener.
    let kafka_url = match &tls_server {
        Some(tls) => Some(format!("{advertised_host}:{}", tls.local_addr()?.port())),
        None => None,
    };
    let service = sluice_control::ServiceInfo {
        kafka_url,
        kafka_plaintext_url: format!("{advertised_host}:{}", server.local_addr()?.port()),
        node_id: server.context().config.node_id,
        default_partitions: config.num_partitions,
    };
    serve(
        (server, tls_server),
        config,
        storage,
        metrics,
        service,
        shutdown_tx,
        shutdown_rx,
    )
    .await
}

/// The operator's SASL username; its password is the operator token.
pub const OPERATOR_USER: &str = "admin";

/// Tenancy: open (everyone the anonymous superuser) unless `--multi-tenant`,
/// which loads the plans and the operator token (created on first start in
/// `<data-dir>/operator.token`, readable only by its owner).
async fn open_tenancy(
    config: &DevConfig,
    storage: &Arc<Storage>,
    pki: Option<Arc<Pki>>,
) -> anyhow::Result<Arc<Tenancy>> {
    let plans = match &config.plans {
        Some(path) => Plans::with_file(path)?,
        None => Plans::built_in(),
    };
    // Credentials' passwords and keys are sealed with this key so that
    // `sluice config` can show them again.
    let sealer = if config.multi_tenant {
        let path = config.data_dir.join("secrets.key");
        Some(Arc::new(Sealer::load_or_create(&path)?))
    } else {
        None
    };
    let operator = if config.multi_tenant {
        let path = config.data_dir.join("operator.token");
        let token = operator_token(&path)?;
        println!(
            "operator token: {token}\n  saved in {}; use it as SLUICE_TOKEN for the CLI, or as the password of SASL user `{OPERATOR_USER}`",
            path.display()
        );
        Some(OperatorCredential {
            username: OPERATOR_USER.into(),
            token,
        })
    } else {
        None
    };
    let tenancy = Tenancy::open(
        storage.catalog().clone(),
        TenancyOptions {
            plans,
            operator,
            superusers: config.superusers.clone(),
            pki,
            sealer,
        },
    )
    .await
    .context("loading tenants from the catalog")?;
    Ok(tenancy)
}

fn operator_token(path: &std::path::Path) -> anyhow::Result<String> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let token = existing.trim().to_string();
        anyhow::ensure!(
            !token.is_empty(),
            "{} is empty; delete it to get a new token",
            path.display()
        );
        return Ok(token);
    }
    let token: String = (0..40)
        .map(|_| {
            const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
            ALPHABET[rand::random_range(0..ALPHABET.len())] as char
        })
        .collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write;
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(file, "{token}").with_context(|| format!("writing {}", path.display()))?;
    Ok(token)
}

/// `servers`: the Kafka listener and, with --multi-tenant, the TLS one.
async fn serve(
    (server, tls_server): (Server, Option<Server>),
    config: DevConfig,
    storage: Arc<Storage>,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
    service: sluice_control::ServiceInfo,
    shutdown_tx: watch::Sender<bool>,
    shutdown_rx: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let http = sluice_control::bind(&config.http_addr)
        .await
        .with_context(|| format!("binding the HTTP listener on {}", config.http_addr))?;
    tracing::info!(
        kafka = %server.local_addr()?,
        http = %http.local_addr()?,
        catalog = %redact(&config.catalog),
        objects = %config.objects,
        "sluice is ready"
    );
    let groups = server.context().groups.clone();
    let restored = groups
        .recover()
        .await
        .context("restoring consumer groups from the catalog")?;
    if restored > 0 {
        tracing::info!(groups = restored, "restored consumer groups");
    }
    if let Some(tls) = &tls_server {
        tracing::info!(kafka_tls = %tls.local_addr()?, "TLS listener: mTLS or SASL_SSL");
    }
    let plane = sluice_control::ControlPlane {
        tenancy: server.context().tenancy.clone(),
        storage: storage.clone(),
        groups: groups.clone(),
        service: Arc::new(service),
        traffic: server.context().traffic.clone(),
        quotas: server.context().quotas.clone(),
    };
    let kafka_task = tokio::spawn(server.run(shutdown_rx.clone()));
    let tls_task = tls_server.map(|s| tokio::spawn(s.run(shutdown_rx.clone())));
    let http_task = tokio::spawn(sluice_control::serve(http, metrics, plane, shutdown_rx));

    wait_for_signal().await;
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    let _ = kafka_task.await;
    if let Some(task) = tls_task {
        let _ = task.await;
    }
    // Connections stop reading at once; give queued appends a moment to
    // reach the group commit before it drains.
    tokio::time::sleep(Duration::from_millis(100)).await;
    storage.shutdown().await;
    let _ = http_task.await;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Hides a password in a database URL for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Group coordinator timings: Kafka's defaults, with the delays and
/// intervals the operator chose.
fn group_config(config: &DevConfig) -> GroupConfig {
    let mut groups = GroupConfig::default();
    groups.classic.initial_rebalance_delay =
        Duration::from_millis(config.group_initial_rebalance_delay_ms);
    groups.consumer.heartbeat_interval =
        Duration::from_millis(config.group_consumer_heartbeat_interval_ms);
    groups.consumer.session = Duration::from_millis(config.group_consumer_session_timeout_ms);
    groups
}
