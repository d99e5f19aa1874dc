"""Replication (issue 13): partitions copied to every replica of a three-node Samsa cluster.
confluent-kafka (librdkafka) producers with acks=all and consumers see Kafka's behaviour:
records acknowledged are on every in-sync replica, consumers read only below the high
watermark, a follower that stops leaves the ISR and acks=all with min.insync.replicas
answers NOT_ENOUGH_REPLICAS, a killed leader's partitions move to an in-sync follower with
nothing acknowledged lost, and a returning replica truncates what it alone had."""

import glob
import os
import re
import signal
import struct
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from helpers import wait_for
from samsa_cluster import Cluster

FAST = {"controller.quorum.election.timeout.ms": "500",
        "controller.quorum.fetch.timeout.ms": "1000",
        "broker.heartbeat.interval.ms": "500",
        "broker.session.timeout.ms": "3000",
        "replica.lag.time.max.ms": "2000"}


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path, n=3, voters=3, overrides=FAST).start()
    wait_for(lambda: all_registered(c), timeout=30, what="three brokers registered")
    yield c
    c.kill_all()


def all_registered(c):
    try:
        md = AdminClient({"bootstrap.servers": c.bootstrap}).list_topics(timeout=5)
    except KafkaException:
        return False
    return len(md.brokers) == 3


def create(c, name, partitions=1, rf=3, configs=None):
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    fs = admin.create_topics([NewTopic(name, partitions, rf, config=configs or {})],
                             request_timeout=15)
    fs[name].result(20)


def partition_md(c, topic, p=0):
    """(leader, replicas, isrs) as the metadata a live node gives."""
    md = AdminClient({"bootstrap.servers": c.bootstrap}).list_topics(topic, timeout=10)
    t = md.topics[topic]
    if t.error or p not in t.partitions:
        return None
    pm = t.partitions[p]
    return pm.leader, list(pm.replicas), list(pm.isrs)


def log_bytes(c, node_id, topic, p=0):
    """Bytes of every .log segment of topic-p on node node_id."""
    d = os.path.join(c.node(node_id).data_dir, f"{topic}-{p}")
    return sum(os.path.getsize(f) for f in glob.glob(os.path.join(d, "*.log")))


def produce(c, topic, values, acks="all", extra=None):
    """Produces values (idempotent, acks); returns {value: (partition, offset)} of the
    acknowledged ones and the errors of the others."""
    conf = {"bootstrap.servers": c.bootstrap, "acks": acks, "linger.ms": 5,
            "enable.idempotence": acks == "all", "message.timeout.ms": 30000}
    conf.update(extra or {})
    p = Producer(conf)
    acked, errors = {}, []

    def cb(err, msg):
        if err:
            errors.append(err)
        else:
            acked[msg.value().decode()] = (msg.partition(), msg.offset())

    for v in values:
        while True:
            try:
                p.produce(topic, v.encode(), on_delivery=cb)
                break
            except BufferError:
                p.poll(0.1)
    assert p.flush(60) == 0
    return acked, errors


def consume_all(c, topic, partitions, expect, timeout=30):
    """Reads every partition from the start until expect records arrived; returns
    [(partition, offset, value)]."""
    cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "unused",
                     "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    cons.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got = []
    deadline = time.time() + timeout
    while len(got) < expect and time.time() < deadline:
        m = cons.poll(0.5)
        if m is None or m.error():
            continue
        got.append((m.partition(), m.offset(), m.value().decode()))
    cons.close()
    return got


def test_acks_all_records_are_on_every_replica(cluster):
    create(cluster, "r3", partitions=3, rf=3)
    leader, replicas, isrs = partition_md(cluster, "r3")
    assert sorted(replicas) == [1, 2, 3] and sorted(isrs) == [1, 2, 3]
    values = [f"v{i}" for i in range(3000)]
    acked, errors = produce(cluster, "r3", values)
    assert not errors and len(acked) == 3000
    got = consume_all(cluster, "r3", 3, 3000)
    assert sorted(v for _, _, v in got) == sorted(values)
    # Every replica holds the same bytes of every partition.
    for p in range(3):
        wait_for(lambda: len({log_bytes(cluster, n, "r3", p) for n in (1, 2, 3)}) == 1,
                 timeout=20, what=f"r3-{p} the same on all replicas")
    assert sum(log_bytes(cluster, 1, "r3", p) for p in range(3)) > 0


def sessions_opened(c, node_id):
    """The fetch sessions node_id's replica fetchers opened: [(fetcher, session, leader)]."""
    return re.findall(r"replica fetcher (\d+-\d+): fetch session (\d+) opened with leader "
                      r"(\d+)", c.node(node_id).read_log())


def test_followers_fetch_in_incremental_sessions(cluster):
    """KIP-227 for replication: each follower's fetcher opens one fetch session with each
    leader (a full fetch), then fetches incrementally in it. Twenty acks=all rounds (each
    needs the followers to fetch the records and then report their new log end) open no
    other session: every later request carried the session's epoch and only the
    partitions that changed, and the replicas end up holding the same bytes."""
    create(cluster, "fs", partitions=6, rf=3)
    for n in (1, 2, 3):
        wait_for(lambda: len({leader for _, _, leader in sessions_opened(cluster, n)}) == 2,
                 timeout=30, what=f"node {n}'s sessions with both other leaders")
    before = {n: sessions_opened(cluster, n) for n in (1, 2, 3)}
    assert all(len(v) == 2 for v in before.values()), before
    for r in range(20):
        acked, errors = produce(cluster, "fs", [f"r{r}-{i}" for i in range(30)])
        assert not errors and len(acked) == 30
    for p in range(6):
        wait_for(lambda: len({log_bytes(cluster, n, "fs", p) for n in (1, 2, 3)}) == 1,
                 timeout=20, what=f"fs-{p} the same on all replicas")
    assert {n: sessions_opened(cluster, n) for n in (1, 2, 3)} == before
    got = consume_all(cluster, "fs", 6, 600)
    assert len(got) == 600


def test_a_stopped_follower_leaves_the_isr_and_min_insync_is_enforced(cluster):
    create(cluster, "mi", partitions=1, rf=3, configs={"min.insync.replicas": "3"})
    leader, replicas, _ = partition_md(cluster, "mi")
    acked, errors = produce(cluster, "mi", ["a", "b"])
    assert len(acked) == 2 and not errors
    follower = next(r for r in replicas if r != leader)
    cluster.node(follower).proc.send_signal(signal.SIGSTOP)
    try:
        wait_for(lambda: (partition_md(cluster, "mi") or (0, [], [0, 0, 0]))[2]
                 and len(partition_md(cluster, "mi")[2]) == 2,
                 timeout=30, what="the stopped follower leaves the ISR")
        acked, errors = produce(cluster, "mi", ["c"], extra={"message.timeout.ms": 5000,
                                                            "enable.idempotence": False,
                                                            "retries": 0})
        assert not acked
        assert errors and errors[0].code() in (KafkaError.NOT_ENOUGH_REPLICAS,
                                                KafkaError._MSG_TIMED_OUT)
    finally:
        cluster.node(follower).proc.send_signal(signal.SIGCONT)
    wait_for(lambda: len(partition_md(cluster, "mi")[2]) == 3, timeout=30,
             what="the follower rejoins the ISR")
    acked, errors = produce(cluster, "mi", ["d"])
    assert list(acked) == ["d"] and not errors


def test_leader_kill_loses_no_acknowledged_record(cluster):
    """kill -9 of the leader while an idempotent acks=all producer writes: an in-sync
    follower takes over, the producer carries on, and every acknowledged record is read
    back exactly once at the offset it was acknowledged at; the killed broker comes back,
    rejoins the ISR and holds the same log."""
    create(cluster, "lk", partitions=1, rf=3, configs={"min.insync.replicas": "2"})
    leader, replicas, _ = partition_md(cluster, "lk")
    conf = {"bootstrap.servers": cluster.bootstrap, "acks": "all", "enable.idempotence": True,
            "linger.ms": 2, "message.timeout.ms": 60000}
    prod = Producer(conf)
    acked, errors = {}, []

    def cb(err, msg):
        if err:
            errors.append(err)
        else:
            acked[msg.value().decode()] = msg.offset()

    sent = 0

    def send(n):
        nonlocal sent
        for _ in range(n):
            v = f"k{sent}"
            sent += 1
            while True:
                try:
                    prod.produce("lk", v.encode(), on_delivery=cb)
                    break
                except BufferError:
                    prod.poll(0.05)
            prod.poll(0)

    send(2000)
    wait_for(lambda: prod.poll(0.05) is not None and len(acked) >= 1000 or len(acked) >= 1000,
             timeout=30, what="1000 acknowledged before the kill")
    cluster.node(leader).kill()  # kill -9
    send(2000)
    assert prod.flush(90) == 0
    assert not errors, errors[:3]
    assert len(acked) == sent
    new_leader = partition_md(cluster, "lk")[0]
    assert new_leader not in (leader, -1)
    got = consume_all(cluster, "lk", 1, sent, timeout=60)
    values = [v for _, _, v in got]
    assert len(values) == len(set(values)), "a record was read twice"
    at = {v: off for _, off, v in got}
    lost = [v for v in acked if v not in at]
    assert not lost, f"{len(lost)} acknowledged records lost, e.g. {lost[:3]}"
    moved = [v for v, off in acked.items() if at[v] != off]
    assert not moved, f"{len(moved)} records read at another offset, e.g. {moved[:3]}"
    # The old leader returns as a follower, catches up and rejoins the ISR.
    cluster.node(leader).start()
    wait_for(lambda: sorted((partition_md(cluster, "lk") or (0, [], []))[2]) == [1, 2, 3],
             timeout=60, what="the restarted broker back in the ISR")
    wait_for(lambda: len({log_bytes(cluster, n, "lk") for n in (1, 2, 3)}) == 1, timeout=30,
             what="the same log on every replica")


def test_consumers_read_from_a_replica_in_their_rack(tmp_path):
    """KIP-392: with replica.selector.class RackAwareReplicaSelector, a consumer with
    client.rack is sent (preferred_read_replica) to the in-sync follower in its rack and
    reads everything from it; the leader's endpoint is named when a client writes to a
    follower (KIP-951)."""
    import json
    o = dict(FAST)
    o["replica.selector.class"] = "org.apache.kafka.common.replica.RackAwareReplicaSelector"
    c = Cluster(tmp_path, n=3, voters=3, overrides=o, racks=["ra", "rb", "rc"]).start()
    try:
        wait_for(lambda: all_registered(c), timeout=30, what="three brokers registered")
        create(c, "rk", partitions=1, rf=3)
        leader, replicas, _ = partition_md(c, "rk")
        follower = next(r for r in replicas if r != leader)
        rack = {1: "ra", 2: "rb", 3: "rc"}[follower]
        values = [f"x{i:05d}" + "y" * 200 for i in range(5000)]
        acked, errors = produce(c, "rk", values)
        assert not errors and len(acked) == len(values)
        stats = []
        cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "unused",
                         "client.rack": rack, "enable.auto.commit": False,
                         "statistics.interval.ms": 200,
                         "stats_cb": lambda s: stats.append(json.loads(s))})
        cons.assign([TopicPartition("rk", 0, 0)])
        got = []
        deadline = time.time() + 60
        while len(got) < len(values) and time.time() < deadline:
            m = cons.poll(0.5)
            if m is not None and not m.error():
                got.append(m.value().decode())
        wait_for(lambda: cons.poll(0.1) is None and len(stats) > 2, timeout=10,
                 what="statistics after the reads")
        cons.close()
        assert got == values
        # The bytes came from the follower in the consumer's rack, not from the leader.
        rx = {}
        for b in stats[-1]["brokers"].values():
            if b.get("nodeid", -1) >= 0:
                rx[b["nodeid"]] = b["rxbytes"]
        total = len(values) * 200
        assert rx.get(follower, 0) > total, rx
        assert rx.get(leader, 0) < total, rx
    finally:
        c.kill_all()


def _fetch_v16(port, topic_id, partition, leader_epoch):
    """A consumer's Fetch v16 (flexible, topic ids) of one partition; returns
    (partition error, (leader id, leader epoch) or None, {node id: (host, port)})."""
    from raw_kafka import Reader, Writer, exchange  # noqa: F401 (Reader: the answer's type)

    def put_part(w, _):
        w.raw("iiqiqi", partition, leader_epoch, 0, -1, -1, 1 << 20).tags()

    def put_topic(w, _):
        w.out += topic_id
        w.array([0], put_part).tags()

    w = Writer(True)
    w.raw("iiibii", 0, 1, 1 << 20, 0, 0, -1)
    w.array([0], put_topic).array([], None).string("").tags()
    r = exchange(port, 1, 16, bytes(w.out), True)
    r.raw("i"), r.raw("h"), r.raw("i")
    out = {}

    def get_part(r):
        index, err = r.raw("i"), r.raw("h")
        r.raw("q"), r.raw("q"), r.raw("q")
        r.array(lambda r: (r.raw("q"), r.raw("q"), r.tags()))
        r.raw("i")
        r.bytes()
        leader = None
        for _ in range(r.uvarint()):
            tag, size = r.uvarint(), r.uvarint()
            if tag == 1:
                end = r.pos + size
                leader = (r.raw("i"), r.raw("i"))
                r.pos = end
            else:
                r.pos += size
        out[index] = (err, leader)

    r.array(lambda r: (r.raw("16s"), r.array(get_part), r.tags()))
    endpoints = {}
    for _ in range(r.uvarint()):
        tag, size = r.uvarint(), r.uvarint()
        if tag != 0:
            r.pos += size
            continue
        for node_id, host, port_, _rack in r.array(
                lambda r: (r.raw("i"), r.string(), r.raw("i"), r.string(), r.tags())[:4]):
            endpoints[node_id] = (host, port_)
    err, leader = out[partition]
    return err, leader, endpoints


def test_a_follower_names_the_leader_and_its_endpoint(cluster):
    """KIP-951: a Fetch v16 sent to a broker that holds no replica of the partition is
    answered NOT_LEADER_OR_FOLLOWER with the current leader and its epoch, and the
    answer lists that leader's endpoint (NodeEndpoints), so the client goes there
    without asking for Metadata."""
    from confluent_kafka import TopicCollection

    c = cluster
    create(c, "k951", partitions=1, rf=2)
    leader, replicas, _ = partition_md(c, "k951")
    # The broker that holds no replica (a follower would serve a v11+ fetch, KIP-392).
    other = next(n for n in (1, 2, 3) if n not in replicas)
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    tid = admin.describe_topics(TopicCollection(["k951"]))["k951"].result(15).topic_id
    topic_id = struct.pack(">qq", tid.get_most_significant_bits(), tid.get_least_significant_bits())
    port = int(c.node(other).bootstrap.rsplit(":", 1)[1])
    err, named, endpoints = _fetch_v16(port, topic_id, 0, -1)
    assert err == 6, (err, named, endpoints)  # NOT_LEADER_OR_FOLLOWER
    assert named is not None and named[0] == leader and named[1] >= 0, named
    leader_port = int(c.node(leader).bootstrap.rsplit(":", 1)[1])
    assert endpoints == {leader: ("127.0.0.1", leader_port)}, endpoints


def test_a_returning_leader_truncates_what_only_it_had(tmp_path):
    """KIP-101/320: records acknowledged with acks=1 that only the leader wrote before it
    died are not on the new leader; when the old leader returns as a follower its fetch
    finds the divergence (the diverging epoch in the Fetch answer), it truncates that tail
    and ends with the new leader's log, and acks=all records are all there."""
    o = dict(FAST)
    o["replica.fetch.wait.max.ms"] = "100"
    cluster = Cluster(tmp_path, n=3, voters=3, overrides=o).start()
    try:
        wait_for(lambda: all_registered(cluster), timeout=30, what="three brokers registered")
        _returning_leader_truncates(cluster)
    finally:
        cluster.kill_all()


def _returning_leader_truncates(cluster):
    create(cluster, "tr", partitions=1, rf=3)
    leader, replicas, _ = partition_md(cluster, "tr")
    followers = [r for r in replicas if r != leader]
    a, errors = produce(cluster, "tr", [f"a{i}" for i in range(100)])
    assert len(a) == 100 and not errors
    for f in followers:
        cluster.node(f).proc.send_signal(signal.SIGSTOP)
    # A fetch the followers had parked at the leader before they stopped would carry
    # the next records to them: those end after replica.fetch.wait.max.ms (100 ms), and
    # stopped followers send no new one. Not a synchronisation: the leader holds no fetch
    # of theirs past that time by design.
    time.sleep(1.0)
    try:
        conf = {"bootstrap.servers": cluster.node(leader).bootstrap, "acks": "1",
                "enable.idempotence": False, "linger.ms": 0}
        p = Producer(conf)
        for i in range(50):
            p.produce("tr", f"b{i}".encode())
        assert p.flush(10) == 0
        cluster.node(leader).kill()
    finally:
        for f in followers:
            cluster.node(f).proc.send_signal(signal.SIGCONT)
    wait_for(lambda: (partition_md(cluster, "tr") or (-1,))[0] in followers, timeout=30,
             what="a follower leads")
    c, errors = produce(cluster, "tr", [f"c{i}" for i in range(100)])
    assert len(c) == 100 and not errors
    cluster.node(leader).start()
    wait_for(lambda: sorted((partition_md(cluster, "tr") or (0, [], []))[2]) == [1, 2, 3],
             timeout=60, what="the old leader back in the ISR")
    wait_for(lambda: len({log_bytes(cluster, n, "tr") for n in (1, 2, 3)}) == 1, timeout=30,
             what="the same log on every replica")
    with open(cluster.node(leader).log_path, "rb") as f:
        assert b"tr-0: truncating from" in f.read()
    got = [v for _, _, v in consume_all(cluster, "tr", 1, 200)]
    assert got == [f"a{i}" for i in range(100)] + [f"c{i}" for i in range(100)]
