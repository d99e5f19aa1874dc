"""The harness's network faults on their own, without servers: a small echo
listener stands in for each node's controller port, and node-to-node reach is
probed before a fault, during it and after heal(). Runs in both modes (netns
only where namespaces and nft are available); fast."""

import os
import socket
import subprocess
import sys
import threading

import pytest

from cluster import Cluster, netns_available

ECHO = r"""
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(16)
print("ready", flush=True)
def serve(c):
    while True:
        d = c.recv(100)
        if not d: return
        c.sendall(d)
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

PROBE = r"""
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1.0)
    c.settimeout(1.0); c.sendall(b"ping"); ok = c.recv(4) == b"ping"
except OSError:
    ok = False
sys.exit(0 if ok else 1)
"""


def echo_thread(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)

    def serve(c):
        with c:
            while d := c.recv(100):
                c.sendall(d)

    def loop():
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return s


@pytest.fixture(params=["proxy", "netns"])
def net(request, tmp_path):
    if request.param == "netns" and not netns_available():
        pytest.skip("network namespaces or nft unavailable (needs root, ip, nft)")
    c = Cluster("samsa", n=3, network=request.param, base_dir=str(tmp_path))
    procs, socks = [], []
    try:
        if c.network == "netns":
            c._setup_netns()
            for node in c.nodes.values():
                p = subprocess.Popen(["ip", "netns", "exec", node.netns, sys.executable, "-c", ECHO,
                                      node.ip, str(node.controller_port)], stdout=subprocess.PIPE)
                procs.append(p)
                assert p.stdout.readline().strip() == b"ready"
        else:
            c._setup_proxy()
            socks = [echo_thread(node.controller_port) for node in c.nodes.values()]
        yield c
    finally:
        for p in procs:
            p.kill()
            p.wait()
        for s in socks:
            s.close()
        c.close()


def reach(c, a, b):
    """Can node a open a connection to node b's controller port and get an echo?"""
    if c.network == "netns":
        r = subprocess.run(["ip", "netns", "exec", c.nodes[a].netns, sys.executable, "-c", PROBE,
                            c.nodes[b].ip, str(c.nodes[b].controller_port)])
        return r.returncode == 0
    r = subprocess.run([sys.executable, "-c", PROBE, "127.0.0.1", str(c._links[(a, b)].port)])
    return r.returncode == 0


def matrix(c):
    return {(a, b) for a in c.nodes for b in c.nodes if a != b and reach(c, a, b)}


ALL = {(a, b) for a in (1, 2, 3) for b in (1, 2, 3) if a != b}


def test_partition_and_heal(net):
    assert matrix(net) == ALL
    net.partition([[1], [2, 3]])
    assert matrix(net) == {(2, 3), (3, 2)}
    net.heal()
    assert matrix(net) == ALL


def test_one_way_drop_cuts_that_direction_only(net):
    net.drop(1, 2)
    m = matrix(net)
    assert (1, 2) not in m
    # TCP needs both directions, so 2 -> 1 fails too; every other link works.
    assert m == ALL - {(1, 2), (2, 1)}
    net.heal()
    assert matrix(net) == ALL


def test_nodes_in_no_group_reach_everyone(net):
    net.partition([[1], [2]])
    assert matrix(net) == ALL - {(1, 2), (2, 1)}


def test_close_removes_namespaces(net):
    if net.network != "netns":
        pytest.skip("netns only")
    names = [n.netns for n in net.nodes.values()]
    net.close()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(n in listed for n in names)
    assert os.path.exists("/sys/class/net/" + net._tag + "br") is False
