//! `sluice info|groups|wait|tenants plan|config|credentials` against `sluice
//! dev --multi-tenant` (and an open broker): a tenant token sees and changes
//! only its own tenant; a plan change applies its limits at once and keeps
//! topics and offsets; info shows traffic and stored bytes after real
//! produces with librdkafka; the group list shows lag falling to 0 as a
//! consumer commits; `sluice wait` waits for a broker and gives up on time.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::cli::{fails, json, ok, refused};
use common::rest::{http, operator_token};
use common::{closed_port, sasl_client, Broker};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;

/// Asserts `method path` answers `status` with a JSON refusal.
fn answers(b: &Broker, method: &str, path: &str, bearer: Option<&str>, status: u16) {
    let (got, body) = http(b, method, path, bearer);
    assert_eq!(got, status, "{method} {path}: {body}");
    assert!(
        body["error"].is_string() && body["message"].is_string(),
        "{method} {path}: refusals are {{error, message}}: {body}"
    );
}

/// Whether any file under `dir` contains `needle`.
fn any_file_contains(dir: &Path, needle: &[u8]) -> Option<String> {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(p) = any_file_contains(&path, needle) {
                return Some(p);
            }
        } else if let Ok(bytes) = std::fs::read(&path) {
            if bytes.windows(needle.len()).any(|w| w == needle) {
                return Some(path.display().to_string());
            }
        }
    }
    None
}

fn group_ids(list: &Value) -> Vec<String> {
    list["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["group_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_tenant_token_sees_and_changes_only_its_own_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let b = Broker::start(&data, &["--multi-tenant"]);
    let op = operator_token(&data);
    let op = Some(op.as_str());

    json(&b, op, &["tenants", "create", "acme"]);
    json(&b, op, &["tenants", "create", "zed"]);
    json(&b, op, &["groups", "create", "audit", "--tenant", "zed"]);
    let issued = json(&b, op, &["tokens", "create", "--tenant", "acme"]);
    let acme_token = issued["token"].as_str().unwrap().to_string();
    let token_id = issued["id"].as_str().unwrap().to_string();
    let a = Some(acme_token.as_str());

    // Who am I.
    let me = http(&b, "GET", "/v1/whoami", a).1;
    assert_eq!(me["role"], "tenant", "{me}");
    assert_eq!(me["tenant"], "acme", "{me}");
    assert_eq!(http(&b, "GET", "/v1/whoami", op).1["role"], "operator");
    answers(&b, "GET", "/v1/whoami", None, 401);

    // info: without a name, the token's tenant.
    let info = json(&b, a, &["info"]);
    assert_eq!(info["name"], "acme", "{info}");
    assert_eq!(json(&b, a, &["info", "acme"])["name"], "acme");
    let e = refused(&b, a, &["info", "zed"]);
    assert!(e.contains("does not exist"), "{e}");

    // groups: create, list, describe, destroy without --tenant.
    let created = json(&b, a, &["groups", "create", "billing"]);
    assert_eq!(created["group"], "acme.billing");
    assert_eq!(
        group_ids(&json(&b, a, &["groups", "list"])),
        ["acme.billing"],
        "a tenant lists only its groups"
    );
    let all = group_ids(&json(&b, op, &["groups", "list"]));
    assert!(
        all.contains(&"acme.billing".to_string()) && all.contains(&"zed.audit".to_string()),
        "{all:?}"
    );
    assert_eq!(
        group_ids(&json(&b, op, &["groups", "list", "--tenant", "zed"])),
        ["zed.audit"]
    );
    let table = ok(&b, a, &["groups", "list"]);
    assert!(
        table.contains("acme.billing") && table.contains("Empty") && table.contains("LAG"),
        "{table}"
    );
    let described = json(&b, a, &["groups", "describe", "billing"]);
    assert_eq!(described["group_id"], "acme.billing");
    assert_eq!(
        json(
            &b,
            op,
            &["groups", "describe", "billing", "--tenant", "acme"]
        )["group_id"],
        "acme.billing"
    );
    refused(&b, a, &["groups", "describe", "zed.audit"]);
    refused(&b, a, &["groups", "list", "--tenant", "zed"]);
    refused(&b, a, &["groups", "create", "x", "--tenant", "zed"]);
    let e = refused(&b, a, &["groups", "destroy", "billing"]);
    assert!(e.contains("--confirm billing"), "{e}");
    refused(
        &b,
        a,
        &["groups", "destroy", "billing", "--confirm", "other"],
    );
    assert_eq!(group_ids(&json(&b, a, &["groups", "list"])).len(), 1);
    let gone = json(
        &b,
        a,
        &["groups", "destroy", "billing", "--confirm", "acme.billing"],
    );
    assert_eq!(gone["deleted"], "acme.billing");
    // The operator must name the tenant of a create: a usage mistake.
    let e = fails(&b, op, &["groups", "create", "x"], 2);
    assert!(e.contains("--tenant"), "{e}");

    // Credentials and config: its own, without naming it.
    let creds = json(&b, a, &["credentials", "list"]);
    assert_eq!(creds["credentials"][0]["username"], "acme", "{creds}");
    let worker = json(&b, a, &["credentials", "create", "--name", "worker"]);
    assert_eq!(worker["username"], "acme-worker");
    refused(&b, a, &["credentials", "list", "--tenant", "zed"]);
    assert_eq!(json(&b, a, &["config"])["KAFKA_USERNAME"], "acme");
    let env = ok(&b, a, &["config", "acme"]);
    assert!(env.contains("KAFKA_PREFIX=acme."), "{env}");
    refused(&b, a, &["config", "zed"]);

    // Another tenant's resources are answered like missing ones: 404.
    for (method, path) in [
        ("GET", "/v1/tenants/zed"),
        ("GET", "/v1/tenants/zed/config"),
        ("GET", "/v1/tenants/zed/credentials"),
        ("POST", "/v1/tenants/zed/credentials"),
        ("POST", "/v1/tenants/zed/groups"),
        ("DELETE", "/v1/tenants/zed/groups/audit"),
        ("GET", "/v1/groups/zed.audit"),
        ("GET", "/v1/groups?tenant=zed"),
        ("GET", "/v1/groups/audit?tenant=zed"),
    ] {
        answers(&b, method, path, a, 404);
    }
    // The same names the operator sees.
    assert_eq!(http(&b, "GET", "/v1/groups/zed.audit", op).0, 200);
    assert_eq!(http(&b, "GET", "/v1/tenants/zed", op).0, 200);
    // A tenant's own group that does not exist: also 404.
    answers(&b, "GET", "/v1/groups/nothing", a, 404);
    // A bad query string or path is a JSON 400, not a 500; a method an
    // endpoint does not take, a JSON 405.
    answers(&b, "GET", "/v1/groups?tenant=a&tenant=b", op, 400);
    answers(&b, "GET", "/v1/groups/%FF", op, 400);
    answers(&b, "PUT", "/v1/whoami", op, 405);

    // Operator-only endpoints: 403 with a tenant token.
    for (method, path) in [
        ("GET", "/v1/tenants"),
        ("POST", "/v1/tenants"),
        ("PATCH", "/v1/tenants/acme"),
        ("DELETE", "/v1/tenants/acme"),
        ("POST", "/v1/tenants/acme/tokens"),
        ("GET", "/v1/cluster"),
    ] {
        answers(&b, method, path, a, 403);
    }
    for args in [
        &["tenants", "list"][..],
        &["tenants", "create", "x"],
        &["tenants", "destroy", "acme", "--confirm", "acme"],
        &["tenants", "plan", "acme", "basic-1"],
        &["tokens", "create", "--tenant", "acme"],
    ] {
        let e = refused(&b, a, args);
        assert!(e.contains("operator token"), "{args:?}: {e}");
    }
    // Still there, still on its plan.
    assert_eq!(json(&b, op, &["info", "acme"])["plan"], "basic-0");

    // The token is hashed at rest: no file of the data dir holds it.
    assert_eq!(any_file_contains(&data, acme_token.as_bytes()), None);

    // A revoked token: 401 everywhere, at once.
    refused(&b, op, &["tokens", "revoke", &token_id, "--tenant", "acme"]);
    ok(
        &b,
        op,
        &[
            "tokens",
            "revoke",
            &token_id,
            "--tenant",
            "acme",
            "--confirm",
            &token_id,
        ],
    );
    answers(&b, "GET", "/v1/tenants/acme", a, 401);
    answers(&b, "GET", "/v1/groups", a, 401);
    let e = refused(&b, a, &["info"]);
    assert!(e.contains("token"), "{e}");
}

/// A plan file with a tiny plan: one topic of at most two partitions, one
/// group.
const TINY_PLAN: &str = r#"
[tiny]
description = "Tiny, for tests"
produce_bytes_per_sec = 1048576
consume_bytes_per_sec = 4194304
capacity_bytes = 1073741824
max_partitions = 2
max_partitions_per_topic = 2
default_partitions = 1
max_topics = 1
max_groups = 1
retention_ms_min = 86400000
retention_ms_max = 604800000
retention_ms_default = 86400000
max_message_bytes = 1048576
explicit_groups = true
admin_topics = true
max_connections = 100
max_requests_per_sec = 1000
"#;

fn create_topic(c: &ClientConfig, name: &str, partitions: i32) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> = c.create().unwrap();
    let results = futures::executor::block_on(admin.create_topics(
        &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
    ))
    .map_err(|e| e.to_string())?;
    results[0]
        .clone()
        .map(|_| ())
        .map_err(|(_, e)| format!("{e:?}"))
}

fn total_lag(b: &Broker, token: Option<&str>, group: &str) -> Value {
    let list = json(b, token, &["groups", "list", "--tenant", "acme"]);
    list["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group_id"] == group)
        .unwrap_or_else(|| panic!("{group} not listed: {list}"))["total_lag"]
        .clone()
}

#[test]
fn a_plan_change_applies_at_once_and_keeps_topics_offsets_and_info() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let plans = dir.path().join("plans.toml");
    std::fs::write(&plans, TINY_PLAN).unwrap();
    let b = Broker::start(
        &data,
        &[
            "--multi-tenant",
            "--plans",
            plans.to_str().unwrap(),
            "--group-initial-rebalance-delay-ms",
            "0",
        ],
    );
    let op = operator_token(&data);
    let op = Some(op.as_str());
    let created = json(&b, op, &["tenants", "create", "acme", "--plan", "tiny"]);
    let password = created["credential"]["password"].as_str().unwrap();
    let client = sasl_client(&b.bootstrap(), "acme", password);

    // At the tiny plan's limits: one topic of two partitions, one group.
    create_topic(&client, "acme.orders", 2).unwrap();
    assert!(create_topic(&client, "acme.more", 1).is_err());
    json(&b, op, &["groups", "create", "g1", "--tenant", "acme"]);
    let e = refused(&b, op, &["groups", "create", "g2", "--tenant", "acme"]);
    assert!(e.contains("plan"), "{e}");

    // Six records to partition 0.
    let p: ThreadedProducer<DefaultProducerContext> = client.clone().create().unwrap();
    for i in 0..6 {
        let v = format!("order-{i}-{}", "x".repeat(100));
        p.send(
            BaseRecord::<(), _>::to("acme.orders")
                .payload(&v)
                .partition(0),
        )
        .unwrap();
    }
    p.flush(Duration::from_secs(20)).unwrap();
    drop(p);
    // Rates count whole seconds past.
    std::thread::sleep(Duration::from_millis(1200));

    let info = json(&b, op, &["info", "acme"]);
    let u = &info["usage"];
    assert_eq!(info["plan"], "tiny");
    assert_eq!(info["status"], "available");
    assert_eq!(info["prefix"], "acme.");
    assert!(info["version"].is_string(), "{info}");
    assert_eq!(u["topics"], 1, "{info}");
    assert_eq!(u["max_topics"], 1, "{info}");
    assert_eq!(u["partitions"], 2, "{info}");
    assert_eq!(u["max_partitions"], 2, "{info}");
    assert_eq!(u["groups"], 1, "{info}");
    assert_eq!(u["max_groups"], 1, "{info}");
    assert!(u["bytes_in_per_sec"].as_f64().unwrap() > 0.0, "{info}");
    assert!(u["messages_in_per_sec"].as_f64().unwrap() > 0.0, "{info}");
    assert!(u["data_bytes"].as_u64().unwrap() >= 600, "{info}");
    assert_eq!(u["capacity_bytes"], 1073741824u64, "{info}");
    assert!(u["capacity_percent"].as_f64().unwrap() >= 0.0, "{info}");
    let human = ok(&b, op, &["info", "acme"]);
    for field in [
        "Plan:",
        "tiny",
        "Status:",
        "available",
        "Topics:",
        "1 / 1",
        "Partitions:",
        "2 / 2",
        "Prefix:",
        "acme.",
        "Messages:",
        "Traffic:",
        "/s in /",
        "Data size:",
        "/ 1 GB (",
    ] {
        assert!(human.contains(field), "`{field}` missing:\n{human}");
    }

    // The operator's cluster view lists the tenant with its usage.
    let cluster = json(&b, op, &["info"]);
    assert_eq!(cluster["multi_tenant"], true);
    assert_eq!(cluster["brokers"][0]["node_id"], 1, "{cluster}");
    assert_eq!(
        cluster["brokers"][0]["kafka_plaintext_url"],
        b.bootstrap().as_str()
    );
    let t = &cluster["tenants"][0];
    assert_eq!(t["name"], "acme", "{cluster}");
    assert_eq!(t["plan"], "tiny");
    assert_eq!(t["partitions"], 2);
    assert!(t["data_bytes"].as_u64().unwrap() > 0, "{cluster}");
    assert!(t["bytes_in_per_sec"].as_f64().unwrap() > 0.0, "{cluster}");
    assert!(cluster["totals"]["data_bytes"].as_u64().unwrap() > 0);
    let human = ok(&b, op, &["info"]);
    assert!(
        human.contains("acme") && human.contains("tiny") && human.contains(&b.bootstrap()),
        "{human}"
    );

    // A consumer in acme.g1 reads the six records and commits in two
    // steps: the group list shows the lag fall to 0.
    let mut cc = client.clone();
    cc.set("group.id", "acme.g1")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    let c: BaseConsumer = cc.create().unwrap();
    c.subscribe(&["acme.orders"]).unwrap();
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen < 6 {
        assert!(Instant::now() < deadline, "consumed only {seen} of 6");
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            m.unwrap();
            seen += 1;
        }
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("acme.orders", 0, Offset::Offset(2))
        .unwrap();
    c.commit(&tpl, CommitMode::Sync).unwrap();
    assert_eq!(total_lag(&b, op, "acme.g1"), 4);
    c.commit_consumer_state(CommitMode::Sync).unwrap();
    assert_eq!(total_lag(&b, op, "acme.g1"), 0);
    let table = ok(&b, op, &["groups", "list", "--tenant", "acme"]);
    assert!(
        table.contains("acme.g1") && table.contains("Stable"),
        "{table}"
    );
    drop(c);

    // Move in place to basic-0: the larger limits apply at once.
    let moved = json(&b, op, &["tenants", "plan", "acme", "basic-0"]);
    assert_eq!(moved["plan"], "basic-0");
    let said = ok(&b, op, &["tenants", "plan", "acme", "basic-0"]);
    assert!(said.contains("basic-0"), "{said}");
    create_topic(&client, "acme.more", 4).unwrap();
    json(&b, op, &["groups", "create", "g2", "--tenant", "acme"]);
    // Topics, data and offsets stayed.
    let info = json(&b, op, &["info", "acme"]);
    assert_eq!(info["plan"], "basic-0");
    assert_eq!(info["usage"]["topics"], 2, "{info}");
    assert_eq!(info["usage"]["partitions"], 6, "{info}");
    assert_eq!(info["usage"]["max_partitions"], 240, "{info}");
    assert!(info["usage"]["data_bytes"].as_u64().unwrap() >= 600);
    let g1 = json(&b, op, &["groups", "describe", "acme.g1"]);
    let committed: Vec<&Value> = g1["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["partition"] == 0)
        .map(|p| &p["committed_offset"])
        .collect();
    assert_eq!(committed, [&Value::from(6)], "{g1}");
    assert_eq!(g1["total_lag"], 0);
    // Unknown plans are refused; the tenant stays where it is.
    let e = refused(&b, op, &["tenants", "plan", "acme", "gold"]);
    assert!(e.contains("unknown plan"), "{e}");
    refused(&b, op, &["tenants", "plan", "nobody", "basic-0"]);
    assert_eq!(json(&b, op, &["info", "acme"])["plan"], "basic-0");
}

#[test]
fn wait_and_the_cluster_view_of_an_open_broker() {
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::start(&dir.path().join("data"), &[]);

    let ready = json(&b, None, &["wait", "--timeout", "20s"]);
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["kafka"][0], b.bootstrap().as_str(), "{ready}");
    let said = ok(&b, None, &["wait"]);
    assert!(said.contains("ready"), "{said}");

    // No tenants: the operator (anyone) sees totals.
    let cluster = json(&b, None, &["info"]);
    assert_eq!(cluster["multi_tenant"], false);
    assert_eq!(cluster["tenants"].as_array().unwrap().len(), 0);
    assert!(cluster["totals"]["topics"].is_u64(), "{cluster}");
    let me = http(&b, "GET", "/v1/whoami", None).1;
    assert_eq!(me["role"], "operator");
    assert_eq!(me["multi_tenant"], false);
    answers(&b, "GET", "/v1/groups?tenant=acme", None, 404);
    // Bad usage: exit 2.
    fails(&b, None, &["wait", "--timeout", "soon"], 2);
    fails(&b, None, &["info", "--bogus"], 2);

    // Nothing listening: exit 1 within the timeout.
    let (_bound, closed) = closed_port();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["wait", "--timeout", "2s", "--url"])
        .arg(format!("http://127.0.0.1:{closed}"))
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not ready within"), "{err}");
    assert!(took < Duration::from_secs(8), "gave up after {took:?}");

    // An HTTP listener whose Kafka listener is closed: also exit 1.
    let e = fails(
        &b,
        None,
        &[
            "wait",
            "--timeout",
            "1s",
            "--kafka-addr",
            &format!("127.0.0.1:{closed}"),
        ],
        1,
    );
    assert!(e.contains("Kafka listener"), "{e}");
}

#[test]
fn wait_for_a_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let b = Broker::start(&data, &["--multi-tenant"]);
    let op = operator_token(&data);
    let op = Some(op.as_str());
    // No token needed to wait for the broker itself.
    ok(&b, None, &["wait", "--timeout", "10s"]);
    let e = refused(&b, op, &["wait", "--tenant", "acme", "--timeout", "1s"]);
    assert!(e.contains("acme"), "{e}");
    json(&b, op, &["tenants", "create", "acme"]);
    let ready = json(&b, op, &["wait", "--tenant", "acme", "--timeout", "10s"]);
    assert_eq!(ready["tenant"], "acme");
    // A wrong token fails at once rather than waiting out the timeout.
    let started = Instant::now();
    refused(
        &b,
        Some("nope"),
        &["wait", "--tenant", "acme", "--timeout", "30s"],
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}
