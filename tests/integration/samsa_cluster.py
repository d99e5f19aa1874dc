"""Three (or more) samsa-server nodes on 127.0.0.1 forming a cluster exactly as an operator
starts Kafka 4.4 KRaft nodes: node.id, process.roles, listeners with a CONTROLLER listener,
controller.listener.names and controller.quorum.voters, each on an empty data directory,
no format step; the active controller found with the cluster harness's DescribeQuorum client."""

import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "cluster"))
import cluster as _harness  # noqa: E402

from conftest import Broker, free_port


class Node(Broker):
    def __init__(self, node_id, data_dir, port, ctrl_port, voters, roles, overrides):
        self.node_id = node_id
        self.ctrl_port = ctrl_port
        self.roles = roles
        o = {"node.id": str(node_id), "process.roles": roles,
             "controller.quorum.voters": voters,
             "controller.listener.names": "CONTROLLER"}
        if "controller" in roles:
            o["listeners"] = (f"PLAINTEXT://127.0.0.1:{port},"
                              f"CONTROLLER://127.0.0.1:{ctrl_port}")
        else:
            o["listeners"] = f"PLAINTEXT://127.0.0.1:{port}"
        o.update(overrides or {})
        super().__init__(data_dir, o, port)
        # Broker.start puts its own listeners first; the node's (with CONTROLLER) follow
        # and win.


class Cluster:
    """n nodes; the first `voters` are broker+controller, the rest brokers only."""

    def __init__(self, base_dir, n=3, voters=3, overrides=None, racks=None):
        self.nodes = []
        ports = [(free_port(), free_port()) for _ in range(n)]
        vl = ",".join(f"{i + 1}@127.0.0.1:{ports[i][1]}" for i in range(voters))
        for i in range(n):
            roles = "broker,controller" if i < voters else "broker"
            o = dict(overrides or {})
            if racks:
                o["broker.rack"] = racks[i]
            self.nodes.append(Node(i + 1, os.path.join(str(base_dir), f"node-{i + 1}"),
                                   ports[i][0], ports[i][1], vl, roles, o))

    def start(self):
        # All first, then each waited for: a node serves clients only once it is caught up
        # with the metadata log and unfenced, which needs a quorum (as Kafka's brokers).
        for node in self.nodes:
            node.spawn()
        for node in self.nodes:
            node.wait_ready()
        return self

    def node(self, node_id):
        return self.nodes[node_id - 1]

    @property
    def bootstrap(self):
        return ",".join(n.bootstrap for n in self.nodes if n.proc and n.proc.poll() is None)

    def kill_all(self):
        for node in self.nodes:
            node.kill()


def describe_quorum(port, timeout=5.0):
    """DescribeQuorum to 127.0.0.1:port (the harness's raw client, tests/cluster/cluster.py)
    -> (0, leader id, leader epoch, high watermark), or None when the node does not answer or
    knows no leader."""
    try:
        leader, epoch, hw = _harness.describe_quorum("127.0.0.1", port, timeout)
    except (OSError, RuntimeError, struct.error):
        return None
    return (0, leader, epoch, hw)


def metadata_of(port, topics, timeout=5.0):
    """Metadata v12 for these topics asked of exactly 127.0.0.1:port (the harness's raw
    client): (broker ids, {topic: (error code, {partition: {...}})}); raises OSError when the
    node refuses the connection or does not answer."""
    return _harness.metadata_partitions("127.0.0.1", port, topics, timeout)
