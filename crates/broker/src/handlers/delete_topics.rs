//! DeleteTopics, by name (and by topic id from v6).

use std::collections::HashSet;
use std::sync::Arc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use uuid::Uuid;

use sluice_protocol::ErrorCode;
use sluice_tenancy::acl::{Operation, ResourceType};

use super::{count_error, repeated, repeated_name_message, storage_error, text, RequestMeta};
use crate::authz::authorize;
use crate::context::BrokerContext;
use crate::session::Session;

/// One entry of the request: a topic by name, or (v6) by id.
enum Target {
    Name(TopicName),
    Id(Uuid),
    /// Both a name and an id, or neither.
    Malformed(&'static str),
}

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: DeleteTopicsRequest,
    meta: RequestMeta,
) -> DeleteTopicsResponse {
    // v0-5 name topics in `topic_names`; v6 in `topics`, by name or by id.
    let targets: Vec<Target> = if meta.api_version < 6 {
        req.topic_names.into_iter().map(Target::Name).collect()
    } else {
        req.topics
            .into_iter()
            // An empty name is as good as none (some encoders send "").
            .map(
                |t| match (t.name.filter(|n| !n.is_empty()), t.topic_id.is_nil()) {
                    (Some(name), true) => Target::Name(name),
                    (None, false) => Target::Id(t.topic_id),
                    (Some(_), false) => {
                        Target::Malformed("name a topic by its name or by its id, not both")
                    }
                    (None, true) => Target::Malformed("name a topic by its name or by its id"),
                },
            )
            .collect()
    };
    let keys: Vec<String> = targets
        .iter()
        .map(|t| match t {
            Target::Name(n) => n.to_string(),
            Target::Id(id) => id.to_string(),
            Target::Malformed(_) => String::new(),
        })
        .collect();
    let repeated = repeated(keys.iter().map(String::as_str).filter(|k| !k.is_empty()));
    let mut answered = HashSet::new();
    let mut responses = Vec::with_capacity(targets.len());
    for (target, key) in targets.into_iter().zip(&keys) {
        let refuse = |result: DeletableTopicResult, code: ErrorCode, message: String| {
            result
                .with_error_code(count_error(meta, code))
                .with_error_message(Some(text(message)))
        };
        let name = match target {
            Target::Malformed(why) => {
                responses.push(refuse(
                    DeletableTopicResult::default(),
                    ErrorCode::InvalidRequest,
                    why.into(),
                ));
                continue;
            }
            _ if repeated.contains(key.as_str()) => {
                if answered.insert(key.as_str()) {
                    let result = match target {
                        Target::Id(id) => DeletableTopicResult::default()
                            .with_name(None)
                            .with_topic_id(id),
                        _ => DeletableTopicResult::default()
                            .with_name(Some(text(key.clone()).into())),
                    };
                    responses.push(
                        result
                            .with_error_code(count_error(meta, ErrorCode::InvalidRequest))
                            .with_error_message(Some(repeated_name_message(key))),
                    );
                }
                continue;
            }
            Target::Name(name) => (name, None),
            Target::Id(id) => {
                match ctx.storage.topic_by_uuid(id.as_bytes()) {
                    // Kafka authorizes a topic named by id under its name;
                    // an id the principal may not see is as unknown.
                    Some(t)
                        if authorize(
                            ctx,
                            session,
                            Operation::Describe,
                            ResourceType::Topic,
                            &t.name,
                        )
                        .is_ok() =>
                    {
                        (text(t.name.clone()).into(), Some(id))
                    }
                    _ => {
                        responses.push(refuse(
                            DeletableTopicResult::default()
                                .with_name(None)
                                .with_topic_id(id),
                            ErrorCode::UnknownTopicId,
                            format!("no topic has the id {id}"),
                        ));
                        continue;
                    }
                }
            }
        };
        let (name, by_id) = name;
        let result = DeletableTopicResult::default()
            .with_name(Some(name.clone()))
            .with_topic_id(by_id.unwrap_or_default());
        if let Err(message) = authorize(ctx, session, Operation::Delete, ResourceType::Topic, &name)
        {
            responses.push(refuse(result, ErrorCode::TopicAuthorizationFailed, message));
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
