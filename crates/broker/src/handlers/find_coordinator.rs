//! FindCoordinator: this broker coordinates every group (one broker per
//! catalog). Transaction coordinators are not served yet.

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use sluice_protocol::ErrorCode;

use super::{count_error, text, RequestMeta};
use crate::authz::group_access;
use crate::context::BrokerContext;
use crate::session::Session;
use sluice_tenancy::acl::Operation;

/// Kafka's key type of transactional ids.
const TRANSACTION_KEY: i8 = 1;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: FindCoordinatorRequest,
    meta: RequestMeta,
) -> FindCoordinatorResponse {
    // Finding a group's coordinator needs DESCRIBE on it and, on plans with
    // explicit groups, the group created: the first place a client learns why.
    let mut refused_groups = std::collections::BTreeMap::new();
    if req.key_type != TRANSACTION_KEY {
        let keys: Vec<String> = if meta.api_version >= 4 {
            req.coordinator_keys.iter().map(|k| k.to_string()).collect()
        } else {
            vec![req.key.to_string()]
        };
        for key in keys {
            if let Err(e) = group_access(ctx, session, Operation::Describe, &key, true).await {
                refused_groups.insert(key, e);
            }
        }
    }
    let c = &ctx.config;
    let l = &session.listener;
    let answer = |key: &str| -> Coordinator {
        let refused = if req.key_type == TRANSACTION_KEY {
            Some((
                ErrorCode::CoordinatorNotAvailable,
                "transactions are not supported yet",
            ))
        } else if let Some((code, message)) = refused_groups.get(key) {
            Some((*code, message.as_str()))
        } else if key.is_empty() {
            Some((ErrorCode::InvalidRequest, "the group id is empty"))
        } else {
            None
        };
        match refused {
            Some((code, message)) => Coordinator::default()
                .with_key(text(key))
                .with_node_id(BrokerId(-1))
                .with_host(text(""))
                .with_port(-1)
                .with_error_code(count_error(meta, code))
                .with_error_message(Some(text(message))),
            None => Coordinator::default()
                .with_key(text(key))
                .with_node_id(BrokerId(c.node_id))
                .with_host(text(l.advertised_host.clone()))
                .with_port(l.advertised_port),
        }
    };
    if meta.api_version >= 4 {
        let coordinators = req.coordinator_keys.iter().map(|k| answer(k)).collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let one = answer(&req.key);
    FindCoordinatorResponse::default()
        .with_error_code(one.error_code)
        .with_error_message(if meta.api_version >= 1 {
            one.error_message
        } else {
            None
        })
        .with_node_id(one.node_id)
        .with_host(one.host)
        .with_port(one.port)
}
