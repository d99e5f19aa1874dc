"""The harness's network faults on their own, without servers: a small
process stands in for each node (an echo listener on its controller port that
also probes the others), and node-to-node reach is checked before a fault,
during it and after heal(). Runs in both modes (netns only where namespaces and
nft are available); fast."""

import os
import subprocess
import sys

import pytest

from cluster import Cluster, netns_available

# Stands in for a node: serves an echo on its controller port, and on each
# "host port" line from stdin connects there and answers 1 (echo came back
# within a second) or 0. Being the node's process, its connections are
# attributed to the node by the proxies as a server's would be.
NODE = r"""
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(16)
def serve(c):
    with c:
        while True:
            d = c.recv(100)
            if not d: return
            c.sendall(d)
def loop():
    while True:
        c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
threading.Thread(target=loop, daemon=True).start()
print("ready", flush=True)
for line in sys.stdin:
    host, port = line.split()
    try:
        c = socket.create_connection((host, int(port)), timeout=1.0)
        c.settimeout(1.0); c.sendall(b"ping"); ok = c.recv(4) == b"ping"; c.close()
    except OSError:
        ok = False
    print(1 if ok else 0, flush=True)
"""


@pytest.fixture(params=["proxy", "netns"])
def net(request, tmp_path):
    if request.param == "netns" and not netns_available():
        pytest.skip("network namespaces or nft unavailable (needs root, ip, nft)")
    c = Cluster("samsa", n=3, network=request.param, base_dir=str(tmp_path))
    try:
        if c.network == "netns":
            c._setup_netns()
        else:
            c._setup_proxy()
        for node in c.nodes.values():
            cmd = [sys.executable, "-c", NODE, node.ip, str(node.controller_port)]
            if node.netns:
                cmd = ["ip", "netns", "exec", node.netns, *cmd]
            node.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert node.proc.stdout.readline().strip() == "ready"
        yield c
    finally:
        c.close()


def reach(c, a, b):
    """Can node a open a connection to node b's controller port and get an echo?"""
    if c.network == "netns":
        host, port = c.nodes[b].ip, c.nodes[b].controller_port
    else:
        host, port = "127.0.0.1", c._links[("controller", b)].port
    proc = c.nodes[a].proc
    proc.stdin.write(f"{host} {port}\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip() == "1"


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
