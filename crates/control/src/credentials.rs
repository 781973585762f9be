//! `/v1/tenants/{name}/credentials`: a tenant's credentials, for the
//! operator or the tenant's own token. Secrets appear in the answers that
//! create or rotate one, and in the tenant's config.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sluice_tenancy::IssuedCredential;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::Caller;
use crate::error::{parse_body, ApiError, ErrorBody};
use crate::ControlPlane;

pub fn routes() -> OpenApiRouter<ControlPlane> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(rotate))
        .routes(routes!(revoke))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateCredential {
    /// The credential's name; its username is `<tenant>-<name>`.
    name: Option<String>,
}

/// Adds a credential; the answer carries its password and client
/// certificate.
#[utoipa::path(post, path = "/v1/tenants/{name}/credentials", tag = "credentials",
    params(("name" = String, Path, description = "The tenant")),
    request_body(content = CreateCredential, content_type = "application/json"),
    responses(
        (status = 201, description = "The new credential with its secrets", body = Object),
        (status = 400, description = "Bad name or body", body = ErrorBody),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 409, description = "The credential exists", body = ErrorBody),
    ))]
async fn create(
    caller: Caller,
    State(plane): State<ControlPlane>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require_tenant(&tenant)?;
    let req: CreateCredential = parse_body(&body)?;
    let issued = plane
        .tenancy
        .create_credential(&tenant, req.name.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

/// The tenant's credentials, without secrets.
#[utoipa::path(get, path = "/v1/tenants/{name}/credentials", tag = "credentials",
    params(("name" = String, Path, description = "The tenant")),
    responses(
        (status = 200, description = "`{\"credentials\": [...]}`", body = Object),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ))]
async fn list(
    caller: Caller,
    State(plane): State<ControlPlane>,
    Path(tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_tenant(&tenant)?;
    let credentials = plane.tenancy.credentials(&tenant)?;
    Ok(Json(json!({ "credentials": credentials })))
}

/// Replaces a credential's password and certificate; the old ones stop
/// working.
#[utoipa::path(post, path = "/v1/tenants/{name}/credentials/{username}/rotate", tag = "credentials",
    params(("name" = String, Path, description = "The tenant"),
           ("username" = String, Path, description = "The credential's username")),
    responses(
        (status = 200, description = "The credential with its new secrets", body = Object),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 404, description = "No such tenant or credential", body = ErrorBody),
    ))]
async fn rotate(
    caller: Caller,
    State(plane): State<ControlPlane>,
    Path((tenant, username)): Path<(String, String)>,
) -> Result<Json<IssuedCredential>, ApiError> {
    caller.require_tenant(&tenant)?;
    Ok(Json(
        plane.tenancy.rotate_credential(&tenant, &username).await?,
    ))
}

/// Revokes a credential and its ACLs.
#[utoipa::path(delete, path = "/v1/tenants/{name}/credentials/{username}", tag = "credentials",
    params(("name" = String, Path, description = "The tenant"),
           ("username" = String, Path, description = "The credential's username")),
    responses(
        (status = 200, description = "`{\"revoked\": username}`", body = Object),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 404, description = "No such tenant or credential", body = ErrorBody),
    ))]
async fn revoke(
    caller: Caller,
    State(plane): State<ControlPlane>,
    Path((tenant, username)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.require_tenant(&tenant)?;
    plane.tenancy.revoke_credential(&tenant, &username).await?;
    Ok(Json(json!({ "revoked": username })))
}
