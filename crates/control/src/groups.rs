//! `/v1/groups`: consumer groups with their members, committed offsets and
//! lag, as `sluice groups list|describe` shows them. With multi-tenancy on
//! they span every tenant, so they take the operator token.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;

use crate::auth::OperatorIfEnabled;
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

pub fn routes() -> Router<ControlPlane> {
    Router::new()
        .route("/v1/groups", get(list))
        .route("/v1/groups/{group}", get(describe))
}

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
