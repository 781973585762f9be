#!/usr/bin/env python3
"""kafka-python (pure Python client) against a running Sluice broker.

Usage: check_kafka_python.py HOST:PORT

Covers: DescribeCluster/Metadata; CreateTopics (real, validate_only, invalid
name, partitions=0, duplicate); produce with acks 0/1/all x every codec whose
Python module is installed (none/gzip always; snappy, lz4, zstd need
python-snappy, lz4, zstandard), with keys and headers; assign + seek read-back
with dense offsets; explicit timestamps with offsets_for_times,
beginning/end offsets and admin ListOffsets; DescribeConfigs,
IncrementalAlterConfigs and legacy AlterConfigs; CreatePartitions 3 -> 5 (and
5 -> 4 refused); the client's default producer, which is idempotent
(InitProducerId); a compacted topic per codec read back once the broker
compacted it; DeleteTopics (and deleting it again).

Steps run from the basics to the extras so that one missing feature hides as
little as possible; the first failure ends the check.
"""

import os
import itertools
import logging
import re
import sys
import time
import uuid

import kafka
import kafka.codec
import kafka.errors as Errors
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic, OffsetSpec

from checklib import Check

# Broker features beyond the core that this run may check (see scripts/test).
FEATURES = set(filter(None, os.environ.get("SLUICE_FEATURES", "").split(",")))

REQ_MS = 15000  # bound for every single request
CODEC_MODULES = {"snappy": "python-snappy", "lz4": "lz4", "zstd": "zstandard"}
PER_BATCH = 4
DEFAULT_RETENTION_MS = "604800000"


def available_codecs(c):
    codecs = [None, "gzip"]
    skipped = []
    for name, has in [("snappy", kafka.codec.has_snappy), ("lz4", kafka.codec.has_lz4),
                      ("zstd", kafka.codec.has_zstd)]:
        if has():
            codecs.append(name)
        else:
            skipped.append(f"{name} (module from {CODEC_MODULES[name]} not installed)")
    c.note(f"codecs tested: {['none' if x is None else x for x in codecs]}; "
           f"skipped: {skipped if skipped else 'none'}")
    return codecs


def main(c: Check):
    bootstrap = sys.argv[1]
    suffix = uuid.uuid4().hex[:10]
    c.note(f"kafka-python {kafka.__version__}, bootstrap {bootstrap}")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="sluice-check-kafka-python",
                             request_timeout_ms=REQ_MS)

    def expect_error(what, fn, err_cls):
        try:
            fn()
        except err_cls as e:
            m = re.search(r"error_message='([^']*)'", str(e))
            c.ok(f"{what} -> {type(e).__name__} (error_message: {m.group(1) if m else str(e)[:300]!r})")
            return e
        except Exception as e:  # noqa: BLE001
            c.fail(f"{what}: expected {err_cls.__name__} (error code {err_cls.errno}), "
                   f"got {type(e).__name__}: {e}")
        c.fail(f"{what}: expected {err_cls.__name__} (error code {err_cls.errno}), but it succeeded")

    def describe_topic(topic):
        (t,) = admin.describe_topics([topic])
        return t

    def partitions_ready(topic, count):
        t = describe_topic(topic)
        parts = t.get("partitions") or []
        if t.get("error_code") != 0 or len(parts) != count:
            return None
        if any(p["error_code"] != 0 or p["leader_id"] < 0 for p in parts):
            return None
        return t

    # ---------------------------------------------------------------- metadata
    c.step("cluster metadata (describe_cluster)")
    cluster = admin.describe_cluster()
    c.eq("number of brokers", len(cluster["brokers"]), 1)
    (broker,) = cluster["brokers"]
    broker_id = broker["broker_id"]
    c.eq("advertised broker address", f"{broker['host']}:{broker['port']}", bootstrap)
    c.true("cluster id is set", bool(cluster.get("cluster_id")), f"got {cluster.get('cluster_id')!r}")

    main_topic = f"sluice-kpy-{suffix}"
    ts_topic = f"sluice-kpy-ts-{suffix}"
    val_topic = f"sluice-kpy-validate-{suffix}"

    # ----------------------------------------------------------- CreateTopics
    c.step("CreateTopics validate_only=True")
    res = admin.create_topics({val_topic: {"num_partitions": 3, "replication_factor": 1}},
                              validate_only=True)
    c.eq("validate_only topic error code", [(t["name"], t["error_code"]) for t in res["topics"]],
         [(val_topic, 0)])
    c.eq(f"{val_topic} listed after validate_only", val_topic in admin.list_topics(), False)

    c.step("CreateTopics errors")
    bad = f"sluice bad name!{suffix}"
    expect_error(f"create topic named {bad!r}",
                 lambda: admin.create_topics({bad: {"num_partitions": 1, "replication_factor": 1}}),
                 Errors.InvalidTopicError)
    expect_error("create topic with a 250-character name",
                 lambda: admin.create_topics({"y" * 250: {"num_partitions": 1, "replication_factor": 1}}),
                 Errors.InvalidTopicError)
    zero = f"sluice-kpy-zero-{suffix}"
    expect_error("create topic with num_partitions=0",
                 lambda: admin.create_topics({zero: {"num_partitions": 0, "replication_factor": 1}}),
                 Errors.InvalidPartitionsError)
    c.eq(f"{zero} listed after the failed create", zero in admin.list_topics(), False)

    c.step(f"CreateTopics {main_topic} with 3 partitions")
    res = admin.create_topics({
        main_topic: {"num_partitions": 3, "replication_factor": 1},
        # Records stamped 1970 must not be removed by time retention.
        ts_topic: {"num_partitions": 1, "replication_factor": 1, "configs": {"retention.ms": "-1"}},
    })
    c.eq("create error codes", sorted((t["name"], t["error_code"]) for t in res["topics"]),
         sorted([(main_topic, 0), (ts_topic, 0)]))
    t = c.wait_until(f"metadata for {main_topic} with 3 partitions and leaders",
                     lambda: partitions_ready(main_topic, 3), timeout_s=REQ_MS / 1000)
    c.eq("partition ids", sorted(p["partition_index"] for p in t["partitions"]), [0, 1, 2])
    c.eq("partition leaders", sorted({p["leader_id"] for p in t["partitions"]}), [broker_id])
    c.wait_until(f"metadata for {ts_topic} with 1 partition", lambda: partitions_ready(ts_topic, 1),
                 timeout_s=REQ_MS / 1000)
    expect_error("create an existing topic again",
                 lambda: admin.create_topics({main_topic: {"num_partitions": 3, "replication_factor": 1}}),
                 Errors.TopicAlreadyExistsError)

    # ----------------------------------------------------------------- produce
    probe = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                          request_timeout_ms=REQ_MS)

    def end_offset(topic, p):
        tp = TopicPartition(topic, p)
        return probe.end_offsets([tp], timeout_ms=REQ_MS)[tp]

    codecs = available_codecs(c)
    expected = {0: [], 1: [], 2: []}
    for i, (acks, codec) in enumerate(itertools.product([0, 1, "all"], codecs)):
        p = i % 3
        label = f"acks={acks} compression={codec or 'none'}"
        c.step(f"produce {PER_BATCH} records to partition {p} with {label}")
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks=acks, compression_type=codec,
                                 # The client's default (idempotent) producer is checked near the end.
                                 enable_idempotence=False, linger_ms=20,
                                 request_timeout_ms=REQ_MS, max_block_ms=REQ_MS,
                                 delivery_timeout_ms=REQ_MS + 1000)
        base = len(expected[p])
        futures = []
        for j in range(PER_BATCH):
            key = f"k-{i}-{j}".encode()
            value = (f"v-{acks}-{codec}-{j}-" + "compressible " * 40).encode()
            headers = [("combo", label.encode()), ("j", str(j).encode())]
            futures.append(producer.send(main_topic, value=value, key=key, headers=headers, partition=p))
            expected[p].append((key, value, headers))
        producer.flush(timeout=REQ_MS / 1000)
        metas = []
        for f in futures:
            try:
                metas.append(f.get(timeout=REQ_MS / 1000))
            except Exception as e:  # noqa: BLE001
                c.fail(f"delivery failed ({label}): {type(e).__name__}: {e}")
        producer.close(timeout=REQ_MS / 1000)
        c.eq(f"delivered partitions ({label})", sorted({m.partition for m in metas}), [p])
        if acks == 0:
            # No response comes back for acks=0; kafka-python 3 reports made-up offsets
            # (its synthetic response has base offset 0), so they are not checked.
            c.note("acks=0: no offsets are reported; waiting for the end offset instead")
            c.wait_until(f"end offset of partition {p} to reach {base + PER_BATCH} after acks=0",
                         lambda: end_offset(main_topic, p) == base + PER_BATCH)
            c.ok(f"end offset of partition {p} = {base + PER_BATCH}")
        else:
            c.eq(f"delivered offsets ({label})", [m.offset for m in metas],
                 list(range(base, base + PER_BATCH)))
            c.eq(f"end offset of partition {p}", end_offset(main_topic, p), base + PER_BATCH)

    # ------------------------------------------------------- assign + seek
    c.step("consume everything by assign + seek to 0")
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="none", request_timeout_ms=REQ_MS)
    tps = [TopicPartition(main_topic, p) for p in range(3)]
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, 0)

    def collect(want, what, timeout_s=30):
        got = {}
        deadline = time.monotonic() + timeout_s
        while sum(len(v) for v in got.values()) < want:
            if time.monotonic() > deadline:
                c.fail(f"timed out after {timeout_s}s waiting for {what}: got "
                       f"{ {tp.partition: len(v) for tp, v in got.items()} } of {want}")
            for tp, recs in consumer.poll(timeout_ms=500).items():
                got.setdefault(tp.partition, []).extend(recs)
        return got

    total = sum(len(v) for v in expected.values())
    got = collect(total, f"{total} records")
    extra = consumer.poll(timeout_ms=1000)
    c.eq("records beyond what was produced", {tp.partition: len(r) for tp, r in extra.items()}, {})
    for p in range(3):
        recs = got.get(p, [])
        c.eq(f"partition {p} offsets", [r.offset for r in recs], list(range(len(expected[p]))))
        c.eq(f"partition {p} keys and values", [(r.key, r.value) for r in recs],
             [(k, v) for k, v, _ in expected[p]])
        c.eq(f"partition {p} headers", [list(r.headers) for r in recs], [h for _, _, h in expected[p]])
        c.eq(f"partition {p} timestamp types (0 = CreateTime)", {r.timestamp_type for r in recs}, {0})

    c.step("seek partition 1 to offset 2 and read to the end again")
    consumer.seek(TopicPartition(main_topic, 1), 2)
    want = len(expected[1]) - 2
    again = collect(want, f"{want} records of partition 1 after seek")
    c.eq("partitions returned after seek", sorted(again), [1])
    c.eq("offsets after seek", [r.offset for r in again[1]], list(range(2, len(expected[1]))))
    c.eq("values after seek", [r.value for r in again[1]], [v for _, v, _ in expected[1][2:]])

    # ------------------------------------------------------------ timestamps
    c.step(f"produce records with timestamps 1000, 2000, 3000 to {ts_topic}")
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False,
                             request_timeout_ms=REQ_MS,
                             max_block_ms=REQ_MS, delivery_timeout_ms=REQ_MS + 1000)
    futures = [producer.send(ts_topic, value=f"t{ts}".encode(), key=f"k{j}".encode(), partition=0,
                             timestamp_ms=ts) for j, ts in enumerate([1000, 2000, 3000])]
    producer.flush(timeout=REQ_MS / 1000)
    metas = [f.get(timeout=REQ_MS / 1000) for f in futures]
    producer.close(timeout=REQ_MS / 1000)
    c.eq("delivered (offset, timestamp)", [(m.offset, m.timestamp) for m in metas],
         [(0, 1000), (1, 2000), (2, 3000)])
    tp = TopicPartition(ts_topic, 0)
    consumer.assign([tp])
    consumer.seek(tp, 0)
    recs = collect(3, "3 timestamped records").get(0, [])
    c.eq("read-back (offset, timestamp, type)", [(r.offset, r.timestamp, r.timestamp_type) for r in recs],
         [(0, 1000, 0), (1, 2000, 0), (2, 3000, 0)])

    c.step("offsets_for_times, beginning_offsets, end_offsets")
    for ts, want_off in [(0, (0, 1000)), (1000, (0, 1000)), (1500, (1, 2000)), (3000, (2, 3000)),
                         (9999, None)]:
        r = consumer.offsets_for_times({tp: ts}, timeout_ms=REQ_MS)[tp]
        c.eq(f"offsets_for_times({ts}) (offset, timestamp)",
             None if r is None else (r.offset, r.timestamp), want_off)
    c.eq("beginning_offsets", consumer.beginning_offsets([tp], timeout_ms=REQ_MS), {tp: 0})
    c.eq("end_offsets", consumer.end_offsets([tp], timeout_ms=REQ_MS), {tp: 3})

    c.step("ListOffsets (admin list_partition_offsets)")
    for name, spec, want in [("EARLIEST", OffsetSpec.EARLIEST, 0), ("LATEST", OffsetSpec.LATEST, 3),
                             ("timestamp 1500", 1500, 1), ("timestamp 9999", 9999, -1),
                             ("MAX_TIMESTAMP", OffsetSpec.MAX_TIMESTAMP, 2)]:
        r = admin.list_partition_offsets({tp: spec}, timeout_ms=REQ_MS)[tp]
        c.eq(f"ListOffsets {name} offset", r.offset, want)
    consumer.close(autocommit=False)
    probe.close(autocommit=False)

    # --------------------------------------------------------------- configs
    def describe(name="retention.ms"):
        r = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, main_topic, [name])],
                                   config_filter="all")
        entries = r["topic"][main_topic]
        if name not in entries:
            c.fail(f"DescribeConfigs did not report {name}: got {sorted(entries)}")
        return entries[name]

    c.step(f"DescribeConfigs {main_topic}")
    c.eq("retention.ms", describe()["value"], DEFAULT_RETENTION_MS)
    c.eq("cleanup.policy", describe("cleanup.policy")["value"], "delete")

    c.step("IncrementalAlterConfigs retention.ms=3600000")
    r = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, main_topic, {"retention.ms": "3600000"})],
                            incremental=True)
    c.eq("incremental alter result", r, {"topic": {main_topic: "OK"}})
    e = describe()
    c.eq("retention.ms after incremental alter", e["value"], "3600000")
    c.eq("retention.ms source", e["config_source"], "DYNAMIC_TOPIC_CONFIG")

    c.step("legacy AlterConfigs retention.ms=7200000")
    r = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, main_topic, {"retention.ms": "7200000"})],
                            incremental=False)
    c.eq("legacy alter result", r, {"topic": {main_topic: "OK"}})
    c.eq("retention.ms after legacy alter", describe()["value"], "7200000")

    # ------------------------------------------------------ CreatePartitions
    c.step("CreatePartitions 3 -> 5")
    r = admin.create_partitions({main_topic: 5})
    c.eq("create_partitions error codes", [(x.name, x.error_code) for x in r.results], [(main_topic, 0)])
    t = c.wait_until(f"metadata for {main_topic} with 5 partitions and leaders",
                     lambda: partitions_ready(main_topic, 5), timeout_s=REQ_MS / 1000)
    c.eq("partition ids", sorted(p["partition_index"] for p in t["partitions"]), [0, 1, 2, 3, 4])
    expect_error("CreatePartitions 5 -> 4", lambda: admin.create_partitions({main_topic: 4}),
                 Errors.InvalidPartitionsError)

    # ------------------------------------------------------------ idempotence
    # Idempotent producers come with consumer groups (issue 3); scripts/test
    # lists the broker's features in SLUICE_FEATURES.
    if "idempotence" not in FEATURES:
        c.step("SKIPPED: the idempotent producer needs InitProducerId, not served yet")
    else:
        c.step("the client's default producer (idempotent, acks=all) to the new partition 3")
        producer = KafkaProducer(bootstrap_servers=bootstrap, compression_type="gzip", linger_ms=20,
                                 request_timeout_ms=REQ_MS, max_block_ms=REQ_MS,
                                 delivery_timeout_ms=REQ_MS + 1000)
        values = [f"idempotent-{j}".encode() for j in range(PER_BATCH)]
        futures = [producer.send(main_topic, value=v, partition=3) for v in values]
        producer.flush(timeout=REQ_MS / 1000)
        metas = []
        for f in futures:
            try:
                metas.append(f.get(timeout=REQ_MS / 1000))
            except Exception as e:  # noqa: BLE001
                c.fail(f"delivery failed (idempotent producer): {type(e).__name__}: {e}")
        producer.close(timeout=REQ_MS / 1000)
        c.eq("delivered (partition, offset)", [(m.partition, m.offset) for m in metas],
             [(3, j) for j in range(PER_BATCH)])
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                 auto_offset_reset="none", request_timeout_ms=REQ_MS)
        tp = TopicPartition(main_topic, 3)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        recs = collect(PER_BATCH, f"{PER_BATCH} idempotent records").get(3, [])
        c.eq("read-back (offset, value)", [(r.offset, r.value) for r in recs], list(enumerate(values)))
        consumer.close(autocommit=False)

    check_compaction(c, bootstrap, admin, codecs, suffix)

    # ---------------------------------------------------------- DeleteTopics
    c.step(f"DeleteTopics {main_topic}, {ts_topic}")
    r = admin.delete_topics([main_topic, ts_topic])
    c.eq("delete error codes", sorted((x["name"], x["error_code"]) for x in r["topics"]),
         sorted([(main_topic, 0), (ts_topic, 0)]))
    c.wait_until(f"metadata to stop listing {main_topic} and {ts_topic}",
                 lambda: not {main_topic, ts_topic} & set(admin.list_topics()), timeout_s=REQ_MS / 1000)
    c.ok("deleted topics are no longer listed")
    expect_error("delete the deleted topic again", lambda: admin.delete_topics([main_topic]),
                 Errors.UnknownTopicOrPartitionError)
    admin.close()


def check_compaction(c, bootstrap, admin, codecs, suffix):
    """A compacted topic per codec: three rounds over eight keys and a
    tombstone, in batches the broker's compaction rebuilds in their codec;
    read back from the start once compacted: the latest record of each key
    at its acknowledged offset."""
    keys = [f"key-{k}".encode() for k in range(8)]
    for codec in codecs:
        topic = f"kp-compacted-{codec or 'none'}-{suffix}"
        c.step(f"compacted topic {topic}: produce 3 rounds of {len(keys)} keys and a tombstone")
        admin.create_topics([NewTopic(topic, 1, 1, topic_configs={
            "cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01"})])
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type=codec,
                                 enable_idempotence=False, linger_ms=50,
                                 request_timeout_ms=REQ_MS, max_block_ms=REQ_MS,
                                 delivery_timeout_ms=REQ_MS + 1000)
        latest = {}
        for round_ in range(3):
            sent = [(k, f"round {round_} {k.decode()} ".encode() * 20) for k in keys]
            if round_ == 2:
                sent.append((keys[0], None))
            futures = [(k, v, producer.send(topic, key=k, value=v, partition=0)) for k, v in sent]
            producer.flush(timeout=REQ_MS / 1000)
            for k, v, f in futures:
                latest[k] = (f.get(timeout=REQ_MS / 1000).offset, v)
        # The log's last chunk is never cleaned (Kafka's active segment): one
        # more record, so that the rounds can all be.
        f = producer.send(topic, key=b"sentinel", value=b"end", partition=0)
        producer.flush(timeout=REQ_MS / 1000)
        latest[b"sentinel"] = (f.get(timeout=REQ_MS / 1000).offset, b"end")
        producer.close(timeout=REQ_MS / 1000)
        want = sorted((o, k, v) for k, (o, v) in latest.items())
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                 auto_offset_reset="none", request_timeout_ms=REQ_MS)
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])

        def compacted():
            consumer.seek(tp, 0)
            got = []
            deadline = time.monotonic() + 10
            while len(got) < 3 * len(keys) + 2 and time.monotonic() < deadline:
                recs = consumer.poll(timeout_ms=300).get(tp, [])
                got.extend((r.offset, r.key, r.value) for r in recs)
                if not recs and got and got[-1][0] == want[-1][0]:
                    break
            return got == want

        c.wait_until(f"{topic} to read back compacted ({len(want)} records)",
                     compacted, timeout_s=60, interval_s=1)
        c.ok(f"{topic}: the latest record of each key, at its acknowledged offset")
        consumer.close(autocommit=False)
        admin.delete_topics([topic])


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: check_kafka_python.py HOST:PORT")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    Check("kafka-python").run(main)
