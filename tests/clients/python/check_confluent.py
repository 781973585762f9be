#!/usr/bin/env python3
"""confluent-kafka (librdkafka, bundled in the wheel) against a running Sluice broker.

Usage: check_confluent.py HOST:PORT

Covers: cluster metadata; CreateTopics (real, validate_only, invalid name,
partitions=0, duplicate); produce with acks 0/1/all x compression
none/gzip/snappy/lz4/zstd, with keys and headers; assign + seek read-back with
dense offsets; explicit timestamps with offsets_for_times and ListOffsets
(earliest/latest/timestamp/max-timestamp); DescribeConfigs,
IncrementalAlterConfigs (SET, DELETE, bad value, unknown name) and legacy
AlterConfigs; CreatePartitions 3 -> 5 (and 5 -> 4 refused) and produce to a
new partition; the idempotent producer (InitProducerId); DeleteTopics (and
deleting it again -> UNKNOWN_TOPIC_OR_PART).

Steps run from the basics to the extras so that one missing feature hides as
little as possible; the first failure ends the check.
"""

import os
import concurrent.futures
import itertools
import sys
import time
import uuid
import warnings

from confluent_kafka import (
    TIMESTAMP_CREATE_TIME,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka import version as ck_version, libversion
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

from checklib import Check

# Broker features beyond the core that this run may check (see scripts/test).
FEATURES = set(filter(None, os.environ.get("SLUICE_FEATURES", "").split(",")))

REQ_S = 15.0  # bound for every single request / future
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
ACKS = ["0", "1", "all"]
PER_BATCH = 4
DEFAULT_RETENTION_MS = "604800000"


def main(c: Check):
    bootstrap = sys.argv[1]
    suffix = uuid.uuid4().hex[:10]
    c.note(f"confluent-kafka {ck_version()[0]}, librdkafka {libversion()[0]}, bootstrap {bootstrap}")
    admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": "sluice-check-confluent"})

    def wait(what, fut):
        try:
            return fut.result(timeout=REQ_S)
        except concurrent.futures.TimeoutError:
            c.fail(f"timed out after {REQ_S:.0f}s waiting for {what}")

    def expect_error(what, fut, code):
        try:
            fut.result(timeout=REQ_S)
        except concurrent.futures.TimeoutError:
            c.fail(f"timed out after {REQ_S:.0f}s waiting for {what}")
        except KafkaException as e:
            err = e.args[0]
            got = err.name() if isinstance(err, KafkaError) else repr(err)
            if not isinstance(err, KafkaError) or err.code() != code:
                c.fail(f"{what}: expected error {KafkaError(code).name()} ({code}), got {got}: {err}")
            c.ok(f"{what} -> {got} ({err.str()})")
            return err
        c.fail(f"{what}: expected error {KafkaError(code).name()}, but it succeeded")

    def flush(producer):
        try:
            return producer.flush(REQ_S)
        except Exception as e:  # noqa: BLE001 - a fatal producer error surfaces here
            cause = e.__cause__ or e.__context__
            c.fail(f"the producer failed: {cause if cause is not None else e}")

    def topics_now():
        return admin.list_topics(timeout=REQ_S).topics

    def partitions_ready(topic, count):
        md = topics_now().get(topic)
        if md is None or md.error is not None or len(md.partitions) != count:
            return None
        if any(p.leader < 0 or p.error is not None for p in md.partitions.values()):
            return None
        return md

    # ---------------------------------------------------------------- metadata
    c.step("cluster metadata")
    md = admin.list_topics(timeout=REQ_S)
    c.eq("number of brokers", len(md.brokers), 1)
    (broker,) = md.brokers.values()
    broker_id = broker.id
    c.eq("advertised broker address", f"{broker.host}:{broker.port}", bootstrap)
    c.true("cluster id is set", bool(md.cluster_id), f"cluster_id={md.cluster_id!r}")

    main_topic = f"sluice-cfk-{suffix}"
    ts_topic = f"sluice-cfk-ts-{suffix}"
    val_topic = f"sluice-cfk-validate-{suffix}"

    # ----------------------------------------------------------- CreateTopics
    c.step("CreateTopics validate_only=True")
    fs = admin.create_topics([NewTopic(val_topic, num_partitions=3, replication_factor=1)],
                             validate_only=True, request_timeout=REQ_S)
    c.eq("validate_only create result", wait("validate_only CreateTopics", fs[val_topic]), None)
    c.eq(f"{val_topic} listed after validate_only", val_topic in topics_now(), False)

    c.step("CreateTopics errors")
    bad = f"sluice bad name!{suffix}"
    fs = admin.create_topics([NewTopic(bad, num_partitions=1, replication_factor=1)], request_timeout=REQ_S)
    expect_error(f"create topic named {bad!r}", fs[bad], KafkaError.TOPIC_EXCEPTION)
    long_name = "x" * 250
    fs = admin.create_topics([NewTopic(long_name, num_partitions=1, replication_factor=1)], request_timeout=REQ_S)
    expect_error("create topic with a 250-character name", fs[long_name], KafkaError.TOPIC_EXCEPTION)
    zero = f"sluice-cfk-zero-{suffix}"
    fs = admin.create_topics([NewTopic(zero, num_partitions=0, replication_factor=1)], request_timeout=REQ_S)
    expect_error("create topic with num_partitions=0", fs[zero], KafkaError.INVALID_PARTITIONS)
    c.eq(f"{zero} listed after the failed create", zero in topics_now(), False)

    c.step(f"CreateTopics {main_topic} with 3 partitions")
    fs = admin.create_topics([NewTopic(main_topic, num_partitions=3, replication_factor=1),
                              # Records stamped 1970 must not be removed by time retention.
                              NewTopic(ts_topic, num_partitions=1, replication_factor=1,
                                       config={"retention.ms": "-1"})],
                             request_timeout=REQ_S)
    c.eq("create result", wait("CreateTopics", fs[main_topic]), None)
    c.eq("create result (timestamps topic)", wait("CreateTopics", fs[ts_topic]), None)
    tmd = c.wait_until(f"metadata for {main_topic} with 3 partitions and leaders",
                       lambda: partitions_ready(main_topic, 3))
    c.eq("partition ids", sorted(tmd.partitions), [0, 1, 2])
    c.eq("partition leaders", sorted({p.leader for p in tmd.partitions.values()}), [broker_id])
    c.wait_until(f"metadata for {ts_topic} with 1 partition", lambda: partitions_ready(ts_topic, 1))

    fs = admin.create_topics([NewTopic(main_topic, num_partitions=3, replication_factor=1)], request_timeout=REQ_S)
    expect_error("create an existing topic again", fs[main_topic], KafkaError.TOPIC_ALREADY_EXISTS)

    # ----------------------------------------------------------------- produce
    def latest(topic, partition):
        tp = TopicPartition(topic, partition)
        return wait("ListOffsets latest", admin.list_offsets({tp: OffsetSpec.latest()},
                                                             request_timeout=REQ_S)[tp]).offset

    expected = {0: [], 1: [], 2: []}  # partition -> [(key, value, headers)]
    # The idempotent producer is checked near the end, on its own partition.
    combos = list(itertools.product(ACKS, CODECS))
    for i, (acks, codec) in enumerate(combos):
        p = i % 3
        label = f"acks={acks} compression={codec}"
        c.step(f"produce {PER_BATCH} records to partition {p} with {label}")
        producer = Producer({
            "bootstrap.servers": bootstrap,
            "acks": acks,
            "compression.type": codec,
            "enable.idempotence": False,
            "linger.ms": 20,
            "message.timeout.ms": int(REQ_S * 1000),
        })
        reports = []
        base = len(expected[p])
        for j in range(PER_BATCH):
            key = f"k-{i}-{j}".encode()
            value = (f"v-{acks}-{codec}-{j}-" + "compressible " * 40).encode()
            headers = [("combo", label.encode()), ("j", str(j).encode())]
            producer.produce(main_topic, value=value, key=key, partition=p, headers=headers,
                             on_delivery=lambda err, msg: reports.append((err, msg.partition(), msg.offset())))
            expected[p].append((key, value, headers))
        left = flush(producer)
        c.eq(f"messages still queued after flush ({label})", left, 0)
        c.eq(f"delivery reports ({label})", len(reports), PER_BATCH)
        errors = [str(err) for err, _, _ in reports if err is not None]
        c.eq(f"delivery errors ({label})", errors, [])
        c.eq(f"delivered partitions ({label})", sorted({r[1] for r in reports}), [p])
        if acks == "0":
            c.note("acks=0: no offsets are reported; waiting for the high watermark instead")
            c.wait_until(f"high watermark of partition {p} to reach {base + PER_BATCH} after acks=0",
                         lambda: latest(main_topic, p) == base + PER_BATCH)
            c.ok(f"high watermark of partition {p} = {base + PER_BATCH}")
        else:
            c.eq(f"delivered offsets ({label})", [r[2] for r in reports],
                 list(range(base, base + PER_BATCH)))
            c.eq(f"high watermark of partition {p}", latest(main_topic, p), base + PER_BATCH)

    # ------------------------------------------------------- assign + seek
    c.step("consume everything by assign from offset 0")
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"sluice-cfk-{suffix}",  # required by the client; no group calls are made
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "error",
    })
    consumer.assign([TopicPartition(main_topic, p, 0) for p in range(3)])
    total = sum(len(v) for v in expected.values())
    got = {0: [], 1: [], 2: []}
    deadline = time.monotonic() + 30

    def poll_one():
        msg = consumer.poll(0.5)
        if msg is None:
            return None
        if msg.error():
            c.fail(f"consumer error: {msg.error()}")
        return msg

    while sum(len(v) for v in got.values()) < total:
        if time.monotonic() > deadline:
            c.fail(f"timed out after 30s waiting for {total} records, got "
                   f"{ {p: len(v) for p, v in got.items()} }")
        msg = poll_one()
        if msg is not None:
            got[msg.partition()].append(msg)
    # Anything beyond what was produced would be a bug too.
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        msg = poll_one()
        if msg is not None:
            c.fail(f"unexpected extra record: partition {msg.partition()} offset {msg.offset()}")
    for p in range(3):
        msgs = got[p]
        c.eq(f"partition {p} offsets", [m.offset() for m in msgs], list(range(len(expected[p]))))
        c.eq(f"partition {p} keys and values",
             [(m.key(), m.value()) for m in msgs], [(k, v) for k, v, _ in expected[p]])
        c.eq(f"partition {p} headers", [m.headers() for m in msgs], [h for _, _, h in expected[p]])
        types = {m.timestamp()[0] for m in msgs}
        c.eq(f"partition {p} timestamp types", types, {TIMESTAMP_CREATE_TIME})

    c.step("seek partition 1 to offset 2 and read to the end again")
    consumer.seek(TopicPartition(main_topic, 1, 2))
    again = []
    deadline = time.monotonic() + 15
    want = len(expected[1]) - 2
    while len(again) < want:
        if time.monotonic() > deadline:
            c.fail(f"timed out after 15s waiting for {want} records after seek, got {len(again)}")
        msg = poll_one()
        if msg is not None and msg.partition() == 1:
            again.append(msg)
    c.eq("offsets after seek", [m.offset() for m in again], list(range(2, len(expected[1]))))
    c.eq("values after seek", [m.value() for m in again], [v for _, v, _ in expected[1][2:]])

    # ------------------------------------------------------------ timestamps
    c.step(f"produce records with timestamps 1000, 2000, 3000 to {ts_topic}")
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "message.timeout.ms": int(REQ_S * 1000)})
    reports = []
    for j, ts in enumerate([1000, 2000, 3000]):
        producer.produce(ts_topic, value=f"t{ts}".encode(), key=f"k{j}".encode(), partition=0,
                         timestamp=ts,
                         on_delivery=lambda err, msg: reports.append((err, msg.offset())))
    c.eq("messages still queued after flush", flush(producer), 0)
    c.eq("delivery reports", reports, [(None, 0), (None, 1), (None, 2)])

    consumer.assign([TopicPartition(ts_topic, 0, 0)])
    msgs = []
    deadline = time.monotonic() + 15
    while len(msgs) < 3:
        if time.monotonic() > deadline:
            c.fail(f"timed out after 15s waiting for 3 timestamped records, got {len(msgs)}")
        msg = poll_one()
        if msg is not None:
            msgs.append(msg)
    c.eq("read-back (offset, timestamp)", [(m.offset(), m.timestamp()) for m in msgs],
         [(0, (TIMESTAMP_CREATE_TIME, 1000)), (1, (TIMESTAMP_CREATE_TIME, 2000)),
          (2, (TIMESTAMP_CREATE_TIME, 3000))])

    c.step("offsets_for_times and watermarks (consumer API)")
    for ts, want_off in [(0, 0), (1000, 0), (1500, 1), (2000, 1), (3000, 2), (9999, -1)]:
        (res,) = consumer.offsets_for_times([TopicPartition(ts_topic, 0, ts)], timeout=REQ_S)
        c.eq(f"offsets_for_times({ts}) error", res.error, None)
        c.eq(f"offsets_for_times({ts}) offset", res.offset, want_off)
    c.eq("get_watermark_offsets", consumer.get_watermark_offsets(
        TopicPartition(ts_topic, 0), timeout=REQ_S, cached=False), (0, 3))

    c.step("ListOffsets (admin API)")
    tp = TopicPartition(ts_topic, 0)
    for spec_name, spec, want_off, want_ts in [
        ("earliest", OffsetSpec.earliest(), 0, None),
        ("latest", OffsetSpec.latest(), 3, None),
        ("timestamp 1500", OffsetSpec.for_timestamp(1500), 1, 2000),
        ("timestamp 9999", OffsetSpec.for_timestamp(9999), -1, -1),
        ("max_timestamp", OffsetSpec.max_timestamp(), 2, 3000),
    ]:
        info = wait(f"ListOffsets {spec_name}", admin.list_offsets({tp: spec}, request_timeout=REQ_S)[tp])
        c.eq(f"ListOffsets {spec_name} offset", info.offset, want_off)
        if want_ts is not None:
            c.eq(f"ListOffsets {spec_name} timestamp", info.timestamp, want_ts)
    consumer.close()

    # --------------------------------------------------------------- configs
    res = ConfigResource(ResourceType.TOPIC, main_topic)

    def describe():
        return wait("DescribeConfigs", admin.describe_configs([res], request_timeout=REQ_S)[res])

    c.step(f"DescribeConfigs {main_topic}")
    entries = describe()
    c.true("retention.ms is reported", "retention.ms" in entries, f"got {sorted(entries)}")
    c.eq("retention.ms", entries["retention.ms"].value, DEFAULT_RETENTION_MS)
    c.true("cleanup.policy is reported", "cleanup.policy" in entries, f"got {sorted(entries)}")
    c.eq("cleanup.policy", entries["cleanup.policy"].value, "delete")

    def synonyms(entry):
        return [(name, ConfigSource(s.source), s.value) for name, s in entry.synonyms.items()]

    c.eq("retention.ms synonyms (the broker default it takes)",
         synonyms(entries["retention.ms"]),
         [("log.retention.ms", ConfigSource.DEFAULT_CONFIG, DEFAULT_RETENTION_MS)])

    c.step("IncrementalAlterConfigs SET retention.ms=3600000")
    inc = ConfigResource(ResourceType.TOPIC, main_topic, incremental_configs=[
        ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET)])
    c.eq("incremental_alter_configs result",
         wait("IncrementalAlterConfigs", admin.incremental_alter_configs([inc], request_timeout=REQ_S)[inc]),
         None)
    e = describe()["retention.ms"]
    c.eq("retention.ms after SET", e.value, "3600000")
    c.eq("retention.ms source after SET", ConfigSource(e.source), ConfigSource.DYNAMIC_TOPIC_CONFIG)
    c.eq("retention.ms is_default after SET", e.is_default, False)
    c.eq("retention.ms synonyms after SET (the topic's value first)", synonyms(e),
         [("retention.ms", ConfigSource.DYNAMIC_TOPIC_CONFIG, "3600000"),
          ("log.retention.ms", ConfigSource.DEFAULT_CONFIG, DEFAULT_RETENTION_MS)])

    c.step("IncrementalAlterConfigs errors")
    bad_value = ConfigResource(ResourceType.TOPIC, main_topic, incremental_configs=[
        ConfigEntry("retention.ms", "soon", incremental_operation=AlterConfigOpType.SET)])
    expect_error("SET retention.ms=soon", admin.incremental_alter_configs(
        [bad_value], request_timeout=REQ_S)[bad_value], KafkaError.INVALID_CONFIG)
    unknown = ConfigResource(ResourceType.TOPIC, main_topic, incremental_configs=[
        ConfigEntry("no.such.config", "1", incremental_operation=AlterConfigOpType.SET)])
    expect_error("SET no.such.config=1", admin.incremental_alter_configs(
        [unknown], request_timeout=REQ_S)[unknown], KafkaError.INVALID_CONFIG)
    c.eq("retention.ms after the refused changes", describe()["retention.ms"].value, "3600000")

    c.step("legacy AlterConfigs retention.ms=7200000")
    legacy = ConfigResource(ResourceType.TOPIC, main_topic, set_config={"retention.ms": "7200000"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # deprecated, but users still call it
        fut = admin.alter_configs([legacy], request_timeout=REQ_S)[legacy]
    c.eq("alter_configs result", wait("AlterConfigs", fut), None)
    c.eq("retention.ms after AlterConfigs", describe()["retention.ms"].value, "7200000")

    c.step("IncrementalAlterConfigs DELETE retention.ms (back to the default)")
    delete = ConfigResource(ResourceType.TOPIC, main_topic, incremental_configs=[
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)])
    c.eq("incremental_alter_configs DELETE result",
         wait("IncrementalAlterConfigs", admin.incremental_alter_configs([delete], request_timeout=REQ_S)[delete]),
         None)
    c.eq("retention.ms after DELETE", describe()["retention.ms"].value, DEFAULT_RETENTION_MS)

    # ------------------------------------------------------ CreatePartitions
    c.step("CreatePartitions 3 -> 5")
    fs = admin.create_partitions([NewPartitions(main_topic, 5)], request_timeout=REQ_S)
    c.eq("create_partitions result", wait("CreatePartitions", fs[main_topic]), None)
    tmd = c.wait_until(f"metadata for {main_topic} with 5 partitions and leaders",
                       lambda: partitions_ready(main_topic, 5))
    c.eq("partition ids", sorted(tmd.partitions), [0, 1, 2, 3, 4])
    fs = admin.create_partitions([NewPartitions(main_topic, 4)], request_timeout=REQ_S)
    expect_error("CreatePartitions 5 -> 4", fs[main_topic], KafkaError.INVALID_PARTITIONS)

    c.step("produce to the new partition 4")
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "message.timeout.ms": int(REQ_S * 1000)})
    reports = []
    producer.produce(main_topic, value=b"new partition", partition=4,
                     on_delivery=lambda err, msg: reports.append((err, msg.partition(), msg.offset())))
    c.eq("messages still queued after flush", flush(producer), 0)
    c.eq("delivery report", reports, [(None, 4, 0)])

    # ------------------------------------------------------------ idempotence
    # Idempotent producers come with consumer groups (issue 3); scripts/test
    # lists the broker's features in SLUICE_FEATURES.
    if "idempotence" not in FEATURES:
        c.step("SKIPPED: the idempotent producer needs InitProducerId, not served yet")
    else:
        c.step("idempotent producer (enable.idempotence=true, zstd) to the new partition 3")
        producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                             "compression.type": "zstd", "linger.ms": 20,
                             "message.timeout.ms": int(REQ_S * 1000)})
        reports = []
        values = [f"idempotent-{j}".encode() for j in range(PER_BATCH)]
        for v in values:
            producer.produce(main_topic, value=v, partition=3,
                             on_delivery=lambda err, msg: reports.append((err, msg.partition(), msg.offset())))
        c.eq("messages still queued after flush", flush(producer), 0)
        c.eq("delivery reports", reports, [(None, 3, j) for j in range(PER_BATCH)])
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"sluice-cfk-{suffix}",
                             "enable.auto.commit": False, "auto.offset.reset": "error"})
        consumer.assign([TopicPartition(main_topic, 3, 0)])
        msgs = []
        deadline = time.monotonic() + 15
        while len(msgs) < PER_BATCH:
            if time.monotonic() > deadline:
                c.fail(f"timed out after 15s waiting for {PER_BATCH} idempotent records, got {len(msgs)}")
            msg = consumer.poll(0.5)
            if msg is not None:
                if msg.error():
                    c.fail(f"consumer error: {msg.error()}")
                msgs.append(msg)
        c.eq("read-back (offset, value)", [(m.offset(), m.value()) for m in msgs], list(enumerate(values)))
        consumer.close()

    # ---------------------------------------------------------- DeleteTopics
    c.step(f"DeleteTopics {main_topic}, {ts_topic}")
    fs = admin.delete_topics([main_topic, ts_topic], operation_timeout=REQ_S, request_timeout=REQ_S)
    c.eq("delete result", wait("DeleteTopics", fs[main_topic]), None)
    c.eq("delete result (timestamps topic)", wait("DeleteTopics", fs[ts_topic]), None)
    c.wait_until(f"metadata to stop listing {main_topic} and {ts_topic}",
                 lambda: main_topic not in topics_now() and ts_topic not in topics_now())
    c.ok("deleted topics are no longer listed")
    fs = admin.delete_topics([main_topic], operation_timeout=REQ_S, request_timeout=REQ_S)
    expect_error("delete the deleted topic again", fs[main_topic], KafkaError.UNKNOWN_TOPIC_OR_PART)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: check_confluent.py HOST:PORT")
    Check("confluent-kafka").run(main)
