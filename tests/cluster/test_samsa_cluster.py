"""A three-node Samsa cluster under faults, each node in its own network namespace (or behind
per-link TCP proxies where namespaces are unavailable): kill -9 and SIGSTOP of nodes, the
active controller cut off by the network (it cannot commit; the majority elects another
and does), healing. Part of `make test`."""

import uuid

import pytest
from confluent_kafka import KafkaException

from cluster import Cluster, wait_for

FAST = {"broker.heartbeat.interval.ms": "500", "broker.session.timeout.ms": "3000",
        "controller.quorum.election.timeout.ms": "500",
        "controller.quorum.fetch.timeout.ms": "1000"}


@pytest.fixture(scope="module")
def samsa():
    with Cluster("samsa", n=3, extra_overrides=FAST) as c:
        yield c


def topic_name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_on(c, nodes, name, timeout=60, replication=None):
    wait_for(lambda: c.create_topic(name, via=nodes, exists_ok=True, replication=replication)
             or True, timeout,
             f"CreateTopics {name} through {nodes}")


def test_kill9_active_controller_then_new_leader_commits(samsa):
    old = samsa.active_controller()
    assert old in samsa.nodes
    samsa.kill9(old)
    survivors = samsa.running()
    new = samsa.wait_controller(exclude=[old], timeout=30)
    assert new in survivors
    name = topic_name("after-kill")
    create_on(samsa, survivors, name)
    samsa.start_node(old)
    samsa.wait_usable(60)
    # The restarted node has every topic, created before and while it was down.
    assert name in samsa.admin([old]).list_topics(timeout=10).topics


def test_sigstop_node_majority_keeps_working(samsa):
    paused = next(i for i in samsa.nodes if i != samsa.active_controller())
    samsa.stop(paused)
    try:
        rest = samsa.running()
        create_on(samsa, rest, topic_name("while-paused"))
    finally:
        samsa.cont(paused)
    samsa.wait_usable(60)


def test_isolated_controller_cannot_commit_and_the_majority_moves_on(samsa):
    old = samsa.active_controller()
    rest = [i for i in samsa.nodes if i != old]
    lonely = topic_name("lonely")
    samsa.isolate(old)
    try:
        # The majority elects another controller and commits through it.
        new = wait_for(lambda: (lambda ld: ld if ld in rest else None)(
            samsa.active_controller(via=rest)), 30, "a leader on the majority side")
        assert new != old
        name = topic_name("majority")
        # Two replicas: the cut-off node may already be fenced (its session expires while
        # the majority elects), and three would then be refused INVALID_REPLICATION_FACTOR
        # until the network heals.
        create_on(samsa, rest, name, replication=len(rest))
        # The cut-off node cannot commit anything: a CreateTopics through it fails.
        with pytest.raises(KafkaException):
            samsa.create_topic(lonely, via=[old], timeout=4.0)
    finally:
        samsa.heal()
    samsa.wait_usable(60)
    # After healing the old controller follows the new one and has the majority's topic.
    assert samsa.active_controller(via=[old]) == samsa.active_controller(via=rest)
    # Its metadata follows once it has fetched the majority's log (it may answer DescribeQuorum
    # with the new leader a moment before it has applied the records it fetches from it).
    wait_for(lambda: name in samsa.admin([old]).list_topics(timeout=10).topics, 30,
             f"the old controller listing {name}")
