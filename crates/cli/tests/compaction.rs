//! Log compaction end to end with librdkafka: keyed records produced by an
//! idempotent producer in every codec, compacted by the broker's background
//! pass, read back by a consumer from the start: the latest value of each
//! key at the offset its producer was told, tombstones kept until
//! `delete.retention.ms` allows their removal, and the same log after a
//! restart.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::Broker;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientConfig;

const TIMEOUT: Duration = Duration::from_secs(20);
const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];
const KEYS: usize = 30;

/// (offset, key, value; `None` for a tombstone)
type Entry = (i64, String, Option<String>);

fn admin(b: &Broker) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .create()
        .unwrap()
}

fn producer(b: &Broker, codec: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("enable.idempotence", "true")
        .set("compression.type", codec)
        .set("linger.ms", "20")
        .set("message.timeout.ms", "20000")
        .create()
        .unwrap()
}

/// Partition 0 of `topic` from the start to its end.
fn read_all(b: &Broker, topic: &str) -> Vec<Entry> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("group.id", "unused-assign-only")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut out = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        match c.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return out,
            Some(Err(e)) => panic!("consume {topic}: {e}"),
            Some(Ok(m)) => {
                // Every record was produced in the last minutes: a batch
                // given a delete horizon must still read its own times.
                let at = m.timestamp().to_millis().unwrap_or(-1);
                let now = common::now_ms();
                assert!(
                    (now - 600_000..=now).contains(&at),
                    "{topic}@{}: timestamp {at}, now {now}",
                    m.offset()
                );
                out.push((
                    m.offset(),
                    m.key().map(text).unwrap_or_default(),
                    m.payload().map(text),
                ))
            }
        }
    }
    panic!("timed out reading {topic}: got {} records", out.len());
}

/// Reads `topic` until it holds exactly `expected`, for up to 30 s of
/// background passes; tombstones aside if `ignore_tombstones`.
fn wait_for(b: &Broker, topic: &str, expected: &[Entry], ignore_tombstones: bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let values = |entries: &[Entry]| -> Vec<Entry> {
        entries
            .iter()
            .filter(|(_, _, v)| !ignore_tombstones || v.is_some())
            .cloned()
            .collect()
    };
    let expected = values(expected);
    loop {
        let got = values(&read_all(b, topic));
        if got == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{topic} was not compacted within 30 s: got {} records, expected {}\n\
             got: {got:?}\nexpected: {expected:?}\n{}",
            got.len(),
            expected.len(),
            b.log_tail()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Sends `records` (key, value) to partition 0 and waits for each; returns
/// the acknowledged offsets.
async fn send(p: &FutureProducer, topic: &str, records: &[(String, Option<String>)]) -> Vec<i64> {
    let sends = records.iter().map(|(k, v)| {
        let mut r = FutureRecord::<String, String>::to(topic)
            .partition(0)
            .key(k);
        if let Some(v) = v {
            r = r.payload(v);
        }
        p.send(r, TIMEOUT)
    });
    futures::future::join_all(sends)
        .await
        .into_iter()
        .map(|d| {
            d.unwrap_or_else(|(e, _)| panic!("produce to {topic}: {e}"))
                .offset
        })
        .collect()
}

/// The key of the records written last, so that what precedes them can
/// be cleaned.
const SENTINEL: &str = "sentinel";

/// `entries` without the sentinel's records, whose older ones a pass may
/// or may not have removed yet.
fn without_sentinel(entries: &[Entry]) -> Vec<Entry> {
    entries
        .iter()
        .filter(|(_, k, _)| k != SENTINEL)
        .cloned()
        .collect()
}

/// The latest record of each key, in offset order.
fn latest(acked: &BTreeMap<String, (i64, Option<String>)>) -> Vec<Entry> {
    let mut out: Vec<Entry> = acked
        .iter()
        .map(|(k, (o, v))| (*o, k.clone(), v.clone()))
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_compacted_topic_keeps_the_latest_value_of_each_key_in_every_codec() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(
        &dir.path().join("data"),
        &["--maintenance-interval-ms", "300"],
    );
    let admin = admin(&broker);
    let compacted = [
        ("cleanup.policy", "compact"),
        ("min.cleanable.dirty.ratio", "0.01"),
    ];
    let mut logs = BTreeMap::new();
    for codec in CODECS {
        let topic = format!("compacted-{codec}");
        let mut t = NewTopic::new(&topic, 1, TopicReplication::Fixed(1));
        for (k, v) in compacted {
            t = t.set(k, v);
        }
        if codec == "lz4" {
            t = t.set("delete.retention.ms", "0");
        }
        let r = admin
            .create_topics([&t], &AdminOptions::new())
            .await
            .unwrap();
        assert!(r[0].is_ok(), "create {topic}: {:?}", r[0]);

        // Four rounds over every key, then tombstones for the first five.
        let p = producer(&broker, codec);
        let mut acked = BTreeMap::new();
        for round in 0..5 {
            let records: Vec<(String, Option<String>)> = (0..KEYS)
                .filter(|k| round < 4 || *k < 5)
                .map(|k| {
                    let value = (round < 4)
                        .then(|| format!("{codec} round {round} key {k} {}", "x".repeat(k * 13)));
                    (format!("key-{k}"), value)
                })
                .collect();
            let offsets = send(&p, &topic, &records).await;
            for ((k, v), o) in records.into_iter().zip(offsets) {
                acked.insert(k, (o, v));
            }
        }
        p.flush(TIMEOUT).unwrap();
        // The log's last chunk is never cleaned (Kafka's active segment):
        // one more record, so that all of the above can be.
        let sentinel = [(SENTINEL.to_string(), Some("end".to_string()))];
        let o = send(&p, &topic, &sentinel).await[0];
        acked.insert(SENTINEL.into(), (o, Some("end".into())));
        logs.insert(topic, acked);
    }
    for (topic, acked) in &logs {
        // A pass may drop the lz4 topic's tombstones already.
        wait_for(&broker, topic, &latest(acked), topic == "compacted-lz4");
    }
    assert!(broker.counter("sluice_compaction_records_removed_total") >= 5 * 3 * KEYS as u64);

    // The lz4 topic's tombstones got a delete horizon of now (its
    // delete.retention.ms is 0) when they were first cleaned; they go with
    // a later pass, which new records bring about.
    let topic = "compacted-lz4";
    let p = producer(&broker, "lz4");
    let acked = logs.get_mut(topic).unwrap();
    acked.retain(|_, (_, v)| v.is_some());
    let expected = without_sentinel(&latest(acked));
    assert_eq!(expected.len(), KEYS - 5);
    let mut offset = 0;
    for word in 0.. {
        assert!(
            word < 30,
            "tombstones still there: {:?}",
            read_all(&broker, topic)
        );
        offset = send(
            &p,
            topic,
            &[(SENTINEL.into(), Some(format!("word {word}")))],
        )
        .await[0];
        std::thread::sleep(Duration::from_millis(500));
        if without_sentinel(&read_all(&broker, topic)) == expected {
            break;
        }
    }

    // The same logs after a restart, and the next offset where it was.
    let before: Vec<Vec<Entry>> = logs
        .keys()
        .map(|t| without_sentinel(&read_all(&broker, t)))
        .collect();
    broker.stop();
    broker.restart();
    for (topic, before) in logs.keys().zip(before) {
        assert_eq!(
            without_sentinel(&read_all(&broker, topic)),
            before,
            "{topic}"
        );
    }
    let p = producer(&broker, "zstd");
    let next = send(&p, topic, &[("key-0".into(), Some("back".into()))]).await[0];
    assert_eq!(next, offset + 1);
}
