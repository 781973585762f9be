//! Two tenants on one `sluice dev --multi-tenant` broker: each authenticates
//! with its own credential and can neither see nor touch the other's topics,
//! groups or offsets, under prefixed or bare names, through any API; every
//! refusal carries its Kafka error and, where the protocol has one, a
//! message. Tenants are provisioned through the REST API, as operators do.

mod common;

use std::time::Duration;

use common::rest::{as_operator, create_tenant, operator_token};
use common::{record_batch, sasl_client, Broker, RawClient};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::{json, Value};

const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
const GROUP_AUTHORIZATION_FAILED: i16 = 30;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
const SASL_AUTHENTICATION_FAILED: i16 = 58;
const POLICY_VIOLATION: i16 = 44;
const UNKNOWN_TOPIC_ID: i16 = 100;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn name(v: &str) -> TopicName {
    TopicName(s(v))
}

/// A tenant on plan basic-0, made through the REST API as operators do:
/// its name and its first credential's password.
fn tenant(broker: &Broker, name: &str) -> (String, String) {
    let v = create_tenant(broker, name, Some("basic-0"));
    (
        v["tenant"]["name"].as_str().unwrap().to_string(),
        v["credential"]["password"].as_str().unwrap().to_string(),
    )
}

/// A raw connection authenticated with SASL PLAIN.
fn login(bootstrap: &str, user: &str, password: &str) -> Result<RawClient, (i16, String)> {
    let mut c = RawClient::connect(bootstrap);
    let ResponseKind::SaslHandshake(h) = c.request(
        ApiKey::SaslHandshake,
        1,
        RequestKind::SaslHandshake(SaslHandshakeRequest::default().with_mechanism(s("PLAIN"))),
    ) else {
        panic!("not a handshake response")
    };
    assert_eq!(h.error_code, 0);
    let token = format!("\0{user}\0{password}");
    let ResponseKind::SaslAuthenticate(a) = c.request(
        ApiKey::SaslAuthenticate,
        2,
        RequestKind::SaslAuthenticate(
            SaslAuthenticateRequest::default().with_auth_bytes(bytes::Bytes::from(token)),
        ),
    ) else {
        panic!("not an authenticate response")
    };
    if a.error_code != 0 {
        return Err((
            a.error_code,
            a.error_message.map(|m| m.to_string()).unwrap_or_default(),
        ));
    }
    Ok(c)
}

fn metadata(c: &mut RawClient, topics: Option<&[&str]>) -> MetadataResponse {
    let req = MetadataRequest::default()
        .with_topics(topics.map(|ts| {
            ts.iter()
                .map(|t| metadata_request::MetadataRequestTopic::default().with_name(Some(name(t))))
                .collect()
        }))
        .with_allow_auto_topic_creation(true);
    match c.request(ApiKey::Metadata, 12, RequestKind::Metadata(req)) {
        ResponseKind::Metadata(r) => r,
        other => panic!("{other:?}"),
    }
}

fn create_topic(c: &mut RawClient, topic: &str, configs: &[(&str, &str)]) -> (i16, String, i32) {
    let req = CreateTopicsRequest::default().with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        create_topics_request::CreatableTopicConfig::default()
                            .with_name(s(k))
                            .with_value(Some(s(v)))
                    })
                    .collect(),
            ),
    ]);
    match c.request(ApiKey::CreateTopics, 7, RequestKind::CreateTopics(req)) {
        ResponseKind::CreateTopics(r) => {
            let t = &r.topics[0];
            (
                t.error_code,
                t.error_message
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
                t.num_partitions,
            )
        }
        other => panic!("{other:?}"),
    }
}

/// OffsetForLeaderEpoch (v4) of partition 0; a replica id of 0 or more
/// asks as a follower broker would.
fn epoch_end_error(c: &mut RawClient, topic: &str, replica_id: i32) -> i16 {
    let req = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(replica_id))
        .with_topics(vec![
            offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                .with_topic(name(topic))
                .with_partitions(vec![
                    offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                        .with_leader_epoch(1),
                ]),
        ]);
    match c.request(
        ApiKey::OffsetForLeaderEpoch,
        4,
        RequestKind::OffsetForLeaderEpoch(req),
    ) {
        ResponseKind::OffsetForLeaderEpoch(r) => r.topics[0].partitions[0].error_code,
        other => panic!("{other:?}"),
    }
}

fn produce(c: &mut RawClient, topic: &str) -> (i16, String) {
    let (code, message, _) = c.produce(topic, 0, record_batch(2, Compression::None));
    (code, message.unwrap_or_default())
}

fn fetch_error(c: &mut RawClient, topic: &str) -> i16 {
    let req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    match c.request(ApiKey::Fetch, 12, RequestKind::Fetch(req)) {
        ResponseKind::Fetch(r) => r.responses[0].partitions[0].error_code,
        other => panic!("{other:?}"),
    }
}

fn list_offsets_error(c: &mut RawClient, topic: &str) -> i16 {
    let req = ListOffsetsRequest::default().with_topics(vec![
        list_offsets_request::ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![list_offsets_request::ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-1)]),
    ]);
    match c.request(ApiKey::ListOffsets, 8, RequestKind::ListOffsets(req)) {
        ResponseKind::ListOffsets(r) => r.topics[0].partitions[0].error_code,
        other => panic!("{other:?}"),
    }
}

fn delete_topic(c: &mut RawClient, topic: &str) -> (i16, String) {
    let req = DeleteTopicsRequest::default().with_topic_names(vec![name(topic)]);
    match c.request(ApiKey::DeleteTopics, 5, RequestKind::DeleteTopics(req)) {
        ResponseKind::DeleteTopics(r) => (
            r.responses[0].error_code,
            r.responses[0]
                .error_message
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default(),
        ),
        other => panic!("{other:?}"),
    }
}

fn alter_config(c: &mut RawClient, topic: &str, key: &str, value: &str) -> (i16, String) {
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s(topic))
            .with_configs(vec![
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(s(key))
                    .with_value(Some(s(value))),
            ]),
    ]);
    match c.request(
        ApiKey::IncrementalAlterConfigs,
        1,
        RequestKind::IncrementalAlterConfigs(req),
    ) {
        ResponseKind::IncrementalAlterConfigs(r) => (
            r.responses[0].error_code,
            r.responses[0]
                .error_message
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default(),
        ),
        other => panic!("{other:?}"),
    }
}

fn describe_config_error(c: &mut RawClient, topic: &str) -> i16 {
    let req = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s(topic)),
    ]);
    match c.request(
        ApiKey::DescribeConfigs,
        4,
        RequestKind::DescribeConfigs(req),
    ) {
        ResponseKind::DescribeConfigs(r) => r.results[0].error_code,
        other => panic!("{other:?}"),
    }
}

fn add_partitions_error(c: &mut RawClient, topic: &str, count: i32) -> (i16, String) {
    let req = CreatePartitionsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![
            create_partitions_request::CreatePartitionsTopic::default()
                .with_name(name(topic))
                .with_count(count),
        ]);
    match c.request(
        ApiKey::CreatePartitions,
        3,
        RequestKind::CreatePartitions(req),
    ) {
        ResponseKind::CreatePartitions(r) => (
            r.results[0].error_code,
            r.results[0]
                .error_message
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default(),
        ),
        other => panic!("{other:?}"),
    }
}

fn commit_error(c: &mut RawClient, group: &str, topic: &str) -> i16 {
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(name(topic))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(1),
                ]),
        ]);
    match c.request(ApiKey::OffsetCommit, 9, RequestKind::OffsetCommit(req)) {
        ResponseKind::OffsetCommit(r) => r.topics[0].partitions[0].error_code,
        other => panic!("{other:?}"),
    }
}

fn find_coordinator(c: &mut RawClient, group: &str) -> (i16, String) {
    let req = FindCoordinatorRequest::default().with_coordinator_keys(vec![s(group)]);
    match c.request(
        ApiKey::FindCoordinator,
        4,
        RequestKind::FindCoordinator(req),
    ) {
        ResponseKind::FindCoordinator(r) => (
            r.coordinators[0].error_code,
            r.coordinators[0]
                .error_message
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default(),
        ),
        other => panic!("{other:?}"),
    }
}

fn group_listing(c: &mut RawClient) -> Vec<String> {
    match c.request(
        ApiKey::ListGroups,
        5,
        RequestKind::ListGroups(ListGroupsRequest::default()),
    ) {
        ResponseKind::ListGroups(r) => r.groups.iter().map(|g| g.group_id.to_string()).collect(),
        other => panic!("{other:?}"),
    }
}

fn describe_group_error(c: &mut RawClient, group: &str) -> i16 {
    let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group))]);
    match c.request(ApiKey::DescribeGroups, 5, RequestKind::DescribeGroups(req)) {
        ResponseKind::DescribeGroups(r) => r.groups[0].error_code,
        other => panic!("{other:?}"),
    }
}

fn delete_group_error(c: &mut RawClient, group: &str) -> i16 {
    let req = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(group))]);
    match c.request(ApiKey::DeleteGroups, 2, RequestKind::DeleteGroups(req)) {
        ResponseKind::DeleteGroups(r) => r.results[0].error_code,
        other => panic!("{other:?}"),
    }
}

fn fetched_offsets(c: &mut RawClient, group: &str) -> (i16, Vec<String>) {
    let req = OffsetFetchRequest::default().with_groups(vec![
        offset_fetch_request::OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(s(group)))
            .with_topics(None),
    ]);
    match c.request(ApiKey::OffsetFetch, 9, RequestKind::OffsetFetch(req)) {
        ResponseKind::OffsetFetch(r) => (
            r.groups[0].error_code,
            r.groups[0]
                .topics
                .iter()
                .map(|t| t.name.to_string())
                .collect(),
        ),
        other => panic!("{other:?}"),
    }
}

fn describe_acls(c: &mut RawClient) -> DescribeAclsResponse {
    let req = DescribeAclsRequest::default()
        .with_resource_name_filter(None)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_resource_type_filter(1)
        .with_pattern_type_filter(1)
        .with_operation(1)
        .with_permission_type(1);
    match c.request(ApiKey::DescribeAcls, 3, RequestKind::DescribeAcls(req)) {
        ResponseKind::DescribeAcls(r) => r,
        other => panic!("{other:?}"),
    }
}

#[test]
fn tenants_see_and_touch_only_their_own_resources() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(
        &dir.path().join("data"),
        &["--multi-tenant", "--group-initial-rebalance-delay-ms", "0"],
    );
    let bootstrap = broker.bootstrap();
    let (a, a_password) = tenant(&broker, "acme");
    let (b, b_password) = tenant(&broker, "bravo");

    // No credential: nothing but ApiVersions and SASL is served.
    let mut anonymous = RawClient::connect(&bootstrap);
    let frame = anonymous.frame(
        ApiKey::Metadata,
        12,
        &RequestKind::Metadata(MetadataRequest::default()),
    );
    anonymous.send_bytes(&frame);
    assert!(
        anonymous.read_frame().is_none(),
        "an unauthenticated request closes the connection"
    );
    // Empty credentials, a wrong password, and a tenant's password for the
    // other tenant.
    assert_eq!(
        login(&bootstrap, "", "").err().unwrap().0,
        SASL_AUTHENTICATION_FAILED
    );
    let (code, message) = login(&bootstrap, &a, "wrong").err().unwrap();
    assert_eq!(code, SASL_AUTHENTICATION_FAILED);
    assert!(message.contains("Authentication failed"), "{message}");
    assert_eq!(
        login(&bootstrap, &a, &b_password).err().unwrap().0,
        SASL_AUTHENTICATION_FAILED
    );

    let token = operator_token(&broker.data_dir);
    let mut admin = login(&bootstrap, "admin", &token).unwrap();
    let mut ta = login(&bootstrap, &a, &a_password).unwrap();
    let mut tb = login(&bootstrap, &b, &b_password).unwrap();

    // Each tenant creates a topic under its prefix, with its plan's defaults.
    let (code, message, partitions) = create_topic(&mut ta, "acme.events", &[]);
    assert_eq!((code, partitions), (0, 8), "{message}");
    assert_eq!(create_topic(&mut tb, "bravo.events", &[]).0, 0);
    // The operator's bare-named topic.
    assert_eq!(create_topic(&mut admin, "events", &[]).0, 0);

    // Outside the prefix: refused, and the message says what to use instead.
    let (code, message, _) = create_topic(&mut ta, "orders", &[]);
    assert_eq!(code, TOPIC_AUTHORIZATION_FAILED);
    assert_eq!(
        message,
        "topic `orders` is not under your prefix `acme.`; use `acme.orders`"
    );
    // Guard rails of basic-0.
    let (code, message, _) = create_topic(&mut ta, "acme.short", &[("retention.ms", "3600000")]);
    assert_eq!(code, POLICY_VIOLATION);
    assert!(
        message.contains("basic-0") && message.contains("86400000"),
        "{message}"
    );
    let (code, message) = alter_config(&mut ta, "acme.events", "segment.bytes", "1048576");
    assert_eq!(code, POLICY_VIOLATION);
    assert!(message.contains("managed by the operator"), "{message}");
    assert_eq!(
        alter_config(&mut ta, "acme.events", "retention.ms", "172800000").0,
        0
    );
    let (code, message) = add_partitions_error(&mut ta, "acme.events", 65);
    assert_eq!(code, 37, "INVALID_PARTITIONS: {message}");
    assert!(message.contains("64 per topic"), "{message}");
    assert_eq!(add_partitions_error(&mut ta, "acme.events", 10).0, 0);

    // Listing shows only one's own topics; the operator sees all.
    let listed = |c: &mut RawClient| -> Vec<String> {
        let mut names: Vec<String> = metadata(c, None)
            .topics
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
            .collect();
        names.sort();
        names
    };
    assert_eq!(listed(&mut ta), vec!["acme.events"]);
    assert_eq!(listed(&mut tb), vec!["bravo.events"]);
    assert_eq!(
        listed(&mut admin),
        vec!["acme.events", "bravo.events", "events"]
    );

    // Every API, on the other tenant's topic and on the bare name.
    for other in ["bravo.events", "events", "bravo.never-created"] {
        let m = metadata(&mut ta, Some(&[other]));
        assert_eq!(
            m.topics[0].error_code, TOPIC_AUTHORIZATION_FAILED,
            "{other}"
        );
        assert!(m.topics[0].partitions.is_empty());
        let (code, message) = produce(&mut ta, other);
        assert_eq!(code, TOPIC_AUTHORIZATION_FAILED, "{other}");
        assert!(
            message.contains("not under your prefix `acme.`"),
            "{message}"
        );
        assert_eq!(
            fetch_error(&mut ta, other),
            TOPIC_AUTHORIZATION_FAILED,
            "{other}"
        );
        assert_eq!(
            list_offsets_error(&mut ta, other),
            TOPIC_AUTHORIZATION_FAILED
        );
        for replica_id in [-1, 0] {
            assert_eq!(
                epoch_end_error(&mut ta, other, replica_id),
                TOPIC_AUTHORIZATION_FAILED
            );
        }
        assert_eq!(
            describe_config_error(&mut ta, other),
            TOPIC_AUTHORIZATION_FAILED
        );
        let (code, message) = alter_config(&mut ta, other, "retention.ms", "172800000");
        assert_eq!(code, TOPIC_AUTHORIZATION_FAILED, "{message}");
        assert!(!message.is_empty());
        let (code, message) = delete_topic(&mut ta, other);
        assert_eq!(code, TOPIC_AUTHORIZATION_FAILED, "{message}");
        assert!(!message.is_empty());
        assert_eq!(
            add_partitions_error(&mut ta, other, 20).0,
            TOPIC_AUTHORIZATION_FAILED
        );
    }
    // By topic id (Metadata v12, DeleteTopics v6): the other tenant's topic
    // is as unknown as an id no topic has, and its name is not given away.
    let bravo_id = metadata(&mut tb, Some(&["bravo.events"])).topics[0].topic_id;
    let req = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_topic_id(bravo_id),
    ]));
    let ResponseKind::Metadata(m) = ta.request(ApiKey::Metadata, 12, RequestKind::Metadata(req))
    else {
        panic!("wrong response kind")
    };
    assert_eq!(m.topics[0].error_code, UNKNOWN_TOPIC_ID);
    assert_eq!(m.topics[0].name, None, "the name stays hidden");
    let req = DeleteTopicsRequest::default().with_topics(vec![
        delete_topics_request::DeleteTopicState::default().with_topic_id(bravo_id),
    ]);
    let ResponseKind::DeleteTopics(r) =
        ta.request(ApiKey::DeleteTopics, 6, RequestKind::DeleteTopics(req))
    else {
        panic!("wrong response kind")
    };
    assert_eq!(r.responses[0].error_code, UNKNOWN_TOPIC_ID);
    assert_eq!(r.responses[0].name, None);
    // Nothing of B's changed.
    assert_eq!(
        metadata(&mut tb, Some(&["bravo.events"])).topics[0]
            .partitions
            .len(),
        8
    );
    assert_eq!(produce(&mut tb, "bravo.events").0, 0);
    assert_eq!(produce(&mut ta, "acme.events").0, 0);
    // A tenant may ask where its own partition's epochs end; a replica id
    // changes nothing (Kafka looks only at the principal's rights).
    assert_eq!(epoch_end_error(&mut ta, "acme.events", -1), 0);
    assert_eq!(epoch_end_error(&mut ta, "acme.events", 0), 0);

    // Groups: B's group and bare names are off limits; A's own group must
    // be created first on a basic plan, and the refusal says how.
    assert_eq!(
        commit_error(&mut tb, "bravo.app", "bravo.events"),
        GROUP_AUTHORIZATION_FAILED
    );
    as_operator(
        &broker,
        "POST",
        &format!("/v1/tenants/{b}/groups"),
        &json!({"name": "app"}),
    );
    assert_eq!(commit_error(&mut tb, "bravo.app", "bravo.events"), 0);
    let (code, message) = find_coordinator(&mut ta, "acme.app");
    assert_eq!(code, GROUP_AUTHORIZATION_FAILED);
    assert!(
        message.contains("sluice groups create app --tenant acme"),
        "{message}"
    );
    assert_eq!(
        commit_error(&mut ta, "acme.app", "acme.events"),
        GROUP_AUTHORIZATION_FAILED
    );
    as_operator(
        &broker,
        "POST",
        &format!("/v1/tenants/{a}/groups"),
        &json!({"name": "acme.app"}),
    );
    assert_eq!(find_coordinator(&mut ta, "acme.app").0, 0);
    assert_eq!(commit_error(&mut ta, "acme.app", "acme.events"), 0);
    // A commits nothing into B's group, nor B's topic into its own group.
    for group in ["bravo.app", "app"] {
        assert_eq!(
            commit_error(&mut ta, group, "acme.events"),
            GROUP_AUTHORIZATION_FAILED
        );
        assert_eq!(
            find_coordinator(&mut ta, group).0,
            GROUP_AUTHORIZATION_FAILED
        );
        assert_eq!(
            describe_group_error(&mut ta, group),
            GROUP_AUTHORIZATION_FAILED
        );
        assert_eq!(
            delete_group_error(&mut ta, group),
            GROUP_AUTHORIZATION_FAILED
        );
        assert_eq!(
            fetched_offsets(&mut ta, group).0,
            GROUP_AUTHORIZATION_FAILED
        );
    }
    assert_eq!(
        commit_error(&mut ta, "acme.app", "bravo.events"),
        TOPIC_AUTHORIZATION_FAILED
    );
    assert_eq!(group_listing(&mut ta), vec!["acme.app"]);
    assert_eq!(group_listing(&mut tb), vec!["bravo.app"]);
    assert_eq!(
        fetched_offsets(&mut tb, "bravo.app"),
        (0, vec!["bravo.events".to_string()])
    );
    assert_eq!(describe_group_error(&mut tb, "bravo.app"), 0);

    // ACLs are the operator's: tenants can neither read nor change them.
    let refused = describe_acls(&mut ta);
    assert_eq!(refused.error_code, CLUSTER_AUTHORIZATION_FAILED);
    assert!(refused.error_message.is_some());
    let all = describe_acls(&mut admin);
    assert_eq!(all.error_code, 0);
    let names: Vec<String> = all
        .resources
        .iter()
        .map(|r| r.resource_name.to_string())
        .collect();
    assert!(
        names.contains(&"acme.".to_string()) && names.contains(&"bravo.".to_string()),
        "{names:?}"
    );
}

/// librdkafka with SCRAM-SHA-512 and SCRAM-SHA-256: a tenant produces and
/// consumes its own topic in its own (created) group; the other tenant's
/// credentials read nothing of it; a revoked credential stops working.
#[test]
fn real_clients_authenticate_with_scram_and_stay_isolated() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(
        &dir.path().join("data"),
        &["--multi-tenant", "--group-initial-rebalance-delay-ms", "0"],
    );
    let (a, a_password) = tenant(&broker, "acme");
    let (b, b_password) = tenant(&broker, "bravo");
    as_operator(
        &broker,
        "POST",
        &format!("/v1/tenants/{a}/groups"),
        &json!({"name": "readers"}),
    );
    let config = |user: &str, password: &str, mechanism: &str| {
        let mut c = sasl_client(&broker.bootstrap(), user, password);
        c.set("sasl.mechanism", mechanism);
        c
    };
    let mut raw = login(&broker.bootstrap(), &a, &a_password).unwrap();
    assert_eq!(create_topic(&mut raw, "acme.orders", &[]).0, 0);

    let producer: ThreadedProducer<DefaultProducerContext> =
        config(&a, &a_password, "SCRAM-SHA-512")
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .create()
            .unwrap();
    for i in 0..20 {
        producer
            .send(
                BaseRecord::to("acme.orders")
                    .key(&format!("k{i}"))
                    .payload("v"),
            )
            .unwrap();
    }
    producer.flush(Duration::from_secs(20)).unwrap();

    let consumer: BaseConsumer = config(&a, &a_password, "SCRAM-SHA-256")
        .set("group.id", "acme.readers")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["acme.orders"]).unwrap();
    let mut got = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while got < 20 && std::time::Instant::now() < deadline {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(200)) {
            got += 1;
        }
    }
    assert_eq!(got, 20, "tenant reads back its own records");
    consumer
        .commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
        .unwrap();

    // B's credential sees nothing of A's.
    let other: BaseConsumer = config(&b, &b_password, "SCRAM-SHA-512").create().unwrap();
    let md = other.fetch_metadata(None, Duration::from_secs(10)).unwrap();
    assert!(md.topics().iter().all(|t| !t.name().starts_with("acme.")));
    let md = other
        .fetch_metadata(Some("acme.orders"), Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        md.topics()[0].error(),
        Some(rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
    );

    // A wrong password fails to authenticate in librdkafka too.
    let wrong: BaseConsumer = config(&a, "nope", "SCRAM-SHA-512").create().unwrap();
    let e = wrong
        .fetch_metadata(None, Duration::from_secs(5))
        .unwrap_err();
    let text = format!("{e:?}");
    assert!(
        text.contains("Authentication")
            || text.contains("SaslAuthenticationFailed")
            || text.contains("BrokerTransportFailure"),
        "{text}"
    );

    // A second credential works until it is revoked.
    let cred = as_operator(
        &broker,
        "POST",
        &format!("/v1/tenants/{a}/credentials"),
        &json!({"name": "worker"}),
    );
    let user = cred["username"].as_str().unwrap().to_string();
    let password = cred["password"].as_str().unwrap().to_string();
    assert!(login(&broker.bootstrap(), &user, &password).is_ok());
    as_operator(
        &broker,
        "DELETE",
        &format!("/v1/tenants/{a}/credentials/{user}"),
        &Value::Null,
    );
    assert_eq!(
        login(&broker.bootstrap(), &user, &password)
            .err()
            .unwrap()
            .0,
        SASL_AUTHENTICATION_FAILED
    );
}
