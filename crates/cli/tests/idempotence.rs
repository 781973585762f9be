//! Idempotent produce through the real broker, in raw protocol frames so
//! that retries, gaps and stale epochs can be sent on purpose: a retry gets
//! the original offset, a gap OUT_OF_ORDER_SEQUENCE_NUMBER, a stale epoch
//! INVALID_PRODUCER_EPOCH, each with an error message; InitProducerId bumps
//! epochs (KIP-360) and fences stale ones; producer state survives a
//! restart and a kill -9, and expires when a producer stays idle.

mod common;

use bytes::{Bytes, BytesMut};
use common::{Broker, RawClient};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

const TOPIC: &str = "idem";

/// A gzip batch of `n` records from producer `pid` at `epoch`, sequences from `seq`.
fn batch(pid: i64, epoch: i16, seq: i32, n: usize) -> Bytes {
    batch_at(pid, epoch, seq, n, common::now_ms())
}

/// The same, with records stamped `timestamp`.
fn batch_at(pid: i64, epoch: i16, seq: i32, n: usize, timestamp: i64) -> Bytes {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: seq + i as i32,
            timestamp,
            key: None,
            value: Some(Bytes::from(format!("e{epoch}-s{}", seq + i as i32))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::Gzip,
        },
    )
    .unwrap();
    buf.freeze()
}

fn produce_request(records: Bytes) -> RequestKind {
    RequestKind::Produce(
        ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(TOPIC.into())))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(records))])]),
    )
}

/// (error code, error message, base offset) of a produce response.
fn produce_result(r: ResponseKind) -> (i16, String, i64) {
    let ResponseKind::Produce(r) = r else {
        panic!("wrong response kind")
    };
    let p = &r.responses[0].partition_responses[0];
    let message = p
        .error_message
        .as_ref()
        .map(|s| s.to_string())
        .unwrap_or_default();
    (p.error_code, message, p.base_offset)
}

fn produce(c: &mut RawClient, records: Bytes) -> (i16, String, i64) {
    produce_result(c.request(ApiKey::Produce, 9, produce_request(records)))
}

/// The base offset of an accepted produce.
fn produced(c: &mut RawClient, records: Bytes) -> i64 {
    let (code, message, offset) = produce(c, records);
    assert_eq!(code, 0, "{message}");
    offset
}

/// (error code, producer id, epoch) of InitProducerId.
fn init_producer_id(
    c: &mut RawClient,
    version: i16,
    held: Option<(i64, i16)>,
    transactional_id: Option<&str>,
) -> (i16, i64, i16) {
    let (id, epoch) = held.unwrap_or((-1, -1));
    let req = InitProducerIdRequest::default()
        .with_transactional_id(
            transactional_id.map(|t| TransactionalId(StrBytes::from_string(t.into()))),
        )
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(id))
        .with_producer_epoch(epoch);
    let ResponseKind::InitProducerId(r) = c.request(
        ApiKey::InitProducerId,
        version,
        RequestKind::InitProducerId(req),
    ) else {
        panic!("wrong response kind")
    };
    (r.error_code, r.producer_id.0, r.producer_epoch)
}

/// Creates the test topic with one partition.
fn create_topic(c: &mut RawClient) {
    let create = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(TOPIC.into())))
        .with_num_partitions(1)
        .with_replication_factor(1)]);
    let ResponseKind::CreateTopics(r) =
        c.request(ApiKey::CreateTopics, 7, RequestKind::CreateTopics(create))
    else {
        panic!("wrong response kind")
    };
    assert_eq!(r.topics[0].error_code, 0);
}

#[test]
fn retries_gaps_epochs_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(&dir.path().join("data"), &[]);
    let mut c = RawClient::connect(&broker.bootstrap());
    create_topic(&mut c);

    let (code, pid, epoch) = init_producer_id(&mut c, 4, None, None);
    assert_eq!((code, epoch), (0, 0));
    assert!(pid >= 0);

    // A batch and its retry: one append, the original offset twice.
    assert_eq!(produced(&mut c, batch(pid, 0, 0, 3)), 0);
    assert_eq!(produced(&mut c, batch(pid, 0, 0, 3)), 0);
    // Pipelined: the retry arrives while the original is being committed.
    let original = c.frame(ApiKey::Produce, 9, &produce_request(batch(pid, 0, 3, 2)));
    let retry = c.frame(ApiKey::Produce, 9, &produce_request(batch(pid, 0, 3, 2)));
    c.send_bytes(&original);
    c.send_bytes(&retry);
    for _ in 0..2 {
        let r = c.read_response(ApiKey::Produce, 9).expect("response");
        let (code, message, offset) = produce_result(r);
        assert_eq!((code, offset), (0, 3), "{message}");
    }

    // A gap.
    let (code, message, offset) = produce(&mut c, batch(pid, 0, 10, 1));
    assert_eq!((code, offset), (45, -1), "OUT_OF_ORDER_SEQUENCE_NUMBER");
    assert!(message.contains("expected 5"), "{message}");

    // KIP-360: the same id at the next epoch, which fences the old one.
    assert_eq!(
        init_producer_id(&mut c, 3, Some((pid, 0)), None),
        (0, pid, 1)
    );
    let (code, message, _) = produce(&mut c, batch(pid, 1, 5, 1));
    assert_eq!(code, 45, "a new epoch starts at sequence 0: {message}");
    assert_eq!(produced(&mut c, batch(pid, 1, 0, 2)), 5);
    // The partition learns of the new epoch from its first batch.
    let (code, message, _) = produce(&mut c, batch(pid, 0, 5, 1));
    assert_eq!(code, 47, "INVALID_PRODUCER_EPOCH");
    assert!(message.contains("fenced"), "{message}");

    // A retried bump returns the same epoch; an older one is fenced.
    assert_eq!(
        init_producer_id(&mut c, 5, Some((pid, 0)), None),
        (0, pid, 1)
    );
    assert_eq!(
        init_producer_id(&mut c, 5, Some((pid, 1)), None),
        (0, pid, 2)
    );
    assert_eq!(init_producer_id(&mut c, 5, Some((pid, 0)), None).0, 90);
    // Transactions are not served yet.
    assert_eq!(
        init_producer_id(&mut c, 4, None, Some("txn-1")),
        (53, -1, -1),
        "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"
    );

    // Producer state survives a clean restart and a kill -9.
    broker.stop();
    broker.restart();
    let mut c = RawClient::connect(&broker.bootstrap());
    assert_eq!(produced(&mut c, batch(pid, 1, 0, 2)), 5);
    assert_eq!(produced(&mut c, batch(pid, 1, 2, 1)), 7);
    broker.kill9();
    broker.restart();
    let mut c = RawClient::connect(&broker.bootstrap());
    assert_eq!(produced(&mut c, batch(pid, 1, 2, 1)), 7);
    assert_eq!(produce(&mut c, batch(pid, 1, 4, 1)).0, 45);
    assert_eq!(produced(&mut c, batch(pid, 1, 3, 1)), 8);
    let (code, fresh, epoch) = init_producer_id(&mut c, 0, None, None);
    assert_eq!(code, 0);
    assert!(
        fresh > pid && epoch == 0,
        "ids are never reused across restarts"
    );
}

#[test]
fn an_idle_producers_state_expires() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(
        &dir.path().join("data"),
        &[
            "--producer-id-expiration-ms",
            "2500",
            "--maintenance-interval-ms",
            "200",
        ],
    );
    let mut c = RawClient::connect(&broker.bootstrap());
    create_topic(&mut c);
    let (_, idle, _) = init_producer_id(&mut c, 4, None, None);
    let (_, busy, _) = init_producer_id(&mut c, 4, None, None);
    assert_eq!(produced(&mut c, batch(idle, 0, 0, 2)), 0);

    // `busy` keeps writing, with records stamped two days ago (Kafka would
    // expire it by those); `idle` writes nothing for four seconds.
    let old = common::now_ms() - 2 * 86_400_000;
    let mut next = 2;
    for seq in (0..40).step_by(2) {
        assert_eq!(produced(&mut c, batch_at(busy, 0, seq, 2, old)), next);
        next += 2;
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(
        broker.counter("sluice_producers_expired_total"),
        1,
        "only the idle producer expired"
    );
    // A retry of `busy`'s last batch is still recognised; `idle`'s first
    // batch is no longer a retry, so it is appended again, and `idle`
    // carries on from there (any sequence is accepted from a producer the
    // partition has no state for, as in Kafka).
    assert_eq!(produced(&mut c, batch_at(busy, 0, 38, 2, old)), next - 2);
    assert_eq!(produced(&mut c, batch(idle, 0, 0, 2)), next);
    assert_eq!(produced(&mut c, batch(idle, 0, 2, 1)), next + 2);
}
