//! Every API at every version we advertise gets a well-formed response with
//! the data filled in (the codec refuses fields a version lacks, so this
//! catches handlers that set them).

mod common;

use common::{record_batch, Broker, RawClient};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use sluice_protocol::versions::{PRODUCE_MIN_DECODABLE, SERVED_APIS};

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.into()))
}

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.into())
}

fn request(key: ApiKey, v: i16) -> RequestKind {
    let topic = "versions";
    match key {
        ApiKey::ApiVersions => RequestKind::ApiVersions(if v >= 3 {
            ApiVersionsRequest::default()
                .with_client_software_name(s("t"))
                .with_client_software_version(s("1"))
        } else {
            ApiVersionsRequest::default()
        }),
        ApiKey::Metadata => {
            RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default().with_name(Some(name(topic))),
            ])))
        }
        ApiKey::Produce => RequestKind::Produce(
            ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(5000)
                .with_topic_data(vec![produce_request::TopicProduceData::default()
                    .with_name(name(topic))
                    .with_partition_data(vec![
                        produce_request::PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(record_batch(2, Compression::Gzip))),
                    ])]),
        ),
        ApiKey::Fetch => RequestKind::Fetch(
            FetchRequest::default()
                .with_max_wait_ms(10)
                .with_max_bytes(1 << 20)
                .with_topics(vec![fetch_request::FetchTopic::default()
                    .with_topic(name(topic))
                    .with_partitions(vec![fetch_request::FetchPartition::default()
                        .with_partition(0)
                        .with_partition_max_bytes(1 << 20)])]),
        ),
        ApiKey::ListOffsets => {
            RequestKind::ListOffsets(ListOffsetsRequest::default().with_topics(vec![
                list_offsets_request::ListOffsetsTopic::default()
                    .with_name(name(topic))
                    .with_partitions(vec![list_offsets_request::ListOffsetsPartition::default()
                        .with_timestamp(if v >= 7 { -3 } else { -1 })]),
            ]))
        }
        ApiKey::OffsetForLeaderEpoch => RequestKind::OffsetForLeaderEpoch(
            OffsetForLeaderEpochRequest::default().with_topics(vec![
                offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                    .with_topic(name(topic))
                    .with_partitions(vec![
                        offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                            .with_leader_epoch(0),
                    ]),
            ]),
        ),
        ApiKey::CreateTopics => {
            RequestKind::CreateTopics(CreateTopicsRequest::default().with_topics(vec![
            create_topics_request::CreatableTopic::default()
                .with_name(name(&format!("created-v{v}")))
                .with_num_partitions(2)
                .with_replication_factor(1),
        ]))
        }
        ApiKey::DeleteTopics => {
            let r = DeleteTopicsRequest::default();
            RequestKind::DeleteTopics(if v >= 6 {
                r.with_topics(vec![delete_topics_request::DeleteTopicState::default()
                    .with_name(Some(name("nope")))])
            } else {
                r.with_topic_names(vec![name("nope")])
            })
        }
        ApiKey::CreatePartitions => {
            RequestKind::CreatePartitions(CreatePartitionsRequest::default().with_topics(vec![
                create_partitions_request::CreatePartitionsTopic::default()
                    .with_name(name(topic))
                    .with_count(2 + v as i32),
            ]))
        }
        ApiKey::DescribeConfigs => {
            RequestKind::DescribeConfigs(DescribeConfigsRequest::default().with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s(topic)),
        ]))
        }
        ApiKey::AlterConfigs => {
            RequestKind::AlterConfigs(AlterConfigsRequest::default().with_resources(vec![
            alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s(topic))
                .with_configs(vec![alter_configs_request::AlterableConfig::default()
                    .with_name(s("retention.ms"))
                    .with_value(Some(s("-1")))]),
        ]))
        }
        ApiKey::IncrementalAlterConfigs => RequestKind::IncrementalAlterConfigs(
            IncrementalAlterConfigsRequest::default().with_resources(vec![
                incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s(topic))
                    .with_configs(vec![
                        incremental_alter_configs_request::AlterableConfig::default()
                            .with_name(s("retention.ms"))
                            .with_value(Some(s("-1"))),
                    ]),
            ]),
        ),
        ApiKey::DescribeCluster => RequestKind::DescribeCluster(DescribeClusterRequest::default()),
        ApiKey::InitProducerId => RequestKind::InitProducerId(
            InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(-1)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        ),
        ApiKey::FindCoordinator => RequestKind::FindCoordinator(if v >= 4 {
            FindCoordinatorRequest::default().with_coordinator_keys(vec![s("g-every")])
        } else {
            FindCoordinatorRequest::default().with_key(s("g-every"))
        }),
        // One group per version: each join completes at once on its own.
        ApiKey::JoinGroup => RequestKind::JoinGroup(
            JoinGroupRequest::default()
                .with_group_id(GroupId(s(&format!("g-join-{v}"))))
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(if v >= 1 { 10_000 } else { -1 })
                .with_protocol_type(s("consumer"))
                .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
                )
                .with_name(s("range"))
                .with_metadata(bytes::Bytes::from_static(b"\0\0\0\0\0\0"))]),
        ),
        ApiKey::SyncGroup => RequestKind::SyncGroup(
            SyncGroupRequest::default()
                .with_group_id(GroupId(s("g-unknown")))
                .with_generation_id(1)
                .with_member_id(s("nobody")),
        ),
        ApiKey::Heartbeat => RequestKind::Heartbeat(
            HeartbeatRequest::default()
                .with_group_id(GroupId(s("g-unknown")))
                .with_generation_id(1)
                .with_member_id(s("nobody")),
        ),
        ApiKey::LeaveGroup => RequestKind::LeaveGroup(if v >= 3 {
            LeaveGroupRequest::default().with_group_id(GroupId(s("g-unknown")))
        } else {
            LeaveGroupRequest::default()
                .with_group_id(GroupId(s("g-unknown")))
                .with_member_id(s("nobody"))
        }),
        // An admin commit: no member, generation -1, into a group without members.
        ApiKey::OffsetCommit => RequestKind::OffsetCommit(
            OffsetCommitRequest::default()
                .with_group_id(GroupId(s("g-offsets")))
                .with_generation_id_or_member_epoch(-1)
                .with_topics(vec![
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(name(topic))
                        .with_partitions(vec![
                            offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(1)
                                .with_committed_metadata(Some(s("m"))),
                        ]),
                ]),
        ),
        ApiKey::OffsetFetch => RequestKind::OffsetFetch(if v >= 8 {
            OffsetFetchRequest::default().with_groups(vec![
                offset_fetch_request::OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(s("g-offsets")))
                    .with_topics(Some(vec![
                        offset_fetch_request::OffsetFetchRequestTopics::default()
                            .with_name(name(topic))
                            .with_partition_indexes(vec![0]),
                    ])),
            ])
        } else {
            OffsetFetchRequest::default()
                .with_group_id(GroupId(s("g-offsets")))
                .with_topics(Some(vec![
                    offset_fetch_request::OffsetFetchRequestTopic::default()
                        .with_name(name(topic))
                        .with_partition_indexes(vec![0]),
                ]))
        }),
        ApiKey::OffsetDelete => RequestKind::OffsetDelete(
            OffsetDeleteRequest::default()
                .with_group_id(GroupId(s("g-offsets")))
                .with_topics(vec![
                    offset_delete_request::OffsetDeleteRequestTopic::default()
                        .with_name(name(topic))
                        .with_partitions(vec![
                            offset_delete_request::OffsetDeleteRequestPartition::default()
                                .with_partition_index(0),
                        ]),
                ]),
        ),
        ApiKey::ListGroups => RequestKind::ListGroups(ListGroupsRequest::default()),
        ApiKey::DescribeGroups => RequestKind::DescribeGroups(
            DescribeGroupsRequest::default().with_groups(vec![GroupId(s("g-offsets"))]),
        ),
        ApiKey::DeleteGroups => RequestKind::DeleteGroups(
            DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g-unknown"))]),
        ),
        ApiKey::ConsumerGroupHeartbeat => RequestKind::ConsumerGroupHeartbeat(
            ConsumerGroupHeartbeatRequest::default()
                .with_group_id(GroupId(s(&format!("cg-{v}"))))
                .with_member_id(s(&format!("member-{v}")))
                .with_member_epoch(0)
                .with_rebalance_timeout_ms(30_000)
                .with_subscribed_topic_names(Some(vec![name(topic)]))
                .with_topic_partitions(Some(vec![])),
        ),
        ApiKey::ConsumerGroupDescribe => RequestKind::ConsumerGroupDescribe(
            ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(s("cg-0"))]),
        ),
        // An open broker: no SASL, no ACLs.
        ApiKey::SaslHandshake => {
            RequestKind::SaslHandshake(SaslHandshakeRequest::default().with_mechanism(s("PLAIN")))
        }
        ApiKey::SaslAuthenticate => RequestKind::SaslAuthenticate(
            SaslAuthenticateRequest::default()
                .with_auth_bytes(bytes::Bytes::from_static(b"\0u\0p")),
        ),
        ApiKey::CreateAcls => RequestKind::CreateAcls(CreateAclsRequest::default().with_creations(
            vec![create_acls_request::AclCreation::default()
                .with_resource_type(2)
                .with_resource_name(s("t"))
                .with_resource_pattern_type(3)
                .with_principal(s("User:u"))
                .with_host(s("*"))
                .with_operation(3)
                .with_permission_type(3)],
        )),
        ApiKey::DescribeAcls => RequestKind::DescribeAcls(
            DescribeAclsRequest::default()
                .with_resource_type_filter(1)
                .with_pattern_type_filter(1)
                .with_operation(1)
                .with_permission_type(1),
        ),
        ApiKey::DeleteAcls => RequestKind::DeleteAcls(DeleteAclsRequest::default().with_filters(
            vec![delete_acls_request::DeleteAclsFilter::default()
                .with_resource_type_filter(1)
                .with_pattern_type_filter(1)
                .with_operation(1)
                .with_permission_type(1)],
        )),
        other => panic!("no request built for {other:?}"),
    }
}

/// The error codes a version's answer must carry: success, except where the
/// request is refused on purpose (an unknown member or group).
fn expected(key: ApiKey, v: i16) -> Vec<i16> {
    const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    const UNKNOWN_MEMBER_ID: i16 = 25;
    const GROUP_ID_NOT_FOUND: i16 = 69;
    const MEMBER_ID_REQUIRED: i16 = 79;
    const ILLEGAL_SASL_STATE: i16 = 34;
    const SECURITY_DISABLED: i16 = 54;
    match key {
        ApiKey::SaslHandshake | ApiKey::SaslAuthenticate => vec![ILLEGAL_SASL_STATE],
        ApiKey::CreateAcls | ApiKey::DescribeAcls | ApiKey::DeleteAcls => vec![SECURITY_DISABLED],
        ApiKey::DeleteTopics => vec![UNKNOWN_TOPIC_OR_PARTITION],
        ApiKey::JoinGroup if v >= 4 => vec![MEMBER_ID_REQUIRED],
        ApiKey::SyncGroup | ApiKey::Heartbeat => vec![UNKNOWN_MEMBER_ID],
        ApiKey::LeaveGroup if v < 3 => vec![UNKNOWN_MEMBER_ID],
        ApiKey::OffsetFetch | ApiKey::OffsetDelete => vec![0, 0],
        ApiKey::DeleteGroups => vec![GROUP_ID_NOT_FOUND],
        _ => vec![0],
    }
}

#[test]
fn every_served_version_answers() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(
        &dir.path().join("data"),
        &["--group-initial-rebalance-delay-ms", "0"],
    );
    let mut c = RawClient::connect(&broker.bootstrap());
    // Metadata auto-creates the topic the requests use.
    c.request(ApiKey::Metadata, 12, request(ApiKey::Metadata, 12));
    c.request(ApiKey::Produce, 9, request(ApiKey::Produce, 9));
    let mut answered = 0;
    for api in SERVED_APIS {
        let min = if api.key == ApiKey::Produce {
            PRODUCE_MIN_DECODABLE
        } else {
            api.min
        };
        for v in min..=api.max {
            let response = c.request(api.key, v, request(api.key, v));
            let errors: Vec<i16> = match &response {
                ResponseKind::Produce(r) => r
                    .responses
                    .iter()
                    .flat_map(|t| t.partition_responses.iter().map(|p| p.error_code))
                    .collect(),
                ResponseKind::Fetch(r) => r
                    .responses
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                    .collect(),
                ResponseKind::ListOffsets(r) => r
                    .topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                    .collect(),
                ResponseKind::OffsetForLeaderEpoch(r) => r
                    .topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                    .collect(),
                ResponseKind::Metadata(r) => r.topics.iter().map(|t| t.error_code).collect(),
                ResponseKind::CreateTopics(r) => r.topics.iter().map(|t| t.error_code).collect(),
                ResponseKind::CreatePartitions(r) => {
                    r.results.iter().map(|t| t.error_code).collect()
                }
                ResponseKind::DescribeConfigs(r) => {
                    r.results.iter().map(|t| t.error_code).collect()
                }
                ResponseKind::AlterConfigs(r) => r.responses.iter().map(|t| t.error_code).collect(),
                ResponseKind::IncrementalAlterConfigs(r) => {
                    r.responses.iter().map(|t| t.error_code).collect()
                }
                ResponseKind::DeleteTopics(r) => r.responses.iter().map(|t| t.error_code).collect(),
                ResponseKind::ApiVersions(r) => vec![r.error_code],
                ResponseKind::DescribeCluster(r) => vec![r.error_code],
                ResponseKind::InitProducerId(r) => {
                    assert!(r.producer_id.0 >= 0, "InitProducerId v{v}: {r:?}");
                    vec![r.error_code]
                }
                ResponseKind::FindCoordinator(r) if v >= 4 => {
                    r.coordinators.iter().map(|c| c.error_code).collect()
                }
                ResponseKind::FindCoordinator(r) => {
                    assert_eq!(r.port, broker.kafka_port as i32, "FindCoordinator v{v}");
                    vec![r.error_code]
                }
                ResponseKind::JoinGroup(r) => {
                    assert!(!r.member_id.is_empty(), "JoinGroup v{v}: {r:?}");
                    if r.error_code == 0 {
                        assert_eq!(r.members.len(), 1, "the leader sees itself: {r:?}");
                    }
                    vec![r.error_code]
                }
                ResponseKind::SyncGroup(r) => vec![r.error_code],
                ResponseKind::Heartbeat(r) => vec![r.error_code],
                ResponseKind::LeaveGroup(r) => vec![r.error_code],
                ResponseKind::OffsetCommit(r) => r
                    .topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                    .collect(),
                ResponseKind::OffsetFetch(r) if v >= 8 => {
                    let g = &r.groups[0];
                    assert_eq!(g.topics[0].partitions[0].committed_offset, 1, "v{v}");
                    vec![g.error_code, g.topics[0].partitions[0].error_code]
                }
                ResponseKind::OffsetFetch(r) => {
                    assert_eq!(r.topics[0].partitions[0].committed_offset, 1, "v{v}");
                    vec![r.error_code, r.topics[0].partitions[0].error_code]
                }
                ResponseKind::OffsetDelete(r) => {
                    vec![r.error_code, r.topics[0].partitions[0].error_code]
                }
                ResponseKind::ListGroups(r) => {
                    assert!(
                        r.groups
                            .iter()
                            .any(|g| g.group_id.0.as_str() == "g-offsets"),
                        "ListGroups v{v}: {r:?}"
                    );
                    vec![r.error_code]
                }
                ResponseKind::DescribeGroups(r) => r.groups.iter().map(|g| g.error_code).collect(),
                ResponseKind::DeleteGroups(r) => r.results.iter().map(|g| g.error_code).collect(),
                ResponseKind::ConsumerGroupHeartbeat(r) => {
                    assert_eq!(r.member_epoch, 1, "ConsumerGroupHeartbeat v{v}: {r:?}");
                    assert!(
                        r.assignment.is_some(),
                        "a joining member gets its assignment"
                    );
                    vec![r.error_code]
                }
                ResponseKind::ConsumerGroupDescribe(r) => {
                    r.groups.iter().map(|g| g.error_code).collect()
                }
                ResponseKind::SaslHandshake(r) => vec![r.error_code],
                ResponseKind::SaslAuthenticate(r) => vec![r.error_code],
                ResponseKind::CreateAcls(r) => r.results.iter().map(|x| x.error_code).collect(),
                ResponseKind::DescribeAcls(r) => vec![r.error_code],
                ResponseKind::DeleteAcls(r) => {
                    r.filter_results.iter().map(|x| x.error_code).collect()
                }
                other => panic!("unexpected response {other:?}"),
            };
            assert_eq!(errors, expected(api.key, v), "{:?} v{v}", api.key);
            answered += 1;
        }
    }
    assert!(answered > 60, "{answered} versions answered");
}
