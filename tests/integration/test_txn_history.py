"""A history checker for transactions under kill -9, in the style of Jepsen's
Kafka workloads: a transactional producer writes numbered records in
transactions that it commits or aborts at random over several partitions,
while the broker is killed -9 and restarted at random moments. Every outcome
the producer learns is recorded (committed, aborted, or unknown when the
broker died under the commit). Then read_committed readers check: every
acknowledged-committed transaction is read exactly once and in order per
partition, no record of an aborted transaction is ever read, a transaction of
unknown outcome is read whole or not at all (atomicity), and offsets only go
forward."""

import random
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from helpers import ck_create_topic

PARTITIONS = 3


def new_producer(b, txn_id):
    p = Producer({"bootstrap.servers": b.bootstrap, "transactional.id": txn_id, "linger.ms": 2,
                  "transaction.timeout.ms": 10000, "message.timeout.ms": 10000,
                  "socket.timeout.ms": 3000, "retry.backoff.ms": 50})
    deadline = time.monotonic() + 60
    while True:
        try:
            p.init_transactions(10)
            return p
        except KafkaException as e:
            if time.monotonic() > deadline or not e.args[0].retriable():
                raise
            time.sleep(0.05)


def run_history(b, txns, kills, seed):
    """Runs the workload; returns {txn: ("committed"|"aborted"|"unknown", records)}
    where records are (partition, value) in send order."""
    rnd = random.Random(seed)
    kill_at = set(rnd.sample(range(5, txns - 5), kills))
    history = {}
    p = new_producer(b, "history")
    for t in range(txns):
        want_commit = rnd.random() < 0.7
        records = [(rnd.randrange(PARTITIONS), f"t{t}-r{i}".encode()) for i in range(rnd.randint(1, 8))]
        try:
            p.begin_transaction()
            for part, v in records:
                p.produce("hist", value=v, partition=part)
            if t in kill_at:
                p.flush(5)
                b.kill()
                b.start()
                raise KafkaException(KafkaError(KafkaError._TRANSPORT, "killed on purpose"))
            if want_commit:
                p.commit_transaction(15)
                history[t] = ("committed", records)
            else:
                p.flush(10)
                p.abort_transaction(15)
                history[t] = ("aborted", records)
        except KafkaException as e:
            # The outcome is unknown (the broker died, or the commit failed):
            # a new producer with the same id fences the old one, aborting an
            # open transaction, or finds the commit done.
            history[t] = ("unknown", records)
            err = e.args[0]
            try:
                if err.txn_requires_abort():
                    p.abort_transaction(15)
                    history[t] = ("aborted", records)
                    continue
            except KafkaException:
                pass
            p = new_producer(b, "history")
    return history


def read_committed(b):
    """Every record of the topic as read_committed sees it: {partition: [(offset, value)]}."""
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "hist-reader",
                  "isolation.level": "read_committed", "enable.auto.commit": False,
                  "enable.partition.eof": True})
    c.assign([TopicPartition("hist", p, 0) for p in range(PARTITIONS)])
    out = {p: [] for p in range(PARTITIONS)}
    eof = set()
    deadline = time.monotonic() + 60
    try:
        while len(eof) < PARTITIONS and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                    continue
                raise KafkaException(m.error())
            eof.discard(m.partition())
            out[m.partition()].append((m.offset(), m.value()))
    finally:
        c.close()
    assert len(eof) == PARTITIONS, "read_committed readers reached every partition's end"
    return out


def check(history, seen):
    """The checker: returns a list of anomalies (empty when the history is valid)."""
    anomalies = []
    where = {}
    for part, recs in seen.items():
        offsets = [o for o, _ in recs]
        if offsets != sorted(offsets) or len(set(offsets)) != len(offsets):
            anomalies.append(f"partition {part}: offsets go backwards or repeat")
        for o, v in recs:
            if v in where:
                anomalies.append(f"duplicate: {v!r} at {where[v]} and {(part, o)}")
            where[v] = (part, o)
    for t, (outcome, records) in history.items():
        present = [v in where for _, v in records]
        if outcome == "committed" and not all(present):
            anomalies.append(f"lost committed write: txn {t} ({sum(present)}/{len(records)} read)")
        if outcome == "aborted" and any(present):
            anomalies.append(f"aborted read: txn {t}")
        if outcome == "unknown" and any(present) and not all(present):
            anomalies.append(f"partial transaction: txn {t} ({sum(present)}/{len(records)} read)")
        # Within a partition, a transaction's records are read in send order.
        for part in range(PARTITIONS):
            mine = [where[v][1] for p, v in records if p == part and v in where]
            if mine != sorted(mine):
                anomalies.append(f"reordered: txn {t} on partition {part}")
    return anomalies


def test_checker_finds_anomalies():
    """The checker itself: a lost, an aborted, a partial and a duplicated write are reported."""
    history = {0: ("committed", [(0, b"a"), (0, b"b")]), 1: ("aborted", [(1, b"c")]),
               2: ("unknown", [(0, b"d"), (1, b"e")])}
    seen = {0: [(0, b"a"), (1, b"d"), (2, b"a")], 1: [(0, b"c")], 2: []}
    found = check(history, seen)
    assert any("lost committed" in a for a in found)
    assert any("aborted read" in a for a in found)
    assert any("partial" in a for a in found)
    assert any("duplicate" in a for a in found)
    assert check({0: ("committed", [(0, b"a")])}, {0: [(0, b"a")], 1: [], 2: []}) == []


def test_transactions_under_kill9_keep_the_history_valid(make_broker):
    """60 transactions with 4 kills -9 of the broker: no lost committed write,
    no aborted read, no partial transaction, no duplicate, offsets in order."""
    b = make_broker({"transaction.abort.timed.out.transaction.cleanup.interval.ms": "200",
                     "samsa.log.fsync.before.ack": "true"})
    ck_create_topic(b.bootstrap, "hist", partitions=PARTITIONS)
    history = run_history(b, txns=60, kills=4, seed=7)
    outcomes = [o for o, _ in history.values()]
    assert outcomes.count("committed") > 20 and outcomes.count("aborted") > 5, outcomes
    seen = read_committed(b)
    assert check(history, seen) == []
    # And again after a clean restart: nothing changes.
    b.restart()
    assert read_committed(b) == seen
