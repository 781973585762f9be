//! `/v1/tenants/{name}/groups`: explicit consumer groups, for the operator
//! or the tenant's own token. Plans with
//! `explicit_groups` only let clients use groups created here; a group's
//! name gets the tenant's prefix when it lacks it.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sluice_protocol::ErrorCode;
use sluice_storage::catalog::GroupRow;
use sluice_tenancy::TenantInfo;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::Caller;
use crate::error::{parse_body, ApiError, ErrorBody};
use crate::tenants::tenant_group_ids;
use crate::ControlPlane;

/// Kafka's limit on names it stores in one field (as for topics).
const MAX_GROUP_ID: usize = 249;

pub fn routes() -> OpenApiRouter<ControlPlane> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(destroy))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateGroup {
    /// The group; the tenant's prefix is added when missing.
    name: String,
}

/// Creates an explicit consumer group.
#[utoipa::path(post, path = "/v1/tenants/{name}/groups", tag = "groups",
    params(("name" = String, Path, description = "The tenant")),
    request_body(content = CreateGroup, content_type = "application/json"),
    responses(
        (status = 201, description = "`{\"group\": full name}`", body = Object),
        (status = 400, description = "Bad name or body", body = ErrorBody),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 403, description = "Over the plan's group limit, or another tenant's prefix", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 409, description = "The group exists", body = ErrorBody),
    ))]
async fn create(
    caller: Caller,
    State(plane): State<ControlPlane>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require_tenant(&tenant)?;
    let req: CreateGroup = parse_body(&body)?;
    let info = plane.tenancy.tenant(&tenant)?;
    let group = qualify(&plane, &info, &req.name)?;
    let existing = tenant_group_ids(&plane, &info.prefix).await?;
    if existing.contains(&group) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "group_exists",
            format!("consumer group `{group}` already exists"),
        ));
    }
    let plan = plane.tenancy.tenant_plan(&tenant)?;
    if existing.len() >= plan.max_groups as usize {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "plan_limit",
            format!(
                "tenant `{tenant}` has {} consumer groups, the most plan `{}` allows; delete one or move the tenant to a larger plan",
                existing.len(),
                plan.name
            ),
        ));
    }
    let now_ms = sluice_storage::now_ms();
    plane
        .storage
        .catalog()
        .save_group(&GroupRow {
            group_id: group.clone(),
            protocol_type: "consumer".into(),
            created_ms: now_ms,
        })
        .await?;
    tracing::info!(tenant = %tenant, group = %group, "created consumer group");
    Ok((StatusCode::CREATED, Json(json!({ "group": group }))).into_response())
}

/// Deletes a consumer group with its committed offsets.
#[utoipa::path(delete, path = "/v1/tenants/{name}/groups/{group}", tag = "groups",
    params(("name" = String, Path, description = "The tenant"),
           ("group" = String, Path, description = "The group, with or without the prefix")),
    responses(
        (status = 200, description = "`{\"deleted\": full name}`", body = Object),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 403, description = "Another tenant's prefix", body = ErrorBody),
        (status = 404, description = "No such tenant or group", body = ErrorBody),
        (status = 409, description = "The group has members", body = ErrorBody),
    ))]
async fn destroy(
    caller: Caller,
    State(plane): State<ControlPlane>,
    Path((tenant, group)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.require_tenant(&tenant)?;
    let info = plane.tenancy.tenant(&tenant)?;
    let group = qualify(&plane, &info, &group)?;
    match plane.groups.delete(&group).await {
        None => Ok(Json(json!({ "deleted": group }))),
        Some(ErrorCode::NonEmptyGroup) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "group_not_empty",
            format!("consumer group `{group}` has active members; stop its consumers and retry"),
        )),
        Some(ErrorCode::GroupIdNotFound) => Err(ApiError::not_found(
            "group_not_found",
            format!("consumer group `{group}` does not exist"),
        )),
        Some(code) => Err(ApiError::unavailable(
            &format!("deleting group `{group}`"),
            format!("{code:?}"),
        )),
    }
}

/// The full group id for `name` in `tenant`: the prefix is added when it is
/// missing; a name under another tenant's prefix is refused.
fn qualify(plane: &ControlPlane, tenant: &TenantInfo, name: &str) -> Result<String, ApiError> {
    if name.is_empty() {
        return Err(ApiError::bad_request("a consumer group needs a name"));
    }
    if name.starts_with(&tenant.prefix) {
        return checked_len(name.to_string());
    }
    if let Some((owner, _)) = name.split_once('.') {
        if plane.tenancy.tenant(owner).is_ok() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "foreign_prefix",
                format!(
                    "consumer group `{name}` is under tenant `{owner}`'s prefix; tenant `{}`'s groups start with `{}`",
                    tenant.name, tenant.prefix
                ),
            ));
        }
    }
    checked_len(format!("{}{name}", tenant.prefix))
}

fn checked_len(group: String) -> Result<String, ApiError> {
    if group.len() > MAX_GROUP_ID {
        return Err(ApiError::bad_request(format!(
            "consumer group `{group}` is longer than {MAX_GROUP_ID} characters"
        )));
    }
    Ok(group)
}
