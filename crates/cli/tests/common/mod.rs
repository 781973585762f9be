//! Shared by the end-to-end tests: start the real `sluice` binary on free
//! ports, talk to it with librdkafka (rdkafka) or raw protocol frames;
//! [`cli`] runs the `sluice` CLI against it and [`rest`] calls its REST API.
//!
//! Every test binary compiles this module (`mod common;`) and uses only
//! part of it: `allow(dead_code)` here covers the submodules too.
#![allow(dead_code)]

pub mod cli;
pub mod rest;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// A loopback port that refuses connections for as long as the returned
/// socket lives: bound, so that no other test can take it, but not
/// listening, so that a connection to it is refused at once.
pub fn closed_port() -> (socket2::Socket, u16) {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&any.into()).unwrap();
    let port = socket.local_addr().unwrap().as_socket().unwrap().port();
    (socket, port)
}

/// A running `sluice dev` process; killed when dropped.
pub struct Broker {
    pub child: Option<Child>,
    pub data_dir: PathBuf,
    pub kafka_port: u16,
    pub http_port: u16,
    pub extra: Vec<String>,
    log: PathBuf,
}

impl Broker {
    /// Starts a broker on `data_dir` on ports it chooses itself: the
    /// broker binds port 0 and logs what it bound, so no other test can take
    /// a port between our choosing it and the broker binding it.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Broker {
        let mut b = Broker {
            child: None,
            data_dir: data_dir.to_path_buf(),
            kafka_port: 0,
            http_port: 0,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            log: data_dir.with_extension("log"),
        };
        b.spawn();
        b
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.kafka_port)
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        // Only this start's part of the log speaks for this process.
        let log_from = log.metadata().unwrap().len() as usize;
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("dev")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--kafka-addr")
            .arg(self.bootstrap())
            .arg("--http-addr")
            .arg(format!("127.0.0.1:{}", self.http_port))
            .args(&self.extra)
            .args(self.tls_default())
            .env("RUST_LOG", "info,sqlx=warn")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start sluice");
        self.child = Some(child);
        self.wait_ready(log_from);
    }

    /// A multi-tenant broker's TLS listener defaults to the Kafka port + 1,
    /// which another test's broker may hold: tests that do not choose its
    /// address get a free one.
    fn tls_default(&self) -> Vec<String> {
        let multi_tenant = self.extra.iter().any(|a| a == "--multi-tenant");
        let chosen = self.extra.iter().any(|a| a.starts_with("--kafka-tls-addr"));
        if multi_tenant && !chosen {
            vec!["--kafka-tls-addr".into(), "127.0.0.1:0".into()]
        } else {
            Vec::new()
        }
    }

    /// Waits for this process to log the addresses it bound, takes the
    /// ports from that line (a restart asks for the same ones again), then
    /// waits for `/healthz`.
    fn wait_ready(&mut self, log_from: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut ready = false;
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "sluice exited with {status} while starting:\n{}",
                    self.log_tail()
                );
            }
            if !ready {
                let log = std::fs::read(&self.log).unwrap_or_default();
                let ours = String::from_utf8_lossy(&log[log_from.min(log.len())..]).into_owned();
                if let Some(line) = ours.lines().find(|l| l.contains("sluice is ready")) {
                    let port = |field: &str| -> u16 {
                        line.split_whitespace()
                            .find_map(|w| w.strip_prefix(field))
                            .and_then(|addr| addr.rsplit_once(':'))
                            .and_then(|(_, port)| port.parse().ok())
                            .unwrap_or_else(|| panic!("no {field}PORT in {line:?}"))
                    };
                    self.kafka_port = port("kafka=");
                    self.http_port = port("http=");
                    ready = true;
                }
            }
            if ready && self.http_get("/healthz").is_some_and(|b| b.contains("ok")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "sluice did not log its addresses and answer /healthz within 60 s:\n{}",
            self.log_tail()
        );
    }

    /// GET on the HTTP listener; the body, if the request succeeded.
    pub fn http_get(&self, path: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.http_port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        if !out.starts_with("HTTP/1.1 200") {
            return None;
        }
        out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
    }

    /// The value of an unlabelled counter on /metrics (0 before it first
    /// counts, or if /metrics does not answer).
    pub fn counter(&self, name: &str) -> u64 {
        let body = self.http_get("/metrics").unwrap_or_default();
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
            .unwrap_or(0.0) as u64
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe_sigterm(c.id());
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(Some(status)) = c.try_wait() {
                    assert!(
                        status.success(),
                        "sluice exited with {status} after SIGTERM:\n{}",
                        self.log_tail()
                    );
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "sluice did not stop within 30 s of SIGTERM"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Starts again on the same data directory and ports.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop or kill the broker first");
        self.spawn();
    }
}

fn unsafe_sigterm(pid: u32) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
}

impl Drop for Broker {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- sluice log (last lines) ---\n{}", self.log_tail());
        }
        self.kill9();
    }
}

/// A raw Kafka connection for requests no client library will send.
pub struct RawClient {
    stream: TcpStream,
    next_correlation: i32,
}

impl RawClient {
    pub fn connect(bootstrap: &str) -> RawClient {
        let stream = TcpStream::connect(bootstrap).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        RawClient {
            stream,
            next_correlation: 1,
        }
    }

    /// Sends raw bytes as they are.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Sends a request and decodes its response.
    pub fn request(&mut self, key: ApiKey, version: i16, body: RequestKind) -> ResponseKind {
        let frame = self.frame(key, version, &body);
        self.send_bytes(&frame);
        self.read_response(key, version).expect("response")
    }

    pub fn frame(&mut self, key: ApiKey, version: i16, body: &RequestKind) -> Bytes {
        let correlation = self.next_correlation;
        self.next_correlation += 1;
        let mut b = BytesMut::new();
        b.put_i32(0);
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(Some(StrBytes::from_static_str("raw-test")))
            .encode(&mut b, key.request_header_version(version))
            .unwrap();
        body.encode(&mut b, version).unwrap();
        let len = (b.len() - 4) as i32;
        b[..4].copy_from_slice(&len.to_be_bytes());
        b.freeze()
    }

    /// Creates a topic (CreateTopics v7) and asserts it was created.
    pub fn create_topic(&mut self, name: &str, partitions: i32, configs: &[(&str, &str)]) {
        use kafka_protocol::messages::create_topics_request::{
            CreatableTopic, CreatableTopicConfig,
        };
        use kafka_protocol::messages::{CreateTopicsRequest, TopicName};
        let req = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(name.into())))
            .with_num_partitions(partitions)
            .with_replication_factor(1)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(k.to_string()))
                            .with_value(Some(StrBytes::from_string(v.to_string())))
                    })
                    .collect(),
            )]);
        let ResponseKind::CreateTopics(r) =
            self.request(ApiKey::CreateTopics, 7, RequestKind::CreateTopics(req))
        else {
            panic!("wrong response kind")
        };
        assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
    }

    /// Produces `records` to one partition with acks=all (Produce v9);
    /// returns (error code, message, base offset).
    pub fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        records: Bytes,
    ) -> (i16, Option<String>, i64) {
        use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
        use kafka_protocol::messages::{ProduceRequest, TopicName};
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.into())))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(records))])]);
        let ResponseKind::Produce(r) = self.request(ApiKey::Produce, 9, RequestKind::Produce(req))
        else {
            panic!("wrong response kind")
        };
        let p = &r.responses[0].partition_responses[0];
        (
            p.error_code,
            p.error_message.as_ref().map(|s| s.to_string()),
            p.base_offset,
        )
    }

    /// Reads one response; `None` if the broker closed the connection.
    pub fn read_response(&mut self, key: ApiKey, version: i16) -> Option<ResponseKind> {
        let body = self.read_frame()?;
        let mut b = Bytes::from(body);
        ResponseHeader::decode(&mut b, key.response_header_version(version)).unwrap();
        Some(ResponseKind::decode(key, &mut b, version).expect("decode response"))
    }

    pub fn read_frame(&mut self) -> Option<Vec<u8>> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).ok()?;
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut body).ok()?;
        Some(body)
    }

    /// True once the broker has closed the connection.
    pub fn is_closed(&mut self) -> bool {
        let mut buf = [0u8; 1];
        matches!(self.stream.read(&mut buf), Ok(0) | Err(_))
    }
}

/// Builds a record batch (magic 2) with `n` records "v0".."vN", without
/// keys, stamped now.
pub fn record_batch(n: usize, compression: kafka_protocol::records::Compression) -> Bytes {
    stamped_batch(&vec![(None, now_ms()); n], compression)
}

/// Builds a record batch (magic 2) of records "v0", "v1", ... with these
/// keys and timestamps.
pub fn stamped_batch(
    records: &[(Option<&str>, i64)],
    compression: kafka_protocol::records::Compression,
) -> Bytes {
    use kafka_protocol::records::*;
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, timestamp))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32,
            timestamp: *timestamp,
            key: key.map(|k| Bytes::from(k.to_string())),
            value: Some(Bytes::from(format!("v{i}"))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf.freeze()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Reads a big-endian i16 at `at`.
pub fn be_i16(b: &[u8], at: usize) -> i16 {
    (&b[at..at + 2]).get_i16()
}

/// A librdkafka client logging in to a `--multi-tenant` broker's Kafka
/// listener with SCRAM-SHA-512 (librdkafka is built with OpenSSL, so SCRAM
/// is always there: no silent fallback to PLAIN).
pub fn sasl_client(bootstrap: &str, user: &str, password: &str) -> rdkafka::ClientConfig {
    let mut c = rdkafka::ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "SCRAM-SHA-512")
        .set("sasl.username", user)
        .set("sasl.password", password);
    c
}
