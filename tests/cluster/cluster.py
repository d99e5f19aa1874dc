"""A multi-node cluster for tests and benchmarks: N samsa-server or Apache Kafka
4.4 KRaft nodes started like Kafka's (node.id, process.roles, listeners,
controller.quorum.voters, log.dirs), with process and network fault injection.

Network modes (docs/testing-cluster.md):
- "netns": every node runs in its own network namespace with its own address
  10.A.B.(10+id) on a private bridge; faults are nftables rules inside the
  nodes' namespaces (silent drops, exact per directed pair). Needs root,
  `ip netns` and `nft`.
- "proxy": every node listens on 127.0.0.1 and advertises a TCP proxy in
  front of each of its listeners (controller.quorum.voters and
  advertised.listeners name the proxies); a proxy attributes each connection
  to the node owning the connecting socket (/proc) and discards the bytes of
  dropped directions silently, so faults are exact per directed pair too.
- "auto" (default): "netns" when it works here, otherwise "proxy".

States of a node: stopped (no process) -> running -> paused (SIGSTOP) ->
running, or killed -> stopped. Invariants: `nodes[i].proc` is None exactly when
the node is stopped; every network resource this object created (namespaces,
bridge, proxies) is removed by close(), also after a failed start.
"""

import atexit
import base64
import logging
import os
import random
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMSA_SERVER = os.environ.get("SAMSA_SERVER", os.path.join(ROOT, "build", "bin", "samsa-server"))
KAFKA_REF = os.path.join(ROOT, "bench", "kafka-ref", "kafka-ref.sh")
KAFKA_LOG4J = os.path.join(ROOT, "bench", "kafka-ref", "log4j2.properties")
BROKER_PORT = 9092  # netns mode: every node has its own address, so fixed ports
CONTROLLER_PORT = 9093

log = logging.getLogger("cluster")


class ClusterUnavailable(RuntimeError):
    """The cluster could not be started (e.g. the server has no cluster mode yet)."""


def _run(cmd, check=True):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout, what, interval=0.2):
    """Polls cond() until it returns a true value (returned) or timeout passes."""
    deadline = time.monotonic() + timeout
    last_err = None
    while True:
        try:
            v = cond()
            if v:
                return v
        except ClusterUnavailable:
            raise
        except Exception as e:  # noqa: BLE001 - any client error means "not yet"
            last_err = e
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}"
                               + (f" (last error: {last_err!r})" if last_err else ""))
        time.sleep(interval)


def netns_available():
    """True when this process can create namespaces, a bridge and nft rules."""
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("nft"):
        return False
    name = f"smhprobe{os.getpid() % 100000}"
    try:
        if _run(["ip", "netns", "add", name], check=False).returncode != 0:
            return False
        r = _run(["ip", "netns", "exec", name, "nft", "add", "table", "inet", "probe"], check=False)
        return r.returncode == 0
    finally:
        _run(["ip", "netns", "del", name], check=False)


# ---------------------------------------------------------------- raw requests

def _kafka_request(host, port, api_key, version, body, timeout=3.0):
    """One request with header v2 (flexible) and the response body after header v1."""
    cid = b"samsa-cluster-harness"
    hdr = struct.pack(">hhih", api_key, version, 1, len(cid)) + cid + b"\x00"
    msg = hdr + body
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(struct.pack(">i", len(msg)) + msg)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
            d = s.recv(65536)
            if not d:
                raise ConnectionError("connection closed")
            buf += d
    if struct.unpack(">i", buf[4:8])[0] != 1:
        raise ConnectionError("bad correlation id")
    return buf[9:]  # length, correlation id, empty tag section


def _uvarint(b, i):
    n = shift = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        if c < 0x80:
            return n, i
        shift += 7


def describe_quorum(host, port, timeout=3.0):
    """(leader id, leader epoch, high watermark) of __cluster_metadata, from a
    DescribeQuorum v0 request to a broker (which forwards it to the controller)."""
    name = b"__cluster_metadata"
    body = (b"\x02" + bytes([len(name) + 1]) + name + b"\x02" + struct.pack(">i", 0)
            + b"\x00" + b"\x00" + b"\x00")
    r = _kafka_request(host, port, 55, 0, body, timeout)
    err = struct.unpack(">h", r[0:2])[0]
    if err:
        raise RuntimeError(f"DescribeQuorum error {err}")
    i = 2
    ntopics, i = _uvarint(r, i)
    if ntopics < 2:
        raise RuntimeError("DescribeQuorum: no topic")
    nlen, i = _uvarint(r, i)
    i += nlen - 1
    nparts, i = _uvarint(r, i)
    if nparts < 2:
        raise RuntimeError("DescribeQuorum: no partition")
    _, perr, leader, epoch, hw = struct.unpack(">ihiiq", r[i:i + 22])
    if perr:
        raise RuntimeError(f"DescribeQuorum partition error {perr}")
    return leader, epoch, hw


def _cstring(b, i):
    n, i = _uvarint(b, i)
    return (None if n == 0 else b[i:i + n - 1].decode()), i + max(n - 1, 0)


def _skip_tags(b, i):
    n, i = _uvarint(b, i)
    for _ in range(n):
        _, i = _uvarint(b, i)
        size, i = _uvarint(b, i)
        i += size
    return i


def metadata(host, port, topics=None, timeout=3.0):
    """Metadata v12 asked of exactly this broker: (broker ids, {topic: (error
    code, [leader per partition])}). topics None asks for no topics."""
    brokers, topics_ = metadata_partitions(host, port, topics, timeout)
    return brokers, {t: (err, [ps[i]["leader"] for i in sorted(ps)]) for t, (err, ps) in topics_.items()}


def metadata_partitions(host, port, topics=None, timeout=3.0):
    """Metadata v12 asked of exactly this broker: (broker ids, {topic: (error
    code, {partition: {"error", "leader", "leader_epoch", "replicas", "isr"}})})."""
    if topics is None:
        body = b"\x01"
    else:
        body = bytes([len(topics) + 1])
        for t in topics:
            name = t.encode()
            body += bytes(16) + bytes([len(name) + 1]) + name + b"\x00"
    r = _kafka_request(host, port, 3, 12, body + b"\x00\x00\x00", timeout)
    i = 4  # throttle time
    n, i = _uvarint(r, i)
    brokers = set()
    for _ in range(n - 1):
        brokers.add(struct.unpack(">i", r[i:i + 4])[0])
        _, i = _cstring(r, i + 4)
        i += 4  # port
        _, i = _cstring(r, i)  # rack
        i = _skip_tags(r, i)
    _, i = _cstring(r, i)  # cluster id
    i += 4  # controller id
    n, i = _uvarint(r, i)
    out = {}
    for _ in range(n - 1):
        err = struct.unpack(">h", r[i:i + 2])[0]
        name, i = _cstring(r, i + 2)
        i += 17  # topic id, is_internal
        np_, i = _uvarint(r, i)
        parts = {}
        for _ in range(np_ - 1):
            perr, index, leader, epoch = struct.unpack(">hiii", r[i:i + 14])
            i += 14
            lists = []
            for _ in range(3):  # replicas, isr, offline replicas
                k, i = _uvarint(r, i)
                lists.append(list(struct.unpack(f">{max(k - 1, 0)}i", r[i:i + 4 * max(k - 1, 0)])))
                i += 4 * max(k - 1, 0)
            i = _skip_tags(r, i)
            parts[index] = {"error": perr, "leader": leader, "leader_epoch": epoch,
                            "replicas": lists[0], "isr": lists[1]}
        i += 4  # authorized operations
        i = _skip_tags(r, i)
        out[name] = (err, parts)
    return brokers, out


# ---------------------------------------------------------------- TCP proxies

def _socket_owner(peer_port, listen_port, pids):
    """The pid in pids whose socket 127.0.0.1:peer_port is connected to
    listen_port (from /proc/net/tcp{,6} and /proc/PID/fd), or None."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if (int(parts[1].rsplit(":", 1)[1], 16) == peer_port
                    and int(parts[2].rsplit(":", 1)[1], 16) == listen_port):
                inode = parts[9]
                break
        if inode:
            break
    if not inode:
        return None
    want = f"socket:[{inode}]"
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == want:
                    return pid
            except OSError:
                continue
    return None


class _Inbound:
    """The TCP proxy in front of one listener of node dst (proxy mode). Each
    accepted connection is attributed to the node whose process owns the
    connecting socket (or to a client), and its bytes are discarded silently
    while the cluster drops that direction: src -> dst bytes when (src, dst)
    is in drops, dst -> src bytes when (dst, src) is. A connection that lost
    bytes is corrupt as a stream: heal() closes it, so both sides reconnect."""

    def __init__(self, cluster, dst, target_port, avoid=()):
        self.cluster = cluster
        self.dst = dst
        self.target = target_port
        self.lock = threading.Lock()
        self.conns = []  # [client socket, upstream socket or None, source node id, tainted]
        self.closed = False
        # Port 0 may hand out a port allocated to a node that has not bound it yet.
        held = []
        while True:
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            if sock.getsockname()[1] not in avoid:
                break
            held.append(sock)
        for h in held:
            h.close()
        self.sock = sock
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, peer = self.sock.accept()
            except OSError:
                return
            src = self.cluster._node_of_pid(_socket_owner(peer[1], self.port, self.cluster.pids.values()))
            try:
                u = socket.create_connection(("127.0.0.1", self.target), timeout=2)
                u.settimeout(None)
            except OSError:
                u = None
            if u is None and (src, self.dst) not in self.cluster._drops:
                c.close()  # the target is down: refuse like the real port would
                continue
            entry = [c, u, src, False]
            with self.lock:
                self.conns.append(entry)
            threading.Thread(target=self._pump, args=(entry,), daemon=True).start()

    def _pump(self, entry):
        c, u, src = entry[0], entry[1], entry[2]
        socks = [c] + ([u] if u else [])
        try:
            while not self.closed:
                r, _, _ = select.select(socks, [], [], 0.5)
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    fwd = s is c
                    drops = self.cluster._drops
                    if u is None or ((src, self.dst) if fwd else (self.dst, src)) in drops:
                        entry[3] = True
                        continue
                    (u if fwd else c).sendall(data)
        except OSError:
            return
        finally:
            with self.lock:
                if entry in self.conns:
                    self.conns.remove(entry)
            for s in socks:
                s.close()

    def heal(self, everything=False):
        with self.lock:
            doomed = [e for e in self.conns if e[3] or everything]
        for e in doomed:
            for s in (e[0], e[1]):
                if s:
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

    def close(self):
        self.closed = True
        self.sock.close()
        self.heal(everything=True)


BLKIO = "/sys/fs/cgroup/blkio"


def disk_throttle_available():
    """Whether slow_disk() can work here: root and the cgroup v1 blkio
    controller with its throttle files."""
    return os.geteuid() == 0 and os.path.exists(f"{BLKIO}/blkio.throttle.write_bps_device")


def _disk_of(path):
    """major:minor of the whole disk holding path (throttles apply to disks,
    not partitions)."""
    st = os.stat(path)
    dev = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    sysdir = os.path.realpath(f"/sys/dev/block/{dev}")
    if os.path.exists(os.path.join(sysdir, "partition")):
        with open(os.path.join(os.path.dirname(sysdir), "dev")) as f:
            dev = f.read().strip()
    return dev


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


# ---------------------------------------------------------------- nodes

class Node:
    def __init__(self, node_id, data_dir):
        self.id = node_id
        self.data_dir = data_dir
        self.proc = None
        self.log = None
        self.paused = False
        self.slow_cgroup = None  # the blkio cgroup of slow_disk(), while slow
        # Filled by the network set-up.
        self.netns = None
        self.ip = "127.0.0.1"
        self.broker_port = None  # where the node listens
        self.controller_port = None
        self.advertised = None  # (host, port) clients and peers use


class Cluster:
    """N nodes of kind "samsa" or "kafka". Use as a context manager, or call
    start() and close(). Node ids are 1..n."""

    def __init__(self, kind="samsa", n=3, roles="broker,controller", base_dir=None,
                 extra_overrides=None, network="auto", heap="-Xms256m -Xmx1g", cpus=None,
                 start_timeout=None, server_bin=None):
        if kind not in ("samsa", "kafka"):
            raise ValueError(f"kind must be samsa or kafka, not {kind!r}")
        self.kind = kind
        self.n = n
        self.roles = roles
        self.extra = dict(extra_overrides or {})
        self.heap = heap
        self.cpus = cpus
        self.server_bin = server_bin or SAMSA_SERVER
        self.start_timeout = start_timeout or (180 if kind == "kafka" else 60)
        self._own_base = base_dir is None
        self.base_dir = base_dir or tempfile.mkdtemp(prefix=f"samsa-cluster-{kind}-")
        os.makedirs(self.base_dir, exist_ok=True)
        if network == "auto":
            network = "netns" if netns_available() else "proxy"
        if network not in ("netns", "proxy"):
            raise ValueError(f"network must be auto, netns or proxy, not {network!r}")
        self.network = network
        self.nodes = {i: Node(i, os.path.join(self.base_dir, f"node-{i}")) for i in range(1, n + 1)}
        self._tag = f"smh{random.getrandbits(20):05x}"
        self._bridge = None
        self._subnet = None
        self._links = {}  # proxy mode: ("broker" | "controller", node id) -> _Inbound
        self._drops = frozenset()  # directed (src, dst) node pairs whose packets are lost
        self._cluster_id = None
        self._closed = False
        atexit.register(self.close)

    # ------------------------------------------------------------ network set-up

    def _pick_subnet(self):
        used = _run(["ip", "-4", "-o", "addr"]).stdout + _run(["ip", "-4", "route"]).stdout
        for _ in range(200):
            a, b = random.randint(100, 250), random.randint(0, 255)
            if f"10.{a}.{b}." not in used:
                return f"10.{a}.{b}"
        raise ClusterUnavailable("no free 10.x.y.0/24 subnet")

    def _setup_netns(self):
        self._subnet = self._pick_subnet()
        self._bridge = f"{self._tag}br"
        _run(["ip", "link", "add", self._bridge, "type", "bridge"])
        _run(["ip", "addr", "add", f"{self._subnet}.1/24", "dev", self._bridge])
        _run(["ip", "link", "set", self._bridge, "up"])
        for node in self.nodes.values():
            ns = f"{self._tag}n{node.id}"
            veth = f"{self._tag}v{node.id}"
            _run(["ip", "netns", "add", ns])
            node.netns = ns
            _run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
            _run(["ip", "link", "set", veth, "master", self._bridge, "up"])
            node.ip = f"{self._subnet}.{10 + node.id}"
            _run(["ip", "-n", ns, "addr", "add", f"{node.ip}/24", "dev", "eth0"])
            _run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            _run(["ip", "-n", ns, "link", "set", "lo", "up"])
            self._nft(node, "add table inet harness")
            self._nft(node, "add chain inet harness out { type filter hook output priority 0 ; }")
            node.broker_port, node.controller_port = BROKER_PORT, CONTROLLER_PORT
            node.advertised = (node.ip, BROKER_PORT)

    def _setup_proxy(self):
        ports = set()
        while len(ports) < 2 * self.n:
            ports.add(free_port())
        ports = sorted(ports)
        for k, node in enumerate(self.nodes.values()):
            node.broker_port, node.controller_port = ports[2 * k], ports[2 * k + 1]
        for b in self.nodes.values():
            self._links[("broker", b.id)] = _Inbound(self, b.id, b.broker_port, ports)
            self._links[("controller", b.id)] = _Inbound(self, b.id, b.controller_port, ports)
            b.advertised = ("127.0.0.1", self._links[("broker", b.id)].port)

    def _node_of_pid(self, pid):
        return next((i for i, n in self.nodes.items() if n.proc is not None and n.proc.pid == pid),
                    None)

    def _nft(self, node, rule):
        _run(["ip", "netns", "exec", node.netns, "nft", *rule.split()])

    def _voters(self, node):
        """controller.quorum.voters as this node must dial them."""
        out = []
        for v in self.nodes.values():
            if self.network == "netns":
                out.append(f"{v.id}@{v.ip}:{v.controller_port}")
            else:
                out.append(f"{v.id}@127.0.0.1:{self._links[('controller', v.id)].port}")
        return ",".join(out)

    # ------------------------------------------------------------ configuration

    def overrides(self, node):
        """The settings a node starts with (Kafka's keys; samsa gets them as --override)."""
        roles = self.roles.split(",")
        listeners = []
        if "broker" in roles:
            listeners.append(f"PLAINTEXT://{node.ip}:{node.broker_port}")
        if "controller" in roles:
            listeners.append(f"CONTROLLER://{node.ip}:{node.controller_port}")
        o = {
            "node.id": str(node.id),
            "process.roles": self.roles,
            "listeners": ",".join(listeners),
            "controller.listener.names": "CONTROLLER",
            "controller.quorum.voters": self._voters(node),
            "log.dirs": os.path.join(node.data_dir, "logs"),
        }
        advertised = []
        if "broker" in roles:
            advertised.append(f"PLAINTEXT://{node.advertised[0]}:{node.advertised[1]}")
        if "controller" in roles and self.network == "proxy":
            # A KRaft leader tells followers its own controller endpoint (KIP-853):
            # it must be the proxy, or followers would bypass it.
            advertised.append(f"CONTROLLER://127.0.0.1:{self._links[('controller', node.id)].port}")
        if advertised:
            o["advertised.listeners"] = ",".join(advertised)
        if self.kind == "kafka":
            o.update({
                "inter.broker.listener.name": "PLAINTEXT",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "group.initial.rebalance.delay.ms": "0",
            })
        o.update(self.extra)
        return o

    def _kafka_classpath(self):
        lib = os.path.join(ROOT, "bench", "kafka-ref", "target", "lib")
        if not os.path.exists(os.path.join(lib, ".complete")):
            r = _run([KAFKA_REF, "setup"], check=False)
            if r.returncode != 0:
                raise ClusterUnavailable(f"kafka-ref setup failed: {r.stderr.strip()}")
        return os.path.join(lib, "*")

    def _kafka_prepare(self, node):
        """Writes server.properties; formats the storage on the first start."""
        props = os.path.join(node.data_dir, "server.properties")
        with open(props, "w") as f:
            f.write("# Written by tests/cluster/cluster.py\n")
            for k, v in self.overrides(node).items():
                f.write(f"{k}={v}\n")
        if os.path.exists(os.path.join(node.data_dir, "logs", "meta.properties")):
            return props
        if self._cluster_id is None:
            # A Kafka cluster id: 16 random bytes, base64url without padding, never starting
            # with "-" (Kafka's Uuid.randomUuid draws again: kafka-storage's argument parser
            # would take such an id for an option).
            while self._cluster_id is None or self._cluster_id.startswith("-"):
                self._cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        cmd = ["java", f"-Dlog4j2.configurationFile={KAFKA_LOG4J}", "-cp", self._kafka_classpath(),
               "kafka.tools.StorageTool", "format", "-t", self._cluster_id, "-c", props]
        r = _run(cmd, check=False)
        if r.returncode != 0:
            raise ClusterUnavailable(f"kafka-storage format failed for node {node.id}: "
                                     f"{(r.stdout + r.stderr)[-1500:]}")
        return props

    def _command(self, node):
        if self.kind == "kafka":
            props = self._kafka_prepare(node)
            cmd = ["java", *self.heap.split(), "-XX:+UseG1GC", "-Djava.awt.headless=true",
                   f"-Dlog4j2.configurationFile={KAFKA_LOG4J}", "-cp", self._kafka_classpath(),
                   "kafka.Kafka", props]
        else:
            if not os.access(self.server_bin, os.X_OK):
                raise ClusterUnavailable(f"{self.server_bin} is not built (make build)")
            cmd = [self.server_bin]
            for k, v in self.overrides(node).items():
                cmd += ["--override", f"{k}={v}"]
        if self.cpus is not None:
            cmd = ["taskset", "-c", str(self.cpus), *cmd]
        if node.netns:
            cmd = ["ip", "netns", "exec", node.netns, *cmd]
        return cmd

    # ------------------------------------------------------------ lifecycle

    def start(self):
        try:
            if self.network == "netns":
                self._setup_netns()
            else:
                self._setup_proxy()
            for node in self.nodes.values():
                self.start_node(node.id)
            self.wait_usable(self.start_timeout)
        except TimeoutError as e:
            tails = "\n".join(f"--- node {i} log tail:\n{self.log_tail(i, 1500)}" for i in self.nodes)
            self.close()
            raise ClusterUnavailable(f"{self.kind} cluster of {self.n} did not become usable: {e}\n{tails}")
        except BaseException:
            self.close()
            raise
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def start_node(self, node_id):
        """Starts a stopped node (its data directory is kept)."""
        node = self.nodes[node_id]
        if node.proc is not None:
            raise RuntimeError(f"node {node_id} is running")
        os.makedirs(node.data_dir, exist_ok=True)
        cmd = self._command(node)
        node.log = open(os.path.join(node.data_dir, "server.log"), "ab")
        # ip netns exec and taskset exec the server: proc.pid is the server's pid.
        node.proc = subprocess.Popen(cmd, stdout=node.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        node.paused = False

    def log_tail(self, node_id, nbytes=2000):
        try:
            with open(os.path.join(self.nodes[node_id].data_dir, "server.log"), "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - nbytes))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def _reap(self, node, timeout):
        try:
            node.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            node.proc.kill()
            node.proc.wait()
        node.proc = None
        node.paused = False
        if node.slow_cgroup:
            self.fast_disk(node.id)
        if node.log:
            node.log.close()
            node.log = None

    def kill9(self, node_id):
        node = self.nodes[node_id]
        if node.proc is None:
            return
        node.proc.send_signal(signal.SIGKILL)
        self._reap(node, 30)

    def terminate(self, node_id, timeout=60):
        """Clean shutdown: SIGTERM, SIGKILL after timeout seconds."""
        node = self.nodes[node_id]
        if node.proc is None:
            return
        if node.paused:
            self.cont(node_id)
        node.proc.send_signal(signal.SIGTERM)
        self._reap(node, timeout)

    def stop(self, node_id):
        """SIGSTOP: the process hangs with its sockets open (a GC pause, a stuck VM)."""
        self.nodes[node_id].proc.send_signal(signal.SIGSTOP)
        self.nodes[node_id].paused = True

    def cont(self, node_id):
        self.nodes[node_id].proc.send_signal(signal.SIGCONT)
        self.nodes[node_id].paused = False

    def slow_disk(self, node_id, bps=256 * 1024, iops=20):
        """Throttles the node's writes to its data disk to bps bytes and iops
        operations per second (a blkio cgroup of cgroup v1, as root). v1 does
        not charge the kernel's background writeback to the cgroup: what the
        process writes and waits for itself (fsync, fdatasync) crawls, which
        is how a slow or failing disk shows to a broker. Threads started later
        inherit it. Undone by fast_disk(), a restart or close()."""
        node = self.nodes[node_id]
        cg = f"{BLKIO}/samsa-{os.getpid()}-{node_id}"
        os.makedirs(cg, exist_ok=True)
        dev = _disk_of(node.data_dir)
        _write(f"{cg}/blkio.throttle.write_bps_device", f"{dev} {bps}")
        _write(f"{cg}/blkio.throttle.write_iops_device", f"{dev} {iops}")
        _write(f"{cg}/cgroup.procs", str(node.proc.pid))
        node.slow_cgroup = cg

    def fast_disk(self, node_id):
        node = self.nodes[node_id]
        cg, node.slow_cgroup = node.slow_cgroup, None
        if not cg:
            return
        if node.proc is not None and node.proc.poll() is None:
            try:
                _write(f"{BLKIO}/cgroup.procs", str(node.proc.pid))
            except ProcessLookupError:
                pass
        try:
            os.rmdir(cg)
        except OSError as e:
            log.warning("cannot remove %s: %s", cg, e)

    def restart(self, node_id, kill=False):
        """Stops a node (SIGTERM, or SIGKILL with kill=True) and starts it again."""
        if kill:
            self.kill9(node_id)
        else:
            self.terminate(node_id)
        self.start_node(node_id)

    def close(self):
        if self._closed:
            return
        self._closed = True
        for node in self.nodes.values():
            if node.proc is not None:
                if node.paused:
                    node.proc.send_signal(signal.SIGCONT)
                node.proc.send_signal(signal.SIGKILL)
                self._reap(node, 30)
        for link in self._links.values():
            link.close()
        self._links = {}
        for node in self.nodes.values():
            if node.netns:
                _run(["ip", "netns", "del", node.netns], check=False)
                node.netns = None
        if self._bridge:
            _run(["ip", "link", "del", self._bridge], check=False)
            self._bridge = None
        if self._own_base and os.environ.get("SAMSA_CLUSTER_KEEP") != "1":
            shutil.rmtree(self.base_dir, ignore_errors=True)

    # ------------------------------------------------------------ views

    @property
    def pids(self):
        return {i: n.proc.pid for i, n in self.nodes.items() if n.proc is not None}

    def pid(self, node_id):
        return self.nodes[node_id].proc.pid

    def running(self):
        return [i for i, n in self.nodes.items() if n.proc is not None and not n.paused]

    def bootstrap(self, nodes=None):
        """host:port list of the given nodes' broker listeners (default: all)."""
        ids = self.nodes if nodes is None else nodes
        return ",".join(f"{self.nodes[i].advertised[0]}:{self.nodes[i].advertised[1]}" for i in ids)

    @property
    def bootstrap_servers(self):
        return self.bootstrap()

    def rss(self, node_id):
        """Resident set size in bytes, or None when the node is not running."""
        node = self.nodes[node_id]
        if node.proc is None:
            return None
        try:
            with open(f"/proc/{node.proc.pid}/status") as f:
                return next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmRSS:"))
        except (OSError, StopIteration):
            return None

    def admin(self, nodes=None, **conf):
        from confluent_kafka.admin import AdminClient
        return AdminClient({"bootstrap.servers": self.bootstrap(nodes), **conf})

    def brokers_seen(self, via, timeout=5.0):
        """Broker ids in the Metadata that node `via` itself answers."""
        host, port = self.nodes[via].advertised
        return metadata(host, port, None, timeout)[0]

    def topic_ready(self, via, name, timeout=5.0):
        """True when node `via`'s Metadata has the topic with a leader for every partition."""
        host, port = self.nodes[via].advertised
        err, leaders = metadata(host, port, [name], timeout)[1].get(name, (-1, []))
        return err == 0 and bool(leaders) and all(ld >= 0 for ld in leaders)

    def partitions(self, via, name, timeout=5.0):
        """{partition: {"leader", "leader_epoch", "replicas", "isr", "error"}} as node
        `via` itself describes the topic (a raw Metadata request); {} when it does not
        know the topic."""
        host, port = self.nodes[via].advertised
        err, parts = metadata_partitions(host, port, [name], timeout)[1].get(name, (-1, {}))
        return parts if err == 0 else {}

    @property
    def max_replication(self):
        """The largest replication factor the kind serves: every node holds a replica."""
        return self.n

    def create_topic(self, name, partitions=1, replication=None, via=None, timeout=15.0,
                     exists_ok=False, config=None):
        """CreateTopics; raises on failure (the KafkaException from the client).
        exists_ok: TOPIC_ALREADY_EXISTS counts as success (a retry of a
        request whose earlier attempt committed but timed out at the client).
        config: topic settings (e.g. {"min.insync.replicas": "2"})."""
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import NewTopic
        rf = min(replication if replication is not None else 3, self.n, self.max_replication)
        # The client must outlive the future: a collected AdminClient never completes it.
        admin = self.admin(via)
        fs = admin.create_topics([NewTopic(name, partitions, rf, config=config or {})],
                                 operation_timeout=timeout, request_timeout=timeout)
        try:
            fs[name].result(timeout=timeout + 5)
        except KafkaException as e:
            if not (exists_ok and e.args and e.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS):
                raise

    def wait_usable(self, timeout=120.0, nodes=None):
        """Every given node (default: all running) answers Metadata listing
        all of them, and a CreateTopics succeeds."""
        ids = nodes or self.running()

        seen = {}

        def all_brokers():
            for i in ids:
                if self.nodes[i].proc is not None and self.nodes[i].proc.poll() is not None:
                    raise ClusterUnavailable(f"{self.kind} node {i} exited "
                                             f"({self.nodes[i].proc.returncode}):\n"
                                             + self.log_tail(i, 1500))
            for i in ids:
                seen[i] = sorted(self.brokers_seen(i, timeout=3.0))
            return all(set(ids) <= set(seen[i]) for i in ids)

        deadline = time.monotonic() + timeout
        try:
            wait_for(all_brokers, timeout, f"Metadata listing brokers {sorted(ids)}", 0.5)
        except TimeoutError as e:
            raise TimeoutError(f"{e}; brokers each node listed last: {seen}") from None
        probe = f"harness-probe-{uuid.uuid4().hex[:8]}"
        wait_for(lambda: self.create_topic(probe, replication=min(len(ids), 3), via=ids,
                                           timeout=10.0, exists_ok=True) or True,
                 max(1.0, deadline - time.monotonic()), "a CreateTopics to succeed", 0.5)
        return True

    def active_controller(self, via=None, timeout=3.0):
        """The quorum leader's node id, asked through a running broker (DescribeQuorum)."""
        ids = via or self.running()
        last = None
        for i in ids:
            host, port = self.nodes[i].advertised
            try:
                leader, _, _ = describe_quorum(host, port, timeout)
                if leader >= 0:
                    return leader
            except (OSError, RuntimeError, IndexError, struct.error) as e:
                last = e
        raise RuntimeError(f"no running node told the quorum leader ({last})")

    def wait_controller(self, exclude=(), timeout=60.0):
        """Waits until the running nodes report a leader not in exclude; returns it."""
        def leader():
            ld = self.active_controller()
            return ld if ld not in exclude and ld in self.running() else None
        return wait_for(leader, timeout, f"a quorum leader other than {list(exclude)}", 0.2)

    # ------------------------------------------------------------ network faults

    def drop(self, src, dst):
        """One-way fault: packets from node src to node dst are silently lost."""
        if self.network == "netns":
            self._nft(self.nodes[src], f"add rule inet harness out ip daddr {self.nodes[dst].ip} drop")
        else:
            self._drops = self._drops | {(src, dst)}

    def partition(self, groups):
        """Splits the nodes into groups (lists of node ids) that cannot reach
        each other; nodes named in no group stay connected to everyone.
        Clients (this process) still reach every node."""
        where = {i: g for g, ids in enumerate(groups) for i in ids}
        for a in where:
            for b in where:
                if a != b and where[a] != where[b]:
                    self.drop(a, b)

    def isolate(self, node_id):
        """Cuts one node from every other node."""
        self.partition([[node_id], [i for i in self.nodes if i != node_id]])

    def heal(self):
        """Removes every network fault."""
        if self.network == "netns":
            for node in self.nodes.values():
                self._nft(node, "flush chain inet harness out")
            return
        self._drops = frozenset()
        for link in self._links.values():
            link.heal()

