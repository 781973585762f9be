//! Leader epochs (KIP-320). Every restart takes the partitions over with a
//! new epoch: a request expecting an older epoch is fenced and a newer one
//! is unknown (Fetch, ListOffsets, OffsetForLeaderEpoch); batches carry the
//! epoch they were written in; OffsetForLeaderEpoch says where each epoch
//! ended. A librdkafka consumer checks its position that way after each
//! restart, and goes on reading where it was: a wrong answer would make it
//! reset to the start and read records twice.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{record_batch, Broker, RawClient};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::{ClientConfig, Message};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const FENCED_LEADER_EPOCH: i16 = 74;
const UNKNOWN_LEADER_EPOCH: i16 = 75;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.into()))
}

/// The leader epoch Metadata reports for partition 0.
fn leader_epoch(c: &mut RawClient, topic: &str) -> i32 {
    let req = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(name(topic))),
    ]));
    match c.request(ApiKey::Metadata, 12, RequestKind::Metadata(req)) {
        ResponseKind::Metadata(r) => r.topics[0].partitions[0].leader_epoch,
        other => panic!("{other:?}"),
    }
}

/// OffsetForLeaderEpoch v2 (librdkafka's version): (error, epoch, end offset).
fn epoch_end(
    c: &mut RawClient,
    topic: &str,
    partition: i32,
    current: i32,
    epoch: i32,
) -> (i16, i32, i64) {
    let req = OffsetForLeaderEpochRequest::default().with_topics(vec![
        offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![
                offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                    .with_partition(partition)
                    .with_current_leader_epoch(current)
                    .with_leader_epoch(epoch),
            ]),
    ]);
    match c.request(
        ApiKey::OffsetForLeaderEpoch,
        2,
        RequestKind::OffsetForLeaderEpoch(req),
    ) {
        ResponseKind::OffsetForLeaderEpoch(r) => {
            let p = &r.topics[0].partitions[0];
            (p.error_code, p.leader_epoch, p.end_offset)
        }
        other => panic!("{other:?}"),
    }
}

/// Fetch v12 of partition 0 from offset 0: the error and the leader epoch
/// of each batch returned.
fn fetch(c: &mut RawClient, topic: &str, current: i32) -> (i16, Vec<i32>) {
    let req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_current_leader_epoch(current)
                .with_partition_max_bytes(1 << 20)])]);
    let ResponseKind::Fetch(r) = c.request(ApiKey::Fetch, 12, RequestKind::Fetch(req)) else {
        panic!("wrong response kind")
    };
    let p = &r.responses[0].partitions[0];
    let mut records = p.records.clone().unwrap_or_default();
    let mut epochs = Vec::new();
    while !records.is_empty() {
        let set = RecordBatchDecoder::decode(&mut records).unwrap();
        epochs.push(set.records[0].partition_leader_epoch);
    }
    (p.error_code, epochs)
}

/// ListOffsets v8 (latest) of partition 0: the error.
fn list_offsets(c: &mut RawClient, topic: &str, current: i32) -> i16 {
    let req = ListOffsetsRequest::default().with_topics(vec![
        list_offsets_request::ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![list_offsets_request::ListOffsetsPartition::default()
                .with_current_leader_epoch(current)
                .with_timestamp(-1)]),
    ]);
    match c.request(ApiKey::ListOffsets, 8, RequestKind::ListOffsets(req)) {
        ResponseKind::ListOffsets(r) => r.topics[0].partitions[0].error_code,
        other => panic!("{other:?}"),
    }
}

fn produce(c: &mut RawClient, topic: &str, n: usize) {
    let (code, message, _) = c.produce(topic, 0, record_batch(n, Compression::None));
    assert_eq!(code, 0, "{message:?}");
}

/// Stops the broker cleanly, starts it again, and connects anew.
fn restart(b: &mut Broker) -> RawClient {
    b.stop();
    b.restart();
    RawClient::connect(&b.bootstrap())
}

#[test]
fn epochs_fence_stale_requests_and_end_where_the_next_began() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Broker::start(&dir.path().join("data"), &[]);
    let mut c = RawClient::connect(&b.bootstrap());
    let t = "epochs";
    c.create_topic(t, 1, &[]);
    let e1 = leader_epoch(&mut c, t);
    produce(&mut c, t, 3);
    produce(&mut c, t, 3);
    assert_eq!(
        epoch_end(&mut c, t, 0, e1, e1),
        (0, e1, 6),
        "the current epoch ends at the high watermark"
    );

    let mut c = restart(&mut b);
    let e2 = leader_epoch(&mut c, t);
    assert!(
        e2 > e1,
        "a restart takes over with a new epoch ({e1} → {e2})"
    );
    produce(&mut c, t, 3);

    // A client that has not seen the new epoch is fenced; one that claims
    // a newer epoch than the leader's is told it is unknown.
    for current in [e1, e2 + 1] {
        let expected = if current < e2 {
            FENCED_LEADER_EPOCH
        } else {
            UNKNOWN_LEADER_EPOCH
        };
        assert_eq!(epoch_end(&mut c, t, 0, current, e1).0, expected);
        assert_eq!(fetch(&mut c, t, current), (expected, vec![]));
        assert_eq!(list_offsets(&mut c, t, current), expected);
    }
    // No epoch expected, or the right one: served.
    assert_eq!(list_offsets(&mut c, t, -1), 0);
    assert_eq!(list_offsets(&mut c, t, e2), 0);
    assert_eq!(
        fetch(&mut c, t, e2),
        (0, vec![e1, e1, e2]),
        "each batch carries the epoch it was written in"
    );
    assert_eq!(fetch(&mut c, t, -1).1.len(), 3);

    // Where each epoch ended.
    assert_eq!(epoch_end(&mut c, t, 0, e2, e1), (0, e1, 6));
    assert_eq!(epoch_end(&mut c, t, 0, e2, e2), (0, e2, 9));
    assert_eq!(epoch_end(&mut c, t, 0, -1, e1), (0, e1, 6));
    assert_eq!(
        epoch_end(&mut c, t, 0, e2, e2 + 1),
        (0, -1, -1),
        "an epoch newer than the leader's is undefined"
    );
    assert_eq!(
        epoch_end(&mut c, t, 1, -1, e1).0,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        epoch_end(&mut c, "no-such-topic", 0, -1, e1).0,
        UNKNOWN_TOPIC_OR_PARTITION
    );

    // Two restarts with nothing written: the epoch in between led no
    // records, so, as in Kafka, it is answered for the last one that did.
    let _ = restart(&mut b);
    let mut c = restart(&mut b);
    let e4 = leader_epoch(&mut c, t);
    assert!(e4 >= e2 + 2, "{e2} → {e4}");
    for asked in e2..e4 {
        assert_eq!(
            epoch_end(&mut c, t, 0, e4, asked),
            (0, e2, 9),
            "epoch {asked}"
        );
    }
    assert_eq!(epoch_end(&mut c, t, 0, e4, e1), (0, e1, 6));
    assert_eq!(epoch_end(&mut c, t, 0, e4, e4), (0, e4, 9));
}

#[test]
fn a_full_fetch_response_still_fences_the_partitions_it_cannot_carry() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Broker::start(&dir.path().join("data"), &[]);
    let mut c = RawClient::connect(&b.bootstrap());
    let t = "two";
    c.create_topic(t, 2, &[]);
    let stale = leader_epoch(&mut c, t);
    let mut c = restart(&mut b);
    produce(&mut c, t, 3);
    let current = leader_epoch(&mut c, t);
    // One byte of budget: partition 0's batch fills the response, and
    // partition 1, expecting the old epoch, is answered without a read.
    let partition = |p: i32, epoch: i32| {
        fetch_request::FetchPartition::default()
            .with_partition(p)
            .with_current_leader_epoch(epoch)
            .with_partition_max_bytes(1 << 20)
    };
    let req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(name(t))
            .with_partitions(vec![partition(0, current), partition(1, stale)])]);
    let ResponseKind::Fetch(r) = c.request(ApiKey::Fetch, 12, RequestKind::Fetch(req)) else {
        panic!("wrong response kind")
    };
    let p = &r.responses[0].partitions;
    assert_eq!(p[0].error_code, 0);
    assert!(p[0].records.as_ref().is_some_and(|r| !r.is_empty()));
    assert_eq!(p[1].error_code, FENCED_LEADER_EPOCH);
}

/// Polls `c` until it has consumed up to offset `until` (exclusive),
/// appending each record's offset and value to `got`.
fn consume_until(c: &BaseConsumer, until: i64, got: &mut Vec<(i64, Bytes)>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.last().map_or(0, |(o, _)| o + 1) < until {
        assert!(
            Instant::now() < deadline,
            "timed out at {:?}",
            got.last().map(|(o, _)| o)
        );
        match c.poll(Duration::from_millis(200)) {
            None => {}
            // Errors while the broker restarts are the client's to retry.
            Some(Err(e)) => eprintln!("consumer: {e}"),
            Some(Ok(m)) => got.push((
                m.offset(),
                Bytes::copy_from_slice(m.payload().unwrap_or_default()),
            )),
        }
    }
}

#[test]
fn librdkafka_validates_its_position_after_each_restart_and_reads_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Broker::start(&dir.path().join("data"), &[]);
    let mut c = RawClient::connect(&b.bootstrap());
    let t = "resume";
    c.create_topic(t, 1, &[]);
    produce(&mut c, t, 10);

    // A reset would go to the start and show up as offsets read twice.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("group.id", "unused-assign-only")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(t, 0, Offset::Beginning).unwrap();
    consumer.assign(&tpl).unwrap();
    let mut got = Vec::new();
    consume_until(&consumer, 10, &mut got);

    let mut validated = 0;
    for round in 1..=2i64 {
        let mut c = restart(&mut b);
        produce(&mut c, t, 5);
        consume_until(&consumer, 10 + 5 * round, &mut got);
        validated = b.counter("sluice_requests_total{api=\"OffsetForLeaderEpoch\"}");
        assert!(
            validated >= 1,
            "round {round}: librdkafka never asked where its epoch ended"
        );
    }
    let offsets: Vec<i64> = got.iter().map(|(o, _)| *o).collect();
    assert_eq!(
        offsets,
        (0..20).collect::<Vec<_>>(),
        "every record once, in order ({validated} validations in the last round)"
    );
    // The values confirm the offsets: each batch of n counts v0..v(n-1).
    let values: Vec<String> = got
        .iter()
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert_eq!(values[9], "v9");
    assert_eq!(values[10], "v0");
    assert_eq!(values[19], "v4");
}
