//! The HTTP side of a broker: `/healthz`, Prometheus `/metrics`, and the
//! first REST views of the control plane: consumer groups under
//! `/v1/groups` (tenants, topics and the rest of the API come later).

mod groups;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::{routing::get, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use sluice_broker::groups::GroupCoordinator;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Binds the HTTP listener.
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    metrics: PrometheusHandle,
    coordinator: Arc<GroupCoordinator>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/metrics",
            get(move || std::future::ready(metrics.render())),
        )
        .merge(groups::routes(coordinator));
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.changed().await;
        })
        .await
}

/// The address a listener is bound to, for logs.
pub fn local_addr(listener: &TcpListener) -> Option<SocketAddr> {
    listener.local_addr().ok()
}
