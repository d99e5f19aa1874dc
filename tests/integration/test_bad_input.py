"""Bad input on raw sockets: truncated frames, oversized sizes, unknown api
keys, garbage after a valid header, unsupported versions and random bytes.
The broker answers or closes that connection only, and keeps serving a
concurrent well-behaved producer."""

import random
import socket
import struct
import threading
import time

from helpers import ck_consume, ck_create_topic, ck_produce


def send_frame(port, payload, size=None, timeout=5.0):
    """Sends one frame (size prefix + payload) and returns the response bytes,
    or None when the broker closed the connection."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        n = len(payload) if size is None else size
        s.sendall(struct.pack(">i", n) + payload)
        hdr = b""
        while len(hdr) < 4:
            d = s.recv(4 - len(hdr))
            if not d:
                return None
            hdr += d
        n = struct.unpack(">i", hdr)[0]
        body = b""
        while len(body) < n:
            d = s.recv(n - len(body))
            if not d:
                return None
            body += d
        return body
    except (ConnectionResetError, socket.timeout):
        return None
    finally:
        s.close()


def header(key, version, corr=7, client=b"bad"):
    return struct.pack(">hhih", key, version, corr, len(client)) + client


def closed_without_answer(port, payload, size=None):
    return send_frame(port, payload, size) is None


class Background:
    """A producer that keeps producing while bad clients hammer the broker."""

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap
        self.stop = threading.Event()
        self.done = 0
        self.error = None
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        try:
            while not self.stop.is_set():
                ck_produce(self.bootstrap, "steady", [(None, b"ok%d" % self.done, None)] * 100, partition=0)
                self.done += 100
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e


def test_bad_frames_close_only_their_connection(broker):
    ck_create_topic(broker.bootstrap, "steady", 1)
    bg = Background(broker.bootstrap)
    bg.thread.start()
    port = broker.port

    # ApiVersions at a version above ours: UNSUPPORTED_VERSION with a v0 body.
    resp = send_frame(port, header(18, 99) + b"\x00")
    assert resp is not None
    corr, err = struct.unpack(">ih", resp[:6])
    assert (corr, err) == (7, 35)
    # A frame shorter than a request header.
    assert closed_without_answer(port, b"\x00\x12\x00")
    # Negative and oversized sizes.
    assert closed_without_answer(port, b"", size=-5)
    assert closed_without_answer(port, b"", size=0)
    assert closed_without_answer(port, b"x" * 10, size=200 * 1024 * 1024)
    # Truncated frame: the size promises more than is sent, then the peer closes.
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(struct.pack(">i", 100) + header(3, 1)[:6])
    s.close()
    # Unknown api key.
    assert closed_without_answer(port, header(9999, 0) + b"\x00" * 8)
    # Garbage after a valid Metadata v1 header: a huge topic count.
    assert closed_without_answer(port, header(3, 1) + b"\x7f\xff\xff\xff" + b"\x01" * 20)
    # A known api this broker does not serve answers with an error, not a close.
    resp = send_frame(port, header(41, 1) + b"\x00" * 8)  # DescribeDelegationToken v1
    assert resp is not None and struct.unpack(">i", resp[:4])[0] == 7
    # A version Kafka 4.4's schema no longer has (DescribeConfigs v0) closes, as in Kafka.
    assert closed_without_answer(port, header(32, 0) + struct.pack(">i", 0))
    # Random bytes, many times.
    rng = random.Random(1234)
    for _ in range(300):
        payload = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300)))
        send_frame(port, payload, timeout=2.0)
    # Pipelined requests on one connection are answered in order.
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    for corr in range(50):
        body = header(18, 0, corr=corr)
        s.sendall(struct.pack(">i", len(body)) + body)
    seen = []
    buf = b""
    while len(seen) < 50:
        d = s.recv(65536)
        assert d, "connection closed"
        buf += d
        while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">i", buf[:4])[0]:
            n = struct.unpack(">i", buf[:4])[0]
            seen.append(struct.unpack(">i", buf[4:8])[0])
            buf = buf[4 + n:]
    s.close()
    assert seen == list(range(50))

    deadline = time.monotonic() + 30
    target = bg.done + 500
    while bg.done < target and bg.error is None and time.monotonic() < deadline:
        time.sleep(0.05)
    bg.stop.set()
    bg.thread.join(60)
    assert bg.error is None, bg.error
    assert bg.done >= 500
    assert broker.proc.poll() is None, "the broker died"
    msgs = ck_consume(broker.bootstrap, "steady", [0], bg.done)
    assert len(msgs) == bg.done


def test_produce_v2_closes_and_bad_acks_get_errors(broker):
    ck_create_topic(broker.bootstrap, "errs", 1)
    t = b"errs"
    # Advertised from v0 (as Kafka 4.4 does) but outside the v3+ schema: the
    # connection is closed, as Kafka 4.4 closes it.
    body = struct.pack(">hi", 1, 1000) + struct.pack(">i", 1) + struct.pack(">h", len(t)) + t
    body += struct.pack(">i", 1) + struct.pack(">ii", 0, 0)
    assert closed_without_answer(broker.port, header(0, 2) + body)
    off = 4 + 4 + 2 + len(t) + 4 + 4
    body = struct.pack(">hhi", -1, 7, 1000) + struct.pack(">i", 1) + struct.pack(">h", len(t)) + t
    body += struct.pack(">i", 1) + struct.pack(">ii", 0, 0)
    resp = send_frame(broker.port, header(0, 3) + body)
    assert struct.unpack(">h", resp[off:off + 2])[0] == 21  # INVALID_REQUIRED_ACKS


def test_bad_config_exits_2_with_one_line(tmp_path):
    import subprocess
    from conftest import SERVER_BIN
    for args, key in ([["--override", "log.segment.bytes=abc"], "log.segment.bytes"],
                      [["--override", "no.such.key=1"], "no.such.key"],
                      [["--override", "num.partitions=0"], "num.partitions"],
                      # Kafka's checks between keys of consumer groups (KIP-848).
                      [["--override", "group.consumer.heartbeat.interval.ms=300"],
                       "group.consumer.heartbeat.interval.ms must be greater than or equal to "
                       "group.consumer.min.heartbeat.interval.ms"],
                      [["--override", "group.consumer.session.timeout.ms=70000"],
                       "group.consumer.session.timeout.ms must be less than or equal to "
                       "group.consumer.max.session.timeout.ms"],
                      [["--override", "group.consumer.min.session.timeout.ms=1000", "--override",
                        "group.consumer.session.timeout.ms=5000"],
                       "group.consumer.heartbeat.interval.ms must be less than group.consumer.session.timeout.ms"]):
        p = subprocess.run([SERVER_BIN, *args, "--override", f"log.dirs={tmp_path}"],
                           capture_output=True, text=True, timeout=10)
        assert p.returncode == 2, p.stderr
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        assert len(lines) == 1 and key in lines[0], p.stderr
    props = tmp_path / "server.properties"
    props.write_text("# comment\nlog.retention.hours = 12\nbogus.key=1\n")
    p = subprocess.run([SERVER_BIN, str(props)], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "bogus.key" in p.stderr


def test_port_in_use_is_refused(broker, tmp_path):
    """A second broker on a port the first one serves fails to start with one
    clear line (SO_REUSEPORT must not let it share the port silently)."""
    import subprocess
    from conftest import SERVER_BIN
    p = subprocess.run([SERVER_BIN, "--override", f"listeners=PLAINTEXT://127.0.0.1:{broker.port}",
                        "--override", f"log.dirs={tmp_path}/deep/new/dir"],
                       capture_output=True, timeout=30)
    assert p.returncode != 0
    assert b"Address already in use" in p.stderr
    assert (tmp_path / "deep" / "new" / "dir").is_dir()  # missing parents are created, as Kafka does
