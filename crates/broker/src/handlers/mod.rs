//! One handler per Kafka API. Each decodes nothing itself (the protocol
//! crate did), checks the request, delegates to storage, and builds the
//! response; [`dispatch`] encodes it.

pub mod acls;
pub mod api_versions;
pub mod configs;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_groups;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod sync_group;

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::request::Request;
use sluice_protocol::response::encode_response;
use sluice_protocol::ErrorCode;
use sluice_storage::StorageError;

use crate::context::BrokerContext;
use crate::session::Session;

/// A handler's answer: ready now, or after waiting (commit, long poll).
pub enum Reply {
    Ready(Option<Bytes>),
    Later(BoxFuture<'static, Option<Bytes>>),
    /// No answer, and the connection closes once the answers before it are
    /// written: how an acks=0 producer learns its request failed (it
    /// reconnects and refreshes its metadata), as Kafka does.
    Close,
}

/// What a response needs from its request.
#[derive(Debug, Clone, Copy)]
pub struct RequestMeta {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub correlation_id: i32,
    /// Quota throttle for the response's `throttle_time_ms` (KIP-219).
    pub throttle_ms: i32,
}

impl RequestMeta {
    /// Encodes a response; an encoding failure is our bug, logged, and the
    /// client gets no response rather than a malformed one.
    pub fn encode(&self, mut body: ResponseKind) -> Option<Bytes> {
        if self.throttle_ms > 0 {
            crate::quota::apply_throttle(&mut body, self.throttle_ms);
        }
        match encode_response(self.api_key, self.api_version, self.correlation_id, &body) {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::error!(api = ?self.api_key, version = self.api_version, error = %e, "could not encode response");
                None
            }
        }
    }

    pub fn api_name(&self) -> &'static str {
        api_name(self.api_key)
    }
}

/// Who sent a request, as group descriptions report members.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub client_id: String,
    /// Kafka's form: `/` and the address.
    pub host: String,
}

/// Runs the ordered part of a request's handler. Before a session is
/// authenticated only ApiVersions and the SASL requests are served; anything
/// else closes the connection, as Kafka does.
pub async fn dispatch(ctx: &Arc<BrokerContext>, session: &mut Session, req: Request) -> Reply {
    let meta = RequestMeta {
        api_key: req.api_key,
        api_version: req.api_version,
        correlation_id: req.correlation_id,
        throttle_ms: 0,
    };
    let peer = session.peer;
    let client = || ClientInfo {
        client_id: req.client_id.clone().unwrap_or_default(),
        host: format!("/{}", peer.ip()),
    };
    metrics::counter!("sluice_requests_total", "api" => meta.api_name()).increment(1);
    let pre_auth = matches!(
        req.body,
        RequestKind::ApiVersions(_)
            | RequestKind::SaslHandshake(_)
            | RequestKind::SaslAuthenticate(_)
    );
    if session.principal.is_none() && !pre_auth {
        tracing::warn!(%peer, api = meta.api_name(), "closing connection: request before authentication");
        session.closing = true;
        return Reply::Ready(None);
    }
    // Quotas (KIP-219): throttle, or answer at once.
    let mute = session.mute.clone();
    let (meta, tenant) = match ctx
        .quotas
        .admit(session.principal.as_ref(), &mute, &req.body, meta)
    {
        crate::quota::Admit::Go(meta, tenant) => (meta, tenant),
        crate::quota::Admit::Answer(reply) => return reply,
    };
    let ready = |body: ResponseKind| Reply::Ready(meta.encode(body));
    let session_ref = &*session;
    match req.body {
        RequestKind::ApiVersions(r) => {
            ready(ResponseKind::ApiVersions(api_versions::handle(r, meta)))
        }
        RequestKind::SaslHandshake(r) => ready(ResponseKind::SaslHandshake(
            sasl_handshake::handle(session, r, meta),
        )),
        RequestKind::SaslAuthenticate(r) => ready(ResponseKind::SaslAuthenticate(
            sasl_authenticate::handle(ctx, session, r, meta),
        )),
        RequestKind::Metadata(r) => ready(ResponseKind::Metadata(
            metadata::handle(ctx, session_ref, r, meta).await,
        )),
        RequestKind::Produce(r) => produce::handle(ctx, session_ref, r, meta).await,
        RequestKind::Fetch(r) => {
            crate::quota::after_fetch(tenant, mute, fetch::handle(ctx, session_ref, r, meta))
        }
        RequestKind::ListOffsets(r) => ready(ResponseKind::ListOffsets(
            list_offsets::handle(ctx, session_ref, r, meta).await,
        )),
        RequestKind::CreateTopics(r) => ready(ResponseKind::CreateTopics(
            create_topics::handle(ctx, session_ref, r, meta).await,
        )),
        RequestKind::DeleteTopics(r) => ready(ResponseKind::DeleteTopics(
            delete_topics::handle(ctx, session_ref, r, meta).await,
        )),
        RequestKind::CreatePartitions(r) => ready(ResponseKind::CreatePartitions(
            create_partitions::handle(ctx, session_ref, r, meta).await,
        )),
        RequestKind::DescribeConfigs(r) => ready(ResponseKind::DescribeConfigs(configs::describe(
            ctx,
            session_ref,
            r,
            meta,
        ))),
        RequestKind::AlterConfigs(r) => ready(ResponseKind::AlterConfigs(
            configs::alter(ctx, session_ref, r, meta).await,
        )),
        RequestKind::IncrementalAlterConfigs(r) => ready(ResponseKind::IncrementalAlterConfigs(
            configs::incremental_alter(ctx, session_ref, r, meta).await,
        )),
        RequestKind::DescribeCluster(r) => ready(ResponseKind::DescribeCluster(
            describe_cluster::handle(ctx, session_ref, r, meta),
        )),
        RequestKind::InitProducerId(r) => ready(ResponseKind::InitProducerId(
            init_producer_id::handle(ctx, session_ref, r, meta).await,
        )),
        RequestKind::FindCoordinator(r) => ready(ResponseKind::FindCoordinator(
            find_coordinator::handle(ctx, session_ref, r, meta).await,
        )),
        RequestKind::JoinGroup(r) => join_group::handle(ctx, session_ref, r, meta, client()).await,
        RequestKind::SyncGroup(r) => sync_group::handle(ctx, session_ref, r, meta).await,
        RequestKind::Heartbeat(r) => ready(ResponseKind::Heartbeat(
            heartbeat::handle(ctx, session_ref, r, meta).await,
        )),
        RequestKind::LeaveGroup(r) => ready(ResponseKind::LeaveGroup(
            leave_group::handle(ctx, session_ref, r, meta).await,
        )),
        RequestKind::OffsetCommit(r) => ready(ResponseKind::OffsetCommit(
            offset_commit::handle(ctx, session_ref, r, meta).await,
        )),
        RequestKind::OffsetFetch(r) => ready(ResponseKind::OffsetFetch(
            offset_fetch::handle(ctx, session_ref, r, meta).await,
        )),
        RequestKind::OffsetForLeaderEpoch(r) => ready(ResponseKind::OffsetForLeaderEpoch(
            offset_for_leader_epoch::handle(ctx, session_ref, r, meta).await,
        )),
        RequestKind::OffsetDelete(r) => ready(ResponseKind::OffsetDelete(
            offset_delete::handle(ctx, session_ref, r, meta).await,
        )),
        RequestKind::ListGroups(r) => ready(ResponseKind::ListGroups(
            list_groups::handle(ctx, session_ref, r, meta).await,
        )),
        RequestKind::DescribeGroups(r) => ready(ResponseKind::DescribeGroups(
            describe_groups::handle(ctx, session_ref, r, meta).await,
        )),
        RequestKind::DeleteGroups(r) => ready(ResponseKind::DeleteGroups(
            delete_groups::handle(ctx, session_ref, r, meta).await,
        )),
        RequestKind::ConsumerGroupHeartbeat(r) => {
            let client = client();
            ready(ResponseKind::ConsumerGroupHeartbeat(
                consumer_group_heartbeat::handle(ctx, session_ref, r, meta, client).await,
            ))
        }
        RequestKind::ConsumerGroupDescribe(r) => ready(ResponseKind::ConsumerGroupDescribe(
            consumer_group_describe::handle(ctx, session_ref, r, meta).await,
        )),
        RequestKind::CreateAcls(r) => ready(ResponseKind::CreateAcls(
            acls::create(ctx, session_ref, r, meta).await,
        )),
        RequestKind::DescribeAcls(r) => ready(ResponseKind::DescribeAcls(acls::describe(
            ctx,
            session_ref,
            r,
            meta,
        ))),
        RequestKind::DeleteAcls(r) => ready(ResponseKind::DeleteAcls(
            acls::delete(ctx, session_ref, r, meta).await,
        )),
        other => {
            // The version table only admits the APIs above.
            tracing::error!(request = ?std::mem::discriminant(&other), "request kind without a handler");
            Reply::Ready(None)
        }
    }
}

/// Counts an error code in a response and returns it.
pub fn count_error(meta: RequestMeta, code: ErrorCode) -> i16 {
    metrics::counter!("sluice_errors_total", "api" => meta.api_name(), "code" => error_name(code))
        .increment(1);
    code.code()
}

/// The error code and message for a storage error, counted.
pub fn storage_error(meta: RequestMeta, e: &StorageError) -> (i16, Option<StrBytes>) {
    (count_error(meta, e.code()), Some(text(e.client_message())))
}

/// Checks the leader epoch a request expects of a partition (KIP-320;
/// `-1` expects none): Fetch, ListOffsets and OffsetForLeaderEpoch carry it.
pub fn check_leader_epoch(
    ctx: &BrokerContext,
    topic: &str,
    partition: i32,
    expected: i32,
) -> Result<(), StorageError> {
    ctx.storage
        .partition(topic, partition)?
        .check_leader_epoch(expected)
}

/// Config name/value pairs from a request; entries without a value are
/// left out, as Kafka treats them.
pub fn config_map<'a>(
    entries: impl Iterator<Item = (&'a StrBytes, Option<&'a StrBytes>)>,
) -> std::collections::BTreeMap<String, String> {
    entries
        .filter_map(|(name, value)| value.map(|v| (name.to_string(), v.to_string())))
        .collect()
}

/// The keys (topic names, resources, partitions) a request lists more than
/// once. Kafka acts on none of their entries and refuses them with
/// INVALID_REQUEST; acting on them and answering every entry would change a
/// topic the client was told nothing happened to, and name it twice in the
/// response, which librdkafka rejects as malformed.
pub fn repeated<K: std::hash::Hash + Eq + Clone>(
    keys: impl IntoIterator<Item = K>,
) -> std::collections::HashSet<K> {
    let mut seen = std::collections::HashSet::new();
    keys.into_iter()
        .filter(|k| !seen.insert(k.clone()))
        .collect()
}

/// The message for a name [`repeated_names`] found.
pub fn repeated_name_message(name: &str) -> StrBytes {
    text(format!(
        "duplicate topic name: `{name}` appears more than once in the request; list each topic once"
    ))
}

pub fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

fn error_name(code: ErrorCode) -> &'static str {
    use ErrorCode as E;
    match code {
        E::UnknownTopicOrPartition => "UNKNOWN_TOPIC_OR_PARTITION",
        E::CorruptMessage => "CORRUPT_MESSAGE",
        E::InvalidRecord => "INVALID_RECORD",
        E::MessageTooLarge => "MESSAGE_TOO_LARGE",
        E::OffsetOutOfRange => "OFFSET_OUT_OF_RANGE",
        E::NotLeaderOrFollower => "NOT_LEADER_OR_FOLLOWER",
        E::FencedLeaderEpoch => "FENCED_LEADER_EPOCH",
        E::UnknownLeaderEpoch => "UNKNOWN_LEADER_EPOCH",
        E::TopicAlreadyExists => "TOPIC_ALREADY_EXISTS",
        E::InvalidTopicException => "INVALID_TOPIC_EXCEPTION",
        E::InvalidPartitions => "INVALID_PARTITIONS",
        E::InvalidConfig => "INVALID_CONFIG",
        E::InvalidReplicationFactor => "INVALID_REPLICATION_FACTOR",
        E::InvalidRequest => "INVALID_REQUEST",
        E::InvalidRequiredAcks => "INVALID_REQUIRED_ACKS",
        E::InvalidTimestamp => "INVALID_TIMESTAMP",
        E::UnsupportedVersion => "UNSUPPORTED_VERSION",
        E::KafkaStorageError => "KAFKA_STORAGE_ERROR",
        E::UnknownTopicId => "UNKNOWN_TOPIC_ID",
        E::RequestTimedOut => "REQUEST_TIMED_OUT",
        E::OutOfOrderSequenceNumber => "OUT_OF_ORDER_SEQUENCE_NUMBER",
        E::InvalidProducerEpoch => "INVALID_PRODUCER_EPOCH",
        E::ProducerFenced => "PRODUCER_FENCED",
        E::TransactionalIdAuthorizationFailed => "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
        E::CoordinatorNotAvailable => "COORDINATOR_NOT_AVAILABLE",
        E::IllegalGeneration => "ILLEGAL_GENERATION",
        E::InconsistentGroupProtocol => "INCONSISTENT_GROUP_PROTOCOL",
        E::InvalidGroupId => "INVALID_GROUP_ID",
        E::UnknownMemberId => "UNKNOWN_MEMBER_ID",
        E::InvalidSessionTimeout => "INVALID_SESSION_TIMEOUT",
        E::RebalanceInProgress => "REBALANCE_IN_PROGRESS",
        E::MemberIdRequired => "MEMBER_ID_REQUIRED",
        E::FencedInstanceId => "FENCED_INSTANCE_ID",
        E::GroupIdNotFound => "GROUP_ID_NOT_FOUND",
        E::NonEmptyGroup => "NON_EMPTY_GROUP",
        E::GroupSubscribedToTopic => "GROUP_SUBSCRIBED_TO_TOPIC",
        E::OffsetMetadataTooLarge => "OFFSET_METADATA_TOO_LARGE",
        E::FencedMemberEpoch => "FENCED_MEMBER_EPOCH",
        E::StaleMemberEpoch => "STALE_MEMBER_EPOCH",
        E::UnsupportedAssignor => "UNSUPPORTED_ASSIGNOR",
        E::TopicAuthorizationFailed => "TOPIC_AUTHORIZATION_FAILED",
        E::GroupAuthorizationFailed => "GROUP_AUTHORIZATION_FAILED",
        E::ClusterAuthorizationFailed => "CLUSTER_AUTHORIZATION_FAILED",
        E::SaslAuthenticationFailed => "SASL_AUTHENTICATION_FAILED",
        E::IllegalSaslState => "ILLEGAL_SASL_STATE",
        E::UnsupportedSaslMechanism => "UNSUPPORTED_SASL_MECHANISM",
        E::PolicyViolation => "POLICY_VIOLATION",
        E::ThrottlingQuotaExceeded => "THROTTLING_QUOTA_EXCEEDED",
        E::SecurityDisabled => "SECURITY_DISABLED",
        _ => "OTHER",
    }
}

fn api_name(key: ApiKey) -> &'static str {
    match key {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::Metadata => "Metadata",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        ApiKey::DescribeConfigs => "DescribeConfigs",
        ApiKey::AlterConfigs => "AlterConfigs",
        ApiKey::CreatePartitions => "CreatePartitions",
        ApiKey::IncrementalAlterConfigs => "IncrementalAlterConfigs",
        ApiKey::DescribeCluster => "DescribeCluster",
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::OffsetCommit => "OffsetCommit",
        ApiKey::OffsetFetch => "OffsetFetch",
        ApiKey::OffsetDelete => "OffsetDelete",
        ApiKey::OffsetForLeaderEpoch => "OffsetForLeaderEpoch",
        ApiKey::ListGroups => "ListGroups",
        ApiKey::DescribeGroups => "DescribeGroups",
        ApiKey::DeleteGroups => "DeleteGroups",
        ApiKey::ConsumerGroupHeartbeat => "ConsumerGroupHeartbeat",
        ApiKey::ConsumerGroupDescribe => "ConsumerGroupDescribe",
        ApiKey::SaslHandshake => "SaslHandshake",
        ApiKey::SaslAuthenticate => "SaslAuthenticate",
        ApiKey::CreateAcls => "CreateAcls",
        ApiKey::DescribeAcls => "DescribeAcls",
        ApiKey::DeleteAcls => "DeleteAcls",
        _ => "Other",
    }
}
