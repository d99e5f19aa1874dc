"""Consumer groups against a real samsa-server: partition sharing and
rebalances with librdkafka and kafka-python, static membership, committed
offsets across restarts and kill -9, and the admin calls on groups."""

import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
import socket
import struct

from helpers import ck_create_topic, ck_produce, wait_for

FAST = {"group.initial.rebalance.delay.ms": "0"}


def consumer(b, group, **extra):
    conf = {"bootstrap.servers": b.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
            "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
    conf.update(extra)
    return Consumer(conf)


def assigned(c):
    return sorted(tp.partition for tp in c.assignment())


def poll_all(consumers, rounds=1, timeout=0.1):
    out = []
    for _ in range(rounds):
        for i, c in enumerate(consumers):
            m = c.poll(timeout)
            if m is not None and not m.error():
                out.append((i, m))
    return out


def drain(consumers, seen, want, limit):
    """Consumes in batches, committing after each processed batch."""
    deadline = time.monotonic() + limit
    while len(seen) < want and time.monotonic() < deadline:
        for c in consumers:
            msgs = c.consume(200, 0.2)
            for m in msgs:
                if not m.error():
                    seen.add(m.value())
            if msgs:
                try:
                    c.commit(asynchronous=False)
                except KafkaException:
                    pass  # a commit during a rebalance fails; the records come again


def test_three_consumers_share_and_rebalance(make_broker):
    b = make_broker(FAST)
    ck_create_topic(b.bootstrap, "shared", 6)
    ck_produce(b.bootstrap, "shared", [(f"k{i}".encode(), f"v{i}".encode(), None) for i in range(3000)])
    cs = [consumer(b, "g-share") for _ in range(3)]
    for c in cs:
        c.subscribe(["shared"])
    seen = set()

    def polled(group):
        for _, m in poll_all(group):
            seen.add(m.value())
        return group

    wait_for(lambda: all(len(assigned(c)) == 2 for c in polled(cs)), timeout=30, what="two partitions each")
    assert sorted(p for c in cs for p in assigned(c)) == [0, 1, 2, 3, 4, 5]
    drain(cs, seen, 1500, 30)
    # one consumer leaves: its partitions move to the others
    cs[2].close()
    rest = cs[:2]
    wait_for(lambda: sorted(p for c in polled(rest) for p in assigned(c)) == [0, 1, 2, 3, 4, 5],
             timeout=30, what="partitions moved to the remaining consumers")
    drain(rest, seen, 3000, 30)
    assert len(seen) == 3000
    for c in rest:
        c.close()


def test_static_member_restart_and_fencing(make_broker):
    b = make_broker(FAST)
    ck_create_topic(b.bootstrap, "static", 2)
    a = consumer(b, "g-static", **{"group.instance.id": "inst-a", "session.timeout.ms": 10000})
    other = consumer(b, "g-static", **{"group.instance.id": "inst-b", "session.timeout.ms": 10000})
    a.subscribe(["static"])
    other.subscribe(["static"])
    wait_for(lambda: poll_all([a, other]) is not None and len(assigned(a)) == 1 and len(assigned(other)) == 1,
             timeout=30, what="both static members assigned")
    before = assigned(other)
    gen_before = describe(b, "g-static")
    # inst-a restarts within the session timeout: no rebalance for the others
    a.close()  # static members do not send LeaveGroup
    errors = []
    a2 = consumer(b, "g-static", **{"group.instance.id": "inst-a", "session.timeout.ms": 10000,
                                    "error_cb": lambda e: errors.append(e)})
    a2.subscribe(["static"])
    wait_for(lambda: poll_all([a2, other]) is not None and len(assigned(a2)) == 1, timeout=30,
             what="restarted static member assigned")
    assert assigned(other) == before
    assert describe(b, "g-static")[0] == gen_before[0]  # still Stable, same members count
    # a second process with the same instance id fences the first
    a3 = consumer(b, "g-static", **{"group.instance.id": "inst-a", "session.timeout.ms": 10000,
                                    "error_cb": lambda e: errors.append(e)})
    a3.subscribe(["static"])
    fenced_codes = {KafkaError._FENCED, KafkaError._FATAL, KafkaError.FENCED_INSTANCE_ID}
    fenced = []

    def check():
        for c in (a2, a3):
            try:
                m = c.poll(0.1)
                if m is not None and m.error() and m.error().code() in fenced_codes:
                    fenced.append(c)
            except KafkaException as e:
                if e.args[0].code() in fenced_codes:
                    fenced.append(c)
        other.poll(0)
        return fenced or any(e.code() in fenced_codes for e in errors)

    wait_for(check, timeout=30, what="the duplicate static member to be fenced")
    for c in (a3, other):
        try:
            c.close()
        except KafkaException:
            pass


def describe(b, group):
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    d = admin.describe_consumer_groups([group])[group].result(10)
    return (str(d.state), len(d.members))


def committed(b, group, topic, parts):
    c = consumer(b, group)
    res = c.committed([TopicPartition(topic, p) for p in parts], timeout=10)
    c.close()
    return {tp.partition: tp.offset for tp in res}


@pytest.mark.parametrize("how", ["restart", "kill9"])
def test_committed_offsets_survive(make_broker, how):
    b = make_broker({**FAST, "samsa.log.fsync.before.ack": "true"})
    ck_create_topic(b.bootstrap, "keep", 3)
    ck_produce(b.bootstrap, "keep", [(None, f"x{i}".encode(), None) for i in range(300)], partition=1)
    c = consumer(b, "g-keep")
    c.assign([TopicPartition("keep", 1, 0)])
    got = 0
    deadline = time.monotonic() + 20
    while got < 120 and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is not None and not m.error():
            got += 1
    c.commit(offsets=[TopicPartition("keep", 1, 120)], asynchronous=False)
    c.close()
    if how == "restart":
        b.restart()
    else:
        b.kill()
        b.start()
    assert committed(b, "g-keep", "keep", [0, 1]) == {0: -1001, 1: 120}
    # a restarted consumer resumes exactly at the committed offset
    c = consumer(b, "g-keep")
    c.subscribe(["keep"])
    first = None
    deadline = time.monotonic() + 30
    while first is None and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is not None and not m.error():
            first = m
    c.close()
    assert first.partition() == 1 and first.offset() == 120


def test_group_admin(make_broker):
    b = make_broker(FAST)
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    ck_create_topic(b.bootstrap, "adm", 2)
    ck_produce(b.bootstrap, "adm", [(None, b"a", None)] * 10, partition=0)
    c = consumer(b, "g-adm")
    c.subscribe(["adm"])
    wait_for(lambda: c.poll(0.2) is not None and len(assigned(c)) == 2, timeout=30, what="assignment")
    c.commit(offsets=[TopicPartition("adm", 0, 7), TopicPartition("adm", 1, 0)], asynchronous=False)
    listed = admin.list_consumer_groups().result(10)
    assert "g-adm" in {g.group_id for g in listed.valid}
    d = admin.describe_consumer_groups(["g-adm"])["g-adm"].result(10)
    assert str(d.state).endswith("STABLE") and len(d.members) == 1
    assert sorted(tp.partition for tp in d.members[0].assignment.topic_partitions) == [0, 1]
    # deleting a group with members is refused
    with pytest.raises(KafkaException):
        admin.delete_consumer_groups(["g-adm"])["g-adm"].result(10)
    c.close()
    wait_for(lambda: str(admin.describe_consumer_groups(["g-adm"])["g-adm"].result(10).state).endswith("EMPTY"),
             timeout=30, what="empty group")
    assert offset_delete(b.port, "g-adm", "adm", [1]) == (0, [(1, 0)])
    assert committed(b, "g-adm", "adm", [0, 1]) == {0: 7, 1: -1001}
    admin.delete_consumer_groups(["g-adm"])["g-adm"].result(10)
    assert "g-adm" not in {g.group_id for g in admin.list_consumer_groups().result(10).valid}


def offset_delete(port, group, topic, partitions):
    """OffsetDelete v0 on the wire (confluent-kafka's AdminClient lacks it):
    returns (error, [(partition, error)])."""
    body = struct.pack(">h", len(group)) + group.encode() + struct.pack(">i", 1)
    body += struct.pack(">h", len(topic)) + topic.encode() + struct.pack(">i", len(partitions))
    for p in partitions:
        body += struct.pack(">i", p)
    frame = struct.pack(">hhih", 47, 0, 5, 4) + b"test" + body
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(struct.pack(">i", len(frame)) + frame)
        n = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
        r = s.recv(n, socket.MSG_WAITALL)
    err, _throttle, nt = struct.unpack(">hii", r[4:14])
    i = 14
    tl = struct.unpack(">h", r[i:i + 2])[0]
    i += 2 + tl
    np_ = struct.unpack(">i", r[i:i + 4])[0]
    i += 4
    parts = []
    for _ in range(np_):
        parts.append(struct.unpack(">ih", r[i:i + 6]))
        i += 6
    return err, parts


def test_offsets_expire_only_for_empty_groups(make_broker):
    """Offsets of an empty group expire after the retention (KIP-211); those of
    a group with a member stay."""
    b = make_broker({**FAST, "samsa.offsets.retention.ms": "1500", "offsets.retention.check.interval.ms": "200"})
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    ck_create_topic(b.bootstrap, "ret", 1)
    ck_produce(b.bootstrap, "ret", [(None, b"r", None)] * 5, partition=0)
    active = consumer(b, "g-active")
    active.subscribe(["ret"])
    wait_for(lambda: active.poll(0.2) is not None and len(assigned(active)) == 1, timeout=30, what="assignment")
    active.commit(offsets=[TopicPartition("ret", 0, 4)], asynchronous=False)
    gone = consumer(b, "g-gone")
    gone.commit(offsets=[TopicPartition("ret", 0, 3)], asynchronous=False)
    gone.close()
    wait_for(lambda: committed(b, "g-gone", "ret", [0]) == {0: -1001}, timeout=20, what="expiry")
    wait_for(lambda: "g-gone" not in {g.group_id for g in admin.list_consumer_groups().result(10).valid},
             timeout=20, what="the expired group to go")
    active.poll(0.1)  # keeps its session
    assert committed(b, "g-active", "ret", [0]) == {0: 4}
    active.close()


def test_kafka_python_group(make_broker):
    """Two kafka-python consumers, each on its own thread as applications run
    them, share a 4-partition topic and read every record. (Driving several
    kafka-python 3.0 consumers from one thread with short polls keeps them
    rejoining against Apache Kafka as well: a JoinGroup that outlasts a poll is
    sent again.)"""
    import threading
    from kafka import KafkaConsumer
    b = make_broker(FAST)
    ck_create_topic(b.bootstrap, "kpg", 4)
    ck_produce(b.bootstrap, "kpg", [(None, f"p{i}".encode(), None) for i in range(400)])
    stop = threading.Event()
    lock = threading.Lock()
    values, assigns, errors = set(), {}, []

    def run(i):
        try:
            # metadata_max_age_ms: a leader that assigned before its metadata
            # held the topic's partitions ("No partition metadata for topic
            # kpg", an empty assignment) sees them within a second and
            # rebalances, instead of after kafka-python's default 5 minutes.
            c = KafkaConsumer("kpg", bootstrap_servers=b.bootstrap, group_id="g-kp", auto_offset_reset="earliest",
                              enable_auto_commit=False, metadata_max_age_ms=1000)
            while not stop.is_set():
                for recs in c.poll(timeout_ms=200).values():
                    with lock:
                        values.update(r.value for r in recs)
                with lock:
                    assigns[i] = sorted(tp.partition for tp in c.assignment())
                try:
                    c.commit()
                except Exception:  # noqa: BLE001 - a commit during a rebalance fails
                    pass
            c.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()

    def done():
        with lock:
            return len(values) == 400 and len(assigns) == 2 and all(len(a) == 2 for a in assigns.values())

    try:
        wait_for(done, timeout=60, what="kafka-python members sharing the partitions")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, errors
    assert sorted(assigns[0] + assigns[1]) == [0, 1, 2, 3]
