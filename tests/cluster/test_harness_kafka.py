"""The cluster harness proven on a real 3-node Apache Kafka 4.4 KRaft cluster:
kill -9 of the active controller, SIGSTOP/SIGCONT of a node, a minority node
and the controller cut off by the network and healed, with a produce/consume
history checked for loss, duplicates and reordering.

Slow (a few minutes, three JVMs): runs only with SAMSA_CLUSTER_KAFKA=1.
SAMSA_CLUSTER_NET=netns|proxy picks the network mode (default auto)."""

import os
import uuid

import pytest

from cluster import Cluster, wait_for
from history import History
from workload import produce, read_all

pytestmark = pytest.mark.skipif(os.environ.get("SAMSA_CLUSTER_KAFKA") != "1",
                                reason="slow: set SAMSA_CLUSTER_KAFKA=1 to run on Apache Kafka 4.4")


@pytest.fixture(scope="module")
def kafka():
    with Cluster("kafka", n=3, network=os.environ.get("SAMSA_CLUSTER_NET", "auto")) as c:
        yield c


def topic_name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_kill9_active_controller_then_new_leader_commits(kafka):
    old = kafka.active_controller()
    assert old in kafka.nodes
    kafka.kill9(old)
    survivors = kafka.running()
    new = kafka.wait_controller(exclude=[old], timeout=90)
    assert new in survivors
    name = topic_name("after-kill")
    wait_for(lambda: kafka.create_topic(name, via=survivors, replication=2, exists_ok=True) or True,
             90, "CreateTopics on the surviving majority")
    assert name in kafka.admin(survivors).list_topics(timeout=10).topics
    kafka.start_node(old)
    kafka.wait_usable(180)


def test_sigstop_node_majority_keeps_working(kafka):
    paused = next(i for i in kafka.nodes if i != kafka.active_controller())
    kafka.stop(paused)
    try:
        rest = kafka.running()
        assert paused not in rest
        name = topic_name("while-paused")
        wait_for(lambda: kafka.create_topic(name, via=rest, replication=2, exists_ok=True) or True,
                 90, "CreateTopics while one node is stopped")
    finally:
        kafka.cont(paused)
    kafka.wait_usable(180)


def test_partition_minority_node_and_heal_keeps_acknowledged_records(kafka):
    leader = kafka.active_controller()
    minority = next(i for i in kafka.nodes if i != leader)
    majority = [i for i in kafka.nodes if i != minority]
    topic = topic_name("history")
    kafka.create_topic(topic, partitions=3, replication=3)
    h = History()
    boot = kafka.bootstrap(majority)
    assert produce(boot, topic, h, [f"before-{i}" for i in range(300)], producer="before") == []

    kafka.isolate(minority)
    # The controller fences the unreachable broker: the majority's Metadata drops it.
    wait_for(lambda: minority not in kafka.brokers_seen(majority[0]), 90,
             f"the majority to fence node {minority}")
    name = topic_name("during-partition")
    wait_for(lambda: kafka.create_topic(name, via=majority, replication=2, exists_ok=True) or True,
             60, "CreateTopics on the majority side")
    assert produce(boot, topic, h, [f"during-{i}" for i in range(300)], producer="during") == []

    kafka.heal()
    wait_for(lambda: minority in kafka.brokers_seen(majority[0]), 120,
             f"node {minority} back in the majority's Metadata")
    kafka.wait_usable(180)
    assert produce(kafka.bootstrap(), topic, h, [f"after-{i}" for i in range(300)],
                   producer="after") == []
    read_all(kafka.bootstrap(), topic, h, partitions=range(3))
    report = h.check()
    assert report.acked == 900
    assert report.ok, report.summary()


def test_partition_isolating_the_controller_elects_a_new_one(kafka):
    old = kafka.active_controller()
    rest = [i for i in kafka.nodes if i != old]
    kafka.isolate(old)
    try:
        new = wait_for(lambda: (lambda ld: ld if ld in rest else None)(
            kafka.active_controller(via=rest)), 90, "a leader on the majority side")
        assert new != old
        name = topic_name("new-controller")
        wait_for(lambda: kafka.create_topic(name, via=rest, replication=2, exists_ok=True) or True,
                 60, "CreateTopics through the new controller")
    finally:
        kafka.heal()
    kafka.wait_usable(180)
