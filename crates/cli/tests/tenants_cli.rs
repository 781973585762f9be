//! `sluice tenants|credentials|config|groups` against `sluice dev
//! --multi-tenant`: the CLI drives the REST API, and real SASL logins with
//! librdkafka show that what it creates, rotates, revokes and destroys
//! takes effect on the Kafka listener.

mod common;

use std::process::Command;
use std::time::Duration;

use common::cli::{json, refused, sluice};
use common::rest::{http, operator_token};
use common::{sasl_client, Broker};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

fn sasl_config(b: &Broker, user: &str, password: &str) -> ClientConfig {
    let mut c = sasl_client(&b.bootstrap(), user, password);
    // One attempt per check: the broker locks an address out after 10
    // failed logins a minute, and librdkafka retries refused ones.
    c.set("reconnect.backoff.ms", "10000")
        .set("reconnect.backoff.max.ms", "10000");
    c
}

/// Whether `user` can log in and fetch metadata.
fn logs_in(b: &Broker, user: &str, password: &str) -> bool {
    let c: BaseConsumer = sasl_config(b, user, password).create().unwrap();
    c.fetch_metadata(None, Duration::from_secs(8)).is_ok()
}

fn topics(b: &Broker, token: &str) -> Vec<String> {
    let c: BaseConsumer = sasl_config(b, "admin", token).create().unwrap();
    let md = c.fetch_metadata(None, Duration::from_secs(10)).unwrap();
    md.topics().iter().map(|t| t.name().to_string()).collect()
}

fn create_topic(b: &Broker, token: &str, name: &str) {
    let admin: AdminClient<DefaultClientContext> = sasl_config(b, "admin", token).create().unwrap();
    let results = futures::executor::block_on(admin.create_topics(
        &[NewTopic::new(name, 2, TopicReplication::Fixed(1))],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
    ))
    .unwrap();
    assert!(results[0].is_ok(), "{results:?}");
}

#[test]
fn tenants_credentials_groups_and_config_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut b = Broker::start(&data, &["--multi-tenant"]);
    let token = operator_token(&data);

    // Without the operator token, or with a wrong one: 401, exit 1.
    let e = refused(&b, None, &["tenants", "list"]);
    assert!(e.contains("operator token"), "{e}");
    refused(&b, Some("not-the-token"), &["tenants", "create", "x"]);
    let (status, body) = http(&b, "GET", "/v1/tenants", Some("nope"));
    assert_eq!(status, 401);
    assert_eq!(body["error"], "unauthorized");
    // The group views span tenants: operator only.
    assert_eq!(http(&b, "GET", "/v1/groups", None).0, 401);
    assert_eq!(http(&b, "GET", "/v1/groups", Some(&token)).0, 200);

    // Two tenants: one named, one generated.
    let created = json(
        &b,
        Some(&token),
        &["tenants", "create", "acme", "--plan", "basic-0"],
    );
    assert_eq!(created["tenant"]["name"], "acme");
    assert_eq!(created["tenant"]["prefix"], "acme.");
    let acme_password = created["credential"]["password"]
        .as_str()
        .unwrap()
        .to_string();
    let cfg = &created["config"];
    assert_eq!(cfg["KAFKA_USERNAME"], "acme");
    assert_eq!(cfg["KAFKA_PASSWORD"], acme_password.as_str());
    assert_eq!(cfg["KAFKA_PREFIX"], "acme.");
    assert_eq!(cfg["KAFKA_SASL_MECHANISM"], "SCRAM-SHA-512");
    assert_eq!(cfg["KAFKA_PLAINTEXT_URL"], b.bootstrap().as_str());
    assert!(
        cfg["KAFKA_URL"].as_str().is_some_and(|u| u.contains(':')),
        "KAFKA_URL is the TLS listener: {cfg}"
    );

    let (code, out, err) = sluice(
        &b,
        Some(&token),
        &["tenants", "create", "--plan", "basic-1"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("Created tenant "), "{out}");
    assert!(out.contains("KAFKA_PASSWORD="), "{out}");
    let other = out["Created tenant ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let e = refused(&b, Some(&token), &["tenants", "create", "acme"]);
    assert!(e.contains("already exists"), "{e}");
    let e = refused(
        &b,
        Some(&token),
        &["tenants", "create", "zed", "--plan", "gold"],
    );
    assert!(e.contains("unknown plan"), "{e}");

    let listed = json(&b, Some(&token), &["tenants", "list"]);
    let names: Vec<&str> = listed["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{listed}");
    assert!(names.contains(&"acme") && names.contains(&other.as_str()));
    let (code, out, _) = sluice(&b, Some(&token), &["tenants", "list"]);
    assert!(
        code == 0 && out.contains("acme") && out.contains("basic-1"),
        "{out}"
    );

    let info = json(&b, Some(&token), &["tenants", "info", "acme"]);
    assert_eq!(info["plan"], "basic-0");
    assert_eq!(info["usage"]["credentials"], 1);

    // `sluice config` shows the password again; the lines `eval` back.
    let (code, out, err) = sluice(&b, Some(&token), &["config", "acme"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("KAFKA_PASSWORD={acme_password}\n")),
        "{out}"
    );
    let sh = Command::new("sh")
        .arg("-c")
        .arg("eval \"$1\"; printf %s \"$KAFKA_USERNAME:$KAFKA_PASSWORD\"")
        .arg("sh")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&sh.stdout),
        format!("acme:{acme_password}")
    );
    assert_eq!(
        json(&b, Some(&token), &["config", "acme"])["KAFKA_PASSWORD"],
        acme_password.as_str()
    );

    assert!(logs_in(&b, "acme", &acme_password));
    assert!(!logs_in(&b, "acme", "wrong-password"));

    // Credentials: create, list, rotate, revoke.
    let worker = json(
        &b,
        Some(&token),
        &[
            "credentials",
            "create",
            "--tenant",
            "acme",
            "--name",
            "worker",
        ],
    );
    assert_eq!(worker["username"], "acme-worker");
    let p1 = worker["password"].as_str().unwrap().to_string();
    assert!(logs_in(&b, "acme-worker", &p1));
    let creds = json(
        &b,
        Some(&token),
        &["credentials", "list", "--tenant", "acme"],
    );
    let users: Vec<&str> = creds["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["username"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["acme", "acme-worker"]);
    assert!(!creds.to_string().contains(&p1), "listing shows no secrets");

    let rotated = json(
        &b,
        Some(&token),
        &["credentials", "rotate", "acme-worker", "--tenant", "acme"],
    );
    let p2 = rotated["password"].as_str().unwrap().to_string();
    assert_ne!(p1, p2);
    assert!(
        !logs_in(&b, "acme-worker", &p1),
        "old password after rotate"
    );
    assert!(logs_in(&b, "acme-worker", &p2));
    // A tenant's credentials are not another's to manage.
    refused(
        &b,
        Some(&token),
        &["credentials", "rotate", "acme-worker", "--tenant", &other],
    );

    let e = refused(
        &b,
        Some(&token),
        &["credentials", "revoke", "acme-worker", "--tenant", "acme"],
    );
    assert!(e.contains("--confirm acme-worker"), "{e}");
    assert!(
        logs_in(&b, "acme-worker", &p2),
        "a refused revoke changes nothing"
    );
    let (code, out, err) = sluice(
        &b,
        Some(&token),
        &[
            "credentials",
            "revoke",
            "acme-worker",
            "--tenant",
            "acme",
            "--confirm",
            "acme-worker",
        ],
    );
    assert!(code == 0 && out.contains("Revoked"), "{err}");
    assert!(!logs_in(&b, "acme-worker", &p2), "revoked");

    // Explicit groups: the prefix is added; other tenants' prefixes refused.
    let g = json(
        &b,
        Some(&token),
        &["groups", "create", "billing", "--tenant", "acme"],
    );
    assert_eq!(g["group"], "acme.billing");
    let e = refused(
        &b,
        Some(&token),
        &["groups", "create", "acme.billing", "--tenant", "acme"],
    );
    assert!(e.contains("already exists"), "{e}");
    let e = refused(
        &b,
        Some(&token),
        &[
            "groups",
            "create",
            &format!("{other}.x"),
            "--tenant",
            "acme",
        ],
    );
    assert!(e.contains("prefix"), "{e}");
    json(
        &b,
        Some(&token),
        &["groups", "create", "audit", "--tenant", "acme"],
    );
    let groups = json(&b, Some(&token), &["groups", "list"]);
    assert!(groups.to_string().contains("acme.billing"), "{groups}");
    assert_eq!(
        json(&b, Some(&token), &["tenants", "info", "acme"])["usage"]["groups"],
        2
    );
    refused(
        &b,
        Some(&token),
        &["groups", "destroy", "billing", "--tenant", "acme"],
    );
    let d = json(
        &b,
        Some(&token),
        &[
            "groups",
            "destroy",
            "billing",
            "--tenant",
            "acme",
            "--confirm",
            "billing",
        ],
    );
    assert_eq!(d["deleted"], "acme.billing");
    let e = refused(
        &b,
        Some(&token),
        &[
            "groups",
            "destroy",
            "billing",
            "--tenant",
            "acme",
            "--confirm",
            "billing",
        ],
    );
    assert!(e.contains("does not exist"), "{e}");

    // The sealed secrets outlive a restart (same secrets.key).
    b.stop();
    b.restart();
    assert_eq!(
        json(&b, Some(&token), &["config", "acme"])["KAFKA_PASSWORD"],
        acme_password.as_str()
    );

    // Destroying a tenant removes its topics, groups and credentials only.
    create_topic(&b, &token, "acme.events");
    create_topic(&b, &token, &format!("{other}.events"));
    assert!(topics(&b, &token).contains(&"acme.events".to_string()));
    let e = refused(&b, Some(&token), &["tenants", "destroy", "acme"]);
    assert!(e.contains("--confirm acme"), "{e}");
    refused(
        &b,
        Some(&token),
        &["tenants", "destroy", "acme", "--confirm", "acm"],
    );
    assert!(
        logs_in(&b, "acme", &acme_password),
        "refused destroys change nothing"
    );
    let (code, out, err) = sluice(
        &b,
        Some(&token),
        &["tenants", "destroy", "acme", "--confirm", "acme"],
    );
    assert!(code == 0 && out.contains("Destroyed tenant acme"), "{err}");
    assert!(
        !logs_in(&b, "acme", &acme_password),
        "destroyed tenant logs in"
    );
    let left = topics(&b, &token);
    assert!(!left.contains(&"acme.events".to_string()), "{left:?}");
    assert!(left.contains(&format!("{other}.events")), "{left:?}");
    let groups = json(&b, Some(&token), &["groups", "list"]);
    assert!(!groups.to_string().contains("acme."), "{groups}");
    let e = refused(&b, Some(&token), &["tenants", "info", "acme"]);
    assert!(e.contains("does not exist"), "{e}");
    assert_eq!(
        json(&b, Some(&token), &["tenants", "list"])["tenants"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn tenant_endpoints_say_when_multi_tenancy_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let b = Broker::start(&dir.path().join("data"), &[]);
    let (status, body) = http(&b, "GET", "/v1/tenants", Some("anything"));
    assert_eq!(status, 404);
    assert_eq!(body["error"], "multi_tenancy_off");
    let e = refused(&b, None, &["tenants", "list"]);
    assert!(e.contains("--multi-tenant"), "{e}");
    // An open broker's group views stay open.
    assert_eq!(http(&b, "GET", "/v1/groups", None).0, 200);
}
