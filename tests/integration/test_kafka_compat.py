"""Behaviours where Samsa once differed from Apache Kafka 4.4, found by running
third-party client tests against both: OffsetCommit for unknown topics and
partitions, OffsetCommit while a rebalance is being prepared, strings with NUL
bytes through the group coordinator, and keyless records on compacted topics.

By default each test starts a samsa-server. To check the expectations against
the reference Kafka (bench/kafka-ref/kafka-ref.sh), start it and point the
tests at it:

    bench/kafka-ref/kafka-ref.sh start 39092 /tmp/kref
    SAMSA_TEST_AGAINST_KAFKA=39092 .venv/bin/pytest tests/integration/test_kafka_compat.py

Tests that restart the broker are skipped against the reference Kafka. Group
and topic names carry a random suffix, so the tests can run again against the
same broker."""

import os
import struct
import uuid

import pytest
from confluent_kafka import KafkaError, Producer, TopicPartition
from confluent_kafka import ConsumerGroupTopicPartitions

from conftest import api_versions_ok
from helpers import ck_admin, ck_create_topic, wait_for
from raw_kafka import Reader, Writer, exchange
from test_group_bad_input import Conn, join, join_answer, join_body, nullable, s16

KAFKA_PORT = os.environ.get("SAMSA_TEST_AGAINST_KAFKA")

NONE, UNKNOWN_TOPIC_OR_PARTITION, REBALANCE_IN_PROGRESS, INVALID_REQUEST, INVALID_RECORD = 0, 3, 27, 42, 87
MEMBER_ID_REQUIRED = 79
OFFSET_COMMIT, OFFSET_FETCH, JOIN, SYNC, DESCRIBE_GROUPS, LIST_GROUPS = 8, 9, 11, 14, 15, 16


class Target:
    def __init__(self, port, samsa=None):
        self.port = port
        self.samsa = samsa

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def target(make_broker):
    if KAFKA_PORT:
        assert api_versions_ok(int(KAFKA_PORT)), f"no broker on port {KAFKA_PORT}"
        return Target(int(KAFKA_PORT))
    b = make_broker({"group.initial.rebalance.delay.ms": "0"})
    return Target(b.port, b)


def unique(name):
    return f"{name}-{uuid.uuid4().hex[:8]}"


def create_topic(target, topic, partitions, config=None):
    """Creates a topic and waits until the broker's metadata shows it (Kafka
    applies a created topic to its brokers shortly after answering)."""
    ck_create_topic(target.bootstrap, topic, partitions, config)
    admin = ck_admin(target.bootstrap)

    def visible():
        t = admin.list_topics(topic, timeout=10).topics.get(topic)
        return t is not None and t.error is None and len(t.partitions) == partitions
    wait_for(visible, timeout=30, what=f"topic {topic} in metadata")


# ---------------------------------------------------------------- raw requests

def join_fully(c, group):
    """Joins as a new member (MEMBER_ID_REQUIRED, then again with the id);
    returns (generation, member_id)."""
    err, _, member, _ = join(c, group)
    assert err == MEMBER_ID_REQUIRED
    err, gen, member2, _ = join(c, group, member)
    assert (err, member2) == (NONE, member)
    return gen, member


def sync(c, group, gen, member, assignments=()):
    """SyncGroup v3; assignments: (member, bytes) pairs."""
    body = s16(group) + struct.pack(">i", gen) + s16(member) + nullable(None)
    body += struct.pack(">i", len(assignments))
    for m, a in assignments:
        body += s16(m) + struct.pack(">i", len(a)) + a
    r = c.call(SYNC, 3, body)
    return struct.unpack(">h", r[4:6])[0]


def offset_commit(c, group, offsets, gen=-1, member=b""):
    """OffsetCommit v7; offsets: {(topic bytes, partition): (offset, metadata
    bytes)}. Returns {(topic, partition): error}."""
    by_topic = {}
    for (t, p), om in offsets.items():
        by_topic.setdefault(t, []).append((p, om))
    body = s16(group) + struct.pack(">i", gen) + s16(member) + nullable(None)
    body += struct.pack(">i", len(by_topic))
    for t, parts in by_topic.items():
        body += s16(t) + struct.pack(">i", len(parts))
        for p, (off, meta) in parts:
            body += struct.pack(">iqi", p, off, -1) + nullable(meta)
    r = Reader(c.call(OFFSET_COMMIT, 7, body), False)
    r.raw("i")
    out = {}
    for t, parts in r.array(lambda r: (r.string_bytes(), r.array(lambda r: (r.raw("i"), r.raw("h"))))):
        out.update({(t, p): err for p, err in parts})
    return out


def offset_fetch(c, group, topic, partitions):
    """OffsetFetch v5; returns {partition: (offset, metadata bytes, error)}."""
    body = s16(group) + struct.pack(">i", 1) + s16(topic) + struct.pack(">i", len(partitions))
    body += b"".join(struct.pack(">i", p) for p in partitions)
    r = Reader(c.call(OFFSET_FETCH, 5, body), False)
    r.raw("i")

    def partition(r):
        p, off, _epoch = r.raw("i"), r.raw("q"), r.raw("i")
        return p, (off, r.string_bytes(), r.raw("h"))
    topics = r.array(lambda r: (r.string_bytes(), r.array(partition)))
    return {p: v for _, parts in topics for p, v in parts}


def list_groups(c):
    """ListGroups v2: the group ids."""
    r = Reader(c.call(LIST_GROUPS, 2, b""), False)
    r.raw("i")
    assert r.raw("h") == NONE
    return [g for g, _ in r.array(lambda r: (r.string_bytes(), r.string_bytes()))]


def describe_group(c, group):
    """DescribeGroups v3 of one group: (error, state, [(member, client_id)])."""
    r = Reader(c.call(DESCRIBE_GROUPS, 3, struct.pack(">i", 1) + s16(group) + b"\x00"), False)
    r.raw("i")

    def member(r):
        m, cid, _host, _meta, _assignment = r.string_bytes(), r.string_bytes(), r.string(), r.bytes(), r.bytes()
        return m, cid

    def described(r):
        err, _, state, _, _ = r.raw("h"), r.string(), r.string_bytes(), r.string(), r.string()
        return err, state, r.array(member)
    (one,) = r.array(described)
    return one


# ---------------------------------------------------------------- 10: unknown topics

def test_offset_commit_unknown_topic_or_partition(target):
    topic = unique("oc-known")
    create_topic(target, topic, 2)
    c = Conn(target.port)
    try:
        t = topic.encode()
        missing = unique("oc-missing").encode()
        got = offset_commit(c, unique("oc-group").encode(),
                            {(t, 0): (5, b""), (t, 1): (6, b""), (t, 2): (7, b""), (missing, 0): (1, b"")})
        assert got == {(t, 0): NONE, (t, 1): NONE, (t, 2): UNKNOWN_TOPIC_OR_PARTITION,
                       (missing, 0): UNKNOWN_TOPIC_OR_PARTITION}
    finally:
        c.close()


def test_alter_group_offsets_unknown_topic(target):
    """AdminClient alterConsumerGroupOffsets reports the per-partition error."""
    admin = ck_admin(target.bootstrap)
    group = unique("alter-missing")
    missing = unique("no-such-topic")
    req = ConsumerGroupTopicPartitions(group, [TopicPartition(missing, 0, 3)])
    res = admin.alter_consumer_group_offsets([req])[group].result(30)
    assert [(tp.topic, tp.error.code() if tp.error else None) for tp in res.topic_partitions] == \
        [(missing, KafkaError.UNKNOWN_TOPIC_OR_PART)]


# ---------------------------------------------------------------- 10b: commit while preparing

def test_commit_while_preparing_rebalance(target):
    """A member of the current generation may commit while the group prepares
    a rebalance (its partitions are being revoked); not while the group waits
    for SyncGroup."""
    topic = unique("oc-prep")
    create_topic(target, topic, 1)
    group = unique("oc-prep").encode()
    t = topic.encode()
    a, b2 = Conn(target.port), Conn(target.port)
    try:
        gen, ma = join_fully(a, group)
        assert sync(a, group, gen, ma, [(ma, b"")]) == NONE
        # A second member joins: the group prepares a rebalance, b's JoinGroup
        # waits for a to rejoin.
        err, _, mb, _ = join(b2, group)
        assert err == MEMBER_ID_REQUIRED
        parked = b2.send(JOIN, 5, join_body(group, mb))

        def preparing():
            return describe_group(a, group)[1] == b"PreparingRebalance"
        wait_for(preparing, timeout=20, what="PreparingRebalance")
        assert offset_commit(a, group, {(t, 0): (11, b"m")}, gen, ma) == {(t, 0): NONE}
        assert offset_fetch(a, group, t, [0])[0][:2] == (11, b"m")
        # a rejoins: the join completes, the group awaits SyncGroup.
        err, gen2, _, leader = join(a, group, ma)
        assert err == NONE and gen2 == gen + 1
        assert join_answer(b2.receive(parked))[:2] == (NONE, gen2)
        assert describe_group(a, group)[1] == b"CompletingRebalance"
        assert offset_commit(a, group, {(t, 0): (12, b"")}, gen2, ma) == {(t, 0): REBALANCE_IN_PROGRESS}
    finally:
        a.close()
        b2.close()


# ---------------------------------------------------------------- 11: NUL bytes

NUL_META = b"Hello\x00world!"


def after_restart(target, check):
    """Restarts samsa-server (not the reference Kafka) and asserts check(conn)."""
    if not target.samsa:
        return
    target.samsa.restart()
    c = Conn(target.port)
    try:
        assert check(c)
    finally:
        c.close()


def test_offset_metadata_with_nul_round_trips(target):
    topic = unique("nul-meta")
    create_topic(target, topic, 1)
    group = unique("nul-meta").encode()
    t = topic.encode()
    c = Conn(target.port)
    try:
        assert offset_commit(c, group, {(t, 0): (3, NUL_META)}) == {(t, 0): NONE}
        assert offset_fetch(c, group, t, [0]) == {0: (3, NUL_META, NONE)}
    finally:
        c.close()
    after_restart(target, lambda c: offset_fetch(c, group, t, [0]) == {0: (3, NUL_META, NONE)})


def test_group_strings_with_nul_round_trip(target):
    """Group ids, client ids and member ids (which start with the client id)
    keep their NUL bytes, in memory and across a restart."""
    topic = unique("nul-group")
    create_topic(target, topic, 1)
    group = b"nul\x00group-" + uuid.uuid4().hex[:8].encode()
    t = topic.encode()
    c = Conn(target.port, client_id=b"client\x00id")
    try:
        gen, member = join_fully(c, group)
        assert member.startswith(b"client\x00id-")
        assert sync(c, group, gen, member, [(member, b"")]) == NONE
        err, state, members = describe_group(c, group)
        assert (err, state, members) == (NONE, b"Stable", [(member, b"client\x00id")])
        assert offset_commit(c, group, {(t, 0): (9, NUL_META)}, gen, member) == {(t, 0): NONE}
        assert group in list_groups(c)
        # The prefix before the NUL is another group.
        assert offset_fetch(c, group.split(b"\x00")[0], t, [0]) == {0: (-1, b"", NONE)}
    finally:
        c.close()
    after_restart(target, lambda c: group in list_groups(c) and
                  offset_fetch(c, group, t, [0]) == {0: (9, NUL_META, NONE)})


# ---------------------------------------------------------------- 12: compacted topics need keys

def test_compacted_topic_rejects_keyless_records(target):
    topic = unique("compact-keys")
    create_topic(target, topic, 1, {"cleanup.policy": "compact"})
    p = Producer({"bootstrap.servers": target.bootstrap, "linger.ms": 100, "retries": 0,
                  "enable.idempotence": False})
    reports = {}

    def report(i):
        def cb(err, msg):
            reports[i] = err
        return cb

    p.produce(topic, value=b"keyed", key=b"k", on_delivery=report(0))
    p.flush(30)
    # One batch: a keyed record, a keyless one, a keyed one.
    for i, key in ((1, b"k1"), (2, None), (3, b"k3")):
        p.produce(topic, value=b"v", key=key, partition=0, on_delivery=report(i))
    assert p.flush(30) == 0
    assert reports[0] is None
    for i in (1, 2, 3):
        assert reports[i] is not None and reports[i].code() == KafkaError.INVALID_RECORD, reports
    # librdkafka reports the batch's error for each record; the per-record
    # messages (KIP-467) are checked with the Java client (ProducerConsumerTest).


# ---------------------------------------------------------------- 13b: DescribeTopicPartitions

DESCRIBE_TOPIC_PARTITIONS = 75


def describe_topic_partitions(port, topics, limit, cursor=None):
    """DescribeTopicPartitions v0: ([(error, name, internal, [(partition,
    leader, replicas, isr)])], next cursor or None)."""
    w = Writer(True)
    w.array(topics, lambda w, t: w.string(t).tags())
    w.raw("i", limit)
    if cursor is None:
        w.raw("b", -1)
    else:
        w.raw("b", 1).string(cursor[0]).raw("i", cursor[1]).tags()
    w.tags()
    r = exchange(port, DESCRIBE_TOPIC_PARTITIONS, 0, bytes(w.out), True)
    r.raw("i")

    def ints(r):
        return r.array(lambda r: r.raw("i"))

    def partition(r):
        err, idx, leader, _epoch = r.raw("h"), r.raw("i"), r.raw("i"), r.raw("i")
        replicas, isr, elr, last_elr, offline = ints(r), ints(r), ints(r), ints(r), ints(r)
        r.tags()
        assert err == NONE and offline == [] and elr in ([], None) and last_elr in ([], None)
        return idx, leader, replicas, isr

    def topic(r):
        err, name = r.raw("h"), r.string()
        r.pos += 16
        internal = r.raw("?")
        parts = r.array(partition)
        r.raw("i")
        r.tags()
        return err, name, internal, parts
    out = r.array(topic)
    nxt = None
    if r.raw("b") >= 0:
        nxt = (r.string(), r.raw("i"))
        r.tags()
    return out, nxt


def test_describe_topic_partitions_pages(target):
    """Sorted by name, at most the limit of partitions per answer, a cursor to
    go on from; unknown topics answered in their place."""
    a, b = sorted([unique("dtp-a"), unique("dtp-b")])
    create_topic(target, a, 3)
    create_topic(target, b, 2)
    missing = unique("dtp-missing")  # sorts after a and b
    asked = [b, missing, a]
    got, nxt = describe_topic_partitions(target.port, asked, 2)
    node = got[0][3][0][1]
    want = [(i, node, [node], [node]) for i in range(3)]
    assert (got, nxt) == ([(NONE, a, False, want[:2])], (a, 2))
    got, nxt = describe_topic_partitions(target.port, asked, 2, nxt)
    assert (got, nxt) == ([(NONE, a, False, want[2:]), (NONE, b, False, want[:1])], (b, 1))
    got, nxt = describe_topic_partitions(target.port, asked, 2, nxt)
    assert (got, nxt) == ([(NONE, b, False, want[1:2]), (UNKNOWN_TOPIC_OR_PARTITION, missing, False, [])], None)
    # All topics: sorted, the internal __consumer_offsets among them, flagged.
    every, nxt = describe_topic_partitions(target.port, [], 2000)
    names = [t[1] for t in every]
    assert nxt is None and names == sorted(names) and a in names and b in names
    assert [t[2] for t in every if t[1] == "__consumer_offsets"] in ([], [True])
    # A cursor on a topic the request does not name is refused per topic.
    got, nxt = describe_topic_partitions(target.port, [a], 10, (b, 0))
    assert (got, nxt) == ([(INVALID_REQUEST, a, False, [])], None)
