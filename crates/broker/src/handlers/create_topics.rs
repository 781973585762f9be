//! CreateTopics, validate_only included.

use std::collections::HashSet;
use std::sync::Arc;

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use sluice_protocol::ErrorCode;
use uuid::Uuid;

use sluice_tenancy::acl::{Operation, ResourceType};
use sluice_tenancy::limits;

use super::{
    config_map, count_error, repeated, repeated_name_message, storage_error, text, RequestMeta,
};
use crate::authz::{authorize, refusal_code, tenant_scope};
use crate::context::BrokerContext;
use crate::session::Session;

/// Replication is the object store's job; clients asking for up to three
/// replicas (a common default of managed services) are served.
const MAX_REPLICATION_FACTOR: i16 = 3;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: CreateTopicsRequest,
    meta: RequestMeta,
) -> CreateTopicsResponse {
    let mut scope = tenant_scope(ctx, session);
    let repeated = repeated(req.topics.iter().map(|t| t.name.to_string()));
    let mut answered = HashSet::new();
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let name = t.name.to_string();
        let result = CreatableTopicResult::default().with_name(t.name.clone());
        let refuse = |code: ErrorCode, message: String| {
            result
                .clone()
                .with_error_code(count_error(meta, code))
                .with_error_message(Some(text(message)))
        };
        if repeated.contains(&name) {
            if answered.insert(name.clone()) {
                results.push(
                    result
                        .with_error_code(count_error(meta, ErrorCode::InvalidRequest))
                        .with_error_message(Some(repeated_name_message(&name))),
                );
            }
            continue;
        }
        if let Err(message) = authorize(ctx, session, Operation::Create, ResourceType::Topic, &name)
        {
            results.push(refuse(ErrorCode::TopicAuthorizationFailed, message));
            continue;
        }
        if t.replication_factor == 0
            || t.replication_factor < -1
            || t.replication_factor > MAX_REPLICATION_FACTOR
        {
            results.push(refuse(
                ErrorCode::InvalidReplicationFactor,
                format!(
                    "replication factor {} is not valid; use -1 for the default or 1 to {MAX_REPLICATION_FACTOR}",
                    t.replication_factor
                ),
            ));
            continue;
        }
        if !t.assignments.is_empty() {
            results.push(refuse(
                ErrorCode::InvalidRequest,
                "manual replica assignments are not supported: the broker places partitions itself"
                    .into(),
            ));
            continue;
        }
        let mut configs = config_map(t.configs.iter().map(|c| (&c.name, c.value.as_ref())));
        let partitions = match &scope {
            Some(s) => {
                match limits::check_new_topic(&s.plan, s.usage, t.num_partitions, &mut configs) {
                    Ok(n) => n,
                    Err(r) => {
                        results.push(refuse(refusal_code(&r), r.to_string()));
                        continue;
                    }
                }
            }
            None if t.num_partitions == -1 => ctx.config.default_partitions,
            None => t.num_partitions,
        };
        match ctx
            .storage
            .create_topic(&name, partitions, configs.clone(), req.validate_only)
            .await
        {
            Ok(created) => {
                if let (Some(s), Some(_)) = (&mut scope, &created) {
                    s.usage.topics += 1;
                    s.usage.partitions += partitions as u32;
                }
                let uuid = created
                    .as_ref()
                    .map(|t| Uuid::from_bytes(t.uuid))
                    .unwrap_or_default();
                let described = sluice_storage::topic_config::TopicConfig::new(configs);
                let configs = sluice_storage::topic_config::TOPIC_CONFIGS
                    .iter()
                    .filter_map(|d| {
                        let (value, explicit) = described.get(d.name)?;
                        Some(
                            CreatableTopicConfigs::default()
                                .with_name(text(d.name))
                                .with_value(Some(text(value)))
                                .with_config_source(if explicit { 1 } else { 5 }),
                        )
                    })
                    .collect();
                results.push(
                    result
                        .with_topic_id(uuid)
                        .with_num_partitions(partitions)
                        .with_replication_factor(1)
                        // Reported from v5; older versions have no such field.
                        .with_configs((meta.api_version >= 5).then_some(configs)),
                );
            }
            Err(e) => {
                let (code, message) = storage_error(meta, &e);
                results.push(result.with_error_code(code).with_error_message(message));
            }
        }
    }
    CreateTopicsResponse::default().with_topics(results)
}
