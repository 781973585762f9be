//! The HTTP side of a broker: `/healthz`, Prometheus `/metrics`, and the
//! REST API of the control plane, described by the OpenAPI document it
//! serves at `/openapi.json`: topics and their records under `/v1/topics`,
//! consumer groups under `/v1/groups`, and, with
//! `--multi-tenant`, tenants with their credentials, API tokens, connection
//! config and explicit consumer groups under `/v1/tenants`; the caller's
//! role at `/v1/whoami` and the cluster at `/v1/cluster`. [`auth`] says
//! who may call what.

pub mod auth;
mod cluster;
mod credentials;
mod error;
pub mod extract;
mod groups;
mod openapi;
mod tenant_groups;
mod tenants;
mod tokens;
mod topic_records;
mod topics;
mod usage;
mod whoami;

use std::sync::Arc;

use axum::{routing::get, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use sluice_broker::groups::GroupCoordinator;
use sluice_broker::quota::Quotas;
use sluice_broker::traffic::Traffic;
use sluice_storage::Storage;
use sluice_tenancy::Tenancy;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use error::ApiError;

/// Where clients connect, as a tenant's config vars tell them.
#[derive(Debug, Clone, Default)]
pub struct ServiceInfo {
    /// The TLS listener's advertised `host:port` (comma-separated when
    /// several), `KAFKA_URL`; `None` (shown as an empty string) while the
    /// broker has no TLS listener.
    pub kafka_url: Option<String>,
    /// The SASL plaintext listener's advertised `host:port`,
    /// `KAFKA_PLAINTEXT_URL`.
    pub kafka_plaintext_url: String,
    /// This broker's node id, as Metadata answers it.
    pub node_id: i32,
    /// Partitions of a topic created without a count on an open broker
    /// (`--num-partitions`); a tenant's plan has its own default.
    pub default_partitions: i32,
}

impl ServiceInfo {
    /// The Kafka listeners' `host:port`s: SASL plaintext, then TLS.
    pub fn listeners(&self) -> Vec<String> {
        let mut out = vec![self.kafka_plaintext_url.clone()];
        if let Some(tls) = &self.kafka_url {
            out.extend(tls.split(',').map(|s| s.trim().to_string()));
        }
        out
    }
}

/// What the API works on; cheap to clone (one per request).
#[derive(Clone)]
pub struct ControlPlane {
    pub tenancy: Arc<Tenancy>,
    /// To delete a destroyed tenant's topics.
    pub storage: Arc<Storage>,
    /// To create, delete and show consumer groups.
    pub groups: Arc<GroupCoordinator>,
    pub service: Arc<ServiceInfo>,
    /// Recent message and byte rates per topic on this broker.
    pub traffic: Arc<Traffic>,
    /// Tenants' capacity and quotas, which REST writes and reads count
    /// against as Kafka produce and fetch requests do.
    pub quotas: Arc<Quotas>,
}

/// Binds the HTTP listener.
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// The API's routes and their OpenAPI document.
fn documented_routes() -> (Router<ControlPlane>, utoipa::openapi::OpenApi) {
    openapi::router()
        .merge(groups::routes())
        .merge(tenants::routes())
        .merge(credentials::routes())
        .merge(tenant_groups::routes())
        .merge(tokens::routes())
        .merge(whoami::routes())
        .merge(cluster::routes())
        .merge(topics::routes())
        .merge(topic_records::routes())
        .split_for_parts()
}

/// The OpenAPI document of the REST API.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    documented_routes().1
}

/// The API's routes (without `/healthz` and `/metrics`) and
/// `/openapi.json`.
pub fn api(plane: ControlPlane) -> Router {
    let (routes, doc) = documented_routes();
    let doc = Arc::new(doc);
    routes
        .route(
            "/openapi.json",
            get(move || std::future::ready(axum::Json(doc.as_ref().clone()))),
        )
        .fallback(|| async {
            ApiError::not_found(
                "not_found",
                "no such endpoint; see docs/operations.md for the REST API",
            )
        })
        .layer(axum::middleware::map_response(json_refusals))
        .with_state(plane)
}

/// Refusals that axum answers itself (a path segment that is not UTF-8,
/// a method an endpoint does not take, …) in plain text or with no body
/// become `{"error", "message"}` like every other refusal.
async fn json_refusals(res: axum::response::Response) -> axum::response::Response {
    use axum::http::{header, StatusCode};
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !status.is_client_error() || is_json {
        return res;
    }
    let (parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let (code, fallback) = match status {
        StatusCode::BAD_REQUEST => ("bad_request", "the request is not valid"),
        StatusCode::NOT_FOUND => ("not_found", "no such endpoint"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this endpoint does not take that method; see /openapi.json",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "send the body as application/json",
        ),
        _ => ("refused", "the request was refused"),
    };
    let message = if text.is_empty() {
        fallback.into()
    } else {
        text
    };
    let mut out = axum::response::IntoResponse::into_response(ApiError::new(status, code, message));
    // Keep what tells the client how to retry (Allow on a 405).
    for name in [header::ALLOW, header::WWW_AUTHENTICATE] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

/// Serves until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    metrics: PrometheusHandle,
    plane: ControlPlane,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/metrics",
            get(move || std::future::ready(metrics.render())),
        )
        .merge(api(plane));
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.changed().await;
        })
        .await
}
