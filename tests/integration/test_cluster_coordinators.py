"""The group and transaction coordinators in a cluster (issue 13 point 5): each partition of
__consumer_offsets / __transaction_state is coordinated by the broker leading it, which loads
it when it becomes leader; FindCoordinator names that broker. Real clients (confluent-kafka /
librdkafka) against three samsa-server nodes: a group's committed offsets are where a later
consumer of the group resumes, also after kill -9 of the coordinator's broker (the partition's
new leader loads it; the same for a transactional id); a classic group's member consuming and
committing through that kill -9 goes on with its member id and generation, without a rebalance
(the new coordinator restores the group's members from __consumer_offsets); a
transaction over partitions led by all three brokers commits (markers sent to each leader),
with its consumed offsets, and a read_committed consumer sees it and not an aborted one."""

import json
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from helpers import wait_for
from samsa_cluster import Cluster
from test_cluster import FAST, brokers_seen, cluster, create  # noqa: F401 (fixture)

OFFSETS_PARTITIONS = 50  # offsets.topic.num.partitions, Kafka's default


def java_hash_partition(key, n):
    """Kafka's partition of a group / transactional id: abs(String.hashCode) % n."""
    h = 0
    for ch in key.encode():
        h = (h * 31 + ch) & 0xFFFFFFFF
    if h >= 1 << 31:
        h -= 1 << 32
    return (0 if h == -(1 << 31) else abs(h)) % n


def wait_registered(cluster):
    ids = sorted(n.node_id for n in cluster.nodes)
    wait_for(lambda: all((md := brokers_seen(n.bootstrap)) and sorted(md.brokers) == ids
                         for n in cluster.nodes),
             timeout=30, interval=0.2, what="three registered brokers")


def leader(bootstrap, topic, partition):
    md = brokers_seen(bootstrap)
    if not md or topic not in md.topics:
        return None
    p = md.topics[topic].partitions.get(partition)
    return p.leader if p and p.leader >= 0 else None


def produce_spread(bootstrap, topic, n, partitions):
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    for i in range(n):
        p.produce(topic, key=str(i).encode(), value=f"v{i}".encode(), partition=i % partitions)
    assert p.flush(30) == 0


def consume_some(bootstrap, group, topic, want, timeout=60):
    """A group member reads at least `want` records, commits what it read (sync) and leaves;
    returns {partition: committed offset}."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + timeout
    while seen < want and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        seen += 1
    assert seen >= want, f"read {seen} of {want}"
    c.commit(asynchronous=False)
    committed = {tp.partition: tp.offset
                 for tp in c.committed(c.assignment(), timeout=30) if tp.offset >= 0}
    c.close()
    return committed


def assert_resumes(bootstrap, group, topic, total, committed, timeout=60):
    """A later member of the group starts each partition at its committed offset and reads
    exactly the rest."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    first, n = {}, 0
    rest = total - sum(committed.values())
    deadline = time.monotonic() + timeout
    while n < rest and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        first.setdefault(m.partition(), m.offset())
        n += 1
    c.close()
    assert n == rest, (n, rest)
    for p, off in first.items():
        assert off == committed.get(p, 0), (p, off, committed)


def coordinator_of(bootstrap, group):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    d = admin.describe_consumer_groups([group], request_timeout=10)[group].result(20)
    return d.coordinator.id


def test_group_commits_and_resumes_on_the_coordinator_partition_leader(cluster):
    wait_registered(cluster)
    create(cluster.node(1).bootstrap, "orders", 6)
    produce_spread(cluster.node(1).bootstrap, "orders", 600, 6)

    group = "billing"
    committed = consume_some(cluster.node(2).bootstrap, group, "orders", 200)
    assert sum(committed.values()) >= 200, committed

    # The coordinator is the broker leading the group's partition of __consumer_offsets.
    part = java_hash_partition(group, OFFSETS_PARTITIONS)
    owner = leader(cluster.node(1).bootstrap, "__consumer_offsets", part)
    assert owner in {1, 2, 3}
    assert coordinator_of(cluster.node(3).bootstrap, group) == owner
    # Only that broker loaded the partition.
    for node in cluster.nodes:
        loaded = f"partition {part} of the offsets topic loaded" in node.read_log()
        assert loaded == (node.node_id == owner), (node.node_id, owner)

    assert_resumes(cluster.node(3).bootstrap, group, "orders", 600, committed)


def kill_leader(cluster, topic, partition):
    """kill -9 of the broker leading topic-partition; returns the leader the controller elects
    instead. (What the coordinators answered is on every in-sync replica: their writes are
    answered once the ISR has them.)"""
    owner = leader(cluster.node(1).bootstrap, topic, partition)
    cluster.node(owner).kill()
    alive = [n for n in cluster.nodes if n.node_id != owner][0]

    def moved():
        now = leader(alive.bootstrap, topic, partition)
        return now not in (None, owner) and now
    return wait_for(moved, timeout=60, interval=0.2, what=f"a new leader of {topic}-{partition}")


def test_coordinator_moves_with_its_partition_when_its_broker_dies(cluster):
    wait_registered(cluster)
    admin = AdminClient({"bootstrap.servers": cluster.node(1).bootstrap})
    admin.create_topics([NewTopic("events", 3, 3)])["events"].result(30)
    produce_spread(cluster.node(1).bootstrap, "events", 300, 3)
    group = "audit"
    committed = consume_some(cluster.node(1).bootstrap, group, "events", 100)
    part = java_hash_partition(group, OFFSETS_PARTITIONS)
    owner = leader(cluster.node(1).bootstrap, "__consumer_offsets", part)
    assert coordinator_of(cluster.node(1).bootstrap, group) == owner

    # kill -9 of the coordinator's broker: the controller elects another in-sync replica,
    # which loads the partition; the group's committed offsets are there.
    new = kill_leader(cluster, "__consumer_offsets", part)
    assert_resumes(cluster.bootstrap, group, "events", 300, committed)
    assert coordinator_of(cluster.bootstrap, group) == new
    assert f"partition {part} of the offsets topic loaded" in cluster.node(new).read_log()


def test_classic_member_keeps_its_place_when_the_coordinator_dies(cluster):
    """A classic group member (group.protocol=classic) consumes and commits; kill -9 of its
    coordinator's broker: the member's commits to the new coordinator succeed and it is never
    revoked nor reassigned (librdkafka's rebalance count and member id unchanged)."""
    wait_registered(cluster)
    admin = AdminClient({"bootstrap.servers": cluster.node(1).bootstrap})
    admin.create_topics([NewTopic("steady", 3, 3)])["steady"].result(30)
    produce_spread(cluster.node(1).bootstrap, "steady", 300, 3)
    group = "steady-group"
    events, stats, seen = [], {}, [0]

    def on_stats(raw):
        cg = json.loads(raw).get("cgrp")
        if cg:
            stats.update(cg)

    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group,
                  "group.protocol": "classic", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "session.timeout.ms": 30000,
                  "heartbeat.interval.ms": 500, "statistics.interval.ms": 200,
                  "stats_cb": on_stats})

    def pump(until, timeout, what):
        """Polls (counting the records read) until until() holds."""
        deadline = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {stats}"
            m = c.poll(0.1)
            if m is not None and not m.error():
                seen[0] += 1

    c.subscribe(["steady"],
                on_assign=lambda _c, parts: events.append(("assign", len(parts))),
                on_revoke=lambda _c, parts: events.append(("revoke", len(parts))),
                on_lost=lambda _c, parts: events.append(("lost", len(parts))))
    try:
        pump(lambda: seen[0] >= 150, 60, "150 records")
        c.commit(asynchronous=False)
        pump(lambda: stats.get("join_state") == "steady", 10, "a steady member in the stats")
        assert events == [("assign", 3)], events
        assert stats.get("rebalance_cnt") == 1, stats
        member = c.memberid()

        part = java_hash_partition(group, OFFSETS_PARTITIONS)
        kill_leader(cluster, "__consumer_offsets", part)
        produce_spread(cluster.bootstrap, "steady", 150, 3)

        # Every record is read, and a commit reaches the new coordinator and succeeds.
        pump(lambda: seen[0] >= 450, 60, "450 records")
        committed, errors = None, []
        deadline = time.monotonic() + 60
        while committed is None and time.monotonic() < deadline:
            try:
                committed = c.commit(asynchronous=False)
            except KafkaException as e:
                errors.append(e.args[0].name())
                c.poll(0.2)
        assert committed is not None, errors
        assert not {"UNKNOWN_MEMBER_ID", "ILLEGAL_GENERATION"} & set(errors), errors
        # Heartbeats to the new coordinator for a while: the member stays as it is.
        end = time.monotonic() + 3
        pump(lambda: time.monotonic() >= end, 10, "3 s of heartbeats")
        assert events == [("assign", 3)], events
        assert c.memberid() == member
        assert stats.get("rebalance_cnt") == 1, stats
        assert seen[0] == 450, seen
        offs = c.committed([TopicPartition("steady", i) for i in range(3)], timeout=30)
        assert sum(tp.offset for tp in offs) == 450, offs
    finally:
        c.close()

def test_transaction_over_partitions_of_every_broker(cluster):
    wait_registered(cluster)
    boot = cluster.node(1).bootstrap
    create(boot, "in", 3)
    create(boot, "out", 6)
    md = brokers_seen(boot)
    assert {p.leader for p in md.topics["out"].partitions.values()} == {1, 2, 3}
    produce_spread(boot, "in", 30, 3)

    # Consume-transform-produce: read "in" in a group, write "out" in a transaction with the
    # consumed offsets (TxnOffsetCommit; markers on __consumer_offsets too), commit.
    group = "etl"
    c = Consumer({"bootstrap.servers": boot, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    c.subscribe(["in"])
    got = []
    deadline = time.monotonic() + 60
    while len(got) < 30 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m)
    assert len(got) == 30
    p = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": "etl-1"})
    p.init_transactions(30)
    p.begin_transaction()
    for i, m in enumerate(got):
        p.produce("out", key=m.key(), value=b"committed-" + m.value(), partition=i % 6)
    p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 30)
    p.commit_transaction(60)
    c.close()

    # An aborted transaction over the same partitions stays invisible.
    p.begin_transaction()
    for i in range(12):
        p.produce("out", key=b"x", value=b"aborted", partition=i % 6)
    p.flush(30)
    p.abort_transaction(60)
    p.begin_transaction()
    p.produce("out", key=b"end", value=b"committed-end", partition=0)
    p.commit_transaction(60)

    r = Consumer({"bootstrap.servers": boot, "group.id": "reader", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    r.assign([TopicPartition("out", i, 0) for i in range(6)])
    values = []
    deadline = time.monotonic() + 60
    while len(values) < 31 and time.monotonic() < deadline:
        m = r.poll(0.5)
        if m is not None and not m.error():
            values.append(m.value())
    # Nothing more arrives: the aborted records never do.
    end = time.monotonic() + 2
    while time.monotonic() < end:
        m = r.poll(0.2)
        if m is not None and not m.error():
            values.append(m.value())
    r.close()
    assert len(values) == 31, values
    assert all(v.startswith(b"committed-") for v in values), values

    # The group's offsets committed with the transaction are its offsets now.
    g = Consumer({"bootstrap.servers": boot, "group.id": group})
    offs = g.committed([TopicPartition("in", i) for i in range(3)], timeout=30)
    g.close()
    assert sum(tp.offset for tp in offs) == 30, offs


def test_transaction_coordinator_moves_with_its_partition(cluster):
    wait_registered(cluster)
    admin = AdminClient({"bootstrap.servers": cluster.node(1).bootstrap})
    admin.create_topics([NewTopic("moved", 3, 3)])["moved"].result(30)
    tid = "mover"
    p = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": tid})
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(9):
        p.produce("moved", value=b"first-%d" % i, partition=i % 3)
    p.commit_transaction(60)
    part = java_hash_partition(tid, OFFSETS_PARTITIONS)  # transaction.state.log.num.partitions
    # kill -9 of the coordinator's broker: the partition's new leader loads the id; a new
    # producer of the id fences the old one there and commits.
    new = kill_leader(cluster, "__transaction_state", part)
    p2 = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": tid})
    p2.init_transactions(60)
    p2.begin_transaction()
    for i in range(9):
        p2.produce("moved", value=b"second-%d" % i, partition=i % 3)
    p2.commit_transaction(60)
    assert f"__transaction_state-{part} loaded" in cluster.node(new).read_log()

    r = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "mover-reader",
                  "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    r.assign([TopicPartition("moved", i, 0) for i in range(3)])
    values = set()
    deadline = time.monotonic() + 60
    while len(values) < 18 and time.monotonic() < deadline:
        m = r.poll(0.5)
        if m is not None and not m.error():
            values.add(m.value())
    r.close()
    assert values == {b"first-%d" % i for i in range(9)} | {b"second-%d" % i for i in range(9)}
