//! Fetch: committed batches from each requested partition, long-polling
//! until `min_bytes` are available or `max_wait_ms` passes. A fetch from an
//! offset inside a batch returns the whole batch; the client skips ahead.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::future::{select_all, FutureExt};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ResponseKind};
use sluice_storage::StorageError;
use tokio::time::Instant;

use sluice_protocol::ErrorCode;
use sluice_tenancy::acl::{Operation, ResourceType};

use super::{count_error, storage_error, Reply, RequestMeta};
use crate::authz::authorize;
use crate::context::BrokerContext;
use crate::session::Session;

/// A broker-side cap on how long a fetch may wait, whatever it asks for.
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);

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
async fn read_once(
    ctx: &Arc<BrokerContext>,
    req: &FetchRequest,
    meta: RequestMeta,
    read_committed: bool,
) -> (FetchResponse, usize, bool) {
    let mut budget = if req.max_bytes > 0 {
        req.max_bytes as usize
    } else {
        usize::MAX
    };
    let mut total = 0;
    let mut any_error = false;
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let limit = (p.partition_max_bytes.max(0) as usize).min(budget);
            let mut data = PartitionData::default()
                .with_partition_index(p.partition)
                .with_aborted_transactions(read_committed.then(Vec::new));
            // Once the response is full, the remaining partitions report
            // their offsets without records (as Kafka does).
            let result = if limit == 0 && total > 0 {
                ctx.storage.partition(&t.topic, p.partition).map(|log| {
                    let o = log.offsets();
                    sluice_storage::storage::ReadResult {
                        log_start: o.log_start,
                        high_watermark: o.high_watermark,
                        ..Default::default()
                    }
                })
            } else {
                ctx.storage
                    .read(&t.topic, p.partition, p.fetch_offset, limit.max(1))
                    .await
            };
            match result {
                Ok(r) => {
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
