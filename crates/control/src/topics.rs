//! `/v1/topics`: list, create, show, change and destroy topics, as
//! `sluice topics` does. Their records (`/v1/topics/{topic}/records`) are
//! in `topic_records`, which finds topics and words refusals with the
//! helpers here.
//!
//! Every endpoint takes an optional `?tenant=NAME`. A tenant token acts on
//! its own tenant's topics whatever it names; the operator acts on the
//! named tenant's topics, or on every topic without `tenant`. In a
//! tenant's scope, names without the tenant's prefix get it (`orders` is
//! `acme.orders`), answers show full names, and the tenant's plan applies:
//! the guard rails of `sluice_tenancy::limits` (topic and partition counts,
//! which configs and within which bounds, the plan's defaults) exactly as
//! on the Kafka Admin API. A topic outside the scope is answered as missing
//! (404), so a tenant cannot learn other tenants' topic names.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use sluice_protocol::ErrorCode;
use sluice_storage::storage::Topic;
use sluice_storage::StorageError;
use sluice_tenancy::limits::{self, Refusal, TopicUsage};
use sluice_tenancy::Plan;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Caller, Scope};
use crate::error::{parse_body, ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::ControlPlane;

pub fn routes() -> OpenApiRouter<ControlPlane> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(info, alter, destroy))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TenantQuery {
    /// The tenant whose topics to act on (operator token only; a tenant
    /// token always acts on its own tenant). Without it the operator acts
    /// on every topic, by full name.
    pub(crate) tenant: Option<String>,
}

/// A new topic.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateTopic {
    /// The topic's name; in a tenant's scope the tenant's prefix is added
    /// when missing.
    name: String,
    /// How many partitions; the plan's default (or the broker's
    /// `--num-partitions` without a plan) when left out.
    partitions: Option<i32>,
    /// `retention.ms`: how long records are kept, in milliseconds (-1:
    /// forever); the plan's default when left out, within its bounds.
    retention_ms: Option<i64>,
    /// Compaction on (`cleanup.policy=compact`: the latest record of each
    /// key is kept) or off (`delete`, the default).
    compaction: Option<bool>,
    /// Further Kafka topic configs by name (e.g. `max.message.bytes`); a
    /// tenant may set only those its plan allows.
    configs: Option<BTreeMap<String, String>>,
}

/// Changes to a topic; at least one field.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AlterTopic {
    /// The new `retention.ms` in milliseconds (-1: forever).
    retention_ms: Option<i64>,
    /// Compaction on (`cleanup.policy=compact`) or off (`delete`).
    compaction: Option<bool>,
    /// The new, larger, total partition count (partitions are only ever
    /// added).
    partitions: Option<i32>,
}

/// A topic as `sluice topics list` shows it.
#[derive(Debug, Serialize, ToSchema)]
struct TopicSummary {
    /// The full name, with the tenant's prefix.
    name: String,
    partitions: i32,
    /// `retention.ms` in effect (-1: forever).
    retention_ms: i64,
    /// Whether `cleanup.policy` includes `compact`.
    compaction: bool,
    cleanup_policy: String,
    /// Bytes stored for the topic's committed records.
    data_size_bytes: i64,
    /// Rates over the last 10 s on this broker.
    messages_in_per_sec: f64,
    bytes_in_per_sec: f64,
    messages_out_per_sec: f64,
    bytes_out_per_sec: f64,
    created_ms: i64,
}

#[derive(Debug, Serialize, ToSchema)]
struct TopicList {
    topics: Vec<TopicSummary>,
}

/// Where one partition's log stands.
#[derive(Debug, Serialize, ToSchema)]
struct PartitionOffsets {
    partition: i32,
    /// The first offset still held.
    log_start: i64,
    /// The offset the next record will get.
    high_watermark: i64,
}

/// A topic with its configs and partitions, as `sluice topics info`
/// shows it.
#[derive(Debug, Serialize, ToSchema)]
struct TopicInfo {
    #[serde(flatten)]
    summary: TopicSummary,
    /// The topic id (UUID) Kafka clients see.
    id: String,
    /// Records held (sum of `high_watermark - log_start`; compaction and
    /// transaction markers make it an upper bound).
    messages: i64,
    /// Explicitly set topic configs.
    configs: BTreeMap<String, String>,
    partition_offsets: Vec<PartitionOffsets>,
}

#[derive(Debug, Serialize, ToSchema)]
struct Destroyed {
    /// The destroyed topic's full name.
    destroyed: String,
}

/// Every topic in scope with its size and rates.
#[utoipa::path(get, path = "/v1/topics", tag = "topics",
    params(TenantQuery),
    responses(
        (status = 200, description = "The topics, by name", body = TopicList),
        (status = 400, description = "Malformed query string", body = ErrorBody),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 404, description = "No such tenant, or multi-tenancy is off and a tenant was named", body = ErrorBody),
        (status = 503, description = "The catalog is unavailable", body = ErrorBody),
    ))]
async fn list(
    caller: Caller,
    State(plane): State<ControlPlane>,
    ApiQuery(q): ApiQuery<TenantQuery>,
) -> Result<Json<TopicList>, ApiError> {
    let scope = caller.scope(&plane, q.tenant.as_deref())?;
    let sizes = sizes(&plane).await?;
    let mut topics: Vec<_> = plane
        .storage
        .topics()
        .into_iter()
        .filter(|t| scope.contains(&t.name))
        .map(|t| summary(&plane, &t, &sizes))
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(TopicList { topics }))
}

/// Creates a topic, within the tenant's plan.
#[utoipa::path(post, path = "/v1/topics", tag = "topics",
    params(TenantQuery),
    request_body(content = CreateTopic, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = TopicInfo),
        (status = 400, description = "Bad name, partition count, config or body", body = ErrorBody),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 409, description = "The topic exists", body = ErrorBody),
        (status = 422, description = "Refused by the plan's guard rails", body = ErrorBody),
        (status = 503, description = "The catalog is unavailable", body = ErrorBody),
    ))]
async fn create(
    caller: Caller,
    State(plane): State<ControlPlane>,
    ApiQuery(q): ApiQuery<TenantQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: CreateTopic = parse_body(&body)?;
    let scope = caller.scope(&plane, q.tenant.as_deref())?;
    let name = scope.full_name(&req.name);
    let mut configs = req.configs.unwrap_or_default();
    if let Some(ms) = req.retention_ms {
        configs.insert("retention.ms".into(), ms.to_string());
    }
    if let Some(on) = req.compaction {
        configs.insert("cleanup.policy".into(), cleanup_policy(on).into());
    }
    let requested = req.partitions.unwrap_or(-1);
    let partitions = match plan_and_usage(&plane, &scope)? {
        Some((plan, usage)) => {
            limits::check_new_topic(&plan, usage, requested, &mut configs).map_err(guard_rail)?
        }
        None if requested == -1 => plane.service.default_partitions.max(1),
        None => requested,
    };
    let topic = plane
        .storage
        .create_topic(&name, partitions, configs, false)
        .await
        .map_err(refusal)?
        .ok_or_else(|| ApiError::unavailable("creating the topic", "nothing was created"))?;
    let sizes = BTreeMap::new();
    Ok((
        StatusCode::CREATED,
        Json(topic_info(&plane, &topic, &sizes)),
    )
        .into_response())
}

/// A topic with its configs, partitions, size and rates.
#[utoipa::path(get, path = "/v1/topics/{topic}", tag = "topics",
    params(("topic" = String, Path, description = "The topic; in a tenant's scope the prefix is added when missing"), TenantQuery),
    responses(
        (status = 200, description = "The topic", body = TopicInfo),
        (status = 400, description = "Malformed query string", body = ErrorBody),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 404, description = "No such topic (in scope) or tenant", body = ErrorBody),
        (status = 503, description = "The catalog is unavailable", body = ErrorBody),
    ))]
async fn info(
    caller: Caller,
    State(plane): State<ControlPlane>,
    Path(topic): Path<String>,
    ApiQuery(q): ApiQuery<TenantQuery>,
) -> Result<Json<TopicInfo>, ApiError> {
    let scope = caller.scope(&plane, q.tenant.as_deref())?;
    let topic = find(&plane, &scope, &topic)?;
    let sizes = sizes(&plane).await?;
    Ok(Json(topic_info(&plane, &topic, &sizes)))
}

/// Changes a topic's retention time or compaction, or adds partitions,
/// within the tenant's plan. Everything is checked before anything
/// changes.
#[utoipa::path(patch, path = "/v1/topics/{topic}", tag = "topics",
    params(("topic" = String, Path, description = "The topic; in a tenant's scope the prefix is added when missing"), TenantQuery),
    request_body(content = AlterTopic, content_type = "application/json"),
    responses(
        (status = 200, description = "The changed topic", body = TopicInfo),
        (status = 400, description = "Nothing to change, a bad value or body", body = ErrorBody),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 404, description = "No such topic (in scope) or tenant", body = ErrorBody),
        (status = 422, description = "Refused by the plan's guard rails", body = ErrorBody),
        (status = 503, description = "The catalog is unavailable", body = ErrorBody),
    ))]
async fn alter(
    caller: Caller,
    State(plane): State<ControlPlane>,
    Path(topic): Path<String>,
    ApiQuery(q): ApiQuery<TenantQuery>,
    body: Bytes,
) -> Result<Json<TopicInfo>, ApiError> {
    let req: AlterTopic = parse_body(&body)?;
    let scope = caller.scope(&plane, q.tenant.as_deref())?;
    let topic = find(&plane, &scope, &topic)?;
    if req.retention_ms.is_none() && req.compaction.is_none() && req.partitions.is_none() {
        return Err(ApiError::bad_request(
            "nothing to change: give `retention_ms`, `compaction` or `partitions`",
        ));
    }
    let mut changed = BTreeMap::new();
    if let Some(ms) = req.retention_ms {
        changed.insert("retention.ms".to_string(), ms.to_string());
    }
    if let Some(on) = req.compaction {
        changed.insert("cleanup.policy".to_string(), cleanup_policy(on).to_string());
    }
    if let Some((plan, usage)) = plan_and_usage(&plane, &scope)? {
        limits::check_configs(&plan, &changed).map_err(guard_rail)?;
        if let Some(total) = req.partitions {
            limits::check_more_partitions(&plan, usage, topic.partition_count(), total)
                .map_err(guard_rail)?;
        }
    }
    let mut configs = topic.config().explicit;
    configs.extend(changed.clone());
    // Check both changes before making either.
    if !changed.is_empty() {
        plane
            .storage
            .set_topic_configs(&topic.name, configs.clone(), true)
            .await
            .map_err(refusal)?;
    }
    if let Some(total) = req.partitions {
        plane
            .storage
            .create_partitions(&topic.name, total, false)
            .await
            .map_err(refusal)?;
    }
    if !changed.is_empty() {
        plane
            .storage
            .set_topic_configs(&topic.name, configs, false)
            .await
            .map_err(refusal)?;
    }
    let sizes = sizes(&plane).await?;
    Ok(Json(topic_info(&plane, &topic, &sizes)))
}

/// Deletes a topic with its records.
#[utoipa::path(delete, path = "/v1/topics/{topic}", tag = "topics",
    params(("topic" = String, Path, description = "The topic; in a tenant's scope the prefix is added when missing"), TenantQuery),
    responses(
        (status = 200, description = "Destroyed", body = Destroyed),
        (status = 400, description = "Malformed query string", body = ErrorBody),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 404, description = "No such topic (in scope) or tenant", body = ErrorBody),
        (status = 503, description = "The catalog is unavailable", body = ErrorBody),
    ))]
async fn destroy(
    caller: Caller,
    State(plane): State<ControlPlane>,
    Path(topic): Path<String>,
    ApiQuery(q): ApiQuery<TenantQuery>,
) -> Result<Json<Destroyed>, ApiError> {
    let scope = caller.scope(&plane, q.tenant.as_deref())?;
    let topic = find(&plane, &scope, &topic)?;
    plane
        .storage
        .delete_topic(&topic.name)
        .await
        .map_err(refusal)?;
    plane.traffic.forget(&topic.name);
    Ok(Json(Destroyed {
        destroyed: topic.name.clone(),
    }))
}

// ----- helpers -----

fn cleanup_policy(compaction: bool) -> &'static str {
    if compaction {
        "compact"
    } else {
        "delete"
    }
}

/// The topic a user named, if it exists in scope; anything else is
/// answered as missing.
pub(crate) fn find(
    plane: &ControlPlane,
    scope: &Scope,
    name: &str,
) -> Result<Arc<Topic>, ApiError> {
    let full = scope.full_name(name);
    match plane.storage.topic(&full) {
        Ok(t) if scope.contains(&t.name) => Ok(t),
        _ => Err(topic_not_found(&full)),
    }
}

fn topic_not_found(full: &str) -> ApiError {
    ApiError::not_found(
        "topic_not_found",
        format!("topic `{full}` does not exist; `sluice topics list` shows the topics you can use"),
    )
}

/// The tenant's plan and what it holds, when the scope is a tenant's.
fn plan_and_usage(
    plane: &ControlPlane,
    scope: &Scope,
) -> Result<Option<(Arc<Plan>, TopicUsage)>, ApiError> {
    let (Some(tenant), Some(prefix)) = (&scope.tenant, &scope.prefix) else {
        return Ok(None);
    };
    let plan = plane.tenancy.tenant_plan(tenant)?;
    let mut usage = TopicUsage::default();
    for t in plane.storage.topics() {
        if t.name.starts_with(prefix.as_str()) {
            usage.topics += 1;
            usage.partitions += t.partition_count().max(0) as u32;
        }
    }
    Ok(Some((plan, usage)))
}

async fn sizes(plane: &ControlPlane) -> Result<BTreeMap<String, i64>, ApiError> {
    Ok(plane
        .storage
        .catalog()
        .bytes_by_topic()
        .await
        .map_err(|e| ApiError::storage("reading topic sizes from the catalog", &e))?
        .into_iter()
        .collect())
}

fn summary(plane: &ControlPlane, t: &Topic, sizes: &BTreeMap<String, i64>) -> TopicSummary {
    let config = t.config();
    let policy = config
        .get("cleanup.policy")
        .map(|(v, _)| v)
        .unwrap_or_else(|| "delete".into());
    let rates = plane.traffic.rates(&t.name);
    TopicSummary {
        name: t.name.clone(),
        partitions: t.partition_count(),
        retention_ms: config.retention_ms(),
        compaction: policy.contains("compact"),
        cleanup_policy: policy,
        data_size_bytes: sizes.get(&t.name).copied().unwrap_or(0),
        messages_in_per_sec: rates.messages_in_per_sec,
        bytes_in_per_sec: rates.bytes_in_per_sec,
        messages_out_per_sec: rates.messages_out_per_sec,
        bytes_out_per_sec: rates.bytes_out_per_sec,
        created_ms: t.created_ms,
    }
}

fn topic_info(plane: &ControlPlane, t: &Topic, sizes: &BTreeMap<String, i64>) -> TopicInfo {
    let partition_offsets: Vec<_> = t
        .partitions()
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let o = p.offsets();
            PartitionOffsets {
                partition: i as i32,
                log_start: o.log_start,
                high_watermark: o.high_watermark,
            }
        })
        .collect();
    TopicInfo {
        summary: summary(plane, t, sizes),
        id: uuid_text(&t.uuid),
        messages: partition_offsets
            .iter()
            .map(|p| p.high_watermark - p.log_start)
            .sum(),
        configs: t.config().explicit,
        partition_offsets,
    }
}

fn uuid_text(b: &[u8; 16]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// A guard rail's refusal: 422 with the rule and the fix.
fn guard_rail(r: Refusal) -> ApiError {
    let code = match r {
        Refusal::Policy(_) => "policy_violation",
        Refusal::Partitions(_) => "invalid_partitions",
        Refusal::Config(_) => "invalid_config",
    };
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, r.to_string())
}

/// A storage refusal: 4xx for what the caller can fix, 503 otherwise.
pub(crate) fn refusal(e: StorageError) -> ApiError {
    use StorageError as S;
    let (status, code) = match &e {
        S::UnknownTopic(name) => return topic_not_found(name),
        S::UnknownPartition { .. } => (StatusCode::NOT_FOUND, "partition_not_found"),
        S::TopicExists(_) => (StatusCode::CONFLICT, "topic_exists"),
        S::InvalidTopic(_) => (StatusCode::BAD_REQUEST, "invalid_topic"),
        S::InvalidPartitions(_) => (StatusCode::BAD_REQUEST, "invalid_partitions"),
        S::InvalidConfig(_) => (StatusCode::BAD_REQUEST, "invalid_config"),
        S::OffsetOutOfRange { .. } => (StatusCode::BAD_REQUEST, "offset_out_of_range"),
        S::InvalidRecord(b) if b.code() == ErrorCode::MessageTooLarge => {
            (StatusCode::PAYLOAD_TOO_LARGE, "record_too_large")
        }
        S::InvalidRecord(_) => (StatusCode::BAD_REQUEST, "invalid_record"),
        _ => return ApiError::storage("storage", &e),
    };
    ApiError::new(status, code, e.client_message())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_hyphenated() {
        assert_eq!(
            uuid_text(&[0xab; 16]),
            "abababab-abab-abab-abab-abababababab"
        );
    }
}
