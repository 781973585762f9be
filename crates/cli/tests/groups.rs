//! Consumer groups end to end with real clients: librdkafka consumers (the
//! rdkafka crate) and kcat sharing classic groups while members join late,
//! leave and die (eager and cooperative); static members restarting; idle
//! members and committed offsets across a broker restart; KIP-848 consumers
//! (`group.protocol=consumer`) handing partitions over, following topic
//! changes, and fenced when they hold on or go silent; OffsetDelete; and
//! the classic protocol's error semantics spoken raw.
//!
//! What is checked is what a user checks: every acknowledged record reaches
//! some member, no partition has two owners at once, a group resumes where
//! it committed, and errors carry Kafka's codes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Broker, RawClient};
use kafka_protocol::error::ParseResponseErrorCode;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientConfig;
use sluice_protocol::ErrorCode;

const TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Topics and producing

fn create_topic(b: &Broker, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .create()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = rt
        .block_on(admin.create_topics(
            [&NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
        ))
        .unwrap();
    assert!(r[0].is_ok(), "create topic {name}: {:?}", r[0]);
}

/// One acknowledged record: partition, offset, value.
type Acked = (i32, i64, String);

struct AckContext {
    acked: Arc<Mutex<Vec<Acked>>>,
    failed: Arc<Mutex<Vec<String>>>,
}

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => self.acked.lock().unwrap().push((
                m.partition(),
                m.offset(),
                String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            )),
            Err((e, m)) => self.failed.lock().unwrap().push(format!(
                "{}: {e}",
                String::from_utf8_lossy(m.payload().unwrap_or_default())
            )),
        }
    }
}

fn ack_producer(b: &Broker) -> (ThreadedProducer<AckContext>, Arc<Mutex<Vec<Acked>>>) {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(Mutex::new(Vec::new()));
    let p = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .create_with_context(AckContext {
            acked: acked.clone(),
            failed,
        })
        .unwrap();
    (p, acked)
}

/// Produces `values` (partition, value) and waits for every acknowledgement.
fn produce_all(b: &Broker, topic: &str, values: &[(i32, String)]) -> Vec<Acked> {
    let (p, acked) = ack_producer(b);
    for (partition, v) in values {
        p.send(
            BaseRecord::<(), str>::to(topic)
                .partition(*partition)
                .payload(v),
        )
        .unwrap_or_else(|(e, _)| panic!("produce {v}: {e}"));
    }
    p.flush(TIMEOUT).expect("flush");
    let failed = p.context().failed.lock().unwrap().clone();
    assert!(failed.is_empty(), "deliveries failed: {failed:?}");
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), values.len(), "every record acknowledged");
    acked
}

/// Produces to every partition of a topic in turn, a record every few
/// milliseconds, from its own thread, until stopped.
struct Feed {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<Acked>>>,
    thread: Option<JoinHandle<Vec<String>>>,
}

impl Feed {
    fn start(b: &Broker, topic: &str, partitions: i32) -> Feed {
        let (p, acked) = ack_producer(b);
        let stop = Arc::new(AtomicBool::new(false));
        let topic = topic.to_string();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut i: u64 = 0;
            while !flag.load(Ordering::Relaxed) {
                let value = format!("r{i}");
                let partition = (i % partitions as u64) as i32;
                match p.send(
                    BaseRecord::<(), str>::to(&topic)
                        .partition(partition)
                        .payload(&value),
                ) {
                    Ok(()) => i += 1,
                    Err((e, _)) => eprintln!("feed: send {value}: {e}; retrying"),
                }
                // Pacing, so records keep arriving while membership changes.
                std::thread::sleep(Duration::from_millis(4));
            }
            p.flush(Duration::from_secs(30)).expect("feed flush");
            let failed = p.context().failed.lock().unwrap().clone();
            failed
        });
        Feed {
            stop,
            acked,
            thread: Some(thread),
        }
    }

    fn acked_count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Stops producing; every record sent is acknowledged (or the test fails).
    fn finish(mut self) -> Vec<Acked> {
        self.stop.store(true, Ordering::Relaxed);
        let failed = self.thread.take().unwrap().join().expect("feed thread");
        assert!(failed.is_empty(), "deliveries failed: {failed:?}");
        let acked = self.acked.lock().unwrap().clone();
        acked
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------
// In-process members and what they saw

/// A partition owned by a member from `start` until `end` (None: still).
#[derive(Debug, Clone)]
struct Ownership {
    member: String,
    partition: i32,
    start: Instant,
    end: Option<Instant>,
}

/// One record a member consumed.
#[derive(Debug, Clone)]
struct Consumed {
    member: String,
    partition: i32,
    offset: i64,
    value: String,
    at: Instant,
}

/// What every in-process member saw, shared with their rebalance callbacks.
#[derive(Default)]
struct Ledger {
    owned: Vec<Ownership>,
    consumed: Vec<Consumed>,
    /// Oddities seen inside callbacks, where panicking would abort.
    anomalies: Vec<String>,
}

impl Ledger {
    fn owned_by(&self, member: &str) -> BTreeSet<i32> {
        self.owned
            .iter()
            .filter(|o| o.member == member && o.end.is_none())
            .map(|o| o.partition)
            .collect()
    }

    fn summary(&self) -> String {
        let mut members: BTreeSet<&str> = self.owned.iter().map(|o| o.member.as_str()).collect();
        members.extend(self.consumed.iter().map(|c| c.member.as_str()));
        members
            .into_iter()
            .map(|m| {
                format!(
                    "{m} owns {:?} and consumed {}",
                    self.owned_by(m),
                    self.consumed.iter().filter(|c| c.member == m).count()
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn close_all(&mut self, member: &str, at: Instant) {
        for o in &mut self.owned {
            if o.member == member && o.end.is_none() {
                o.end = Some(at);
            }
        }
    }

    /// No partition owned by two members at once, and every record a member
    /// consumed came from a partition it owned at that moment.
    fn check_exclusive(&self) {
        self.check_single_owner();
        for c in &self.consumed {
            let owned = self.owned.iter().any(|o| {
                o.member == c.member
                    && o.partition == c.partition
                    && o.start <= c.at
                    && o.end.is_none_or(|e| c.at <= e)
            });
            assert!(
                owned,
                "{} consumed {}@{} ({}) while not owning partition {}",
                c.member, c.partition, c.offset, c.value, c.partition
            );
        }
    }

    /// No partition owned by two members at once (checked as the test goes).
    fn check_single_owner(&self) {
        assert!(
            self.anomalies.is_empty(),
            "rebalance callbacks saw: {:?}",
            self.anomalies
        );
        let now = Instant::now();
        let base = self.owned.iter().map(|o| o.start).min().unwrap_or(now);
        let at = |i: Option<Instant>| match i {
            Some(i) => format!("{:?}", i - base),
            None => "now".into(),
        };
        let mut by_partition: BTreeMap<i32, Vec<&Ownership>> = BTreeMap::new();
        for o in &self.owned {
            by_partition.entry(o.partition).or_default().push(o);
        }
        for (p, spans) in &by_partition {
            for (i, a) in spans.iter().enumerate() {
                for b in &spans[i + 1..] {
                    if a.member == b.member {
                        continue;
                    }
                    let (a_end, b_end) = (a.end.unwrap_or(now), b.end.unwrap_or(now));
                    assert!(
                        a_end <= b.start || b_end <= a.start,
                        "partition {p} had two owners at once: {} from {} to {} and {} from {} to {} (times since the first assignment)",
                        a.member,
                        at(Some(a.start)),
                        at(a.end),
                        b.member,
                        at(Some(b.start)),
                        at(b.end)
                    );
                }
            }
        }
    }
}

/// Records a member's assignments as they happen. Ownership starts before
/// the assignment takes effect and ends when the revocation is handed to
/// the application: from then on it processes nothing of the partition.
struct Tracker {
    member: String,
    topic: String,
    ledger: Arc<Mutex<Ledger>>,
}

impl ClientContext for Tracker {}

impl ConsumerContext for Tracker {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let now = Instant::now();
        let mut ledger = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
        match rebalance {
            Rebalance::Assign(tpl) => {
                for e in tpl.elements() {
                    if e.topic() != self.topic {
                        ledger
                            .anomalies
                            .push(format!("{} assigned {}", self.member, e.topic()));
                        continue;
                    }
                    if ledger.owned_by(&self.member).contains(&e.partition()) {
                        ledger.anomalies.push(format!(
                            "{} assigned partition {} it already owns",
                            self.member,
                            e.partition()
                        ));
                        continue;
                    }
                    ledger.owned.push(Ownership {
                        member: self.member.clone(),
                        partition: e.partition(),
                        start: now,
                        end: None,
                    });
                }
            }
            Rebalance::Revoke(tpl) => {
                for e in tpl.elements() {
                    let member = self.member.clone();
                    let open = ledger.owned.iter_mut().find(|o| {
                        o.member == member && o.partition == e.partition() && o.end.is_none()
                    });
                    match open {
                        Some(o) => o.end = Some(now),
                        None => ledger.anomalies.push(format!(
                            "{member} revoked partition {} it does not own",
                            e.partition()
                        )),
                    }
                }
            }
            Rebalance::Error(e) => eprintln!("{}: rebalance error {e}", self.member),
        }
    }
}

/// An in-process group member.
struct Member {
    name: String,
    consumer: Option<BaseConsumer<Tracker>>,
    ledger: Arc<Mutex<Ledger>>,
}

impl Member {
    fn start(
        b: &Broker,
        name: &str,
        group: &str,
        topic: &str,
        ledger: &Arc<Mutex<Ledger>>,
        extra: &[(&str, &str)],
    ) -> Member {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", b.bootstrap())
            .set("group.id", group)
            .set("client.id", name)
            .set("auto.offset.reset", "earliest")
            // Offsets are stored only for records the test has recorded, so
            // a commit never covers a record nobody saw.
            .set("enable.auto.offset.store", "false")
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "200");
        for (k, v) in extra {
            cfg.set(*k, *v);
        }
        let consumer: BaseConsumer<Tracker> = cfg
            .create_with_context(Tracker {
                member: name.to_string(),
                topic: topic.to_string(),
                ledger: ledger.clone(),
            })
            .unwrap();
        consumer.subscribe(&[topic]).unwrap();
        Member {
            name: name.to_string(),
            consumer: Some(consumer),
            ledger: ledger.clone(),
        }
    }

    fn consumer(&self) -> &BaseConsumer<Tracker> {
        self.consumer.as_ref().expect("member closed")
    }

    /// Polls once; a record is recorded, then its offset stored for commit.
    fn poll(&self, timeout: Duration) {
        let Some(consumer) = &self.consumer else {
            return;
        };
        match consumer.poll(timeout) {
            None => {}
            Some(Err(e)) => eprintln!("{}: {e}", self.name),
            Some(Ok(m)) => {
                let at = Instant::now();
                self.ledger.lock().unwrap().consumed.push(Consumed {
                    member: self.name.clone(),
                    partition: m.partition(),
                    offset: m.offset(),
                    value: String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                    at,
                });
                // Fails only if the partition was revoked meanwhile; the
                // record then stays uncommitted and is consumed again.
                let _ = consumer.store_offset_from_message(&m);
            }
        }
    }

    fn owned(&self) -> BTreeSet<i32> {
        self.ledger.lock().unwrap().owned_by(&self.name)
    }

    /// The assignment as the client reports it.
    fn assignment(&self) -> BTreeSet<i32> {
        self.consumer()
            .assignment()
            .unwrap()
            .elements()
            .iter()
            .map(|e| e.partition())
            .collect()
    }

    /// Whether its position in every partition it is assigned is `end`
    /// (so a commit of its state commits exactly that).
    fn caught_up(&self, end: i64) -> bool {
        let positions = self.consumer().position().unwrap();
        let assigned = self.assignment();
        !assigned.is_empty()
            && assigned.iter().all(|p| {
                positions
                    .find_partition(&self.consumer().context().topic, *p)
                    .is_some_and(|e| e.offset() == Offset::Offset(end))
            })
    }

    /// Closes the consumer (revoke, final commit, LeaveGroup). Whatever it
    /// still owned ends here at the latest.
    fn close(&mut self) {
        drop(self.consumer.take());
        let now = Instant::now();
        self.ledger.lock().unwrap().close_all(&self.name, now);
    }
}

/// Polls `members` until `done` holds; panics after `secs` naming `what`.
fn pump_until(
    members: &[&Member],
    ledger: &Arc<Mutex<Ledger>>,
    secs: u64,
    what: &str,
    mut done: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        ledger.lock().unwrap().check_single_owner();
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}: {}",
            ledger.lock().unwrap().summary()
        );
        for m in members {
            m.poll(Duration::from_millis(20));
        }
        if members.is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

// ---------------------------------------------------------------------------
// kcat as a group member

/// `kcat -G` consuming in a group, its records read from its stdout.
struct Kcat {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
    stderr: PathBuf,
}

impl Kcat {
    fn start(b: &Broker, group: &str, topic: &str, extra: &[&str], stderr: &Path) -> Kcat {
        if Command::new("kcat").arg("-V").output().is_err() {
            panic!("kcat is not installed (Debian package `kcat`; scripts/test installs it)");
        }
        let mut cmd = Command::new("kcat");
        cmd.args(["-b", &b.bootstrap(), "-G", group, topic, "-q", "-u"])
            .args(["-f", "%p %o %s\\n"])
            .args(["-X", "client.id=kcat"])
            .args(["-X", "session.timeout.ms=6000"])
            .args(["-X", "heartbeat.interval.ms=500"])
            .args(["-X", "auto.offset.reset=earliest"])
            // kcat prints after librdkafka stores a record's offset; with
            // auto-commit a kill -9 in between could commit a record that
            // was never printed. Without commits its partitions resume from
            // the previous owner's commit.
            .args(["-X", "enable.auto.commit=false"]);
        for x in extra {
            cmd.args(["-X", x]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(stderr).unwrap()))
            .spawn()
            .expect("start kcat");
        let out = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            let mut out = BufReader::new(out);
            let mut line = String::new();
            // Unbuffered kcat writes a line in pieces: one cut short by the
            // kill has no newline and is not a record it printed.
            while matches!(out.read_line(&mut line), Ok(n) if n > 0) {
                if let Some(l) = line.strip_suffix('\n') {
                    sink.lock().unwrap().push(l.to_string());
                }
                line.clear();
            }
        });
        Kcat {
            child,
            lines,
            reader: Some(reader),
            stderr: stderr.to_path_buf(),
        }
    }

    /// SIGKILL; returns once everything it printed has been read.
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
    }

    /// The records it printed: (partition, offset, value).
    fn records(&self) -> Vec<Acked> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| {
                let mut f = l.splitn(3, ' ');
                let (p, o, v) = (f.next(), f.next(), f.next());
                match (p.map(str::parse), o.map(str::parse), v) {
                    (Some(Ok(p)), Some(Ok(o)), Some(v)) => (p, o, v.to_string()),
                    _ => panic!(
                        "unexpected kcat output line {l:?}; stderr:\n{}",
                        std::fs::read_to_string(&self.stderr).unwrap_or_default()
                    ),
                }
            })
            .collect()
    }
}

impl Drop for Kcat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// 1. Membership changes under load

/// Three members share a 12-partition topic while records flow: kcat and
/// A start, B joins late, kcat is killed, A closes. Every acknowledged
/// record is consumed by someone, and no partition is owned by two of the
/// in-process members at once.
fn membership_changes(strategy: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(
        &dir.path().join("data"),
        &["--group-initial-rebalance-delay-ms", "0"],
    );
    let topic = "membership";
    let group = "membership-group";
    create_topic(&broker, topic, 12);

    let mut extra = vec![("heartbeat.interval.ms", "500")];
    let mut kcat_extra = Vec::new();
    let strategy_conf;
    if let Some(s) = strategy {
        extra.push(("partition.assignment.strategy", s));
        strategy_conf = format!("partition.assignment.strategy={s}");
        kcat_extra.push(strategy_conf.as_str());
    }
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let feed = Feed::start(&broker, topic, 12);
    let progressed = |since: usize| {
        let deadline = Instant::now() + TIMEOUT;
        while feed.acked_count() < since + 50 {
            assert!(Instant::now() < deadline, "the producer stalled");
            std::thread::sleep(Duration::from_millis(10));
        }
        feed.acked_count()
    };
    let mut mark = progressed(0);

    let mut kcat = Kcat::start(
        &broker,
        group,
        topic,
        &kcat_extra,
        &dir.path().join("kcat.stderr"),
    );
    let mut a = Member::start(&broker, "A", group, topic, &ledger, &extra);
    // With two members each owns six; A owning exactly six means kcat has joined.
    pump_until(&[&a], &ledger, 30, "A and kcat to share the topic", || {
        a.owned().len() == 6
    });
    mark = progressed(mark);

    let b = Member::start(&broker, "B", group, topic, &ledger, &extra);
    pump_until(
        &[&a, &b],
        &ledger,
        30,
        "A, B and kcat to own four each",
        || a.owned().len() == 4 && b.owned().len() == 4,
    );
    assert_eq!(a.assignment(), a.owned(), "A's client-side assignment");
    assert_eq!(b.assignment(), b.owned(), "B's client-side assignment");
    mark = progressed(mark);

    kcat.kill9();
    assert!(
        !kcat.records().is_empty(),
        "kcat consumed nothing while it was a member; stderr:\n{}",
        std::fs::read_to_string(&kcat.stderr).unwrap_or_default()
    );
    // Its session (6 s) lapses; A and B split the topic.
    pump_until(
        &[&a, &b],
        &ledger,
        40,
        "A and B to take kcat's partitions after its session expired",
        || a.owned().len() == 6 && b.owned().len() == 6,
    );
    mark = progressed(mark);

    a.close();
    pump_until(&[&b], &ledger, 30, "B to own every partition", || {
        b.owned().len() == 12
    });
    progressed(mark);

    let acked = feed.finish();
    let kcat_records = kcat.records();
    let seen = |ledger: &Ledger| -> BTreeMap<(i32, i64), String> {
        ledger
            .consumed
            .iter()
            .map(|c| ((c.partition, c.offset), c.value.clone()))
            .chain(kcat_records.iter().map(|(p, o, v)| ((*p, *o), v.clone())))
            .collect()
    };
    pump_until(
        &[&b],
        &ledger,
        30,
        "every acknowledged record to be consumed",
        || {
            let seen = seen(&ledger.lock().unwrap());
            acked.iter().all(|(p, o, _)| seen.contains_key(&(*p, *o)))
        },
    );
    let ledger = ledger.lock().unwrap();
    let seen = seen(&ledger);
    for (p, o, v) in &acked {
        assert_eq!(
            seen.get(&(*p, *o)),
            Some(v),
            "record {p}@{o} came back with another value"
        );
    }
    ledger.check_exclusive();
    let by_a = ledger.consumed.iter().filter(|c| c.member == "A").count();
    let by_b = ledger.consumed.iter().filter(|c| c.member == "B").count();
    assert!(
        by_a > 0 && by_b > 0,
        "both in-process members consumed (A {by_a}, B {by_b})"
    );
    eprintln!(
        "{} records acknowledged; consumed by A {by_a}, B {by_b}, kcat {}",
        acked.len(),
        kcat_records.len()
    );
}

#[test]
fn classic_group_survives_join_leave_and_kill_eager() {
    membership_changes(None);
}

#[test]
fn classic_group_survives_join_leave_and_kill_cooperative_sticky() {
    membership_changes(Some("cooperative-sticky"));
}

/// Members that sit idle through a broker restart keep their generation
/// and partitions: the coordinator restores the group's membership from the
/// catalog, so their heartbeats go on succeeding and nothing is reassigned.
/// A member joining afterwards shares the topic with them through one
/// ordinary rebalance. Run with Kafka's default initial rebalance delay and
/// without one: the first member back never gets partitions another holds.
#[test]
fn idle_classic_members_keep_their_partitions_across_a_broker_restart() {
    restart_with_members(None);
}

#[test]
fn idle_classic_members_keep_their_partitions_without_initial_delay() {
    restart_with_members(Some("0"));
}

fn restart_with_members(initial_delay_ms: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let flags: Vec<&str> = match initial_delay_ms {
        Some(ms) => vec!["--group-initial-rebalance-delay-ms", ms],
        None => vec![],
    };
    let mut broker = Broker::start(&dir.path().join("data"), &flags);
    let (topic, group) = ("restart", "restart-group");
    create_topic(&broker, topic, 6);
    let first: Vec<(i32, String)> = (0..60).map(|i| (i % 6, format!("old{i}"))).collect();
    let mut acked = produce_all(&broker, topic, &first);

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    // Committed by hand before the restart, so no commit after it tells
    // the members anything: only their heartbeats can.
    let conf = [
        ("enable.auto.commit", "false"),
        ("heartbeat.interval.ms", "500"),
        ("session.timeout.ms", "6000"),
    ];
    let a = Member::start(&broker, "A", group, topic, &ledger, &conf);
    let b = Member::start(&broker, "B", group, topic, &ledger, &conf);
    let distinct = |ledger: &Ledger| -> BTreeSet<(i32, i64)> {
        ledger
            .consumed
            .iter()
            .map(|c| (c.partition, c.offset))
            .collect()
    };
    pump_until(
        &[&a, &b],
        &ledger,
        30,
        "A and B to own three partitions each and consume all 60 records",
        || {
            a.owned().len() == 3
                && b.owned().len() == 3
                && distinct(&ledger.lock().unwrap()).len() == 60
                && a.caught_up(10)
                && b.caught_up(10)
        },
    );
    for m in [&a, &b] {
        m.consumer()
            .commit_consumer_state(CommitMode::Sync)
            .unwrap_or_else(|e| panic!("{} commit: {e}", m.name));
    }

    let before = ledger.lock().unwrap().consumed.len();
    broker.kill9();
    let restarted = Instant::now();
    broker.restart();
    // Three heartbeat intervals after the restart nobody was reassigned:
    // A and B still own the same three partitions each, since before it.
    let calm = Instant::now() + Duration::from_millis(1500);
    pump_until(&[&a, &b], &ledger, 30, "1.5 s to pass", || {
        Instant::now() > calm
    });
    {
        let l = ledger.lock().unwrap();
        for m in ["A", "B"] {
            assert_eq!(
                l.owned_by(m).len(),
                3,
                "{m} lost partitions: {}",
                l.summary()
            );
            assert!(
                !l.owned.iter().any(|o| o.member == m && o.start > restarted),
                "{m} was reassigned after the restart: {}",
                l.summary()
            );
        }
    }

    let c = Member::start(&broker, "C", group, topic, &ledger, &conf);
    pump_until(
        &[&a, &b, &c],
        &ledger,
        30,
        "A, B and C to own two each",
        || a.owned().len() == 2 && b.owned().len() == 2 && c.owned().len() == 2,
    );
    let second: Vec<(i32, String)> = (0..60).map(|i| (i % 6, format!("new{i}"))).collect();
    acked.extend(produce_all(&broker, topic, &second));
    pump_until(
        &[&a, &b, &c],
        &ledger,
        30,
        "every acknowledged record to be consumed",
        || distinct(&ledger.lock().unwrap()).len() == 120,
    );
    let ledger = ledger.lock().unwrap();
    let seen: BTreeSet<(i32, i64, String)> = ledger
        .consumed
        .iter()
        .map(|c| (c.partition, c.offset, c.value.clone()))
        .collect();
    assert_eq!(seen, acked.into_iter().collect::<BTreeSet<_>>());
    // Everything was committed before the restart: nothing old comes again.
    let again: Vec<(i32, i64)> = ledger.consumed[before..]
        .iter()
        .filter(|c| c.offset < 10)
        .map(|c| (c.partition, c.offset))
        .collect();
    assert!(
        again.is_empty(),
        "records below the committed offsets came again: {again:?}"
    );
    ledger.check_exclusive();
}

/// Static members (KIP-345) restart without a rebalance: a member closed
/// and started again with the same `group.instance.id` gets its partitions
/// back, and the other member keeps consuming without giving anything up.
/// Both the leader and a follower restart.
#[test]
fn static_members_restart_without_a_rebalance() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(
        &dir.path().join("data"),
        &["--group-initial-rebalance-delay-ms", "0"],
    );
    let (topic, group) = ("static", "static-group");
    create_topic(&broker, topic, 6);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let conf = |instance: &'static str| {
        [
            ("group.instance.id", instance),
            ("heartbeat.interval.ms", "500"),
            ("session.timeout.ms", "10000"),
        ]
    };
    // A first, then B: a rebalance happens before the restarts, so the
    // members' join metadata has a history.
    let mut a = Member::start(&broker, "A", group, topic, &ledger, &conf("static-a"));
    pump_until(&[&a], &ledger, 30, "A to own every partition", || {
        a.owned().len() == 6
    });
    let mut b = Member::start(&broker, "B", group, topic, &ledger, &conf("static-b"));
    pump_until(&[&a, &b], &ledger, 30, "A and B to own three each", || {
        a.owned().len() == 3 && b.owned().len() == 3
    });
    let (a_parts, b_parts) = (a.owned(), b.owned());
    let spans = |ledger: &Arc<Mutex<Ledger>>, m: &str| {
        ledger
            .lock()
            .unwrap()
            .owned
            .iter()
            .filter(|o| o.member == m)
            .count()
    };

    let mut sent = 0;
    let mut produce_and_consume = |members: &[&Member], what: &str| {
        let batch: Vec<(i32, String)> = (0..12).map(|i| (i % 6, format!("v{sent}-{i}"))).collect();
        sent += 1;
        let acked = produce_all(&broker, topic, &batch);
        pump_until(members, &ledger, 30, what, || {
            let l = ledger.lock().unwrap();
            acked.iter().all(|(p, o, _)| {
                l.consumed
                    .iter()
                    .any(|c| c.partition == *p && c.offset == *o)
            })
        });
    };
    produce_and_consume(&[&a, &b], "A and B to consume the first batch");

    // The follower restarts (static members send no LeaveGroup on close).
    let b_spans = spans(&ledger, "B");
    let a_spans = spans(&ledger, "A");
    b.close();
    let b2 = Member::start(&broker, "B2", group, topic, &ledger, &conf("static-b"));
    pump_until(
        &[&a, &b2],
        &ledger,
        30,
        "B2 (B restarted) to be assigned",
        || !b2.owned().is_empty(),
    );
    assert_eq!(b2.owned(), b_parts, "B2 gets B's partitions back");
    produce_and_consume(&[&a, &b2], "A and B2 to consume the second batch");
    assert_eq!(a.owned(), a_parts);
    assert_eq!(
        spans(&ledger, "A"),
        a_spans,
        "A gave nothing up while B restarted"
    );
    assert_eq!(spans(&ledger, "B"), b_spans);

    // The leader restarts.
    a.close();
    let a2 = Member::start(&broker, "A2", group, topic, &ledger, &conf("static-a"));
    pump_until(
        &[&a2, &b2],
        &ledger,
        30,
        "A2 (A restarted) to be assigned",
        || !a2.owned().is_empty(),
    );
    assert_eq!(a2.owned(), a_parts, "A2 gets A's partitions back");
    produce_and_consume(&[&a2, &b2], "A2 and B2 to consume the third batch");
    assert_eq!(b2.owned(), b_parts);
    assert_eq!(
        spans(&ledger, "B2"),
        b_parts.len(),
        "B2 gave nothing up while A restarted"
    );
    ledger.lock().unwrap().check_exclusive();
}

// ---------------------------------------------------------------------------
// 2. Committed offsets across a restart

fn committed_map(tpl: &TopicPartitionList) -> BTreeMap<i32, Offset> {
    tpl.elements()
        .iter()
        .map(|e| (e.partition(), e.offset()))
        .collect()
}

#[test]
fn group_resumes_from_committed_offsets_after_broker_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(
        &dir.path().join("data"),
        &["--group-initial-rebalance-delay-ms", "0"],
    );
    let (topic, group) = ("resume", "resume-group");
    create_topic(&broker, topic, 3);
    let first: Vec<(i32, String)> = (0..30).map(|i| (i % 3, format!("old{i}"))).collect();
    produce_all(&broker, topic, &first);

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let no_auto = [("enable.auto.commit", "false")];
    let mut c1 = Member::start(&broker, "C1", group, topic, &ledger, &no_auto);
    pump_until(&[&c1], &ledger, 30, "C1 to consume the first 30", || {
        ledger.lock().unwrap().consumed.len() == 30
    });
    c1.consumer()
        .commit_consumer_state(CommitMode::Sync)
        .expect("synchronous commit");
    let committed = committed_map(&c1.consumer().committed(TIMEOUT).unwrap());
    let ten: BTreeMap<i32, Offset> = (0..3).map(|p| (p, Offset::Offset(10))).collect();
    assert_eq!(committed, ten, "committed offsets before the restart");
    c1.close();

    broker.kill9();
    broker.restart();

    let second: Vec<(i32, String)> = (0..15).map(|i| (i % 3, format!("new{i}"))).collect();
    let acked = produce_all(&broker, topic, &second);
    assert!(acked.iter().all(|(_, o, _)| (10..15).contains(o)));

    let ledger2 = Arc::new(Mutex::new(Ledger::default()));
    let c2 = Member::start(&broker, "C2", group, topic, &ledger2, &no_auto);
    let mut tpl = TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition(topic, p);
    }
    let after = committed_map(&c2.consumer().committed_offsets(tpl, TIMEOUT).unwrap());
    assert_eq!(after, ten, "committed offsets after the restart");
    pump_until(
        &[&c2],
        &ledger2,
        30,
        "C2 to consume the 15 new records",
        || {
            ledger2
                .lock()
                .unwrap()
                .consumed
                .iter()
                .filter(|c| c.value.starts_with("new"))
                .count()
                == 15
        },
    );
    // Records of a partition arrive in order: had C2 started below the
    // committed offsets, old records would have come before the new ones.
    let ledger2 = ledger2.lock().unwrap();
    let got: BTreeSet<(i32, i64, String)> = ledger2
        .consumed
        .iter()
        .map(|c| (c.partition, c.offset, c.value.clone()))
        .collect();
    let want: BTreeSet<(i32, i64, String)> = acked.into_iter().collect();
    assert_eq!(got, want, "exactly the records produced after the commit");
    assert_eq!(ledger2.consumed.len(), 15, "no record delivered twice");
    drop(ledger2);
    c2.consumer()
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit after the restart");
    let fifteen: BTreeMap<i32, Offset> = (0..3).map(|p| (p, Offset::Offset(15))).collect();
    assert_eq!(
        committed_map(&c2.consumer().committed(TIMEOUT).unwrap()),
        fifteen
    );
}

// ---------------------------------------------------------------------------
// 3. KIP-848 consumers

#[test]
fn consumer_protocol_members_share_and_hand_over_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(
        &dir.path().join("data"),
        &["--group-consumer-heartbeat-interval-ms", "500"],
    );
    let (topic, group) = ("kip848", "kip848-group");
    create_topic(&broker, topic, 6);
    let first: Vec<(i32, String)> = (0..60).map(|i| (i % 6, format!("old{i}"))).collect();
    produce_all(&broker, topic, &first);

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let conf = [
        ("group.protocol", "consumer"),
        ("enable.auto.commit", "false"),
    ];
    let mut c1 = Member::start(&broker, "C1", group, topic, &ledger, &conf);
    let c2 = Member::start(&broker, "C2", group, topic, &ledger, &conf);
    let all: BTreeSet<i32> = (0..6).collect();
    pump_until(
        &[&c1, &c2],
        &ledger,
        30,
        "C1 and C2 to own three partitions each and consume all 60 records",
        || {
            let (a1, a2) = (c1.assignment(), c2.assignment());
            let distinct: BTreeSet<(i32, i64)> = ledger
                .lock()
                .unwrap()
                .consumed
                .iter()
                .map(|c| (c.partition, c.offset))
                .collect();
            // A partition may move after its first owner read it; its new
            // owner reads it again (nothing was committed yet).
            a1.len() == 3
                && a2.len() == 3
                && distinct.len() == 60
                && c1.caught_up(10)
                && c2.caught_up(10)
        },
    );
    let (a1, a2) = (c1.assignment(), c2.assignment());
    assert!(a1.is_disjoint(&a2), "assignments overlap: {a1:?} {a2:?}");
    assert_eq!(
        a1.union(&a2).copied().collect::<BTreeSet<_>>(),
        all,
        "together they own every partition"
    );

    for c in [&c1, &c2] {
        c.consumer()
            .commit_consumer_state(CommitMode::Sync)
            .unwrap_or_else(|e| panic!("{} commit: {e}", c.name));
        let committed = committed_map(&c.consumer().committed(TIMEOUT).unwrap());
        let want: BTreeMap<i32, Offset> = c
            .assignment()
            .into_iter()
            .map(|p| (p, Offset::Offset(10)))
            .collect();
        assert_eq!(committed, want, "{}'s committed offsets", c.name);
    }

    // Everything consumed from here on must come after the commits.
    let before = ledger.lock().unwrap().consumed.len();
    c1.close();
    pump_until(&[&c2], &ledger, 30, "C2 to own all six partitions", || {
        c2.assignment() == all
    });
    let second: Vec<(i32, String)> = (0..30).map(|i| (i % 6, format!("new{i}"))).collect();
    let acked = produce_all(&broker, topic, &second);
    pump_until(
        &[&c2],
        &ledger,
        30,
        "C2 to consume the 30 new records",
        || {
            ledger
                .lock()
                .unwrap()
                .consumed
                .iter()
                .filter(|c| c.member == "C2" && c.value.starts_with("new"))
                .count()
                == 30
        },
    );
    {
        let ledger = ledger.lock().unwrap();
        // C1's partitions resume from C1's commit: nothing old comes again.
        let late: Vec<&Consumed> = ledger.consumed[before..].iter().collect();
        assert!(
            late.iter().all(|c| c.offset >= 10),
            "records below the committed offsets came again: {:?}",
            late.iter()
                .filter(|c| c.offset < 10)
                .map(|c| (c.partition, c.offset))
                .collect::<Vec<_>>()
        );
        let got: BTreeSet<(i32, i64, String)> = late
            .iter()
            .map(|c| (c.partition, c.offset, c.value.clone()))
            .collect();
        assert_eq!(got, acked.into_iter().collect::<BTreeSet<_>>());
        ledger.check_exclusive();
    }
    c2.consumer()
        .commit_consumer_state(CommitMode::Sync)
        .expect("C2 commit");
    let fifteen: BTreeMap<i32, Offset> = (0..6).map(|p| (p, Offset::Offset(15))).collect();
    assert_eq!(
        committed_map(&c2.consumer().committed(TIMEOUT).unwrap()),
        fifteen
    );
}

/// A KIP-848 member spoken raw, as a misbehaving client would.
struct RawMember {
    client: RawClient,
    group: String,
    id: String,
    epoch: i32,
    /// What the coordinator last assigned it (topic id, partitions).
    assigned: Vec<consumer_group_heartbeat_response::TopicPartitions>,
}

impl RawMember {
    fn join(b: &Broker, group: &str, id: &str, topic: &str) -> RawMember {
        let mut m = RawMember {
            client: RawClient::connect(&b.bootstrap()),
            group: group.into(),
            id: id.into(),
            epoch: 0,
            assigned: Vec::new(),
        };
        let r = m.beat_with(0, Some(topic), Some(Vec::new()));
        assert_eq!(code(r.error_code), None, "join: {:?}", r.error_message);
        m
    }

    fn request(
        &mut self,
        epoch: i32,
        topic: Option<&str>,
        owned: Option<Vec<consumer_group_heartbeat_response::TopicPartitions>>,
    ) -> ConsumerGroupHeartbeatResponse {
        let body = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(gid(&self.group))
            .with_member_id(s(&self.id))
            .with_member_epoch(epoch)
            .with_rebalance_timeout_ms(5000)
            .with_subscribed_topic_names(topic.map(|t| vec![TopicName(s(t))]))
            .with_topic_partitions(owned.map(|o| {
                o.into_iter()
                    .map(|tp| {
                        consumer_group_heartbeat_request::TopicPartitions::default()
                            .with_topic_id(tp.topic_id)
                            .with_partitions(tp.partitions)
                    })
                    .collect()
            }));
        match self.client.request(
            ApiKey::ConsumerGroupHeartbeat,
            1,
            RequestKind::ConsumerGroupHeartbeat(body),
        ) {
            ResponseKind::ConsumerGroupHeartbeat(r) => r,
            other => panic!("{other:?}"),
        }
    }

    /// A heartbeat; a new assignment is taken as given at once.
    fn beat_with(
        &mut self,
        epoch: i32,
        topic: Option<&str>,
        owned: Option<Vec<consumer_group_heartbeat_response::TopicPartitions>>,
    ) -> ConsumerGroupHeartbeatResponse {
        let r = self.request(epoch, topic, owned);
        if code(r.error_code).is_none() {
            self.epoch = r.member_epoch;
            if let Some(a) = &r.assignment {
                self.assigned = a.topic_partitions.clone();
            }
        }
        r
    }

    fn partitions(&self) -> BTreeSet<i32> {
        self.assigned
            .iter()
            .flat_map(|tp| tp.partitions.iter().copied())
            .collect()
    }
}

/// KIP-848 safety and liveness against a misbehaving member: one that
/// never gives partitions up loses them only when its rebalance timeout
/// fences it, and one that stops heartbeating only when its session
/// expires; until then the well-behaved librdkafka member gets none of
/// them. Also the protocol's error codes, raw.
#[test]
fn consumer_protocol_fences_members_that_hold_on_or_go_silent() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(
        &dir.path().join("data"),
        &[
            "--group-consumer-heartbeat-interval-ms",
            "500",
            "--group-consumer-session-timeout-ms",
            "3000",
        ],
    );
    let (topic, group) = ("fence", "fence-group");
    create_topic(&broker, topic, 4);
    let all: BTreeSet<i32> = (0..4).collect();

    let mut r = RawMember::join(&broker, group, "raw-member-1", topic);
    assert_eq!(r.epoch, 1);
    assert_eq!(r.partitions(), all, "a lone member is assigned everything");
    let owned_all = r.assigned.clone();
    let ok = r.beat_with(1, None, Some(owned_all.clone()));
    assert_eq!(code(ok.error_code), None);
    assert!(
        ok.assignment.is_none(),
        "an unchanged assignment is not resent"
    );

    // Error codes.
    let fenced = r.request(7, None, Some(owned_all.clone()));
    assert_eq!(code(fenced.error_code), Some(ErrorCode::FencedMemberEpoch));
    let mut stranger = RawMember {
        client: RawClient::connect(&broker.bootstrap()),
        group: group.into(),
        id: "nobody".into(),
        epoch: 0,
        assigned: Vec::new(),
    };
    let unknown = stranger.request(1, None, None);
    assert_eq!(code(unknown.error_code), Some(ErrorCode::UnknownMemberId));
    stranger.id.clear();
    let empty = stranger.request(0, Some(topic), Some(Vec::new()));
    assert_eq!(
        code(empty.error_code),
        Some(ErrorCode::InvalidRequest),
        "v1 members choose their own id"
    );
    let commit_at = |client: &mut RawClient, epoch: i32| {
        let body = OffsetCommitRequest::default()
            .with_group_id(gid(group))
            .with_member_id(s("raw-member-1"))
            .with_generation_id_or_member_epoch(epoch)
            .with_topics(vec![
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partitions(vec![
                        offset_commit_request::OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(0)
                            .with_committed_leader_epoch(-1),
                    ]),
            ]);
        match client.request(ApiKey::OffsetCommit, 9, RequestKind::OffsetCommit(body)) {
            ResponseKind::OffsetCommit(resp) => code(resp.topics[0].partitions[0].error_code),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        commit_at(&mut stranger.client, 0),
        Some(ErrorCode::StaleMemberEpoch)
    );
    assert_eq!(commit_at(&mut stranger.client, 1), None);

    // A librdkafka member joins; the raw member is told to give two
    // partitions up, but keeps reporting all four as its own.
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let conf = [
        ("group.protocol", "consumer"),
        ("enable.auto.commit", "false"),
    ];
    let c = Member::start(&broker, "C", group, topic, &ledger, &conf);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last_ok_sent = Instant::now();
    let mut told_to_revoke = false;
    loop {
        assert!(
            Instant::now() < deadline,
            "the member that never gives partitions up was not fenced: {}",
            ledger.lock().unwrap().summary()
        );
        for _ in 0..10 {
            c.poll(Duration::from_millis(20));
        }
        let sent = Instant::now();
        let resp = r.request(1, None, Some(owned_all.clone()));
        match code(resp.error_code) {
            None => {
                last_ok_sent = sent;
                assert_eq!(resp.member_epoch, 1, "it keeps its epoch while revoking");
                if let Some(a) = &resp.assignment {
                    let keep: BTreeSet<i32> = a
                        .topic_partitions
                        .iter()
                        .flat_map(|tp| tp.partitions.iter().copied())
                        .collect();
                    assert_eq!(keep.len(), 2, "told to keep two: {keep:?}");
                    told_to_revoke = true;
                }
            }
            Some(ErrorCode::UnknownMemberId | ErrorCode::FencedMemberEpoch) => break,
            other => panic!("heartbeat of the member holding on: {other:?}"),
        }
    }
    assert!(
        told_to_revoke,
        "the member was fenced without being asked to revoke"
    );
    pump_until(&[&c], &ledger, 30, "C to own every partition", || {
        c.owned() == all
    });
    let first_start = |ledger: &Arc<Mutex<Ledger>>, after: Instant| {
        ledger
            .lock()
            .unwrap()
            .owned
            .iter()
            .filter(|o| o.member == "C" && o.start > after)
            .map(|o| o.start)
            .min()
    };
    let c_start = first_start(&ledger, Instant::now() - Duration::from_secs(3600)).unwrap();
    assert!(
        c_start > last_ok_sent,
        "C was assigned partitions while their owner was still a member"
    );

    // A second raw member joins and, once C lets two go, gets them; then it
    // goes silent. C gets them back only after its session (3 s) expired.
    let mut r2 = RawMember::join(&broker, group, "raw-member-2", topic);
    let deadline = Instant::now() + Duration::from_secs(30);
    while r2.partitions().len() != 2 {
        assert!(
            Instant::now() < deadline,
            "the second raw member never got two partitions (has {:?}): {}",
            r2.partitions(),
            ledger.lock().unwrap().summary()
        );
        for _ in 0..10 {
            c.poll(Duration::from_millis(20));
        }
        let owned = r2.assigned.clone();
        let epoch = r2.epoch;
        let resp = r2.beat_with(epoch, None, Some(owned));
        assert_eq!(code(resp.error_code), None, "{:?}", resp.error_message);
    }
    let r2_parts = r2.partitions();
    let owned = r2.assigned.clone();
    let epoch = r2.epoch;
    let last_beat = Instant::now();
    assert_eq!(
        code(r2.beat_with(epoch, None, Some(owned)).error_code),
        None
    );
    assert!(
        c.owned().is_disjoint(&r2_parts),
        "C owns {:?}, the raw member {r2_parts:?}",
        c.owned()
    );
    pump_until(
        &[&c],
        &ledger,
        30,
        "C to take the silent member's partitions",
        || c.owned() == all,
    );
    let back = first_start(&ledger, last_beat).unwrap();
    assert!(
        back >= last_beat + Duration::from_secs(3),
        "C got the silent member's partitions {:?} after its last heartbeat, before its 3 s session ended",
        back - last_beat
    );
    ledger.lock().unwrap().check_exclusive();
}

/// The consumer protocol follows topic changes on the coordinator's side:
/// partitions added to a subscribed topic, and a topic created later that
/// matches a regex subscription, are assigned and consumed.
#[test]
fn consumer_protocol_follows_new_partitions_and_regex_topics() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(
        &dir.path().join("data"),
        &["--group-consumer-heartbeat-interval-ms", "500"],
    );
    create_topic(&broker, "rx-a", 2);
    create_topic(&broker, "unrelated", 1);
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "rx-group")
        .set("group.protocol", "consumer")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("topic.metadata.refresh.interval.ms", "1000");
    let consumer: BaseConsumer = cfg.create().unwrap();
    consumer.subscribe(&["^rx-.*"]).unwrap();
    let assigned = || -> BTreeSet<(String, i32)> {
        consumer
            .assignment()
            .unwrap()
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect()
    };
    let wait_for = |want: BTreeSet<(String, i32)>, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while assigned() != want {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: assigned {:?}",
                assigned()
            );
            if let Some(Err(e)) = consumer.poll(Duration::from_millis(50)) {
                eprintln!("C: {e}");
            }
        }
    };
    let tp = |t: &str, p: i32| (t.to_string(), p);
    wait_for(
        BTreeSet::from([tp("rx-a", 0), tp("rx-a", 1)]),
        "the regex's one topic",
    );
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = rt
        .block_on(admin.create_partitions(
            [&rdkafka::admin::NewPartitions::new("rx-a", 3)],
            &AdminOptions::new(),
        ))
        .unwrap();
    assert!(r[0].is_ok(), "{:?}", r[0]);
    wait_for(
        BTreeSet::from([tp("rx-a", 0), tp("rx-a", 1), tp("rx-a", 2)]),
        "the added partition",
    );
    create_topic(&broker, "rx-b", 1);
    wait_for(
        BTreeSet::from([tp("rx-a", 0), tp("rx-a", 1), tp("rx-a", 2), tp("rx-b", 0)]),
        "the new topic matching the regex",
    );
    let acked = produce_all(&broker, "rx-b", &[(0, "late".to_string())]);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) if m.topic() == "rx-b" => {
                assert_eq!((m.partition(), m.offset()), (acked[0].0, acked[0].1));
                break;
            }
            Some(Ok(_)) | None => {}
            Some(Err(e)) => eprintln!("C: {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "the record produced to rx-b never arrived"
        );
    }
}

// ---------------------------------------------------------------------------
// 4. Classic protocol error semantics, raw

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.into())
}

fn gid(x: &str) -> GroupId {
    GroupId(s(x))
}

fn code(c: i16) -> Option<ErrorCode> {
    c.err()
}

fn subscription(topic: &str) -> bytes::Bytes {
    let mut b = bytes::BytesMut::new();
    b.extend_from_slice(&0i16.to_be_bytes());
    ConsumerProtocolSubscription::default()
        .with_topics(vec![s(topic)])
        .encode(&mut b, 0)
        .unwrap();
    b.freeze()
}

fn join_request(group: &str, member: &str, instance: Option<&str>) -> RequestKind {
    RequestKind::JoinGroup(
        JoinGroupRequest::default()
            .with_group_id(gid(group))
            .with_session_timeout_ms(30_000)
            .with_rebalance_timeout_ms(30_000)
            .with_member_id(s(member))
            .with_group_instance_id(instance.map(s))
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
            )
            .with_name(s("range"))
            .with_metadata(subscription("raw"))]),
    )
}

const JOIN_V: i16 = 9;

fn join(c: &mut RawClient, group: &str, member: &str, instance: Option<&str>) -> JoinGroupResponse {
    send_join(c, group, member, instance);
    read_join(c)
}

fn send_join(c: &mut RawClient, group: &str, member: &str, instance: Option<&str>) {
    let f = c.frame(
        ApiKey::JoinGroup,
        JOIN_V,
        &join_request(group, member, instance),
    );
    c.send_bytes(&f);
}

fn read_join(c: &mut RawClient) -> JoinGroupResponse {
    match c.read_response(ApiKey::JoinGroup, JOIN_V) {
        Some(ResponseKind::JoinGroup(r)) => r,
        other => panic!("no JoinGroup response within 15 s: {other:?}"),
    }
}

fn sync_request(
    group: &str,
    member: &str,
    instance: Option<&str>,
    generation: i32,
    assignments: &[(&str, &[u8])],
) -> RequestKind {
    RequestKind::SyncGroup(
        SyncGroupRequest::default()
            .with_group_id(gid(group))
            .with_generation_id(generation)
            .with_member_id(s(member))
            .with_group_instance_id(instance.map(s))
            .with_protocol_type(Some(s("consumer")))
            .with_protocol_name(Some(s("range")))
            .with_assignments(
                assignments
                    .iter()
                    .map(|(m, a)| {
                        sync_group_request::SyncGroupRequestAssignment::default()
                            .with_member_id(s(m))
                            .with_assignment(bytes::Bytes::copy_from_slice(a))
                    })
                    .collect(),
            ),
    )
}

fn send_sync(
    c: &mut RawClient,
    group: &str,
    member: &str,
    generation: i32,
    assignments: &[(&str, &[u8])],
) {
    let f = c.frame(
        ApiKey::SyncGroup,
        5,
        &sync_request(group, member, None, generation, assignments),
    );
    c.send_bytes(&f);
}

fn read_sync(c: &mut RawClient) -> SyncGroupResponse {
    match c.read_response(ApiKey::SyncGroup, 5) {
        Some(ResponseKind::SyncGroup(r)) => r,
        other => panic!("no SyncGroup response within 15 s: {other:?}"),
    }
}

fn sync_static(
    c: &mut RawClient,
    group: &str,
    member: &str,
    instance: &str,
    generation: i32,
    assignments: &[(&str, &[u8])],
) -> SyncGroupResponse {
    let body = sync_request(group, member, Some(instance), generation, assignments);
    match c.request(ApiKey::SyncGroup, 5, body) {
        ResponseKind::SyncGroup(r) => r,
        other => panic!("{other:?}"),
    }
}

fn heartbeat(
    c: &mut RawClient,
    group: &str,
    member: &str,
    instance: Option<&str>,
    generation: i32,
) -> Option<ErrorCode> {
    let body = HeartbeatRequest::default()
        .with_group_id(gid(group))
        .with_member_id(s(member))
        .with_group_instance_id(instance.map(s))
        .with_generation_id(generation);
    match c.request(ApiKey::Heartbeat, 4, RequestKind::Heartbeat(body)) {
        ResponseKind::Heartbeat(r) => code(r.error_code),
        other => panic!("{other:?}"),
    }
}

fn commit(
    c: &mut RawClient,
    group: &str,
    member: &str,
    instance: Option<&str>,
    generation: i32,
    partition: i32,
    offset: i64,
) -> Option<ErrorCode> {
    let body = OffsetCommitRequest::default()
        .with_group_id(gid(group))
        .with_member_id(s(member))
        .with_group_instance_id(instance.map(s))
        .with_generation_id_or_member_epoch(generation)
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(s("raw")))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(partition)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(-1)
                        .with_committed_metadata(Some(s(""))),
                ]),
        ]);
    match c.request(ApiKey::OffsetCommit, 8, RequestKind::OffsetCommit(body)) {
        ResponseKind::OffsetCommit(r) => code(r.topics[0].partitions[0].error_code),
        other => panic!("{other:?}"),
    }
}

/// The committed offset of raw-`partition` (-1 when none) and the group error.
fn fetch_offset(c: &mut RawClient, group: &str, partition: i32) -> (i64, Option<ErrorCode>) {
    let body = OffsetFetchRequest::default().with_groups(vec![
        offset_fetch_request::OffsetFetchRequestGroup::default()
            .with_group_id(gid(group))
            .with_member_epoch(-1)
            .with_topics(Some(vec![
                offset_fetch_request::OffsetFetchRequestTopics::default()
                    .with_name(TopicName(s("raw")))
                    .with_partition_indexes(vec![partition]),
            ])),
    ]);
    match c.request(ApiKey::OffsetFetch, 8, RequestKind::OffsetFetch(body)) {
        ResponseKind::OffsetFetch(r) => {
            let g = &r.groups[0];
            let offset = g
                .topics
                .first()
                .and_then(|t| t.partitions.first())
                .map_or(-1, |p| p.committed_offset);
            (offset, code(g.error_code))
        }
        other => panic!("{other:?}"),
    }
}

/// ListGroups v5: group id → (state, protocol type, group type).
fn list_groups(c: &mut RawClient) -> BTreeMap<String, (String, String, String)> {
    match c.request(
        ApiKey::ListGroups,
        5,
        RequestKind::ListGroups(ListGroupsRequest::default()),
    ) {
        ResponseKind::ListGroups(r) => {
            assert_eq!(code(r.error_code), None);
            r.groups
                .into_iter()
                .map(|g| {
                    (
                        g.group_id.to_string(),
                        (
                            g.group_state.to_string(),
                            g.protocol_type.to_string(),
                            g.group_type.to_string(),
                        ),
                    )
                })
                .collect()
        }
        other => panic!("{other:?}"),
    }
}

fn delete_group(c: &mut RawClient, group: &str) -> Option<ErrorCode> {
    let body = DeleteGroupsRequest::default().with_groups_names(vec![gid(group)]);
    match c.request(ApiKey::DeleteGroups, 2, RequestKind::DeleteGroups(body)) {
        ResponseKind::DeleteGroups(r) => code(r.results[0].error_code),
        other => panic!("{other:?}"),
    }
}

fn leave(c: &mut RawClient, group: &str, member: &str) -> Option<ErrorCode> {
    let body = LeaveGroupRequest::default()
        .with_group_id(gid(group))
        .with_members(vec![
            leave_group_request::MemberIdentity::default().with_member_id(s(member))
        ]);
    match c.request(ApiKey::LeaveGroup, 5, RequestKind::LeaveGroup(body)) {
        ResponseKind::LeaveGroup(r) => {
            assert_eq!(code(r.error_code), None);
            code(r.members[0].error_code)
        }
        other => panic!("{other:?}"),
    }
}

/// OffsetDelete removes offsets only of topics the group is not consuming:
/// the subscription is read from a classic member's join metadata and from
/// a KIP-848 member's heartbeat.
#[test]
fn offset_delete_keeps_offsets_of_subscribed_topics() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(
        &dir.path().join("data"),
        &[
            "--group-initial-rebalance-delay-ms",
            "0",
            "--group-consumer-heartbeat-interval-ms",
            "500",
        ],
    );
    create_topic(&broker, "raw", 1);
    create_topic(&broker, "other", 1);
    produce_all(&broker, "raw", &[(0, "x".to_string())]);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut admin = RawClient::connect(&broker.bootstrap());
    for (group, protocol) in [("od-classic", "classic"), ("od-consumer", "consumer")] {
        let m = Member::start(
            &broker,
            group,
            group,
            "raw",
            &ledger,
            &[
                ("group.protocol", protocol),
                ("enable.auto.commit", "false"),
            ],
        );
        pump_until(&[&m], &ledger, 30, "the member to consume", || {
            m.caught_up(1)
        });
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("raw", 0, Offset::Offset(1))
            .unwrap();
        tpl.add_partition_offset("other", 0, Offset::Offset(4))
            .unwrap();
        m.consumer()
            .commit(&tpl, CommitMode::Sync)
            .unwrap_or_else(|e| panic!("{group}: commit: {e}"));
        let body = OffsetDeleteRequest::default()
            .with_group_id(gid(group))
            .with_topics(
                ["raw", "other"]
                    .into_iter()
                    .map(|t| {
                        offset_delete_request::OffsetDeleteRequestTopic::default()
                            .with_name(TopicName(s(t)))
                            .with_partitions(vec![
                                offset_delete_request::OffsetDeleteRequestPartition::default()
                                    .with_partition_index(0),
                            ])
                    })
                    .collect(),
            );
        let r = match admin.request(ApiKey::OffsetDelete, 0, RequestKind::OffsetDelete(body)) {
            ResponseKind::OffsetDelete(r) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(code(r.error_code), None, "{group}");
        let errors: BTreeMap<String, Option<ErrorCode>> = r
            .topics
            .iter()
            .map(|t| (t.name.to_string(), code(t.partitions[0].error_code)))
            .collect();
        assert_eq!(
            errors,
            BTreeMap::from([
                ("raw".to_string(), Some(ErrorCode::GroupSubscribedToTopic)),
                ("other".to_string(), None),
            ]),
            "{group}: OffsetDelete"
        );
        assert_eq!(fetch_offset(&mut admin, group, 0), (1, None), "{group}");
        let committed = m
            .consumer()
            .committed_offsets(tpl, TIMEOUT)
            .unwrap_or_else(|e| panic!("{group}: committed: {e}"));
        assert_eq!(
            committed_map_by_topic(&committed),
            BTreeMap::from([
                (("other".to_string(), 0), Offset::Invalid),
                (("raw".to_string(), 0), Offset::Offset(1)),
            ]),
            "{group}: offsets after OffsetDelete"
        );
    }
}

fn committed_map_by_topic(tpl: &TopicPartitionList) -> BTreeMap<(String, i32), Offset> {
    tpl.elements()
        .iter()
        .map(|e| ((e.topic().to_string(), e.partition()), e.offset()))
        .collect()
}

#[test]
fn classic_protocol_errors_through_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(
        &dir.path().join("data"),
        &["--group-initial-rebalance-delay-ms", "0"],
    );
    create_topic(&broker, "raw", 2);
    let g = "raw-group";
    let mut a = RawClient::connect(&broker.bootstrap());
    let mut b = RawClient::connect(&broker.bootstrap());
    let mut admin = RawClient::connect(&broker.bootstrap());

    // A session timeout below the broker's minimum is refused.
    let body = match join_request(g, "", None) {
        RequestKind::JoinGroup(r) => r.with_session_timeout_ms(1000),
        _ => unreachable!(),
    };
    match a.request(ApiKey::JoinGroup, JOIN_V, RequestKind::JoinGroup(body)) {
        ResponseKind::JoinGroup(r) => {
            assert_eq!(code(r.error_code), Some(ErrorCode::InvalidSessionTimeout))
        }
        other => panic!("{other:?}"),
    }

    // JoinGroup v4+ without a member id: MEMBER_ID_REQUIRED with the id to use.
    let r = join(&mut a, g, "", None);
    assert_eq!(code(r.error_code), Some(ErrorCode::MemberIdRequired));
    let a_id = r.member_id.to_string();
    assert!(!a_id.is_empty(), "MEMBER_ID_REQUIRED carries a member id");
    let r = join(&mut a, g, &a_id, None);
    assert_eq!(code(r.error_code), None);
    assert_eq!(r.generation_id, 1);
    assert_eq!(r.leader.to_string(), a_id, "the only member leads");
    assert_eq!(r.members.len(), 1, "the leader is told every member");
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    send_sync(&mut a, g, &a_id, 1, &[(&a_id, b"A-assignment")]);
    let r = read_sync(&mut a);
    assert_eq!(code(r.error_code), None);
    assert_eq!(&r.assignment[..], b"A-assignment");

    assert_eq!(heartbeat(&mut a, g, &a_id, None, 1), None);
    assert_eq!(
        heartbeat(&mut a, g, &a_id, None, 2),
        Some(ErrorCode::IllegalGeneration)
    );
    assert_eq!(
        heartbeat(&mut a, g, "nobody", None, 1),
        Some(ErrorCode::UnknownMemberId)
    );
    assert_eq!(
        heartbeat(&mut a, "no-such-group", &a_id, None, 1),
        Some(ErrorCode::UnknownMemberId),
        "a heartbeat to a group that does not exist"
    );
    assert_eq!(commit(&mut a, g, &a_id, None, 1, 0, 3), None);

    let groups = list_groups(&mut admin);
    assert_eq!(
        groups.get(g),
        Some(&("Stable".into(), "consumer".into(), "classic".into())),
        "ListGroups: {groups:?}"
    );

    // A second member: the first learns of the rebalance from its heartbeat.
    let r = join(&mut b, g, "", None);
    assert_eq!(code(r.error_code), Some(ErrorCode::MemberIdRequired));
    let b_id = r.member_id.to_string();
    assert_ne!(b_id, a_id);
    send_join(&mut b, g, &b_id, None);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        // B's join is in flight on its own connection; wait until it lands.
        match heartbeat(&mut a, g, &a_id, None, 1) {
            Some(ErrorCode::RebalanceInProgress) => break,
            None => {}
            other => panic!("A's heartbeat during B's join: {other:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "A's heartbeat never said REBALANCE_IN_PROGRESS"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        list_groups(&mut admin).get(g).map(|x| x.0.as_str()),
        Some("PreparingRebalance")
    );
    // A member of the current generation may still commit while the group
    // prepares the rebalance.
    assert_eq!(commit(&mut a, g, &a_id, None, 1, 0, 5), None);
    let ra = join(&mut a, g, &a_id, None);
    let rb = read_join(&mut b);
    assert_eq!((code(ra.error_code), code(rb.error_code)), (None, None));
    assert_eq!((ra.generation_id, rb.generation_id), (2, 2));
    assert_eq!(ra.leader.to_string(), a_id);
    assert_eq!(rb.leader.to_string(), a_id);
    assert_eq!(ra.members.len(), 2);
    assert!(rb.members.is_empty(), "followers are not told the members");
    // A sync with the wrong generation is refused.
    send_sync(&mut b, g, &b_id, 1, &[]);
    assert_eq!(
        code(read_sync(&mut b).error_code),
        Some(ErrorCode::IllegalGeneration)
    );
    // B's sync waits for the leader's.
    send_sync(&mut b, g, &b_id, 2, &[]);
    send_sync(&mut a, g, &a_id, 2, &[(&a_id, b"A2"), (&b_id, b"B2")]);
    let (sa, sb) = (read_sync(&mut a), read_sync(&mut b));
    assert_eq!((code(sa.error_code), code(sb.error_code)), (None, None));
    assert_eq!(
        (&sa.assignment[..], &sb.assignment[..]),
        (&b"A2"[..], &b"B2"[..])
    );

    // Commits of the old generation are refused; of the new one, stored.
    assert_eq!(
        commit(&mut a, g, &a_id, None, 1, 0, 7),
        Some(ErrorCode::IllegalGeneration)
    );
    assert_eq!(commit(&mut b, g, &b_id, None, 2, 1, 9), None);
    assert_eq!(fetch_offset(&mut admin, g, 0), (5, None));
    assert_eq!(fetch_offset(&mut admin, g, 1), (9, None));

    // A group with members cannot be deleted.
    assert_eq!(delete_group(&mut admin, g), Some(ErrorCode::NonEmptyGroup));

    // Static membership: the same group.instance.id joining again without
    // a member id (a restarted client) fences the old member id.
    let sg = "raw-static";
    let mut s1 = RawClient::connect(&broker.bootstrap());
    let r = join(&mut s1, sg, "", Some("instance-1"));
    assert_eq!(
        code(r.error_code),
        None,
        "static members join without MEMBER_ID_REQUIRED"
    );
    assert_eq!(r.generation_id, 1);
    let old_id = r.member_id.to_string();
    let r = sync_static(
        &mut s1,
        sg,
        &old_id,
        "instance-1",
        1,
        &[(&old_id, b"S-assignment")],
    );
    assert_eq!(code(r.error_code), None);
    assert_eq!(heartbeat(&mut s1, sg, &old_id, Some("instance-1"), 1), None);
    let mut s2 = RawClient::connect(&broker.bootstrap());
    let r = join(&mut s2, sg, "", Some("instance-1"));
    assert_eq!(code(r.error_code), None);
    let new_id = r.member_id.to_string();
    assert_ne!(new_id, old_id, "the rejoined instance gets a new member id");
    assert_eq!(
        r.generation_id, 1,
        "no rebalance for an unchanged static member"
    );
    assert_eq!(
        heartbeat(&mut s1, sg, &old_id, Some("instance-1"), 1),
        Some(ErrorCode::FencedInstanceId)
    );
    assert_eq!(
        commit(&mut s1, sg, &old_id, Some("instance-1"), 1, 0, 1),
        Some(ErrorCode::FencedInstanceId)
    );
    assert_eq!(heartbeat(&mut s2, sg, &new_id, Some("instance-1"), 1), None);
    let r = sync_static(&mut s2, sg, &new_id, "instance-1", 1, &[]);
    assert_eq!(code(r.error_code), None);
    assert_eq!(
        &r.assignment[..],
        b"S-assignment",
        "the static member keeps its assignment"
    );

    // Everyone leaves: the group is empty, then deletable with its offsets.
    assert_eq!(leave(&mut b, g, &b_id), None);
    assert_eq!(
        heartbeat(&mut a, g, &a_id, None, 2),
        Some(ErrorCode::RebalanceInProgress)
    );
    assert_eq!(leave(&mut a, g, &a_id), None);
    assert_eq!(
        heartbeat(&mut a, g, &a_id, None, 2),
        Some(ErrorCode::UnknownMemberId)
    );
    assert_eq!(leave(&mut a, g, &a_id), Some(ErrorCode::UnknownMemberId));
    assert_eq!(
        list_groups(&mut admin).get(g).map(|x| x.0.as_str()),
        Some("Empty"),
        "a group without members but with offsets is listed as Empty"
    );
    assert_eq!(delete_group(&mut admin, g), None);
    assert_eq!(fetch_offset(&mut admin, g, 0), (-1, None));
    assert_eq!(fetch_offset(&mut admin, g, 1), (-1, None));
    let groups = list_groups(&mut admin);
    assert!(
        !groups.contains_key(g),
        "deleted group still listed: {groups:?}"
    );
    assert!(
        groups.contains_key(sg),
        "the static group is listed: {groups:?}"
    );
    assert_eq!(
        delete_group(&mut admin, g),
        Some(ErrorCode::GroupIdNotFound)
    );
}
