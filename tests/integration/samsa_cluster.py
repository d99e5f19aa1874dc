"""Three (or more) samsa-server nodes on 127.0.0.1 forming a cluster exactly as an operator
starts Kafka 4.4 KRaft nodes: node.id, process.roles, listeners with a CONTROLLER listener,
controller.listener.names and controller.quorum.voters, each on an empty data directory,
no format step. Also a raw DescribeQuorum client to find the active controller."""

import os
import socket
import struct

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
        for node in self.nodes:
            node.start()
        return self

    def node(self, node_id):
        return self.nodes[node_id - 1]

    @property
    def bootstrap(self):
        return ",".join(n.bootstrap for n in self.nodes if n.proc and n.proc.poll() is None)

    def kill_all(self):
        for node in self.nodes:
            node.kill()


def _uvarint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def _read_uvarint(buf, at):
    shift = v = 0
    while True:
        b = buf[at]
        at += 1
        v |= (b & 0x7F) << shift
        if not b & 0x80:
            return v, at
        shift += 7


def describe_quorum(port, timeout=5.0):
    """DescribeQuorum v0 to 127.0.0.1:port -> (error, leader id, leader epoch, high watermark)
    of __cluster_metadata-0, or None when the node does not answer."""
    name = b"__cluster_metadata"
    body = (_uvarint(2) + _uvarint(len(name) + 1) + name + _uvarint(2) +
            struct.pack(">i", 0) + b"\x00" + b"\x00" + b"\x00")
    client = b"test"
    header = struct.pack(">hhih", 55, 0, 7, len(client)) + client + b"\x00"
    frame = header + body
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(struct.pack(">i", len(frame)) + frame)
            size = struct.unpack(">i", _recv(s, 4))[0]
            resp = _recv(s, size)
    except OSError:
        return None
    at = 4 + 1  # correlation id, header tagged fields
    (top_error,) = struct.unpack_from(">h", resp, at)
    at += 2
    ntopics, at = _read_uvarint(resp, at)
    if ntopics < 2:
        return (top_error, -1, -1, -1)
    nlen, at = _read_uvarint(resp, at)
    at += nlen - 1
    nparts, at = _read_uvarint(resp, at)
    if nparts < 2:
        return (top_error, -1, -1, -1)
    _, err, leader, epoch, hw = struct.unpack_from(">ihiiq", resp, at)
    return (err or top_error, leader, epoch, hw)


def _recv(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise OSError("closed")
        out += chunk
    return out
