"""The controller's half of replication (issues 12 and 13) on a real three-node cluster:
topics of replication factor 3 are placed on three brokers with the full ISR (confluent-kafka
and kafka-topics.sh), manual assignments are honoured and checked; AlterPartition sent to the
active controller's CONTROLLER listener with stale epochs gets Kafka's codes and changes
nothing, a valid one changes the ISR; kill -9 of a broker moves its leaderships to another
ISR member and takes it out of the ISRs; ElectLeaders PREFERRED (the AdminClient and
kafka-leader-election.sh) gives leadership back to the preferred replica. Metadata only:
the partitions' data is not replicated until the broker data path lands."""

import os
import re
import shutil
import signal
import struct
import time

import pytest
from confluent_kafka import Consumer, ElectionType, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from helpers import kafka_tool_runner, wait_for
from samsa_cluster import _harness
from test_cluster import brokers_seen, cluster, leader_of  # noqa: F401 (the fixture)

NONE, INVALID_REQUEST, FENCED_LEADER_EPOCH, STALE_BROKER_EPOCH = 0, 42, 74, 77
INVALID_UPDATE_VERSION, UNKNOWN_TOPIC_ID, INELIGIBLE_REPLICA = 95, 100, 107


def _uvarint(b, i):
    return _harness._uvarint(b, i)


def _array(items):
    return bytes([len(items) + 1]) + b"".join(items)


def _topic_partitions(r, i, nlists):
    """The first topic without error in the topics at r[i:] of a Metadata (v9+) or
    DescribeTopicPartitions answer (their topics and partitions have the same shape; nlists
    int32 arrays per partition): (topic id, {partition: (leader, leader epoch, list, ...)}),
    or None."""
    n, i = _uvarint(r, i)
    for _ in range(n - 1):
        err = struct.unpack(">h", r[i:i + 2])[0]
        _, i = _harness._cstring(r, i + 2)
        tid = r[i:i + 16]
        i += 17  # topic id, is_internal
        np_, i = _uvarint(r, i)
        parts = {}
        for _ in range(np_ - 1):
            _, idx, leader, epoch = struct.unpack(">hiii", r[i:i + 14])
            i += 14
            lists = []
            for _ in range(nlists):
                k, i = _uvarint(r, i)
                k = max(k - 1, 0)  # null (0) reads as empty
                lists.append(list(struct.unpack(f">{k}i", r[i:i + 4 * k])))
                i += 4 * k
            i = _harness._skip_tags(r, i)
            parts[idx] = (leader, epoch, *lists)
        i += 4
        i = _harness._skip_tags(r, i)
        if err == 0 and parts:
            return tid, parts
    return None


def partitions_of(node, topic):
    """Metadata v12 from one node: (topic id, {partition: (leader, leader epoch, replicas,
    isr)}), or None while it does not know the topic."""
    name = topic.encode()
    body = _array([bytes(16) + bytes([len(name) + 1]) + name + b"\x00"]) + b"\x00\x00\x00"
    try:
        r = _harness._kafka_request("127.0.0.1", node.port, 3, 12, body, 5.0)
    except OSError:
        return None
    i = 4
    n, i = _uvarint(r, i)
    for _ in range(n - 1):  # brokers
        _, i = _harness._cstring(r, i + 4)
        i += 4
        _, i = _harness._cstring(r, i)
        i = _harness._skip_tags(r, i)
    _, i = _harness._cstring(r, i)
    i += 4
    got = _topic_partitions(r, i, 3)
    if not got:
        return None
    return got[0], {k: v[:4] for k, v in got[1].items()}


def broker_epoch(node):
    """The broker epoch of node's latest registration, from its log."""
    found = re.findall(r"broker %d registered with controller \d+ \(broker epoch (\d+)\)"
                       % node.node_id, node.read_log())
    return int(found[-1]) if found else None


def alter_partition(port, broker, epoch, topic_id, partition, leader_epoch, partition_epoch,
                    isr):
    """AlterPartition v3 to a CONTROLLER listener: (top-level error, partition error,
    leader epoch, isr, partition epoch) of the answer. isr: [(broker id, broker epoch)]."""
    members = _array([struct.pack(">iq", b, e) + b"\x00" for b, e in isr])
    part = (struct.pack(">ii", partition, leader_epoch) + members +
            struct.pack(">bi", 0, partition_epoch) + b"\x00")
    body = (struct.pack(">iq", broker, epoch) + _array([topic_id + _array([part]) + b"\x00"]) +
            b"\x00")
    r = _harness._kafka_request("127.0.0.1", port, 56, 3, body, 10.0)
    top = struct.unpack(">h", r[4:6])[0]
    i = 6
    nt, i = _uvarint(r, i)
    if nt < 2:
        return top, None, None, None, None
    i += 16
    _, i = _uvarint(r, i)
    _, err, _, lepoch = struct.unpack(">ihii", r[i:i + 14])
    i += 14
    k, i = _uvarint(r, i)
    got = list(struct.unpack(f">{k - 1}i", r[i:i + 4 * (k - 1)]))
    i += 4 * (k - 1) + 1
    pepoch = struct.unpack(">i", r[i:i + 4])[0]
    return top, err, lepoch, got, pepoch


def describe_partitions(node, topic):
    """DescribeTopicPartitions v0 from one node: {partition: (leader, replicas, isr, elr,
    last known elr)}, or None while it does not know the topic."""
    name = topic.encode()
    body = (_array([bytes([len(name) + 1]) + name + b"\x00"]) + struct.pack(">i", 2000) +
            b"\xff\x00")
    try:
        r = _harness._kafka_request("127.0.0.1", node.port, 75, 0, body, 5.0)
    except OSError:
        return None
    got = _topic_partitions(r, 4, 5)
    return {k: (v[0], *v[2:6]) for k, v in got[1].items()} if got else None


def three_brokers(cluster):
    wait_for(lambda: leader_of(cluster), timeout=30, what="a controller")
    wait_for(lambda: len(getattr(brokers_seen(cluster.bootstrap), "brokers", ())) == 3,
             timeout=30, interval=0.2, what="three unfenced brokers")


def four_brokers(c):
    wait_for(lambda: leader_of(c), timeout=30, what="a controller")
    wait_for(lambda: len(getattr(brokers_seen(c.bootstrap), "brokers", ())) == 4,
             timeout=30, interval=0.2, what="four brokers")


def topic_everywhere(cluster, topic, n):
    def seen():
        got = [partitions_of(nd, topic) for nd in cluster.nodes
               if nd.proc and nd.proc.poll() is None]
        return all(g and len(g[1]) == n for g in got) and got[0]
    return wait_for(seen, timeout=20, interval=0.2, what=f"{topic} on every node")


def test_rf3_placement_and_manual_assignments(cluster):
    three_brokers(cluster)
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic("r3", 6, 3)])["r3"].result(20)
    _, parts = topic_everywhere(cluster, "r3", 6)
    for p, (leader, epoch, replicas, isr) in parts.items():
        assert sorted(replicas) == [1, 2, 3], (p, replicas)
        assert isr == replicas and leader == replicas[0] and epoch == 0, parts[p]
    assert sorted(parts[p][0] for p in parts) == [1, 1, 2, 2, 3, 3], parts

    # More replicas than brokers: Kafka's code and message.
    with pytest.raises(KafkaException) as e:
        admin.create_topics([NewTopic("r4", 1, 4)])["r4"].result(20)
    assert e.value.args[0].code() == 38  # INVALID_REPLICATION_FACTOR
    assert "only 3 broker(s) are registered" in e.value.args[0].str()

    # Manual assignments are honoured, and checked as Kafka's controller checks them.
    admin.create_topics([NewTopic("manual", 2, replica_assignment=[[2, 1], [3, 2]])])[
        "manual"].result(20)
    _, parts = topic_everywhere(cluster, "manual", 2)
    assert parts[0][2] == [2, 1] and parts[0][0] == 2 and parts[0][3] == [2, 1]
    assert parts[1][2] == [3, 2] and parts[1][0] == 3
    for bad, needle in (([[1, 9]], "no such broker is registered"),
                        ([[1, 1]], "more than once"),
                        ([[1, 2], [3]], "not consistent with previous partitions")):
        with pytest.raises(KafkaException) as e:
            admin.create_topics([NewTopic("bad", len(bad), replica_assignment=bad)])["bad"].result(20)
        assert e.value.args[0].code() == 39 and needle in e.value.args[0].str(), bad

    # CreatePartitions: the new partitions get the topic's replication factor.
    admin.create_partitions([NewPartitions("r3", 8)])["r3"].result(20)
    _, parts = topic_everywhere(cluster, "r3", 8)
    assert sorted(parts[6][2]) == [1, 2, 3] and sorted(parts[7][2]) == [1, 2, 3]


def test_alter_partition_checks_epochs(cluster):
    three_brokers(cluster)
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic("ap", 1, 3)])["ap"].result(20)
    tid, parts = topic_everywhere(cluster, "ap", 1)
    leader, lepoch, replicas, isr = parts[0]
    ctrl = cluster.node(leader_of(cluster)[0]).ctrl_port
    epochs = {n.node_id: wait_for(lambda n=n: broker_epoch(n), timeout=10, what="epoch")
              for n in cluster.nodes}
    follower = [b for b in replicas if b != leader]
    full = [(b, epochs[b]) for b in isr]
    shrunk = [(leader, epochs[leader]), (follower[0], epochs[follower[0]])]

    def send(broker=leader, bepoch=None, topic=tid, le=lepoch, pe=0, members=shrunk):
        return alter_partition(ctrl, broker, epochs[broker] if bepoch is None else bepoch,
                               topic, 0, le, pe, members)

    assert send(bepoch=epochs[leader] + 1000)[0] == STALE_BROKER_EPOCH
    assert send(le=lepoch - 1)[1] == FENCED_LEADER_EPOCH
    assert send(pe=-1)[1] == INVALID_UPDATE_VERSION
    assert send(broker=follower[0])[1] == INVALID_REQUEST  # not the leader
    assert send(members=[(follower[0], epochs[follower[0]])])[1] == INVALID_REQUEST  # no leader
    assert send(members=[(leader, epochs[leader]), (follower[0], epochs[follower[0]] + 7)])[1] \
        == INELIGIBLE_REPLICA
    assert send(topic=bytes(range(16)))[1] == UNKNOWN_TOPIC_ID
    # None of it changed anything: the same request with the current state is answered as
    # the current state (partition epoch 0).
    assert send(members=full) == (NONE, NONE, lepoch, isr, 0)
    assert all(p[0][3] == isr for p in [partitions_of(n, "ap")[1] for n in cluster.nodes])

    # A valid shrink commits: partition epoch 1, leader unchanged. (The leader's own ISR
    # management may add the follower back at once: nothing after this depends on the ISR.)
    assert send() == (NONE, NONE, lepoch, [leader, follower[0]], 1)
    assert send()[1] == INVALID_UPDATE_VERSION  # partition epoch 0 is stale now


def test_kill9_moves_leadership_and_preferred_election_restores_it(cluster):
    three_brokers(cluster)
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic("kl", 3, 3)])["kl"].result(20)
    _, before = topic_everywhere(cluster, "kl", 3)
    ctrl_id = leader_of(cluster)[0]
    victim = next(b for b in (1, 2, 3) if b != ctrl_id)
    led = [p for p, v in before.items() if v[0] == victim]
    assert led, before
    cluster.node(victim).kill()

    live = [n for n in cluster.nodes if n.node_id != victim]

    def moved():
        got = partitions_of(live[0], "kl")
        if not got:
            return None
        ps = got[1]
        return all(v[0] not in (victim, -1) and victim not in v[3] and len(v[3]) == 2
                   for v in ps.values()) and ps
    after = wait_for(moved, timeout=30, interval=0.2, what="leaderships off the killed broker")
    for p in led:
        leader, epoch, replicas, isr = after[p]
        assert replicas == before[p][2] and leader in replicas and epoch == before[p][1] + 1
        # the next ISR member in replica order
        assert leader == next(b for b in replicas if b != victim), after[p]

    # While it is down its partitions cannot go back to it.
    res = admin.elect_leaders(ElectionType.PREFERRED,
                              [TopicPartition("kl", p) for p in led]).result(20)
    assert all(res[TopicPartition("kl", p)].code() == 80 for p in led), res  # PREFERRED_LEADER_NOT_AVAILABLE

    # It comes back: its leaders bring it back into the ISRs once it has caught up
    # (AlterPartition from the broker data path), then the preferred election gives it its
    # leaderships back.
    cluster.node(victim).start()
    three_brokers(cluster)
    wait_for(lambda: all(victim in partitions_of(live[0], "kl")[1][p][3] for p in before),
             timeout=30, interval=0.2, what="the returned broker back in every ISR")
    res = admin.elect_leaders(ElectionType.PREFERRED,
                              [TopicPartition("kl", p) for p in led]).result(20)
    assert all(res[TopicPartition("kl", p)] is None for p in led), res
    wait_for(lambda: all(partitions_of(n, "kl")[1][p][0] == victim
                         for n in cluster.nodes for p in led),
             timeout=20, interval=0.2, what="the preferred replica leading again")
    res = admin.elect_leaders(ElectionType.PREFERRED, [TopicPartition("kl", led[0])]).result(20)
    assert res[TopicPartition("kl", led[0])].code() == 84  # ELECTION_NOT_NEEDED


@pytest.mark.skipif(shutil.which("java") is None, reason="needs Java")
def test_kafka_tools_rf3_and_leader_election(cluster, tmp_path):
    tools = kafka_tool_runner(tmp_path)
    three_brokers(cluster)
    boot = cluster.node(2).bootstrap
    code, out, err = tools("org.apache.kafka.tools.TopicCommand", "--bootstrap-server", boot,
                           "--create", "--topic", "jt", "--partitions", "3",
                           "--replication-factor", "3")
    assert code == 0, err
    code, out, err = tools("org.apache.kafka.tools.TopicCommand", "--bootstrap-server", boot,
                           "--describe", "--topic", "jt")
    assert code == 0, err
    rows = re.findall(r"Partition: (\d+)\s+Leader: (\d+)\s+Replicas: ([\d,]+)\s+Isr: ([\d,]+)",
                      out)
    assert len(rows) == 3, out
    for _, leader, replicas, isr in rows:
        assert sorted(replicas.split(",")) == ["1", "2", "3"] and isr == replicas, out
        assert leader == replicas.split(",")[0], out
    # Every leader is its preferred replica: nothing to do for all partitions (Kafka reports
    # none of them), and a named one is reported as already elected.
    code, out, err = tools("org.apache.kafka.tools.LeaderElectionCommand", "--bootstrap-server",
                           boot, "--election-type", "PREFERRED", "--all-topic-partitions")
    assert code == 0 and "Error" not in out + err, (out, err)
    code, out, err = tools("org.apache.kafka.tools.LeaderElectionCommand", "--bootstrap-server",
                           boot, "--election-type", "PREFERRED", "--topic", "jt",
                           "--partition", "1")
    assert code == 0, err
    assert "Valid replica already elected for partitions jt-1" in out, out


def test_controlled_shutdown_hands_leadership_over(tmp_path):
    """A broker stopped gracefully has its leaderships moved and leaves the ISRs before it
    exits: the session timeout is far longer than the wait, so only the controlled shutdown
    can have moved them."""
    from samsa_cluster import Cluster
    from test_cluster import FAST
    c = Cluster(tmp_path, n=3, voters=3,
                overrides=dict(FAST, **{"broker.session.timeout.ms": "120000"})).start()
    try:
        three_brokers(c)
        admin = AdminClient({"bootstrap.servers": c.bootstrap})
        admin.create_topics([NewTopic("cs", 3, 3)])["cs"].result(20)
        _, before = topic_everywhere(c, "cs", 3)
        ctrl_id = leader_of(c)[0]
        victim = next(b for b in (1, 2, 3) if b != ctrl_id)
        assert any(v[0] == victim for v in before.values()), before
        assert c.node(victim).stop() == 0
        live = next(n for n in c.nodes if n.node_id != victim)
        ps = wait_for(lambda: partitions_of(live, "cs"), timeout=10, what="metadata")[1]
        for p, (leader, _, replicas, isr) in ps.items():
            assert leader != victim and leader in replicas and victim not in isr, ps
    finally:
        c.kill_all()


def test_auto_leader_rebalance(tmp_path):
    """auto.leader.rebalance.enable: once the preferred replica is back in the ISR (its
    leader adds it when it has caught up), the controller's imbalance check gives it its
    leadership back without any request."""
    from samsa_cluster import Cluster
    from test_cluster import FAST
    c = Cluster(tmp_path, n=3, voters=3,
                overrides=dict(FAST, **{"leader.imbalance.check.interval.seconds": "1"})).start()
    try:
        three_brokers(c)
        admin = AdminClient({"bootstrap.servers": c.bootstrap})
        admin.create_topics([NewTopic("ar", 3, 3)])["ar"].result(20)
        tid, before = topic_everywhere(c, "ar", 3)
        victim = next(b for b in (1, 2, 3) if b != leader_of(c)[0])
        led = [p for p, v in before.items() if v[0] == victim]
        c.node(victim).kill()
        live = next(n for n in c.nodes if n.node_id != victim)
        after = wait_for(lambda: (lambda g: g and all(g[1][p][0] not in (victim, -1)
                                                      for p in led) and g[1])(
            partitions_of(live, "ar")), timeout=30, interval=0.2, what="leaders moved")
        c.node(victim).start()
        three_brokers(c)
        wait_for(lambda: all(partitions_of(n, "ar")[1][p][0] == victim
                             for n in c.nodes for p in led),
                 timeout=30, interval=0.2, what="the rebalance to the preferred replica")
    finally:
        c.kill_all()


@pytest.fixture
def slow_fencing_cluster(tmp_path):
    """Three nodes whose dead brokers stay unfenced for the whole test (the tools refuse to
    move replicas to brokers the cluster does not list)."""
    from samsa_cluster import Cluster
    from test_cluster import FAST
    c = Cluster(tmp_path / "nodes", n=3, voters=3,
                overrides=dict(FAST, **{"broker.session.timeout.ms": "120000"})).start()
    yield c
    c.kill_all()


@pytest.mark.skipif(shutil.which("java") is None, reason="needs Java")
def test_reassignment_with_kafka_reassign_partitions(slow_fencing_cluster, tmp_path):
    """kafka-reassign-partitions.sh moves a partition from [1, 2] to [2, 3]: broker 3 fetches
    it, its leader adds it to the ISR, which completes the move (1 leaves, 2 leads); --verify
    reports it done. A move to a broker that is down stays listed with its adding and
    removing replicas until it is cancelled, which reverts it."""
    cluster = slow_fencing_cluster
    tools = kafka_tool_runner(tmp_path)
    three_brokers(cluster)
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic("mv", 2, replica_assignment=[[1, 2], [1, 2]])])["mv"].result(20)
    topic_everywhere(cluster, "mv", 2)
    boot = cluster.node(1).bootstrap
    plan = tmp_path / "plan.json"
    # Records to move with the partition.
    prod = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(200):
        prod.produce("mv", f"m{i}".encode(), partition=0)
    assert prod.flush(30) == 0

    def reassign(*args):
        return tools("org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
                     "--bootstrap-server", boot, *args)
    plan.write_text('{"version":1,"partitions":[{"topic":"mv","partition":0,"replicas":[2,3]}]}')
    code, out, err = reassign("--reassignment-json-file", str(plan), "--execute")
    assert code == 0 and "Successfully started partition reassignment" in out, (out, err)
    wait_for(lambda: all((lambda g: g and g[1][0][0] == 2 and g[1][0][2:] == ([2, 3], [2, 3]))(
        partitions_of(n, "mv")) for n in cluster.nodes), timeout=30, interval=0.2,
        what="the completed move")
    # (--verify clears the throttles of every broker: a relayed IncrementalAlterConfigs
    # naming each of them)
    code, out, err = reassign("--reassignment-json-file", str(plan), "--verify")
    assert code == 0 and "Reassignment of partition mv-0 is completed" in out, (out, err)
    assert "Clearing broker-level throttles on brokers 1,2,3" in out, (out, err)
    # The records moved: broker 3 holds what broker 2 holds, broker 1 dropped its copy.
    def seg_bytes(node):
        d = os.path.join(cluster.node(node).data_dir, "mv-0")
        return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)
                   if f.endswith(".log")) if os.path.isdir(d) else -1
    wait_for(lambda: seg_bytes(3) == seg_bytes(2) > 0 and seg_bytes(1) == -1, timeout=30,
             what="broker 3 with the records, broker 1 without its copy")
    cons = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "mv-check",
                     "enable.auto.commit": False})
    cons.assign([TopicPartition("mv", 0, 0)])
    got = []
    deadline = time.time() + 30
    while len(got) < 200 and time.time() < deadline:
        m = cons.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value().decode())
    cons.close()
    assert got == [f"m{i}" for i in range(200)]

    # Partition 1 to [3, 2] with broker 3 down: ongoing until cancelled.
    cluster.node(3).kill()
    live = [n for n in cluster.nodes if n.node_id != 3]
    wait_for(lambda: leader_of(cluster), timeout=30, what="a controller")
    plan.write_text('{"version":1,"partitions":[{"topic":"mv","partition":1,"replicas":[3,2]}]}')
    wait_for(lambda: reassign("--reassignment-json-file", str(plan), "--execute")[0] == 0,
             timeout=30, interval=1, what="the second move started")
    wait_for(lambda: all((lambda g: g and g[1][1][2] == [3, 2, 1])(partitions_of(n, "mv"))
                         for n in live), timeout=10, what="the second move")
    code, out, err = reassign("--list")
    assert code == 0 and "mv-1: replicas: 3,2,1. adding: 3. removing: 1." in out, (out, err)
    code, out, err = reassign("--reassignment-json-file", str(plan), "--cancel",
                              "--preserve-throttles")  # broker 3 is down: its configs wait
    assert code == 0 and "Successfully cancelled" in out, (out, err)
    wait_for(lambda: all((lambda g: g and g[1][1][2:] == ([2, 1], [1, 2]))(partitions_of(n, "mv"))
                         for n in live), timeout=10, what="the reverted replicas")
    code, out, err = reassign("--list")
    assert code == 0 and "No partition reassignments found" in out, (out, err)


def test_unclean_leader_election_only_where_enabled(tmp_path):
    """Both replicas of two partitions die, the last ISR member last; the other comes back.
    With unclean.leader.election.enable on the topic it leads (the ISR becomes itself, and
    the possible loss is logged); without, the partition stays leaderless."""
    from samsa_cluster import Cluster
    from test_cluster import FAST
    c = Cluster(tmp_path, n=4, voters=3, overrides=FAST).start()
    try:
        four_brokers(c)
        x = next(b for b in (1, 2, 3) if b != leader_of(c)[0])
        admin = AdminClient({"bootstrap.servers": c.bootstrap})
        for name, unclean in (("uc", "true"), ("cl", "false")):
            admin.create_topics([NewTopic(name, 1, replica_assignment=[[4, x]],
                                          config={"unclean.leader.election.enable": unclean})]
                                )[name].result(20)
        topic_everywhere(c, "uc", 1)
        topic_everywhere(c, "cl", 1)
        probe = next(n for n in c.nodes if n.node_id not in (4, x))
        c.node(x).kill()
        wait_for(lambda: all(partitions_of(probe, t)[1][0][3] == [4] for t in ("uc", "cl")),
                 timeout=30, interval=0.2, what="x out of the ISRs")
        c.node(4).kill()
        wait_for(lambda: all(partitions_of(probe, t)[1][0][0] == -1 for t in ("uc", "cl")),
                 timeout=30, interval=0.2, what="no leader")
        # eligible leader replicas (KIP-966, on by default): the last member leaves the ISR
        # and is kept as an eligible leader instead
        assert all(partitions_of(probe, t)[1][0][3] == [] for t in ("uc", "cl"))
        assert all(describe_partitions(probe, t)[0][3] == [4] for t in ("uc", "cl"))
        c.node(x).start()
        wait_for(lambda: partitions_of(probe, "uc")[1][0][0] == x, timeout=30, interval=0.2,
                 what="the unclean leader")
        assert partitions_of(probe, "uc")[1][0][3] == [x]
        assert partitions_of(probe, "cl")[1][0][0] == -1
        ctrl = c.node(leader_of(c)[0])
        assert "unclean leader election: uc-0 led by broker %d" % x in ctrl.read_log()
    finally:
        c.kill_all()


def read_values(node, topic, n):
    """Up to n values of topic's partition 0 read from node from the start (30 s at most)."""
    cons = Consumer({"bootstrap.servers": node.bootstrap, "group.id": f"{topic}-read",
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
    cons.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.time() + 30
    while len(got) < n and time.time() < deadline:
        m = cons.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value().decode())
    cons.close()
    return got


def test_eligible_leader_replicas(tmp_path):
    """KIP-966 on a cluster whose controller holds no replica: RF 3, min.insync.replicas 2.
    Two followers stopped leave the ISR, which is the leader alone; they are kept as eligible
    leader replicas (the ELR, in DescribeTopicPartitions and kafka-topics.sh --describe) and
    the leader's high watermark stays where it was for acks=1 writes (nothing is committed
    below min ISR). The leader killed, an ELR member that comes back leads, without an
    unclean election, with every record committed before."""
    from samsa_cluster import Cluster
    from test_cluster import FAST
    o = dict(FAST, **{"replica.lag.time.max.ms": "2000"})
    c = Cluster(tmp_path, n=4, voters=1, overrides=o).start()
    stopped = []
    try:
        four_brokers(c)
        admin = AdminClient({"bootstrap.servers": c.bootstrap})
        admin.create_topics([NewTopic("elr", 1, replica_assignment=[[2, 3, 4]],
                                      config={"min.insync.replicas": "2"})])["elr"].result(20)
        probe = c.node(1)
        wait_for(lambda: (describe_partitions(probe, "elr") or {0: (-1, [], [])})[0][2]
                 == [2, 3, 4], timeout=30, interval=0.2, what="the full ISR")
        p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "linger.ms": 0})
        for i in range(10):
            p.produce("elr", f"a{i}".encode())
        assert p.flush(30) == 0
        cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "elr-probe"})
        tp = TopicPartition("elr", 0)
        wait_for(lambda: cons.get_watermark_offsets(tp, timeout=5)[1] == 10, timeout=30,
                 what="the high watermark at 10")
        for f in (3, 4):
            c.node(f).proc.send_signal(signal.SIGSTOP)
            stopped.append(f)
        wait_for(lambda: (describe_partitions(probe, "elr") or {0: (-1, [], [], [])})[0][2]
                 == [2] and describe_partitions(probe, "elr")[0][3], timeout=30,
                 interval=0.2, what="the ISR the leader alone, and an ELR")
        leader, _, isr, elr, _ = describe_partitions(probe, "elr")[0]
        assert leader == 2 and isr == [2] and set(elr) <= {3, 4}, (leader, isr, elr)
        code, out, err = kafka_tool_runner(tmp_path)(
            "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", probe.bootstrap,
            "--describe", "--topic", "elr")
        assert code == 0, err
        row = re.search(r"Isr: (\S+)\s+Elr: (\S+)\s+LastKnownElr:", out)
        assert row and row.group(1) == "2", out
        assert sorted(int(x) for x in row.group(2).split(",")) == sorted(elr), out
        # acks=1 writes land on the leader but are not committed below min ISR
        p1 = Producer({"bootstrap.servers": c.node(2).bootstrap, "acks": "1",
                       "enable.idempotence": False, "linger.ms": 0})
        offsets = []
        for i in range(5):
            p1.produce("elr", f"b{i}".encode(),
                       on_delivery=lambda err, m: offsets.append(-1 if err else m.offset()))
        assert p1.flush(30) == 0
        assert sorted(offsets) == [10, 11, 12, 13, 14], offsets
        assert cons.get_watermark_offsets(tp, timeout=5)[1] == 10
        cons.close()
        c.node(2).kill()
        wait_for(lambda: (describe_partitions(probe, "elr") or {0: (0,)})[0][0] == -1,
                 timeout=30, interval=0.2, what="no leader")
        _, _, isr, elr2, _ = describe_partitions(probe, "elr")[0]
        assert isr == [] and 2 in elr2, (isr, elr2)
        back = elr[0]
        c.node(back).proc.send_signal(signal.SIGCONT)
        stopped.remove(back)
        wait_for(lambda: (describe_partitions(probe, "elr") or {0: (-1,)})[0][0] == back,
                 timeout=30, interval=0.2, what="the ELR member leads")
        leader, _, isr, elr3, _ = describe_partitions(probe, "elr")[0]
        assert isr == [back] and back not in elr3, (isr, elr3)
        assert "unclean leader election" not in probe.read_log()
        got = read_values(c.node(back), "elr", 10)
        assert got[:10] == [f"a{i}" for i in range(10)], got
    finally:
        for f in stopped:
            c.node(f).proc.send_signal(signal.SIGCONT)
        c.kill_all()


def test_unclean_shutdown_leaves_the_elr(tmp_path):
    """KIP-966's unclean-shutdown rule. RF 3 on brokers 2-4, min.insync.replicas 3 (every
    replica that leaves the ISR joins the ELR). Broker 3 killed with -9, broker 4 stopped
    cleanly (its .kafka_cleanshutdown then holds its broker epoch in Kafka's JSON), the
    leader 2 killed: the ISR is empty, the ELR {2, 3, 4}. Broker 3 restarted registers with
    PreviousBrokerEpoch -1 (no marker): the controller takes it out of the ELR, so it does
    not lead (LastKnownElr holds 2, the leader when the ISR emptied; ElectLeaders UNCLEAN,
    with no ELR member alive, makes 3 lead the twin partition uncleanly). Broker 4 restarted registers with its last epoch: it keeps its ELR
    place and leads cleanly with every acknowledged record; its marker is gone once it
    runs."""
    from samsa_cluster import Cluster
    from test_cluster import FAST
    c = Cluster(tmp_path, n=4, voters=1, overrides=FAST).start()
    try:
        four_brokers(c)
        admin = AdminClient({"bootstrap.servers": c.bootstrap})
        for t in ("ucs", "ucs2"):
            admin.create_topics([NewTopic(t, 1, replica_assignment=[[2, 3, 4]],
                                          config={"min.insync.replicas": "3"})])[t].result(20)
        probe = c.node(1)

        def state(t="ucs"):
            return (describe_partitions(probe, t) or {0: (-2, [], [], [], [])})[0]
        wait_for(lambda: state()[2] == [2, 3, 4] and state("ucs2")[2] == [2, 3, 4],
                 timeout=30, interval=0.2, what="the full ISRs")
        p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "linger.ms": 0})
        for i in range(10):
            p.produce("ucs", f"r{i}".encode())
        assert p.flush(30) == 0
        marker3 = os.path.join(c.node(3).data_dir, ".kafka_cleanshutdown")
        marker4 = os.path.join(c.node(4).data_dir, ".kafka_cleanshutdown")
        assert not os.path.exists(marker3) and not os.path.exists(marker4)
        c.node(3).kill()
        wait_for(lambda: 3 in state()[3], timeout=30, interval=0.2, what="3 in the ELR")
        epoch4 = broker_epoch(c.node(4))
        assert c.node(4).stop() == 0
        with open(marker4) as f:
            assert f.read() == '{"version":0,"brokerEpoch":%d}' % epoch4
        assert not os.path.exists(marker3)
        wait_for(lambda: 4 in state()[3], timeout=30, interval=0.2, what="4 in the ELR")
        c.node(2).kill()
        wait_for(lambda: state()[0] == -1 and state()[2] == [] and
                 sorted(state()[3]) == [2, 3, 4], timeout=30, interval=0.2,
                 what="no leader, the ELR {2, 3, 4}")
        ctrl = c.node(1)
        c.node(3).start()
        wait_for(lambda: "broker 3 registers after an unclean shutdown" in ctrl.read_log(),
                 timeout=30, interval=0.2, what="3's unclean registration")
        wait_for(lambda: 3 not in state()[3], timeout=30, interval=0.2, what="3 out of the ELR")
        wait_for(lambda: len(getattr(brokers_seen(c.bootstrap), "brokers", ())) == 2,
                 timeout=30, interval=0.2, what="3 unfenced")
        leader, _, isr, elr, lke = state()
        # LastKnownElr: the leader when the ISR emptied (Kafka's default, balanced recovery)
        assert leader == -1 and isr == [] and sorted(elr) == [2, 4] and lke == [2], state()
        # ElectLeaders UNCLEAN (librdkafka's AdminClient) on the twin partition: no ELR
        # member is alive (nor the last leader), so 3, the one live replica, leads uncleanly
        # and both lists empty
        wait_for(lambda: 3 not in state("ucs2")[3] and state("ucs2")[4] == [2], timeout=30,
                 interval=0.2, what="ucs2 in the same state")
        tp2 = TopicPartition("ucs2", 0)
        assert admin.elect_leaders(ElectionType.UNCLEAN, [tp2]).result(30)[tp2] is None
        wait_for(lambda: state("ucs2")[0] == 3, timeout=30, interval=0.2, what="3 leads ucs2")
        assert state("ucs2")[2:] == ([3], [], []), state("ucs2")
        assert "unclean leader election: ucs2-0 led by broker 3" in ctrl.read_log()
        assert state()[0] == -1
        c.node(4).start()
        assert not os.path.exists(marker4)  # removed as the logs open
        wait_for(lambda: state()[0] == 4, timeout=30, interval=0.2, what="4 leads")
        log = ctrl.read_log()
        assert "broker 4 registers after a clean shutdown (previous broker epoch %d" % epoch4 \
            in log
        assert "unclean leader election: ucs-0" not in log
        got = read_values(c.node(4), "ucs", 10)
        assert got == [f"r{i}" for i in range(10)], got
    finally:
        c.kill_all()
