//! CreatePartitions: grow a topic, validate_only included.

use std::collections::HashSet;
use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use sluice_protocol::ErrorCode;

use sluice_tenancy::acl::{Operation, ResourceType};
use sluice_tenancy::limits;

use super::{count_error, repeated, repeated_name_message, storage_error, text, RequestMeta};
use crate::authz::{authorize, refusal_code, tenant_scope};
use crate::context::BrokerContext;
use crate::session::Session;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: CreatePartitionsRequest,
    meta: RequestMeta,
) -> CreatePartitionsResponse {
    let mut scope = tenant_scope(ctx, session);
    let repeated = repeated(req.topics.iter().map(|t| t.name.to_string()));
    let mut answered = HashSet::new();
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let result = CreatePartitionsTopicResult::default().with_name(t.name.clone());
        let refuse = |code: ErrorCode, message: String| {
            result
                .clone()
                .with_error_code(count_error(meta, code))
                .with_error_message(Some(text(message)))
        };
        if repeated.contains(&t.name.to_string()) {
            if answered.insert(t.name.to_string()) {
                results.push(
                    result
                        .with_error_code(count_error(meta, ErrorCode::InvalidRequest))
                        .with_error_message(Some(repeated_name_message(&t.name))),
                );
            }
            continue;
        }
        if let Err(message) =
            authorize(ctx, session, Operation::Alter, ResourceType::Topic, &t.name)
        {
            results.push(refuse(ErrorCode::TopicAuthorizationFailed, message));
            continue;
        }
        if let (Some(s), Ok(topic)) = (&mut scope, ctx.storage.topic(&t.name)) {
            let current = topic.partition_count();
            if let Err(r) = limits::check_more_partitions(&s.plan, s.usage, current, t.count) {
                results.push(refuse(refusal_code(&r), r.to_string()));
                continue;
            }
            if !req.validate_only {
                s.usage.partitions += (t.count - current).max(0) as u32;
            }
        }
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
