//! `/v1/tenants/{name}/tokens`: a tenant's REST API tokens. The operator
//! issues them; the tenant's own token may list and revoke them. A token
//! appears once, in the answer that issues it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Caller, Operator};
use crate::error::{ApiError, ErrorBody};
use crate::ControlPlane;

pub fn routes() -> OpenApiRouter<ControlPlane> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
}

/// Issues an API token that acts for this tenant only.
#[utoipa::path(post, path = "/v1/tenants/{name}/tokens", tag = "tokens",
    params(("name" = String, Path, description = "The tenant")),
    responses(
        (status = 201, description = "`{id, tenant, token, created_ms}`; the token is not shown again", body = Object),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 403, description = "Not the operator", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ))]
async fn create(
    _: Operator,
    State(plane): State<ControlPlane>,
    Path(tenant): Path<String>,
) -> Result<Response, ApiError> {
    let issued = plane.tenancy.create_token(&tenant).await?;
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

/// The tenant's tokens, without the tokens themselves.
#[utoipa::path(get, path = "/v1/tenants/{name}/tokens", tag = "tokens",
    params(("name" = String, Path, description = "The tenant")),
    responses(
        (status = 200, description = "`{\"tokens\": [{id, tenant, created_ms}]}`", body = Object),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ))]
async fn list(
    caller: Caller,
    State(plane): State<ControlPlane>,
    Path(tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_tenant(&tenant)?;
    Ok(Json(json!({ "tokens": plane.tenancy.tokens(&tenant)? })))
}

/// Revokes a token; it stops working at once.
#[utoipa::path(delete, path = "/v1/tenants/{name}/tokens/{id}", tag = "tokens",
    params(("name" = String, Path, description = "The tenant"),
           ("id" = String, Path, description = "The token's id, as `sluice tokens list` shows it")),
    responses(
        (status = 200, description = "`{\"revoked\": id}`", body = Object),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 404, description = "No such tenant or token", body = ErrorBody),
    ))]
async fn revoke(
    caller: Caller,
    State(plane): State<ControlPlane>,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.require_tenant(&tenant)?;
    plane.tenancy.revoke_token(&tenant, &id).await?;
    Ok(Json(json!({ "revoked": id })))
}
