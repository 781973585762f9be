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
        other => panic!("no request built for {other:?}"),
    }
}

#[test]
fn every_served_version_answers() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&dir.path().join("data"), &[]);
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
                other => panic!("unexpected response {other:?}"),
            };
            let expected = if api.key == ApiKey::DeleteTopics {
                vec![3]
            } else {
                vec![0]
            };
            assert_eq!(errors, expected, "{:?} v{v}", api.key);
            answered += 1;
        }
    }
    assert!(answered > 60, "{answered} versions answered");
}
