//! DeleteTopics, by name (and by topic id from v6).

use std::sync::Arc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use uuid::Uuid;

use sluice_protocol::ErrorCode;
use sluice_tenancy::acl::{Operation, ResourceType};

use super::{count_error, storage_error, text, RequestMeta};
use crate::authz::authorize;
use crate::context::BrokerContext;
use crate::session::Session;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: DeleteTopicsRequest,
    meta: RequestMeta,
) -> DeleteTopicsResponse {
    // v0-5 name topics in `topic_names`; v6 in `topics`.
    let names: Vec<TopicName> = if req.topics.is_empty() {
        req.topic_names
    } else {
        req.topics.into_iter().filter_map(|t| t.name).collect()
    };
    let mut responses = Vec::with_capacity(names.len());
    for name in names {
        let result = DeletableTopicResult::default().with_name(Some(name.clone()));
        if let Err(message) = authorize(ctx, session, Operation::Delete, ResourceType::Topic, &name)
        {
            responses.push(
                result
                    .with_error_code(count_error(meta, ErrorCode::TopicAuthorizationFailed))
                    .with_error_message(Some(text(message))),
            );
            continue;
        }
        let uuid = ctx
            .storage
            .topic(&name)
            .map(|t| Uuid::from_bytes(t.uuid))
            .unwrap_or_default();
        responses.push(match ctx.storage.delete_topic(&name).await {
            Ok(()) => {
                ctx.traffic.forget(&name);
                result.with_topic_id(uuid)
            }
            Err(e) => {
                let (code, message) = storage_error(meta, &e);
                result.with_error_code(code).with_error_message(message)
            }
        });
    }
    DeleteTopicsResponse::default().with_responses(responses)
}
