"""Bad input to the consumer group protocol (KIP-848) on raw sockets:
ConsumerGroupHeartbeat with stale or future member epochs, unknown members,
invalid and huge regular expressions, huge subscriptions, joins without their
required fields, truncated frames. Each gets Kafka's error code (or, for a
frame that cannot be decoded, a closed connection) while a real
confluent-kafka group.protocol=consumer group of the same group id keeps
consuming."""

import socket
import struct
import uuid

from confluent_kafka import Consumer

from helpers import ck_create_topic, ck_produce, wait_for
from raw_kafka import Writer, exchange

HEARTBEAT = 68
NONE, INVALID_REQUEST, UNKNOWN_MEMBER_ID = 0, 42, 25
FENCED_MEMBER_EPOCH, UNSUPPORTED_ASSIGNOR, INVALID_REGULAR_EXPRESSION = 110, 112, 128

GROUP = "real848"
UNSET = object()


def heartbeat_body(group=GROUP, member=None, epoch=0, rebalance_timeout=30000, topics=UNSET, regex=None,
                   assignor=None, owned=UNSET, instance=None, rack=None, version=1):
    w = Writer(True)
    if member is None:
        # From v1 a joining member makes its own id (KIP-1082), as Kafka 4.4's clients do.
        member = str(uuid.uuid4()) if epoch == 0 and version >= 1 else ""
    if owned is UNSET:
        owned = [] if epoch == 0 else None  # a join reports an empty set, others nothing
    w.string(group).string(member).raw("i", epoch).string(instance).string(rack)
    w.raw("i", rebalance_timeout)
    w.array(None if topics is UNSET else topics, lambda w, t: w.string(t))
    if version >= 1:
        w.string(regex)
    w.string(assignor)
    w.array(owned, lambda w, tp: w.raw("16s", tp[0]).array(tp[1], lambda w, p: w.raw("i", p)).tags())
    w.tags()
    return bytes(w.out)


def heartbeat(port, version=1, **kw):
    """Returns (error code, member id, member epoch)."""
    r = exchange(port, HEARTBEAT, version, heartbeat_body(version=version, **kw), True)
    r.raw("i")  # throttle
    err = r.raw("h")
    r.string()  # error message
    member = r.string()
    epoch = r.raw("i")
    return err, member, epoch


def test_consumer_group_misuse_gets_kafka_errors(make_broker):
    b = make_broker({"group.initial.rebalance.delay.ms": "0", "group.consumer.heartbeat.interval.ms": "300",
                     "group.consumer.session.timeout.ms": "10000",
                     "group.consumer.min.heartbeat.interval.ms": "100",
                     "group.consumer.min.session.timeout.ms": "1000"})
    ck_create_topic(b.bootstrap, "bad848", 4)
    # A topic whose name makes backtracking matchers take exponential time
    # with the pattern (a*)*b below.
    ck_create_topic(b.bootstrap, "a" * 200, 1)
    total = 400
    ck_produce(b.bootstrap, "bad848", [(None, b"v%d" % i, None) for i in range(total)])
    good = Consumer({"bootstrap.servers": b.bootstrap, "group.id": GROUP, "group.protocol": "consumer",
                     "auto.offset.reset": "earliest"})
    good.subscribe(["bad848"])
    got = set()

    def consume_some(want):
        def cond():
            m = good.poll(0.2)
            if m is not None and not m.error():
                got.add(m.value())
            return len(got) >= want
        return cond

    wait_for(consume_some(50), timeout=60, what="the real member to consume")

    # A raw member joins the real group (subscribing to a topic that does not
    # exist, so the real member keeps its partitions).
    err, member, epoch = heartbeat(b.port, topics=["no-such-topic"])
    assert err == NONE and member and epoch > 0

    # Member epochs the member never had: fenced; its own epoch works after.
    assert heartbeat(b.port, member=member, epoch=epoch + 100, topics=["no-such-topic"])[0] == FENCED_MEMBER_EPOCH
    assert heartbeat(b.port, member=member, epoch=epoch + 1)[0] == FENCED_MEMBER_EPOCH
    err, _, epoch2 = heartbeat(b.port, member=member, epoch=epoch)
    assert err == NONE and epoch2 >= epoch

    # Unknown members, garbage ids, leaving as an unknown member.
    assert heartbeat(b.port, member="not-a-member", epoch=3)[0] == UNKNOWN_MEMBER_ID
    assert heartbeat(b.port, member="\x7f\x01 garbage " * 50, epoch=1)[0] == UNKNOWN_MEMBER_ID
    assert heartbeat(b.port, member="not-a-member", epoch=-1)[0] == UNKNOWN_MEMBER_ID

    # Joins without their required fields.
    assert heartbeat(b.port, rebalance_timeout=-1, topics=["bad848"])[0] == INVALID_REQUEST
    assert heartbeat(b.port)[0] == INVALID_REQUEST  # neither topic names nor a regex
    assert heartbeat(b.port, topics=["bad848"], owned=[(b"\x01" * 16, [0])])[0] == INVALID_REQUEST
    assert heartbeat(b.port, group="", topics=["bad848"])[0] == INVALID_REQUEST
    assert heartbeat(b.port, member="", epoch=4, topics=["bad848"])[0] == INVALID_REQUEST
    # Kafka 4.4 takes a join whose owned partitions are null (only a non-empty list is refused).
    err, null_owned, _ = heartbeat(b.port, topics=["no-such-topic"], owned=None)
    assert err == NONE
    assert heartbeat(b.port, member=null_owned, epoch=-1)[0] == NONE
    # From v1 the member brings its id (KIP-1082): a join without one is refused; v0 gets one.
    assert heartbeat(b.port, member="", topics=["bad848"])[0] == INVALID_REQUEST
    err, made, _ = heartbeat(b.port, member="", topics=["no-such-topic"], version=0)
    assert err == NONE and made
    assert heartbeat(b.port, member=made, epoch=-1, version=0)[0] == NONE
    assert heartbeat(b.port, group="  ", topics=["bad848"])[0] == INVALID_REQUEST
    assert heartbeat(b.port, topics=["bad848"], instance=" ")[0] == INVALID_REQUEST
    assert heartbeat(b.port, topics=["bad848"], rack="")[0] == INVALID_REQUEST
    assert heartbeat(b.port, member=member, epoch=-3)[0] == INVALID_REQUEST
    assert heartbeat(b.port, member=member, epoch=-2)[0] == INVALID_REQUEST  # static leave, no instance
    assert heartbeat(b.port, topics=["bad848"], assignor="no-such-assignor")[0] == UNSUPPORTED_ASSIGNOR

    # Invalid regular expressions (RE2/J syntax: no lookaround, no
    # backreferences), and one whose program would be too large.
    for bad in ["(a", "a(?=b)", "(a)\\1", "a**", "[z-a]", "a{1000}{1000}", "a|" * 30000 + "a"]:
        assert heartbeat(b.port, regex=bad)[0] == INVALID_REGULAR_EXPRESSION, bad
    # A valid pattern that backtracking matchers take exponential time on:
    # answered like any other (the matcher is linear).
    err, slow_member, slow_epoch = heartbeat(b.port, regex="(a*)*b")
    assert err == NONE and slow_member
    assert heartbeat(b.port, member=slow_member, epoch=-1)[0] == NONE

    # A huge subscription: 20,000 topic names.
    names = ["huge-%05d" % i for i in range(20000)]
    err, huge_member, _ = heartbeat(b.port, topics=names)
    assert err == NONE and huge_member
    assert heartbeat(b.port, member=huge_member, epoch=-1)[0] == NONE

    # A frame cut short: the broker closes the connection (nothing to
    # answer), and serves the next one.
    body = heartbeat_body(topics=["bad848"])
    head = struct.pack(">hhih", HEARTBEAT, 1, 7, 3) + b"raw" + b"\x00"
    frame = head + body[: len(body) // 2]
    with socket.create_connection(("127.0.0.1", b.port), timeout=10) as s:
        s.sendall(struct.pack(">i", len(frame)) + frame)
        assert s.recv(65536) == b""

    # The raw member leaves; the real member read everything.
    assert heartbeat(b.port, member=member, epoch=-1)[0] == NONE
    wait_for(consume_some(total), timeout=60, what="the real member to read every record")
    assert len(got) == total
    good.close()
