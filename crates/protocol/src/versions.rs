//! The APIs and versions Sluice serves. ApiVersions advertises exactly this
//! table, and requests outside it are refused before they are decoded.

use kafka_protocol::messages::ApiKey;

/// One served API: its key and the inclusive version range.
#[derive(Debug, Clone, Copy)]
pub struct ServedApi {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
}

const fn api(key: ApiKey, min: i16, max: i16) -> ServedApi {
    ServedApi { key, min, max }
}

/// Produce is advertised from v0 although v0-2 are refused at request time
/// (as Kafka 4 does, KAFKA-18659): librdkafka before 2.11.1 turns compression
/// off when a broker advertises Produce v3 as its minimum.
pub const PRODUCE_MIN_DECODABLE: i16 = 3;

/// Everything we serve. Versions that carry topic ids instead of names
/// (Produce v13, Fetch v13+) are left out until topic-id addressing lands.
pub const SERVED_APIS: &[ServedApi] = &[
    api(ApiKey::Produce, 0, 12),
    api(ApiKey::Fetch, 4, 12),
    api(ApiKey::ListOffsets, 1, 8),
    api(ApiKey::Metadata, 0, 12),
    // v0-1 were removed in Kafka 4 (KIP-896); librdkafka asks for v2.
    api(ApiKey::OffsetForLeaderEpoch, 2, 4),
    api(ApiKey::ApiVersions, 0, 4),
    api(ApiKey::CreateTopics, 2, 7),
    api(ApiKey::DeleteTopics, 1, 6),
    api(ApiKey::DescribeConfigs, 1, 4),
    api(ApiKey::AlterConfigs, 0, 2),
    api(ApiKey::CreatePartitions, 0, 3),
    api(ApiKey::IncrementalAlterConfigs, 0, 1),
    api(ApiKey::DescribeCluster, 0, 1),
    api(ApiKey::InitProducerId, 0, 5),
    api(ApiKey::FindCoordinator, 0, 6),
    api(ApiKey::JoinGroup, 0, 9),
    api(ApiKey::SyncGroup, 0, 5),
    api(ApiKey::Heartbeat, 0, 4),
    api(ApiKey::LeaveGroup, 0, 5),
    // OffsetCommit v10 and OffsetFetch v10 address topics by id.
    api(ApiKey::OffsetCommit, 2, 9),
    api(ApiKey::OffsetFetch, 1, 9),
    api(ApiKey::OffsetDelete, 0, 0),
    api(ApiKey::ListGroups, 0, 5),
    api(ApiKey::DescribeGroups, 0, 5),
    api(ApiKey::DeleteGroups, 0, 2),
    api(ApiKey::ConsumerGroupHeartbeat, 0, 1),
    api(ApiKey::ConsumerGroupDescribe, 0, 1),
    // v0 of SaslHandshake means unframed SASL tokens, which Kafka 4 dropped;
    // every client we support uses v1 with SaslAuthenticate.
    api(ApiKey::SaslHandshake, 1, 1),
    api(ApiKey::SaslAuthenticate, 0, 2),
    // v0 predates prefixed patterns; Kafka 4 serves from v1.
    api(ApiKey::DescribeAcls, 1, 3),
    api(ApiKey::CreateAcls, 1, 3),
    api(ApiKey::DeleteAcls, 1, 3),
];

/// The served range for an API key, if we serve it at all.
pub fn served(key: i16) -> Option<ServedApi> {
    SERVED_APIS.iter().copied().find(|a| a.key as i16 == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_ranges_are_decodable_by_the_codec() {
        for a in SERVED_APIS {
            let codec = a.key.valid_versions();
            let min = if a.key == ApiKey::Produce {
                PRODUCE_MIN_DECODABLE
            } else {
                a.min
            };
            assert!(min >= codec.min && a.max <= codec.max, "{:?}", a.key);
        }
    }
}
