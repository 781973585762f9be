//! `/v1/tenants`: create, list, show and destroy tenants (operator), and a
//! tenant's info and connection config (`sluice config NAME`; the operator
//! or the tenant's own token).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sluice_protocol::ErrorCode;
use sluice_tenancy::plan::DEFAULT_PLAN;
use sluice_tenancy::{IssuedCredential, TenancyError, TenantInfo};

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Caller, Operator};
use crate::error::{parse_body, ApiError, ErrorBody};
use crate::usage::{self, TenantUsage};
use crate::ControlPlane;

pub fn routes() -> OpenApiRouter<ControlPlane> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(info, change_plan, destroy))
        .routes(routes!(config))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateTenant {
    /// Lower-case letters, digits and `-`; generated (`wabash-58779`) when
    /// left out.
    name: Option<String>,
    /// A plan name; `basic-0` when left out.
    plan: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ChangeTenant {
    /// The plan to move the tenant to.
    plan: String,
}

/// The environment a tenant's clients connect with.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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

/// A tenant as `GET /v1/tenants/{name}` shows it: who it is, how it is
/// doing, and what it uses of its plan.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantView {
    pub name: String,
    pub plan: String,
    /// Topics and groups of the tenant start with it (`<name>.`).
    pub prefix: String,
    /// Milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// `available`, or `over capacity` once `usage.data_bytes` reaches
    /// `usage.capacity_bytes` (produce is refused then).
    pub status: String,
    /// The broker's version.
    pub version: String,
    pub usage: TenantUsage,
}

/// Creates a tenant with its first credential; answers the tenant, the
/// credential (with its password, shown here and in the config) and the
/// config vars.
#[utoipa::path(post, path = "/v1/tenants", tag = "tenants",
    request_body(content = CreateTenant, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = Object),
        (status = 400, description = "Bad name, plan or body", body = ErrorBody),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 403, description = "Not the operator", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
    ))]
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

/// Every tenant.
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants",
    responses(
        (status = 200, description = "`{\"tenants\": [...]}`", body = Object),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 403, description = "Not the operator", body = ErrorBody),
    ))]
async fn list(_: Operator, State(plane): State<ControlPlane>) -> Json<serde_json::Value> {
    Json(json!({ "tenants": plane.tenancy.tenants() }))
}

/// A tenant with its status and usage against its plan: topics,
/// partitions, groups, traffic and stored bytes.
#[utoipa::path(get, path = "/v1/tenants/{name}", tag = "tenants",
    params(("name" = String, Path, description = "The tenant")),
    responses(
        (status = 200, description = "The tenant", body = TenantView),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 404, description = "No such tenant (or another tenant's, for a tenant token), or multi-tenancy is off", body = ErrorBody),
        (status = 503, description = "The catalog is unavailable", body = ErrorBody),
    ))]
async fn info(
    caller: Caller,
    State(plane): State<ControlPlane>,
    Path(name): Path<String>,
) -> Result<Json<TenantView>, ApiError> {
    caller.require_tenant(&name)?;
    let tenant = plane.tenancy.tenant(&name)?;
    Ok(Json(
        tenant_view(&plane, tenant, &usage::sizes(&plane).await?).await?,
    ))
}

/// `tenant` with its status and usage; `sizes` from [`usage::sizes`].
pub async fn tenant_view(
    plane: &ControlPlane,
    tenant: TenantInfo,
    sizes: &std::collections::HashMap<String, i64>,
) -> Result<TenantView, ApiError> {
    let plan = plane.tenancy.tenant_plan(&tenant.name)?;
    let measured = usage::measure(plane, &tenant.prefix, sizes);
    let groups = tenant_group_ids(plane, &tenant.prefix).await?.len() as u64;
    let credentials = plane.tenancy.credentials(&tenant.name)?.len() as u64;
    let usage = TenantUsage::new(&measured, &plan, groups, credentials);
    Ok(TenantView {
        status: usage::status(usage.data_bytes, usage.capacity_bytes).into(),
        version: env!("CARGO_PKG_VERSION").into(),
        name: tenant.name,
        plan: tenant.plan,
        prefix: tenant.prefix,
        created_ms: tenant.created_ms,
        usage,
    })
}

/// Moves a tenant to another plan in place: topics, data, offsets and
/// credentials stay; the new limits and rates apply from its next request.
#[utoipa::path(patch, path = "/v1/tenants/{name}", tag = "tenants",
    params(("name" = String, Path, description = "The tenant")),
    request_body(content = ChangeTenant, content_type = "application/json"),
    responses(
        (status = 200, description = "The tenant on its new plan", body = Object),
        (status = 400, description = "Unknown plan or bad body", body = ErrorBody),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 403, description = "Not the operator", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ))]
async fn change_plan(
    _: Operator,
    State(plane): State<ControlPlane>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<TenantInfo>, ApiError> {
    let req: ChangeTenant = parse_body(&body)?;
    plane.tenancy.tenant(&name)?;
    Ok(Json(plane.tenancy.change_plan(&name, &req.plan).await?))
}

/// Destroys a tenant: its topics, then its groups with their offsets, then
/// the tenant with its credentials, tokens and ACLs.
#[utoipa::path(delete, path = "/v1/tenants/{name}", tag = "tenants",
    params(("name" = String, Path, description = "The tenant")),
    responses(
        (status = 200, description = "`{\"destroyed\": name}`", body = Object),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 403, description = "Not the operator", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ))]
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

/// The tenant's config vars (its first credential's).
#[utoipa::path(get, path = "/v1/tenants/{name}/config", tag = "tenants",
    params(("name" = String, Path, description = "The tenant")),
    responses(
        (status = 200, description = "The config vars", body = ConfigVars),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 404, description = "No such tenant, or its first credential was revoked", body = ErrorBody),
        (status = 409, description = "The password was not kept", body = ErrorBody),
    ))]
async fn config(
    caller: Caller,
    State(plane): State<ControlPlane>,
    Path(name): Path<String>,
) -> Result<Json<ConfigVars>, ApiError> {
    caller.require_tenant(&name)?;
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
