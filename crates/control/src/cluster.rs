//! `GET /v1/cluster`: the operator's view of the service: its brokers with
//! their Kafka listeners and version, totals, and usage by tenant. An open
//! broker (no `--multi-tenant`) answers anyone, with totals only.

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::OperatorIfEnabled;
use crate::error::{ApiError, ErrorBody};
use crate::usage;
use crate::ControlPlane;

/// One broker.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BrokerView {
    node_id: i32,
    /// The SASL plaintext (open broker: plaintext) listener, `host:port`.
    kafka_plaintext_url: String,
    /// The TLS listener, `host:port`; absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    kafka_url: Option<String>,
    version: String,
}

/// Usage of the whole cluster, or of one tenant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageLine {
    /// The tenant; absent in the totals.
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// The tenant's plan; absent in the totals.
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<String>,
    /// `available` or `over capacity` (tenants only).
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    topics: u64,
    partitions: u64,
    data_bytes: u64,
    /// The plan's capacity; absent in the totals.
    #[serde(skip_serializing_if = "Option::is_none")]
    capacity_bytes: Option<u64>,
    /// `data_bytes` as a percentage of `capacity_bytes` (tenants only).
    #[serde(skip_serializing_if = "Option::is_none")]
    capacity_percent: Option<f64>,
    messages_in_per_sec: f64,
    bytes_in_per_sec: f64,
    bytes_out_per_sec: f64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClusterView {
    /// The broker's version.
    version: String,
    multi_tenant: bool,
    brokers: Vec<BrokerView>,
    /// Every topic of the cluster.
    totals: UsageLine,
    /// Usage by tenant, by name (empty on an open broker).
    tenants: Vec<UsageLine>,
}

pub fn routes() -> OpenApiRouter<ControlPlane> {
    OpenApiRouter::new().routes(routes!(cluster))
}

/// Brokers, version, totals and usage by tenant.
#[utoipa::path(get, path = "/v1/cluster", tag = "cluster",
    responses(
        (status = 200, description = "The cluster", body = ClusterView),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 403, description = "A tenant token (operator only)", body = ErrorBody),
        (status = 503, description = "The catalog is unavailable", body = ErrorBody),
    ))]
async fn cluster(
    _: OperatorIfEnabled,
    State(plane): State<ControlPlane>,
) -> Result<Json<ClusterView>, ApiError> {
    let sizes = usage::sizes(&plane).await?;
    let version = env!("CARGO_PKG_VERSION").to_string();
    let all = usage::measure(&plane, "", &sizes);
    let totals = UsageLine {
        name: None,
        plan: None,
        status: None,
        topics: all.topics,
        partitions: all.partitions,
        data_bytes: all.data_bytes,
        capacity_bytes: None,
        capacity_percent: None,
        messages_in_per_sec: all.rates.messages_in_per_sec,
        bytes_in_per_sec: all.rates.bytes_in_per_sec,
        bytes_out_per_sec: all.rates.bytes_out_per_sec,
    };
    let mut tenants = Vec::new();
    if plane.tenancy.enabled() {
        for t in plane.tenancy.tenants() {
            // Destroyed since the listing.
            let Ok(plan) = plane.tenancy.tenant_plan(&t.name) else {
                continue;
            };
            let m = usage::measure(&plane, &t.prefix, &sizes);
            tenants.push(UsageLine {
                status: Some(usage::status(m.data_bytes, plan.capacity_bytes).into()),
                capacity_bytes: Some(plan.capacity_bytes),
                capacity_percent: Some(usage::percent(m.data_bytes, plan.capacity_bytes)),
                name: Some(t.name),
                plan: Some(t.plan),
                topics: m.topics,
                partitions: m.partitions,
                data_bytes: m.data_bytes,
                messages_in_per_sec: m.rates.messages_in_per_sec,
                bytes_in_per_sec: m.rates.bytes_in_per_sec,
                bytes_out_per_sec: m.rates.bytes_out_per_sec,
            });
        }
        tenants.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(Json(ClusterView {
        brokers: vec![BrokerView {
            node_id: plane.service.node_id,
            kafka_plaintext_url: plane.service.kafka_plaintext_url.clone(),
            kafka_url: plane.service.kafka_url.clone(),
            version: version.clone(),
        }],
        version,
        multi_tenant: plane.tenancy.enabled(),
        totals,
        tenants,
    }))
}
