"""Fetch sessions (KIP-227) on the wire: a full fetch opens a session, an
incremental fetch lists only partitions with news, forgotten partitions leave
the session, and bad session ids or epochs get Kafka's errors."""

import socket
import struct

from helpers import ck_create_topic, ck_produce
from test_bad_input import header


def fetch_v7(port, session_id, epoch, topics, forgotten=(), max_wait=0):
    """topics: {name: [(partition, offset)]}; returns (error, session_id,
    {(topic, partition): (error, hw, record_bytes)})."""
    body = [struct.pack(">iiiibii", -1, max_wait, 1, 1 << 20, 0, session_id, epoch)]
    body.append(struct.pack(">i", len(topics)))
    for name, parts in topics.items():
        body.append(struct.pack(">h", len(name)) + name.encode() + struct.pack(">i", len(parts)))
        for p, off in parts:
            body.append(struct.pack(">iqqi", p, off, -1, 1 << 20))
    body.append(struct.pack(">i", len(forgotten)))
    for name, parts in forgotten:
        body.append(struct.pack(">h", len(name)) + name.encode() + struct.pack(">i", len(parts)))
        for p in parts:
            body.append(struct.pack(">i", p))
    frame = header(1, 7) + b"".join(body)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(struct.pack(">i", len(frame)) + frame)
        n = struct.unpack(">i", recv(s, 4))[0]
        r = recv(s, n)
    i = 4
    throttle, err, sid = struct.unpack(">ihi", r[i:i + 10])
    i += 10
    out = {}
    (nt,) = struct.unpack(">i", r[i:i + 4])
    i += 4
    for _ in range(nt):
        (tl,) = struct.unpack(">h", r[i:i + 2])
        name = r[i + 2:i + 2 + tl].decode()
        i += 2 + tl
        (np_,) = struct.unpack(">i", r[i:i + 4])
        i += 4
        for _ in range(np_):
            p, perr, hw, lso, lstart = struct.unpack(">ihqqq", r[i:i + 30])
            i += 30
            (na,) = struct.unpack(">i", r[i:i + 4])
            i += 4 + max(na, 0) * 16
            (rl,) = struct.unpack(">i", r[i:i + 4])
            i += 4 + max(rl, 0)
            out[(name, p)] = (perr, hw, max(rl, 0))
    return err, sid, out


def recv(s, n):
    b = b""
    while len(b) < n:
        d = s.recv(n - len(b))
        assert d, "closed"
        b += d
    return b


def test_fetch_session_lifecycle(broker):
    ck_create_topic(broker.bootstrap, "sess", 2)
    ck_produce(broker.bootstrap, "sess", [(None, b"a", None)] * 3, partition=0)
    port = broker.port
    err, sid, parts = fetch_v7(port, 0, 0, {"sess": [(0, 0), (1, 0)]})
    assert err == 0 and sid != 0
    assert set(parts) == {("sess", 0), ("sess", 1)}
    assert parts[("sess", 0)][1] == 3 and parts[("sess", 0)][2] > 0
    # Nothing new: the incremental response lists no partition.
    err, sid2, parts = fetch_v7(port, sid, 1, {"sess": [(0, 3)]})
    assert (err, sid2, parts) == (0, sid, {})
    # New data on partition 1 only.
    ck_produce(broker.bootstrap, "sess", [(None, b"b", None)] * 2, partition=1)
    err, _, parts = fetch_v7(port, sid, 2, {})
    assert err == 0 and set(parts) == {("sess", 1)} and parts[("sess", 1)][1] == 2
    # A repeated epoch is refused; an unknown session too.
    err, _, parts = fetch_v7(port, sid, 2, {})
    assert err == 71 and parts == {}  # INVALID_FETCH_SESSION_EPOCH
    err, _, _ = fetch_v7(port, sid ^ 0x5555, 1, {})
    assert err == 70  # FETCH_SESSION_ID_NOT_FOUND
    # Forget partition 1; new data there is no longer reported.
    err, _, parts = fetch_v7(port, sid, 3, {"sess": [(1, 2)]})
    assert err == 0
    err, _, parts = fetch_v7(port, sid, 4, {}, forgotten=[("sess", [1])])
    assert err == 0
    ck_produce(broker.bootstrap, "sess", [(None, b"c", None)], partition=1)
    ck_produce(broker.bootstrap, "sess", [(None, b"d", None)], partition=0)
    err, _, parts = fetch_v7(port, sid, 5, {})
    assert err == 0 and set(parts) == {("sess", 0)}
    # Epoch -1 closes it: a full fetch without a session.
    err, sid3, parts = fetch_v7(port, sid, -1, {"sess": [(0, 0)]})
    assert err == 0 and sid3 == 0 and set(parts) == {("sess", 0)}
    err, _, _ = fetch_v7(port, sid, 6, {})
    assert err == 70


def test_session_of_twenty_thousand_partitions_and_the_cap(broker):
    """A session of 20,000 partitions over 2,000 topics opens and continues
    incrementally (work linear in its partitions: hashed lookups); a full
    fetch of more than 50,000 partitions gets no session (id 0, KIP-227)."""
    import time
    topics = {f"t{i}": [(p, 0) for p in range(10)] for i in range(2000)}
    t0 = time.monotonic()
    err, sid, out = fetch_v7(broker.port, 0, 0, topics)
    t1 = time.monotonic()
    assert err == 0 and sid != 0 and len(out) == 20000, (err, sid, len(out))
    err, sid2, out = fetch_v7(broker.port, sid, 1, {})
    t2 = time.monotonic()
    # Unknown topics: each partition carries an error, so each is news.
    assert err == 0 and sid2 == sid and len(out) == 20000, (err, sid2, len(out))
    err, sid3, out = fetch_v7(broker.port, sid, 2, {}, forgotten=[("t0", list(range(10)))])
    assert err == 0 and sid3 == sid and len(out) == 19990 and ("t0", 0) not in out
    print(f"20,000-partition session: full fetch {1000 * (t1 - t0):.0f} ms, "
          f"incremental {1000 * (t2 - t1):.0f} ms")
    big = {"a": [(p, 0) for p in range(25001)], "b": [(p, 0) for p in range(25001)]}
    err, sid, out = fetch_v7(broker.port, 0, 0, big)
    assert err == 0 and sid == 0 and len(out) == 50002, (err, sid, len(out))
