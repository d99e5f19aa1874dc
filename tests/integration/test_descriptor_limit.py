"""Partitions far beyond the descriptor limit (issue 11 point 5b): under
RLIMIT_NOFILE=256 a broker creates a topic of 2,000 partitions, every
partition takes records and serves them back, and the broker restarts
(cleanly and after kill -9) on that data directory and still serves them."""

from conftest import Broker
from helpers import ck_admin, ck_consume, ck_create_topic, ck_producer

PARTITIONS = 2000
NOFILE = 256
USED = list(range(0, PARTITIONS, 5))  # 400 partitions get records


def produce_each(bootstrap, tag):
    """One record to each partition of USED; fails on any delivery error."""
    p = ck_producer(bootstrap, **{"linger.ms": 50})
    errors = []
    for part in USED:
        while True:
            try:
                p.produce("wide", value=f"{tag}-{part}".encode(), partition=part,
                          on_delivery=lambda e, m: e is not None and errors.append(e))
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(120) == 0, "records not delivered"
    assert not errors, errors[:5]


def consume_all(bootstrap, expected):
    got = ck_consume(bootstrap, "wide", USED, len(expected), timeout=120)
    values = sorted(m.value().decode() for m in got)
    assert values == sorted(expected), (len(values), len(expected))


def test_partitions_beyond_the_descriptor_limit(tmp_path):
    b = Broker(tmp_path / "data", nofile=NOFILE).start()
    try:
        ck_create_topic(b.bootstrap, "wide", partitions=PARTITIONS)
        md = ck_admin(b.bootstrap).list_topics("wide", timeout=30)
        assert len(md.topics["wide"].partitions) == PARTITIONS
        produce_each(b.bootstrap, "a")
        expected = [f"a-{p}" for p in USED]
        consume_all(b.bootstrap, expected)

        # A clean restart opens every partition again under the same limit.
        assert b.stop() == 0
        b.start()
        produce_each(b.bootstrap, "b")
        expected += [f"b-{p}" for p in USED]
        consume_all(b.bootstrap, expected)

        # So does recovery after kill -9.
        b.kill()
        b.start()
        consume_all(b.bootstrap, expected)
        log = b.read_log()
        assert "partition is offline" not in log, log[-3000:]
        assert "Too many open files" not in log, log[-3000:]
    finally:
        b.kill()

