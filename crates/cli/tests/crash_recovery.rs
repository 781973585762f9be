//! kill -9 under acks=all load, then restart, three times: every
//! acknowledged record is readable at the offset it was acknowledged with,
//! and every partition's offsets are dense from its log start.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::Broker;
use futures::stream::{FuturesUnordered, StreamExt};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientConfig;

const PARTITIONS: i32 = 4;

/// Produces until `stop`, returning every acknowledged (partition, offset) → value.
async fn load(bootstrap: String, cycle: usize, stop: Arc<AtomicBool>) -> Vec<((i32, i64), String)> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("acks", "all")
        .set("linger.ms", "1")
        .set("message.timeout.ms", "4000")
        .set("reconnect.backoff.max.ms", "200")
        .create()
        .unwrap();
    let mut in_flight = FuturesUnordered::new();
    let mut acked = Vec::new();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let value = format!("cycle{cycle}-record{n}");
        let partition = (n % PARTITIONS as u64) as i32;
        let record = FutureRecord::<(), _>::to("crash")
            .partition(partition)
            .payload(&value);
        match producer.send_result(record) {
            Ok(delivery) => in_flight.push(async move { (delivery.await, value) }),
            Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
        }
        n += 1;
        while in_flight.len() > 2_000 {
            if let Some((Ok(Ok(d)), v)) = in_flight.next().await {
                acked.push(((d.partition, d.offset), v));
            }
        }
        // About 20,000 records a second: enough to have commits in flight
        // at the kill, few enough to read back quickly.
        if n.is_multiple_of(100) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    while let Some((r, v)) = in_flight.next().await {
        if let Ok(Ok(d)) = r {
            acked.push(((d.partition, d.offset), v));
        }
    }
    let _ = producer.flush(Duration::from_secs(5));
    acked
}

fn read_all(bootstrap: &str, partition: i32) -> Vec<(i64, String)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "crash-check")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("crash", partition, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out reading partition {partition}"
        );
        match c.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return out,
            Some(Err(e)) => panic!("reading partition {partition}: {e}"),
            Some(Ok(m)) => out.push((
                m.offset(),
                String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            )),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(&dir.path().join("data"), &[]);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .unwrap();
    let r = admin
        .create_topics(
            [&NewTopic::new(
                "crash",
                PARTITIONS,
                TopicReplication::Fixed(1),
            )],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    assert!(r[0].is_ok());

    let mut acked: HashMap<(i32, i64), String> = HashMap::new();
    for cycle in 0..3 {
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(load(broker.bootstrap(), cycle, stop.clone()));
        // Let acks flow, then kill the broker mid-stream.
        let before = acked.len();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        broker.kill9();
        stop.store(true, Ordering::Relaxed);
        let got = task.await.unwrap();
        assert!(
            got.len() > 100,
            "cycle {cycle}: only {} records were acknowledged before the kill",
            got.len()
        );
        for (key, value) in got {
            let previous = acked.insert(key, value.clone());
            assert!(
                previous.is_none(),
                "offset {key:?} acknowledged twice ({previous:?} and {value})"
            );
        }
        eprintln!(
            "cycle {cycle}: {} records acknowledged",
            acked.len() - before
        );
        broker.restart();
    }

    let mut total = 0;
    for p in 0..PARTITIONS {
        let records = read_all(&broker.bootstrap(), p);
        let offsets: Vec<i64> = records.iter().map(|r| r.0).collect();
        assert_eq!(
            offsets.first().copied(),
            Some(0),
            "partition {p} starts at 0"
        );
        assert!(
            offsets.windows(2).all(|w| w[1] == w[0] + 1),
            "partition {p}: offsets are dense"
        );
        let by_offset: BTreeMap<i64, &String> = records.iter().map(|(o, v)| (*o, v)).collect();
        for ((part, offset), value) in acked.iter().filter(|((part, _), _)| *part == p) {
            assert_eq!(
                by_offset.get(offset).copied(),
                Some(value),
                "acknowledged record at {part}/{offset} is missing or different"
            );
            total += 1;
        }
    }
    assert_eq!(total, acked.len());
}
