//! Malformed and hostile input gets the Kafka error or a closed connection,
//! and the broker keeps serving everyone else.

mod common;

use bytes::{BufMut, BytesMut};
use common::{record_batch, Broker, RawClient};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

fn fetch(
    c: &mut RawClient,
    topic: &str,
    offset: i64,
    max_wait_ms: i32,
) -> fetch_response::PartitionData {
    let req = FetchRequest::default()
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.into())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])]);
    let ResponseKind::Fetch(r) = c.request(ApiKey::Fetch, 12, RequestKind::Fetch(req)) else {
        panic!("wrong response kind")
    };
    r.responses[0].partitions[0].clone()
}

fn metadata_works(bootstrap: &str) {
    let mut c = RawClient::connect(bootstrap);
    let ResponseKind::Metadata(m) = c.request(
        ApiKey::Metadata,
        12,
        RequestKind::Metadata(MetadataRequest::default()),
    ) else {
        panic!("wrong response kind")
    };
    assert_eq!(m.brokers.len(), 1, "broker still serves metadata");
}

#[test]
fn api_versions_and_refused_versions() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&dir.path().join("data"), &[]);
    let mut c = RawClient::connect(&broker.bootstrap());
    // v3+ names the client; a malformed name is refused (KIP-511).
    let ResponseKind::ApiVersions(v) = c.request(
        ApiKey::ApiVersions,
        3,
        RequestKind::ApiVersions(
            ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("sw eep!"))
                .with_client_software_version(StrBytes::from_static_str("1.0")),
        ),
    ) else {
        panic!()
    };
    assert_eq!((v.error_code, v.api_keys.len()), (42, 0), "INVALID_REQUEST");
    let ResponseKind::ApiVersions(v) = c.request(
        ApiKey::ApiVersions,
        3,
        RequestKind::ApiVersions(
            ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("raw-test"))
                .with_client_software_version(StrBytes::from_static_str("1.0")),
        ),
    ) else {
        panic!()
    };
    assert_eq!(v.error_code, 0);
    let produce = v
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::Produce as i16)
        .unwrap();
    assert_eq!(
        produce.min_version, 0,
        "Produce is advertised from v0 for old librdkafka"
    );
    assert!(v
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::DescribeCluster as i16));

    // ApiVersions at a version from the future: v0 answer, UNSUPPORTED_VERSION, with the table.
    let mut frame = BytesMut::new();
    frame.put_i32(0);
    frame.put_i16(ApiKey::ApiVersions as i16);
    frame.put_i16(99);
    frame.put_i32(42);
    frame.put_i16(-1);
    let len = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    c.send_bytes(&frame);
    let resp = c
        .read_response(ApiKey::ApiVersions, 0)
        .expect("a response, not a closed connection");
    let ResponseKind::ApiVersions(v) = resp else {
        panic!()
    };
    assert_eq!(v.error_code, 35, "UNSUPPORTED_VERSION");
    assert!(!v.api_keys.is_empty());

    // Produce v2: refused per partition with UNSUPPORTED_VERSION.
    let mut f = BytesMut::new();
    f.put_i32(0);
    f.put_i16(0); // Produce
    f.put_i16(2);
    f.put_i32(43);
    f.put_i16(3);
    f.put_slice(b"old");
    f.put_i16(1); // acks
    f.put_i32(1000);
    f.put_i32(1); // topics
    f.put_i16(1);
    f.put_slice(b"t");
    f.put_i32(1); // partitions
    f.put_i32(0);
    f.put_i32(3);
    f.put_slice(b"xyz");
    let len = (f.len() - 4) as i32;
    f[..4].copy_from_slice(&len.to_be_bytes());
    c.send_bytes(&f);
    let body = c.read_frame().expect("Produce v2 gets a response");
    // correlation id, topics count 1, name "t", partitions 1, index 0, error code
    assert_eq!(&body[..4], &43i32.to_be_bytes());
    let error_at = 4 + 4 + 2 + 1 + 4 + 4;
    assert_eq!(
        common::be_i16(&body, error_at),
        35,
        "UNSUPPORTED_VERSION for Produce v2"
    );

    // Metadata at an unsupported version closes the connection.
    let mut f = BytesMut::new();
    f.put_i32(8);
    f.put_i16(ApiKey::Metadata as i16);
    f.put_i16(77);
    f.put_i32(44);
    c.send_bytes(&f);
    assert!(c.is_closed());
    metadata_works(&broker.bootstrap());
}

#[test]
fn corrupt_and_invalid_batches_get_kafka_errors() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&dir.path().join("data"), &[]);
    let mut c = RawClient::connect(&broker.bootstrap());
    c.create_topic("hostile", 1, &[("max.message.bytes", "300")]);

    let good = record_batch(3, Compression::None);
    assert_eq!(c.produce("hostile", 0, good.clone()), (0, None, 0));

    let mut bad_crc = good.to_vec();
    *bad_crc.last_mut().unwrap() ^= 0x55;
    let (code, msg, _) = c.produce("hostile", 0, bad_crc.into());
    assert_eq!(code, 2, "CORRUPT_MESSAGE");
    assert!(
        msg.unwrap().contains("CRC"),
        "the message says what is wrong"
    );

    let mut wrong_magic = good.to_vec();
    wrong_magic[16] = 1;
    let (code, msg, _) = c.produce("hostile", 0, wrong_magic.into());
    assert_eq!(code, 87, "INVALID_RECORD");
    assert!(msg.unwrap().contains("magic 1"));

    let (code, _, _) = c.produce("hostile", 0, good.slice(..good.len() - 5));
    assert_eq!(code, 2, "a truncated batch is CORRUPT_MESSAGE");

    let (code, msg, _) = c.produce("hostile", 0, record_batch(60, Compression::None));
    assert_eq!(code, 10, "MESSAGE_TOO_LARGE");
    assert!(msg.unwrap().contains("max.message.bytes=300"));

    let (code, msg, _) = c.produce("no-such-topic", 0, good.clone());
    assert_eq!(code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    assert!(msg.unwrap().contains("no-such-topic"));
    let (code, msg, _) = c.produce("hostile", 7, good.clone());
    assert_eq!(code, 3);
    assert!(msg.unwrap().contains("has 1 partitions"));

    // Nothing refused was written: the next good batch lands at offset 3.
    assert_eq!(c.produce("hostile", 0, good).2, 3);
    let p = fetch(&mut c, "hostile", 0, 100);
    assert_eq!(p.high_watermark, 6);

    // Fetching past the end: OFFSET_OUT_OF_RANGE with the log's bounds.
    let p = fetch(&mut c, "hostile", 1000, 100);
    assert_eq!(p.error_code, 1, "OFFSET_OUT_OF_RANGE");
    assert_eq!((p.log_start_offset, p.high_watermark), (0, 6));

    let metrics = broker.http_get("/metrics").expect("metrics");
    assert!(
        metrics.contains("sluice_errors_total{api=\"Produce\",code=\"CORRUPT_MESSAGE\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("sluice_requests_total{api=\"Produce\"}"));
    assert!(metrics.contains("sluice_commit_seconds_bucket"));
    assert!(metrics.contains("sluice_records_in_total 6"));
}

#[test]
fn long_poll_wakes_on_produce() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&dir.path().join("data"), &[]);
    let mut c = RawClient::connect(&broker.bootstrap());
    c.create_topic("poll", 1, &[]);
    // Nothing there: the fetch waits and returns empty, without error.
    let p = fetch(&mut c, "poll", 0, 200);
    assert_eq!((p.error_code, p.high_watermark), (0, 0));
    assert!(p.records.unwrap_or_default().is_empty());

    let bootstrap = broker.bootstrap();
    let producer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let mut p = RawClient::connect(&bootstrap);
        p.produce("poll", 0, record_batch(2, Compression::None))
    });
    // max_wait is longer than the client's 15 s read timeout: only a wake-up
    // on the commit can answer in time.
    let p = fetch(&mut c, "poll", 0, 25_000);
    assert_eq!(producer.join().unwrap().0, 0);
    assert_eq!(p.high_watermark, 2);
    assert!(!p.records.unwrap_or_default().is_empty());
}

#[test]
fn bad_frames_close_only_their_connection() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&dir.path().join("data"), &["--max-request-bytes", "65536"]);
    let b = broker.bootstrap();

    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "length over the limit",
            (1_000_000i32).to_be_bytes().to_vec(),
        ),
        ("negative length", (-5i32).to_be_bytes().to_vec()),
        ("too short for a header", vec![0, 0, 0, 2, 0, 1]),
        ("unknown api key", {
            let mut f = vec![0, 0, 0, 10];
            f.extend_from_slice(&[0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff]);
            f
        }),
        (
            "an array claiming 822 million topics (found by cargo fuzz)",
            {
                let body = [
                    0x00, 0x13, 0x00, 0x02, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x31, 0x00, 0x00,
                    0x00, 0x00, 0x01, 0x00,
                ];
                let mut f = (body.len() as i32).to_be_bytes().to_vec();
                f.extend_from_slice(&body);
                f
            },
        ),
        ("garbage body", {
            let mut f = vec![0, 0, 0, 12];
            f.extend_from_slice(&[0, 3, 0, 12, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff]);
            f
        }),
    ];
    for (what, bytes) in cases {
        let mut c = RawClient::connect(&b);
        c.send_bytes(&bytes);
        assert!(c.is_closed(), "{what}: the broker closes the connection");
    }
    // A truncated frame: the client goes away mid-frame.
    {
        let mut c = RawClient::connect(&b);
        c.send_bytes(&[0, 0, 0, 100, 1, 2, 3]);
    }
    // Random bytes from many connections.
    let mut seed = 0x2545F4914F6CDD1Du64;
    for _ in 0..200 {
        let mut c = RawClient::connect(&b);
        let len = (seed % 64) as usize + 1;
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        c.send_bytes(&junk);
    }
    metadata_works(&b);
    let metrics = broker.http_get("/metrics").unwrap();
    assert!(metrics.contains("sluice_bad_frames_total"));
}

#[test]
fn storage_failures_are_answered_without_server_details() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let broker = Broker::start(&data, &[]);
    let mut c = RawClient::connect(&broker.bootstrap());
    c.create_topic("broken", 1, &[]);
    let batch = record_batch(3, Compression::None);
    assert_eq!(c.produce("broken", 0, batch.clone()).0, 0);

    // Object writes fail: the objects' directory is replaced by a file.
    let objects = data.join("objects/objects");
    let moved = data.join("objects/moved");
    std::fs::rename(&objects, &moved).unwrap();
    std::fs::write(&objects, b"not a directory").unwrap();
    let (code, message, _) = c.produce("broken", 0, batch.clone());
    let message = message.unwrap_or_default();
    assert_eq!(code, 56, "KAFKA_STORAGE_ERROR: {message}");
    assert!(message.contains("storage failed"), "{message}");
    assert!(
        !message.contains(dir.path().to_str().unwrap()),
        "a client is not told the broker's paths: {message}"
    );
    assert!(
        broker.log_tail().contains("object write failed"),
        "the cause is in the log"
    );

    // Once the store is back, produce works again.
    std::fs::remove_file(&objects).unwrap();
    std::fs::rename(&moved, &objects).unwrap();
    assert_eq!(c.produce("broken", 0, batch).0, 0);
}
