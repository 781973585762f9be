//! Produce: validate each partition's batches and queue them to the group
//! commit in request order, then (unless acks=0) wait for the commits and
//! answer with each partition's base offset.

use std::sync::Arc;

use futures::future::{join_all, BoxFuture, FutureExt};
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind};
use sluice_protocol::batch::BatchError;
use sluice_protocol::ErrorCode;
use sluice_storage::StorageError;

use sluice_tenancy::acl::{Operation, ResourceType};

use super::{count_error, storage_error, text, Reply, RequestMeta};
use crate::authz::authorize;
use crate::context::BrokerContext;
use crate::session::Session;

type PartitionResult = BoxFuture<'static, PartitionProduceResponse>;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: ProduceRequest,
    meta: RequestMeta,
) -> Reply {
    let acks = req.acks;
    let received = std::time::Instant::now();
    if !(-1..=1).contains(&acks) {
        let refuse = |index| {
            PartitionProduceResponse::default()
                .with_index(index)
                .with_error_code(count_error(meta, ErrorCode::InvalidRequiredAcks))
                .with_error_message(Some(text(format!(
                    "acks={acks} is not valid; use 0, 1 or -1 (all)"
                ))))
                .with_base_offset(-1)
        };
        let topics = req
            .topic_data
            .iter()
            .map(|t| {
                TopicProduceResponse::default()
                    .with_name(t.name.clone())
                    .with_partition_responses(
                        t.partition_data.iter().map(|p| refuse(p.index)).collect(),
                    )
            })
            .collect();
        return Reply::Ready(meta.encode(ResponseKind::Produce(
            ProduceResponse::default().with_responses(topics),
        )));
    }
    // The ordered part: each partition's batches are validated and queued
    // to the group commit now, before the next request on this connection
    // is read, so a partition's batches keep their order.
    let mut topics: Vec<(kafka_protocol::messages::TopicName, Vec<PartitionResult>)> = Vec::new();
    // Whether any partition was refused before its commit.
    let mut refused = false;
    for t in req.topic_data {
        let name = t.name.to_string();
        let mut parts = Vec::with_capacity(t.partition_data.len());
        if let Err(message) = authorize(ctx, session, Operation::Write, ResourceType::Topic, &name)
        {
            refused = true;
            for p in t.partition_data {
                let refused = PartitionProduceResponse::default()
                    .with_index(p.index)
                    .with_error_code(count_error(meta, ErrorCode::TopicAuthorizationFailed))
                    .with_error_message(Some(text(message.clone())))
                    .with_base_offset(-1);
                parts.push(futures::future::ready(refused).boxed());
            }
            topics.push((t.name, parts));
            continue;
        }
        for p in t.partition_data {
            let index = p.index;
            let records = p.records.unwrap_or_default();
            if let Some((code, message)) = request_rule_broken(&records, meta.api_version) {
                refused = true;
                let refusal = PartitionProduceResponse::default()
                    .with_index(index)
                    .with_error_code(count_error(meta, code))
                    .with_error_message(Some(text(message)))
                    .with_base_offset(-1);
                parts.push(futures::future::ready(refusal).boxed());
                continue;
            }
            let bytes = records.len() as u64;
            let queued = ctx.storage.enqueue_append(&name, index, records).await;
            refused |= queued.is_err();
            let traffic = ctx.traffic.clone();
            let topic = name.clone();
            parts.push(
                async move {
                    match async { queued?.wait().await }.await {
                        Ok((appended, log_append_time)) => {
                            // An idempotent retry acknowledged without
                            // writing it again produced nothing.
                            if appended.records > 0 {
                                metrics::counter!("sluice_bytes_in_total").increment(bytes);
                                traffic.record_in(&topic, appended.records, bytes);
                            }
                            metrics::counter!("sluice_records_in_total")
                                .increment(appended.records);
                            PartitionProduceResponse::default()
                                .with_index(index)
                                .with_base_offset(appended.base_offset)
                                .with_log_start_offset(appended.log_start)
                                .with_log_append_time_ms(log_append_time)
                        }
                        Err(e) => {
                            let (code, message) = storage_error(meta, &e);
                            PartitionProduceResponse::default()
                                .with_index(index)
                                .with_error_code(code)
                                .with_error_message(message)
                                .with_base_offset(-1)
                                .with_record_errors(record_errors(&e, meta.api_version))
                        }
                    }
                }
                .boxed(),
            );
        }
        topics.push((t.name, parts));
    }
    if acks == 0 {
        // No response; the appends still run to completion.
        tokio::spawn(async move {
            for (_, parts) in topics {
                join_all(parts).await;
            }
        });
        // A refusal closes the connection, the only way to tell the
        // producer (Kafka does the same). A commit failing later cannot:
        // by then the connection may carry other requests.
        return if refused {
            Reply::Close
        } else {
            Reply::Ready(None)
        };
    }
    Reply::Later(
        async move {
            let mut responses = Vec::with_capacity(topics.len());
            for (name, parts) in topics {
                responses.push(
                    TopicProduceResponse::default()
                        .with_name(name)
                        .with_partition_responses(join_all(parts).await),
                );
            }
            // The broker's share of a producer's latency: from the
            // request's decoding to its response.
            metrics::histogram!("sluice_produce_seconds").record(received.elapsed().as_secs_f64());
            meta.encode(ResponseKind::Produce(
                ProduceResponse::default().with_responses(responses),
            ))
        }
        .boxed(),
    )
}

/// Each record a batch was refused for (KIP-467, Produce v8+), so that a
/// client fails only those records with the error and the rest of the
/// batch with a note that they were refused alongside.
fn record_errors(e: &StorageError, api_version: i16) -> Vec<BatchIndexAndErrorMessage> {
    match e {
        StorageError::InvalidRecord(BatchError::Records(refused)) if api_version >= 8 => refused
            .listed
            .iter()
            .map(|r| {
                BatchIndexAndErrorMessage::default()
                    .with_batch_index(r.index)
                    .with_batch_index_error_message(Some(text(r.message.clone())))
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The rules of the Produce request itself, before the topic's batch rules
/// (which the storage checks): one batch per partition from v3 on, and zstd
/// only from v7 (KIP-110), which clients that support zstd know to use.
fn request_rule_broken(records: &[u8], api_version: i16) -> Option<(ErrorCode, String)> {
    // In Kafka's order: the codec first, then the count. Only the first two
    // headers are read, and nothing is allocated (this is the produce path).
    let mut found = sluice_protocol::batch::batches(records);
    let (first, second) = (found.next(), found.next());
    let zstd = |b: &Option<(usize, sluice_protocol::batch::BatchHeader)>| {
        b.as_ref().is_some_and(|(_, h)| h.compression() == ZSTD)
    };
    if api_version < 7 && (zstd(&first) || zstd(&second)) {
        return Some((
            ErrorCode::UnsupportedCompressionType,
            format!(
                "zstd-compressed batches need Produce v7 or later; this request is v{api_version}"
            ),
        ));
    }
    if second.is_some() {
        return Some((
            ErrorCode::InvalidRecord,
            "a produce request may hold exactly one record batch per partition (Produce v3 and later); send the others in the next request".into(),
        ));
    }
    None
}

/// The compression codec id of zstd in a batch's attributes.
const ZSTD: i16 = 4;
