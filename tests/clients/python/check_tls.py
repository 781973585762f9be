#!/usr/bin/env python3
"""confluent-kafka against Sluice's TLS listener, hostname verification on.

Usage: check_tls.py PORT DIR TOPIC

DIR holds ca.pem (the service CA, KAFKA_TRUSTED_CERT), client.pem/client.key
(a current credential's certificate), old.pem/old.key (the same credential's
certificate before rotation), foreign.pem/foreign.key (signed by another CA),
and username/password (the credential's SCRAM login). TOPIC exists and the
credential may read and write it.

Covers: mTLS (security.protocol=SSL) through localhost and 127.0.0.1,
producing a record and reading it back; SASL_SSL with SCRAM-SHA-512 and no
client certificate; a rotated credential's old certificate and a certificate
of another CA are refused.
"""

import os
import sys
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from checklib import Check

PORT, DIR, TOPIC = sys.argv[1], sys.argv[2], sys.argv[3]


def path(name):
    return os.path.join(DIR, name)


def read(name):
    with open(path(name)) as f:
        return f.read().strip()


def tls(host, cert=None):
    conf = {
        "bootstrap.servers": f"{host}:{PORT}",
        "ssl.ca.location": path("ca.pem"),
        "ssl.endpoint.identification.algorithm": "https",
        "security.protocol": "SSL",
    }
    if cert:
        conf["ssl.certificate.location"] = path(f"{cert}.pem")
        conf["ssl.key.location"] = path(f"{cert}.key")
    return conf


def sasl_ssl(host):
    conf = tls(host)
    conf.update({
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": read("username"),
        "sasl.password": read("password"),
    })
    return conf


def round_trip(c, what, conf):
    c.step(f"{what}: produce and read back")
    value = f"{what}-{uuid.uuid4()}".encode()
    errors = []
    p = Producer({**conf, "message.timeout.ms": 10000})
    p.produce(TOPIC, value, on_delivery=lambda err, msg: err and errors.append(err))
    left = p.flush(15)
    c.true(f"{what}: record delivered", left == 0 and not errors, f"left={left} errors={errors}")
    consumer = Consumer({**conf, "group.id": f"{TOPIC}-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(TOPIC, 0, 0)])

    def found():
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            return None
        return msg.value() == value

    c.wait_until(f"{what}: the record read back", found, timeout_s=15)
    c.ok(f"{what}: record read back")
    consumer.close()


def refused(c, what, conf):
    c.step(f"{what}: refused")
    conf = {**conf, "socket.timeout.ms": 3000}
    p = Producer(conf)
    try:
        md = p.list_topics(timeout=4)
        c.fail(f"{what}: expected no metadata, got brokers {list(md.brokers)}")
    except KafkaException as e:
        c.ok(f"{what}: no metadata ({e.args[0].name()})")


def body(c):
    round_trip(c, "mtls-localhost", tls("localhost", "client"))
    round_trip(c, "mtls-127.0.0.1", tls("127.0.0.1", "client"))
    round_trip(c, "sasl-ssl-scram-sha-512", sasl_ssl("localhost"))
    refused(c, "rotated-certificate", tls("localhost", "old"))
    refused(c, "foreign-ca-certificate", tls("localhost", "foreign"))


if __name__ == "__main__":
    Check("confluent-kafka-tls", total_timeout_s=120).run(body)
