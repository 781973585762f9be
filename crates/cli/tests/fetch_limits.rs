//! Fetch's byte limits, as Kafka applies them (KIP-74): each partition
//! gets at most its `partition_max_bytes`, the response at most
//! `max_bytes`, filled in request order with whole batches; only the first
//! batch of the first partition with data is returned even when it is
//! larger than the limits; a fetch from inside a batch returns that batch.
//! Cold reads (after a restart) follow the same rules and read ahead.

mod common;

use common::{record_batch, Broker, RawClient};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

const TOPIC: &str = "limits";
const PARTITIONS: i32 = 3;
const BATCHES: usize = 4;
const RECORDS_PER_BATCH: i64 = 10;

/// Fetches `(partition, offset, partition_max_bytes)` in that order with a
/// response limit of `max_bytes`; returns each partition's batch base
/// offsets, in request order.
fn fetch(c: &mut RawClient, max_bytes: i32, parts: &[(i32, i64, i32)]) -> Vec<Vec<i64>> {
    let req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(max_bytes)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partitions(
                parts
                    .iter()
                    .map(|&(p, offset, limit)| {
                        FetchPartition::default()
                            .with_partition(p)
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(limit)
                    })
                    .collect(),
            )]);
    let ResponseKind::Fetch(r) = c.request(ApiKey::Fetch, 11, RequestKind::Fetch(req)) else {
        panic!("wrong response kind")
    };
    let answered: Vec<i32> = r.responses[0]
        .partitions
        .iter()
        .map(|p| p.partition_index)
        .collect();
    let asked: Vec<i32> = parts.iter().map(|p| p.0).collect();
    assert_eq!(answered, asked, "partitions answered in request order");
    r.responses[0]
        .partitions
        .iter()
        .map(|p| {
            assert_eq!(p.error_code, 0);
            assert_eq!(p.high_watermark, BATCHES as i64 * RECORDS_PER_BATCH);
            let records = p.records.clone().unwrap_or_default();
            sluice_protocol::batch::batches(&records)
                .map(|(_, h)| h.base_offset)
                .collect()
        })
        .collect()
}

#[test]
fn fetch_fills_whole_batches_within_partition_and_response_limits() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), &[]);
    let mut c = RawClient::connect(&broker.bootstrap());
    c.create_topic(TOPIC, PARTITIONS, &[]);
    let batch = record_batch(RECORDS_PER_BATCH as usize, Compression::None);
    let size = batch.len() as i32;
    for p in 0..PARTITIONS {
        for i in 0..BATCHES {
            let (code, msg, base) = c.produce(TOPIC, p, batch.clone());
            assert_eq!((code, msg), (0, None));
            assert_eq!(base, i as i64 * RECORDS_PER_BATCH);
        }
    }
    // Each of those commits went through the catalog in one query: none
    // fell back to the statement-by-statement path.
    let metrics = broker.http_get("/metrics").unwrap_or_default();
    assert!(metrics.contains("sluice_commits_total 12"), "{metrics}");
    assert!(
        !metrics.contains("sluice_catalog_commit_rechecks_total"),
        "commits fell back to one statement at a time:\n{metrics}"
    );
    let all = |p: i32| (p, 0, 1 << 20);
    let every_batch: Vec<i64> = (0..BATCHES as i64).map(|i| i * RECORDS_PER_BATCH).collect();

    // No limit in the way: everything.
    assert_eq!(
        fetch(&mut c, 1 << 20, &[all(0), all(1), all(2)]),
        vec![
            every_batch.clone(),
            every_batch.clone(),
            every_batch.clone()
        ]
    );

    // Each partition stops at its own limit, on a batch boundary.
    let two = size * 2 + size / 2;
    assert_eq!(
        fetch(&mut c, 1 << 20, &[(0, 0, two), (1, 0, two), (2, 0, two)]),
        vec![vec![0, 10], vec![0, 10], vec![0, 10]]
    );

    // The response limit is shared in request order: partition 0 takes
    // its four batches, partition 1 the one that still fits, partition 2
    // nothing (its offsets are still reported).
    assert_eq!(
        fetch(&mut c, size * 5 + size / 2, &[all(0), all(1), all(2)]),
        vec![every_batch.clone(), vec![0], vec![]]
    );
    assert_eq!(
        fetch(&mut c, size * 3 + size / 2, &[all(0), all(1), all(2)]),
        vec![vec![0, 10, 20], vec![], vec![]]
    );

    // Request order, not partition order, decides who fills first.
    assert_eq!(
        fetch(&mut c, size * 5 + size / 2, &[all(2), all(0), all(1)]),
        vec![every_batch.clone(), vec![0], vec![]]
    );

    // Limits smaller than one batch: the first partition with data still
    // gets its first batch, so a consumer always makes progress; the
    // others get nothing.
    assert_eq!(
        fetch(&mut c, 1, &[(0, 0, 1), (1, 0, 1), (2, 0, 1)]),
        vec![vec![0], vec![], vec![]]
    );
    // A partition with nothing left does not count as the first.
    assert_eq!(
        fetch(&mut c, size, &[(0, 40, 1 << 20), (1, 0, 1), (2, 0, 1)]),
        vec![vec![], vec![0], vec![]]
    );

    // From inside a batch: that whole batch comes first.
    assert_eq!(
        fetch(&mut c, 1 << 20, &[(0, 15, 1 << 20), (1, 39, size)]),
        vec![vec![10, 20, 30], vec![30]]
    );

    // The same from cold storage (the catalog's index and the objects)
    // after a restart. A read that stops short of the partition's end
    // reads the next chunks ahead (up to what it asked for) for the
    // consumer's next fetch.
    broker.stop();
    broker.restart();
    let mut c = RawClient::connect(&broker.bootstrap());
    assert_eq!(fetch(&mut c, 1 << 20, &[(0, 0, two)]), vec![vec![0, 10]]);
    let read_ahead = || broker.counter("sluice_read_ahead_bytes_total");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    // (The read loaded chunks 0-2, 2 to find it did not fit; 3 is ahead.)
    while read_ahead() < size as u64 {
        assert!(
            std::time::Instant::now() < deadline,
            "partition 0's last chunk was not read ahead"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        fetch(&mut c, 1 << 20, &[(0, 20, 1 << 20)]),
        vec![vec![20, 30]]
    );
    assert_eq!(
        fetch(&mut c, size * 5 + size / 2, &[all(0), all(1), all(2)]),
        vec![every_batch, vec![0], vec![]]
    );
    assert_eq!(
        fetch(&mut c, 1 << 20, &[(0, 15, two), (1, 39, size), (2, 0, 1)]),
        vec![vec![10, 20], vec![30], vec![]]
    );
}
