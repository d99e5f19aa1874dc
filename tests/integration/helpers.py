"""Client helpers for the integration tests: produce and consume with
confluent-kafka (librdkafka) and kafka-python, with deadlines instead of sleeps."""

import os
import subprocess
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def ck_producer(bootstrap, **conf):
    c = {"bootstrap.servers": bootstrap, "linger.ms": 5}
    c.update(conf)
    return Producer(c)


def ck_produce(bootstrap, topic, records, partition=None, **conf):
    """Produces (key, value, headers) tuples; returns the delivery reports as
    (partition, offset) in send order, failing on any delivery error."""
    p = ck_producer(bootstrap, **conf)
    results = [None] * len(records)
    errors = []

    def report(i):
        def cb(err, msg):
            if err is not None:
                errors.append((i, err))
            else:
                results[i] = (msg.partition(), msg.offset())
        return cb

    for i, (k, v, h) in enumerate(records):
        kw = {"key": k, "value": v, "headers": h, "on_delivery": report(i)}
        if partition is not None:
            kw["partition"] = partition
        while True:
            try:
                p.produce(topic, **kw)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(60)
    assert left == 0, f"{left} records not delivered"
    assert not errors, errors[:5]
    return results


def ck_consume(bootstrap, topic, partitions, count, offset=0, timeout=60, **conf):
    """Reads count records from the given partitions starting at offset."""
    c = {"bootstrap.servers": bootstrap, "group.id": "samsa-test-unused",
         "enable.auto.commit": False, "enable.partition.eof": False}
    c.update(conf)
    consumer = Consumer(c)
    consumer.assign([TopicPartition(topic, p, offset) for p in partitions])
    out = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < count and time.monotonic() < deadline:
            msgs = consumer.consume(num_messages=10000, timeout=0.5)
            for m in msgs:
                assert m.error() is None, m.error()
                out.append(m)
    finally:
        consumer.close()
    return out


def ck_admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap})


def ck_create_topic(bootstrap, name, partitions=1, config=None):
    admin = ck_admin(bootstrap)
    fs = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})])
    fs[name].result(30)


def wait_for(cond, timeout=20.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


KAFKA_REF = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "bench", "kafka-ref", "kafka-ref.sh")
# Kafka's tools log to stderr, errors only, so their stdout is what they print.
KAFKA_TOOL_LOG4J = """status = error
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = %p %m%n
rootLogger.level = ERROR
rootLogger.appenderRef.err.ref = STDERR
"""


def kafka_tool_runner(scratch_dir):
    """run(main_class, *args) -> (exit code, stdout, stderr) of a Kafka 4.4 tool, from the
    jars bench/kafka-ref/kafka-ref.sh resolves; scratch_dir holds its log4j config."""
    cp = subprocess.run([KAFKA_REF, "classpath"], check=True, capture_output=True, text=True,
                        timeout=900).stdout.strip()
    log4j = os.path.join(str(scratch_dir), "log4j2.properties")
    with open(log4j, "w") as f:
        f.write(KAFKA_TOOL_LOG4J)

    def run(main, *args):
        p = subprocess.run(["java", "-cp", cp, f"-Dlog4j2.configurationFile={log4j}", main,
                            *args], capture_output=True, text=True, timeout=120)
        return p.returncode, p.stdout, p.stderr
    return run
