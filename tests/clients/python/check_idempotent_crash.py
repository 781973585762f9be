#!/usr/bin/env python3
"""confluent-kafka's idempotent producer across repeated kill -9 of the broker.

Usage: SLUICE_BIN=target/debug/sluice check_idempotent_crash.py

Starts `sluice dev` itself (a temporary data directory, free ports), then
produces a numbered sequence of records per partition with
enable.idempotence=true and acks=all to a 4-partition topic, while it kills
the broker with SIGKILL three times mid-stream and starts it again on the
same data and ports. Then it reads everything back and checks that no
record was written twice, that every partition holds the producer's
numbers in order without gaps, and that every acknowledged record is there
at the offset it was acknowledged with.

A kill rarely lands between a commit and its acknowledgement, which is the
case idempotence is for. So the producer talks to the broker through a small
proxy (on 127.0.0.2, the address the broker advertises) that, for a moment
before each kill, lets requests through but drops the broker's responses:
the batches sent then are committed but never acknowledged, and the
producer retries them after the restart. Without idempotence they would be
written twice (with enable.idempotence=false this check fails).
"""

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from checklib import Check

PARTITIONS = 4
KILLS = 3
RATE = 3000  # records a second, spread over the partitions
RUN_S = 2.0  # producing between kills (and after the last restart)
DOWN_S = 1.0  # producing into librdkafka's queue while the broker is down
HOLD_S = 0.3  # responses dropped before each kill
PROXY_HOST = "127.0.0.2"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class AckDroppingProxy:
    """Forwards PROXY_HOST:port to 127.0.0.1:port; while `dropping` is set,
    the broker's responses are read and thrown away."""

    def __init__(self, port):
        self.port = port
        self.dropping = threading.Event()
        self.dropped_bytes = 0
        self.lock = threading.Lock()
        self.conns = []
        self.server = socket.create_server((PROXY_HOST, port), reuse_port=False)
        self.server.settimeout(0.2)
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                broker = socket.create_connection(("127.0.0.1", self.port), timeout=2)
                broker.settimeout(None)
            except OSError:
                client.close()  # the broker is down: the client retries
                continue
            with self.lock:
                self.conns.append((client, broker))
            threading.Thread(target=self._pump, args=(client, broker, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(broker, client, True), daemon=True).start()

    def _pump(self, src, dst, responses):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if responses and self.dropping.is_set():
                    self.dropped_bytes += len(data)
                    continue
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self):
        """Closes every proxied connection, as a crash does."""
        with self.lock:
            conns, self.conns = self.conns, []
        for pair in conns:
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self):
        self.closed = True
        self.cut()
        self.server.close()


class Broker:
    """`sluice dev` on a fixed data directory and fixed ports."""

    def __init__(self, binary, data_dir, log_path):
        self.binary = binary
        self.data_dir = data_dir
        self.log_path = log_path
        self.kafka_port = free_port()
        self.http_port = free_port()
        while self.http_port == self.kafka_port:
            self.http_port = free_port()
        self.proc = None

    @property
    def bootstrap(self):
        """Through the proxy, as the broker advertises itself."""
        return f"{PROXY_HOST}:{self.kafka_port}"

    def metric(self, name):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics", timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " ") or line.startswith(name + "{"):
                    return float(line.rsplit(" ", 1)[1])
        return 0.0

    def start(self, c):
        log = open(self.log_path, "ab")
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info,sqlx=warn"))
        self.proc = subprocess.Popen(
            [self.binary, "dev", "--data-dir", self.data_dir,
             "--kafka-addr", f"127.0.0.1:{self.kafka_port}", "--advertised-host", PROXY_HOST,
             "--http-addr", f"127.0.0.1:{self.http_port}"],
            stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()

        def healthy():
            if self.proc.poll() is not None:
                c.fail(f"sluice exited with {self.proc.returncode} while starting:\n{self.log_tail()}")
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/healthz", timeout=2) as r:
                return r.status == 200
        c.wait_until("the broker's /healthz", healthy, timeout_s=60, interval_s=0.1)

    def kill9(self):
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill9()
            self.proc = None

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError as e:
            return f"(no log: {e})"


def main(c):
    binary = os.environ.get("SLUICE_BIN", "target/debug/sluice")
    if not os.access(binary, os.X_OK):
        c.fail(f"SLUICE_BIN={binary!r} is not an executable sluice binary")
    tmp = tempfile.mkdtemp(prefix="sluice-idem-crash-")
    broker = Broker(os.path.abspath(binary), os.path.join(tmp, "data"), os.path.join(tmp, "broker.log"))
    proxy = None
    try:
        proxy = AckDroppingProxy(broker.kafka_port)
        run(c, broker, proxy)
    except BaseException:
        print(f"--- last lines of the broker log ({broker.log_path})\n{broker.log_tail()}---", flush=True)
        raise
    finally:
        broker.stop()
        if proxy is not None:
            proxy.close()
    shutil.rmtree(tmp, ignore_errors=True)


def run(c, broker, proxy):
    c.step(f"start {broker.binary} dev on {broker.bootstrap}")
    broker.start(c)
    topic = f"idem-crash-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    fs = admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)],
                             operation_timeout=15, request_timeout=15)
    c.eq(f"create {topic} ({PARTITIONS} partitions)", fs[topic].result(timeout=15), None)

    errors = []
    producer = Producer({
        "bootstrap.servers": broker.bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        # Long enough that nothing expires while the broker restarts: every
        # record must be delivered, through retries.
        "message.timeout.ms": 120000,
        "retry.backoff.ms": 50,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
        "log_level": 2,
        "error_cb": lambda e: errors.append(e),
    })
    acked = {}  # (partition, number) -> offset
    failed = []

    def on_delivery(err, msg):
        if err is not None:
            failed.append((msg.partition(), msg.value(), str(err)))
            return
        _, n = msg.value().decode().split(":")
        key = (msg.partition(), int(n))
        if key in acked:
            failed.append((msg.partition(), msg.value(), "delivered twice"))
        acked[key] = msg.offset()

    sent = [0] * PARTITIONS

    def produce_for(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(RATE // 100):
                p = random.randrange(PARTITIONS)
                value = f"{p}:{sent[p]}".encode()
                while True:
                    try:
                        producer.produce(topic, value=value, partition=p, on_delivery=on_delivery)
                        break
                    except BufferError:
                        producer.poll(0.05)
                sent[p] += 1
            producer.poll(0.01)

    # Retries answered as duplicates, summed over the broker's lives (each
    # restart starts the counter again).
    duplicates = 0.0
    for kill in range(1, KILLS + 1):
        c.step(f"produce for {RUN_S}s, then kill -9 the broker ({kill} of {KILLS})")
        produce_for(RUN_S)
        dropped = proxy.dropped_bytes
        proxy.dropping.set()
        produce_for(HOLD_S)
        # The producer may still be reconnecting after the last restart:
        # hold until some response was actually swallowed.
        deadline = time.monotonic() + 15
        while proxy.dropped_bytes == dropped and time.monotonic() < deadline:
            produce_for(0.1)
        duplicates += broker.metric("sluice_produce_duplicates_total")
        broker.kill9()
        proxy.cut()
        proxy.dropping.clear()
        c.note(f"killed with {sum(sent) - len(acked)} records unacknowledged, "
               f"after dropping {proxy.dropped_bytes - dropped} bytes of responses")
        c.true("responses were dropped before the kill", proxy.dropped_bytes > dropped)
        produce_for(DOWN_S)
        c.step(f"restart the broker on the same data ({kill} of {KILLS})")
        broker.start(c)
    c.step(f"produce for {RUN_S}s more, then flush")
    produce_for(RUN_S)
    left = producer.flush(120)
    c.eq("records still queued after flush", left, 0)
    fatal = [str(e) for e in errors if e.fatal()]
    c.eq("fatal producer errors", fatal, [])
    c.eq("failed deliveries", failed[:5], [])
    total = sum(sent)
    c.eq("acknowledged records", len(acked), total)
    c.true(f"{total} records were produced across {KILLS} kills", total > KILLS * RATE)
    duplicates += broker.metric("sluice_produce_duplicates_total")
    c.true(f"the broker answered retries of committed batches with their offsets ({duplicates:.0f} times)",
           duplicates > 0)

    c.step("read every partition from offset 0 to its high watermark")
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"idem-crash-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "auto.offset.reset": "error"})
    for p in range(PARTITIONS):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15)
        c.eq(f"partition {p}: log start", low, 0)
        consumer.assign([TopicPartition(topic, p, 0)])
        got = []
        deadline = time.monotonic() + 60
        while len(got) < high:
            if time.monotonic() > deadline:
                c.fail(f"partition {p}: timed out reading {high} records, got {len(got)}")
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                c.fail(f"partition {p}: consumer error {msg.error()}")
            part, n = msg.value().decode().split(":")
            got.append((msg.offset(), int(part), int(n)))
        offsets = [o for o, _, _ in got]
        c.eq(f"partition {p}: offsets are dense from 0", offsets, list(range(high)))
        c.eq(f"partition {p}: records of other partitions", [g for g in got if g[1] != p][:3], [])
        numbers = [n for _, _, n in got]
        # No duplicates, no gaps, in the producer's order: exactly 0..sent-1.
        c.eq(f"partition {p}: the producer's numbers, once each, in order", numbers, list(range(sent[p])))
        wrong = [(n, acked.get((p, n)), o) for o, _, n in got if acked.get((p, n)) != o]
        c.eq(f"partition {p}: records at the offsets they were acknowledged with", wrong[:3], [])
    consumer.close()


if __name__ == "__main__":
    Check("idempotent-crash", total_timeout_s=420).run(main)
