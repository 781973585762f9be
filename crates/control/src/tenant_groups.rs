//! `/v1/tenants/{name}/groups`: explicit consumer groups. Plans with
//! `explicit_groups` only let clients use groups created here; a group's
//! name gets the tenant's prefix when it lacks it.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use sluice_protocol::ErrorCode;
use sluice_storage::catalog::GroupRow;
use sluice_tenancy::TenantInfo;

use crate::auth::Operator;
use crate::error::{parse_body, ApiError};
use crate::tenants::tenant_group_ids;
use crate::ControlPlane;

/// Kafka's limit on names it stores in one field (as for topics).
const MAX_GROUP_ID: usize = 249;

pub fn routes() -> Router<ControlPlane> {
    Router::new()
        .route("/v1/tenants/{name}/groups", post(create))
        .route("/v1/tenants/{name}/groups/{group}", delete(destroy))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateGroup {
    name: String,
}

async fn create(
    _: Operator,
    State(plane): State<ControlPlane>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
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
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
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

async fn destroy(
    _: Operator,
    State(plane): State<ControlPlane>,
    Path((tenant, group)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
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
