//! CreatePartitions: grow a topic, validate_only included.

use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use sluice_protocol::ErrorCode;

use super::{count_error, storage_error, text, RequestMeta};
use crate::context::BrokerContext;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    req: CreatePartitionsRequest,
    meta: RequestMeta,
) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let result = CreatePartitionsTopicResult::default().with_name(t.name.clone());
        if t.assignments.as_ref().is_some_and(|a| !a.is_empty()) {
            results.push(
                result
                    .with_error_code(count_error(meta, ErrorCode::InvalidReplicaAssignment))
                    .with_error_message(Some(text(
                        "manual replica assignments are not supported: the broker places partitions itself",
                    ))),
            );
            continue;
        }
        results.push(
            match ctx
                .storage
                .create_partitions(&t.name, t.count, req.validate_only)
                .await
            {
                Ok(()) => result,
                Err(e) => {
                    let (code, message) = storage_error(meta, &e);
                    result.with_error_code(code).with_error_message(message)
                }
            },
        );
    }
    CreatePartitionsResponse::default().with_results(results)
}
