//! `sluice dev --multi-tenant`'s TLS side: the certificate authority in
//! `<data-dir>/tls/`, the broker certificate's names, and the TLS listener.

use std::sync::Arc;

use anyhow::Context;
use sluice_broker::tls::Tls;
use sluice_broker::{BrokerContext, Listener, Server};
use sluice_tenancy::pki::Pki;

use crate::config::DevConfig;

/// Every name and address clients may dial: the advertised host,
/// loopback, the machine's hostname, the TLS listener's own address and
/// the operator's `--tls-san`s.
fn names(config: &DevConfig, advertised_host: &str) -> Vec<String> {
    let mut names = vec![
        advertised_host.to_string(),
        "localhost".into(),
        "127.0.0.1".into(),
        "::1".into(),
    ];
    if let Some(host) = hostname::get().ok().and_then(|h| h.into_string().ok()) {
        names.push(host);
    }
    if let Ok(addr) = config.kafka_tls_addr.parse::<std::net::SocketAddr>() {
        if !addr.ip().is_unspecified() {
            names.push(addr.ip().to_string());
        }
    }
    names.extend(config.tls_sans.iter().cloned());
    names
}

/// Loads the CA (creating it on first start) and issues this start's broker
/// certificate.
pub fn load_pki(config: &DevConfig, advertised_host: &str) -> anyhow::Result<Arc<Pki>> {
    let dir = config.data_dir.join("tls");
    let pki = Pki::load_or_create(&dir, &names(config, advertised_host))
        .with_context(|| format!("loading the certificate authority in {}", dir.display()))?;
    tracing::info!(
        ca = %dir.join("ca.pem").display(),
        names = ?pki.names(),
        "broker certificate issued"
    );
    Ok(Arc::new(pki))
}

/// Binds the TLS listener; it advertises its own port (the bound one when
/// the configured port is 0), so clients that came in over TLS stay on it.
pub async fn bind(
    config: &DevConfig,
    advertised_host: &str,
    pki: &Pki,
    ctx: Arc<BrokerContext>,
) -> anyhow::Result<Server> {
    let addr: std::net::SocketAddr = config.kafka_tls_addr.parse().with_context(|| {
        format!(
            "kafka TLS address `{}` is not HOST:PORT",
            config.kafka_tls_addr
        )
    })?;
    let tls = Tls::new(pki).context("configuring TLS")?;
    let listener = Listener::tls(advertised_host, addr.port() as i32, tls);
    Server::bind(&config.kafka_tls_addr, ctx, listener)
        .await
        .with_context(|| {
            format!(
                "binding the Kafka TLS listener on {}",
                config.kafka_tls_addr
            )
        })
}
