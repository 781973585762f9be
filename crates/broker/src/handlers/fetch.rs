//! Fetch: committed batches from each requested partition, long-polling
//! until `min_bytes` are available or `max_wait_ms` passes. A fetch from an
//! offset inside a batch returns the whole batch; the client skips ahead.
//! A partition whose leader is not at the epoch the fetch expects
//! (KIP-320) answers at once with the error, so the client refreshes.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::future::{select_all, FutureExt};
use futures::stream::{self, StreamExt};
use kafka_protocol::messages::fetch_request::FetchPartition;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ResponseKind};
use sluice_storage::storage::ReadResult;
use sluice_storage::StorageError;
use tokio::time::Instant;

use sluice_protocol::ErrorCode;
use sluice_tenancy::acl::{Operation, ResourceType};

use super::{check_leader_epoch, count_error, storage_error, Reply, RequestMeta};
use crate::authz::authorize;
use crate::context::BrokerContext;
use crate::session::Session;

/// A broker-side cap on how long a fetch may wait, whatever it asks for.
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);

/// Partitions of one fetch read at the same time.
const PARALLEL_READS: usize = 16;
/// The most a fetch response may carry (Kafka's `fetch.max.bytes`
/// default): a request asking for more, or for no limit, gets this. It
/// bounds what each partition's read holds in memory too.
const FETCH_MAX_BYTES: usize = 55 << 20;

pub fn handle(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    mut req: FetchRequest,
    meta: RequestMeta,
) -> Reply {
    // Topics the principal may not read are answered at once and never
    // polled; Fetch carries no error message, the code says it.
    let (allowed, refused): (Vec<_>, Vec<_>) =
        std::mem::take(&mut req.topics).into_iter().partition(|t| {
            authorize(ctx, session, Operation::Read, ResourceType::Topic, &t.topic).is_ok()
        });
    req.topics = allowed;
    let refused: Vec<_> = refused
        .into_iter()
        .map(|t| {
            FetchableTopicResponse::default()
                .with_topic(t.topic.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            PartitionData::default()
                                .with_partition_index(p.partition)
                                .with_error_code(count_error(
                                    meta,
                                    ErrorCode::TopicAuthorizationFailed,
                                ))
                                .with_high_watermark(-1)
                                .with_last_stable_offset(-1)
                                .with_log_start_offset(-1)
                        })
                        .collect(),
                )
        })
        .collect();
    let ctx = ctx.clone();
    Reply::Later(
        async move {
            let mut response = fetch(&ctx, req, meta).await;
            response.responses.extend(refused);
            meta.encode(ResponseKind::Fetch(response))
        }
        .boxed(),
    )
}

async fn fetch(ctx: &Arc<BrokerContext>, req: FetchRequest, meta: RequestMeta) -> FetchResponse {
    let wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_WAIT_CAP);
    let deadline = Instant::now() + wait;
    let min_bytes = req.min_bytes.max(0) as usize;
    let read_committed = req.isolation_level == 1;
    loop {
        // Subscribe before reading so a commit in between still wakes us.
        let mut watches: Vec<_> = req
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .filter_map(|p| ctx.storage.partition(&t.topic, p.partition).ok())
                    .map(|log| log.subscribe())
            })
            .collect();
        let (response, bytes, any_error) = read_once(ctx, &req, meta, read_committed).await;
        if bytes >= min_bytes || any_error || Instant::now() >= deadline || watches.is_empty() {
            return response;
        }
        let changed = select_all(watches.iter_mut().map(|w| w.changed().boxed()));
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            // Timed out: answer with what there is (read again: a commit may
            // have landed after the last read without waking us).
            return read_once(ctx, &req, meta, read_committed).await.0;
        }
    }
}

/// One pass over the requested partitions within the byte budgets.
///
/// Partitions are read concurrently, up to [`PARALLEL_READS`] ahead of
/// the one being placed: a cold read waits on the catalog's index and the
/// object store, and reading a fetch's partitions one after another made a
/// consumer wait for the sum of those waits. Each read asks for what the
/// partition could contribute on its own; the response's budget is then
/// applied in request order, as Kafka does, trimming reads that no longer
/// fit; once it is spent, the remaining partitions report their offsets
/// without records and are not read.
async fn read_once(
    ctx: &Arc<BrokerContext>,
    req: &FetchRequest,
    meta: RequestMeta,
    read_committed: bool,
) -> (FetchResponse, usize, bool) {
    let max_total = if req.max_bytes > 0 {
        (req.max_bytes as usize).min(FETCH_MAX_BYTES)
    } else {
        FETCH_MAX_BYTES
    };
    let mut pending = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            let limit = partition_limit(p, max_total).max(1);
            pending.push(async move {
                check_leader_epoch(ctx, &t.topic, p.partition, p.current_leader_epoch)?;
                ctx.storage
                    .read(&t.topic, p.partition, p.fetch_offset, limit)
                    .await
            });
        }
    }
    // Results come in request order; at most PARALLEL_READS are read
    // ahead of the one being placed, so a spent budget wastes little.
    let mut reads = stream::iter(pending).buffered(PARALLEL_READS);

    let mut budget = max_total;
    let mut total = 0;
    let mut any_error = false;
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let limit = partition_limit(p, max_total).min(budget);
            let mut data = PartitionData::default()
                .with_partition_index(p.partition)
                .with_aborted_transactions(read_committed.then(Vec::new));
            let result = if budget == 0 && total > 0 {
                // The response is full (for good: the budget only shrinks):
                // offsets only, and no more reads.
                check_leader_epoch(ctx, &t.topic, p.partition, p.current_leader_epoch)
                    .and_then(|()| ctx.storage.partition(&t.topic, p.partition))
                    .map(|log| spent_read(log.offsets()))
            } else {
                reads
                    .next()
                    .await
                    .unwrap_or_else(|| Err(StorageError::Catalog("fetch read missing".into())))
            };
            match result {
                Ok(mut r) => {
                    // Only the response's first batch may exceed the
                    // limits (KIP-74), so that a consumer always progresses.
                    if r.bytes > limit {
                        (r.batches, r.bytes) = trim(r.batches, limit, total == 0);
                    }
                    total += r.bytes;
                    budget = budget.saturating_sub(r.bytes);
                    let records = records_in(&r.batches);
                    metrics::counter!("sluice_bytes_out_total").increment(r.bytes as u64);
                    metrics::counter!("sluice_records_out_total").increment(records);
                    if records > 0 {
                        ctx.traffic.record_out(&t.topic, records, r.bytes as u64);
                    }
                    data = data
                        .with_high_watermark(r.high_watermark)
                        .with_last_stable_offset(r.high_watermark)
                        .with_log_start_offset(r.log_start)
                        .with_records(Some(concat(r.batches)));
                }
                Err(e) => {
                    any_error = true;
                    let (code, _) = storage_error(meta, &e);
                    data = data
                        .with_error_code(code)
                        .with_high_watermark(-1)
                        .with_last_stable_offset(-1);
                    if let StorageError::OffsetOutOfRange {
                        log_start,
                        high_watermark,
                        ..
                    } = e
                    {
                        data = data
                            .with_high_watermark(high_watermark)
                            .with_last_stable_offset(high_watermark)
                            .with_log_start_offset(log_start);
                    }
                }
            }
            partitions.push(data);
        }
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(t.topic.clone())
                .with_topic_id(t.topic_id)
                .with_partitions(partitions),
        );
    }
    (
        FetchResponse::default().with_responses(topics),
        total,
        any_error,
    )
}

/// A partition's answer once the response is full: its offsets, no records.
fn spent_read(o: sluice_storage::partition::Offsets) -> ReadResult {
    ReadResult {
        log_start: o.log_start,
        high_watermark: o.high_watermark,
        ..Default::default()
    }
}

/// What one partition may contribute to a response of `max_total` bytes.
fn partition_limit(p: &FetchPartition, max_total: usize) -> usize {
    (p.partition_max_bytes.max(0) as usize).min(max_total)
}

/// The leading whole batches of `batches` that fit in `limit` bytes, and
/// their size; with `first_of_response`, at least the first batch.
fn trim(batches: Vec<Bytes>, limit: usize, first_of_response: bool) -> (Vec<Bytes>, usize) {
    let mut kept = Vec::new();
    let mut taken = 0;
    for b in batches {
        let mut end = 0;
        for (at, h) in sluice_protocol::batch::batches(&b) {
            let always = first_of_response && taken == 0;
            if !always && taken + h.size > limit {
                break;
            }
            taken += h.size;
            end = at + h.size;
        }
        let whole = end == b.len();
        if end > 0 {
            kept.push(b.slice(..end));
        }
        if !whole {
            break;
        }
    }
    (kept, taken)
}

fn concat(batches: Vec<Bytes>) -> Bytes {
    match batches.len() {
        0 => Bytes::new(),
        1 => batches.into_iter().next().unwrap_or_default(),
        _ => {
            let mut b = BytesMut::with_capacity(batches.iter().map(Bytes::len).sum());
            for x in batches {
                b.extend_from_slice(&x);
            }
            b.freeze()
        }
    }
}

fn records_in(batches: &[Bytes]) -> u64 {
    batches
        .iter()
        .flat_map(|b| sluice_protocol::batch::batches(b).map(|(_, h)| h.record_count.max(0) as u64))
        .sum()
}
