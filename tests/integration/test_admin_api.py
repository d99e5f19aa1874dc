"""Admin API compatibility with confluent-kafka's AdminClient: DescribeConfigs,
IncrementalAlterConfigs, AlterConfigs, CreatePartitions, DeleteRecords,
DescribeCluster and ElectLeaders, every expectation taken from what Apache
Kafka 4.4 answers.

By default each test starts a samsa-server. To run the same tests against the
reference Kafka (bench/kafka-ref/kafka-ref.sh), start it with the settings the
tests rely on and point the tests at it:

    KAFKA_REF_PROPS='log.retention.check.interval.ms=100' \\
        bench/kafka-ref/kafka-ref.sh start 39092 /tmp/kref
    SAMSA_TEST_AGAINST_KAFKA=39092 SAMSA_TEST_KAFKA_DIR=/tmp/kref \\
        KAFKA_REF_PROPS='log.retention.check.interval.ms=100' \\
        .venv/bin/pytest tests/integration/test_admin_api.py

SAMSA_TEST_KAFKA_DIR (optional) lets the restart test stop and start that
broker with kafka-ref.sh; without it the restart test is skipped. Topic names
carry a random suffix, so the tests can run again against the same broker."""

import os
import subprocess
import uuid

import pytest
from confluent_kafka import (ElectionType, KafkaError, KafkaException, Producer, TopicCollection,
                             TopicPartition)
from confluent_kafka.admin import (AclOperation, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   ConfigSource, NewPartitions, OffsetSpec, ResourceType)

import raw_kafka
from conftest import ROOT, api_versions_ok
from helpers import ck_admin, ck_consume, ck_create_topic, ck_produce, wait_for

KAFKA_PORT = os.environ.get("SAMSA_TEST_AGAINST_KAFKA")
KAFKA_DIR = os.environ.get("SAMSA_TEST_KAFKA_DIR")
KAFKA_REF = os.path.join(ROOT, "bench", "kafka-ref", "kafka-ref.sh")

# What kafka-ref.sh writes into server.properties and the tests depend on,
# given to samsa-server as overrides so that both brokers describe the same
# static settings.
SAME_AS_REF = {"node.id": "1", "num.partitions": "1", "group.initial.rebalance.delay.ms": "0",
               "log.retention.check.interval.ms": "100"}

DEFAULT = ConfigSource.DEFAULT_CONFIG.value
STATIC = ConfigSource.STATIC_BROKER_CONFIG.value
DYNAMIC_TOPIC = ConfigSource.DYNAMIC_TOPIC_CONFIG.value

# Every topic config Kafka 4.4 describes, with its default value.
KAFKA_TOPIC_DEFAULTS = {
    "cleanup.policy": "delete",
    "compression.gzip.level": "-1",
    "compression.lz4.level": "9",
    "compression.type": "producer",
    "compression.zstd.level": "3",
    "delete.retention.ms": "86400000",
    "errors.deadletterqueue.group.enable": "false",
    "file.delete.delay.ms": "60000",
    "flush.messages": "9223372036854775807",
    "flush.ms": "9223372036854775807",
    "follower.replication.throttled.replicas": "",
    "index.interval.bytes": "4096",
    "leader.replication.throttled.replicas": "",
    "local.retention.bytes": "-2",
    "local.retention.ms": "-2",
    "max.compaction.lag.ms": "9223372036854775807",
    "max.decompressed.message.bytes": "2147483639",
    "max.message.bytes": "1048588",
    "message.timestamp.after.max.ms": "3600000",
    "message.timestamp.before.max.ms": "9223372036854775807",
    "message.timestamp.type": "CreateTime",
    "min.cleanable.dirty.ratio": "0.5",
    "min.compaction.lag.ms": "0",
    "min.insync.replicas": "1",
    "preallocate": "false",
    "remote.copy.lag.bytes": "-1",
    "remote.copy.lag.ms": "0",
    "remote.log.copy.disable": "false",
    "remote.log.delete.on.disable": "false",
    "remote.storage.enable": "false",
    "retention.bytes": "-1",
    "retention.ms": "604800000",
    "segment.bytes": "1073741824",
    "segment.index.bytes": "10485760",
    "segment.jitter.ms": "0",
    "segment.ms": "604800000",
    "unclean.leader.election.enable": "false",
}

# A topic config's broker-level synonym as Kafka 4.4 lists it (name, value,
# source) for a topic that does not override the key.
KAFKA_TOPIC_SYNONYMS = {
    "cleanup.policy": ("log.cleanup.policy", "delete", DEFAULT),
    "max.message.bytes": ("message.max.bytes", "1048588", DEFAULT),
    "delete.retention.ms": ("log.cleaner.delete.retention.ms", "86400000", DEFAULT),
    "segment.bytes": ("log.segment.bytes", "1073741824", DEFAULT),
    "retention.bytes": ("log.retention.bytes", "-1", DEFAULT),
    "compression.type": ("compression.type", "producer", DEFAULT),
}

# Common broker keys: (value, source, is_default, is_read_only) as Kafka 4.4
# describes them for the settings in SAME_AS_REF.
KAFKA_BROKER_KEYS = {
    "auto.create.topics.enable": ("true", DEFAULT, True, True),
    "broker.id": ("1", STATIC, False, True),
    "compression.type": ("producer", DEFAULT, True, False),
    "default.replication.factor": ("1", DEFAULT, True, True),
    "delete.topic.enable": ("true", DEFAULT, True, True),
    "group.initial.rebalance.delay.ms": ("0", STATIC, False, True),
    "log.cleanup.policy": ("delete", DEFAULT, True, False),
    "log.flush.interval.messages": ("9223372036854775807", DEFAULT, True, False),
    "log.index.size.max.bytes": ("10485760", DEFAULT, True, False),
    "log.message.timestamp.type": ("CreateTime", DEFAULT, True, False),
    "log.retention.bytes": ("-1", DEFAULT, True, False),
    "log.retention.check.interval.ms": ("100", STATIC, False, True),
    "log.retention.hours": ("168", DEFAULT, True, True),
    "log.retention.minutes": (None, DEFAULT, True, True),
    "log.retention.ms": (None, DEFAULT, True, False),
    "log.roll.hours": ("168", DEFAULT, True, True),
    "log.segment.bytes": ("1073741824", DEFAULT, True, False),
    "log.segment.delete.delay.ms": ("60000", DEFAULT, True, False),
    "message.max.bytes": ("1048588", DEFAULT, True, False),
    "node.id": ("1", STATIC, False, True),
    "num.partitions": ("1", STATIC, False, True),
    "offsets.retention.minutes": ("10080", DEFAULT, True, True),
}


class KafkaRef:
    """The running reference Kafka named by SAMSA_TEST_AGAINST_KAFKA."""

    def __init__(self, port):
        self.port = int(port)

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def restart(self):
        if not KAFKA_DIR:
            pytest.skip("restarting the reference Kafka needs SAMSA_TEST_KAFKA_DIR")
        subprocess.run([KAFKA_REF, "stop", KAFKA_DIR], check=True)
        subprocess.run([KAFKA_REF, "start", str(self.port), KAFKA_DIR], check=True)
        return self


@pytest.fixture
def target(make_broker):
    """The broker under test: samsa-server, or the reference Kafka."""
    if KAFKA_PORT:
        assert api_versions_ok(int(KAFKA_PORT)), f"no broker on port {KAFKA_PORT}"
        ref = KafkaRef(KAFKA_PORT)
        check = describe(ck_admin(ref.bootstrap), ResourceType.BROKER, "1")
        assert check["log.retention.check.interval.ms"].value == "100", \
            "start the reference Kafka with KAFKA_REF_PROPS='log.retention.check.interval.ms=100'"
        return ref
    return make_broker(SAME_AS_REF)


def unique(name):
    return f"{name}-{uuid.uuid4().hex[:8]}"


def error_of(future):
    """The KafkaError a future failed with (None when it succeeded)."""
    try:
        future.result(30)
    except KafkaException as e:
        return e.args[0]
    return None


def describe(admin, rtype, name):
    res = ConfigResource(rtype, name)
    return admin.describe_configs([res])[res].result(30)


def incremental(admin, topic, entries, **kw):
    """Runs one IncrementalAlterConfigs on a topic; entries are (key, value,
    op). Returns the future."""
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry(k, v, incremental_operation=op) for k, v, op in entries])
    return admin.incremental_alter_configs([res], **kw)[res]


def legacy_alter(admin, topic, configs, **kw):
    res = ConfigResource(ResourceType.TOPIC, topic, set_config=configs)
    return admin.alter_configs([res], **kw)[res]


def topic_overrides(admin, topic):
    return {k: e.value for k, e in describe(admin, ResourceType.TOPIC, topic).items()
            if e.source == DYNAMIC_TOPIC}


def settled(get, want, what):
    """Waits until get() == want, then asserts it: a Kafka broker applies a
    committed config change shortly after the controller answered."""
    def ok():
        try:
            return get() == want
        except KafkaException:  # e.g. the topic not yet known after a restart
            return False
    try:
        wait_for(ok, timeout=10, what=what)
    except AssertionError:
        pass
    assert get() == want, what


def assert_overrides(admin, topic, want):
    settled(lambda: topic_overrides(admin, topic), want, f"overrides of {topic}")


def earliest_latest(admin, topic, partition=0):
    tp = TopicPartition(topic, partition)
    lo = admin.list_offsets({tp: OffsetSpec.earliest()})[tp].result(30).offset
    hi = admin.list_offsets({tp: OffsetSpec.latest()})[tp].result(30).offset
    return lo, hi


def create_visible(target, topic, partitions=1, config=None):
    """Creates a topic and waits until Metadata lists it with a leader: a
    Kafka broker learns of a new topic shortly after CreateTopics answers,
    and raw requests do not retry."""
    ck_create_topic(target.bootstrap, topic, partitions, config)
    admin = ck_admin(target.bootstrap)

    def visible():
        t = admin.list_topics(topic, timeout=10).topics.get(topic)
        return (t is not None and t.error is None and len(t.partitions) == partitions
                and all(p.leader >= 0 for p in t.partitions.values()))
    wait_for(visible, what=f"topic {topic} in Metadata")


def partition_count(admin, topic):
    return len(admin.list_topics(topic, timeout=10).topics[topic].partitions)


SET, DELETE = AlterConfigOpType.SET, AlterConfigOpType.DELETE
APPEND, SUBTRACT = AlterConfigOpType.APPEND, AlterConfigOpType.SUBTRACT


def test_describe_topic_configs(target):
    admin = ck_admin(target.bootstrap)
    topic = unique("described")
    create_visible(target, topic, 1, {"retention.ms": "123456"})
    entries = describe(admin, ResourceType.TOPIC, topic)

    missing, extra = set(KAFKA_TOPIC_DEFAULTS) - set(entries), set(entries) - set(KAFKA_TOPIC_DEFAULTS)
    assert (sorted(missing), sorted(extra)) == ([], [])
    for name, default in KAFKA_TOPIC_DEFAULTS.items():
        e = entries[name]
        assert (e.is_read_only, e.is_sensitive) == (False, False), name
        if name == "retention.ms":
            assert (e.value, e.source, e.is_default) == ("123456", DYNAMIC_TOPIC, False)
            # The override itself comes first among the synonyms.
            assert (e.synonyms[name].value, e.synonyms[name].source) == ("123456", DYNAMIC_TOPIC)
        elif name == "min.insync.replicas":
            # Kafka 4.4 formats its storage with a cluster-wide dynamic
            # min.insync.replicas=1, so only the value is the same.
            assert e.value == default
        else:
            assert (e.value, e.source, e.is_default) == (default, DEFAULT, True), name
    for name, (syn, value, source) in KAFKA_TOPIC_SYNONYMS.items():
        s = entries[name].synonyms.get(syn)
        assert s is not None, f"{name} lacks its synonym {syn}: {list(entries[name].synonyms)}"
        assert (s.value, s.source) == (value, source), name

    missing = ConfigResource(ResourceType.TOPIC, unique("missing"))
    err = error_of(admin.describe_configs([missing])[missing])
    assert err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_describe_broker_configs(target):
    admin = ck_admin(target.bootstrap)
    entries = describe(admin, ResourceType.BROKER, "1")
    for name, want in KAFKA_BROKER_KEYS.items():
        e = entries.get(name)
        assert e is not None, f"broker config {name} missing"
        assert (e.value, e.source, e.is_default, e.is_read_only) == want, name
        assert not e.is_sensitive, name
    # Static in both (log.dirs given on start), values differ by set-up.
    assert (entries["log.dirs"].source, entries["log.dirs"].is_read_only) == (STATIC, True)
    assert entries["min.insync.replicas"].value == "1"


def test_incremental_alter_topic_configs(target):
    admin = ck_admin(target.bootstrap)
    topic = unique("altered")
    create_visible(target, topic)

    incremental(admin, topic, [("retention.ms", "1000", SET)], validate_only=True).result(30)
    assert_overrides(admin, topic, {})

    incremental(admin, topic, [("retention.ms", "1000", SET),
                               ("max.message.bytes", "2000", SET)]).result(30)
    assert_overrides(admin, topic, {"retention.ms": "1000", "max.message.bytes": "2000"})

    # cleanup.policy is a list: APPEND adds a missing item, SUBTRACT removes
    # one; neither fails when there is nothing to do.
    steps = [(APPEND, "compact", "delete,compact"), (APPEND, "compact", "delete,compact"),
             (SUBTRACT, "delete", "compact"), (SUBTRACT, "delete", "compact"),
             (SUBTRACT, "compact", "")]
    for op, item, want in steps:
        incremental(admin, topic, [("cleanup.policy", item, op)]).result(30)
        entry = lambda: describe(admin, ResourceType.TOPIC, topic)["cleanup.policy"]  # noqa: E731
        settled(lambda: (entry().value, entry().source), (want, DYNAMIC_TOPIC), f"{op} {item}")

    incremental(admin, topic, [("retention.ms", None, DELETE), ("cleanup.policy", None, DELETE),
                               ("retention.bytes", None, DELETE)]).result(30)
    assert_overrides(admin, topic, {"max.message.bytes": "2000"})
    entries = describe(admin, ResourceType.TOPIC, topic)
    assert (entries["retention.ms"].value, entries["retention.ms"].source) == ("604800000", DEFAULT)
    assert (entries["cleanup.policy"].value, entries["cleanup.policy"].source) == ("delete", DEFAULT)

    # Metadata of the topic is unchanged by config changes.
    assert partition_count(admin, topic) == 1


@pytest.mark.parametrize("key,value,op", [
    ("retention.ms", "abc", SET),
    ("no.such.key", "1", SET),
    ("cleanup.policy", "bogus", SET),
    ("max.message.bytes", "-5", SET),
    ("segment.bytes", "1024", SET),  # Kafka 4.x: at least 1 MiB
    ("retention.ms", "5", APPEND),  # not a list
])
def test_incremental_alter_invalid(target, key, value, op):
    admin = ck_admin(target.bootstrap)
    topic = unique("invalid")
    create_visible(target, topic)
    err = error_of(incremental(admin, topic, [(key, value, op)]))
    assert err is not None and err.code() == KafkaError.INVALID_CONFIG, err
    assert_overrides(admin, topic, {})


def test_incremental_alter_unknown_topic(target):
    admin = ck_admin(target.bootstrap)
    err = error_of(incremental(admin, unique("absent"), [("retention.ms", "1000", SET)]))
    assert err is not None and err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, err


def test_altered_config_survives_restart(target):
    admin = ck_admin(target.bootstrap)
    topic = unique("durable")
    create_visible(target, topic)
    incremental(admin, topic, [("retention.ms", "4242", SET), ("cleanup.policy", "compact", APPEND)]).result(30)
    target.restart()
    admin = ck_admin(target.bootstrap)
    assert_overrides(admin, topic, {"retention.ms": "4242", "cleanup.policy": "delete,compact"})


def test_max_message_bytes_takes_effect_at_once(target):
    admin = ck_admin(target.bootstrap)
    topic = unique("small")
    create_visible(target, topic)
    ck_produce(target.bootstrap, topic, [(None, b"x" * 2000, None)])
    incremental(admin, topic, [("max.message.bytes", "1000", SET)]).result(30)
    assert_overrides(admin, topic, {"max.message.bytes": "1000"})

    p = Producer({"bootstrap.servers": target.bootstrap, "linger.ms": 0, "retries": 0})
    reports = []
    p.produce(topic, b"y" * 2000, partition=0, on_delivery=lambda err, msg: reports.append(err))
    assert p.flush(30) == 0
    assert reports[0] is not None and reports[0].code() == KafkaError.MSG_SIZE_TOO_LARGE, reports
    ck_produce(target.bootstrap, topic, [(None, b"z" * 500, None)])

    incremental(admin, topic, [("max.message.bytes", None, DELETE)]).result(30)
    assert_overrides(admin, topic, {})
    ck_produce(target.bootstrap, topic, [(None, b"w" * 2000, None)])
    assert earliest_latest(admin, topic) == (0, 3)


def test_retention_takes_effect_at_once(target):
    admin = ck_admin(target.bootstrap)
    topic = unique("retained")
    create_visible(target, topic, 1, {"segment.bytes": "1048576"})
    # 45 records of 100 kB, one per batch: 1 MiB segments of ten records.
    ck_produce(target.bootstrap, topic, [(None, bytes([i]) * 100_000, None) for i in range(45)],
               partition=0, **{"linger.ms": 0, "batch.num.messages": 1})
    assert earliest_latest(admin, topic) == (0, 45)

    incremental(admin, topic, [("retention.bytes", "1048576", SET)]).result(30)
    by_size = wait_for(lambda: earliest_latest(admin, topic)[0], timeout=30, what="size retention")
    assert 0 < by_size < 45

    incremental(admin, topic, [("retention.bytes", None, DELETE), ("retention.ms", "1", SET)]).result(30)
    # Every record is older than 1 ms: Kafka rolls the active segment and
    # deletes all of them.
    wait_for(lambda: earliest_latest(admin, topic) == (45, 45), timeout=30, what="time retention")
    incremental(admin, topic, [("retention.ms", None, DELETE)]).result(30)
    assert_overrides(admin, topic, {"segment.bytes": "1048576"})
    ck_produce(target.bootstrap, topic, [(None, b"after", None)], partition=0)
    first = ck_consume(target.bootstrap, topic, [0], 1, offset=-2)  # OFFSET_BEGINNING
    assert (first[0].offset(), first[0].value()) == (45, b"after")


def test_legacy_alter_configs_replaces_the_set(target):
    admin = ck_admin(target.bootstrap)
    topic = unique("legacy")
    create_visible(target, topic)
    legacy_alter(admin, topic, {"retention.ms": "7777", "cleanup.policy": "compact"}).result(30)
    assert_overrides(admin, topic, {"retention.ms": "7777", "cleanup.policy": "compact"})
    legacy_alter(admin, topic, {"max.message.bytes": "5000"}).result(30)
    assert_overrides(admin, topic, {"max.message.bytes": "5000"})

    legacy_alter(admin, topic, {"retention.ms": "8888"}, validate_only=True).result(30)
    assert_overrides(admin, topic, {"max.message.bytes": "5000"})
    err = error_of(legacy_alter(admin, topic, {"retention.ms": "x"}))
    assert err is not None and err.code() == KafkaError.INVALID_CONFIG, err
    err = error_of(legacy_alter(admin, unique("absent"), {"retention.ms": "1"}))
    assert err is not None and err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, err
    assert_overrides(admin, topic, {"max.message.bytes": "5000"})


def test_create_partitions(target):
    admin = ck_admin(target.bootstrap)
    topic = unique("growing")
    create_visible(target, topic)

    admin.create_partitions([NewPartitions(topic, 3)], validate_only=True)[topic].result(30)
    assert partition_count(admin, topic) == 1
    admin.create_partitions([NewPartitions(topic, 3)])[topic].result(30)
    wait_for(lambda: partition_count(admin, topic) == 3, what="three partitions in Metadata")
    assert ck_produce(target.bootstrap, topic, [(b"k", b"v", None)], partition=2) == [(2, 0)]
    got = ck_consume(target.bootstrap, topic, [2], 1)
    assert (got[0].partition(), got[0].value()) == (2, b"v")

    for count in (3, 2):
        err = error_of(admin.create_partitions([NewPartitions(topic, count)])[topic])
        assert err is not None and err.code() == KafkaError.INVALID_PARTITIONS, (count, err)
    absent = unique("absent")
    err = error_of(admin.create_partitions([NewPartitions(absent, 2)])[absent])
    assert err is not None and err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, err
    assert partition_count(admin, topic) == 3


def test_delete_records(target):
    admin = ck_admin(target.bootstrap)
    topic = unique("trimmed")
    create_visible(target, topic, 2)
    ck_produce(target.bootstrap, topic, [(None, b"r%d" % i, None) for i in range(10)], partition=0)

    def delete_before(partition, offset):
        tp = TopicPartition(topic, partition, offset)
        return admin.delete_records([tp])[tp]

    assert delete_before(0, 5).result(30).low_watermark == 5
    assert earliest_latest(admin, topic) == (5, 10)
    got = ck_consume(target.bootstrap, topic, [0], 5, offset=-2)
    assert [m.offset() for m in got] == [5, 6, 7, 8, 9]
    assert [m.value() for m in got] == [b"r%d" % i for i in range(5, 10)]

    # Below the log start: nothing changes; beyond the high watermark: error.
    assert delete_before(0, 3).result(30).low_watermark == 5
    err = error_of(delete_before(0, 11))
    assert err is not None and err.code() == KafkaError.OFFSET_OUT_OF_RANGE, err
    assert delete_before(1, 0).result(30).low_watermark == 0
    # -1 means the high watermark.
    assert delete_before(0, -1).result(30).low_watermark == 10
    assert earliest_latest(admin, topic) == (10, 10)


def test_describe_cluster(target):
    admin = ck_admin(target.bootstrap)
    desc = admin.describe_cluster(include_authorized_operations=True).result(30)
    assert desc.cluster_id and desc.cluster_id == admin.list_topics(timeout=10).cluster_id
    assert [(n.id, n.host, n.port) for n in desc.nodes] == [(1, "127.0.0.1", target.port)]
    assert desc.controller.id == 1
    # Without an authorizer Kafka grants every cluster operation.
    assert set(desc.authorized_operations or []) == {
        AclOperation.CREATE, AclOperation.ALTER, AclOperation.DESCRIBE, AclOperation.CLUSTER_ACTION,
        AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS, AclOperation.IDEMPOTENT_WRITE}


def test_elect_leaders(target):
    admin = ck_admin(target.bootstrap)
    topic = unique("elected")
    create_visible(target, topic, 2)
    tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    for kind in (ElectionType.PREFERRED, ElectionType.UNCLEAN):
        result = admin.elect_leaders(kind, tps).result(30)
        assert sorted((tp.partition, err.code()) for tp, err in result.items()) == [
            (0, KafkaError.ELECTION_NOT_NEEDED), (1, KafkaError.ELECTION_NOT_NEEDED)], kind
    absent = [TopicPartition(unique("absent"), 0)]
    result = admin.elect_leaders(ElectionType.PREFERRED, absent).result(30)
    assert [err.code() for err in result.values()] == [KafkaError.UNKNOWN_TOPIC_OR_PART]
    # All partitions: none needs an election, so none is listed.
    assert admin.elect_leaders(ElectionType.PREFERRED, None).result(30) == {}


def test_describe_topics_authorized_operations(target):
    admin = ck_admin(target.bootstrap)
    topic = unique("ops")
    create_visible(target, topic)
    desc = admin.describe_topics(TopicCollection([topic]), include_authorized_operations=True)[topic].result(30)
    assert set(desc.authorized_operations or []) == {
        AclOperation.READ, AclOperation.WRITE, AclOperation.CREATE, AclOperation.DELETE, AclOperation.ALTER,
        AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS}


# What a Kafka 4.4.0 broker advertises in ApiVersions for each API Samsa
# serves (queried from bench/kafka-ref's broker): (min, max). Kafka 4.4 keeps
# Produce advertised from v0 for old librdkafka, though its schema starts at v3.
KAFKA_44_VERSIONS = {
    "Produce": (0, 0, 13), "Fetch": (1, 4, 18), "ListOffsets": (2, 1, 11), "Metadata": (3, 0, 13),
    "OffsetCommit": (8, 2, 10), "OffsetFetch": (9, 1, 10), "FindCoordinator": (10, 0, 6),
    "JoinGroup": (11, 0, 9), "Heartbeat": (12, 0, 4), "LeaveGroup": (13, 0, 5), "SyncGroup": (14, 0, 5),
    "DescribeGroups": (15, 0, 6), "ListGroups": (16, 0, 5), "ApiVersions": (18, 0, 5),
    "CreateTopics": (19, 2, 7), "DeleteTopics": (20, 1, 6), "DeleteRecords": (21, 0, 2),
    "InitProducerId": (22, 0, 5), "OffsetForLeaderEpoch": (23, 2, 4), "DescribeConfigs": (32, 1, 4),
    "AlterConfigs": (33, 0, 2), "DescribeLogDirs": (35, 1, 5), "CreatePartitions": (37, 0, 3),
    "DeleteGroups": (42, 0, 3), "ElectLeaders": (43, 0, 2), "IncrementalAlterConfigs": (44, 0, 1),
    "OffsetDelete": (47, 0, 0), "DescribeCluster": (60, 0, 2), "DescribeProducers": (61, 0, 0),
    "AddPartitionsToTxn": (24, 0, 5), "AddOffsetsToTxn": (25, 0, 4), "EndTxn": (26, 0, 5),
    "WriteTxnMarkers": (27, 1, 2), "TxnOffsetCommit": (28, 0, 6), "DescribeTransactions": (65, 0, 0),
    "ListTransactions": (66, 0, 2),
}


def test_api_versions_are_kafka_44s(target):
    """Every API Samsa serves is advertised with the version range a Kafka 4.4
    broker advertises (clients use the highest version both sides know)."""
    r = raw_kafka.exchange(target.port, 18, 0, b"", False)
    assert r.raw("h") == 0
    served = {}
    for _ in range(r.raw("i")):
        key, lo, hi = r.raw("h"), r.raw("h"), r.raw("h")
        served[key] = (lo, hi)
    assert {name: served.get(key) for name, (key, _, _) in KAFKA_44_VERSIONS.items()} == \
        {name: (lo, hi) for name, (_, lo, hi) in KAFKA_44_VERSIONS.items()}


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_describe_configs_each_version(target, version):
    admin = ck_admin(target.bootstrap)
    topic = unique("raw")
    create_visible(target, topic, 1, {"retention.ms": "123456"})
    [res] = raw_kafka.describe_configs(target.port, version, [(2, topic, ["retention.ms", "cleanup.policy", "nope"])],
                                       synonyms=True, documentation=True)
    assert (res["error_code"], res["resource_type"], res["resource_name"]) == (0, 2, topic)
    configs = {c["name"]: c for c in res["configs"]}
    assert sorted(configs) == ["cleanup.policy", "retention.ms"]
    ret, pol = configs["retention.ms"], configs["cleanup.policy"]
    assert (ret["value"], ret["read_only"], ret["sensitive"], ret["source"]) == ("123456", False, False, DYNAMIC_TOPIC)
    assert (pol["value"], pol["source"]) == ("delete", DEFAULT)
    assert ret["synonyms"] == [{"name": "retention.ms", "value": "123456", "source": DYNAMIC_TOPIC}]
    assert pol["synonyms"] == [{"name": "log.cleanup.policy", "value": "delete", "source": DEFAULT}]
    if version >= 3:
        assert (ret["type"], pol["type"]) == (5, 7)  # LONG, LIST
        assert ret["documentation"] and pol["documentation"]
    # Without synonyms asked for: none. An empty key list means every key.
    [plain] = raw_kafka.describe_configs(target.port, version, [(2, topic, [])])
    assert len(plain["configs"]) == len(describe(admin, ResourceType.TOPIC, topic))
    if version >= 1:
        assert all(c["synonyms"] == [] for c in plain["configs"])
    # Kafka answers an empty (not null) message on success.
    assert (res["error_message"], plain["error_message"]) == ("", "")


def test_describe_configs_bad_resources(target):
    """Per-resource errors as Kafka 4.4 answers them (DescribeConfigs v4)."""
    absent = unique("absent")
    asked = [(4, "2", None), (4, "abc", None), (2, "", None), (2, absent, None)]
    results = raw_kafka.describe_configs(target.port, 4, asked)
    assert [(r["resource_type"], r["resource_name"], r["error_code"], r["configs"]) for r in results] == [
        (4, "2", KafkaError.INVALID_REQUEST, []),
        (4, "abc", KafkaError.INVALID_REQUEST, []),
        (2, "", KafkaError.TOPIC_EXCEPTION, []),
        (2, absent, KafkaError.UNKNOWN_TOPIC_OR_PART, []),
    ]
    # An unknown resource type fails every resource of the request.
    topic = unique("present")
    create_visible(target, topic)
    results = raw_kafka.describe_configs(target.port, 4, [(2, topic, ["retention.ms"]), (99, "x", None)])
    assert [(r["resource_name"], r["error_code"], r["configs"]) for r in results] == [
        (topic, KafkaError.INVALID_REQUEST, []), ("x", KafkaError.INVALID_REQUEST, [])]
    # The empty broker name is the cluster-wide default, where num.partitions
    # is not set; BROKER_LOGGER lists the broker's loggers.
    [default_broker, loggers] = raw_kafka.describe_configs(target.port, 4, [(4, "", ["num.partitions"]), (8, "1", None)])
    assert default_broker["configs"] == []
    assert (default_broker["error_code"], loggers["error_code"]) == (0, 0)
    assert loggers["configs"], "no loggers described"
