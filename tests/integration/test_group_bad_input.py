"""Bad input to the group coordinator on raw sockets: JoinGroup with a
protocol type the group does not use or with no protocols, Heartbeat and
SyncGroup with a wrong generation, garbage member ids, huge member metadata;
and a group of another protocol type ("connect").
Each gets Kafka's error code; the broker keeps serving a real consumer group
at the same time."""

import socket
import struct

from confluent_kafka import Consumer

from helpers import ck_create_topic, ck_produce, wait_for

JOIN, SYNC, HEARTBEAT = 11, 14, 12
NONE, ILLEGAL_GENERATION, INCONSISTENT_GROUP_PROTOCOL, UNKNOWN_MEMBER_ID = 0, 22, 23, 25
MEMBER_ID_REQUIRED = 79


def s16(b):
    return struct.pack(">h", len(b)) + b


def nullable(b):
    return struct.pack(">h", -1) if b is None else s16(b)


class Conn:
    """One client connection speaking request/response frames (header v1 with
    the given client id). send and receive are apart so that a parked request
    can wait while others go."""

    def __init__(self, port, client_id=b"bad"):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.client_id = client_id
        self.corr = 0

    def send(self, key, version, body):
        self.corr += 1
        frame = struct.pack(">hhi", key, version, self.corr) + s16(self.client_id) + body
        self.s.sendall(struct.pack(">i", len(frame)) + frame)
        return self.corr

    def receive(self, corr):
        n = struct.unpack(">i", self.recv(4))[0]
        data = self.recv(n)
        assert struct.unpack(">i", data[:4])[0] == corr
        return data[4:]

    def call(self, key, version, body):
        return self.receive(self.send(key, version, body))

    def recv(self, n):
        out = b""
        while len(out) < n:
            d = self.s.recv(n - len(out))
            assert d, "the broker closed the connection"
            out += d
        return out

    def close(self):
        self.s.close()


def read_str(b, o):
    n = struct.unpack(">h", b[o:o + 2])[0]
    return (None, o + 2) if n < 0 else (b[o + 2:o + 2 + n], o + 2 + n)


def join_body(group, member=b"", ptype=b"consumer", protocols=((b"range", b"meta"),)):
    """A JoinGroup v5 request."""
    body = s16(group) + struct.pack(">ii", 10000, 10000) + s16(member) + nullable(None) + s16(ptype)
    body += struct.pack(">i", len(protocols))
    for name, meta in protocols:
        body += s16(name) + struct.pack(">i", len(meta)) + meta
    return body


def join(c, group, member=b"", ptype=b"consumer", protocols=((b"range", b"meta"),)):
    """JoinGroup v5; returns (error, generation, member_id, leader)."""
    return join_answer(c.call(JOIN, 5, join_body(group, member, ptype, protocols)))


def join_answer(r):
    """(error, generation, member_id, leader) of a JoinGroup v5 answer."""
    err, gen = struct.unpack(">hi", r[4:10])
    _, o = read_str(r, 10)
    leader, o = read_str(r, o)
    member_id, o = read_str(r, o)
    return err, gen, member_id, leader


def join_fully(c, group, ptype=b"consumer", protocols=((b"range", b"meta"),)):
    """Joins as a new member (MEMBER_ID_REQUIRED, then again with the id)."""
    err, _, member, _ = join(c, group, ptype=ptype, protocols=protocols)
    assert err == MEMBER_ID_REQUIRED
    err, gen, member2, leader = join(c, group, member, ptype=ptype, protocols=protocols)
    assert (err, member2, leader) == (NONE, member, member)
    return gen, member


def heartbeat(c, group, gen, member):
    r = c.call(HEARTBEAT, 3, s16(group) + struct.pack(">i", gen) + s16(member) + nullable(None))
    return struct.unpack(">h", r[4:6])[0]


def sync(c, group, gen, member, assignment=b""):
    body = s16(group) + struct.pack(">i", gen) + s16(member) + nullable(None)
    body += struct.pack(">i", 1) + s16(member) + struct.pack(">i", len(assignment)) + assignment
    r = c.call(SYNC, 3, body)
    return struct.unpack(">h", r[4:6])[0]


def test_group_misuse_gets_kafka_errors(make_broker):
    b = make_broker({"group.initial.rebalance.delay.ms": "0"})
    ck_create_topic(b.bootstrap, "gbi", 2)
    ck_produce(b.bootstrap, "gbi", [(None, b"v%d" % i, None) for i in range(50)])
    # A real group keeps consuming through all of it.
    good = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "good", "auto.offset.reset": "earliest",
                     "session.timeout.ms": 10000})
    good.subscribe(["gbi"])
    got = []

    def consumed_all():
        m = good.poll(0.2)
        if m is not None and not m.error():
            got.append(m.value())
        return len(got) == 50

    c = Conn(b.port)
    try:
        gen, member = join_fully(c, b"g1")
        assert sync(c, b"g1", gen, member, b"\x00\x01") == NONE
        assert heartbeat(c, b"g1", gen, member) == NONE

        # A protocol type the group does not use, and no protocols at all.
        assert join(c, b"g1", ptype=b"bogus")[0] == INCONSISTENT_GROUP_PROTOCOL
        assert join(c, b"g2", protocols=())[0] == INCONSISTENT_GROUP_PROTOCOL
        assert join(c, b"g2", ptype=b"")[0] == INCONSISTENT_GROUP_PROTOCOL
        # Protocols the group's members do not share.
        assert join(c, b"g1", protocols=((b"roundrobin-only", b""),))[0] == INCONSISTENT_GROUP_PROTOCOL

        # Wrong generations.
        assert heartbeat(c, b"g1", gen + 7, member) == ILLEGAL_GENERATION
        assert sync(c, b"g1", gen - 1, member) == ILLEGAL_GENERATION

        # Garbage member ids.
        garbage = b"\x00\xff\xfe not-a-member \x7f" * 20
        assert heartbeat(c, b"g1", gen, garbage) == UNKNOWN_MEMBER_ID
        assert sync(c, b"g1", gen, garbage) == UNKNOWN_MEMBER_ID
        assert join(c, b"g1", member=garbage)[0] == UNKNOWN_MEMBER_ID
        assert heartbeat(c, b"no-such-group", 1, garbage) == UNKNOWN_MEMBER_ID

        # Huge member metadata (4 MiB): answered like any other join, and the
        # group and the broker stay healthy.
        big = Conn(b.port)
        err, _, big_member, _ = join(big, b"g3", protocols=((b"range", b"m" * (4 << 20)),))
        assert err == MEMBER_ID_REQUIRED and big_member
        err, gen3, _, _ = join(big, b"g3", member=big_member, protocols=((b"range", b"m" * (4 << 20)),))
        assert err == NONE and gen3 >= 1
        big.close()

        # The well-formed member is still in its group.
        assert heartbeat(c, b"g1", gen, member) == NONE

        # Groups of other protocol types work as "consumer" ones do (Kafka
        # Connect's workers use "connect"); a consumer cannot join them.
        cgen, cmember = join_fully(c, b"connect-cluster", ptype=b"connect", protocols=((b"sessioned", b"w1"),))
        assert sync(c, b"connect-cluster", cgen, cmember, b"assignment") == NONE
        assert heartbeat(c, b"connect-cluster", cgen, cmember) == NONE
        assert join(c, b"connect-cluster")[0] == INCONSISTENT_GROUP_PROTOCOL
    finally:
        c.close()
    wait_for(consumed_all, timeout=60, what="the real consumer group to read every record")
    good.close()
