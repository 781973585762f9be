//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics
//! (and a read-only view of the broker's configs).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{
    incremental_alter_configs_response, AlterConfigsRequest, AlterConfigsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::ErrorCode;
use sluice_storage::topic_config::{
    broker_synonym, definition, ConfigDef, Kind, TopicConfig, TOPIC_CONFIGS,
};
use sluice_storage::StorageError;

use sluice_tenancy::acl::{Operation, ResourceType};
use sluice_tenancy::limits;

use super::{config_map, count_error, repeated, storage_error, text, RequestMeta};
use crate::authz::{authorize, authorize_cluster, refusal_code, tenant_plan};
use crate::context::BrokerContext;
use crate::session::Session;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

// Kafka's ConfigSource values.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

// Kafka's ConfigType values (DescribeConfigs v3+).
fn config_type(kind: Kind) -> i8 {
    match kind {
        Kind::Bool => 1,
        Kind::Text => 2,
        Kind::Choice(_) => 2,
        Kind::Int(_) => 3,
        Kind::Long(_) => 5,
        Kind::Ratio => 6,
        Kind::List(_) => 7,
    }
}

pub fn describe(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: DescribeConfigsRequest,
    meta: RequestMeta,
) -> DescribeConfigsResponse {
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let wanted = |name: &str| {
                r.configuration_keys
                    .as_ref()
                    .is_none_or(|keys| keys.is_empty() || keys.iter().any(|k| k.as_str() == name))
            };
            let result = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let allowed = match r.resource_type {
                TOPIC => authorize(ctx, session, Operation::DescribeConfigs, ResourceType::Topic, &r.resource_name)
                    .map_err(|m| (ErrorCode::TopicAuthorizationFailed, m)),
                BROKER => authorize_cluster(ctx, session, Operation::DescribeConfigs)
                    .map_err(|m| (ErrorCode::ClusterAuthorizationFailed, m)),
                _ => Ok(()),
            };
            if let Err((code, message)) = allowed {
                return result
                    .with_error_code(count_error(meta, code))
                    .with_error_message(Some(text(message)));
            }
            match r.resource_type {
                TOPIC => match ctx.storage.topic(&r.resource_name) {
                    Ok(topic) => {
                        let config = topic.config();
                        let configs = TOPIC_CONFIGS
                            .iter()
                            .filter(|d| wanted(d.name))
                            .filter_map(|d| {
                                let (value, explicit) = config.get(d.name)?;
                                let source = if explicit { SOURCE_TOPIC } else { SOURCE_DEFAULT };
                                let mut entry = DescribeConfigsResourceResult::default()
                                    .with_name(text(d.name))
                                    .with_value(Some(text(value.clone())))
                                    .with_config_source(source)
                                    .with_config_type(config_type(d.kind));
                                if req.include_synonyms {
                                    entry = entry.with_synonyms(synonyms(d, value, explicit));
                                }
                                if req.include_documentation {
                                    entry = entry.with_documentation(Some(text(d.doc)));
                                }
                                Some(entry)
                            })
                            .collect();
                        result.with_configs(configs)
                    }
                    Err(e) => {
                        let (code, message) = storage_error(meta, &e);
                        result.with_error_code(code).with_error_message(message)
                    }
                },
                // The empty name asks for the cluster-wide dynamic
                // defaults, of which Sluice has none.
                BROKER if r.resource_name.is_empty() => result.with_configs(vec![]),
                BROKER if r.resource_name.parse::<i32>().ok() != Some(ctx.config.node_id) => result
                    .with_error_code(count_error(meta, ErrorCode::InvalidRequest))
                    .with_error_message(Some(text(format!(
                        "unexpected broker id `{}`: this broker is {}; use its id, or an empty name for cluster-wide defaults",
                        r.resource_name, ctx.config.node_id
                    )))),
                BROKER => {
                    let configs = broker_configs(ctx)
                        .into_iter()
                        .filter(|(name, _)| wanted(name))
                        .map(|(name, value)| {
                            DescribeConfigsResourceResult::default()
                                .with_name(text(name))
                                .with_value(Some(text(value)))
                                .with_read_only(true)
                                .with_config_source(SOURCE_STATIC_BROKER)
                        })
                        .collect();
                    result.with_configs(configs)
                }
                other => result
                    .with_error_code(count_error(meta, ErrorCode::InvalidRequest))
                    .with_error_message(Some(text(format!(
                        "config resource type {other} is not supported; use topics (2) or brokers (4)"
                    )))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// A topic config's synonyms, most precedent first, as Kafka lists them:
/// the topic's own value if it sets one, then the broker config it would
/// otherwise take, at its default.
fn synonyms(d: &ConfigDef, value: String, explicit: bool) -> Vec<DescribeConfigsSynonym> {
    let synonym = |name: &str, value: String, source| {
        DescribeConfigsSynonym::default()
            .with_name(text(name))
            .with_value(Some(text(value)))
            .with_source(source)
    };
    let mut list = Vec::with_capacity(2);
    if explicit {
        list.push(synonym(d.name, value, SOURCE_TOPIC));
    }
    if let Some(broker) = broker_synonym(d.name) {
        list.push(synonym(broker, d.default.to_string(), SOURCE_DEFAULT));
    }
    list
}

/// The broker configs clients commonly read, as Kafka names them.
fn broker_configs(ctx: &Arc<BrokerContext>) -> Vec<(&'static str, String)> {
    let c = &ctx.config;
    vec![
        (
            "auto.create.topics.enable",
            c.auto_create_topics.to_string(),
        ),
        ("num.partitions", c.default_partitions.to_string()),
        ("default.replication.factor", "1".into()),
        ("min.insync.replicas", "1".into()),
        ("message.max.bytes", "1048588".into()),
        ("socket.request.max.bytes", c.max_request_bytes.to_string()),
        ("log.retention.ms", "604800000".into()),
        ("log.cleanup.policy", "delete".into()),
        ("broker.id", c.node_id.to_string()),
    ]
}

/// Checks that a config resource is a topic; the error otherwise.
fn topic_resource(meta: RequestMeta, resource_type: i8) -> Result<(), (i16, Option<StrBytes>)> {
    match resource_type {
        TOPIC => Ok(()),
        BROKER => Err((
            count_error(meta, ErrorCode::InvalidRequest),
            Some(text(
                "broker configs are read-only; set them on the command line or in the config file",
            )),
        )),
        other => Err((
            count_error(meta, ErrorCode::InvalidRequest),
            Some(text(format!(
                "config resource type {other} is not supported"
            ))),
        )),
    }
}

/// Whether the session may set these configs on a topic: ALTER_CONFIGS on
/// it, and for tenants the plan's guard rails on each config set.
fn may_alter<'a>(
    ctx: &BrokerContext,
    session: &Session,
    meta: RequestMeta,
    topic: &str,
    set: impl Iterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<(), (i16, Option<StrBytes>)> {
    let refuse = |code, message: String| (count_error(meta, code), Some(text(message)));
    authorize(
        ctx,
        session,
        Operation::AlterConfigs,
        ResourceType::Topic,
        topic,
    )
    .map_err(|m| refuse(ErrorCode::TopicAuthorizationFailed, m))?;
    if let Some(scope) = tenant_plan(ctx, session) {
        let configs: BTreeMap<String, String> = set
            .map(|(k, v)| (k.to_string(), v.unwrap_or_default().to_string()))
            .collect();
        limits::check_configs(&scope.plan, &configs)
            .map_err(|r| refuse(refusal_code(&r), r.to_string()))?;
    }
    Ok(())
}

/// Kafka's checks of one resource of an alter request, before anything
/// else (its `ConfigAdminManager.preprocess`): the resource is named once,
/// each config key at most once, and no config is set to null.
fn malformed<'a>(
    repeated: &HashSet<(i8, String)>,
    resource: (i8, &str),
    configs: impl Iterator<Item = (&'a str, bool)>,
) -> Option<String> {
    if repeated.contains(&(resource.0, resource.1.to_string())) {
        return Some(format!(
            "`{}` appears more than once in the request; each resource must appear at most once",
            resource.1
        ));
    }
    let mut keys = HashSet::new();
    for (key, null_set) in configs {
        if !keys.insert(key) {
            return Some(format!(
                "`{key}` appears more than once for `{}`; set each config once",
                resource.1
            ));
        }
        if null_set {
            return Some(format!(
                "a null value is not supported for `{key}`; delete the config to return it to its default"
            ));
        }
    }
    None
}

/// AlterConfigs replaces a topic's whole set of explicit configs.
pub async fn alter(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: AlterConfigsRequest,
    meta: RequestMeta,
) -> AlterConfigsResponse {
    let repeated = repeated(
        req.resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.to_string())),
    );
    let mut responses = Vec::with_capacity(req.resources.len());
    for r in req.resources {
        let response = AlterConfigsResourceResponse::default()
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name.clone());
        if let Some(message) = malformed(
            &repeated,
            (r.resource_type, &r.resource_name),
            r.configs
                .iter()
                .map(|c| (c.name.as_str(), c.value.is_none())),
        ) {
            responses.push(
                response
                    .with_error_code(count_error(meta, ErrorCode::InvalidRequest))
                    .with_error_message(Some(text(message))),
            );
            continue;
        }
        let set = r
            .configs
            .iter()
            .filter_map(|c| Some((c.name.as_str(), Some(c.value.as_ref()?.as_str()))));
        let outcome = match topic_resource(meta, r.resource_type)
            .and_then(|()| may_alter(ctx, session, meta, &r.resource_name, set))
        {
            Err(e) => Err(e),
            Ok(()) => {
                let configs = config_map(r.configs.iter().map(|c| (&c.name, c.value.as_ref())));
                ctx.storage
                    .set_topic_configs(&r.resource_name, configs, req.validate_only)
                    .await
                    .map_err(|e| storage_error(meta, &e))
            }
        };
        responses.push(match outcome {
            Ok(()) => response,
            Err((code, message)) => response.with_error_code(code).with_error_message(message),
        });
    }
    AlterConfigsResponse::default().with_responses(responses)
}

/// IncrementalAlterConfigs sets, deletes, appends to or subtracts from
/// individual configs, leaving the others as they are.
pub async fn incremental_alter(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: IncrementalAlterConfigsRequest,
    meta: RequestMeta,
) -> IncrementalAlterConfigsResponse {
    let repeated = repeated(
        req.resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.to_string())),
    );
    let mut responses = Vec::with_capacity(req.resources.len());
    for r in req.resources {
        let response = incremental_alter_configs_response::AlterConfigsResourceResponse::default()
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name.clone());
        if let Some(message) = malformed(
            &repeated,
            (r.resource_type, &r.resource_name),
            // Only DELETE goes without a value.
            r.configs.iter().map(|c| {
                (
                    c.name.as_str(),
                    c.config_operation != 1 && c.value.is_none(),
                )
            }),
        ) {
            responses.push(
                response
                    .with_error_code(count_error(meta, ErrorCode::InvalidRequest))
                    .with_error_message(Some(text(message))),
            );
            continue;
        }
        // Deletions return a config to its default; only values set are checked.
        let set = r
            .configs
            .iter()
            .filter(|c| c.config_operation != 1)
            .map(|c| (c.name.as_str(), c.value.as_ref().map(|v| v.as_str())));
        let outcome = match topic_resource(meta, r.resource_type)
            .and_then(|()| may_alter(ctx, session, meta, &r.resource_name, set))
        {
            Err(e) => Err(e),
            Ok(()) => match ctx.storage.topic(&r.resource_name) {
                Err(e) => Err(storage_error(meta, &e)),
                Ok(topic) => {
                    let ops: Vec<(String, i8, Option<String>)> = r
                        .configs
                        .iter()
                        .map(|c| {
                            (
                                c.name.to_string(),
                                c.config_operation,
                                c.value.as_ref().map(|v| v.to_string()),
                            )
                        })
                        .collect();
                    match apply_ops(&topic.config(), &ops) {
                        Err(e) => Err(storage_error(meta, &e)),
                        Ok(configs) => ctx
                            .storage
                            .set_topic_configs(&r.resource_name, configs, req.validate_only)
                            .await
                            .map_err(|e| storage_error(meta, &e)),
                    }
                }
            },
        };
        responses.push(match outcome {
            Ok(()) => response,
            Err((code, message)) => response.with_error_code(code).with_error_message(message),
        });
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// Applies IncrementalAlterConfigs operations (0 SET, 1 DELETE, 2 APPEND,
/// 3 SUBTRACT) to a topic's explicit configs.
fn apply_ops(
    current: &TopicConfig,
    ops: &[(String, i8, Option<String>)],
) -> Result<BTreeMap<String, String>, StorageError> {
    let mut configs = current.explicit.clone();
    for (name, op, value) in ops {
        let list = |configs: &BTreeMap<String, String>| -> Vec<String> {
            current
                .get(name)
                .map(|(v, _)| configs.get(name).cloned().unwrap_or(v))
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        };
        match op {
            0 => {
                let v = value
                    .clone()
                    .ok_or_else(|| StorageError::InvalidConfig(format!("SET of `{name}` needs a value")))?;
                configs.insert(name.clone(), v);
            }
            1 => {
                configs.remove(name);
            }
            2 | 3 => {
                let verb = if *op == 2 { "APPEND" } else { "SUBTRACT" };
                match definition(name) {
                    Some(d) if matches!(d.kind, Kind::List(_)) => {}
                    Some(_) => {
                        return Err(StorageError::InvalidConfig(format!(
                            "cannot {verb} to `{name}`: it is not a list (APPEND and SUBTRACT apply to list configs such as cleanup.policy); use SET"
                        )))
                    }
                    None => {
                        return Err(StorageError::InvalidConfig(format!(
                            "unknown topic config `{name}`"
                        )))
                    }
                }
                let mut items = list(&configs);
                let given: Vec<String> = value
                    .as_deref()
                    .unwrap_or("")
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                if *op == 2 {
                    for g in given {
                        if !items.contains(&g) {
                            items.push(g);
                        }
                    }
                } else {
                    items.retain(|i| !given.contains(i));
                }
                configs.insert(name.clone(), items.join(","));
            }
            other => {
                return Err(StorageError::InvalidConfig(format!(
                    "unknown config operation {other} for `{name}`; use 0 SET, 1 DELETE, 2 APPEND or 3 SUBTRACT"
                )))
            }
        }
    }
    Ok(configs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_operations() {
        let current = TopicConfig::new(BTreeMap::from([("retention.ms".into(), "1000".into())]));
        let out = apply_ops(
            &current,
            &[
                ("retention.ms".into(), 1, None),
                ("max.message.bytes".into(), 0, Some("2000".into())),
                ("cleanup.policy".into(), 2, Some("compact".into())),
            ],
        )
        .unwrap();
        assert_eq!(out.get("retention.ms"), None);
        assert_eq!(
            out.get("max.message.bytes").map(String::as_str),
            Some("2000")
        );
        assert_eq!(
            out.get("cleanup.policy").map(String::as_str),
            Some("delete,compact")
        );
        let out = apply_ops(
            &TopicConfig::new(out),
            &[("cleanup.policy".into(), 3, Some("delete".into()))],
        )
        .unwrap();
        assert_eq!(
            out.get("cleanup.policy").map(String::as_str),
            Some("compact")
        );
        assert!(apply_ops(&current, &[("x".into(), 9, None)]).is_err());
        for op in [2, 3] {
            let e = apply_ops(&current, &[("retention.ms".into(), op, Some("5".into()))])
                .unwrap_err()
                .to_string();
            assert!(e.contains("not a list"), "{e}");
        }
    }
}
