//! Kafka's rules on the shape of a request, in raw frames: a topic named
//! twice in one admin request is refused once and left alone; DeleteTopics
//! by topic id; a produce holds one batch per partition and zstd only from
//! v7; a refused produce at acks=0 closes the connection; config requests
//! with repeated keys or resources, null values, APPEND to a non-list or an
//! INT out of range; broker config names; ListOffsets of one partition
//! twice or with a special timestamp its version does not know; Kafka's
//! internal topic names; DescribeCluster's endpoint types and the cluster's
//! authorized operations.

mod common;

use bytes::Bytes;
use common::{record_batch, Broker, RawClient};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use uuid::Uuid;

const INVALID_REQUEST: i16 = 42;
const INVALID_RECORD: i16 = 87;
const INVALID_TIMESTAMP: i16 = 32;
const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
const UNKNOWN_TOPIC_ID: i16 = 100;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.into()))
}

fn create(c: &mut RawClient, names: &[&str]) -> Vec<(String, i16, Option<String>)> {
    let req = CreateTopicsRequest::default().with_topics(
        names
            .iter()
            .map(|n| {
                CreatableTopic::default()
                    .with_name(name(n))
                    .with_num_partitions(1)
                    .with_replication_factor(1)
            })
            .collect(),
    );
    let ResponseKind::CreateTopics(r) =
        c.request(ApiKey::CreateTopics, 7, RequestKind::CreateTopics(req))
    else {
        panic!("wrong response kind")
    };
    r.topics
        .iter()
        .map(|t| {
            (
                t.name.to_string(),
                t.error_code,
                t.error_message.as_ref().map(|m| m.to_string()),
            )
        })
        .collect()
}

/// The topic's id and partition count, if it exists.
fn describe(c: &mut RawClient, topic: &str) -> Option<(Uuid, usize)> {
    let req = MetadataRequest::default()
        .with_allow_auto_topic_creation(false)
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
        )
        .with_name(Some(name(topic)))]));
    let ResponseKind::Metadata(m) = c.request(ApiKey::Metadata, 12, RequestKind::Metadata(req))
    else {
        panic!("wrong response kind")
    };
    let t = &m.topics[0];
    (t.error_code == 0).then_some((t.topic_id, t.partitions.len()))
}

fn delete(c: &mut RawClient, targets: Vec<DeleteTopicState>) -> DeleteTopicsResponse {
    let req = DeleteTopicsRequest::default()
        .with_topics(targets)
        .with_timeout_ms(10_000);
    let ResponseKind::DeleteTopics(r) =
        c.request(ApiKey::DeleteTopics, 6, RequestKind::DeleteTopics(req))
    else {
        panic!("wrong response kind")
    };
    r
}

fn by_name(n: &str) -> DeleteTopicState {
    DeleteTopicState::default().with_name(Some(name(n)))
}

#[test]
fn a_topic_named_twice_in_an_admin_request_is_refused_once_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&dir.path().join("data"), &[]);
    let mut c = RawClient::connect(&broker.bootstrap());

    // CreateTopics: the repeated name gets one INVALID_REQUEST and is not
    // created; the other topic is.
    let r = create(&mut c, &["twice", "once", "twice"]);
    assert_eq!(r.len(), 2, "one entry per name: {r:?}");
    let twice = r.iter().find(|t| t.0 == "twice").unwrap();
    assert_eq!(twice.1, INVALID_REQUEST, "{r:?}");
    assert!(twice.2.as_deref().unwrap().contains("more than once"));
    assert_eq!(r.iter().find(|t| t.0 == "once").unwrap().1, 0);
    assert_eq!(describe(&mut c, "twice"), None);
    let (once_id, _) = describe(&mut c, "once").unwrap();

    // CreatePartitions: neither growth happens.
    let req = CreatePartitionsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![
            CreatePartitionsTopic::default()
                .with_name(name("once"))
                .with_count(3),
            CreatePartitionsTopic::default()
                .with_name(name("once"))
                .with_count(4),
        ]);
    let ResponseKind::CreatePartitions(r) = c.request(
        ApiKey::CreatePartitions,
        3,
        RequestKind::CreatePartitions(req),
    ) else {
        panic!("wrong response kind")
    };
    assert_eq!(r.results.len(), 1, "{r:?}");
    assert_eq!(r.results[0].error_code, INVALID_REQUEST);
    assert_eq!(describe(&mut c, "once"), Some((once_id, 1)));

    // DeleteTopics: not deleted. Nor is a topic named by name and id at once.
    let r = delete(&mut c, vec![by_name("once"), by_name("once")]);
    assert_eq!(r.responses.len(), 1, "{r:?}");
    assert_eq!(r.responses[0].error_code, INVALID_REQUEST);
    let both = by_name("once").with_topic_id(once_id);
    let r = delete(&mut c, vec![both]);
    assert_eq!(r.responses[0].error_code, INVALID_REQUEST);
    assert!(describe(&mut c, "once").is_some());

    // By id (v6): an unknown id is UNKNOWN_TOPIC_ID; a known one deletes
    // the topic and names it.
    let unknown = Uuid::from_u128(42);
    let r = delete(
        &mut c,
        vec![DeleteTopicState::default().with_topic_id(unknown)],
    );
    assert_eq!(r.responses[0].error_code, UNKNOWN_TOPIC_ID);
    assert_eq!(r.responses[0].topic_id, unknown);
    let r = delete(
        &mut c,
        vec![DeleteTopicState::default().with_topic_id(once_id)],
    );
    assert_eq!(r.responses[0].error_code, 0, "{r:?}");
    assert_eq!(
        r.responses[0]
            .name
            .as_ref()
            .map(|n| n.to_string())
            .as_deref(),
        Some("once")
    );
    assert_eq!(describe(&mut c, "once"), None);
}

/// A Produce request of `records` to partition 0 of `topic`.
fn produce_request(topic: &str, records: Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])])
}

/// Produces `records` to partition 0 of `topic` at `version` and `acks`;
/// the partition's (error code, message), or `None` without a response.
fn produce(
    c: &mut RawClient,
    topic: &str,
    records: Bytes,
    version: i16,
    acks: i16,
) -> Option<(i16, Option<String>)> {
    let req = produce_request(topic, records, acks);
    if acks == 0 {
        let frame = c.frame(ApiKey::Produce, version, &RequestKind::Produce(req));
        c.send_bytes(&frame);
        return None;
    }
    let ResponseKind::Produce(r) = c.request(ApiKey::Produce, version, RequestKind::Produce(req))
    else {
        panic!("wrong response kind")
    };
    let p = &r.responses[0].partition_responses[0];
    Some((
        p.error_code,
        p.error_message.as_ref().map(|m| m.to_string()),
    ))
}

fn high_watermark(c: &mut RawClient, topic: &str) -> i64 {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let req = ListOffsetsRequest::default().with_topics(vec![ListOffsetsTopic::default()
        .with_name(name(topic))
        .with_partitions(vec![ListOffsetsPartition::default()
            .with_partition_index(0)
            .with_timestamp(-1)])]);
    let ResponseKind::ListOffsets(r) =
        c.request(ApiKey::ListOffsets, 7, RequestKind::ListOffsets(req))
    else {
        panic!("wrong response kind")
    };
    r.topics[0].partitions[0].offset
}

#[test]
fn a_produce_holds_one_batch_per_partition_and_zstd_from_v7() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&dir.path().join("data"), &[]);
    let mut c = RawClient::connect(&broker.bootstrap());
    c.create_topic("shapes", 1, &[]);

    let one = record_batch(2, Compression::None);
    let two = Bytes::from([one.clone(), record_batch(1, Compression::None)].concat());
    let (code, message) = produce(&mut c, "shapes", two, 9, -1).unwrap();
    assert_eq!(code, INVALID_RECORD);
    assert!(message.unwrap().contains("one record batch per partition"));

    let zstd = record_batch(2, Compression::Zstd);
    // (Produce v6 has no error_message field.)
    let (code, _) = produce(&mut c, "shapes", zstd.clone(), 6, -1).unwrap();
    assert_eq!(code, UNSUPPORTED_COMPRESSION_TYPE);
    assert_eq!(
        high_watermark(&mut c, "shapes"),
        0,
        "nothing refused was written"
    );
    assert_eq!(produce(&mut c, "shapes", zstd, 7, -1).unwrap().0, 0);

    // An old-format (magic 1) message set shorter than a v2 batch header
    // is refused for its format, not as truncated.
    let mut old = vec![0u8; 30];
    old[11] = 18;
    old[16] = 1;
    let (code, message) = produce(&mut c, "shapes", old.into(), 9, -1).unwrap();
    assert_eq!(code, INVALID_RECORD, "{message:?}");
    assert!(message.unwrap().contains("magic 1"));
    assert_eq!(high_watermark(&mut c, "shapes"), 2);
}

#[test]
fn a_refused_produce_at_acks_0_closes_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&dir.path().join("data"), &[]);
    let mut c = RawClient::connect(&broker.bootstrap());
    c.create_topic("quiet", 1, &[]);

    // Accepted: no response, and the connection carries on.
    produce(&mut c, "quiet", record_batch(1, Compression::None), 9, 0);
    assert_eq!(high_watermark(&mut c, "quiet"), 1);

    // Refused (unknown topic): the connection closes, the only way an
    // acks=0 producer can learn of it.
    produce(&mut c, "missing", record_batch(1, Compression::None), 9, 0);
    assert!(c.is_closed(), "the broker closed the connection");

    // Likewise for a refused batch, on a new connection.
    let mut c = RawClient::connect(&broker.bootstrap());
    let two = Bytes::from(
        [
            record_batch(1, Compression::None),
            record_batch(1, Compression::None),
        ]
        .concat(),
    );
    produce(&mut c, "quiet", two, 9, 0);
    assert!(c.is_closed());
    let mut c = RawClient::connect(&broker.bootstrap());
    assert_eq!(high_watermark(&mut c, "quiet"), 1);
}

/// One config operation: key, operation (0 SET, 1 DELETE, 2 APPEND,
/// 3 SUBTRACT) and value.
type ConfigOp<'a> = (&'a str, i8, Option<&'a str>);

fn incremental(
    c: &mut RawClient,
    resources: Vec<(&str, Vec<ConfigOp>)>,
) -> Vec<(i16, Option<String>)> {
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    let req = IncrementalAlterConfigsRequest::default().with_resources(
        resources
            .into_iter()
            .map(|(topic, configs)| {
                AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_string(topic.into()))
                    .with_configs(
                        configs
                            .into_iter()
                            .map(|(k, op, v)| {
                                AlterableConfig::default()
                                    .with_name(StrBytes::from_string(k.into()))
                                    .with_config_operation(op)
                                    .with_value(v.map(|v| StrBytes::from_string(v.into())))
                            })
                            .collect(),
                    )
            })
            .collect(),
    );
    let ResponseKind::IncrementalAlterConfigs(r) = c.request(
        ApiKey::IncrementalAlterConfigs,
        1,
        RequestKind::IncrementalAlterConfigs(req),
    ) else {
        panic!("wrong response kind")
    };
    r.responses
        .iter()
        .map(|r| {
            (
                r.error_code,
                r.error_message.as_ref().map(|m| m.to_string()),
            )
        })
        .collect()
}

/// A topic config's (value, source, type) as DescribeConfigs v4 gives it.
fn described(c: &mut RawClient, topic: &str, key: &str) -> (String, i8, i8) {
    let r = describe_configs(c, 2, topic);
    let e = r.configs.iter().find(|e| e.name.as_str() == key).unwrap();
    (
        e.value.as_ref().unwrap().to_string(),
        e.config_source,
        e.config_type,
    )
}

fn describe_configs(
    c: &mut RawClient,
    resource_type: i8,
    name: &str,
) -> describe_configs_response::DescribeConfigsResult {
    let req = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.into())),
    ]);
    let ResponseKind::DescribeConfigs(r) = c.request(
        ApiKey::DescribeConfigs,
        4,
        RequestKind::DescribeConfigs(req),
    ) else {
        panic!("wrong response kind")
    };
    r.results[0].clone()
}

#[test]
fn config_requests_are_checked_as_kafka_checks_them() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&dir.path().join("data"), &[]);
    let mut c = RawClient::connect(&broker.bootstrap());
    c.create_topic("cfg", 1, &[]);

    // A key twice in one resource, a resource twice, a null SET: refused
    // as malformed, and nothing is set.
    let r = incremental(
        &mut c,
        vec![(
            "cfg",
            vec![
                ("retention.ms", 0, Some("1000")),
                ("retention.ms", 0, Some("2000")),
            ],
        )],
    );
    assert_eq!(r[0].0, INVALID_REQUEST, "{r:?}");
    let r = incremental(
        &mut c,
        vec![
            ("cfg", vec![("retention.ms", 0, Some("1000"))]),
            ("cfg", vec![("retention.bytes", 0, Some("1000"))]),
        ],
    );
    assert_eq!(
        r.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![INVALID_REQUEST, INVALID_REQUEST]
    );
    let r = incremental(&mut c, vec![("cfg", vec![("retention.ms", 0, None)])]);
    assert_eq!(r[0].0, INVALID_REQUEST);
    assert_eq!(
        described(&mut c, "cfg", "retention.ms").1,
        5,
        "still the default"
    );

    // APPEND and SUBTRACT apply to lists only; an INT config holds 32 bits.
    for op in [2, 3] {
        let r = incremental(&mut c, vec![("cfg", vec![("retention.ms", op, Some("5"))])]);
        assert_eq!(r[0].0, 40, "INVALID_CONFIG: {r:?}");
        assert!(r[0].1.as_deref().unwrap().contains("not a list"));
    }
    assert_eq!(described(&mut c, "cfg", "retention.ms").1, 5);
    let r = incremental(
        &mut c,
        vec![("cfg", vec![("max.message.bytes", 0, Some("3000000000"))])],
    );
    assert_eq!(r[0].0, 40, "{r:?}");
    let r = incremental(
        &mut c,
        vec![("cfg", vec![("cleanup.policy", 2, Some("compact"))])],
    );
    assert_eq!(r[0].0, 0, "{r:?}");
    // Kafka's types: LIST (7) and INT (3).
    assert_eq!(
        described(&mut c, "cfg", "cleanup.policy"),
        ("delete,compact".to_string(), 1, 7)
    );
    assert_eq!(described(&mut c, "cfg", "max.message.bytes").2, 3);

    // Broker configs: this broker by its id, cluster-wide defaults (none)
    // by the empty name, any other name refused.
    assert!(describe_configs(&mut c, 4, "1")
        .configs
        .iter()
        .any(|e| e.name.as_str() == "broker.id"));
    let all = describe_configs(&mut c, 4, "");
    assert_eq!((all.error_code, all.configs.len()), (0, 0));
    for other in ["2", "abc"] {
        assert_eq!(
            describe_configs(&mut c, 4, other).error_code,
            INVALID_REQUEST
        );
    }
}

#[test]
fn list_offsets_and_names_follow_kafka() {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&dir.path().join("data"), &[]);
    let mut c = RawClient::connect(&broker.bootstrap());
    c.create_topic("lo", 1, &[]);

    let list = |c: &mut RawClient, version: i16, timestamps: &[i64]| -> Vec<i16> {
        let req = ListOffsetsRequest::default().with_topics(vec![ListOffsetsTopic::default()
            .with_name(name("lo"))
            .with_partitions(
                timestamps
                    .iter()
                    .map(|t| {
                        ListOffsetsPartition::default()
                            .with_partition_index(0)
                            .with_timestamp(*t)
                    })
                    .collect(),
            )]);
        let ResponseKind::ListOffsets(r) =
            c.request(ApiKey::ListOffsets, version, RequestKind::ListOffsets(req))
        else {
            panic!("wrong response kind")
        };
        r.topics[0]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect()
    };
    // One partition asked twice: both refused.
    assert_eq!(
        list(&mut c, 7, &[-1, -2]),
        vec![INVALID_REQUEST, INVALID_REQUEST]
    );
    // Special timestamps from the version that knows them.
    const UNSUPPORTED_VERSION: i16 = 35;
    assert_eq!(list(&mut c, 6, &[-3]), vec![UNSUPPORTED_VERSION]);
    assert_eq!(list(&mut c, 7, &[-3]), vec![0]);
    assert_eq!(list(&mut c, 7, &[-4]), vec![UNSUPPORTED_VERSION]);
    assert_eq!(list(&mut c, 8, &[-4]), vec![0]);
    assert_eq!(list(&mut c, 8, &[-5]), vec![UNSUPPORTED_VERSION]);

    // Kafka's internal topic names cannot be created, by CreateTopics or by
    // Metadata's auto-creation.
    let r = create(&mut c, &["__consumer_offsets", "__cluster_metadata"]);
    assert!(
        r.iter().all(|t| t.1 == 17),
        "INVALID_TOPIC_EXCEPTION: {r:?}"
    );
    assert!(r[0].2.as_deref().unwrap().contains("internal"));
    let req = MetadataRequest::default()
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
        )
        .with_name(Some(name("__transaction_state")))]));
    let ResponseKind::Metadata(m) = c.request(ApiKey::Metadata, 12, RequestKind::Metadata(req))
    else {
        panic!("wrong response kind")
    };
    assert_ne!(m.topics[0].error_code, 0);
    assert_eq!(describe(&mut c, "__transaction_state"), None);
    // An invalid name is INVALID_TOPIC_EXCEPTION even without auto-creation.
    let req = MetadataRequest::default()
        .with_allow_auto_topic_creation(false)
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
        )
        .with_name(Some(name("bad name")))]));
    let ResponseKind::Metadata(m) = c.request(ApiKey::Metadata, 12, RequestKind::Metadata(req))
    else {
        panic!("wrong response kind")
    };
    assert_eq!(m.topics[0].error_code, 17);
}

#[test]
fn cluster_requests_follow_kafka() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&dir.path().join("data"), &[]);
    let mut c = RawClient::connect(&broker.bootstrap());
    let cluster = |c: &mut RawClient, endpoint_type: i8, ops: bool| {
        let req = DescribeClusterRequest::default()
            .with_endpoint_type(endpoint_type)
            .with_include_cluster_authorized_operations(ops);
        let ResponseKind::DescribeCluster(r) = c.request(
            ApiKey::DescribeCluster,
            1,
            RequestKind::DescribeCluster(req),
        ) else {
            panic!("wrong response kind")
        };
        r
    };
    // Every cluster operation Kafka defines (CREATE, ALTER, DESCRIBE,
    // CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE) is
    // allowed on an open broker.
    let all_cluster_ops: i32 = [5, 7, 8, 9, 10, 11, 12].iter().map(|b| 1 << b).sum();
    let r = cluster(&mut c, 1, true);
    assert_eq!((r.error_code, r.brokers.len()), (0, 1));
    assert_eq!(r.cluster_authorized_operations, all_cluster_ops);
    assert_eq!(
        cluster(&mut c, 1, false).cluster_authorized_operations,
        i32::MIN
    );
    // KIP-919: a broker endpoint asked for controllers, or for an unknown
    // endpoint type.
    let r = cluster(&mut c, 2, false);
    assert_eq!(r.error_code, 114, "MISMATCHED_ENDPOINT_TYPE");
    assert!(r.error_message.is_some());
    assert_eq!(
        cluster(&mut c, 5, false).error_code,
        115,
        "UNSUPPORTED_ENDPOINT_TYPE"
    );

    // Metadata v8-10 also answers the cluster's operations when asked.
    let req = MetadataRequest::default()
        .with_topics(Some(vec![]))
        .with_include_cluster_authorized_operations(true);
    let ResponseKind::Metadata(m) = c.request(ApiKey::Metadata, 10, RequestKind::Metadata(req))
    else {
        panic!("wrong response kind")
    };
    assert_eq!(m.cluster_authorized_operations, all_cluster_ops);
}

fn stamped_batch(records: &[(Option<&str>, i64)]) -> Bytes {
    common::stamped_batch(records, Compression::Lz4)
}

/// Produces to partition 0 at `version`: (error code, message, each record
/// error's index and message).
fn produce_with_record_errors(
    c: &mut RawClient,
    topic: &str,
    records: Bytes,
    version: i16,
) -> (i16, String, Vec<(i32, String)>) {
    let req = produce_request(topic, records, -1);
    let ResponseKind::Produce(r) = c.request(ApiKey::Produce, version, RequestKind::Produce(req))
    else {
        panic!("wrong response kind")
    };
    let p = &r.responses[0].partition_responses[0];
    (
        p.error_code,
        p.error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
        p.record_errors
            .iter()
            .map(|e| {
                (
                    e.batch_index,
                    e.batch_index_error_message
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                )
            })
            .collect(),
    )
}

#[test]
fn refused_records_are_named_from_produce_v8() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&dir.path().join("data"), &[]);
    let mut c = RawClient::connect(&broker.bootstrap());
    c.create_topic(
        "recent",
        1,
        &[("message.timestamp.before.max.ms", "600000")],
    );
    c.create_topic("keyed", 1, &[("cleanup.policy", "compact")]);
    let now = common::now_ms();
    let hour = 3_600_000;

    // Too old (before.max.ms) and too new (after.max.ms, an hour by
    // default); a record without a timestamp is not checked.
    let stamps = stamped_batch(&[
        (None, now),
        (None, now - hour),
        (None, -1),
        (None, now + 2 * hour),
    ]);
    let (code, message, records) = produce_with_record_errors(&mut c, "recent", stamps.clone(), 9);
    assert_eq!(code, INVALID_TIMESTAMP, "{message}");
    assert_eq!(
        records.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![1, 3],
        "{records:?}"
    );
    assert!(records[0].1.contains("before.max.ms"), "{records:?}");
    assert!(records[1].1.contains("after.max.ms"), "{records:?}");
    assert!(
        message.contains("record 1 of the batch") && message.contains("1 more"),
        "{message}"
    );
    // Before v8 the response has no record errors; the code still says it.
    let (code, _, records) = produce_with_record_errors(&mut c, "recent", stamps, 7);
    assert_eq!((code, records.len()), (INVALID_TIMESTAMP, 0));

    let keys = stamped_batch(&[(Some("a"), now), (None, now), (Some("c"), now)]);
    let (code, message, records) = produce_with_record_errors(&mut c, "keyed", keys, 9);
    assert_eq!(code, INVALID_RECORD, "{message}");
    assert_eq!(records.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1]);
    assert!(records[0].1.contains("no key"), "{records:?}");

    assert_eq!(
        high_watermark(&mut c, "recent"),
        0,
        "nothing refused was written"
    );
    assert_eq!(high_watermark(&mut c, "keyed"), 0);
    let fine = stamped_batch(&[(Some("a"), now - 1000), (Some("b"), now)]);
    assert_eq!(
        produce_with_record_errors(&mut c, "keyed", fine.clone(), 9).0,
        0
    );
    assert_eq!(produce_with_record_errors(&mut c, "recent", fine, 9).0, 0);
}
