#!/usr/bin/env python3
"""Three different clients in ONE classic consumer group on a running Sluice broker.

Usage: check_mixed_group.py HOST:PORT

A confluent-kafka (librdkafka) consumer, a kafka-python consumer and a kafkajs
consumer (js/mixed_group_member.js, run with `node`) subscribe to one topic of
6 partitions in one group. They share the `range` assignor: librdkafka's
`partition.assignment.strategy=range`, kafka-python's RangePartitionAssignor
and a RangeAssigner in mixed_group_member.js (kafkajs has none built in).
Whichever member leads the group computes the assignment for all three and
the others decode it, so the check runs three rounds, each on a fresh topic
and group, with a different client joining first (the first member of an
empty classic group becomes its leader):

  1. the leader joins alone and gets all 6 partitions (DescribeGroups: Stable,
     1 member); then the other two join;
  2. DescribeGroups shows the group Stable with exactly these 3 members
     (client ids, protocol `range`, type classic), each holding the 2
     contiguous partitions Kafka's RangeAssignor gives it in member-id order,
     the same partitions the member itself reports; kafkajs names the leader;
     ListGroups lists the group as Stable;
  3. 120 records (20 per partition) are produced; together the members read
     every record exactly once, each exactly the records of its own
     partitions (if a rebalance happened while they read, which it should
     not, at-least-once is accepted and said so; every record must still
     come);
  4. the committed offsets (auto-commit in all three clients; OffsetFetch
     through the admin API) reach 20 on every partition;
  5. DeleteGroups of the non-empty group -> NON_EMPTY_GROUP;
  6. the members close one at a time, the leader first, each while the
     group is Stable: within 10 s (the session timeout is 30 s, so only
     LeaveGroup removes a member that fast) the group is Stable again with
     the rest, who split the partitions by range and take them over from the
     committed offsets: one more record per partition is read exactly once,
     by its partition's new owner, nothing older is read again, and the
     committed offsets follow; after the last one the group is Empty and
     keeps its committed offsets (22);
  7. DeleteGroups then succeeds and ListGroups no longer lists the group.
"""

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
import uuid

import kafka
from confluent_kafka import (
    Consumer,
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka import version as ck_version, libversion
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka.coordinator.assignors.range import RangePartitionAssignor

from checklib import Check, CheckFailed

REQ_S = 15.0  # bound for every single request / future
PARTITIONS = 6
PER_PARTITION = 20
SESSION_TIMEOUT_MS = 30000
REBALANCE_TIMEOUT_MS = 30000  # max.poll.interval.ms (librdkafka, kafka-python), rebalanceTimeout (kafkajs)
HEARTBEAT_MS = 500
LEAVE_S = 10  # bound for a member's leaving to show, well below the session timeout
JS_MEMBER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "js", "mixed_group_member.js")
CLIENTS = ["librdkafka", "kafka-python", "kafkajs"]


class Member:
    """One consumer in the group, consuming in the background.

    records: (partition, offset, key) in the order received;
    assignments: the partitions of each assignment the client reported;
    errors: anything the client reported going wrong."""

    def __init__(self, label, rank, bootstrap, group, topic, suffix):
        self.label = label
        # Kafka names members CLIENT_ID-UUID, so the rank orders the members
        # (and so decides which range each one gets).
        self.client_id = f"sluice-mixed-{rank}-{label}-{suffix}"
        self.bootstrap, self.group, self.topic = bootstrap, group, topic
        self.records = []
        self.assignments = []
        self.errors = []
        self.stopped = threading.Event()  # set once the client has closed (left the group)
        self.stopped_at = None  # time.monotonic() then
        self._stop = threading.Event()

    def last_assignment(self):
        return self.assignments[-1] if self.assignments else None

    def stop(self):
        self._stop.set()


class ConfluentMember(Member):
    def start(self):
        self.thread = threading.Thread(target=self._run, name=self.label, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            consumer = Consumer({
                "bootstrap.servers": self.bootstrap,
                "group.id": self.group,
                "client.id": self.client_id,
                "partition.assignment.strategy": "range",
                "session.timeout.ms": SESSION_TIMEOUT_MS,
                "heartbeat.interval.ms": HEARTBEAT_MS,
                "max.poll.interval.ms": REBALANCE_TIMEOUT_MS,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": True,
                "auto.commit.interval.ms": 200,
            })
            consumer.subscribe(
                [self.topic],
                on_assign=lambda _c, tps: self.assignments.append(sorted(tp.partition for tp in tps)))
            try:
                while not self._stop.is_set():
                    msg = consumer.poll(0.2)
                    if msg is None:
                        continue
                    if msg.error():
                        self.errors.append(f"poll: {msg.error()}")
                        continue
                    self.records.append((msg.partition(), msg.offset(), msg.key().decode()))
            finally:
                consumer.close()  # commits, then LeaveGroup
        except Exception as e:  # noqa: BLE001 - reported by the check
            self.errors.append(f"{type(e).__name__}: {e}")
        finally:
            self.stopped_at = time.monotonic()
            self.stopped.set()


class KafkaPythonMember(Member):
    def start(self):
        self.thread = threading.Thread(target=self._run, name=self.label, daemon=True)
        self.thread.start()

    def _run(self):
        member = self

        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked):
                pass

            def on_partitions_assigned(self, assigned):
                member.assignments.append(sorted(tp.partition for tp in assigned))

        try:
            consumer = KafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=self.group,
                client_id=self.client_id,
                partition_assignment_strategy=[RangePartitionAssignor],
                session_timeout_ms=SESSION_TIMEOUT_MS,
                heartbeat_interval_ms=HEARTBEAT_MS,
                max_poll_interval_ms=REBALANCE_TIMEOUT_MS,
                request_timeout_ms=int(REQ_S * 1000) + SESSION_TIMEOUT_MS,
                auto_offset_reset="earliest",
                enable_auto_commit=True,
                auto_commit_interval_ms=200,
            )
            consumer.subscribe([self.topic], listener=Listener())
            try:
                while not self._stop.is_set():
                    for tp, recs in consumer.poll(timeout_ms=200).items():
                        self.records.extend((tp.partition, r.offset, r.key.decode()) for r in recs)
            finally:
                consumer.close()  # commits, then LeaveGroup
        except Exception as e:  # noqa: BLE001 - reported by the check
            self.errors.append(f"{type(e).__name__}: {e}")
        finally:
            self.stopped_at = time.monotonic()
            self.stopped.set()


class KafkajsMember(Member):
    """kafkajs in a node subprocess (js/mixed_group_member.js), reporting JSON lines."""

    def __init__(self, *args):
        super().__init__(*args)
        self.member_id = None
        self.leader_id = None
        self.protocol = None
        self.logs = queue.Queue()

    def start(self):
        node = shutil.which("node")
        if node is None:
            raise CheckFailed("node is not on PATH (the kafkajs member needs it)")
        self.proc = subprocess.Popen(
            [node, JS_MEMBER, self.bootstrap, self.group, self.topic, self.client_id],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.thread = threading.Thread(target=self._read, name=self.label, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                self.logs.put(f"unexpected output: {line.rstrip()}")
                continue
            kind = ev.get("event")
            if kind == "record":
                self.records.append((ev["partition"], int(ev["offset"]), ev["key"]))
            elif kind == "join":
                self.member_id, self.leader_id, self.protocol = ev["memberId"], ev["leaderId"], ev["protocol"]
                self.assignments.append(sorted(ev["assignment"].get(self.topic, [])))
            elif kind == "crash":
                self.errors.append(ev["error"])
            elif kind == "log":
                self.logs.put(f"{ev['level']} {ev['namespace']}: {ev['message']} {json.dumps(ev['extra'])}")
            elif kind == "stopped":
                pass
        rc = self.proc.wait()
        if rc != 0:
            self.errors.append(f"node exited with status {rc}")
        self.stopped_at = time.monotonic()
        self.stopped.set()

    def stop(self):
        if not hasattr(self, "proc"):
            return
        try:
            self.proc.stdin.close()  # the member disconnects (LeaveGroup) and exits
        except OSError:
            pass


MEMBER_TYPES = {"librdkafka": ConfluentMember, "kafka-python": KafkaPythonMember, "kafkajs": KafkajsMember}


def main(c: Check):
    bootstrap = sys.argv[1]
    suffix = uuid.uuid4().hex[:10]
    js_version = json.load(open(os.path.join(os.path.dirname(JS_MEMBER), "node_modules", "kafkajs",
                                             "package.json")))["version"]
    c.note(f"confluent-kafka {ck_version()[0]} (librdkafka {libversion()[0]}), kafka-python "
           f"{kafka.__version__}, kafkajs {js_version}; bootstrap {bootstrap}")
    admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": "sluice-check-mixed-group"})
    for leader in CLIENTS:
        run_round(c, admin, bootstrap, suffix, leader)


def run_round(c, admin, bootstrap, suffix, leader):
    tag = f"{suffix}-{leader}"
    topic = f"sluice-mixed-{tag}"
    group = f"sluice-mixed-{tag}"
    all_partitions = list(range(PARTITIONS))

    def wait(what, fut):
        try:
            return fut.result(timeout=REQ_S)
        except TimeoutError:
            c.fail(f"timed out after {REQ_S:.0f}s waiting for {what}")

    c.step(f"[leader {leader}] create {topic} with {PARTITIONS} partitions")
    fs = admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)],
                             request_timeout=REQ_S)
    c.eq("create result", wait("CreateTopics", fs[topic]), None)

    def topic_ready():
        md = admin.list_topics(topic, timeout=REQ_S).topics.get(topic)
        return (md is not None and md.error is None and len(md.partitions) == PARTITIONS
                and all(p.leader >= 0 for p in md.partitions.values()))
    c.wait_until(f"metadata for {topic} with {PARTITIONS} partitions and leaders", topic_ready)

    # Rotate the member-id order from round to round, so that each client gets
    # each of the three ranges once.
    shift = CLIENTS.index(leader)
    members = {label: MEMBER_TYPES[label](label, (i + shift) % 3, bootstrap, group, topic, suffix)
               for i, label in enumerate(CLIENTS)}
    by_client_id = {m.client_id: m for m in members.values()}
    order = [leader] + [x for x in CLIENTS if x != leader]

    def check_members():
        for m in members.values():
            if m.errors:
                c.fail(f"the {m.label} member reported: {'; '.join(m.errors)}")
            if isinstance(m, KafkajsMember):
                while not m.logs.empty():
                    line = m.logs.get()
                    # kafkajs logs the REBALANCE_IN_PROGRESS answers that tell it to rejoin.
                    if "The group is rebalancing" not in line:
                        c.note(f"kafkajs log: {line}")

    last_described = []

    def describe():
        check_members()
        d = wait(f"DescribeGroups {group}", admin.describe_consumer_groups([group], request_timeout=REQ_S)[group])
        last_described[:] = [d]
        return d

    def settled(labels):
        """The group is Stable with exactly these members, and each member's own
        last assignment is what DescribeGroups says it holds; returns the description."""
        d = describe()
        if d.state != ConsumerGroupState.STABLE or len(d.members) != len(labels):
            return None
        if sorted(x.client_id for x in d.members) != sorted(members[lb].client_id for lb in labels):
            return None
        for x in d.members:
            described = sorted(tp.partition for tp in x.assignment.topic_partitions if tp.topic == topic)
            if by_client_id[x.client_id].last_assignment() != described:
                return None
        return d

    def show(d):
        def name(x):
            return by_client_id[x.client_id].label if x.client_id in by_client_id else x.client_id
        return (f"state {d.state.name}, protocol {d.partition_assignor!r}, members "
                + ", ".join(f"{name(x)}={sorted(tp.partition for tp in x.assignment.topic_partitions)}"
                            for x in d.members))

    def range_of(d):
        """Kafka's RangeAssignor for the described members (6 partitions divide
        evenly): in member-id order, each gets the next contiguous range."""
        ids = sorted((x.member_id, by_client_id[x.client_id].label) for x in d.members)
        each = PARTITIONS // len(ids)
        return {label: all_partitions[i * each:(i + 1) * each] for i, (_, label) in enumerate(ids)}

    def wait_group(what, fn, timeout_s):
        """wait_until, saying on timeout what DescribeGroups said last."""
        last_described.clear()
        t = time.monotonic()
        try:
            d = c.wait_until(what, fn, timeout_s=timeout_s)
            c.note(f"waited {time.monotonic() - t:.1f}s for {what}")
            return d
        except CheckFailed as e:
            if last_described:
                c.fail(f"{e}; DescribeGroups said last: {show(last_described[0])}; the members' own "
                       f"assignments: { {m.label: m.last_assignment() for m in members.values()} }")
            raise

    try:
        # -------------------------------------------------------- 1. join
        c.step(f"[leader {leader}] {leader} joins {group} alone")
        members[leader].start()
        d = wait_group(f"{group} Stable with the {leader} member alone holding all {PARTITIONS} partitions",
                       lambda: settled([leader]), timeout_s=30)
        c.ok(f"DescribeGroups: {show(d)}")
        c.eq(f"{leader}'s own assignment", members[leader].last_assignment(), all_partitions)

        c.step(f"[leader {leader}] {order[1]} and {order[2]} join")
        for label in order[1:]:
            members[label].start()
        d = wait_group(f"{group} Stable with 3 members whose own assignments match DescribeGroups",
                       lambda: settled(CLIENTS), timeout_s=45)

        # ------------------------------------------------ 2. the group as described
        c.step(f"[leader {leader}] DescribeGroups and ListGroups of the 3-member group")
        c.ok(f"DescribeGroups: {show(d)}")
        c.eq("group state", d.state, ConsumerGroupState.STABLE)
        c.eq("member client ids", sorted(x.client_id for x in d.members),
             sorted(m.client_id for m in members.values()))
        c.eq("group protocol (assignor)", d.partition_assignor, "range")
        c.eq("simple consumer group", d.is_simple_consumer_group, False)
        if hasattr(d, "type"):
            c.eq("group type", d.type.name, "CLASSIC")
        member_ids = {by_client_id[x.client_id].label: x.member_id for x in d.members}
        c.eq("distinct member ids", len(set(member_ids.values())), 3)
        got = {m.label: m.last_assignment() for m in members.values()}
        c.eq("assignment (range: 2 contiguous partitions each, in member-id order)", got, range_of(d))
        js = members["kafkajs"]
        c.eq("kafkajs's protocol", js.protocol, "range")
        c.eq("kafkajs's member id matches DescribeGroups", js.member_id, member_ids["kafkajs"])
        leader_label = next((lb for lb, mid in member_ids.items() if mid == js.leader_id), js.leader_id)
        c.eq("group leader (from kafkajs's JoinGroup response)", leader_label, leader)

        listing = wait("ListGroups", admin.list_consumer_groups(request_timeout=REQ_S))
        mine = [g for g in listing.valid if g.group_id == group]
        c.eq(f"ListGroups entries for {group}", len(mine), 1)
        c.eq("ListGroups state", mine[0].state, ConsumerGroupState.STABLE)
        c.eq("ListGroups simple consumer group", mine[0].is_simple_consumer_group, False)
        if hasattr(mine[0], "type"):
            c.eq("ListGroups type", mine[0].type.name, "CLASSIC")
        stable = wait("ListGroups (states=STABLE)", admin.list_consumer_groups(
            states={ConsumerGroupState.STABLE}, request_timeout=REQ_S))
        c.true(f"ListGroups filtered on STABLE lists {group}", group in {g.group_id for g in stable.valid},
               f"got {sorted(g.group_id for g in stable.valid)}")
        assignments_before = {m.label: len(m.assignments) for m in members.values()}

        # ------------------------------------------------ 3. produce and consume
        total = PARTITIONS * PER_PARTITION
        c.step(f"[leader {leader}] produce {total} records ({PER_PARTITION} per partition)")
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                             "message.timeout.ms": int(REQ_S * 1000)})
        expected = {}  # (partition, offset) -> key, everything produced

        def produce(rows, first_offset, tag):
            """Produces `rows` records to every partition; returns {(p, offset): key}."""
            reports = []
            batch = {}
            for i in range(rows):
                for p in all_partitions:
                    key = f"{leader}-{p}-{tag}{i}"
                    producer.produce(topic, key=key.encode(), value=f"value {tag}{i}".encode(), partition=p,
                                     on_delivery=lambda err, msg: reports.append((err, msg.partition(), msg.offset())))
                    batch[(p, first_offset + i)] = key
            c.eq("messages still queued after flush", producer.flush(REQ_S), 0)
            c.eq("delivery errors", [str(e) for e, _, _ in reports if e is not None], [])
            c.eq("delivered (partition, offset)", sorted((p, o) for _, p, o in reports), sorted(batch))
            expected.update(batch)
            return batch

        produce(PER_PARTITION, 0, "")

        c.step(f"[leader {leader}] the three members consume")

        def seen():
            check_members()
            return {(p, o) for m in members.values() for p, o, _ in m.records}
        try:
            c.wait_until(f"all {total} records across the three members",
                         lambda: len(seen()) >= total or None, timeout_s=30)
        except CheckFailed as e:
            missing = sorted(set(expected) - seen())
            c.fail(f"{e}; records per member: { {m.label: len(m.records) for m in members.values()} }, "
                   f"{len(missing)} (partition, offset) never seen, first: {missing[:10]}")
        time.sleep(1.0)  # anything more (a duplicate) would come now
        check_members()
        shares = {m.label: len(m.records) for m in members.values()}
        c.note(f"records per member: {shares}")
        for m in members.values():
            c.true(f"{m.label} consumed a non-empty share", len(m.records) > 0, f"shares {shares}")
            bad = [(p, o, k) for p, o, k in m.records if expected.get((p, o)) != k]
            c.eq(f"{m.label}: records whose key is not the one produced at that offset", bad[:5], [])
        c.eq("records seen (partition, offset)", sorted(seen()), sorted(expected))
        rebalanced = {m.label: len(m.assignments) - assignments_before[m.label] for m in members.values()
                      if len(m.assignments) != assignments_before[m.label]}
        if rebalanced:
            c.note(f"the group rebalanced while consuming (new assignments: {rebalanced}); "
                   "at-least-once is accepted, exactly-once is not checked")
        else:
            c.eq("records consumed in all (each exactly once)", sum(shares.values()), total)
            for m in members.values():
                owned = m.last_assignment()
                c.eq(f"{m.label}: records consumed = exactly those of its partitions {owned}",
                     sorted(m.records), sorted((p, o, k) for (p, o), k in expected.items() if p in owned))

        # ------------------------------------------------ 4. committed offsets
        c.step(f"[leader {leader}] committed offsets reach the end ({PER_PARTITION}) on every partition")
        tps = [TopicPartition(topic, p) for p in all_partitions]

        def committed():
            req = ConsumerGroupTopicPartitions(group, tps)
            res = wait("OffsetFetch", admin.list_consumer_group_offsets([req], request_timeout=REQ_S)[group])
            errs = [(tp.partition, str(tp.error)) for tp in res.topic_partitions if tp.error is not None]
            if errs:
                c.fail(f"OffsetFetch partition errors: {errs}")
            return {tp.partition: tp.offset for tp in res.topic_partitions}

        def wait_committed(end):
            last = {}

            def at_end():
                last.update(committed())
                return last == end
            try:
                c.wait_until(f"committed offsets to reach {end}", at_end, timeout_s=15)
            except CheckFailed:
                c.fail(f"committed offsets after 15s: {last}, expected {end}")
            c.eq("committed offsets", last, end)
        end = {p: PER_PARTITION for p in all_partitions}
        wait_committed(end)
        d = describe()
        c.eq("state after consuming", d.state, ConsumerGroupState.STABLE)
        c.eq("member ids after consuming (no member left or rejoined)",
             sorted(x.member_id for x in d.members), sorted(member_ids.values()))

        # ------------------------------------------------ 5. DeleteGroups refused
        c.step(f"[leader {leader}] DeleteGroups while the group has members")
        try:
            wait("DeleteGroups", admin.delete_consumer_groups([group], request_timeout=REQ_S)[group])
            c.fail("DeleteGroups of a group with members succeeded; expected NON_EMPTY_GROUP")
        except KafkaException as e:
            err = e.args[0]
            c.eq("DeleteGroups error", err.name() if isinstance(err, KafkaError) else repr(err),
                 KafkaError(KafkaError.NON_EMPTY_GROUP).name())

        # ------------------------------------------------ 6. leave one by one
        # One at a time, the leader first, each while the group is Stable (a
        # client closing while its group rebalances may rejoin instead of
        # leaving: kafka-python does). LEAVE_S is well below the session
        # timeout: only a LeaveGroup removes a member that fast. The others
        # take over its partitions from the committed offsets: one more record
        # per partition is read once, by its new owner, and nothing old again.
        remaining = list(order)
        for label in order:
            c.step(f"[leader {leader}] the {label} member closes (LeaveGroup)")
            t0 = time.monotonic()
            members[label].stop()
            if not members[label].stopped.wait(REQ_S):
                c.fail(f"timed out after {REQ_S:.0f}s waiting for the {label} member to close")
            c.note(f"the {label} member closed in {members[label].stopped_at - t0:.2f}s")
            remaining.remove(label)
            if not remaining:
                def empty():
                    d = describe()
                    return d if d.state == ConsumerGroupState.EMPTY and not d.members else None
                d = wait_group(f"{group} Empty with no members within {LEAVE_S}s", empty,
                               timeout_s=max(0.5, LEAVE_S - (time.monotonic() - t0)))
                c.ok(f"DescribeGroups: state {d.state.name}, {len(d.members)} members")
                break
            d = wait_group(f"{group} Stable with only {' and '.join(remaining)} within {LEAVE_S}s",
                           lambda: settled(remaining), timeout_s=max(0.5, LEAVE_S - (time.monotonic() - t0)))
            c.ok(f"DescribeGroups: {show(d)}")
            owners = {lb: members[lb].last_assignment() for lb in remaining}
            c.eq(f"assignment after {label} left (range, in member-id order)", owners, range_of(d))

            c.step(f"[leader {leader}] after {label} left: one more record per partition")
            read_before = {lb: len(members[lb].records) for lb in remaining}
            offset = end[0]
            batch = produce(1, offset, f"after-{label}-")
            try:
                c.wait_until(f"the {PARTITIONS} new records at offset {offset}",
                             lambda: set(batch) <= seen() or None, timeout_s=15)
            except CheckFailed as e:
                c.fail(f"{e}; never seen: {sorted(set(batch) - seen())}")
            time.sleep(1.0)  # anything read again (from before the committed offsets) would come now
            check_members()
            c.eq(f"records read after {label} left (each new one once, by its partition's new owner)",
                 {lb: sorted(members[lb].records[read_before[lb]:]) for lb in remaining},
                 {lb: sorted((p, o, k) for (p, o), k in batch.items() if p in owners[lb]) for lb in remaining})
            end = {p: offset + 1 for p in all_partitions}
            wait_committed(end)
        c.eq("committed offsets of the empty group", committed(), end)

        # ------------------------------------------------ 7. DeleteGroups
        c.step(f"[leader {leader}] DeleteGroups of the empty group")
        c.eq("DeleteGroups result",
             wait("DeleteGroups", admin.delete_consumer_groups([group], request_timeout=REQ_S)[group]), None)
        listing = wait("ListGroups", admin.list_consumer_groups(request_timeout=REQ_S))
        c.eq(f"{group} listed after DeleteGroups", group in {g.group_id for g in listing.valid}, False)
    finally:
        for m in members.values():
            m.stop()
    fs = admin.delete_topics([topic], operation_timeout=REQ_S, request_timeout=REQ_S)
    c.eq(f"delete {topic}", wait("DeleteTopics", fs[topic]), None)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: check_mixed_group.py HOST:PORT")
    Check("mixed-group").run(main)
