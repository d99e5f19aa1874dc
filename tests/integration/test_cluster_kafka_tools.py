"""Kafka 4.4's own tools (the Java AdminClient, producer and consumer inside them) against a
three-node Samsa cluster: kafka-metadata-quorum.sh describe through a broker and through a
controller, kafka-topics.sh create/describe, kafka-producer-perf-test.sh with acks=all and
kafka-get-offsets.sh. Skipped only when Java is missing."""

import re
import shutil

import pytest

from helpers import kafka_tool_runner, wait_for
from samsa_cluster import describe_quorum
from test_cluster import brokers_seen, cluster  # noqa: F401 (cluster: the three-node fixture)

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="needs Java")


@pytest.fixture(scope="module")
def tools(tmp_path_factory):
    return kafka_tool_runner(tmp_path_factory.mktemp("kafka-tools"))


def status_fields(out):
    return dict(re.findall(r"^(\w+):\s+(.*)$", out, re.M))


def test_metadata_quorum_tool(cluster, tools):
    wait_for(lambda: (describe_quorum(cluster.node(1).port) or (1,))[0] == 0, timeout=30,
             what="a controller")
    code, out, err = tools("org.apache.kafka.tools.MetadataQuorumCommand", "--bootstrap-server",
                           cluster.node(1).bootstrap, "describe", "--status")
    assert code == 0, err
    f = status_fields(out)
    leader = int(f["LeaderId"])
    assert leader in (1, 2, 3) and int(f["LeaderEpoch"]) >= 1 and int(f["HighWatermark"]) > 0
    for n in cluster.nodes:
        assert f'"id": {n.node_id}' in f["CurrentVoters"]
        assert f"CONTROLLER://127.0.0.1:{n.ctrl_port}" in f["CurrentVoters"]
    # Through a controller (--bootstrap-controller): every voter's replication state.
    code, out, err = tools("org.apache.kafka.tools.MetadataQuorumCommand",
                           "--bootstrap-controller", f"127.0.0.1:{cluster.node(2).ctrl_port}",
                           "describe", "--replication")
    assert code == 0, err
    rows = [l.split() for l in out.splitlines()[1:] if l.strip()]
    assert sorted(int(r[0]) for r in rows) == [1, 2, 3]
    assert [r[-1] for r in rows if int(r[0]) == leader] == ["Leader"]
    assert all(r[-1] == "Follower" for r in rows if int(r[0]) != leader)


def test_topics_producer_and_offsets_tools(cluster, tools):
    wait_for(lambda: (describe_quorum(cluster.node(1).port) or (1,))[0] == 0, timeout=30,
             what="a controller")
    boot = cluster.node(2).bootstrap

    def create():
        code, out, err = tools("org.apache.kafka.tools.TopicCommand", "--bootstrap-server", boot,
                               "--create", "--topic", "tools", "--partitions", "6",
                               "--replication-factor", "1")
        return code == 0 or "already exists" in err
    # Placement uses the brokers unfenced at creation: wait for all three.
    wait_for(lambda: len(getattr(brokers_seen(boot), "brokers", ())) == 3, timeout=30,
             interval=0.2, what="three registered brokers")
    wait_for(create, timeout=60, interval=1, what="kafka-topics --create")
    code, out, err = tools("org.apache.kafka.tools.TopicCommand", "--bootstrap-server",
                           cluster.node(3).bootstrap, "--describe", "--topic", "tools")
    assert code == 0, err
    leaders = re.findall(r"Partition: (\d+)\s+Leader: (\d+)", out)
    assert len(leaders) == 6 and {l for _, l in leaders} == {"1", "2", "3"}, out

    code, out, err = tools("org.apache.kafka.tools.ProducerPerformance", "--topic", "tools",
                           "--num-records", "3000", "--record-size", "100", "--throughput",
                           "-1", "--producer-props", f"bootstrap.servers={boot}", "acks=all")
    assert code == 0, err
    assert "3000 records sent" in out, out
    code, out, err = tools("org.apache.kafka.tools.GetOffsetShell", "--bootstrap-server",
                           cluster.node(1).bootstrap, "--topic", "tools")
    assert code == 0, err
    ends = [int(l.rsplit(":", 1)[1]) for l in out.split()]
    assert len(ends) == 6 and sum(ends) == 3000, out
