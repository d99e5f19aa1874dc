"""Consumer groups of the KIP-848 protocol (ConsumerGroupHeartbeat) against a
real samsa-server with librdkafka's group.protocol=consumer: members join and
leave one by one while consuming, and no record is lost or read twice when
each member commits what it processed before giving partitions up."""

import time
import uuid

from confluent_kafka import Consumer, KafkaException
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from helpers import ck_create_topic, ck_produce, wait_for
from raw_kafka import Writer, exchange

BROKER = {"group.consumer.heartbeat.interval.ms": "300", "group.consumer.session.timeout.ms": "6000",
          "group.consumer.min.heartbeat.interval.ms": "100", "group.consumer.min.session.timeout.ms": "1000"}


class Member:
    """A consumer that commits synchronously after each batch and when its
    partitions are revoked, recording every value it processed."""

    def __init__(self, b, group, seen, **extra):
        self.seen = seen
        conf = {"bootstrap.servers": b.bootstrap, "group.id": group, "group.protocol": "consumer",
                "auto.offset.reset": "earliest", "enable.auto.commit": False}
        conf.update(extra)
        self.c = Consumer(conf)
        self.pending = False
        self.c.subscribe(["kip848"], on_revoke=self.on_revoke)
        # Stops: the member held partitions, then none while still in the group (an eager
        # rebalance would do that to every member); the longest time it polled in vain.
        self.held = self.stopped = False
        self.dry = self.max_gap = 0

    def commit(self):
        if self.pending:
            self.c.commit(asynchronous=False)
            self.pending = False

    def on_revoke(self, consumer, partitions):
        self.commit()

    def lagging(self):
        """True when a partition the member holds has records past its position."""
        owned = self.c.assignment()
        for tp in self.c.position(owned) if owned else []:
            high = self.c.get_watermark_offsets(tp, cached=True)
            if high and tp.offset >= 0 and high[1] > tp.offset:
                return True
        return False

    def step(self):
        start = time.monotonic()
        behind = self.lagging()
        msgs = self.c.consume(100, 0.1)
        got = False
        for m in msgs:
            if not m.error():
                self.seen.append(m.value())
                self.pending = got = True
        owns = bool(self.c.assignment())
        self.stopped = self.stopped or (self.held and not owns)
        self.held = self.held or owns
        # Time spent polling in vain while holding partitions with records to read.
        self.dry = 0 if got or not owns or not behind else self.dry + time.monotonic() - start
        self.max_gap = max(self.max_gap, self.dry)
        try:
            self.commit()
        except KafkaException:
            # Not committed: the records are read again by the next owner,
            # which the test would see as a duplicate.
            raise


def run(members, seen, want, limit=60):
    deadline = time.monotonic() + limit
    while len(seen) < want and time.monotonic() < deadline:
        for m in members:
            m.step()


def test_members_join_and_leave_one_by_one(make_broker):
    b = make_broker({"group.initial.rebalance.delay.ms": "0", **BROKER})
    ck_create_topic(b.bootstrap, "kip848", 6)
    total = 6000
    ck_produce(b.bootstrap, "kip848", [(None, f"v{i}".encode(), None) for i in range(total)])
    seen = []
    a = Member(b, "g-848", seen)
    members = [a]
    run(members, seen, 1000)
    assert len(seen) >= 1000, f"first member consumed {len(seen)} records"
    # Members join one by one while the others consume.
    for n, target in ((2, 2500), (3, 4000)):
        members.append(Member(b, "g-848", seen))
        run(members, seen, target)
    # The three share the six partitions, each owning some, none twice.
    def shared():
        for m in members:
            m.step()
        owned = [sorted((tp.topic, tp.partition) for tp in m.c.assignment()) for m in members]
        flat = [tp for o in owned for tp in o]
        return all(owned) and len(flat) == 6 and len(set(flat)) == 6
    wait_for(shared, timeout=30, what="three members sharing six partitions")
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    listed = {g.group_id: g for g in admin.list_consumer_groups().result(10).valid}
    assert "g-848" in listed
    assert "CONSUMER" in str(listed["g-848"].type).upper()
    d = admin.describe_consumer_groups(["g-848"])["g-848"].result(10)
    assert len(d.members) == 3
    described = sorted((tp.topic, tp.partition) for m in d.members for tp in m.assignment.topic_partitions)
    assert described == [("kip848", p) for p in range(6)], described
    # ... and leave one by one.
    everyone = list(members)
    for leaving, target in ((members[0], 5000), (members[1], total)):
        leaving.commit()
        leaving.c.close()
        members.remove(leaving)
        run(members, seen, target)
    assert len(seen) == total and len(set(seen)) == total, (
        f"{len(seen)} records read, {len(set(seen))} distinct, {total} produced")
    # No member that kept partitions through a join or a leave ever held none meanwhile.
    assert not any(m.stopped for m in everyone), [m.stopped for m in everyone]
    print("longest a member holding partitions polled without getting records: "
          f"{max(m.max_gap for m in everyone) * 1000:.0f} ms")
    for m in members:
        m.c.close()


def test_consumer_group_survives_restart(make_broker):
    """The group's records are read back at start: after a restart the group
    is still a consumer group with its committed offsets, and a member that
    kept running goes on from them without reading anything twice."""
    b = make_broker({"group.initial.rebalance.delay.ms": "0", **BROKER})
    ck_create_topic(b.bootstrap, "kip848", 2)
    ck_produce(b.bootstrap, "kip848", [(None, f"a{i}".encode(), None) for i in range(200)])
    seen = []
    m = Member(b, "g-848r", seen)
    run([m], seen, 200)
    assert len(seen) == 200
    m.c.close()
    b.restart()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    listed = {g.group_id: g for g in admin.list_consumer_groups().result(10).valid}
    assert "CONSUMER" in str(listed["g-848r"].type).upper()
    ck_produce(b.bootstrap, "kip848", [(None, f"b{i}".encode(), None) for i in range(100)])
    m2 = Member(b, "g-848r", seen)
    run([m2], seen, 300)
    assert sorted(seen[200:]) == sorted(f"b{i}".encode() for i in range(100))
    m2.c.close()


def test_regex_subscription(make_broker):
    """A regex subscription (KIP-848) is resolved by the broker (in linear
    time): the member is assigned the partitions of the topics it matches,
    including one created after it joined, and nothing else. (The topics stay
    empty: what is checked is the broker's assignment, seen through
    ConsumerGroupDescribe.)"""
    b = make_broker({"group.initial.rebalance.delay.ms": "0", **BROKER})
    for t in ("rx-a", "rx-b", "other"):
        ck_create_topic(b.bootstrap, t, 2)
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "g-rx", "group.protocol": "consumer",
                  "auto.offset.reset": "earliest", "topic.metadata.refresh.interval.ms": 500})
    c.subscribe(["^rx-.*"])
    admin = AdminClient({"bootstrap.servers": b.bootstrap})

    def assigned(want):
        c.poll(0.1)
        d = admin.describe_consumer_groups(["g-rx"])["g-rx"].result(10)
        got = sorted((tp.topic, tp.partition) for m in d.members for tp in m.assignment.topic_partitions)
        return got == want
    wait_for(lambda: assigned([("rx-a", 0), ("rx-a", 1), ("rx-b", 0), ("rx-b", 1)]), timeout=30,
             what="the two matching topics assigned")
    ck_create_topic(b.bootstrap, "rx-c", 1)
    wait_for(lambda: assigned([("rx-a", 0), ("rx-a", 1), ("rx-b", 0), ("rx-b", 1), ("rx-c", 0)]),
             timeout=30, what="the topic created later assigned")
    c.close()


def group_type(admin, group):
    listed = {g.group_id: g for g in admin.list_consumer_groups().result(10).valid}
    return str(listed[group].type).upper() if group in listed else None


def describe_groups_raw(port, group):
    """A raw DescribeGroups v6 of one group: (error code, error message, state)."""
    w = Writer(True)
    w.array([group], lambda w, g: w.string(g)).raw("?", False).tags()
    r = exchange(port, 15, 6, bytes(w.out), True)
    r.raw("i")  # throttle
    r.uvarint()  # one group
    err, msg = r.raw("h"), r.string()
    r.string()  # group id
    return err, msg, r.string()


def test_classic_group_upgraded_online(make_broker):
    """Online upgrade (KIP-848) with librdkafka: two classic members consume;
    one is restarted with group.protocol=consumer, and the group becomes a
    consumer group holding one member of each protocol, which survives a
    broker restart (the classic member's records are read back); the other is
    restarted too. No record is lost."""
    b = make_broker({"group.initial.rebalance.delay.ms": "0", **BROKER})
    ck_create_topic(b.bootstrap, "kip848", 4)
    total = 3000
    ck_produce(b.bootstrap, "kip848", [(None, f"u{i}".encode(), None) for i in range(total)])
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    seen = []
    classic = {"group.protocol": "classic", "session.timeout.ms": 10000, "heartbeat.interval.ms": 300}
    members = [Member(b, "g-up", seen, **classic), Member(b, "g-up", seen, **classic)]

    def distinct(want):
        deadline = time.monotonic() + 60
        while len(set(seen)) < want and time.monotonic() < deadline:
            for m in members:
                m.step()
        return len(set(seen))

    assert distinct(800) >= 800
    assert "CLASSIC" in group_type(admin, "g-up")
    first = members.pop(0)
    first.commit()
    first.c.close()
    members.append(Member(b, "g-up", seen))

    def mixed():
        for m in members:
            m.step()
        d = admin.describe_consumer_groups(["g-up"])["g-up"].result(10)
        return "CONSUMER" in str(d.type).upper() and len(d.members) == 2
    wait_for(mixed, timeout=60, what="the group upgraded with a member of each protocol")
    # DescribeGroups describes classic groups only: Kafka 4.4's answer for a consumer group,
    # also one holding classic members.
    assert describe_groups_raw(b.port, "g-up") == (69, "Group g-up is not a classic group.", "Dead")
    assert distinct(1600) >= 1600

    for m in members:
        m.commit()
    b.restart()
    assert "CONSUMER" in group_type(admin, "g-up")
    assert distinct(2200) >= 2200

    second = members.pop(0)
    second.commit()
    second.c.close()
    members.append(Member(b, "g-up", seen))
    assert distinct(total) == total
    assert "CONSUMER" in group_type(admin, "g-up")
    for m in members:
        m.c.close()


def heartbeat_answer(port, group, member=None, epoch=0, topics=None, owned=None):
    """A raw ConsumerGroupHeartbeat v1 (a join makes its member id, KIP-1082): (error, member id,
    epoch, heartbeat interval, assigned partitions as a sorted list of (topic id, partition))."""
    w = Writer(True)
    member = member or str(uuid.uuid4())
    w.string(group).string(member).raw("i", epoch).string(None).string(None).raw("i", 30000)
    w.array(topics, lambda w, t: w.string(t)).string(None).string(None)
    w.array(owned if owned is not None else ([] if epoch == 0 else None),
            lambda w, tp: w.raw("16s", tp[0]).array([tp[1]], lambda w, p: w.raw("i", p)).tags())
    w.tags()
    r = exchange(port, 68, 1, bytes(w.out), True)
    r.raw("i")  # throttle
    err = r.raw("h")
    r.string()
    member_id, member_epoch, interval = r.string(), r.raw("i"), r.raw("i")
    assigned = []
    if r.raw("b") >= 0:  # the assignment struct (nullable: -1 absent)
        for topic, parts in r.array(lambda r: (r.raw("16s"), r.array(lambda r: r.raw("i")), r.tags())[:2]):
            assigned += [(topic, p) for p in parts]
    return err, member_id, member_epoch, interval, sorted(assigned)


def alter_group_config(admin, group, **configs):
    """IncrementalAlterConfigs SET on a GROUP resource; returns None or the error's text."""
    entries = [ConfigEntry(k.replace("_", "."), str(v), incremental_operation=AlterConfigOpType.SET)
               for k, v in configs.items()]
    res = ConfigResource(ResourceType.GROUP, group, incremental_configs=entries)
    try:
        admin.incremental_alter_configs([res])[res].result(10)
        return None
    except KafkaException as e:
        return str(e.args[0].str())


def test_group_config_overrides_apply(make_broker):
    """Group-level configs (KIP-848) act on the group: consumer.heartbeat.interval.ms is what its
    members are told, consumer.session.timeout.ms fences a silent member (its partitions go to a
    confluent-kafka member of the same group long before the broker's own session timeout);
    values are checked against the broker's group.consumer.min/max.* bounds (librdkafka's
    AdminClient sets them); other groups keep the broker's settings."""
    b = make_broker({"group.initial.rebalance.delay.ms": "0", "group.consumer.session.timeout.ms": "45000",
                     "group.consumer.min.session.timeout.ms": "1000",
                     "group.consumer.min.heartbeat.interval.ms": "100"})
    ck_create_topic(b.bootstrap, "cfg848", 4)
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    # The broker's bounds, not Kafka's defaults (45000-60000, 5000-15000), limit the values.
    assert alter_group_config(admin, "g-cfg", consumer_session_timeout_ms=500) == \
        "consumer.session.timeout.ms must be in the range 1000 to 60000 inclusive."
    assert alter_group_config(admin, "g-cfg", consumer_session_timeout_ms=2000) == \
        "consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms"
    assert alter_group_config(admin, "g-cfg", consumer_session_timeout_ms=2000,
                              consumer_heartbeat_interval_ms=200) is None
    described = admin.describe_configs([ConfigResource(ResourceType.GROUP, "g-cfg")])
    cfg = list(described.values())[0].result(10)
    assert cfg["consumer.session.timeout.ms"].value == "2000"
    # The broker's own value is the default other groups see.
    other = list(admin.describe_configs([ConfigResource(ResourceType.GROUP, "g-other")]).values())[0]
    assert other.result(10)["consumer.session.timeout.ms"].value == "45000"

    # A raw member joins and is given all four partitions, reports owning them, then falls silent.
    err, member, epoch, interval, assigned = heartbeat_answer(b.port, "g-cfg", topics=["cfg848"])
    assert (err, interval, len(assigned)) == (0, 200, 4), (err, interval, assigned)
    err, _, _, interval, _ = heartbeat_answer(b.port, "g-other", topics=["cfg848"])
    assert (err, interval) == (0, 5000), (err, interval)
    err = heartbeat_answer(b.port, "g-cfg", member, epoch, owned=assigned)[0]
    assert err == 0
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "g-cfg", "group.protocol": "consumer",
                  "auto.offset.reset": "earliest"})
    c.subscribe(["cfg848"])
    start = time.monotonic()

    def all_four():
        c.poll(0.1)
        return len(c.assignment()) == 4
    # Fenced after the group's 2 s session, not the broker's 45 s.
    wait_for(all_four, timeout=20, what="the silent member fenced by the group's session timeout")
    print(f"partitions taken over {time.monotonic() - start:.1f} s after the member fell silent")
    c.close()
