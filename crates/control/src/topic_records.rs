//! `/v1/topics/{topic}/records`: write and read a topic's records, as
//! `sluice topics write` and `sluice topics tail` do.
//!
//! Topics are found in the caller's scope as by the other topic endpoints
//! (`topics`, whose helpers these use): the same `?tenant=NAME`, the same
//! prefixing, and a topic outside the scope is answered as missing (404).
//! A tenant's writes count against its plan's capacity and produce quota
//! as a Kafka produce does, and its own reads against its consume quota as
//! a Kafka fetch does: an answer over the quota is held for the throttle.
//!
//! Records written here are ordinary Kafka record batches (magic 2, no
//! compression, no producer id), so Kafka consumers read them like any
//! other; records read here are decoded from the stored batches, with keys
//! and values as UTF-8 text when they are valid UTF-8 and base64 otherwise
//! (`key_encoding`, `value_encoding`).

use std::sync::atomic::{AtomicU32, Ordering};
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
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Caller, Scope};
use crate::error::{parse_body, ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::topics::{find, refusal, TenantQuery};
use crate::ControlPlane;

/// Records one read answers at most, and by default.
const MAX_LIMIT: u32 = 1000;
const DEFAULT_LIMIT: u32 = 100;
/// About how many bytes of batches one read fetches from storage.
const READ_BYTES: usize = 1 << 20;
/// The longest a throttled REST write or read is held before it is answered.
const MAX_THROTTLE: Duration = Duration::from_secs(5);

pub fn routes() -> OpenApiRouter<ControlPlane> {
    OpenApiRouter::new().routes(routes!(read, write))
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
    let timestamp = sluice_storage::now_ms();
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
    let batches = read.batches.iter().flat_map(|slice| {
        sluice_protocol::batch::batches(slice)
            .map(|(at, h)| (slice.slice(at..at + h.size), h.last_offset()))
            .collect::<Vec<_>>()
    });
    'batches: for (batch, last_offset) in batches {
        let mut buf = batch;
        let set = RecordBatchDecoder::decode(&mut buf).map_err(|e| {
            ApiError::unavailable(
                "decoding stored records",
                format!("{}-{}: {e}", topic.name, q.partition),
            )
        })?;
        // A compacted batch may end past its last record: once it is read
        // whole, the next read starts after it, as Kafka clients do.
        let after_batch = last_offset + 1;
        for r in set.records {
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
        next_offset = next_offset.max(after_batch);
    }
    if !records.is_empty() {
        plane
            .traffic
            .record_out(&topic.name, records.len() as u64, bytes_out);
    }
    // A tenant's own reads only: the operator tailing a tenant's topic
    // must not throttle the tenant's consumers (Kafka does not throttle
    // superusers either).
    let throttle = match &scope.tenant {
        Some(tenant) => plane.quotas.admit_read(tenant, bytes_out),
        None => Duration::ZERO,
    };
    tokio::time::sleep(throttle.min(MAX_THROTTLE)).await;
    Ok(Json(RecordsRead {
        records,
        next_offset,
        log_start: read.log_start,
        high_watermark: read.high_watermark,
    }))
}

// ----- helpers -----

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
}
