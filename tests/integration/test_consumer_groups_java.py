"""One consumer group (KIP-848, group.protocol=consumer) mixing clients: Kafka 4.4's Java
consumer (kafka-console-consumer's ConsoleConsumer, with client.rack set on a broker with
broker.rack) and confluent-kafka (librdkafka) share the partitions of a topic and read every
record once between them; Kafka 4.4's kafka-consumer-groups.sh (ConsumerGroupCommand) lists the
group as a consumer group and describes both members with their epochs and assignments. The Java
side runs from the Kafka 4.4 jars bench/kafka-ref/kafka-ref.sh resolves; skipped without Java."""

import os
import shutil
import subprocess
import threading

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from helpers import KAFKA_REF, KAFKA_TOOL_LOG4J, ck_create_topic, ck_produce, kafka_tool_runner, wait_for

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="Java is missing")

BROKER = {"group.initial.rebalance.delay.ms": "0", "group.consumer.heartbeat.interval.ms": "300",
          "group.consumer.session.timeout.ms": "10000", "group.consumer.min.heartbeat.interval.ms": "100",
          "group.consumer.min.session.timeout.ms": "1000", "broker.rack": "rack-a"}
GROUPS = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
CONSOLE = "org.apache.kafka.tools.consumer.ConsoleConsumer"


class JavaMember:
    """kafka-console-consumer in the group, its printed values collected by a thread."""

    def __init__(self, tmp_path, bootstrap, group, topic):
        cp = subprocess.run([KAFKA_REF, "classpath"], check=True, capture_output=True, text=True,
                            timeout=900).stdout.strip().splitlines()[-1]
        log4j = os.path.join(str(tmp_path), "log4j2-console.properties")
        with open(log4j, "w") as f:
            f.write(KAFKA_TOOL_LOG4J)
        props = ["group.protocol=consumer", "auto.offset.reset=earliest", "client.id=java-member",
                 "client.rack=rack-a"]
        cmd = ["java", "-cp", cp, f"-Dlog4j2.configurationFile={log4j}", CONSOLE, "--bootstrap-server",
               bootstrap, "--topic", topic, "--group", group]
        for p in props:
            cmd += ["--command-property", p]
        self.seen = []
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.seen.append(line.rstrip("\n"))

    def stop(self):
        """SIGTERM: the console consumer closes its consumer (committing, leaving the group)."""
        self.proc.terminate()
        try:
            self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        self.reader.join(10)


class RdkafkaMember:
    """confluent-kafka, committing after each batch and before partitions go."""

    def __init__(self, bootstrap, group, topic):
        self.seen = []
        self.pending = False
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "consumer",
                           "auto.offset.reset": "earliest", "enable.auto.commit": False,
                           "client.id": "rdkafka-member", "client.rack": "rack-a"})
        self.c.subscribe([topic], on_revoke=lambda c, ps: self.commit())

    def commit(self):
        if self.pending:
            self.c.commit(asynchronous=False)
            self.pending = False

    def step(self):
        for m in self.c.consume(100, 0.1):
            if not m.error():
                self.seen.append(m.value().decode())
                self.pending = True
        self.commit()


def test_java_and_librdkafka_in_one_consumer_group(make_broker, tmp_path):
    b = make_broker(BROKER)
    ck_create_topic(b.bootstrap, "mix848", 4)
    total = 4000
    ck_produce(b.bootstrap, "mix848", [(None, f"m{i}".encode(), None) for i in range(total // 2)])
    java = JavaMember(tmp_path, b.bootstrap, "g-mix", "mix848")
    rd = None
    try:
        wait_for(lambda: len(java.seen) >= 500, timeout=90, what="the Java member consuming")
        rd = RdkafkaMember(b.bootstrap, "g-mix", "mix848")
        admin = AdminClient({"bootstrap.servers": b.bootstrap})

        def shared():
            rd.step()
            d = admin.describe_consumer_groups(["g-mix"])["g-mix"].result(10)
            owned = {m.client_id: len(m.assignment.topic_partitions) for m in d.members}
            return owned.get("java-member", 0) > 0 and owned.get("rdkafka-member", 0) > 0 and \
                sum(owned.values()) == 4
        wait_for(shared, timeout=60, what="both clients owning partitions")
        # The broker's rack is what clients see of it (client.rack is matched against it).
        assert [n.rack for n in admin.describe_cluster().result(10).nodes] == ["rack-a"]
        # Into every partition (keyless records stick to one or two partitions for the
        # producer's linger, which may all be the Java member's): each member gets some.
        for p in range(4):
            ck_produce(b.bootstrap, "mix848",
                       [(None, f"m{i}".encode(), None) for i in range(total // 2 + p, total, 4)],
                       partition=p)

        def all_read():
            rd.step()
            return len(set(java.seen) | set(rd.seen)) >= total
        wait_for(all_read, timeout=90, what="every record read by one of the two")
        assert len(rd.seen) > 0 and len(java.seen) > 0
        both = java.seen + rd.seen
        assert sorted(set(both)) == sorted(f"m{i}" for i in range(total))
        assert len(both) == total, f"{len(both) - total} records read twice"

        run = kafka_tool_runner(tmp_path)
        rc, out, err = run(GROUPS, "--bootstrap-server", b.bootstrap, "--list", "--type")
        assert rc == 0, err
        assert any(line.split()[:2] == ["g-mix", "Consumer"] for line in out.splitlines()), out
        rc, out, err = run(GROUPS, "--bootstrap-server", b.bootstrap, "--describe", "--group", "g-mix",
                           "--members", "--verbose")
        assert rc == 0, err
        rows = [line.split() for line in out.splitlines() if line.startswith("g-mix")]
        assert sorted(r[3] for r in rows) == ["java-member", "rdkafka-member"], out
        header = [line.split() for line in out.splitlines() if line.startswith("GROUP")][0]
        assert "CURRENT-EPOCH" in header and "TARGET-ASSIGNMENT" in header, out
        parts = header.index("#PARTITIONS")
        assert sum(int(r[parts]) for r in rows) == 4, out
    finally:
        java.stop()
        if rd:
            rd.c.close()
