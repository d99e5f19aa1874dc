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

    log = b.read_log()
    m = re.findall(r"recovery after an unclean shutdown .*?\((\d+) bytes, at most (\d+) in one log\)",
                   log)
    assert m, log[-2000:]
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
