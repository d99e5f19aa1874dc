"""Transactions against a real samsa-server with librdkafka (confluent-kafka):
committed and aborted transactions as read_committed and read_uncommitted
consumers see them, zombie fencing by a successor, recovery of transaction
state across restarts and kill -9, timeouts, and the admin view."""

import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from helpers import ck_create_topic, wait_for
from raw_kafka import Writer, exchange

FAST = {"transaction.abort.timed.out.transaction.cleanup.interval.ms": "200",
        "group.initial.rebalance.delay.ms": "0"}


def txn_producer(b, txn_id, **extra):
    conf = {"bootstrap.servers": b.bootstrap, "transactional.id": txn_id, "linger.ms": 5,
            "transaction.timeout.ms": 60000}
    conf.update(extra)
    p = Producer(conf)
    p.init_transactions(30)
    return p


def read_all(b, topic, partitions, isolation, timeout=15.0, expect=None):
    """Reads every record of the partitions up to their end (as the isolation
    level sees it): returns the values in offset order per partition."""
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "txn-reader",
                  "enable.auto.commit": False, "isolation.level": isolation,
                  "enable.partition.eof": True})
    c.assign([TopicPartition(topic, p, 0) for p in partitions])
    out = {p: [] for p in partitions}
    eof = set()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                    total = sum(len(v) for v in out.values())
                    if len(eof) == len(partitions) and (expect is None or total >= expect):
                        break
                    continue
                raise KafkaException(m.error())
            out[m.partition()].append(m.value())
            eof.discard(m.partition())
    finally:
        c.close()
    return out


def test_commit_and_abort_as_each_isolation_level_sees_them(make_broker):
    """Alternating committed and aborted transactions over two partitions:
    read_committed sees exactly the committed records, in order, and
    read_uncommitted sees every record; no control record reaches the app."""
    b = make_broker(FAST)
    ck_create_topic(b.bootstrap, "tx", partitions=2)
    p = txn_producer(b, "tx-alternating")
    committed = {0: [], 1: []}
    every = {0: [], 1: []}
    for t in range(20):
        p.begin_transaction()
        for i in range(10):
            part = i % 2
            v = f"t{t}-r{i}".encode()
            p.produce("tx", value=v, partition=part)
            every[part].append(v)
            if t % 2 == 0:
                committed[part].append(v)
        if t % 2 == 0:
            p.commit_transaction(30)
        else:
            p.flush(10)  # in the log before the abort (abort purges unsent records)
            p.abort_transaction(30)
    p.flush(10)
    got = read_all(b, "tx", [0, 1], "read_committed", expect=100)
    assert got == committed
    got = read_all(b, "tx", [0, 1], "read_uncommitted", expect=200)
    assert got == every


def test_open_transaction_holds_back_read_committed(make_broker):
    """A read_committed consumer stops at the first open transaction (the last
    stable offset) while read_uncommitted reads past it; the records appear
    once the transaction commits."""
    b = make_broker(FAST)
    ck_create_topic(b.bootstrap, "lso", partitions=1)
    plain = Producer({"bootstrap.servers": b.bootstrap})
    plain.produce("lso", value=b"before", partition=0)
    plain.flush(10)
    p = txn_producer(b, "lso-tx")
    p.begin_transaction()
    p.produce("lso", value=b"inside", partition=0)
    p.flush(10)
    plain.produce("lso", value=b"after", partition=0)
    plain.flush(10)
    assert read_all(b, "lso", [0], "read_committed", timeout=3.0) == {0: [b"before"]}
    assert read_all(b, "lso", [0], "read_uncommitted", expect=3) == {0: [b"before", b"inside", b"after"]}
    # ListOffsets with read_committed: the end is the last stable offset.
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "x", "isolation.level": "read_committed"})
    lo, hi = c.get_watermark_offsets(TopicPartition("lso", 0), timeout=10)
    c.close()
    assert hi in (1, 3)  # librdkafka asks the high watermark; see the LSO test below
    p.commit_transaction(30)
    assert read_all(b, "lso", [0], "read_committed", expect=3) == {0: [b"before", b"inside", b"after"]}


def test_successor_fences_zombie_and_aborts_its_transaction(make_broker):
    """A second producer with the same transactional id fences the first: the
    first's open transaction is aborted, its further sends fail as fenced."""
    b = make_broker(FAST)
    ck_create_topic(b.bootstrap, "fence", partitions=1)
    zombie = txn_producer(b, "fence-tx")
    zombie.begin_transaction()
    zombie.produce("fence", value=b"zombie", partition=0)
    zombie.flush(10)
    successor = txn_producer(b, "fence-tx")
    successor.begin_transaction()
    successor.produce("fence", value=b"successor", partition=0)
    successor.commit_transaction(30)
    with pytest.raises(KafkaException) as e:
        zombie.produce("fence", value=b"late", partition=0)
        zombie.commit_transaction(10)
    assert e.value.args[0].fatal() or e.value.args[0].code() in (
        KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH)
    assert read_all(b, "fence", [0], "read_committed", expect=1) == {0: [b"successor"]}


def test_state_survives_kill_and_prepared_commit_completes(make_broker):
    """Transaction state is reloaded after kill -9: committed data stays
    visible, an open transaction of a killed broker is aborted by the timeout,
    and the same transactional id continues with a higher epoch."""
    b = make_broker(FAST)
    ck_create_topic(b.bootstrap, "crash", partitions=1)
    p = txn_producer(b, "crash-tx", **{"transaction.timeout.ms": 2000})
    p.begin_transaction()
    p.produce("crash", value=b"one", partition=0)
    p.commit_transaction(30)
    p.begin_transaction()
    p.produce("crash", value=b"open", partition=0)
    p.flush(10)
    b.kill()
    b.start()
    # The open transaction times out (2 s) and is aborted by the coordinator.
    wait_for(lambda: read_all(b, "crash", [0], "read_committed", timeout=2.0) == {0: [b"one"]}
             and describe_state(b, "crash-tx") == "CompleteAbort", timeout=30,
             what="the open transaction aborted after restart")
    p2 = txn_producer(b, "crash-tx")
    p2.begin_transaction()
    p2.produce("crash", value=b"two", partition=0)
    p2.commit_transaction(30)
    assert read_all(b, "crash", [0], "read_committed", expect=2) == {0: [b"one", b"two"]}
    b.stop()
    b.start()
    assert read_all(b, "crash", [0], "read_committed", expect=2) == {0: [b"one", b"two"]}
    assert describe_state(b, "crash-tx") == "CompleteCommit"


DESCRIBE_TRANSACTIONS = 65


def describe_transaction(port, txn_id):
    """DescribeTransactions v0 for one id: (error code, state, producer id,
    epoch, {topic: [partitions]})."""
    body = Writer(True).array([txn_id], lambda w, s: w.string(s)).tags().out
    r = exchange(port, DESCRIBE_TRANSACTIONS, 0, bytes(body), True)
    r.raw("i")  # throttle

    def state(rr):
        err = rr.raw("h")
        rr.string()
        st = rr.string()
        rr.raw("i")
        rr.raw("q")
        pid = rr.raw("q")
        epoch = rr.raw("h")

        def topic(t):
            name = t.string()
            parts = t.array(lambda x: x.raw("i"))
            t.tags()
            return name, parts
        topics = dict(rr.array(topic))
        rr.tags()
        return err, st, pid, epoch, topics
    return r.array(state)[0]


def describe_state(b, txn_id):
    """The transaction's state as DescribeTransactions reports it."""
    return describe_transaction(b.port, txn_id)[1]


# ---- raw requests: each refused request changes nothing ----

INIT_PRODUCER_ID, ADD_PARTITIONS, ADD_OFFSETS, END_TXN, WRITE_MARKERS, TXN_OFFSET_COMMIT = 22, 24, 25, 26, 27, 28


def init_pid(port, txn_id, timeout_ms=60000, pid=-1, epoch=-1):
    w = Writer(True).string(txn_id).raw("i", timeout_ms).raw("q", pid).raw("h", epoch).tags()
    r = exchange(port, INIT_PRODUCER_ID, 4, bytes(w.out), True)
    r.raw("i")
    return r.raw("h"), r.raw("q"), r.raw("h")


def add_partitions(port, txn_id, pid, epoch, topic, parts):
    def t(w, _):
        w.string(topic).array(parts, lambda ww, p: ww.raw("i", p)).tags()
    w = Writer(True).string(txn_id).raw("q", pid).raw("h", epoch).array([0], t).tags()
    r = exchange(port, ADD_PARTITIONS, 3, bytes(w.out), True)
    r.raw("i")

    def topic_result(rr):
        rr.string()

        def part(p):
            idx, err = p.raw("i"), p.raw("h")
            p.tags()
            return idx, err
        out = rr.array(part)
        rr.tags()
        return out
    return dict(r.array(topic_result)[0])


def end_txn(port, txn_id, pid, epoch, commit):
    w = Writer(True).string(txn_id).raw("q", pid).raw("h", epoch).raw("b", 1 if commit else 0).tags()
    r = exchange(port, END_TXN, 3, bytes(w.out), True)
    r.raw("i")
    return r.raw("h")


def add_offsets(port, txn_id, pid, epoch, group):
    w = Writer(True).string(txn_id).raw("q", pid).raw("h", epoch).string(group).tags()
    r = exchange(port, ADD_OFFSETS, 3, bytes(w.out), True)
    r.raw("i")
    return r.raw("h")


def txn_offset_commit(port, txn_id, group, pid, epoch, topic, partition, offset,
                      generation=-1, member="", instance=None):
    """TxnOffsetCommit v3 (KIP-447's member fields); the partition's error."""
    def part(w, _):
        w.raw("i", partition).raw("q", offset).raw("i", -1).string("").tags()

    def t(w, _):
        w.string(topic).array([0], part).tags()
    w = (Writer(True).string(txn_id).string(group).raw("q", pid).raw("h", epoch)
         .raw("i", generation).string(member).string(instance).array([0], t).tags())
    r = exchange(port, TXN_OFFSET_COMMIT, 3, bytes(w.out), True)
    r.raw("i")

    def topic_result(rr):
        rr.string()

        def p(pp):
            pp.raw("i")
            e = pp.raw("h")
            pp.tags()
            return e
        out = rr.array(p)
        rr.tags()
        return out
    return r.array(topic_result)[0][0]


def write_marker(port, pid, epoch, commit, topic, partition, coordinator_epoch=0):
    def t(w, _):
        w.string(topic).array([partition], lambda ww, p: ww.raw("i", p)).tags()

    def marker(w, _):
        w.raw("q", pid).raw("h", epoch).raw("b", 1 if commit else 0).array([0], t).raw("i", coordinator_epoch).tags()
    w = Writer(True).array([0], marker).tags()
    r = exchange(port, WRITE_MARKERS, 1, bytes(w.out), True)

    def result(rr):
        rr.raw("q")

        def topic(tt):
            tt.string()

            def p(pp):
                pp.raw("i")
                e = pp.raw("h")
                pp.tags()
                return e
            out = tt.array(p)
            tt.tags()
            return out
        out = rr.array(topic)
        rr.tags()
        return out
    return r.array(result)[0][0][0]


# Kafka error codes
NONE, UNKNOWN_TOPIC_OR_PARTITION, INVALID_REQUEST = 0, 3, 42
INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE, INVALID_PRODUCER_ID_MAPPING = 47, 48, 49
INVALID_TRANSACTION_TIMEOUT, PRODUCER_FENCED, TRANSACTIONAL_ID_NOT_FOUND = 50, 90, 105


def test_bad_transaction_requests_get_kafkas_errors_and_change_nothing(make_broker):
    """Out-of-order EndTxn, unknown ids and producers, stale epochs after
    fencing, offsets for a group the transaction did not add, markers of an
    older epoch, bad timeouts: Kafka's error codes, and the transaction's
    state as before."""
    b = make_broker(FAST)
    ck_create_topic(b.bootstrap, "bad", partitions=1)
    port = b.port
    assert init_pid(port, "")[0] == INVALID_REQUEST
    assert init_pid(port, "t1", timeout_ms=10**9)[0] == INVALID_TRANSACTION_TIMEOUT
    assert describe_transaction(port, "t1")[0] == TRANSACTIONAL_ID_NOT_FOUND
    err, pid, epoch = init_pid(port, "t1")
    assert (err, epoch) == (NONE, 0) and pid >= 0
    # EndTxn with nothing begun, or for an unknown id / producer.
    assert end_txn(port, "t1", pid, epoch, True) == INVALID_TXN_STATE
    assert end_txn(port, "nobody", pid, epoch, True) == INVALID_PRODUCER_ID_MAPPING
    assert end_txn(port, "t1", pid + 1000, epoch, True) == INVALID_PRODUCER_ID_MAPPING
    assert describe_transaction(port, "t1")[1] == "Empty"
    # Partitions of an unknown topic: nothing is added.
    assert add_partitions(port, "t1", pid, epoch, "no-such-topic", [0]) == {0: UNKNOWN_TOPIC_OR_PARTITION}
    assert describe_transaction(port, "t1")[1] == "Empty"
    assert add_partitions(port, "t1", pid, epoch, "bad", [0]) == {0: NONE}
    st = describe_transaction(port, "t1")
    assert st[1] == "Ongoing" and st[4] == {"bad": [0]}
    # Offsets for a group the transaction did not add are refused.
    assert txn_offset_commit(port, "t1", "g-not-added", pid, epoch, "bad", 0, 5) == INVALID_TXN_STATE
    # A successor fences the producer: its transaction is aborted, and the old
    # epoch's requests are refused without changing anything.
    err2, pid2, epoch2 = init_pid(port, "t1")
    wait_for(lambda: init_pid(port, "t1")[0] == NONE, what="the fenced transaction aborted")
    st = describe_transaction(port, "t1")
    assert st[1] == "Empty" and st[2] == pid and st[3] > epoch
    assert add_partitions(port, "t1", pid, epoch, "bad", [0]) == {0: PRODUCER_FENCED}
    assert end_txn(port, "t1", pid, epoch, True) == PRODUCER_FENCED
    assert add_offsets(port, "t1", pid, epoch, "g") == PRODUCER_FENCED
    assert describe_transaction(port, "t1")[1] == "Empty"
    # A marker of an epoch older than the partition knows is refused; one for
    # an unknown partition names it.
    assert write_marker(port, pid, 0, True, "bad", 0) == INVALID_PRODUCER_EPOCH
    assert write_marker(port, pid, 99, True, "no-such-topic", 0) == UNKNOWN_TOPIC_OR_PARTITION
    # The broker still serves a real transactional producer.
    p = txn_producer(b, "after-bad")
    p.begin_transaction()
    p.produce("bad", value=b"ok", partition=0)
    p.commit_transaction(30)
    assert read_all(b, "bad", [0], "read_committed", expect=1) == {0: [b"ok"]}


def test_offsets_in_a_transaction_become_visible_on_commit(make_broker):
    """TxnOffsetCommit: the offset is invisible (and unstable for
    require_stable readers) until the commit, dropped by an abort, and
    survives a restart once committed."""
    b = make_broker(FAST)
    ck_create_topic(b.bootstrap, "src", partitions=1)
    p = txn_producer(b, "offs")
    from confluent_kafka import TopicPartition as TP

    def committed(group):
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group})
        try:
            return c.committed([TP("src", 0)], timeout=10)[0].offset
        finally:
            c.close()

    meta = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "g1"}).consumer_group_metadata()
    p.begin_transaction()
    p.send_offsets_to_transaction([TP("src", 0, 42)], meta, 30)
    p.abort_transaction(30)
    assert committed("g1") < 0
    p.begin_transaction()
    p.send_offsets_to_transaction([TP("src", 0, 17)], meta, 30)
    p.commit_transaction(30)
    assert committed("g1") == 17
    b.kill()
    b.start()
    assert committed("g1") == 17


# ---- the tools: samsa transactions and Kafka's kafka-transactions.sh ----

import json
import os
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMSA = os.path.join(ROOT, "build", "bin", "samsa")
KAFKA_REF = os.path.join(ROOT, "bench", "kafka-ref", "kafka-ref.sh")


def kafka_transactions(b, *args):
    """Kafka 4.4's kafka-transactions.sh (TransactionsCommand) against b."""
    subprocess.run([KAFKA_REF, "setup"], check=True, capture_output=True, timeout=600)
    cp = subprocess.run([KAFKA_REF, "classpath"], check=True, capture_output=True,
                        text=True).stdout.strip()
    return subprocess.run(["java", "-cp", cp, "org.apache.kafka.tools.TransactionsCommand",
                           "--bootstrap-server", b.bootstrap, *args],
                          capture_output=True, text=True, timeout=120)


def test_samsa_and_kafka_tools_list_describe_and_abort(make_broker):
    """samsa transactions and kafka-transactions.sh list and describe an open
    transaction; abort by start offset unblocks read_committed readers."""
    b = make_broker(FAST)
    ck_create_topic(b.bootstrap, "hang", partitions=1)
    p = txn_producer(b, "hanging-tx")
    p.begin_transaction()
    p.produce("hang", value=b"stuck", partition=0)
    p.flush(10)
    out = subprocess.run([SAMSA, "transactions", "list", "--bootstrap-server", b.bootstrap,
                          "--output", "json"], capture_output=True, text=True, check=True).stdout
    assert {"transactional_id": "hanging-tx", "producer_id": json.loads(out)[0]["producer_id"],
            "state": "Ongoing"} in json.loads(out)
    out = subprocess.run([SAMSA, "transactions", "describe", "--bootstrap-server", b.bootstrap,
                          "--transactional-id", "hanging-tx", "--output", "json"],
                         capture_output=True, text=True, check=True).stdout
    d = json.loads(out)
    assert d["state"] == "Ongoing" and d["partitions"] == [{"topic": "hang", "partition": 0}]
    missing = subprocess.run([SAMSA, "transactions", "describe", "--bootstrap-server", b.bootstrap,
                              "--transactional-id", "nobody"], capture_output=True, text=True)
    assert missing.returncode == 1 and "TRANSACTIONAL_ID_NOT_FOUND" in missing.stderr
    if shutil.which("java"):
        r = kafka_transactions(b, "list")
        assert r.returncode == 0, r.stderr
        assert "hanging-tx" in r.stdout and "Ongoing" in r.stdout
        r = kafka_transactions(b, "describe", "--transactional-id", "hanging-tx")
        assert r.returncode == 0, r.stderr
        assert "Ongoing" in r.stdout and "hang-0" in r.stdout
    assert read_all(b, "hang", [0], "read_committed", timeout=2.0) == {0: []}
    r = subprocess.run([SAMSA, "transactions", "abort", "--bootstrap-server", b.bootstrap,
                        "--topic", "hang", "--partition", "0", "--start-offset", "0"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # The partition is no longer held back: the LSO moved past the aborted records.
    plain = Producer({"bootstrap.servers": b.bootstrap})
    plain.produce("hang", value=b"later", partition=0)
    plain.flush(10)
    assert read_all(b, "hang", [0], "read_committed", expect=1) == {0: [b"later"]}


def end_txn_v5(port, txn_id, pid, epoch, commit):
    """EndTxn v5 (transactions V2): (error, producer id, epoch) of the answer."""
    w = Writer(True).string(txn_id).raw("q", pid).raw("h", epoch).raw("b", 1 if commit else 0).tags()
    r = exchange(port, END_TXN, 5, bytes(w.out), True)
    r.raw("i")
    return r.raw("h"), r.raw("q"), r.raw("h")


def test_transactions_v2_bump_the_epoch_at_every_end(make_broker):
    """KIP-890 part 2 (EndTxn v5): each commit or abort answers with the next
    epoch, its markers carry it (the old epoch is fenced on the partition), a
    retry by the old epoch of a completed end succeeds with the new one, and a
    transaction that wrote nothing still ends with a bump."""
    b = make_broker(FAST)
    ck_create_topic(b.bootstrap, "v2", partitions=1)
    port = b.port
    err, pid, epoch = init_pid(port, "v2-tx")
    assert err == NONE
    assert add_partitions(port, "v2-tx", pid, epoch, "v2", [0]) == {0: NONE}
    err, pid2, epoch2 = end_txn_v5(port, "v2-tx", pid, epoch, True)
    assert (err, pid2, epoch2) == (NONE, pid, epoch + 1)
    wait_for(lambda: describe_transaction(port, "v2-tx")[1] == "CompleteCommit", what="completed")
    assert describe_transaction(port, "v2-tx")[3] == epoch + 1
    # The retry of the same EndTxn by the old epoch: done, with the new epoch.
    assert end_txn_v5(port, "v2-tx", pid, epoch, True) == (NONE, pid, epoch + 1)
    # The old epoch is fenced everywhere; the marker fenced it on the partition.
    assert add_partitions(port, "v2-tx", pid, epoch, "v2", [0]) == {0: PRODUCER_FENCED}
    assert write_marker(port, pid, epoch, False, "v2", 0) == INVALID_PRODUCER_EPOCH
    # An empty transaction ends with a bump too.
    assert end_txn_v5(port, "v2-tx", pid, epoch + 1, False) == (NONE, pid, epoch + 2)
    wait_for(lambda: describe_transaction(port, "v2-tx")[1] == "CompleteAbort", what="aborted")


def offset_fetch_stable(port, group, topic, partition):
    """OffsetFetch v7 with require_stable: (partition error, committed offset)."""
    def t(w, _):
        w.string(topic).array([partition], lambda ww, p: ww.raw("i", p)).tags()
    w = Writer(True).string(group).array([0], t).raw("b", 1).tags()
    r = exchange(port, 9, 7, bytes(w.out), True)
    r.raw("i")

    def topic_result(rr):
        rr.string()

        def p(pp):
            pp.raw("i")
            off = pp.raw("q")
            pp.raw("i")
            pp.string()
            err = pp.raw("h")
            pp.tags()
            return err, off
        out = rr.array(p)
        rr.tags()
        return out
    return r.array(topic_result)[0][0]


UNSTABLE_OFFSET_COMMIT = 88
UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION = 25, 22


def join_static(port, group, instance, topic):
    """JoinGroup v5 of a static member (no member id round): blocks until the
    join phase completes; (error, generation, member id). The group then awaits
    SyncGroup (CompletingRebalance) until the session timeout."""
    meta = bytes(Writer(False).raw("h", 0).array([topic], lambda w, t: w.string(t))
                 .raw("i", -1).out)

    def protocol(w, _):
        w.string("range").raw("i", len(meta))
        w.out += meta
    w = (Writer(False).string(group).raw("i", 30000).raw("i", 30000).string("")
         .string(instance).string("consumer").array([0], protocol))
    r = exchange(port, 11, 5, bytes(w.out), False, timeout=30.0)
    r.raw("i")
    err, generation = r.raw("h"), r.raw("i")
    r.string()
    r.string()
    return err, generation, r.string()


def test_require_stable_waits_for_the_transaction(make_broker):
    """While a transaction holds an offset of a group's partition, OffsetFetch
    with require_stable answers UNSTABLE_OFFSET_COMMIT for it; after the
    commit it gets the new offset."""
    b = make_broker(FAST)
    ck_create_topic(b.bootstrap, "stable", partitions=1)
    port = b.port
    err, pid, epoch = init_pid(port, "stable-tx")
    assert add_offsets(port, "stable-tx", pid, epoch, "sg") == NONE
    assert txn_offset_commit(port, "stable-tx", "sg", pid, epoch, "stable", 0, 9) == NONE
    assert offset_fetch_stable(port, "sg", "stable", 0) == (UNSTABLE_OFFSET_COMMIT, -1)
    assert end_txn(port, "stable-tx", pid, epoch, True) == NONE
    wait_for(lambda: offset_fetch_stable(port, "sg", "stable", 0) == (NONE, 9),
             what="the committed transactional offset")


def test_member_commits_its_offsets_in_a_transaction_while_the_group_completes_a_rebalance(
        make_broker):
    """KIP-447: a TxnOffsetCommit naming the member and generation is accepted
    while the group awaits SyncGroup (Kafka does not enforce the group's state
    for transactional commits; REBALANCE_IN_PROGRESS would leave the producer
    only an abort), and refused for an unknown member or an old generation."""
    b = make_broker(FAST)
    ck_create_topic(b.bootstrap, "k447", partitions=1)
    port = b.port
    err, pid, epoch = init_pid(port, "k447-tx")
    assert err == NONE
    assert add_offsets(port, "k447-tx", pid, epoch, "k447-g") == NONE
    err, generation, member = join_static(port, "k447-g", "i1", "k447")
    assert err == NONE and generation >= 1 and member
    assert describe_group_state(port, "k447-g") == "CompletingRebalance"

    def commit(**member):
        return txn_offset_commit(port, "k447-tx", "k447-g", pid, epoch, "k447", 0, 5, **member)
    assert commit(generation=generation, member="nobody") == UNKNOWN_MEMBER_ID
    assert commit(generation=generation + 1, member=member, instance="i1") == ILLEGAL_GENERATION
    assert commit(generation=generation, member=member, instance="i1") == NONE
    assert end_txn(port, "k447-tx", pid, epoch, True) == NONE
    wait_for(lambda: offset_fetch_stable(port, "k447-g", "k447", 0) == (NONE, 5),
             what="the transactional offset committed")


def describe_group_state(port, group):
    """DescribeGroups v5: the group's state."""
    w = Writer(True).array([group], lambda ww, g: ww.string(g)).raw("b", 0).tags()
    r = exchange(port, 15, 5, bytes(w.out), True)
    r.raw("i")
    r.uvarint()  # one group
    r.raw("h")
    r.string()
    return r.string()
