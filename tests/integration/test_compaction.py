"""Log compaction against a real samsa-server: librdkafka (confluent-kafka)
producers and consumers on compacted topics with small segments, tombstones,
headers and compression; __consumer_offsets compacted and reloaded after a
restart; a policy switched to compact at run time."""

import os
import random
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import ConfigResource, AlterConfigOpType, ConfigEntry

from helpers import ck_admin, ck_create_topic, ck_produce, wait_for

SEG = 1048576
FAST_CLEANER = {"log.cleaner.backoff.ms": "50"}


def log_bytes(broker, topic, partition=0):
    """Sum of the .log files of a partition folder (what the cleaner shrinks)."""
    d = os.path.join(broker.data_dir, f"{topic}-{partition}")
    total = 0
    for f in os.listdir(d):
        if f.endswith(".log"):
            try:
                total += os.path.getsize(os.path.join(d, f))
            except FileNotFoundError:  # renamed by the cleaner meanwhile
                pass
    return total


def keyed_records(rounds, keys, size, tombstone_keys=()):
    """rounds x keys records, key k<j>, value '<round>:<key>:' and random
    (incompressible) bytes; the last round writes tombstones for tombstone_keys."""
    rnd = random.Random(7)
    out = []
    for r in range(rounds):
        for j in range(keys):
            key = f"k{j}".encode()
            if r == rounds - 1 and j in tombstone_keys:
                out.append((key, None, [("h", b"tomb")]))
            else:
                out.append((key, f"{r}:{j}:".encode() + rnd.randbytes(size), [("round", str(r).encode())]))
    return out


def read_all(bootstrap, topic, offset=0, timeout=60, isolation="read_uncommitted"):
    """Every record from offset to the end (the end is the high watermark, or
    the last stable offset for read_committed)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "compaction-reader",
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "isolation.level": isolation})
    c.assign([TopicPartition(topic, 0, offset)])
    out = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    return out
                raise AssertionError(m.error())
            out.append(m)
    finally:
        c.close()
    raise AssertionError("no end of partition reached")


def check_latest(msgs, rounds, keys, tombstone_keys):
    """Each key's latest value is there; offsets increase; tombstoned keys end
    deleted (or with their tombstone)."""
    offs = [m.offset() for m in msgs]
    assert offs == sorted(set(offs)), "offsets must strictly increase"
    last = {}
    for m in msgs:
        last[m.key()] = m
    for j in range(keys):
        key = f"k{j}".encode()
        if j in tombstone_keys:
            assert key not in last or last[key].value() is None, key
        else:
            assert key in last, key
            assert last[key].value().startswith(f"{rounds - 1}:{j}:".encode()), last[key].value()[:20]
            assert dict(last[key].headers())["round"] == str(rounds - 1).encode()


def test_compacted_topic_librdkafka(make_broker):
    """A compacted topic with 1 MiB segments shrinks; a librdkafka consumer at
    offset 0 and at offsets inside removed ranges reads each key's latest value
    with headers, and tombstones go after delete.retention.ms."""
    b = make_broker(FAST_CLEANER)
    ck_create_topic(b.bootstrap, "table", config={
        "cleanup.policy": "compact", "segment.bytes": str(SEG),
        "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "500"})
    rounds, keys = 12, 200
    tomb = set(range(190, 200))
    records = keyed_records(rounds, keys, 1500, tomb)
    reports = ck_produce(b.bootstrap, "table", records, **{"compression.type": "lz4"})
    produced = {off: rec for (_, off), rec in zip(reports, records)}
    before = log_bytes(b, "table")
    wait_for(lambda: log_bytes(b, "table") < before // 2, timeout=60, what="the log to shrink")
    msgs = read_all(b.bootstrap, "table")
    assert len(msgs) < len(produced)
    check_latest(msgs, rounds, keys, tomb)
    # Consumers starting anywhere (also inside removed ranges) read records
    # of the uncompacted log, and the latest of every key written from there on
    # (the cleaner may be running meanwhile).
    for start in (0, 1, keys * 3 + 7, len(produced) // 2, len(produced) - keys - 1):
        check_tail(read_all(b.bootstrap, "table", offset=start), produced, start)
    b.restart()
    check_tail(read_all(b.bootstrap, "table"), produced, 0)
    check_latest(read_all(b.bootstrap, "table"), rounds, keys, tomb)


def check_tail(msgs, produced, start):
    """msgs (read from start) are records of the uncompacted log at their
    offsets, in order, and hold the latest record of every key written at or
    after start (tombstones may be gone)."""
    assert msgs and msgs[0].offset() >= start
    offs = [m.offset() for m in msgs]
    assert offs == sorted(set(offs))
    for m in msgs:
        k, v, _ = produced[m.offset()]
        assert (m.key(), m.value()) == (k, v), m.offset()
    latest = {}
    for off in sorted(produced):
        if off >= start:
            latest[produced[off][0]] = off
    have = set(offs)
    missing = [off for off in latest.values() if off not in have and produced[off][1] is not None]
    assert not missing, missing[:5]


def test_tombstones_removed_after_retention(make_broker):
    """Tombstones stay for delete.retention.ms after their first cleaning, then
    the next cleaning removes them (and the records they deleted)."""
    b = make_broker(FAST_CLEANER)
    ck_create_topic(b.bootstrap, "tomb", config={
        "cleanup.policy": "compact", "segment.bytes": str(SEG),
        "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "300"})
    rnd = random.Random(8)
    recs = [(f"k{j}".encode(), rnd.randbytes(2000), None) for j in range(600)]
    recs += [(f"k{j}".encode(), None, None) for j in range(600)]
    # Enough after the tombstones that they leave the active segment.
    recs += [(f"z{j}".encode(), rnd.randbytes(2000), None) for j in range(600)]
    ck_produce(b.bootstrap, "tomb", recs)

    def no_tombstones():
        msgs = read_all(b.bootstrap, "tomb")
        ks = [m.key() for m in msgs]
        return not any(k.startswith(b"k") for k in ks) and msgs
    msgs = wait_for(no_tombstones, timeout=60, what="tombstones to be removed")
    assert {m.key() for m in msgs} >= {f"z{j}".encode() for j in range(400)}


def test_policy_switched_to_compact_at_run_time(make_broker):
    """IncrementalAlterConfigs cleanup.policy=compact takes effect without a
    restart: the next cleaning shrinks the log."""
    b = make_broker(FAST_CLEANER)
    ck_create_topic(b.bootstrap, "later", config={"segment.bytes": str(SEG)})
    ck_produce(b.bootstrap, "later", keyed_records(8, 100, 3000))
    before = log_bytes(b, "later")
    admin = ck_admin(b.bootstrap)
    res = ConfigResource("TOPIC", "later", incremental_configs=[
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("min.cleanable.dirty.ratio", "0.01",
                    incremental_operation=AlterConfigOpType.SET)])
    for f in admin.incremental_alter_configs([res]).values():
        f.result(30)
    wait_for(lambda: log_bytes(b, "later") < before // 2, timeout=60, what="the log to shrink")
    check_latest(read_all(b.bootstrap, "later"), 8, 100, ())


def test_consumer_offsets_compacted_and_reloaded(make_broker):
    """__consumer_offsets with 1 MiB segments is compacted while a group commits
    over and over; after a restart the group's committed offsets are the last
    ones committed."""
    b = make_broker({**FAST_CLEANER, "offsets.topic.num.partitions": "1",
                     "offsets.topic.segment.bytes": str(SEG)})
    ck_create_topic(b.bootstrap, "wide", partitions=64)
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "committer",
                  "enable.auto.commit": False})
    try:
        for i in range(1, 1501):
            c.commit(offsets=[TopicPartition("wide", p, i * 10 + p) for p in range(64)],
                     asynchronous=False)
    finally:
        c.close()
    # 96000 offset commits take several MiB uncompacted; compacted, the 64
    # keys' latest records plus at most the active segment remain.
    wait_for(lambda: log_bytes(b, "__consumer_offsets") < 2 * SEG, timeout=60,
             what="__consumer_offsets to be compacted")
    b.restart()
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "committer",
                  "enable.auto.commit": False})
    try:
        got = c.committed([TopicPartition("wide", p) for p in range(64)], timeout=30)
    finally:
        c.close()
    assert [tp.offset for tp in got] == [15000 + p for p in range(64)]


def test_samsa_logs_cleaner_shows_state(make_broker):
    """`samsa logs cleaner --log-dir` lists a compacted partition with its dirty
    ratio and last cleaning once the broker checkpointed it."""
    import subprocess
    from conftest import ROOT
    cli = os.path.join(ROOT, "build", "bin", "samsa")
    b = make_broker({**FAST_CLEANER, "log.flush.offset.checkpoint.interval.ms": "100"})
    ck_create_topic(b.bootstrap, "shown", config={
        "cleanup.policy": "compact", "segment.bytes": str(SEG), "min.cleanable.dirty.ratio": "0.01"})
    ck_produce(b.bootstrap, "shown", keyed_records(6, 100, 3000))

    def cleaned_row():
        out = subprocess.run([cli, "logs", "cleaner", "--log-dir", b.data_dir, "--topic", "shown"],
                             capture_output=True, text=True)
        if out.returncode != 0:
            return None
        rows = [line.split() for line in out.stdout.splitlines() if line.startswith("shown ")]
        return rows[0] if rows and int(rows[0][6]) >= 1 else None
    row = wait_for(cleaned_row, timeout=60, what="a cleaning in samsa logs cleaner")
    assert row[1] == "0"
    assert 0.0 <= float(row[2]) <= 1.0
    bad = subprocess.run([cli, "logs", "cleaner"], capture_output=True, text=True)
    assert bad.returncode == 2


def test_keyless_record_refused_by_compacted_topic(make_broker):
    """As Kafka: a record without a key in a compacted topic fails with
    INVALID_RECORD (the cleaner would drop it); keyed records are accepted."""
    from confluent_kafka import Producer
    b = make_broker()
    ck_create_topic(b.bootstrap, "needs-keys", config={"cleanup.policy": "compact,delete"})
    errors = []
    p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 0, "compression.type": "zstd",
                  "retries": 0, "enable.idempotence": False})
    # Two batches: Kafka refuses the whole batch that holds a keyless record.
    p.produce("needs-keys", b"no key", on_delivery=lambda err, msg: errors.append(err))
    assert p.flush(30) == 0
    p.produce("needs-keys", b"keyed", key=b"k", on_delivery=lambda err, msg: errors.append(err))
    assert p.flush(30) == 0
    assert errors[0] is not None and errors[0].code() == KafkaError.INVALID_RECORD, errors
    assert errors[1] is None, errors


def test_max_compaction_lag_rolls_and_cleans(make_broker):
    """max.compaction.lag.ms: a compacted log's active segment rolls once its
    records are that old (at the next append, as Kafka's maxSegmentMs), so they
    get cleaned although the segment is far from segment.bytes."""
    b = make_broker(FAST_CLEANER)
    ck_create_topic(b.bootstrap, "lagged", config={
        "cleanup.policy": "compact", "segment.bytes": str(SEG), "max.compaction.lag.ms": "500"})
    ck_produce(b.bootstrap, "lagged", keyed_records(3, 100, 2000))
    before = log_bytes(b, "lagged")
    assert before < SEG  # all in the active segment

    def shrunk():
        ck_produce(b.bootstrap, "lagged", [(b"tick", b"t", None)])
        return log_bytes(b, "lagged") < before // 2
    wait_for(shrunk, timeout=30, interval=0.2, what="the lagged segment to roll and be cleaned")


def read_values(bootstrap, topic, isolation):
    """(offset, key, value) of every record of partition 0 up to its end as the
    isolation level sees it."""
    return [(m.offset(), m.key(), m.value()) for m in read_all(bootstrap, topic, isolation=isolation)]


def test_transactions_compacted(make_broker):
    """A transactional producer (librdkafka) on a compacted topic, every other
    transaction aborted: the cleaner removes the aborted records, keeps each
    key's latest committed value, and read_committed and read_uncommitted
    consumers then read the same records; so they do after a restart."""
    b = make_broker(FAST_CLEANER)
    ck_create_topic(b.bootstrap, "txtable", config={
        "cleanup.policy": "compact", "segment.bytes": str(SEG),
        "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "300"})
    p = Producer({"bootstrap.servers": b.bootstrap, "transactional.id": "compacting",
                  "linger.ms": 5})
    p.init_transactions(30)
    rnd = random.Random(9)
    rounds, keys = 9, 150
    for r in range(rounds):
        p.begin_transaction()
        for j in range(keys):
            p.produce("txtable", key=f"k{j}".encode(),
                      value=f"{r}:{j}:".encode() + rnd.randbytes(2000), partition=0)
        if r % 2:
            p.abort_transaction(30)
        else:
            p.commit_transaction(30)
    # Records after the last marker, so that it leaves the active segment.
    ck_produce(b.bootstrap, "txtable",
               [(f"z{j}".encode(), rnd.randbytes(2000), None) for j in range(600)])

    def cleaned():
        """The records once the cleaner has nothing left to remove: no aborted
        record, one record per key, the same in two reads in a row."""
        msgs = read_values(b.bootstrap, "txtable", "read_uncommitted")
        ks = [k for _, k, _ in msgs]
        rounds_seen = {int(v.split(b":")[0]) for _, k, v in msgs if k.startswith(b"k")}
        done = rounds_seen and all(r % 2 == 0 for r in rounds_seen) and len(ks) == len(set(ks))
        return msgs if done and msgs == read_values(b.bootstrap, "txtable", "read_uncommitted") \
            else None
    wait_for(cleaned, timeout=90, what="the aborted and superseded records to be cleaned")

    def check():
        uncommitted = read_values(b.bootstrap, "txtable", "read_uncommitted")
        committed = read_values(b.bootstrap, "txtable", "read_committed")
        assert [o for o, _, _ in uncommitted] == [o for o, _, _ in committed]
        assert uncommitted == committed
        latest = {}
        for _, k, v in committed:
            latest[k] = v
        for j in range(keys):
            v = latest[f"k{j}".encode()]
            assert v.startswith(f"{rounds - 1}:{j}:".encode()), v[:20]
        assert all(int(v.split(b":")[0]) % 2 == 0 for _, k, v in committed if k.startswith(b"k"))
    check()
    b.restart()
    check()
