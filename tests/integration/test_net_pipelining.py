"""A connection whose answer had to wait for socket room goes on reading its
next request once the answer is out. Regression: reading paused at the
connection's limits (an answer waiting for room) was not resumed when the
last write of the same read pass sent the rest of it (the client drained its
socket meanwhile), so the connection hung with the next request unread: a
consumer stalled for 60 s in the benchmark. The pause and that write race with
the client's reading, so the test sweeps answer sizes across the sockets'
room, one connection fetching as fast as it reads, round after round."""

import socket
import struct
import time

from helpers import ck_create_topic, ck_produce
from test_bad_input import header

DATA = 12 << 20
ROUNDS = 1500


def fetch_frame(topic, corr, max_bytes):
    body = [struct.pack(">iiiibii", -1, 0, 1, 64 << 20, 0, 0, -1)]  # no fetch session
    body.append(struct.pack(">i", 1))
    body.append(struct.pack(">h", len(topic)) + topic.encode() + struct.pack(">i", 1))
    body.append(struct.pack(">iqqi", 0, 0, -1, max_bytes))
    body.append(struct.pack(">i", 0))
    frame = header(1, 7, corr=corr) + b"".join(body)
    return struct.pack(">i", len(frame)) + frame


def read_answer(s, rnd, size):
    buf = b""
    while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
        try:
            d = s.recv(1 << 20)
        except socket.timeout:
            raise AssertionError(f"round {rnd}: no answer to a fetch of {size} bytes after "
                                 f"{len(buf)} bytes") from None
        assert d, "the broker closed the connection"
        buf += d
    n = struct.unpack(">i", buf[:4])[0]
    assert len(buf) == 4 + n, "one answer per request"
    return struct.unpack(">i", buf[4:8])[0], n


def test_next_request_is_read_after_an_answer_that_waited_for_room(broker):
    topic = "sweep"
    ck_create_topic(broker.bootstrap, topic, 1)
    value = b"v" * 16384
    ck_produce(broker.bootstrap, topic, [(None, value, None)] * (DATA // len(value)),
               **{"linger.ms": 20})
    with socket.create_connection(("127.0.0.1", broker.port), timeout=20) as s:
        sizes = []
        for rnd in range(ROUNDS):
            # 256 KiB to 8 MiB and back, in steps of 26 KiB, again and again:
            # answers just above what the sockets hold are the ones whose
            # rest may be sent by the last write of a read pass.
            step = rnd % 600 if rnd % 600 < 300 else 600 - rnd % 600
            size = (256 << 10) + step * (26 << 10)
            s.sendall(fetch_frame(topic, rnd, size))
            corr, n = read_answer(s, rnd, size)
            assert corr == rnd
            sizes.append(n)
    assert max(sizes) > 4 << 20
