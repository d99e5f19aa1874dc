"""Crash recovery is bounded: the broker flushes each partition in the
background (samsa.log.recovery.flush.bytes / .ms) and checkpoints its recovery
point, so after kill -9 it rescans at most the bound per partition, whatever
was written before; nothing acknowledged is lost (librdkafka)."""

import os
import re

from helpers import ck_consume, ck_create_topic, ck_produce, wait_for

BOUND = 256 * 1024


def checkpoint(data_dir):
    """{(topic, partition): recovery point} from the recovery-point checkpoint."""
    try:
        with open(os.path.join(data_dir, "recovery-point-offset-checkpoint")) as f:
            lines = f.read().split("\n")
    except OSError:
        return {}
    out = {}
    for line in lines[2:]:
        parts = line.split()
        if len(parts) == 3:
            out[(parts[0], int(parts[1]))] = int(parts[2])
    return out


def test_kill9_rescans_at_most_the_bound(make_broker):
    b = make_broker({"samsa.log.recovery.flush.bytes": str(BOUND),
                     "samsa.log.recovery.flush.ms": "200"})
    ck_create_topic(b.bootstrap, "bulk", 4)
    value = os.urandom(1000)
    recs = [(f"k{i}".encode(), value + i.to_bytes(4, "big"), None) for i in range(40000)]
    reports = ck_produce(b.bootstrap, "bulk", recs, **{"acks": "1", "batch.size": 65536})
    ends = {}
    for part, off in reports:
        ends[part] = max(ends.get(part, 0), off + 1)
    assert len(ends) == 4 and sum(ends.values()) == len(recs)  # ~40 MB, never flushed by a roll

    # The background flushes move the recovery points to the log ends and the
    # checkpoint follows, without any shutdown or explicit flush.
    wait_for(lambda: all(checkpoint(b.data_dir).get(("bulk", p)) == e for p, e in ends.items()),
             timeout=60, what="the recovery-point checkpoint to reach the log ends")

    # A little more, acknowledged but below the bound, then kill -9.
    tail = [(f"t{i}".encode(), f"tail{i}".encode(), None) for i in range(200)]
    tail_reports = ck_produce(b.bootstrap, "bulk", tail, partition=2, **{"acks": "1"})
    b.kill()
    b.start()

    # The recovery's summary line comes when the background recovery ends, which may be
    # after the broker already answers.
    pattern = r"recovery after an unclean shutdown .*?\((\d+) bytes, at most (\d+) in one log\)"
    try:
        wait_for(lambda: re.findall(pattern, b.read_log()), timeout=60,
                 what="the recovery summary line")
    except AssertionError:
        raise AssertionError(b.read_log()[-2000:]) from None
    m = re.findall(pattern, b.read_log())
    total, most = (int(x) for x in m[-1])
    assert 0 < most <= BOUND, (total, most)

    # Nothing acknowledged is lost.
    for p, e in ends.items():
        want = e + (len(tail) if p == 2 else 0)
        msgs = ck_consume(b.bootstrap, "bulk", [p], want, timeout=60)
        assert len(msgs) == want
        assert [m.offset() for m in msgs] == list(range(want))
    got = ck_consume(b.bootstrap, "bulk", [2], len(tail), offset=tail_reports[0][1], timeout=60)
    assert [m.value() for m in got] == [v for _, v, _ in tail]


def test_metadata_and_recovered_partitions_served_while_one_recovers(make_broker, tmp_path,
                                                                     monkeypatch):
    """After kill -9 the broker answers Metadata and serves a recovered
    partition while another still recovers (held by the test hook): that one
    has no leader (LEADER_NOT_AVAILABLE) and a producer's record to it is
    delivered once it is back."""
    from confluent_kafka import Producer
    b = make_broker()
    ck_create_topic(b.bootstrap, "fast", 1)
    ck_create_topic(b.bootstrap, "slow", 1)
    recs = [(None, f"v{i}".encode(), None) for i in range(1000)]
    ck_produce(b.bootstrap, "fast", recs, partition=0, **{"acks": "1"})
    ck_produce(b.bootstrap, "slow", recs, partition=0, **{"acks": "1"})
    b.kill()
    gate = tmp_path / "gate"
    monkeypatch.setenv("SAMSA_TEST_RECOVERY_GATE", f"slow:{gate}")
    b.start()

    md = ck_admin_metadata(b.bootstrap)
    assert md.topics["fast"].partitions[0].leader == 1
    slow = md.topics["slow"].partitions[0]
    assert slow.leader == -1 and slow.error is not None and \
        slow.error.name() == "LEADER_NOT_AVAILABLE", slow

    # A record for the recovering partition waits in the producer ...
    delivered = []
    p = Producer({"bootstrap.servers": b.bootstrap, "acks": "1", "linger.ms": 0,
                  "message.timeout.ms": 120000, "topic.metadata.refresh.interval.ms": 200,
                  "retry.backoff.ms": 20})
    p.produce("slow", b"late", partition=0,
              on_delivery=lambda err, msg: delivered.append((err, msg.offset())))
    p.poll(0)
    # ... while the recovered one is written and read as usual.
    rep = ck_produce(b.bootstrap, "fast", [(None, b"after", None)], partition=0, **{"acks": "1"})
    assert rep[0][1] == 1000
    assert len(ck_consume(b.bootstrap, "fast", [0], 1001, timeout=60)) == 1001
    p.poll(0)
    assert not delivered
    assert "recovery held until" in b.read_log()

    gate.write_text("")
    assert p.flush(90) == 0
    assert len(delivered) == 1 and delivered[0][0] is None, delivered
    assert delivered[0][1] == 1000
    msgs = ck_consume(b.bootstrap, "slow", [0], 1001, timeout=60)
    assert [m.value() for m in msgs] == [v for _, v, _ in recs] + [b"late"]


def ck_admin_metadata(bootstrap):
    from helpers import ck_admin
    return ck_admin(bootstrap).list_topics(timeout=30)
