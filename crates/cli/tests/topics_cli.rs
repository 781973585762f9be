//! `sluice topics` against `sluice dev`: the CLI drives `/v1/topics`, a
//! tenant token is held to its own topics and its plan's guard rails, and
//! records written with the CLI and with librdkafka are read by the other.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::cli::{cli, json, ok, refused, sluice};
use common::rest::{http, http_with_body, operator_token};
use common::{sasl_client, Broker};
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::Value;

fn names(list: &Value) -> Vec<String> {
    list["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

/// A topic config as DescribeConfigs answers it.
fn described(config: ClientConfig, topic: &str, name: &str) -> Option<String> {
    let admin: AdminClient<DefaultClientContext> = config.create().unwrap();
    let r = futures::executor::block_on(admin.describe_configs(
        [&ResourceSpecifier::Topic(topic)],
        &AdminOptions::new().request_timeout(Some(Duration::from_secs(10))),
    ))
    .unwrap();
    let res = r.into_iter().next().unwrap().unwrap();
    res.entries
        .into_iter()
        .find(|e| e.name == name)
        .and_then(|e| e.value)
}

/// Reads partition `partition` of `topic` from the beginning until
/// `n` records arrived.
fn consume(
    config: ClientConfig,
    group: &str,
    topic: &str,
    partition: i32,
    n: usize,
) -> Vec<(String, String)> {
    let mut config = config;
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false");
    let c: BaseConsumer = config.create().unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while out.len() < n && std::time::Instant::now() < deadline {
        if let Some(m) = c.poll(Duration::from_millis(500)) {
            let m = m.expect("consume");
            let text =
                |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
            out.push((text(m.key()), text(m.payload())));
        }
    }
    out
}

fn produce(config: ClientConfig, topic: &str, partition: i32, key: &str, value: &str) {
    let p: ThreadedProducer<DefaultProducerContext> = config.create().unwrap();
    p.send(
        BaseRecord::to(topic)
            .key(key)
            .payload(value)
            .partition(partition),
    )
    .map_err(|(e, _)| e)
    .unwrap();
    p.flush(Duration::from_secs(20)).unwrap();
}

/// `topic partition offset length value` lines.
fn lines(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .map(|l| l.splitn(5, ' ').map(str::to_string).collect())
        .collect()
}

#[test]
fn topics_through_the_cli_with_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let b = Broker::start(&data, &["--multi-tenant"]);
    let operator = operator_token(&data);
    let op = Some(operator.as_str());

    let acme = json(&b, op, &["tenants", "create", "acme", "--plan", "basic-0"]);
    let acme_password = acme["credential"]["password"].as_str().unwrap().to_string();
    json(&b, op, &["tenants", "create", "other"]);
    let token = |tenant: &str| {
        json(&b, op, &["tokens", "create", "--tenant", tenant])["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let acme_token = token("acme");
    let other_token = token("other");
    let me = Some(acme_token.as_str());
    let them = Some(other_token.as_str());
    let kafka = || sasl_client(&b.bootstrap(), "acme", &acme_password);

    // Created by bare name; shown by full name; the plan's default
    // retention applies.
    let created = json(&b, me, &["topics", "create", "orders", "--partitions", "2"]);
    assert_eq!(created["name"], "acme.orders");
    assert_eq!(created["partitions"], 2);
    assert_eq!(created["retention_ms"], 86_400_000);
    assert_eq!(created["compaction"], false);
    let out = ok(
        &b,
        me,
        &[
            "topics",
            "create",
            "events",
            "--retention",
            "36h",
            "--compaction",
        ],
    );
    assert!(
        out.contains(
            "Created topic acme.events with 8 partitions, retention 36 hours, compaction on"
        ),
        "{out}"
    );
    // The operator acts for a tenant with --tenant.
    let out = ok(
        &b,
        op,
        &[
            "topics",
            "create",
            "audit",
            "--tenant",
            "acme",
            "--partitions",
            "1",
        ],
    );
    assert!(out.contains("acme.audit"), "{out}");
    let e = refused(&b, me, &["topics", "create", "orders"]);
    assert!(e.contains("already exists"), "{e}");

    // Guard rails, with their messages; 422 on the API.
    let e = refused(&b, me, &["topics", "create", "big", "--partitions", "65"]);
    assert!(e.contains("range of 1 to 64 per topic"), "{e}");
    let e = refused(&b, me, &["topics", "retention", "orders", "1h"]);
    assert!(e.contains("outside plan `basic-0`'s range"), "{e}");
    let (status, body) = http_with_body(
        &b,
        "PATCH",
        "/v1/topics/orders",
        me,
        r#"{"retention_ms": 1000}"#,
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"], "invalid_config");
    // Malformed input is a 400 with a JSON body, never a 5xx.
    for bad in [
        r#"{"name": 5}"#,
        r#"{"name": "x", "bogus": 1}"#,
        "{",
        r#"{"name": "a/b"}"#,
    ] {
        let (status, body) = http_with_body(&b, "POST", "/v1/topics", me, bad);
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["message"].is_string(), "{body}");
    }
    let (status, _) = http_with_body(&b, "PATCH", "/v1/topics/orders", me, "{}");
    assert_eq!(status, 400);
    let (status, body) = http(&b, "GET", "/v1/topics/orders/records?partition=x", me);
    assert_eq!(status, 400, "{body}");
    let (status, _) = http(&b, "GET", "/v1/topics/orders/records?partition=9", me);
    assert_eq!(status, 404);
    let (status, body) = http(
        &b,
        "GET",
        "/v1/topics/orders/records?partition=0&offset=99",
        me,
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("offset_out_of_range"))
    );

    // Retention: every form, checked through info and DescribeConfigs.
    for (given, ms) in [
        ("36h", 129_600_000_i64),
        ("7d", 604_800_000),
        ("1 day", 86_400_000),
        ("172800000", 172_800_000),
    ] {
        let body = json(&b, me, &["topics", "retention", "orders", given]);
        assert_eq!(body["retention_ms"], ms, "{given}: {body}");
    }
    let out = ok(&b, me, &["topics", "retention", "orders", "2d"]);
    assert!(
        out.contains("acme.orders keeps records for 2 days (172800000 ms)"),
        "{out}"
    );
    assert_eq!(
        described(kafka(), "acme.orders", "retention.ms").as_deref(),
        Some("172800000")
    );
    // A usage error exits 2.
    let (code, _, err) = sluice(&b, me, &["topics", "retention", "orders", "soon"]);
    assert_eq!(code, 2, "{err}");

    // Compaction on and off.
    let body = json(&b, me, &["topics", "compaction", "orders", "on"]);
    assert_eq!(
        (
            body["compaction"].as_bool(),
            body["cleanup_policy"].as_str()
        ),
        (Some(true), Some("compact"))
    );
    assert_eq!(
        described(kafka(), "acme.orders", "cleanup.policy").as_deref(),
        Some("compact")
    );
    let out = ok(&b, me, &["topics", "compaction", "orders", "off"]);
    assert!(
        out.contains("Compaction is off for topic acme.orders"),
        "{out}"
    );
    // Changing one config keeps the others.
    let info = json(&b, me, &["topics", "info", "orders"]);
    assert_eq!(info["retention_ms"], 172_800_000);

    // Partitions: added, within the plan.
    let body = json(&b, me, &["topics", "partitions", "orders", "4"]);
    assert_eq!(body["partitions"], 4);
    let e = refused(&b, me, &["topics", "partitions", "orders", "65"]);
    assert!(
        e.contains("above plan `basic-0`'s limit of 64 per topic"),
        "{e}"
    );
    let e = refused(&b, me, &["topics", "partitions", "orders", "3"]);
    assert!(e.contains("must be larger"), "{e}");

    // Write, then tail from the beginning.
    let w = json(
        &b,
        me,
        &[
            "topics",
            "write",
            "orders",
            "hello world",
            "--partition",
            "3",
        ],
    );
    assert_eq!(
        (
            w["topic"].as_str(),
            w["partition"].as_i64(),
            w["offset"].as_i64()
        ),
        (Some("acme.orders"), Some(3), Some(0))
    );
    let out = ok(
        &b,
        me,
        &[
            "topics",
            "write",
            "orders",
            "second one",
            "--key",
            "k",
            "--partition",
            "3",
        ],
    );
    assert!(
        out.contains("Wrote to acme.orders partition 3 at offset 1"),
        "{out}"
    );
    let out = ok(
        &b,
        me,
        &[
            "topics",
            "tail",
            "orders",
            "--from-beginning",
            "--partition",
            "3",
            "--count",
            "2",
            "--timeout",
            "20s",
        ],
    );
    assert_eq!(
        lines(&out),
        vec![
            vec!["acme.orders", "3", "0", "11", "hello world"],
            vec!["acme.orders", "3", "1", "10", "second one"]
        ],
        "{out}"
    );
    let out = ok(
        &b,
        me,
        &[
            "topics",
            "tail",
            "orders",
            "--from-beginning",
            "--count",
            "2",
            "--timeout",
            "20s",
            "--max-length",
            "5",
        ],
    );
    assert_eq!(
        lines(&out).iter().map(|l| l[4].clone()).collect::<Vec<_>>(),
        vec!["hello", "secon"],
        "{out}"
    );
    let tailed = json(
        &b,
        me,
        &[
            "topics",
            "tail",
            "orders",
            "--from-beginning",
            "--count",
            "1",
            "--timeout",
            "20s",
        ],
    );
    assert_eq!(tailed["records"][0]["value"], "hello world");
    // Too few records by the timeout: exit 1.
    let e = refused(
        &b,
        me,
        &[
            "topics",
            "tail",
            "orders",
            "--count",
            "1",
            "--timeout",
            "1s",
        ],
    );
    assert!(e.contains("only 0 of 1 records"), "{e}");

    // librdkafka reads what the CLI wrote, and the CLI what it wrote.
    ok(&b, op, &["groups", "create", "reader", "--tenant", "acme"]);
    assert_eq!(
        consume(kafka(), "acme.reader", "acme.orders", 3, 2),
        vec![
            (String::new(), "hello world".to_string()),
            ("k".to_string(), "second one".to_string())
        ]
    );
    produce(kafka(), "acme.orders", 0, "kk", "from kafka");
    let out = ok(
        &b,
        me,
        &[
            "topics",
            "tail",
            "orders",
            "--from-beginning",
            "--partition",
            "0",
            "--count",
            "1",
            "--timeout",
            "20s",
        ],
    );
    assert_eq!(
        lines(&out),
        vec![vec!["acme.orders", "0", "0", "10", "from kafka"]]
    );

    // Tail starts at the end by default: only a record written after it.
    let child = cli(
        &b,
        me,
        &[
            "topics",
            "tail",
            "orders",
            "--count",
            "1",
            "--timeout",
            "30s",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(3000));
    ok(
        &b,
        me,
        &["topics", "write", "orders", "late", "--partition", "1"],
    );
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        lines(&stdout),
        vec![vec!["acme.orders", "1", "0", "4", "late"]]
    );

    // The list shows size and rates (rates count whole seconds).
    std::thread::sleep(Duration::from_millis(1100));
    let list = json(&b, me, &["topics", "list"]);
    assert_eq!(names(&list), ["acme.audit", "acme.events", "acme.orders"]);
    let orders = &list["topics"][2];
    assert!(
        orders["bytes_in_per_sec"].as_f64().unwrap() > 0.0,
        "{orders}"
    );
    assert!(
        orders["messages_in_per_sec"].as_f64().unwrap() > 0.0,
        "{orders}"
    );
    assert!(
        orders["bytes_out_per_sec"].as_f64().unwrap() > 0.0,
        "{orders}"
    );
    assert!(orders["data_size_bytes"].as_i64().unwrap() > 0, "{orders}");
    let out = ok(&b, me, &["topics", "list"]);
    assert!(
        out.contains("acme.orders") && out.contains("DATA SIZE"),
        "{out}"
    );
    let info = json(&b, me, &["topics", "info", "acme.orders"]);
    assert_eq!(info["messages"], 4);
    let out = ok(&b, me, &["topics", "info", "orders"]);
    assert!(
        out.contains("HIGH WATERMARK") && out.contains("2 days"),
        "{out}"
    );

    // Another tenant sees nothing of acme's and cannot touch it; naming
    // a tenant other than its own does not help.
    assert!(names(&json(&b, them, &["topics", "list"])).is_empty());
    let e = refused(&b, them, &["topics", "info", "acme.orders"]);
    assert!(e.contains("does not exist"), "{e}");
    refused(&b, them, &["topics", "write", "acme.orders", "x"]);
    refused(
        &b,
        them,
        &[
            "topics",
            "destroy",
            "acme.orders",
            "--confirm",
            "acme.orders",
        ],
    );
    refused(&b, them, &["topics", "list", "--tenant", "acme"]);
    for (method, path, body) in [
        ("GET", "/v1/topics/acme.orders", ""),
        ("PATCH", "/v1/topics/acme.orders", r#"{"partitions": 5}"#),
        ("DELETE", "/v1/topics/acme.orders", ""),
        (
            "POST",
            "/v1/topics/acme.orders/records",
            r#"{"value": "x"}"#,
        ),
        ("GET", "/v1/topics/acme.orders/records?partition=0", ""),
    ] {
        let (status, b) = http_with_body(&b, method, path, them, body);
        assert_eq!(
            (status, b["error"].as_str()),
            (404, Some("topic_not_found")),
            "{method} {path}"
        );
    }
    // The operator sees every tenant's topics, or one tenant's.
    let all = names(&json(&b, op, &["topics", "list"]));
    assert!(all.contains(&"acme.orders".to_string()), "{all:?}");
    assert_eq!(
        names(&json(&b, op, &["topics", "list", "--tenant", "other"])).len(),
        0
    );
    assert_eq!(
        names(&json(&b, op, &["topics", "list", "--tenant", "acme"])).len(),
        3
    );
    let (status, _) = http(&b, "GET", "/v1/topics", None);
    assert_eq!(status, 401);

    // Destroy needs --confirm with the name.
    let e = refused(&b, me, &["topics", "destroy", "orders"]);
    assert!(e.contains("--confirm acme.orders"), "{e}");
    let e = refused(
        &b,
        me,
        &["topics", "destroy", "orders", "--confirm", "events"],
    );
    assert!(e.contains("does not match"), "{e}");
    assert!(names(&json(&b, me, &["topics", "list"])).contains(&"acme.orders".to_string()));
    let body = json(
        &b,
        me,
        &["topics", "destroy", "orders", "--confirm", "orders"],
    );
    assert_eq!(body["destroyed"], "acme.orders");
    let out = ok(
        &b,
        me,
        &[
            "topics",
            "destroy",
            "acme.events",
            "--confirm",
            "acme.events",
        ],
    );
    assert!(out.contains("Destroyed topic acme.events"), "{out}");
    assert_eq!(names(&json(&b, me, &["topics", "list"])), ["acme.audit"]);
    let e = refused(&b, me, &["topics", "info", "orders"]);
    assert!(e.contains("topic `acme.orders` does not exist"), "{e}");
}

#[test]
fn topics_on_an_open_broker() {
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::start(&dir.path().join("data"), &["--num-partitions", "3"]);
    let created = json(&b, None, &["topics", "create", "plain"]);
    assert_eq!(created["name"], "plain");
    assert_eq!(created["partitions"], 3);
    // No plan: any retention the topic config allows.
    let body = json(&b, None, &["topics", "retention", "plain", "1h"]);
    assert_eq!(body["retention_ms"], 3_600_000);
    ok(&b, None, &["topics", "write", "plain", "v1", "--key", "a"]);
    let out = ok(
        &b,
        None,
        &[
            "topics",
            "tail",
            "plain",
            "--from-beginning",
            "--count",
            "1",
            "--timeout",
            "20s",
        ],
    );
    let l = lines(&out);
    assert_eq!((l[0][0].as_str(), l[0][4].as_str()), ("plain", "v1"));
    // A Kafka client reads it from the key's partition (murmur2, as Java
    // clients pick it).
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", b.bootstrap());
    let partition: i32 = l[0][1].parse().unwrap();
    assert_eq!(
        consume(c, "reader", "plain", partition, 1),
        vec![("a".to_string(), "v1".to_string())]
    );
    // A tenant cannot be named without multi-tenancy.
    let (status, body) = http(&b, "GET", "/v1/topics?tenant=acme", None);
    assert_eq!(status, 404, "{body}");
    let e = refused(&b, None, &["topics", "destroy", "plain"]);
    assert!(e.contains("--confirm plain"), "{e}");
    ok(
        &b,
        None,
        &["topics", "destroy", "plain", "--confirm", "plain"],
    );
    assert!(names(&json(&b, None, &["topics", "list"])).is_empty());
}

#[test]
fn rest_writes_count_against_the_tenants_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let plans = dir.path().join("plans.toml");
    std::fs::write(
        &plans,
        "[tiny]
produce_bytes_per_sec = 67108864
consume_bytes_per_sec = 67108864
capacity_bytes = 400
max_partitions = 10
max_partitions_per_topic = 4
default_partitions = 1
max_topics = 2
max_groups = 10
retention_ms_min = 3600000
retention_ms_max = 604800000
retention_ms_default = 86400000
max_message_bytes = 1048576
explicit_groups = true
admin_topics = true
max_connections = 10
max_requests_per_sec = 100000
",
    )
    .unwrap();
    let data = dir.path().join("data");
    let b = Broker::start(
        &data,
        &["--multi-tenant", "--plans", plans.to_str().unwrap()],
    );
    let operator = operator_token(&data);
    let op = Some(operator.as_str());
    json(&b, op, &["tenants", "create", "tiny", "--plan", "tiny"]);
    ok(&b, op, &["topics", "create", "t", "--tenant", "tiny"]);
    ok(&b, op, &["topics", "create", "u", "--tenant", "tiny"]);
    // The plan's topic count holds on the REST API too.
    let e = refused(&b, op, &["topics", "create", "v", "--tenant", "tiny"]);
    assert!(e.contains("allows 2 topics"), "{e}");
    // Each write is a batch of about 100 bytes: the fifth finds the
    // tenant at its 400 bytes.
    let value = "x".repeat(40);
    let mut refusal = None;
    for _ in 0..10 {
        let (code, _, err) = sluice(
            &b,
            op,
            &["topics", "write", "t", &value, "--tenant", "tiny"],
        );
        if code != 0 {
            refusal = Some((code, err));
            break;
        }
    }
    let (code, err) = refusal.expect("writes past capacity are refused");
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("tenant `tiny` stores") && err.contains("capacity (plan tiny)"),
        "{err}"
    );
    let (status, body) = http_with_body(
        &b,
        "POST",
        "/v1/topics/t/records?tenant=tiny",
        op,
        r#"{"value": "x"}"#,
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("policy_violation"))
    );
}
