//! `GET /v1/whoami`: who the token belongs to, so that the CLI can default
//! `--tenant` to a tenant token's own tenant; and `GET /v1/status`, open to
//! anyone: the broker's version and where its Kafka listeners are (`sluice
//! wait` probes them; tenants get the same addresses in their config).

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::Caller;
use crate::error::ErrorBody;
use crate::ControlPlane;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WhoAmI {
    /// `operator` (the operator token, or anyone on an open broker) or
    /// `tenant`.
    role: &'static str,
    /// A tenant token's tenant; absent for the operator.
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
    /// Whether the broker runs with `--multi-tenant`.
    multi_tenant: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Status {
    /// `ok` whenever the broker answers.
    status: &'static str,
    /// The broker's version.
    version: &'static str,
    /// Whether the broker runs with `--multi-tenant`.
    multi_tenant: bool,
    /// The Kafka listeners' advertised `host:port`s (SASL plaintext, or
    /// plaintext on an open broker, first; then TLS when there is one).
    kafka: Vec<String>,
}

pub fn routes() -> OpenApiRouter<ControlPlane> {
    OpenApiRouter::new()
        .routes(routes!(whoami))
        .routes(routes!(status))
}

/// The caller's role and tenant.
#[utoipa::path(get, path = "/v1/whoami", tag = "tokens",
    responses(
        (status = 200, description = "Who the token belongs to", body = WhoAmI),
        (status = 401, description = "No or wrong token (multi-tenant brokers)", body = ErrorBody),
    ))]
async fn whoami(caller: Caller, State(plane): State<ControlPlane>) -> Json<WhoAmI> {
    let (role, tenant) = match caller {
        Caller::Operator => ("operator", None),
        Caller::Tenant(t) => ("tenant", Some(t)),
    };
    Json(WhoAmI {
        role,
        tenant,
        multi_tenant: plane.tenancy.enabled(),
    })
}

/// The broker's version and Kafka listeners; needs no token.
#[utoipa::path(get, path = "/v1/status", tag = "cluster", security(()),
    responses(
        (status = 200, description = "The broker answers", body = Status),
    ))]
async fn status(State(plane): State<ControlPlane>) -> Json<Status> {
    Json(Status {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        multi_tenant: plane.tenancy.enabled(),
        kafka: plane.service.listeners(),
    })
}
