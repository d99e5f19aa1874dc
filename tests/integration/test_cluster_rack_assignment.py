"""Rack-aware assignment of consumer groups (KIP-848 server-side assignors) seen by real
clients: three samsa-server nodes in racks a, b and c; a topic whose partitions live one per
broker (replication factor 1), so their replicas' racks differ; three confluent-kafka members
with group.protocol=consumer and client.rack a, b and c. Each member is given exactly the
partitions held in its own rack (balance allows it: two each), and the group consumes them.
On a single node every partition has the same rack, so only a cluster shows this."""

import time

import pytest
from confluent_kafka import Consumer, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from helpers import ck_produce, wait_for
from samsa_cluster import Cluster

SETTINGS = {"controller.quorum.election.timeout.ms": "500", "controller.quorum.fetch.timeout.ms": "1000",
            "broker.heartbeat.interval.ms": "500", "broker.session.timeout.ms": "3000",
            "group.initial.rebalance.delay.ms": "0", "group.consumer.heartbeat.interval.ms": "300",
            "group.consumer.min.heartbeat.interval.ms": "100", "group.consumer.session.timeout.ms": "10000",
            "group.consumer.min.session.timeout.ms": "1000"}
RACKS = ["a", "b", "c"]


def coordinator_serves(admin, group):
    """True once a group coordinator answers for the group (FindCoordinator then a describe)."""
    try:
        return admin.describe_consumer_groups([group], request_timeout=15)[group].result(20) is not None
    except KafkaException as e:
        return e.args[0].name() == "GROUP_ID_NOT_FOUND"
    except TimeoutError:  # the AdminClient retried COORDINATOR_NOT_AVAILABLE until its timeout
        return False


def test_members_get_the_partitions_of_their_rack(tmp_path):
    c = Cluster(tmp_path, n=3, voters=3, overrides=SETTINGS, racks=RACKS)
    members = []
    try:
        c.start()
        admin = AdminClient({"bootstrap.servers": c.bootstrap})

        def racks():
            try:
                nodes = admin.describe_cluster(request_timeout=5).result(10).nodes
            except KafkaException:
                return None
            return len(nodes) == 3 and {n.id: n.rack for n in nodes}
        rack_of = wait_for(racks, timeout=30, interval=0.2, what="three brokers with racks")
        fs = admin.create_topics([NewTopic("racked848", 6, 1)], request_timeout=10)
        fs["racked848"].result(20)

        def leaders():
            md = admin.list_topics(timeout=10)
            t = md.topics.get("racked848")
            if not t or len(t.partitions) != 6 or any(p.leader < 0 for p in t.partitions.values()):
                return None
            return {p.id: p.leader for p in t.partitions.values()}
        leader = wait_for(leaders, timeout=30, interval=0.2, what="the topic's leaders")
        want = {r: sorted(p for p, n in leader.items() if rack_of[n] == r) for r in RACKS}
        assert all(len(v) == 2 for v in want.values()), want
        # One partition gets 1,000 records in one batch (a long linger; the sticky partitioner
        # often put all records in one batch), each other one 20 records: the group must read
        # the large batch as promptly as the small ones, wherever it is handed over.
        big = want["c"][0]
        records = set()
        for p in leader:
            values = [f"p{p}-r{i}".encode() for i in range(1000 if p == big else 20)]
            ck_produce(c.bootstrap, "racked848", [(None, v, None) for v in values], partition=p,
                       **{"linger.ms": 1000})
            records.update(values)

        # The first FindCoordinator creates __consumer_offsets (50 partitions, 3 replicas).
        deadline = time.monotonic() + 45
        while not coordinator_serves(admin, "g-rack"):
            if time.monotonic() > deadline:
                pytest.skip("no group coordinator runs in cluster mode on this build")
            time.sleep(0.2)

        seen = []
        for r in RACKS:
            m = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "g-rack", "group.protocol": "consumer",
                          "client.rack": r, "client.id": f"member-{r}", "auto.offset.reset": "earliest"})
            m.subscribe(["racked848"])
            members.append((r, m))

        def consume_all():
            # Every record each member has fetched, not one per member per call: with one
            # message per poll, two idle members' 50 ms polls limit a busy member to about 10
            # records a second (600 records took the whole minute below).
            for _, m in members:
                for msg in m.consume(num_messages=1000, timeout=0.05):
                    if not msg.error():
                        seen.append(msg.value())

        def aligned():
            consume_all()
            got = {r: sorted(tp.partition for tp in m.assignment()) for r, m in members}
            return got == want
        wait_for(aligned, timeout=60, interval=0, what=f"each member holding its rack's partitions {want}")
        # The broker's view agrees: ConsumerGroupDescribe shows each member's rack and assignment.
        d = admin.describe_consumer_groups(["g-rack"])["g-rack"].result(10)
        described = {m.client_id: sorted(tp.partition for tp in m.assignment.topic_partitions)
                     for m in d.members}
        assert described == {f"member-{r}": want[r] for r in RACKS}, described

        def all_read():
            consume_all()
            return set(seen) == records
        wait_for(all_read, timeout=60, interval=0, what="the group reading every record")
    finally:
        for _, m in members:
            m.close()
        c.kill_all()
