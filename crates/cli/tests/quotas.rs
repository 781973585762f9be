//! End-to-end quotas with librdkafka and raw frames against `sluice dev
//! --multi-tenant` with a plans file of small plans: a producer at 10x its
//! quota is held at the plan's rate while another tenant's latency holds; a
//! backlog is consumed at the consume rate, through Kafka and through the
//! REST API; produce is refused at capacity until a topic is deleted;
//! connections beyond the plan are refused.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::rest::{as_operator, create_tenant, http};
use common::{sasl_client, Broker, RawClient};
use kafka_protocol::messages::{
    ApiKey, RequestKind, ResponseKind, SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{
    BaseRecord, DeliveryResult, FutureProducer, FutureRecord, Producer, ProducerContext,
    PurgeConfig, ThreadedProducer,
};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientContext;
use serde_json::Value;

const KIB: u64 = 1024;
const PRODUCE_RATE: u64 = 256 * KIB;
const CONSUME_RATE: u64 = 256 * KIB;

fn plan(name: &str, produce: u64, consume: u64, capacity: u64, connections: u32) -> String {
    format!(
        "[{name}]
produce_bytes_per_sec = {produce}
consume_bytes_per_sec = {consume}
capacity_bytes = {capacity}
max_partitions = 100
max_partitions_per_topic = 10
default_partitions = 1
max_topics = 10
max_groups = 10
retention_ms_min = 3600000
retention_ms_max = 604800000
retention_ms_default = 86400000
max_message_bytes = 1048576
explicit_groups = true
admin_topics = true
max_connections = {connections}
max_requests_per_sec = 100000
"
    )
}

/// A multi-tenant broker with the test plans.
fn broker(dir: &tempfile::TempDir) -> Broker {
    let plans = dir.path().join("plans.toml");
    let big = 1 << 40;
    let text = [
        plan("q-produce", PRODUCE_RATE, 64 << 20, big, 50),
        plan("q-light", 16 << 20, 64 << 20, big, 50),
        plan("q-consume", 64 << 20, CONSUME_RATE, big, 50),
        plan("q-capacity", 64 << 20, 64 << 20, 1 << 20, 50),
        plan("q-conn", 64 << 20, 64 << 20, big, 2),
    ]
    .join("\n");
    std::fs::write(&plans, text).unwrap();
    let data = dir.path().join("data");
    Broker::start(
        &data,
        &["--multi-tenant", "--plans", plans.to_str().unwrap()],
    )
}

/// Creates a tenant on `plan` through the REST API (off the async workers);
/// returns the password of its first credential, whose username is the
/// tenant's name.
fn tenant(b: &Broker, name: &str, plan: &str) -> String {
    let v = tokio::task::block_in_place(|| create_tenant(b, name, Some(plan)));
    v["credential"]["password"].as_str().unwrap().to_string()
}

async fn create_topic(b: &Broker, user: &str, password: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = sasl_client(&b.bootstrap(), user, password)
        .create()
        .unwrap();
    let r = admin
        .create_topics(
            &[NewTopic::new(topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    assert!(r[0].is_ok(), "{r:?}");
}

/// Counts acknowledged payload bytes with their time.
#[derive(Clone, Default)]
struct Acks(Arc<Mutex<Vec<(Instant, u64)>>>);

impl ClientContext for Acks {}
impl ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        if let Ok(m) = r {
            let n = m.payload().map_or(0, |p| p.len() as u64);
            self.0.lock().unwrap().push((Instant::now(), n));
        }
    }
}

/// Produce latencies (ms) of one message every 20 ms for `d`.
async fn latencies(p: &FutureProducer, topic: &str, d: Duration) -> Vec<f64> {
    let payload = vec![b'l'; 512];
    let end = Instant::now() + d;
    let mut out = Vec::new();
    while Instant::now() < end {
        let t = Instant::now();
        p.send(
            FutureRecord::<(), _>::to(topic).payload(&payload),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        out.push(t.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    out
}

fn p99(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 * 0.99) as usize).min(v.len() - 1)]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// The light tenant's latency is compared over alternating windows of the
/// heavy tenant off and on. This machine's disk has slow phases (fsync
/// tails of tens of ms that come and go over tens of seconds); with one
/// solo window and one loaded window, a phase falling in only one of them
/// decided the comparison. Alternating puts the phases on both sides, and
/// the median window's p99 ignores a stalled window.
const WINDOWS: usize = 11;
/// The allowance for the machine's disk (see the latency assertion).
const SLOW_FSYNC_MS: f64 = 30.0;
const WINDOW: Duration = Duration::from_secs(6);
/// Not sampled at the start of each window: the heavy tenant spends its
/// one-second burst and settles into throttling, or its last in-flight
/// request completes after it stops.
const SETTLE: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_producer_at_ten_times_its_quota_gets_its_rate_and_others_keep_their_latency() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir);
    let heavy_pw = tenant(&b, "heavy", "q-produce");
    let light_pw = tenant(&b, "light", "q-light");
    create_topic(&b, "heavy", &heavy_pw, "heavy.t").await;
    create_topic(&b, "light", &light_pw, "light.t").await;

    let light: FutureProducer = sasl_client(&b.bootstrap(), "light", &light_pw)
        .set("acks", "all")
        .set("linger.ms", "0")
        .create()
        .unwrap();
    // Warm-up.
    latencies(&light, "light.t", Duration::from_secs(2)).await;

    // The heavy tenant offers 10x its quota while `on`. One request in
    // flight and a small queue, so that once it stops (its queue purged)
    // it is quiet within SETTLE; 64 KiB batches, so that its bytes share
    // flushes with the light tenant's.
    let acks = Acks::default();
    let heavy: Arc<ThreadedProducer<Acks>> = Arc::new(
        sasl_client(&b.bootstrap(), "heavy", &heavy_pw)
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("batch.size", "65536")
            .set("max.in.flight.requests.per.connection", "1")
            .set("queue.buffering.max.kbytes", "1024")
            .set("message.timeout.ms", "120000")
            .create_with_context(acks.clone())
            .unwrap(),
    );
    let on = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let offering = {
        let (heavy, on, stop) = (heavy.clone(), on.clone(), stop.clone());
        std::thread::spawn(move || {
            let payload = vec![b'h'; 1024];
            // Bytes offered: every message attempted on schedule while on,
            // whether the client's queue took it or was full (the client
            // being throttled).
            let mut offered = 0u64;
            let mut due = 0f64;
            let mut last = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                if on.load(Ordering::Relaxed) {
                    due += (now - last).as_secs_f64() * (10 * PRODUCE_RATE) as f64;
                    while due >= payload.len() as f64 {
                        due -= payload.len() as f64;
                        offered += payload.len() as u64;
                        match heavy.send(BaseRecord::<(), _>::to("heavy.t").payload(&payload)) {
                            Ok(())
                            | Err((
                                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                                _,
                            )) => {}
                            Err((e, _)) => panic!("{e}"),
                        }
                    }
                }
                last = now;
                std::thread::sleep(Duration::from_millis(2));
            }
            offered
        })
    };

    // Off, on, off, ..., off: each window's p99 after SETTLE, and for the
    // on windows the span in which the heavy tenant's acks are counted.
    let (mut solo, mut loaded) = (Vec::new(), Vec::new());
    let mut on_spans = Vec::new();
    for w in 0..WINDOWS {
        let heavy_on = w % 2 == 1;
        on.store(heavy_on, Ordering::Relaxed);
        if !heavy_on {
            heavy.purge(PurgeConfig::default().queue());
        }
        latencies(&light, "light.t", SETTLE).await;
        let from = Instant::now();
        let samples = latencies(&light, "light.t", WINDOW - SETTLE).await;
        if heavy_on {
            on_spans.push((from, Instant::now()));
            loaded.push(samples);
        } else {
            solo.push(samples);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let offered = offering.join().unwrap();
    heavy.purge(PurgeConfig::default().queue());

    let on_time = WINDOW.as_secs_f64() * on_spans.len() as f64;
    let counted: f64 = on_spans.iter().map(|(a, b)| (*b - *a).as_secs_f64()).sum();
    let acked: u64 = acks
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _)| on_spans.iter().any(|(a, b)| t >= a && t < b))
        .map(|(_, n)| n)
        .sum();
    let rate = acked as f64 / counted;
    let plan = PRODUCE_RATE as f64;
    let window_p99s = |ws: &[Vec<f64>]| ws.iter().map(|w| p99(w.clone())).collect::<Vec<_>>();
    let (solo_p99s, loaded_p99s) = (window_p99s(&solo), window_p99s(&loaded));
    let (solo_p99, loaded_p99) = (median(solo_p99s.clone()), median(loaded_p99s.clone()));
    let shown = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.1}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    eprintln!(
        "heavy: offered {:.0} KiB/s, acknowledged {:.1} KiB/s (plan {} KiB/s); \
         light p99 by window (ms): solo {}, loaded {}",
        offered as f64 / on_time / 1024.0,
        rate / 1024.0,
        PRODUCE_RATE / KIB,
        shown(&solo_p99s),
        shown(&loaded_p99s),
    );
    assert!(
        offered as f64 / on_time > 9.0 * plan,
        "the producer did not offer 10x its quota"
    );
    assert!(
        (rate - plan).abs() <= 0.15 * plan,
        "acknowledged {rate:.0} B/s, plan {plan} B/s"
    );
    // The bar: within 2x of the solo p99 (of the median window),
    // plus one slow fsync of this machine's disk. Its fdatasync takes 30 to
    // 100 ms now and then (strace), and a window's p99 is its second-worst
    // sample, so where these stalls fall decides a 5 ms p99 against a
    // 35 ms one (one CI run: solo windows 4.2-198.7 ms, loaded 5.8-52.5 ms).
    // A tenant really held up by another (head-of-line blocking behind its
    // requests or its throttle) moves every window by more than that. The
    // throttled tenant's bytes arrive at its plan's rate and commits are
    // ordered per partition, so the light tenant's produce waits for its
    // own flush only, which now and then carries 64 KiB of the heavy
    // tenant's too.
    assert!(
        loaded_p99 <= 2.0 * solo_p99 + SLOW_FSYNC_MS,
        "light tenant's p99 went from {solo_p99:.1} ms to {loaded_p99:.1} ms (median windows)"
    );
    let metrics = b.http_get("/metrics").unwrap_or_default();
    assert!(
        metrics.contains("sluice_throttle_time_seconds") && metrics.contains("tenant=\"heavy\""),
        "throttle metrics missing"
    );
}

/// Creates tenant `name` on the consume-limited plan with a topic
/// `NAME.t` holding 4 MiB (4096 records of 1 KiB); returns its password.
async fn backlog(b: &Broker, name: &str) -> String {
    let pw = tenant(b, name, "q-consume");
    let topic = format!("{name}.t");
    create_topic(b, name, &pw, &topic).await;
    let p: FutureProducer = sasl_client(&b.bootstrap(), name, &pw)
        .set("acks", "all")
        .set("linger.ms", "20")
        .create()
        .unwrap();
    let payload = vec![b'c'; 1024];
    let sends: Vec<_> = (0..4096)
        .map(|_| {
            p.send(
                FutureRecord::<(), _>::to(&topic).payload(&payload),
                Duration::from_secs(30),
            )
        })
        .collect();
    for s in futures::future::join_all(sends).await {
        s.unwrap();
    }
    pw
}

/// Asserts that the bytes received from 2 s to `until` (each with the time
/// it arrived) came at the plan's consume rate, within 25%.
fn assert_consume_rate(got: &[(Duration, u64)], until: Duration, how: &str) {
    let from = Duration::from_secs(2);
    let bytes: u64 = got.iter().filter(|(t, _)| *t >= from).map(|(_, n)| n).sum();
    let rate = bytes as f64 / (until - from).as_secs_f64();
    let plan = CONSUME_RATE as f64;
    eprintln!(
        "{how} {:.1} KiB/s (plan {} KiB/s)",
        rate / 1024.0,
        CONSUME_RATE / KIB
    );
    assert!(
        (rate - plan).abs() <= 0.25 * plan,
        "{how} {rate:.0} B/s, plan {plan} B/s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_is_consumed_at_the_consume_rate() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir);
    let pw = backlog(&b, "reader").await;

    let c: BaseConsumer = sasl_client(&b.bootstrap(), "reader", &pw)
        .set("group.id", "reader.unused")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "65536")
        .set("message.max.bytes", "65536")
        .set("max.partition.fetch.bytes", "65536")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("reader.t", 0, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let start = Instant::now();
    let mut got = Vec::new();
    while start.elapsed() < Duration::from_secs(10) {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            got.push((start.elapsed(), m.payload_len() as u64));
        }
    }
    assert_consume_rate(&got, Duration::from_secs(10), "consumed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_reads_are_held_to_the_consume_rate() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir);
    backlog(&b, "browser").await;

    // Pages of 100 records (100 KiB of values) through the REST API with
    // the tenant's token, as `sluice topics tail` reads.
    let token = tokio::task::block_in_place(|| {
        as_operator(&b, "POST", "/v1/tenants/browser/tokens", &Value::Null)
    })["token"]
        .as_str()
        .unwrap()
        .to_string();
    let start = Instant::now();
    let mut offset = 0;
    let mut got = Vec::new();
    while start.elapsed() < Duration::from_secs(8) {
        let path = format!("/v1/topics/browser.t/records?partition=0&offset={offset}&limit=100");
        let (status, body) = tokio::task::block_in_place(|| http(&b, "GET", &path, Some(&token)));
        assert_eq!(status, 200, "{body}");
        let bytes: u64 = body["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["length"].as_u64().unwrap())
            .sum();
        got.push((start.elapsed(), bytes));
        offset = body["next_offset"].as_i64().unwrap();
    }
    assert_consume_rate(&got, Duration::from_secs(8), "read over REST");
}

/// A SASL PLAIN connection as `user`; the SaslAuthenticate response's error.
fn plain(b: &Broker, user: &str, password: &str) -> (RawClient, i16, String) {
    let mut c = RawClient::connect(&b.bootstrap());
    let r = c.request(
        ApiKey::SaslHandshake,
        1,
        RequestKind::SaslHandshake(
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
        ),
    );
    let ResponseKind::SaslHandshake(r) = r else {
        panic!("{r:?}")
    };
    assert_eq!(r.error_code, 0);
    let auth = format!("\0{user}\0{password}");
    let r = c.request(
        ApiKey::SaslAuthenticate,
        1,
        RequestKind::SaslAuthenticate(
            SaslAuthenticateRequest::default().with_auth_bytes(auth.into_bytes().into()),
        ),
    );
    let ResponseKind::SaslAuthenticate(r) = r else {
        panic!("{r:?}")
    };
    let msg = r.error_message.map(|m| m.to_string()).unwrap_or_default();
    (c, r.error_code, msg)
}

fn raw_produce(c: &mut RawClient, topic: &str) -> (i16, String) {
    let batch = common::record_batch(10, kafka_protocol::records::Compression::None);
    let (code, message, _) = c.produce(topic, 0, batch);
    (code, message.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_is_refused_at_capacity_until_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir);
    let pw = tenant(&b, "full", "q-capacity");
    create_topic(&b, "full", &pw, "full.t").await;
    let p: FutureProducer = sasl_client(&b.bootstrap(), "full", &pw)
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("retries", "0")
        .create()
        .unwrap();
    let payload = vec![b'f'; 16 * 1024];
    let mut refused = None;
    for i in 0..200 {
        let r = p
            .send(
                FutureRecord::<(), _>::to("full.t").payload(&payload),
                Duration::from_secs(10),
            )
            .await;
        if let Err((e, _)) = r {
            refused = Some((i, e));
            break;
        }
    }
    let (i, e) = refused.expect("produce past a 1 MiB capacity was never refused");
    assert_eq!(
        e,
        KafkaError::MessageProduction(RDKafkaErrorCode::PolicyViolation)
    );
    assert!((60..=70).contains(&i), "refused after {i} x 16 KiB");

    let (mut raw, code, _) = plain(&b, "full", &pw);
    assert_eq!(code, 0);
    let (code, message) = raw_produce(&mut raw, "full.t");
    assert_eq!(code, 44, "{message}"); // POLICY_VIOLATION
    assert!(
        message.contains("tenant `full` stores")
            && message.contains("of its 1.0 MiB capacity (plan q-capacity)")
            && message.contains("delete topics"),
        "{message}"
    );

    // Deleting the topic frees the space at the next count (every 5 s).
    let admin: AdminClient<DefaultClientContext> =
        sasl_client(&b.bootstrap(), "full", &pw).create().unwrap();
    admin
        .delete_topics(&["full.t"], &AdminOptions::new())
        .await
        .unwrap();
    create_topic(&b, "full", &pw, "full.u").await;
    let deadline = Instant::now() + Duration::from_secs(12);
    loop {
        let (code, message) = raw_produce(&mut raw, "full.u");
        if code == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "still refused: {message}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_plan_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&dir);
    let pw = tenant(&b, "few", "q-conn");
    let (c1, code1, _) = plain(&b, "few", &pw);
    let (_c2, code2, _) = plain(&b, "few", &pw);
    assert_eq!((code1, code2), (0, 0));
    let (mut c3, code, message) = plain(&b, "few", &pw);
    assert_eq!(code, 58, "{message}"); // SASL_AUTHENTICATION_FAILED
    assert!(
        message.contains("max_connections = 2") && message.contains("plan q-conn"),
        "{message}"
    );
    assert!(c3.is_closed());
    // A closed connection frees its place.
    drop(c1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_c4, code, message) = plain(&b, "few", &pw);
    assert_eq!(code, 0, "{message}");
}
