"""Forwarding to the active controller survives a controller change, as Kafka's brokers'
forwarding channel does (NodeToControllerChannelManager): a broker sends an admin request
again, to the current active controller, when the one it went to dies (kill -9), stops
answering while another is elected (SIGSTOP), or answers NOT_CONTROLLER, until 60 s after
it came; the client sees success, not NOT_CONTROLLER or a timeout."""

import signal
import struct

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from helpers import wait_for
from samsa_cluster import Cluster, _harness, describe_quorum

FAST = {"controller.quorum.election.timeout.ms": "500",
        "controller.quorum.fetch.timeout.ms": "1000",
        "broker.heartbeat.interval.ms": "500",
        "broker.session.timeout.ms": "3000"}

NOT_CONTROLLER = 41


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path, n=3, voters=3, overrides=FAST).start()
    yield c
    for node in c.nodes:  # a paused node must be resumed to be killed
        if node.proc and node.proc.poll() is None:
            node.proc.send_signal(signal.SIGCONT)
    c.kill_all()


def controller(cluster, exclude=()):
    """The active controller as a live node's DescribeQuorum says, or None."""
    for node in cluster.nodes:
        if node.node_id in exclude or not node.proc or node.proc.poll() is not None:
            continue
        q = describe_quorum(node.port)
        if q and q[1] >= 0 and q[1] not in exclude:
            return q[1]
    return None


def settled(cluster):
    """Waits for a controller and every broker registered; returns the controller's id."""
    leader = wait_for(lambda: controller(cluster), timeout=30, what="a controller")
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    wait_for(lambda: len(admin.list_topics(timeout=10).brokers) == 3, timeout=30,
             what="three registered brokers")
    return leader


def create_topics_raw(port, name, partitions, timeout_s=40.0):
    """One CreateTopics v7 to exactly 127.0.0.1:port, no client retry: the first topic's
    error code."""
    n = name.encode()
    body = (b"\x02" + bytes([len(n) + 1]) + n + struct.pack(">ih", partitions, 1) +
            b"\x01\x01\x00" + struct.pack(">i", 30000) + b"\x00\x00")
    resp = _harness._kafka_request("127.0.0.1", port, 19, 7, body, timeout=timeout_s)
    i = 4  # throttle time
    _, i = _harness._uvarint(resp, i)  # topics
    ln, i = _harness._uvarint(resp, i)
    i += ln - 1 + 16  # name, topic id
    return struct.unpack(">h", resp[i:i + 2])[0]


def test_create_topics_right_after_the_controller_is_killed(cluster):
    """kill -9 of the active controller; an AdminClient's CreateTopics through another
    broker, sent at once with a generous timeout, succeeds (and a raw one, which the client
    library cannot retry, answers NONE: the broker retried, not the client)."""
    old = settled(cluster)
    via = next(n for n in cluster.nodes if n.node_id != old)
    cluster.node(old).kill()
    admin = AdminClient({"bootstrap.servers": via.bootstrap})
    fs = admin.create_topics([NewTopic("after-kill", 3, 1)], request_timeout=40,
                             operation_timeout=40)
    assert create_topics_raw(via.port, "after-kill-raw", 2) == 0
    fs["after-kill"].result(60)
    new = wait_for(lambda: controller(cluster, exclude=(old,)), timeout=30,
                   what="the new controller")
    assert new != old
    md = admin.list_topics(timeout=10)
    assert {"after-kill", "after-kill-raw"} <= set(md.topics)


def test_create_topics_while_the_controller_is_paused_and_replaced(cluster):
    """The active controller is paused (SIGSTOP: its connections stay open, it never
    answers); a CreateTopics forwarded to it is sent again to the controller elected in its
    place, and answered NONE. Before brokers retried, the request waited on the paused node
    until the client gave up."""
    old = settled(cluster)
    via = next(n for n in cluster.nodes if n.node_id != old)
    cluster.node(old).proc.send_signal(signal.SIGSTOP)
    assert create_topics_raw(via.port, "after-pause", 2, timeout_s=25) == 0
    new = controller(cluster, exclude=(old,))
    assert new is not None and new != old
    cluster.node(old).proc.send_signal(signal.SIGCONT)
    admin = AdminClient({"bootstrap.servers": via.bootstrap})
    wait_for(lambda: "after-pause" in admin.list_topics(timeout=10).topics, timeout=30,
             what="the topic in the metadata")


def test_no_controller_answers_request_timed_out(cluster):
    """With no quorum (two of three voters killed) no controller can be found: after Kafka's
    forwarding timeout (60 s) the broker answers REQUEST_TIMED_OUT for the topic, as Kafka's
    brokers do, instead of closing the client's connection. The survivor is the controller
    that was active: its own request, answered NOT_CONTROLLER once it steps down, is retried
    like any other broker's, not relayed to the client."""
    survivor = cluster.node(settled(cluster))
    for node in cluster.nodes:
        if node is not survivor:
            node.kill()
    assert create_topics_raw(survivor.port, "never", 1, timeout_s=90) == 7  # REQUEST_TIMED_OUT
