//! `/v1/topics`: list, create, show, change and destroy topics, and write
//! and read their records, as `sluice topics` does.
//!
//! Every endpoint takes an optional `?tenant=NAME`. A tenant token acts on
//! its own tenant's topics whatever it names; the operator acts on the
//! named tenant's topics, or on every topic without `tenant`. In a
//! tenant's scope, names without the tenant's prefix get it (`orders` is
//! `acme.orders`), answers show full names, and the tenant's plan applies:
//! the guard rails of `sluice_tenancy::limits` (topic and partition counts,
//! which configs and within which bounds, the plan's defaults) exactly as
//! on the Kafka Admin API, and its capacity and produce quota for records
//! written here. A topic outside the scope is answered as missing (404),
//! so a tenant cannot learn other tenants' topic names.
//!
//! Records written here are ordinary Kafka record batches (magic 2, no
//! compression, no producer id), so Kafka consumers read them like any
//! other; records read here are decoded from the stored batches, with keys
//! and values as UTF-8 text when they are valid UTF-8 and base64 otherwise
//! (`key_encoding`, `value_encoding`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
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

/// Records one read answers at most, and by default.
const MAX_LIMIT: u32 = 1000;
const DEFAULT_LIMIT: u32 = 100;
/// About how many bytes of batches one read fetches from storage.
const READ_BYTES: usize = 1 << 20;
/// The longest a throttled REST write is held before it is answered.
const MAX_THROTTLE: Duration = Duration::from_secs(5);

pub fn routes() -> OpenApiRouter<ControlPlane> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(info, alter, destroy))
        .routes(routes!(read, write))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct TenantQuery {
    /// The tenant whose topics to act on (operator token only; a tenant
    /// token always acts on its own tenant). Without it the operator acts
    /// on every topic, by full name.
    tenant: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ReadQuery {
    /// As for the other topic endpoints.
    tenant: Option<String>,
    /// The partition to read.
    partition: i32,
    /// The first offset to read; the partition's log start when left out.
    /// Must lie within `[log_start, high_watermark]` (see the topic's
    /// `partition_offsets`).
    offset: Option<i64>,
    /// At most this many records (1 to 1000; 100 when left out).
    #[param(minimum = 0, maximum = 4294967295_u64)]
    limit: Option<u32>,
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

/// One record to write.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct WriteRecord {
    /// The value as UTF-8 text; `null` or left out writes a record without
    /// a value (a tombstone on a compacted topic).
    value: Option<String>,
    /// The key as UTF-8 text; none when left out. Compacted topics need one.
    key: Option<String>,
    /// The partition; when left out, the key's partition as Kafka's
    /// default partitioner picks it (murmur2), or round robin without a key.
    partition: Option<i32>,
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

/// Where a written record landed.
#[derive(Debug, Serialize, ToSchema)]
struct Written {
    topic: String,
    partition: i32,
    offset: i64,
    timestamp: i64,
}

/// One record read.
#[derive(Debug, Serialize, ToSchema)]
struct RecordView {
    topic: String,
    partition: i32,
    offset: i64,
    /// Milliseconds since the epoch (create or log-append time).
    timestamp: i64,
    /// `null` when the record has no key.
    key: Option<String>,
    /// `utf8` or `base64`: how `key` is written.
    key_encoding: String,
    /// `null` when the record has no value.
    value: Option<String>,
    /// `utf8` or `base64`: how `value` is written.
    value_encoding: String,
    /// The value's length in bytes (0 without a value).
    length: usize,
}

/// Records of one partition from an offset.
#[derive(Debug, Serialize, ToSchema)]
struct RecordsRead {
    records: Vec<RecordView>,
    /// The offset to read next.
    next_offset: i64,
    log_start: i64,
    high_watermark: i64,
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

/// Writes one record as a Kafka record batch; answers once it is
/// committed. A tenant's write counts against its capacity and produce
/// quota as a Kafka produce does.
#[utoipa::path(post, path = "/v1/topics/{topic}/records", tag = "topics",
    params(("topic" = String, Path, description = "The topic; in a tenant's scope the prefix is added when missing"), TenantQuery),
    request_body(content = WriteRecord, content_type = "application/json"),
    responses(
        (status = 201, description = "Committed", body = Written),
        (status = 400, description = "A bad record (e.g. no key on a compacted topic) or body", body = ErrorBody),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 404, description = "No such topic (in scope), partition or tenant", body = ErrorBody),
        (status = 413, description = "Larger than the topic's max.message.bytes", body = ErrorBody),
        (status = 422, description = "The tenant is at its plan's capacity", body = ErrorBody),
        (status = 503, description = "Storage is unavailable", body = ErrorBody),
    ))]
async fn write(
    caller: Caller,
    State(plane): State<ControlPlane>,
    Path(topic): Path<String>,
    ApiQuery(q): ApiQuery<TenantQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: WriteRecord = parse_body(&body)?;
    let scope = caller.scope(&plane, q.tenant.as_deref())?;
    let topic = find(&plane, &scope, &topic)?;
    let count = topic.partition_count();
    let key = req.key.map(bytes::Bytes::from);
    let partition = match (req.partition, &key) {
        (Some(p), _) => p,
        (None, Some(k)) => (murmur2(k) & 0x7fff_ffff) % count.max(1),
        (None, None) => {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            (NEXT.fetch_add(1, Ordering::Relaxed) % count.max(1) as u32) as i32
        }
    };
    topic.partition(partition).map_err(refusal)?;
    let timestamp = now_ms();
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp,
        key,
        value: req.value.map(bytes::Bytes::from),
        headers: Default::default(),
    };
    let mut batch = bytes::BytesMut::new();
    RecordBatchEncoder::encode(
        &mut batch,
        [&record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| ApiError::unavailable("encoding the record", e))?;
    let size = batch.len() as u64;
    let throttle = match owner(&plane, &scope, &topic.name) {
        Some(tenant) => plane.quotas.admit_write(&tenant, size).map_err(|message| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "policy_violation",
                message,
            )
        })?,
        None => Duration::ZERO,
    };
    let (appended, log_append_time) = plane
        .storage
        .append(&topic.name, partition, batch.freeze())
        .await
        .map_err(refusal)?;
    plane.traffic.record_in(&topic.name, 1, size);
    // As a Kafka produce: appended first, then held for the throttle.
    tokio::time::sleep(throttle.min(MAX_THROTTLE)).await;
    let written = Written {
        topic: topic.name.clone(),
        partition,
        offset: appended.base_offset,
        timestamp: if log_append_time >= 0 {
            log_append_time
        } else {
            timestamp
        },
    };
    Ok((StatusCode::CREATED, Json(written)).into_response())
}

/// Reads committed records of one partition from an offset. Transaction
/// markers are skipped; records of aborted transactions are shown (read
/// uncommitted).
#[utoipa::path(get, path = "/v1/topics/{topic}/records", tag = "topics",
    params(("topic" = String, Path, description = "The topic; in a tenant's scope the prefix is added when missing"), ReadQuery),
    responses(
        (status = 200, description = "Records from the offset, with the offset to read next", body = RecordsRead),
        (status = 400, description = "Offset out of range, or a malformed query string", body = ErrorBody),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 404, description = "No such topic (in scope), partition or tenant", body = ErrorBody),
        (status = 503, description = "Storage is unavailable", body = ErrorBody),
    ))]
async fn read(
    caller: Caller,
    State(plane): State<ControlPlane>,
    Path(topic): Path<String>,
    ApiQuery(q): ApiQuery<ReadQuery>,
) -> Result<Json<RecordsRead>, ApiError> {
    let scope = caller.scope(&plane, q.tenant.as_deref())?;
    let topic = find(&plane, &scope, &topic)?;
    let log = topic.partition(q.partition).map_err(refusal)?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT) as usize;
    let from = q.offset.unwrap_or_else(|| log.offsets().log_start);
    let read = plane
        .storage
        .read(&topic.name, q.partition, from, READ_BYTES)
        .await
        .map_err(refusal)?;
    let mut records = Vec::new();
    let mut next_offset = from;
    let mut bytes_out = 0u64;
    'batches: for batch in read.batches {
        let mut buf = batch;
        let sets = RecordBatchDecoder::decode_all(&mut buf).map_err(|e| {
            ApiError::unavailable(
                "decoding stored records",
                format!("{}-{}: {e}", topic.name, q.partition),
            )
        })?;
        for r in sets.into_iter().flat_map(|s| s.records) {
            if r.offset < from {
                continue;
            }
            if records.len() >= limit {
                break 'batches;
            }
            next_offset = r.offset + 1;
            if r.control {
                continue;
            }
            let length = r.value.as_ref().map_or(0, |v| v.len());
            bytes_out += (length + r.key.as_ref().map_or(0, |k| k.len())) as u64;
            let (key, key_encoding) = text_or_base64(r.key.as_deref());
            let (value, value_encoding) = text_or_base64(r.value.as_deref());
            records.push(RecordView {
                topic: topic.name.clone(),
                partition: q.partition,
                offset: r.offset,
                timestamp: r.timestamp,
                key,
                key_encoding,
                value,
                value_encoding,
                length,
            });
        }
    }
    if !records.is_empty() {
        plane
            .traffic
            .record_out(&topic.name, records.len() as u64, bytes_out);
    }
    Ok(Json(RecordsRead {
        records,
        next_offset,
        log_start: read.log_start,
        high_watermark: read.high_watermark,
    }))
}

// ----- helpers -----

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn cleanup_policy(compaction: bool) -> &'static str {
    if compaction {
        "compact"
    } else {
        "delete"
    }
}

/// Text when valid UTF-8, base64 otherwise; `null` for none.
fn text_or_base64(b: Option<&[u8]>) -> (Option<String>, String) {
    match b {
        None => (None, "utf8".into()),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => (Some(s.to_string()), "utf8".into()),
            Err(_) => (
                Some(base64::engine::general_purpose::STANDARD.encode(b)),
                "base64".into(),
            ),
        },
    }
}

/// The topic a user named, if it exists in scope; anything else is
/// answered as missing.
fn find(plane: &ControlPlane, scope: &Scope, name: &str) -> Result<Arc<Topic>, ApiError> {
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

/// The tenant whose capacity a write to `topic` counts against: the
/// scope's, or, for the operator, the tenant whose prefix the name has.
fn owner(plane: &ControlPlane, scope: &Scope, topic: &str) -> Option<String> {
    if let Some(t) = &scope.tenant {
        return Some(t.clone());
    }
    if !plane.tenancy.enabled() {
        return None;
    }
    let (tenant, _) = topic.split_once('.')?;
    plane
        .tenancy
        .tenant(tenant)
        .ok()
        .map(|_| tenant.to_string())
}

async fn sizes(plane: &ControlPlane) -> Result<BTreeMap<String, i64>, ApiError> {
    Ok(plane
        .storage
        .catalog()
        .bytes_by_topic()
        .await
        .map_err(|e| ApiError::unavailable("reading topic sizes from the catalog", e))?
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
fn refusal(e: StorageError) -> ApiError {
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
        _ => return ApiError::unavailable("storage", e),
    };
    ApiError::new(status, code, e.to_string())
}

/// Kafka's murmur2, as its default partitioner hashes keys.
fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let chunks = data.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    if rest.len() >= 3 {
        h ^= (rest[2] as u32) << 16;
    }
    if rest.len() >= 2 {
        h ^= (rest[1] as u32) << 8;
    }
    if !rest.is_empty() {
        h ^= rest[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58897971
        );
        assert_eq!(murmur2(b"abc"), 479470107);
    }

    #[test]
    fn binary_is_base64() {
        assert_eq!(
            text_or_base64(Some(b"hi")),
            (Some("hi".into()), "utf8".into())
        );
        assert_eq!(
            text_or_base64(Some(&[0xff, 0])),
            (Some("/wA=".into()), "base64".into())
        );
        assert_eq!(text_or_base64(None), (None, "utf8".into()));
    }

    #[test]
    fn uuids_are_hyphenated() {
        assert_eq!(
            uuid_text(&[0xab; 16]),
            "abababab-abab-abab-abab-abababababab"
        );
    }
}
