//! `/v1/tenants/{name}/credentials`: a tenant's credentials. Secrets appear
//! in the answers that create or rotate one, and in the tenant's config.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use sluice_tenancy::IssuedCredential;

use crate::auth::Operator;
use crate::error::{parse_body, ApiError};
use crate::ControlPlane;

pub fn routes() -> Router<ControlPlane> {
    Router::new()
        .route("/v1/tenants/{name}/credentials", get(list).post(create))
        .route(
            "/v1/tenants/{name}/credentials/{username}/rotate",
            post(rotate),
        )
        .route("/v1/tenants/{name}/credentials/{username}", delete(revoke))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateCredential {
    name: Option<String>,
}

async fn create(
    _: Operator,
    State(plane): State<ControlPlane>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: CreateCredential = parse_body(&body)?;
    let issued = plane
        .tenancy
        .create_credential(&tenant, req.name.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

async fn list(
    _: Operator,
    State(plane): State<ControlPlane>,
    Path(tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let credentials = plane.tenancy.credentials(&tenant)?;
    Ok(Json(json!({ "credentials": credentials })))
}

async fn rotate(
    _: Operator,
    State(plane): State<ControlPlane>,
    Path((tenant, username)): Path<(String, String)>,
) -> Result<Json<IssuedCredential>, ApiError> {
    Ok(Json(
        plane.tenancy.rotate_credential(&tenant, &username).await?,
    ))
}

async fn revoke(
    _: Operator,
    State(plane): State<ControlPlane>,
    Path((tenant, username)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    plane.tenancy.revoke_credential(&tenant, &username).await?;
    Ok(Json(json!({ "revoked": username })))
}
