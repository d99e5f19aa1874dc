"""Replication under faults (issue 13, "How it is proven"): a three-node Samsa cluster,
each node in its own network namespace (or behind per-link TCP proxies), an RF=3 topic
with min.insync.replicas=2, two idempotent acks=all producers writing numbered records,
two readers (every partition assigned), two members of a consumer group committing what
they consumed (its offsets in the RF=3 __consumer_offsets) and an admin loop, while the
nemesis kills a partition leader with SIGKILL, kills
the active controller, pauses a leader with SIGSTOP, cuts a leader off the network,
restarts a node gracefully and kills one to restart it at once. After each fault the
cluster must come back to every partition led with its full ISR and the load must go
on; at the end a final read of every partition must show 0 lost, 0 duplicated,
0 reordered, no read of a record later lost and no offset going backwards, and the group
must have consumed every acknowledged record, started each assignment at its committed
offset and still hold its highest acknowledged commits.
Part of `make test` (about two minutes); `make jepsen` runs random faults for longer."""

import random
import uuid

import pytest

from cluster import Cluster
from history import History
from nemesis import FAST, FAULTS, wait_healthy
from workload import Load, read_all

PARTITIONS = 3
SCHEDULE = ("kill_leader", "kill_controller", "pause_leader", "isolate_leader", "restart",
            "kill_restart") + (("slow_disk",) if "slow_disk" in FAULTS else ())


@pytest.fixture(scope="module")
def samsa():
    with Cluster("samsa", n=3, extra_overrides=FAST) as c:
        yield c


def test_acknowledged_records_survive_every_fault(samsa):
    c = samsa
    topic = f"jepsen-{uuid.uuid4().hex[:8]}"
    c.create_topic(topic, partitions=PARTITIONS, replication=3,
                   config={"min.insync.replicas": "2"})
    wait_healthy(c, topic)
    h = History()
    load = Load(c.bootstrap(), topic, range(PARTITIONS), h, producers=2, readers=2,
                rate=100, members=2, admin=True).start()
    done = []
    try:
        load.wait_acks(200, 60, "acknowledged before any fault")
        rng = random.Random(13)
        for name in SCHEDULE:
            try:
                done.append(FAULTS[name](c, topic, load, rng, spare_controller=True))
                wait_healthy(c, topic)
                load.wait_acks(100, 60, "acknowledged after healing")
            except Exception as e:
                raise AssertionError(f"fault {name} (after {done}): {e}; load: {load.summary()}"
                                     ) from e
    finally:
        load.stop()
    n = read_all(c.bootstrap(), topic, h, range(PARTITIONS), timeout=120)
    load.committed()
    report = h.check()
    summary = f"{report.summary()}; faults {done}; load: {load.summary()}"
    assert not load.fatal, summary
    assert not load.failed, summary
    assert report.acked == sum(load.sent.values()), summary
    assert n >= report.acked, summary
    assert report.ok, summary
    assert report.read > 0, summary
    assert report.group_read >= report.acked and report.commits_acked > 0, summary
    assert sum(load.admin_ok.values()) > 0, summary
    print(summary)
