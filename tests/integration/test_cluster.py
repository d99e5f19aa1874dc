"""Clusters (issue 12): three samsa-server nodes started like Kafka 4.4 KRaft nodes form a
Raft quorum with no format step; brokers register and are fenced; topics are placed on
every broker; clients (confluent-kafka / librdkafka) see all brokers and produce and
consume through them; the active controller fails over on kill -9 and a restarted node
rejoins with every topic; a controller without a majority commits nothing."""

import os
import re
import signal
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import SERVER_BIN, free_port
from helpers import wait_for
from samsa_cluster import Cluster, describe_quorum, metadata_of

FAST = {"controller.quorum.election.timeout.ms": "500",
        "controller.quorum.fetch.timeout.ms": "1000",
        "broker.heartbeat.interval.ms": "500",
        "broker.session.timeout.ms": "3000"}


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path, n=3, voters=3, overrides=FAST).start()
    yield c
    c.kill_all()


def leader_of(cluster):
    """(leader id, epoch) as the live nodes' DescribeQuorum answers agree, or None."""
    for node in cluster.nodes:
        if not node.proc or node.proc.poll() is not None:
            continue
        q = describe_quorum(node.port)
        if q and q[0] == 0 and q[1] >= 0:
            return q[1], q[2]
    return None


def brokers_seen(bootstrap):
    """The cluster metadata a node gives, or None while it cannot give it whole (no broker
    registered yet)."""
    try:
        return AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    except KafkaException:
        return None


def create(bootstrap, name, partitions, timeout=10):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fs = admin.create_topics([NewTopic(name, partitions, 1)], request_timeout=timeout)
    fs[name].result(timeout + 5)


def test_three_nodes_form_a_cluster_and_serve_clients(cluster):
    ids = sorted(n.node_id for n in cluster.nodes)
    # Every node lists all three brokers and one cluster id, whichever node is asked.
    def all_registered():
        seen = [brokers_seen(n.bootstrap) for n in cluster.nodes]
        return all(md and sorted(md.brokers) == ids for md in seen) and seen
    seen = wait_for(all_registered, timeout=30, interval=0.2, what="three registered brokers")
    assert len({md.cluster_id for md in seen}) == 1
    assert all(md.brokers[i].port == cluster.node(i).port for md in seen for i in ids)

    # A topic created through one node is on every node, its partitions spread over all.
    create(cluster.node(1).bootstrap, "spread", 6)
    def everywhere():
        mds = [brokers_seen(n.bootstrap) for n in cluster.nodes]
        return all(md and "spread" in md.topics and len(md.topics["spread"].partitions) == 6
                   for md in mds) and mds
    mds = wait_for(everywhere, timeout=20, interval=0.2, what="topic on every node")
    leaders = {p: md.partitions[p].leader for md in [mds[0].topics["spread"]]
               for p in md.partitions}
    assert set(leaders.values()) == set(ids), leaders
    assert all(mds[k].topics["spread"].partitions[p].leader == leaders[p]
               for k in range(3) for p in leaders)

    # An idempotent producer (its producer id comes from the controller) writes through
    # the brokers that lead each partition; a consumer reads every record back in order.
    p = Producer({"bootstrap.servers": cluster.node(2).bootstrap, "enable.idempotence": True,
                  "acks": "all"})
    for i in range(600):
        p.produce("spread", key=str(i).encode(), value=f"v{i}".encode(), partition=i % 6)
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": cluster.node(3).bootstrap, "group.id": "unused",
                  "enable.auto.commit": False})
    c.assign([TopicPartition("spread", i, 0) for i in range(6)])
    got = {i: [] for i in range(6)}
    deadline = time.monotonic() + 30
    while sum(map(len, got.values())) < 600 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        got[m.partition()].append(int(m.key()))
    c.close()
    for part in range(6):
        assert got[part] == list(range(part, 600, 6))

    # A partition's data lives on its leader only (no replication yet): on disk there.
    for part, leader in leaders.items():
        for node in cluster.nodes:
            has = any(d.startswith(f"spread-{part}") and not d.endswith("-delete")
                      for d in os.listdir(node.data_dir))
            assert has == (node.node_id == leader), (part, leader, node.node_id)


def test_controller_failover_and_rejoin(cluster):
    wait_for(lambda: leader_of(cluster), timeout=30, what="a controller")
    wait_for(lambda: len(getattr(brokers_seen(cluster.bootstrap), "brokers", ())) == 3,
             timeout=30, interval=0.2, what="three brokers")
    create(cluster.bootstrap, "before", 3)
    old, old_epoch = leader_of(cluster)
    cluster.node(old).kill()

    # A new controller is elected; a CreateTopics through a surviving node commits.
    survivors = [n for n in cluster.nodes if n.node_id != old]
    boot = ",".join(n.bootstrap for n in survivors)
    def created():
        try:
            create(boot, "after", 2, timeout=5)
            return True
        except KafkaException as e:
            if "already exists" in str(e):
                return True
            return False
    wait_for(created, timeout=30, interval=0.2, what="CreateTopics after failover")
    new, new_epoch = wait_for(lambda: leader_of(cluster), timeout=10, what="the new controller")
    assert new != old and new_epoch > old_epoch

    # The killed node restarts, rejoins as a follower and holds every topic.
    cluster.node(old).start()
    def rejoined():
        md = brokers_seen(cluster.node(old).bootstrap)
        return md and {"before", "after"} <= set(md.topics) and len(md.brokers) == 3
    wait_for(rejoined, timeout=30, interval=0.2, what="the restarted node to catch up")
    assert leader_of(cluster)[0] == new
    # The partitions it leads are served again once it is unfenced.
    p = Producer({"bootstrap.servers": cluster.node(old).bootstrap})
    for i in range(3):
        p.produce("before", value=b"x", partition=i)
    assert p.flush(30) == 0


def test_a_restarted_node_serves_clients_only_once_caught_up(cluster):
    """Kafka's broker (BrokerServer, BrokerLifecycleManager) opens its client listeners only
    once it has caught up with the metadata log up to its registration and is unfenced. A
    node killed while topics are created, then started while the others are paused (SIGSTOP:
    it cannot catch up): it serves nothing meanwhile; once they continue, the first Metadata
    answer it gives at all lists every one of those topics (before, it answered at once
    from the image on its disk, the topics unknown)."""
    wait_for(lambda: len(getattr(brokers_seen(cluster.bootstrap), "brokers", ())) == 3,
             timeout=30, interval=0.2, what="three brokers")
    victim = cluster.node(3)
    others = [n for n in cluster.nodes if n is not victim]
    victim.kill()
    boot = ",".join(n.bootstrap for n in others)
    wait_for(lambda: len(getattr(brokers_seen(boot), "brokers", ())) == 2, timeout=30,
             interval=0.2, what="node 3 fenced")
    names = [f"while-down-{i}" for i in range(5)]
    for name in names:
        wait_for(lambda: _try_create(boot, name), timeout=30, interval=0.2,
                 what=f"create {name}")
    answers = []

    def probe():
        assert victim.proc.poll() is None, victim.read_log()[-2000:]
        try:
            answers.append(metadata_of(victim.port, names, timeout=2.0))
        except OSError:  # refused: not serving yet
            pass
        return answers

    log_before = len(victim.read_log())
    for n in others:
        n.proc.send_signal(signal.SIGSTOP)
    try:
        victim.spawn()
        wait_for(lambda: "node 3 started" in victim.read_log()[log_before:], timeout=30,
                 what="node 3 started")
        for _ in range(5):
            probe()
    finally:
        for n in others:
            n.proc.send_signal(signal.SIGCONT)
    brokers, topics = wait_for(probe, timeout=60, interval=0.01,
                               what="the restarted node's first Metadata answer")[0]
    assert {t: err for t, (err, _) in topics.items()} == {n: 0 for n in names}, topics
    assert 3 in brokers
    assert all(p["leader"] >= 0 for _, parts in topics.values() for p in parts.values()), topics


def test_no_commit_without_a_majority(cluster):
    wait_for(lambda: leader_of(cluster), timeout=30, what="a controller")
    leader, _ = leader_of(cluster)
    others = [n for n in cluster.nodes if n.node_id != leader]
    for n in others:
        n.proc.send_signal(signal.SIGSTOP)
    try:
        # The lone controller cannot commit: the CreateTopics is not acknowledged.
        with pytest.raises(KafkaException):
            create(cluster.node(leader).bootstrap, "lonely", 1, timeout=4)
    finally:
        for n in others:
            n.proc.send_signal(signal.SIGCONT)
    # Once a majority is back the quorum commits again (the topic may have been created by
    # the retried request: either way it exists exactly once).
    def exists():
        try:
            create(cluster.bootstrap, "lonely", 1, timeout=5)
        except KafkaException as e:
            if "already exists" not in str(e):
                return False
        md = brokers_seen(cluster.bootstrap)
        return md and "lonely" in md.topics
    wait_for(exists, timeout=30, interval=0.3, what="a commit once the majority is back")


@pytest.mark.parametrize("overrides,needle", [
    ({"process.roles": "controller", "listeners": "CONTROLLER://127.0.0.1:{p}"},
     "controller.quorum.voters"),
    ({"controller.quorum.bootstrap.servers": "127.0.0.1", "process.roles": "broker,controller",
      "controller.listener.names": "CONTROLLER",
      "listeners": "PLAINTEXT://127.0.0.1:{q},CONTROLLER://127.0.0.1:{p}"}, "host:port"),
    ({"controller.quorum.voters": "2@127.0.0.1:{p}", "process.roles": "broker,controller",
      "controller.listener.names": "CONTROLLER",
      "listeners": "PLAINTEXT://127.0.0.1:{q},CONTROLLER://127.0.0.1:{p}"},
     "not one of the voters"),
    ({"controller.quorum.voters": "1@127.0.0.1:{p}", "process.roles": "broker",
      "listeners": "PLAINTEXT://127.0.0.1:{q}"}, "no controller role"),
    ({"controller.quorum.voters": "1@127.0.0.1", "listeners": "PLAINTEXT://127.0.0.1:{q}"},
     "id@host:port"),
])
def test_bad_cluster_configuration_is_one_line(tmp_path, overrides, needle):
    p, q = free_port(), free_port()
    args = [SERVER_BIN, "--override", f"log.dirs={tmp_path}/d"]
    for k, v in overrides.items():
        args += ["--override", f"{k}={v.format(p=p, q=q)}"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=20)
    assert r.returncode == 2, r.stderr
    lines = [l for l in r.stderr.splitlines() if l.startswith("config:")]
    assert len(lines) == 1 and needle in lines[0], r.stderr


def test_snapshots_bound_the_log_and_bring_a_wiped_node_back(tmp_path):
    """With a small snapshot threshold the controllers take metadata snapshots in Kafka's
    .checkpoint format; a node restarted on an empty directory gets the leader's snapshot
    by FetchSnapshot; a node restarted on its own directory loads its latest snapshot."""
    c = Cluster(tmp_path, n=3, voters=3,
                overrides={**FAST, "metadata.log.max.record.bytes.between.snapshots": "1024"})
    try:
        c.start()
        wait_for(lambda: len(getattr(brokers_seen(c.bootstrap), "brokers", ())) == 3,
                 timeout=30, interval=0.2, what="three brokers")
        c.node(3).kill()
        wait_for(lambda: len(getattr(brokers_seen(c.node(1).bootstrap), "brokers", ())) == 2,
                 timeout=30, interval=0.2, what="node 3 fenced")
        names = [f"snap{i}" for i in range(12)]
        for name in names:
            wait_for(lambda: _try_create(c.node(1).bootstrap, name), timeout=30, interval=0.2,
                     what=f"create {name}")
        for node in (c.node(1), c.node(2)):
            mdir = os.path.join(node.data_dir, "__cluster_metadata-0")
            wait_for(lambda: any(f.endswith(".checkpoint") for f in os.listdir(mdir)),
                     timeout=20, what=f"a snapshot on node {node.node_id}")

        # Node 3 comes back with nothing on disk: the snapshot brings it up to date.
        import shutil
        shutil.rmtree(c.node(3).data_dir)
        c.node(3).start()
        def caught_up():
            md = brokers_seen(c.node(3).bootstrap)
            return md and set(names) <= set(md.topics) and len(md.brokers) == 3
        wait_for(caught_up, timeout=40, interval=0.3, what="the wiped node to catch up")
        assert "installed from the leader" in c.node(3).read_log()

        # Node 1 restarted on its own directory loads its snapshot and the log after it.
        c.node(1).kill()
        c.node(1).start()
        def back():
            md = brokers_seen(c.node(1).bootstrap)
            return md and set(names) <= set(md.topics)
        wait_for(back, timeout=40, interval=0.3, what="node 1 back with every topic")
        assert re.search(r"metadata snapshot at offset \d+ \(epoch \d+\) loaded", c.node(1).read_log())
    finally:
        c.kill_all()


def _try_create(bootstrap, name):
    try:
        create(bootstrap, name, 2, timeout=5)
        return True
    except KafkaException as e:
        return "already exists" in str(e)


def test_racks_are_listed_and_partitions_alternate_racks(tmp_path):
    """broker.rack reaches Metadata; new partitions go round the brokers one rack at a time
    (rack a: 1, 2; rack b: 3 -> the cycle 1, 3, 2), so each broker leads as many."""
    c = Cluster(tmp_path, n=3, voters=3, overrides=FAST, racks=["a", "a", "b"])
    try:
        c.start()
        def racks():
            admin = AdminClient({"bootstrap.servers": c.bootstrap})
            try:
                nodes = admin.describe_cluster(request_timeout=5).result(10).nodes
            except KafkaException:
                return None
            return len(nodes) == 3 and {n.id: n.rack for n in nodes}
        assert wait_for(racks, timeout=30, interval=0.2, what="three brokers") == \
            {1: "a", 2: "a", 3: "b"}
        create(c.bootstrap, "racked", 6)
        md = wait_for(lambda: (lambda m: m and "racked" in m.topics and m)(brokers_seen(c.bootstrap)),
                      timeout=20, what="the topic")
        leaders = [md.topics["racked"].partitions[p].leader for p in range(6)]
        cycle = [1, 3, 2]
        start = cycle.index(leaders[0])
        assert leaders == [cycle[(start + i) % 3] for i in range(6)], leaders
    finally:
        c.kill_all()
