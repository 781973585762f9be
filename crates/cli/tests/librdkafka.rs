//! End-to-end with librdkafka (the rdkafka crate): admin, produce with every
//! acks setting and codec, keys required on compacted topics, consume by
//! assign and seek, offsets by time, configs, partitions, deletion, and a
//! restart.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::Broker;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic,
    ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientConfig;

const TIMEOUT: Duration = Duration::from_secs(20);

fn admin(b: &Broker) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .create()
        .unwrap()
}

fn producer(b: &Broker, acks: &str, compression: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("acks", acks)
        .set("compression.type", compression)
        .set("linger.ms", "2")
        .set("message.timeout.ms", "20000")
        .create()
        .unwrap()
}

fn consumer(b: &Broker) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("group.id", "unused-assign-only")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap()
}

/// Reads partition `p` of `topic` from `from` until its end; returns (offset, key, value).
fn read_partition(b: &Broker, topic: &str, p: i32, from: Offset) -> Vec<(i64, String, String)> {
    let c = consumer(b);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, p, from).unwrap();
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out reading {topic}-{p}: got {} records",
            out.len()
        );
        match c.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return out,
            Some(Err(e)) => panic!("consume {topic}-{p}: {e}"),
            Some(Ok(m)) => out.push((
                m.offset(),
                String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            )),
        }
    }
}

async fn create(
    admin: &AdminClient<DefaultClientContext>,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) {
    let mut t = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        t = t.set(k, v);
    }
    let r = admin
        .create_topics([&t], &AdminOptions::new())
        .await
        .unwrap();
    assert!(r[0].is_ok(), "create {name}: {:?}", r[0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn produce_and_consume_with_every_acks_and_codec() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&dir.path().join("data"), &[]);
    let admin = admin(&broker);
    create(&admin, "codecs", 3, &[]).await;

    let mut expected: BTreeMap<i32, Vec<(String, String)>> = BTreeMap::new();
    for (i, acks) in ["0", "1", "all"].into_iter().enumerate() {
        for (j, codec) in ["none", "gzip", "snappy", "lz4", "zstd"]
            .into_iter()
            .enumerate()
        {
            let p = producer(&broker, acks, codec);
            let partition = ((i * 5 + j) % 3) as i32;
            let mut acked = Vec::new();
            for n in 0..40 {
                let key = format!("{acks}-{codec}-{n}");
                let value = format!(
                    "value {n} with {codec} compression and acks={acks} {}",
                    "x".repeat(n * 7)
                );
                let delivery = p
                    .send(
                        FutureRecord::to("codecs")
                            .partition(partition)
                            .key(&key)
                            .payload(&value),
                        TIMEOUT,
                    )
                    .await
                    .unwrap_or_else(|(e, _)| panic!("produce acks={acks} {codec}: {e}"));
                acked.push(delivery.offset);
                expected.entry(partition).or_default().push((key, value));
            }
            if acks != "0" {
                // Offsets are dense and increasing within one producer.
                assert!(
                    acked.windows(2).all(|w| w[1] == w[0] + 1),
                    "acks={acks} {codec}: {acked:?}"
                );
            }
        }
    }
    for (partition, want) in &expected {
        let got = read_partition(&broker, "codecs", *partition, Offset::Beginning);
        assert_eq!(got.len(), want.len(), "partition {partition}");
        for (i, ((off, k, v), (wk, wv))) in got.iter().zip(want).enumerate() {
            assert_eq!(
                (*off, k, v),
                (i as i64, wk, wv),
                "partition {partition} record {i}"
            );
        }
        // Seek into the middle of the partition.
        let mid = read_partition(&broker, "codecs", *partition, Offset::Offset(17));
        assert_eq!(mid.first().map(|r| r.0), Some(17));
        assert_eq!(mid.len(), want.len() - 17);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn compacted_topics_refuse_records_without_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&dir.path().join("data"), &[]);
    let admin = admin(&broker);
    create(&admin, "compacted", 1, &[("cleanup.policy", "compact")]).await;
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let p = producer(&broker, "all", codec);
        let value = format!("a value compressed with {codec} {}", "y".repeat(200));
        p.send(
            FutureRecord::to("compacted").key("k").payload(&value),
            TIMEOUT,
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("keyed record with {codec}: {e}"));
        let (e, _) = p
            .send(
                FutureRecord::<(), _>::to("compacted").payload(&value),
                TIMEOUT,
            )
            .await
            .expect_err("a record without a key on a compacted topic");
        assert_eq!(
            e.rdkafka_error_code(),
            Some(RDKafkaErrorCode::InvalidRecord),
            "{codec}: {e}"
        );
    }
    let got = read_partition(&broker, "compacted", 0, Offset::Beginning);
    assert_eq!(got.len(), 5, "only the keyed records: {got:?}");
    assert!(got.iter().all(|(_, k, _)| k == "k"));
}

/// Sends `records` (key, timestamp) to partition 0 of `topic` in one batch
/// and returns each record's delivery: its offset or its error code.
async fn send_one_batch(
    b: &Broker,
    topic: &str,
    records: &[(Option<&str>, i64)],
) -> Vec<Result<i64, RDKafkaErrorCode>> {
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("linger.ms", "500")
        .set("message.timeout.ms", "20000")
        .create()
        .unwrap();
    let mut pending = Vec::new();
    for (i, (key, ts)) in records.iter().enumerate() {
        let value = format!("r{i}");
        let mut r = FutureRecord::to(topic)
            .partition(0)
            .payload(&value)
            .timestamp(*ts);
        if let Some(k) = key {
            r = r.key(*k);
        }
        pending.push(p.send_result(r).map_err(|(e, _)| e).unwrap());
    }
    let mut out = Vec::new();
    for d in pending {
        out.push(match d.await.unwrap() {
            Ok(delivery) => Ok(delivery.offset),
            Err((e, _)) => Err(e.rdkafka_error_code().unwrap()),
        });
    }
    out
}

/// KIP-467: a batch refused for some of its records names them, and
/// librdkafka fails those records with the error and the others of the
/// batch as refused alongside them; nothing of the batch is stored.
#[tokio::test(flavor = "multi_thread")]
async fn refused_records_are_named_in_their_batch() {
    use RDKafkaErrorCode::{InvalidDifferentRecord, InvalidRecord, InvalidTimestamp};
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&dir.path().join("data"), &[]);
    let admin = admin(&broker);
    let now = common::now_ms();
    create(&admin, "keyed", 1, &[("cleanup.policy", "compact")]).await;
    let got = send_one_batch(
        &broker,
        "keyed",
        &[(Some("a"), now), (None, now), (Some("c"), now), (None, now)],
    )
    .await;
    assert_eq!(
        got,
        vec![
            Err(InvalidDifferentRecord),
            Err(InvalidRecord),
            Err(InvalidDifferentRecord),
            Err(InvalidRecord)
        ]
    );

    create(
        &admin,
        "recent",
        1,
        &[("message.timestamp.before.max.ms", "600000")],
    )
    .await;
    let hour = 3_600_000;
    let got = send_one_batch(
        &broker,
        "recent",
        &[
            (None, now),
            (None, now - hour),
            (None, now),
            (None, now + 2 * hour),
        ],
    )
    .await;
    assert_eq!(
        got,
        vec![
            Err(InvalidDifferentRecord),
            Err(InvalidRecord),
            Err(InvalidDifferentRecord),
            Err(InvalidRecord)
        ],
        "one record older than message.timestamp.before.max.ms, one later than \
         message.timestamp.after.max.ms (an hour by default, as in Kafka 4)"
    );
    // With one record named, librdkafka gives every record of the batch
    // the partition's error (only their error strings differ).
    let got = send_one_batch(&broker, "recent", &[(None, now + 2 * hour), (None, now)]).await;
    assert_eq!(got, vec![Err(InvalidTimestamp), Err(InvalidTimestamp)]);
    // Within the bounds, and the refused batches stored nothing.
    let got = send_one_batch(&broker, "recent", &[(None, now), (None, now - 1000)]).await;
    assert_eq!(got, vec![Ok(0), Ok(1)]);
    assert!(read_partition(&broker, "keyed", 0, Offset::Beginning).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn offsets_by_timestamp_and_watermarks() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&dir.path().join("data"), &[]);
    create(
        &admin(&broker),
        "times",
        1,
        &[("message.timestamp.after.max.ms", "9223372036854775807")],
    )
    .await;
    let p = producer(&broker, "all", "lz4");
    let base = common::now_ms() - 100_000;
    for (i, ts) in [base + 1000, base + 2000, base + 3000]
        .into_iter()
        .enumerate()
    {
        let d = p
            .send(
                FutureRecord::<(), _>::to("times")
                    .payload(&format!("r{i}"))
                    .timestamp(ts),
                TIMEOUT,
            )
            .await
            .unwrap();
        assert_eq!(d.offset, i as i64);
    }
    let c = consumer(&broker);
    assert_eq!(c.fetch_watermarks("times", 0, TIMEOUT).unwrap(), (0, 3));
    let lookup = |ts: i64| {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("times", 0, Offset::Offset(ts))
            .unwrap();
        let r = c.offsets_for_times(tpl, TIMEOUT).unwrap();
        r.find_partition("times", 0).unwrap().offset()
    };
    assert_eq!(lookup(base + 1500), Offset::Offset(1));
    assert_eq!(lookup(base + 1000), Offset::Offset(0));
    assert_eq!(lookup(base), Offset::Offset(0));
    assert_eq!(lookup(base + 3000), Offset::Offset(2));
    assert_eq!(lookup(base + 9999), Offset::End, "no record that late");
}

#[tokio::test(flavor = "multi_thread")]
async fn topic_admin_configs_partitions_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&dir.path().join("data"), &[]);
    let admin = admin(&broker);
    let opts = AdminOptions::new();

    // validate_only creates nothing.
    let t = NewTopic::new("checked", 2, TopicReplication::Fixed(1));
    let r = admin
        .create_topics([&t], &AdminOptions::new().validate_only(true))
        .await
        .unwrap();
    assert!(r[0].is_ok());
    let c = consumer(&broker);
    let md = c.fetch_metadata(None, TIMEOUT).unwrap();
    assert!(md.topics().iter().all(|t| t.name() != "checked"));

    create(&admin, "admin", 2, &[("retention.ms", "86400000")]).await;
    let dup = admin
        .create_topics(
            [&NewTopic::new("admin", 2, TopicReplication::Fixed(1))],
            &opts,
        )
        .await
        .unwrap();
    assert_eq!(
        dup[0].as_ref().unwrap_err().1,
        RDKafkaErrorCode::TopicAlreadyExists
    );
    let bad = admin
        .create_topics(
            [&NewTopic::new("bad name!", 1, TopicReplication::Fixed(1))],
            &opts,
        )
        .await
        .unwrap();
    assert_eq!(
        bad[0].as_ref().unwrap_err().1,
        RDKafkaErrorCode::InvalidTopic
    );
    let zero = admin
        .create_topics(
            [&NewTopic::new("zero", 0, TopicReplication::Fixed(1))],
            &opts,
        )
        .await
        .unwrap();
    assert_eq!(
        zero[0].as_ref().unwrap_err().1,
        RDKafkaErrorCode::InvalidPartitions
    );
    let badcfg = admin
        .create_topics(
            [&NewTopic::new("badcfg", 1, TopicReplication::Fixed(1)).set("retention.ms", "soon")],
            &opts,
        )
        .await
        .unwrap();
    assert_eq!(
        badcfg[0].as_ref().unwrap_err().1,
        RDKafkaErrorCode::InvalidConfig
    );

    // Describe: explicit and default values with their sources.
    let cfg = describe(&admin, "admin").await;
    assert_eq!(
        cfg["retention.ms"],
        (Some("86400000".into()), ConfigSource::DynamicTopic)
    );
    assert_eq!(
        cfg["max.message.bytes"],
        (Some("1048588".into()), ConfigSource::Default)
    );
    assert_eq!(cfg["cleanup.policy"].0.as_deref(), Some("delete"));

    // AlterConfigs (rdkafka uses the legacy replace-all API).
    let alter = AlterConfig::new(ResourceSpecifier::Topic("admin"))
        .set("retention.ms", "3600000")
        .set("cleanup.policy", "compact");
    let r = admin.alter_configs([&alter], &opts).await.unwrap();
    assert!(r[0].is_ok(), "{:?}", r[0]);
    let cfg = describe(&admin, "admin").await;
    assert_eq!(cfg["retention.ms"].0.as_deref(), Some("3600000"));
    assert_eq!(cfg["cleanup.policy"].0.as_deref(), Some("compact"));
    let bad = AlterConfig::new(ResourceSpecifier::Topic("admin")).set("no.such.config", "1");
    // The broker answers INVALID_CONFIG (the Python checks assert the code;
    // the rdkafka crate does not surface per-resource alter errors), and
    // nothing changes.
    let _ = admin.alter_configs([&bad], &opts).await.unwrap();
    let after = describe(&admin, "admin").await;
    assert!(!after.contains_key("no.such.config"));
    assert_eq!(after["retention.ms"].0.as_deref(), Some("3600000"));

    // Partitions grow; shrinking is refused.
    let r = admin
        .create_partitions([&NewPartitions::new("admin", 5)], &opts)
        .await
        .unwrap();
    assert!(r[0].is_ok(), "{:?}", r[0]);
    let md = c.fetch_metadata(Some("admin"), TIMEOUT).unwrap();
    assert_eq!(md.topics()[0].partitions().len(), 5);
    let r = admin
        .create_partitions([&NewPartitions::new("admin", 3)], &opts)
        .await
        .unwrap();
    assert_eq!(
        r[0].as_ref().unwrap_err().1,
        RDKafkaErrorCode::InvalidPartitions
    );
    // The new partition takes writes.
    let d = producer(&broker, "all", "none")
        .send(
            // A key: the topic is compacted by now.
            FutureRecord::to("admin")
                .partition(4)
                .key("k4")
                .payload("p4"),
            TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!((d.partition, d.offset), (4, 0));

    // Delete: gone from metadata; deleting again is UNKNOWN_TOPIC_OR_PARTITION.
    let r = admin.delete_topics(&["admin"], &opts).await.unwrap();
    assert!(r[0].is_ok());
    let md = c.fetch_metadata(None, TIMEOUT).unwrap();
    assert!(md.topics().iter().all(|t| t.name() != "admin"));
    let r = admin.delete_topics(&["admin"], &opts).await.unwrap();
    assert_eq!(
        r[0].as_ref().unwrap_err().1,
        RDKafkaErrorCode::UnknownTopicOrPartition
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_finds_every_topic_and_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(&dir.path().join("data"), &[]);
    create(&admin(&broker), "durable", 4, &[("retention.ms", "-1")]).await;
    let p = producer(&broker, "all", "zstd");
    for i in 0..200 {
        p.send(
            FutureRecord::to("durable")
                .partition(i % 4)
                .key(&format!("k{i}"))
                .payload(&format!("v{i}")),
            TIMEOUT,
        )
        .await
        .unwrap();
    }
    drop(p);
    broker.stop();
    broker.restart();
    let md = consumer(&broker)
        .fetch_metadata(Some("durable"), TIMEOUT)
        .unwrap();
    assert_eq!(md.topics()[0].partitions().len(), 4);
    for part in 0..4 {
        let got = read_partition(&broker, "durable", part, Offset::Beginning);
        assert_eq!(got.len(), 50);
        assert!(got.iter().enumerate().all(|(i, r)| r.0 == i as i64));
    }
    let cfg = admin(&broker)
        .describe_configs([&ResourceSpecifier::Topic("durable")], &AdminOptions::new())
        .await
        .unwrap();
    let entries = &cfg[0].as_ref().unwrap().entries;
    assert_eq!(
        entries
            .iter()
            .find(|e| e.name == "retention.ms")
            .unwrap()
            .value
            .as_deref(),
        Some("-1")
    );
    // Appends continue at the next offset.
    let d = producer(&broker, "all", "none")
        .send(
            FutureRecord::<(), _>::to("durable")
                .partition(0)
                .payload("after"),
            TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(d.offset, 50);
}

async fn describe(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
) -> BTreeMap<String, (Option<String>, ConfigSource)> {
    let r = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await
        .unwrap();
    let res = r.into_iter().next().unwrap().unwrap();
    res.entries
        .into_iter()
        .map(|e| (e.name, (e.value, e.source)))
        .collect()
}
