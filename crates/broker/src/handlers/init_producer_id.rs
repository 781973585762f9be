//! InitProducerId for idempotent producers: a new producer id, or the next
//! epoch of the id a producer holds (v3+, KIP-360). Transactional ids are
//! refused until transactions land. The response has no error message, so
//! refusals are logged with their reason.

use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use sluice_protocol::ErrorCode;
use sluice_storage::catalog::ProducerIdAndEpoch;

use sluice_tenancy::acl::Operation;

use super::{count_error, storage_error, RequestMeta};
use crate::authz::authorize_cluster;
use crate::context::BrokerContext;
use crate::session::Session;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: InitProducerIdRequest,
    meta: RequestMeta,
) -> InitProducerIdResponse {
    let refused = |code| {
        InitProducerIdResponse::default()
            .with_error_code(code)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if let Some(id) = req.transactional_id {
        // Fatal in librdkafka and the Java client, so init_transactions()
        // fails at once instead of retrying.
        tracing::warn!(transactional_id = %id.0, "InitProducerId refused: transactions are not supported yet");
        return refused(count_error(
            meta,
            ErrorCode::TransactionalIdAuthorizationFailed,
        ));
    }
    if let Err(reason) = authorize_cluster(ctx, session, Operation::IdempotentWrite) {
        tracing::warn!(%reason, "InitProducerId refused");
        return refused(count_error(meta, ErrorCode::ClusterAuthorizationFailed));
    }
    let held = (req.producer_id.0 >= 0 && req.producer_epoch >= 0).then_some(ProducerIdAndEpoch {
        producer_id: req.producer_id.0,
        epoch: req.producer_epoch,
    });
    match ctx.storage.init_producer_id(held).await {
        Ok(p) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(p.producer_id))
            .with_producer_epoch(p.epoch),
        Err(e) => {
            tracing::warn!(error = %e, "InitProducerId refused");
            refused(storage_error(meta, &e).0)
        }
    }
}
