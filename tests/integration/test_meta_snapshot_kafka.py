"""Kafka 4.4 reads a metadata snapshot (.checkpoint) that Samsa wrote, and Samsa reads one
that Kafka wrote (kafka-storage format). Kafka's DumpLogSegments (kafka-dump-log.sh
--cluster-metadata-decoder; Kafka 4.4 moved it to org.apache.kafka.tools) decodes every
batch and record of ours, finds the header and footer control records where Kafka puts
them and the image that was written; Kafka's snapshot reader (RecordsSnapshotReader with
CRC checks, replayed into a MetadataDelta: what a Kafka controller or broker does at start,
fixtures/KafkaLoadSnapshot.java) builds the same image. Samsa's side is the unit-test
binary (`build/tests/test_meta_snapshot --write DIR` writes a fixed image, `--load FILE`
loads one); Kafka runs from the 4.4 jars that bench/kafka-ref/kafka-ref.sh resolves.
Skipped when Java is missing."""

import json
import os
import shutil
import subprocess
from collections import Counter

import pytest

from conftest import ROOT
from helpers import kafka_tool_runner

WRITER = os.path.join(ROOT, "build", "tests", "test_meta_snapshot")
LOADER = os.path.join(ROOT, "tests", "integration", "fixtures", "KafkaLoadSnapshot.java")
DUMP = "org.apache.kafka.tools.DumpLogSegments"

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="Java is missing")


@pytest.fixture(scope="module")
def kafka(tmp_path_factory):
    return kafka_tool_runner(tmp_path_factory.mktemp("tools"))


def test_kafka_reads_samsa_snapshot(tmp_path, kafka):
    """DumpLogSegments decodes every record of a Samsa snapshot, header first, footer last."""
    assert os.access(WRITER, os.X_OK), f"{WRITER} missing: run make build"
    snapdir = tmp_path / "__cluster_metadata-0"
    snapdir.mkdir()
    w = subprocess.run([WRITER, "--write", str(snapdir)], capture_output=True, text=True,
                       timeout=60)
    assert w.returncode == 0, w.stderr
    snapshot = w.stdout.strip()
    assert snapshot.endswith("/00000000000000001234-0000000005.checkpoint")

    rc, out, err = kafka(DUMP, "--cluster-metadata-decoder", "--files", snapshot)
    assert rc == 0, out + err
    assert "Snapshot end offset: 1234, epoch: 5" in out, out
    for bad in ("Error at", "invalid bytes", "Non-consecutive", "Exception"):
        assert bad not in out + err, out + err

    batches = [ln for ln in out.splitlines() if ln.startswith("baseOffset:")]
    records = [ln for ln in out.splitlines() if ln.startswith("| offset:")]
    # Every batch passes Kafka's CRC check and is at the snapshot's epoch; the first and
    # last are control batches.
    assert all(b.endswith(" isvalid: true") for b in batches), batches
    assert all(" partitionLeaderEpoch: 5 " in b for b in batches), batches
    assert " isControl: true " in batches[0] and " isControl: true " in batches[-1]
    assert all(" isControl: false " in b for b in batches[1:-1]), batches
    assert len(batches) > 3  # 300-byte data batches: the image spans several
    assert "SnapshotHeader" in records[0] and '"lastContainedLogTimestamp":1700000000000' \
        in records[0], records[0]
    assert "SnapshotFooter" in records[-1], records[-1]
    # Offsets run 0, 1, 2, ... across the whole file.
    offsets = [int(r.split()[2]) for r in records]
    assert offsets == list(range(len(records))), offsets

    payloads = [json.loads(r.split(" payload: ", 1)[1]) for r in records[1:-1]]
    assert Counter(p["type"] for p in payloads) == {
        "FEATURE_LEVEL_RECORD": 2, "TOPIC_RECORD": 2, "PARTITION_RECORD": 5,
        "CONFIG_RECORD": 5, "CLIENT_QUOTA_RECORD": 2, "PRODUCER_IDS_RECORD": 1,
    }, payloads
    assert payloads[0]["data"] == {"name": "metadata.version", "featureLevel": 33}
    topics = {p["data"]["topicId"]: p["data"]["name"] for p in payloads
              if p["type"] == "TOPIC_RECORD"}
    assert sorted(topics.values()) == ["orders", "payments"]
    parts = Counter(topics[p["data"]["topicId"]] for p in payloads
                    if p["type"] == "PARTITION_RECORD")
    assert parts == {"orders": 3, "payments": 2}
    configs = {(p["data"]["resourceType"], p["data"]["resourceName"], p["data"]["name"]):
               p["data"]["value"] for p in payloads if p["type"] == "CONFIG_RECORD"}
    assert configs == {
        (2, "orders", "cleanup.policy"): "compact",
        (2, "payments", "retention.ms"): "3600000",
        (4, "", "log.retention.ms"): "86400000",
        (4, "1", "log.cleaner.threads"): "2",
        (32, "billing", "consumer.session.timeout.ms"): "50000",
    }
    quotas = sorted((p["data"]["key"], p["data"]["value"]) for p in payloads
                    if p["type"] == "CLIENT_QUOTA_RECORD")
    assert quotas == [("consumer_byte_rate", 2097152.0), ("producer_byte_rate", 1048576.0)]
    pid = [p["data"] for p in payloads if p["type"] == "PRODUCER_IDS_RECORD"][0]
    assert pid["nextProducerId"] == 5000

    # The same tool flags a damaged copy, so "isvalid: true" above is a real check.
    damaged = tmp_path / "00000000000000001234-0000000005.checkpoint"
    data = bytearray(open(snapshot, "rb").read())
    data[len(data) // 2] ^= 0x40
    damaged.write_bytes(bytes(data))
    rc, out, err = kafka(DUMP, "--cluster-metadata-decoder", "--files", str(damaged))
    assert "isvalid: false" in out, out + err

    # Kafka's snapshot reader and metadata image: the same image as the dump shows.
    rc, out, err = kafka(LOADER, str(snapdir), "1234", "5")
    assert rc == 0, out + err
    lines = out.splitlines()
    assert lines[:4] == ["header lastContainedLogTimestamp 1700000000000",
                         "records 17 lastOffset 18", "metadata.version 33",
                         "feature group.version 1"], out
    want_parts = sorted(
        f"partition {topics[d['topicId']]} {d['partitionId']} leader {d['leader']} "
        f"leaderEpoch {d['leaderEpoch']} partitionEpoch {d['partitionEpoch']} "
        f"replicas {d['replicas']} isr {d['isr']}".replace(",", ", ").replace(",  ", ", ")
        for d in (p["data"] for p in payloads if p["type"] == "PARTITION_RECORD"))
    assert sorted(ln for ln in lines if ln.startswith("partition ")) == want_parts, out
    assert sorted(ln for ln in lines if ln.startswith("config ")) == sorted([
        "config TOPIC 'orders' cleanup.policy=compact",
        "config TOPIC 'payments' retention.ms=3600000",
        "config BROKER '' log.retention.ms=86400000",
        "config BROKER '1' log.cleaner.threads=2",
        "config GROUP 'billing' consumer.session.timeout.ms=50000"]), out
    quota_lines = [ln for ln in lines if ln.startswith("quota ")]
    # Kafka's reader prints the entity as a Java map: its order follows the names' hashes.
    assert len(quota_lines) == 2 and any("ip=null" in q and "producer_byte_rate=1048576.0" in q
                                         for q in quota_lines), out
    assert lines[-1] == "nextProducerId 5000", out

    # Kafka's reader refuses the damaged copy (CRC).
    os.replace(damaged, snapdir / damaged.name)
    rc, out, err = kafka(LOADER, str(snapdir), "1234", "5")
    assert rc == 1 and out.startswith("refused: ") and "CorruptRecordException" in out, out + err


def test_samsa_reads_kafka_snapshot(tmp_path, kafka):
    """A snapshot written by Kafka 4.4 itself (kafka-storage format --standalone writes
    00000000000000000000-0000000000.checkpoint: SnapshotHeader, KRaftVersion and
    KRaftVoters control records, FeatureLevelRecords, SnapshotFooter) loads into Samsa's
    image; the same file with one byte flipped is refused."""
    logs = tmp_path / "logs"
    props = tmp_path / "server.properties"
    props.write_text("process.roles=broker,controller\nnode.id=1\n"
                     "controller.quorum.bootstrap.servers=127.0.0.1:1\n"
                     "listeners=PLAINTEXT://127.0.0.1:2,CONTROLLER://127.0.0.1:1\n"
                     "controller.listener.names=CONTROLLER\n"
                     "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n"
                     f"log.dirs={logs}\n")
    rc, out, err = kafka("kafka.tools.StorageTool", "format", "-t", "q1Sh-9_ISia_zwGINzRvyQ",
                         "--standalone", "-c", str(props))
    assert rc == 0, out + err
    snapshot = logs / "__cluster_metadata-0" / "00000000000000000000-0000000000.checkpoint"
    assert snapshot.exists(), out + err

    r = subprocess.run([WRITER, "--load", str(snapshot)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    # Six metadata records in three batches (header + KRaft control records, features,
    # footer); the control records are not the image's.
    assert lines[0].startswith("records 6 skipped 0 batches 3 timestamp "), r.stdout
    assert lines[1:] == [
        "feature eligible.leader.replicas.version 1", "feature group.version 1",
        "feature metadata.version 33", "feature share.version 2",
        "feature streams.version 1", "feature transaction.version 2", "topics 0"], r.stdout

    damaged = tmp_path / "damaged"
    damaged.mkdir()
    data = bytearray(snapshot.read_bytes())
    data[200] ^= 0x01
    (damaged / snapshot.name).write_bytes(bytes(data))
    r = subprocess.run([WRITER, "--load", str(damaged / snapshot.name)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1 and r.stdout.startswith("refused: "), r.stdout + r.stderr
