//! `/v1/tenants`: create, list, show and destroy tenants, and a tenant's
//! connection config (`sluice config NAME`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sluice_protocol::ErrorCode;
use sluice_tenancy::plan::DEFAULT_PLAN;
use sluice_tenancy::{IssuedCredential, TenancyError, TenantInfo};

use crate::auth::Operator;
use crate::error::{parse_body, ApiError};
use crate::ControlPlane;

pub fn routes() -> Router<ControlPlane> {
    Router::new()
        .route("/v1/tenants", get(list).post(create))
        .route("/v1/tenants/{name}", get(info).delete(destroy))
        .route("/v1/tenants/{name}/config", get(config))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTenant {
    name: Option<String>,
    plan: Option<String>,
}

/// The environment a tenant's clients connect with.
#[derive(Debug, Serialize)]
#[allow(non_snake_case)]
pub struct ConfigVars {
    KAFKA_URL: String,
    KAFKA_PLAINTEXT_URL: String,
    KAFKA_PREFIX: String,
    KAFKA_TRUSTED_CERT: String,
    KAFKA_CLIENT_CERT: String,
    KAFKA_CLIENT_CERT_KEY: String,
    KAFKA_SASL_MECHANISM: &'static str,
    KAFKA_USERNAME: String,
    KAFKA_PASSWORD: String,
}

/// What a tenant uses, next to its [`TenantInfo`].
#[derive(Debug, Serialize)]
struct Usage {
    topics: usize,
    partitions: i64,
    groups: usize,
    credentials: usize,
}

async fn create(
    _: Operator,
    State(plane): State<ControlPlane>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: CreateTenant = parse_body(&body)?;
    let plan = req.plan.as_deref().unwrap_or(DEFAULT_PLAN);
    let (tenant, credential) = plane
        .tenancy
        .create_tenant(req.name.as_deref(), plan)
        .await?;
    let config = config_vars(&plane, &tenant, &credential);
    let body = json!({ "tenant": tenant, "credential": credential, "config": config });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn list(_: Operator, State(plane): State<ControlPlane>) -> Json<serde_json::Value> {
    Json(json!({ "tenants": plane.tenancy.tenants() }))
}

async fn info(
    _: Operator,
    State(plane): State<ControlPlane>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let tenant = plane.tenancy.tenant(&name)?;
    let prefix = &tenant.prefix;
    let topics: Vec<_> = plane
        .storage
        .topics()
        .into_iter()
        .filter(|t| t.name.starts_with(prefix))
        .collect();
    let groups = tenant_group_ids(&plane, prefix).await?;
    let usage = Usage {
        topics: topics.len(),
        partitions: topics.iter().map(|t| t.partition_count() as i64).sum(),
        groups: groups.len(),
        credentials: plane.tenancy.credentials(&name)?.len(),
    };
    let mut body = serde_json::to_value(&tenant)
        .map_err(|e| ApiError::unavailable("encoding the tenant", e))?;
    body["usage"] = json!(usage);
    Ok(Json(body))
}

/// Removes the tenant's topics, then its groups with their offsets, then
/// the tenant with its credentials and ACLs.
async fn destroy(
    _: Operator,
    State(plane): State<ControlPlane>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let tenant = plane.tenancy.tenant(&name)?;
    let prefix = &tenant.prefix;
    for topic in plane.storage.topics() {
        if topic.name.starts_with(prefix) {
            match plane.storage.delete_topic(&topic.name).await {
                // Deleted concurrently.
                Ok(()) | Err(sluice_storage::StorageError::UnknownTopic(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    for group in tenant_group_ids(&plane, prefix).await? {
        match plane.groups.delete(&group).await {
            None | Some(ErrorCode::GroupIdNotFound) => {}
            // Members still connected: forget the group's offsets anyway;
            // the members lose their credentials with the tenant.
            Some(ErrorCode::NonEmptyGroup) => {
                plane.storage.catalog().delete_group(&group).await?;
            }
            Some(code) => {
                return Err(ApiError::unavailable(
                    &format!("deleting group `{group}`"),
                    format!("{code:?}"),
                ))
            }
        }
    }
    plane.tenancy.destroy_tenant(&name).await?;
    Ok(Json(json!({ "destroyed": name })))
}

async fn config(
    _: Operator,
    State(plane): State<ControlPlane>,
    Path(name): Path<String>,
) -> Result<Json<ConfigVars>, ApiError> {
    let tenant = plane.tenancy.tenant(&name)?;
    // The first credential's username is the tenant's name.
    let credential = plane.tenancy.reveal(&name, &name).map_err(|e| match e {
        TenancyError::UnknownCredential { .. } => ApiError::not_found(
            "credential_not_found",
            format!(
                "tenant `{name}`'s first credential `{name}` was revoked; create another with `sluice credentials create --tenant {name}` and use its password"
            ),
        ),
        other => other.into(),
    })?;
    Ok(Json(config_vars(&plane, &tenant, &credential)))
}

pub fn config_vars(
    plane: &ControlPlane,
    tenant: &TenantInfo,
    cred: &IssuedCredential,
) -> ConfigVars {
    ConfigVars {
        KAFKA_URL: plane.service.kafka_url.clone().unwrap_or_default(),
        KAFKA_PLAINTEXT_URL: plane.service.kafka_plaintext_url.clone(),
        KAFKA_PREFIX: tenant.prefix.clone(),
        KAFKA_TRUSTED_CERT: plane
            .tenancy
            .pki()
            .map(|p| p.ca_pem().to_string())
            .unwrap_or_default(),
        KAFKA_CLIENT_CERT: cred.client_cert.clone().unwrap_or_default(),
        KAFKA_CLIENT_CERT_KEY: cred.client_cert_key.clone().unwrap_or_default(),
        KAFKA_SASL_MECHANISM: "SCRAM-SHA-512",
        KAFKA_USERNAME: cred.username.clone(),
        KAFKA_PASSWORD: cred.password.clone(),
    }
}

/// The ids of a tenant's groups, in memory or in the catalog.
pub async fn tenant_group_ids(plane: &ControlPlane, prefix: &str) -> Result<Vec<String>, ApiError> {
    let listed = plane.groups.list().await?;
    Ok(listed
        .into_iter()
        .map(|g| g.group_id)
        .filter(|g| g.starts_with(prefix))
        .collect())
}
