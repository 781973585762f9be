//! `/v1/groups`: consumer groups with their members, committed offsets and
//! lag, as `sluice groups list|describe` shows them. The operator sees
//! every group (or one tenant's with `?tenant=NAME`); a tenant token sees
//! only its tenant's groups, and another tenant's group is answered like a
//! missing one.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::ControlPlane;

/// One line of the group list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GroupSummary {
    /// The full group id (with the tenant's prefix).
    group_id: String,
    /// `classic` or `consumer` (KIP-848).
    group_type: String,
    /// `Empty`, `Stable`, `PreparingRebalance`, `CompletingRebalance`, …
    state: String,
    /// Members connected now.
    members: u64,
    /// Sum over its partitions of log end minus committed offset.
    total_lag: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GroupList {
    groups: Vec<GroupSummary>,
}

/// `?tenant=NAME`: the operator's filter; a tenant token may only name its
/// own tenant.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantFilter {
    /// Only this tenant's groups (multi-tenant brokers).
    tenant: Option<String>,
}

pub fn routes() -> OpenApiRouter<ControlPlane> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(describe))
}

/// The caller's consumer groups with their state, members and lag.
#[utoipa::path(get, path = "/v1/groups", tag = "groups",
    params(TenantFilter),
    responses(
        (status = 200, description = "The groups in scope, by id", body = GroupList),
        (status = 400, description = "Bad query string", body = ErrorBody),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 503, description = "The catalog is unavailable", body = ErrorBody),
    ))]
async fn list(
    caller: Caller,
    State(plane): State<ControlPlane>,
    ApiQuery(filter): ApiQuery<TenantFilter>,
) -> Result<Json<GroupList>, ApiError> {
    let scope = scope(&caller, &plane, filter.tenant.as_deref())?;
    let c = &plane.groups;
    let mut groups = Vec::new();
    for g in c.list().await? {
        if !scope.contains(&g.group_id) {
            continue;
        }
        // None: deleted between the list and the describe.
        if let Some(view) = c.describe(&g.group_id).await? {
            groups.push(GroupSummary {
                group_id: view.group_id,
                group_type: view.group_type,
                state: view.state,
                members: view.members.len() as u64,
                total_lag: view.total_lag,
            });
        }
    }
    Ok(Json(GroupList { groups }))
}

/// A consumer group's members with their assignments and, per partition,
/// the committed offset, the log end and the lag. A tenant token's bare
/// names get its prefix.
#[utoipa::path(get, path = "/v1/groups/{group}", tag = "groups",
    params(("group" = String, Path, description = "The group; a tenant's prefix is added when missing"),
           TenantFilter),
    responses(
        (status = 200, description = "`{group_id, group_type, state, assignor, epoch, members: [{member_id, instance_id, client_id, client_host, assignment: [{topic, partition}]}], partitions: [{topic, partition, committed_offset, log_end_offset, lag, member_id}], total_lag}`", body = Object),
        (status = 400, description = "Bad query string", body = ErrorBody),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 404, description = "No such group (or another tenant's), or no such tenant", body = ErrorBody),
        (status = 503, description = "The catalog is unavailable", body = ErrorBody),
    ))]
async fn describe(
    caller: Caller,
    State(plane): State<ControlPlane>,
    Path(group): Path<String>,
    ApiQuery(filter): ApiQuery<TenantFilter>,
) -> Result<Json<sluice_broker::groups::describe::GroupView>, ApiError> {
    let scope = scope(&caller, &plane, filter.tenant.as_deref())?;
    let group = scope.full_name(&group);
    let missing = || {
        ApiError::not_found(
            "group_not_found",
            format!("consumer group `{group}` does not exist: it has no members and no committed offsets"),
        )
    };
    if !scope.contains(&group) {
        return Err(missing());
    }
    match plane.groups.describe(&group).await? {
        Some(view) => Ok(Json(view)),
        None => Err(missing()),
    }
}

/// The scope of a group request; `?tenant=` on an open broker is refused.
fn scope(caller: &Caller, plane: &ControlPlane, tenant: Option<&str>) -> Result<Scope, ApiError> {
    if tenant.is_some() && !plane.tenancy.enabled() {
        return Err(ApiError::multi_tenancy_off());
    }
    caller.scope(plane, tenant)
}
