#!/usr/bin/env python3
"""A keyed workload for measuring log compaction (docs/performance.md).

  compaction-workload.py produce BOOTSTRAP TOPIC N SIZE KEYS CODEC turn|random
      N records of SIZE bytes to partition 0 of TOPIC (confluent-kafka,
      acks=all, linger.ms=5), keyed over KEYS keys in turn (i % KEYS) or at
      random (seeded, so runs repeat), values slices of a random 2 MiB hex
      pool; CODEC is none, gzip, snappy, lz4 or zstd.
  compaction-workload.py compact BOOTSTRAP TOPIC
      sets cleanup.policy=compact on TOPIC (the broker's next pass then sees
      the whole log; its `compacted` log line says how long it took).
  compaction-workload.py count BOOTSTRAP TOPIC
      reads partition 0 from the start to its end: records, distinct keys.

Run with the virtualenv `scripts/test` sets up (.venv/bin/python).
"""

import os
import random
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry,
                                  ConfigResource)


def produce(bootstrap, topic, n, size, keys, codec, mode):
    rnd = random.Random(7)
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                  "compression.type": codec, "queue.buffering.max.kbytes": 1048576,
                  "batch.size": 1000000})
    pool = os.urandom(1 << 20).hex().encode()
    started = time.time()
    for i in range(n):
        key = b"key-%d" % (rnd.randrange(keys) if mode == "random" else i % keys)
        at = (i * 7919) % (len(pool) - size)
        while True:
            try:
                p.produce(topic, key=key, value=pool[at:at + size], partition=0)
                break
            except BufferError:
                p.poll(0.05)
        if i % 10000 == 0:
            p.poll(0)
    if p.flush(60) != 0:
        sys.exit("records still unacknowledged after 60 s")
    print(f"produced {n} x {size} B over {keys} keys ({mode}, {codec}) in {time.time() - started:.1f}s")


def compact(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    entry = ConfigEntry("cleanup.policy", "compact",
                        incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource("topic", topic, incremental_configs=[entry])
    for f in admin.incremental_alter_configs([resource]).values():
        f.result()
    print(f"{topic}: cleanup.policy=compact")


def count(bootstrap, topic):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "compaction-workload",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    records, keys, last = 0, set(), -1
    while True:
        m = c.poll(5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # end of partition
                break
            sys.exit(str(m.error()))
        if m.offset() <= last:
            sys.exit(f"offset {m.offset()} after {last}")
        last = m.offset()
        records += 1
        keys.add(m.key())
    print(f"{topic}: {records} records, {len(keys)} distinct keys, offsets rising")


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) == 8 and args[0] == "produce":
        produce(args[1], args[2], int(args[3]), int(args[4]), int(args[5]), args[6], args[7])
    elif len(args) == 3 and args[0] == "compact":
        compact(args[1], args[2])
    elif len(args) == 3 and args[0] == "count":
        count(args[1], args[2])
    else:
        sys.exit(__doc__)
