//! The TLS listener of `sluice dev --multi-tenant`, with hostname
//! verification on, through librdkafka (rdkafka) and confluent-kafka:
//! - mTLS with a credential's client certificate, dialled as `localhost`
//!   and as `127.0.0.1`: produce a record and read it back;
//! - SASL_SSL with SCRAM-SHA-512 and no client certificate;
//! - a rotated credential's old certificate is refused, and so is a
//!   certificate signed by another CA;
//! - the CA survives a restart (clients keep trusting the same ca.pem).
//!
//! The tenant and its rotated credential are made through the REST API,
//! whose config must name the TLS listener as KAFKA_URL and the CA as
//! KAFKA_TRUSTED_CERT.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::rest::{as_operator, create_tenant, operator_token};
use common::Broker;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientConfig;
use sluice_tenancy::pki::Pki;

const TENANT: &str = "acme";

/// An issued credential's certificate, key, username and password.
struct Issued {
    cert: String,
    key: String,
    username: String,
    password: String,
}

fn issued(v: &serde_json::Value) -> Issued {
    let field = |name: &str| {
        v[name]
            .as_str()
            .unwrap_or_else(|| panic!("no `{name}` in {v}"))
            .to_string()
    };
    Issued {
        cert: field("client_cert"),
        key: field("client_cert_key"),
        username: field("username"),
        password: field("password"),
    }
}

/// Writes a certificate and key as `<name>.pem` and `<name>.key`.
fn write_cert(dir: &Path, name: &str, cert: &str, key: &str) {
    std::fs::write(dir.join(format!("{name}.pem")), cert).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), key).unwrap();
}

fn write_issued(dir: &Path, name: &str, issued: &Issued) {
    write_cert(dir, name, &issued.cert, &issued.key);
}

fn tls_config(host: &str, port: u16, certs: &Path, cert: Option<&str>) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", format!("{host}:{port}"))
        .set("security.protocol", "SSL")
        .set(
            "ssl.ca.location",
            certs.join("ca.pem").display().to_string(),
        )
        .set("ssl.endpoint.identification.algorithm", "https")
        .set("socket.timeout.ms", "5000");
    if let Some(name) = cert {
        c.set(
            "ssl.certificate.location",
            certs.join(format!("{name}.pem")).display().to_string(),
        )
        .set(
            "ssl.key.location",
            certs.join(format!("{name}.key")).display().to_string(),
        );
    }
    c
}

fn sasl_ssl_config(
    host: &str,
    port: u16,
    certs: &Path,
    mechanism: &str,
    user: &str,
    password: &str,
) -> ClientConfig {
    let mut c = tls_config(host, port, certs, None);
    c.set("security.protocol", "SASL_SSL")
        .set("sasl.mechanism", mechanism)
        .set("sasl.username", user)
        .set("sasl.password", password);
    c
}

/// Produces one record and reads it back from partition 0.
fn round_trip(what: &str, config: &ClientConfig, topic: &str) {
    let value = format!("{what}-{}", rand::random::<u64>());
    let producer: BaseProducer = config
        .clone()
        .set("message.timeout.ms", "10000")
        .create()
        .unwrap();
    producer
        .send(BaseRecord::<(), _>::to(topic).payload(&value))
        .map_err(|(e, _)| e)
        .unwrap();
    producer
        .flush(Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{what}: record not delivered: {e}"));
    let consumer: BaseConsumer = config
        .clone()
        .set("group.id", format!("{TENANT}.g-{}", rand::random::<u32>()))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
            if m.payload() == Some(value.as_bytes()) {
                return;
            }
        }
    }
    panic!("{what}: the record was not read back within 15 s");
}

/// The client gets no metadata: the broker refused it.
fn refused(what: &str, config: &ClientConfig) {
    let producer: BaseProducer = config.create().unwrap();
    let md = producer
        .client()
        .fetch_metadata(None, Duration::from_secs(4));
    assert!(md.is_err(), "{what}: expected a refusal, got metadata");
}

/// Waits until the broker's catalog refresh has seen the credential.
fn wait_authenticates(config: &ClientConfig) {
    let producer: BaseProducer = config.create().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if producer
            .client()
            .fetch_metadata(None, Duration::from_secs(2))
            .is_ok()
        {
            return;
        }
        assert!(Instant::now() < deadline, "the new credential never worked");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn python() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("SLUICE_PYTHON") {
        return Some(p.into());
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    venv.exists().then_some(venv)
}

#[tokio::test(flavor = "multi_thread")]
async fn mtls_and_sasl_ssl_with_hostname_verification() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The broker binds the address it is given (port 0: one it chooses)
    // and logs what it bound.
    let mut broker = Broker::start(
        &data,
        &[
            "--multi-tenant",
            "--kafka-tls-addr",
            "127.0.0.1:0",
            "--tls-san",
            "kafka.test.invalid",
        ],
    );
    let tls_port = tls_port_bound(&data);
    let ca_before = std::fs::read_to_string(data.join("tls/ca.pem")).unwrap();

    let token = operator_token(&data);
    let token = token.as_str();
    let created = create_tenant(&broker, TENANT, None);
    let config = &created["config"];
    assert_eq!(
        config["KAFKA_URL"],
        format!("127.0.0.1:{tls_port}"),
        "{created}"
    );
    assert_eq!(config["KAFKA_TRUSTED_CERT"], ca_before.as_str());
    let first = issued(&created["credential"]);
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    std::fs::write(certs.join("ca.pem"), &ca_before).unwrap();
    write_issued(&certs, "old", &first);
    let rotated = issued(&as_operator(
        &broker,
        "POST",
        &format!("/v1/tenants/{TENANT}/credentials/{TENANT}/rotate"),
        &serde_json::json!({}),
    ));
    write_issued(&certs, "client", &rotated);
    std::fs::write(certs.join("username"), &rotated.username).unwrap();
    std::fs::write(certs.join("password"), &rotated.password).unwrap();
    let foreign = Pki::load_or_create(&dir.path().join("other-ca"), &["localhost".into()])
        .unwrap()
        .issue_client(TENANT)
        .unwrap();
    write_cert(&certs, "foreign", &foreign.cert_pem, &foreign.key_pem);

    // The operator makes the topic (over SASL_SSL, as a superuser).
    let admin: AdminClient<DefaultClientContext> =
        sasl_ssl_config("localhost", tls_port, &certs, "PLAIN", "admin", token)
            .create()
            .unwrap();
    let topic = format!("{TENANT}.events");
    let created = admin
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("CreateTopics over SASL_SSL");
    assert!(created[0].is_ok(), "{created:?}");

    let mtls = tls_config("localhost", tls_port, &certs, Some("client"));
    wait_authenticates(&mtls);
    round_trip("mtls via localhost", &mtls, &topic);
    round_trip(
        "mtls via 127.0.0.1",
        &tls_config("127.0.0.1", tls_port, &certs, Some("client")),
        &topic,
    );
    round_trip(
        "SASL_SSL SCRAM-SHA-512",
        &sasl_ssl_config(
            "localhost",
            tls_port,
            &certs,
            "SCRAM-SHA-512",
            &rotated.username,
            &rotated.password,
        ),
        &topic,
    );
    refused(
        "rotated certificate",
        &tls_config("localhost", tls_port, &certs, Some("old")),
    );
    refused(
        "another CA's certificate",
        &tls_config("localhost", tls_port, &certs, Some("foreign")),
    );
    let log = broker.log_tail();
    assert!(
        log.contains("client certificate of no current credential"),
        "{log}"
    );
    assert!(log.contains("TLS handshake failed"), "{log}");
    assert!(log.contains("authenticated by client certificate"), "{log}");

    match python() {
        Some(python) => {
            let out = std::process::Command::new(&python)
                .arg(
                    Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("../../tests/clients/python/check_tls.py"),
                )
                .arg(tls_port.to_string())
                .arg(&certs)
                .arg(&topic)
                .output()
                .expect("run check_tls.py");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "check_tls.py failed:\n{text}");
            println!("{text}");
        }
        None if std::env::var_os("CI").is_some() => {
            panic!("no .venv with confluent-kafka: run scripts/test, or set SLUICE_PYTHON")
        }
        None => eprintln!("confluent-kafka check skipped: no .venv (run scripts/test)"),
    }

    // The CA is kept across restarts, so ca.pem stays the clients' trust.
    broker.stop();
    broker.restart();
    assert_eq!(
        std::fs::read_to_string(data.join("tls/ca.pem")).unwrap(),
        ca_before
    );
    // A restart binds port 0 again: another port.
    let tls_port = tls_port_bound(&data);
    wait_authenticates(&tls_config("localhost", tls_port, &certs, Some("client")));
}

/// The port of the TLS listener the broker on `data` last logged.
fn tls_port_bound(data: &Path) -> u16 {
    let log = std::fs::read_to_string(data.with_extension("log")).unwrap();
    log.lines()
        .rev()
        .filter(|l| l.contains("TLS listener"))
        .find_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("kafka_tls=127.0.0.1:"))
        })
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no TLS listener address in the log:\n{log}"))
}
