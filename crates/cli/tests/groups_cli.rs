//! `sluice groups list|describe` against a running broker: a librdkafka
//! group's members, assignment, committed offsets and lag as the CLI shows
//! them, before and after more records arrive.

mod common;

use std::time::{Duration, Instant};

use common::cli::{json, sluice};
use common::Broker;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;

fn produce(b: &Broker, topic: &str, n: usize) {
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("linger.ms", "5")
        .create()
        .unwrap();
    for i in 0..n {
        let key = format!("k{i}");
        p.send(
            BaseRecord::to(topic)
                .key(&key)
                .payload("v")
                .partition((i % 3) as i32),
        )
        .unwrap();
    }
    p.flush(Duration::from_secs(20)).unwrap();
}

#[test]
fn groups_list_and_describe_show_members_offsets_and_lag() {
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::start(
        &dir.path().join("data"),
        &[
            "--num-partitions",
            "3",
            "--group-initial-rebalance-delay-ms",
            "0",
        ],
    );
    produce(&b, "orders", 30);

    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("group.id", "billing")
        .set("client.id", "billing-1")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    c.subscribe(&["orders"]).unwrap();
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen < 30 {
        assert!(
            Instant::now() < deadline,
            "consumed only {seen} of 30 records"
        );
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            m.unwrap();
            seen += 1;
        }
    }
    c.commit_consumer_state(CommitMode::Sync).unwrap();

    let listed = json(&b, None, &["groups", "list"]);
    let group = listed["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group_id"] == "billing")
        .unwrap_or_else(|| panic!("billing not listed: {listed}"))
        .clone();
    assert_eq!(group["state"], "Stable");
    assert_eq!(group["members"], 1);
    assert_eq!(group["total_lag"], 0);

    let described = json(&b, None, &["groups", "describe", "billing"]);
    let members = described["members"].as_array().unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["client_id"], "billing-1");
    assert_eq!(
        members[0]["assignment"].as_array().unwrap().len(),
        3,
        "the only member owns all three partitions: {described}"
    );
    let partitions = described["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 3);
    for p in partitions {
        assert_eq!(p["committed_offset"], 10, "{p}");
        assert_eq!(p["log_end_offset"], 10, "{p}");
        assert_eq!(p["lag"], 0, "{p}");
    }

    // Nine more records, not consumed yet: the lag shows them.
    produce(&b, "orders", 9);
    let described = json(&b, None, &["groups", "describe", "billing"]);
    assert_eq!(described["total_lag"], 9, "{described}");

    // The table form names the group, the member and the partitions.
    let (code, table, _) = sluice(&b, None, &["groups", "describe", "billing"]);
    assert_eq!(code, 0);
    for needle in ["billing", "billing-1", "orders", "LAG"] {
        assert!(table.contains(needle), "`{needle}` missing from:\n{table}");
    }

    // An unknown group is an error that says so, with exit code 1.
    let (code, _, stderr) = sluice(&b, None, &["groups", "describe", "nope"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("`nope` does not exist"), "{stderr}");

    // After the member leaves, the group and its offsets remain.
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let described = json(&b, None, &["groups", "describe", "billing"]);
        if described["state"] == "Empty" {
            assert!(described["members"].as_array().unwrap().is_empty());
            assert_eq!(described["total_lag"], 9);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "group never became Empty: {described}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
