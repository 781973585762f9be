#!/usr/bin/env python3
"""A tenant's life through the `sluice` CLI, with confluent-kafka as its app.

Usage: SLUICE_BIN=target/debug/sluice check_cli_e2e.py

Starts `sluice dev --multi-tenant` itself (temporary data directory, free
ports, a plans file with a one-topic plan) and waits for it with
`sluice wait`. Then, as an operator would and as the tenant would with its
own API token:

- provisions tenant `shop` on plan `tiny` and takes its printed config vars;
- creates topic `orders` and consumer group `billing` by bare names (the CLI
  shows `shop.orders` and `shop.billing`);
- produces with confluent-kafka over mTLS using only the config vars
  (KAFKA_URL, KAFKA_TRUSTED_CERT, KAFKA_CLIENT_CERT, KAFKA_CLIENT_CERT_KEY,
  KAFKA_PREFIX), hostname verification on; writes one record with
  `sluice topics write`; consumes everything in the group over SASL_SSL
  (KAFKA_USERNAME, KAFKA_PASSWORD, KAFKA_SASL_MECHANISM), seeing the group's
  lag in `sluice groups list` fall to 0 as it commits;
- reads the records back with `sluice topics tail`;
- is refused a second topic on `tiny` (one topic), moves to `basic-0` with
  `sluice tenants plan` and creates it; `sluice info` shows the new limits
  and the topic data is still there;
- rotates the credential: the old password and certificate stop working,
  the new ones work;
- destroys the tenant: its topics, group offsets, credentials and token are
  gone.
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

from confluent_kafka import Consumer, KafkaException, Producer

from checklib import Check

SLUICE = os.environ.get("SLUICE_BIN", "target/debug/sluice")
RECORDS = 20

PLANS = """
[tiny]
description = "One topic, for this check"
produce_bytes_per_sec = 1048576
consume_bytes_per_sec = 1048576
capacity_bytes = 1073741824
max_partitions = 8
max_partitions_per_topic = 4
default_partitions = 2
max_topics = 1
max_groups = 2
retention_ms_min = 3600000
retention_ms_max = 604800000
retention_ms_default = 86400000
max_message_bytes = 1048576
explicit_groups = true
admin_topics = true
max_connections = 20
max_requests_per_sec = 1000
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Cli:
    """Runs the sluice CLI against one broker with one token."""

    def __init__(self, url, token):
        self.url = url
        self.token = token

    def run(self, *args, check=True):
        env = dict(os.environ, SLUICE_URL=self.url, SLUICE_TOKEN=self.token)
        p = subprocess.run([SLUICE, *args], env=env, capture_output=True, text=True, timeout=120)
        if check and p.returncode != 0:
            raise RuntimeError(f"`sluice {' '.join(args)}` exited {p.returncode}: {p.stderr.strip()}")
        return p

    def json(self, *args):
        return json.loads(self.run(*args, "--json").stdout)


def mtls(config, **extra):
    conf = {
        "bootstrap.servers": config["KAFKA_URL"],
        "security.protocol": "SSL",
        "ssl.ca.pem": config["KAFKA_TRUSTED_CERT"],
        "ssl.certificate.pem": config["KAFKA_CLIENT_CERT"],
        "ssl.key.pem": config["KAFKA_CLIENT_CERT_KEY"],
        "ssl.endpoint.identification.algorithm": "https",
    }
    conf.update(extra)
    return conf


def sasl_ssl(config, password=None, **extra):
    conf = {
        "bootstrap.servers": config["KAFKA_URL"],
        "security.protocol": "SASL_SSL",
        "ssl.ca.pem": config["KAFKA_TRUSTED_CERT"],
        "ssl.endpoint.identification.algorithm": "https",
        "sasl.mechanism": config["KAFKA_SASL_MECHANISM"],
        "sasl.username": config["KAFKA_USERNAME"],
        "sasl.password": password or config["KAFKA_PASSWORD"],
    }
    conf.update(extra)
    return conf


def produce(conf, topic, values):
    errors = []
    p = Producer(dict(conf, **{"acks": "all", "message.timeout.ms": 15000}))
    for v in values:
        p.produce(topic, value=v, key=v, on_delivery=lambda e, m: e and errors.append(e))
    left = p.flush(20)
    if left or errors:
        raise KafkaException(errors[0] if errors else f"{left} records not delivered")


def can_log_in(conf):
    """Whether a client with `conf` can fetch metadata (an authenticated request)."""
    # One attempt: librdkafka otherwise retries a refused login every few
    # milliseconds, and the broker's limit on failed logins per address
    # (10 a minute) would then refuse the next, good, login too. error_cb
    # and log_level keep the expected failures off stderr.
    p = Producer(dict(conf, **{
        "error_cb": lambda e: None, "log_level": 0, "socket.timeout.ms": 5000,
        "reconnect.backoff.ms": 10000, "reconnect.backoff.max.ms": 10000}))
    try:
        p.list_topics(timeout=6)
        return True
    except KafkaException:
        return False


def body(c: Check):
    tmp = tempfile.mkdtemp(prefix="sluice-cli-e2e-")
    broker = None
    try:
        kafka, tls, http = free_port(), free_port(), free_port()
        plans = os.path.join(tmp, "plans.toml")
        with open(plans, "w") as f:
            f.write(PLANS)
        url = f"http://127.0.0.1:{http}"
        c.step("start sluice dev --multi-tenant and wait for it")
        log = open(os.path.join(tmp, "broker.log"), "w")
        broker = subprocess.Popen(
            [SLUICE, "dev", "--multi-tenant", "--data-dir", os.path.join(tmp, "data"),
             "--kafka-addr", f"127.0.0.1:{kafka}", "--kafka-tls-addr", f"127.0.0.1:{tls}",
             "--http-addr", f"127.0.0.1:{http}", "--plans", plans,
             "--group-initial-rebalance-delay-ms", "300"],
            stdout=log, stderr=subprocess.STDOUT)
        c.eq("`sluice wait` exit code", Cli(url, "").run("wait", "--timeout", "60s", check=False).returncode, 0)
        with open(os.path.join(tmp, "data", "operator.token")) as f:
            operator = Cli(url, f.read().strip())

        c.step("provision tenant shop on plan tiny")
        created = operator.json("tenants", "create", "shop", "--plan", "tiny")
        config = created["config"]
        c.eq("KAFKA_PREFIX", config["KAFKA_PREFIX"], "shop.")
        c.true("KAFKA_URL is the TLS listener", config["KAFKA_URL"].endswith(f":{tls}"), config["KAFKA_URL"])
        token = operator.json("tokens", "create", "--tenant", "shop")["token"]
        shop = Cli(url, token)

        c.step("create a topic and a group by bare names")
        out = shop.run("topics", "create", "orders", "--partitions", "2").stdout
        c.true("topics create shows the full name", "shop.orders" in out, out)
        out = shop.run("groups", "create", "billing").stdout
        c.true("groups create shows the full name", "shop.billing" in out, out)
        topic = config["KAFKA_PREFIX"] + "orders"
        group = config["KAFKA_PREFIX"] + "billing"
        listed = [t["name"] for t in shop.json("topics", "list")["topics"]]
        c.eq("the tenant's topics", listed, [topic])

        c.step("produce over mTLS with the config vars; write one record with the CLI")
        values = [f"order-{i}".encode() for i in range(RECORDS)]
        produce(mtls(config), topic, values)
        c.ok(f"{RECORDS} records acknowledged over mTLS")
        shop.run("topics", "write", "orders", "from-cli", "--key", "k1", "--partition", "0")
        c.ok("`sluice topics write` wrote a record")

        c.step("consume in the group over SASL_SSL; lag falls to 0")
        consumer = Consumer(sasl_ssl(config, **{
            "group.id": group, "auto.offset.reset": "earliest",
            "enable.auto.commit": False}))
        consumer.subscribe([topic])
        seen = []

        def lag():
            groups = {g["group_id"]: g for g in shop.json("groups", "list")["groups"]}
            return groups.get(group, {}).get("total_lag")

        deadline = time.monotonic() + 60
        while len(seen) < RECORDS + 1 and time.monotonic() < deadline:
            m = consumer.poll(1.0)
            if m is None or m.error():
                continue
            seen.append(m.value())
            if len(seen) == RECORDS // 2:
                consumer.commit(asynchronous=False)
                c.true("lag after committing half is above 0",
                       c.wait_until("the group's lag", lambda: (lag() or 0) > 0, 20))
        consumer.commit(asynchronous=False)
        c.eq("records consumed", sorted(seen), sorted(values + [b"from-cli"]))
        c.wait_until("the group's lag to reach 0", lambda: lag() == 0, 20)
        c.ok("`sluice groups list` shows lag 0 after the last commit")
        consumer.close()

        c.step("tail through the CLI")
        out = shop.run("topics", "tail", "orders", "--from-beginning", "--count", str(RECORDS + 1),
                       "--timeout", "30s", "--max-length", "5").stdout
        lines = [l.split(" ") for l in out.splitlines() if l.strip()]
        c.eq("tail lines", len(lines), RECORDS + 1)
        c.true("lines are `topic partition offset length value`",
               all(len(l) == 5 and l[0] == topic and l[1].isdigit() and l[2].isdigit() for l in lines),
               out[:400])
        cli_line = [l for l in lines if l[3] == str(len("from-cli"))]
        c.true("the CLI's record is there, its value cut to 5 characters",
               any(l[4] == "from-" for l in cli_line), out[:400])

        c.step("plan change in place")
        refused = shop.run("topics", "create", "payments", check=False)
        c.true("a second topic is refused on plan tiny", refused.returncode == 1, refused.stdout)
        c.true("the refusal names the plan's topic limit", "plan `tiny` allows 1 topics" in refused.stderr,
               refused.stderr)
        info = shop.json("info")
        c.eq("max topics on tiny", info["usage"]["max_topics"], 1)
        operator.run("tenants", "plan", "shop", "basic-0")
        info = shop.json("info")
        c.eq("plan after the change", info["plan"], "basic-0")
        c.eq("max topics on basic-0", info["usage"]["max_topics"], 40)
        shop.run("topics", "create", "payments", "--partitions", "1")
        c.ok("a second topic is created on basic-0")
        c.true("data survives the plan change", info["usage"]["data_bytes"] > 0, json.dumps(info["usage"]))
        groups = {g["group_id"]: g for g in shop.json("groups", "list")["groups"]}
        c.eq("the group's lag after the plan change", groups[group]["total_lag"], 0)

        c.step("rotate the credential")
        rotated = shop.json("credentials", "rotate", config["KAFKA_USERNAME"], "--tenant", "shop")
        c.true("the old password no longer logs in", not can_log_in(sasl_ssl(config)))
        c.true("the old certificate no longer logs in", not can_log_in(mtls(config)))
        new = dict(config, KAFKA_CLIENT_CERT=rotated["client_cert"],
                   KAFKA_CLIENT_CERT_KEY=rotated["client_cert_key"])
        c.true("the new password logs in", can_log_in(sasl_ssl(config, rotated["password"])))
        c.true("the new certificate logs in", can_log_in(mtls(new)))

        c.step("destroy the tenant")
        refused = operator.run("tenants", "destroy", "shop", check=False)
        c.eq("destroy without --confirm exits", refused.returncode, 1)
        operator.run("tenants", "destroy", "shop", "--confirm", "shop")
        all_topics = [t["name"] for t in operator.json("topics", "list")["topics"]]
        c.true("its topics are gone", not any(t.startswith("shop.") for t in all_topics), str(all_topics))
        all_groups = [g["group_id"] for g in operator.json("groups", "list")["groups"]]
        c.true("its group and offsets are gone", group not in all_groups, str(all_groups))
        c.true("its credential no longer logs in", not can_log_in(sasl_ssl(config, rotated["password"])))
        gone = shop.run("topics", "list", check=False)
        c.eq("its token is refused", gone.returncode, 1)
    finally:
        if broker:
            broker.terminate()
            try:
                broker.wait(20)
            except subprocess.TimeoutExpired:
                broker.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    Check("cli-e2e", total_timeout_s=400).run(body)
