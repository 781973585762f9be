//! `/v1/groups`: consumer groups with their members, committed offsets and
//! lag, as `sluice groups list|describe` shows them. With multi-tenancy on
//! they span every tenant, so they take the operator token.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::OperatorIfEnabled;
use crate::error::ErrorBody;
use crate::ControlPlane;

/// One line of the group list.
#[derive(Debug, Serialize)]
struct GroupSummary {
    group_id: String,
    group_type: String,
    state: String,
    members: usize,
    total_lag: i64,
}

pub fn routes() -> OpenApiRouter<ControlPlane> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(describe))
}

/// Every consumer group with its state, members and lag.
#[utoipa::path(get, path = "/v1/groups", tag = "groups",
    responses(
        (status = 200, description = "`{\"groups\": [...]}`", body = Object),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 403, description = "Not the operator", body = ErrorBody),
        (status = 503, description = "The catalog is unavailable", body = ErrorBody),
    ))]
async fn list(_: OperatorIfEnabled, State(plane): State<ControlPlane>) -> Response {
    let c = &plane.groups;
    let listed = match c.list().await {
        Ok(l) => l,
        Err(e) => return unavailable(e),
    };
    let mut out = Vec::with_capacity(listed.len());
    for g in listed {
        match c.describe(&g.group_id).await {
            Ok(Some(view)) => out.push(GroupSummary {
                group_id: view.group_id,
                group_type: view.group_type,
                state: view.state,
                members: view.members.len(),
                total_lag: view.total_lag,
            }),
            // Deleted between the list and the describe.
            Ok(None) => {}
            Err(e) => return unavailable(e),
        }
    }
    Json(json!({ "groups": out })).into_response()
}

/// A consumer group's members, committed offsets and lag.
#[utoipa::path(get, path = "/v1/groups/{group}", tag = "groups",
    params(("group" = String, Path, description = "The group")),
    responses(
        (status = 200, description = "The group", body = Object),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 403, description = "Not the operator", body = ErrorBody),
        (status = 404, description = "No such group", body = ErrorBody),
    ))]
async fn describe(
    _: OperatorIfEnabled,
    State(plane): State<ControlPlane>,
    Path(group): Path<String>,
) -> Response {
    match plane.groups.describe(&group).await {
        Ok(Some(view)) => Json(view).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "group_not_found",
            format!("consumer group `{group}` does not exist: it has no members and no committed offsets"),
        ),
        Err(e) => unavailable(e),
    }
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::warn!(error = %e, "group view failed");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "catalog_unavailable",
        format!("the catalog could not be read: {e}; retry shortly"),
    )
}

/// Every refusal is `{"error": code, "message": what and how to fix}`.
fn error(status: StatusCode, code: &str, message: String) -> Response {
    (status, Json(json!({ "error": code, "message": message }))).into_response()
}
