"""Dynamic quorums (KIP-853) with real samsa-server processes and Kafka 4.4's own
kafka-metadata-quorum.sh: a first controller formatted standalone (samsa-server --format
--standalone), two more started with only controller.quorum.bootstrap.servers that join as
observers and are added with add-controller (through a controller and through a broker),
kill -9 of the leader elects another that commits metadata and the killed one rejoins from
its disk, remove-controller of a voter and of the leader itself; Kafka's error codes for bad changes over the raw protocol."""

import os
import re
import shutil
import subprocess
import uuid

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

import raw_kafka
from conftest import SERVER_BIN, Broker, free_port
from helpers import kafka_tool_runner, wait_for
from samsa_cluster import describe_quorum

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="needs Java")

ADD_RAFT_VOTER, REMOVE_RAFT_VOTER = 80, 81
NONE, DUPLICATE_VOTER, VOTER_NOT_FOUND, UNSUPPORTED_VERSION = 0, 126, 127, 35
QUORUM = "org.apache.kafka.tools.MetadataQuorumCommand"


class DynNode(Broker):
    """A broker+controller whose quorum is found through controller.quorum.bootstrap.servers."""

    def __init__(self, node_id, base, ports, ctrl_ports):
        self.node_id = node_id
        self.ctrl_port = ctrl_ports[node_id - 1]
        port = ports[node_id - 1]
        self.settings = {
            "node.id": str(node_id), "process.roles": "broker,controller",
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{self.ctrl_port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.quorum.bootstrap.servers": ",".join(f"127.0.0.1:{p}" for p in ctrl_ports),
            "log.dirs": os.path.join(str(base), f"node-{node_id}")}
        super().__init__(self.settings["log.dirs"], self.settings, port)

    def format_standalone(self):
        args = [SERVER_BIN]
        for k, v in self.settings.items():
            args += ["--override", f"{k}={v}"]
        return subprocess.run(args + ["--format", "--standalone"], capture_output=True,
                              text=True, timeout=30)

    def properties(self):
        """The node's settings as the file kafka-metadata-quorum.sh --command-config reads."""
        path = os.path.join(os.path.dirname(self.data_dir), f"node-{self.node_id}.properties")
        with open(path, "w") as f:
            f.writelines(f"{k}={v}\n" for k, v in self.settings.items())
        return path

    def directory_id(self):
        with open(os.path.join(self.data_dir, "meta.properties")) as f:
            return re.search(r"^directory\.id=(\S+)$", f.read(), re.M).group(1)


@pytest.fixture(scope="module")
def tools(tmp_path_factory):
    return kafka_tool_runner(tmp_path_factory.mktemp("kafka-tools"))


@pytest.fixture
def nodes(tmp_path):
    ports = [free_port() for _ in range(3)]
    ctrl = [free_port() for _ in range(3)]
    made = [DynNode(i + 1, tmp_path, ports, ctrl) for i in range(3)]
    yield made
    for n in made:
        n.kill()


def status(tools, *where):
    code, out, err = tools(QUORUM, *where, "describe", "--status")
    assert code == 0, err
    return dict(re.findall(r"^(\w+):\s+(.*)$", out, re.M))


def voter_ids(fields):
    return sorted(int(i) for i in re.findall(r'"id": (\d+)', fields["CurrentVoters"]))


def add_controller(tools, node, *where):
    """add-controller until the leader accepts (REQUEST_TIMED_OUT while the observer catches
    up); returns the tool's last output."""
    last = []

    def added():
        code, out, err = tools(QUORUM, *where, "--command-config", node.properties(),
                               "add-controller")
        last[:] = [out + err]
        return code == 0
    wait_for(added, timeout=60, interval=0.5, what=f"add-controller {node.node_id}")
    return last[0]


def remove_controller(tools, node, *where):
    """remove-controller until it is done: REQUEST_TIMED_OUT (a change or an election still
    settling, or the commit slower than the request timeout) is retried, as Kafka means it;
    a retry after a removal that did commit finds the voter gone (VOTER_NOT_FOUND)."""
    def removed():
        code, out, err = tools(QUORUM, *where, "remove-controller", "--controller-id",
                               str(node.node_id), "--controller-directory-id",
                               node.directory_id())
        return code == 0 or "VoterNotFoundException" in out + err
    wait_for(removed, timeout=90, interval=0.5, what=f"remove-controller {node.node_id}")


def leader_of(port):
    q = describe_quorum(port)
    return q[1] if q and q[1] >= 0 else None


def test_standalone_quorum_grows_fails_over_and_shrinks(nodes, tools):
    n1, n2, n3 = nodes
    r = n1.format_standalone()
    assert r.returncode == 0 and "standalone quorum of voter 1@127.0.0.1" in r.stdout, r.stderr
    assert os.path.exists(os.path.join(n1.data_dir, "__cluster_metadata-0",
                                       "00000000000000000000-0000000000.checkpoint"))
    n1.start()
    wait_for(lambda: leader_of(n1.port) == 1, timeout=30, what="node 1 leading alone")
    n2.start()
    n3.start()
    wait_for(lambda: "joins as an observer" in n2.read_log(), timeout=20,
             what="node 2 saying it joins as an observer")
    # Through the controller, then through a broker (relayed to the leader).
    out = add_controller(tools, n2, "--bootstrap-controller", f"127.0.0.1:{n1.ctrl_port}")
    assert f"Added controller 2 with directory id {n2.directory_id()}" in out, out
    add_controller(tools, n3, "--bootstrap-server", n2.bootstrap)
    f = status(tools, "--bootstrap-server", n3.bootstrap)
    assert voter_ids(f) == [1, 2, 3], f
    for n in nodes:
        assert f'"directoryId": "{n.directory_id()}"' in f["CurrentVoters"], f
        assert f"CONTROLLER://127.0.0.1:{n.ctrl_port}" in f["CurrentVoters"], f

    # kill -9 of the leader: the two others elect one and metadata commits.
    leader = int(f["LeaderId"])
    by_id = {n.node_id: n for n in nodes}
    by_id[leader].kill()
    rest = [n for n in nodes if n.node_id != leader]
    wait_for(lambda: leader_of(rest[0].port) in [n.node_id for n in rest], timeout=30,
             what="a new leader among the two others")
    admin = AdminClient({"bootstrap.servers": rest[0].bootstrap})

    def created():
        fut = admin.create_topics([NewTopic("after-failover", 2, 1)], operation_timeout=10)
        try:
            fut["after-failover"].result(timeout=15)
            return True
        except Exception as e:  # noqa: BLE001 (retried until the deadline)
            return "already exists" in str(e)
    wait_for(created, timeout=60, interval=0.5, what="CreateTopics after the failover")

    # The killed node restarts from its disk (the voter set from its log) and catches up.
    dead = by_id[leader]
    dead.start()

    def caught_up():
        code, out, err = tools(QUORUM, "--bootstrap-server", rest[0].bootstrap, "describe",
                               "--replication")
        rows = [l.split() for l in out.splitlines()[1:] if l.strip()]
        return code == 0 and any(r[0] == str(dead.node_id) and r[3] == "0" and
                                 r[-1] == "Follower" for r in rows)
    wait_for(caught_up, timeout=60, interval=0.5, what="the restarted voter caught up")

    # remove-controller of that voter, then of the leader itself (it resigns).
    remove_controller(tools, dead, "--bootstrap-controller", f"127.0.0.1:{rest[0].ctrl_port}")
    f = status(tools, "--bootstrap-server", rest[1].bootstrap)
    assert voter_ids(f) == sorted(n.node_id for n in rest), f
    new_leader = by_id[int(f["LeaderId"])]
    other = [n for n in rest if n is not new_leader][0]
    remove_controller(tools, new_leader, "--bootstrap-controller", f"127.0.0.1:{other.ctrl_port}")
    wait_for(lambda: leader_of(other.port) == other.node_id, timeout=30,
             what="the last voter leading once the leader removed itself")
    f = status(tools, "--bootstrap-server", new_leader.bootstrap)
    assert voter_ids(f) == [other.node_id], f
    # the removed leader follows on as an observer, its directory id from its Fetch
    seen = f'"id": {new_leader.node_id}, "directoryId": "{new_leader.directory_id()}"'
    wait_for(lambda: seen in status(
        tools, "--bootstrap-server", new_leader.bootstrap)["CurrentObservers"],
        timeout=30, interval=0.5, what="the removed leader listed as an observer")
    admin = AdminClient({"bootstrap.servers": new_leader.bootstrap})
    fut = admin.create_topics([NewTopic("one-voter", 1, 1)], operation_timeout=10)
    wait_for(lambda: fut["one-voter"].done(), timeout=30, what="CreateTopics with one voter")
    assert fut["one-voter"].exception() is None


def voter_body(cluster_id, voter_id, dir_id, listeners):
    """AddRaftVoter v0."""
    w = raw_kafka.Writer(True)
    w.string(cluster_id).raw("i", 5000).raw("i", voter_id)
    w.out += dir_id
    w.array(list(listeners), lambda w, l: w.string(l[0]).string(l[1]).raw("H", l[2]).tags())
    return bytes(w.tags().out)


def remove_body(cluster_id, voter_id, dir_id):
    w = raw_kafka.Writer(True).string(cluster_id).raw("i", voter_id)
    w.out += dir_id
    return bytes(w.tags().out)


def error_of(port, api, body):
    r = raw_kafka.exchange(port, api, 0, body, True)
    r.raw("i")  # throttle
    return r.raw("h")


def test_bad_voter_changes_get_kafkas_errors(nodes, tools):
    n1, n2 = nodes[0], nodes[1]
    assert n1.format_standalone().returncode == 0
    n1.start()
    wait_for(lambda: leader_of(n1.port) == 1, timeout=30, what="node 1 leading alone")
    dir1 = uuid.UUID(int=0).bytes  # not node 1's directory id
    with open(os.path.join(n1.data_dir, "meta.properties")) as f:
        text = f.read()
    cluster_id = re.search(r"^cluster\.id=(\S+)$", text, re.M).group(1)
    listener = [("CONTROLLER", "127.0.0.1", n1.ctrl_port)]

    def answers(port):
        return (error_of(port, ADD_RAFT_VOTER, voter_body(cluster_id, 1, dir1, listener)),
                error_of(port, REMOVE_RAFT_VOTER, remove_body(cluster_id, 9, dir1)),
                error_of(port, REMOVE_RAFT_VOTER, remove_body(cluster_id, 1, dir1)))
    # 1 votes already; 9 does not; 1 with another directory id is not a voter either.
    wait_for(lambda: answers(n1.port) == (DUPLICATE_VOTER, VOTER_NOT_FOUND, VOTER_NOT_FOUND),
             timeout=30, what="Kafka's answers from the leader")
    assert answers(n1.ctrl_port) == (DUPLICATE_VOTER, VOTER_NOT_FOUND, VOTER_NOT_FOUND)
    # A node never fetching cannot be added: it is not caught up.
    assert error_of(n1.ctrl_port, ADD_RAFT_VOTER,
                    voter_body(cluster_id, 7, dir1, listener)) == 7  # REQUEST_TIMED_OUT
    # A single node (static quorum, kraft.version 0) refuses changes.
    single = Broker(os.path.join(os.path.dirname(n1.data_dir), "single")).start()
    try:
        assert error_of(single.port, ADD_RAFT_VOTER,
                        voter_body(None, 2, dir1, listener)) == UNSUPPORTED_VERSION
    finally:
        single.kill()
