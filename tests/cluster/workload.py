"""Producer and consumer workloads that feed a History (history.py), with
confluent-kafka: every acknowledged record and every record read is recorded
with its partition, offset and payload id (the record's value). produce() and
read_all() run once; Load runs producers, readers, consumer group members and
an admin loop in threads while faults are injected."""

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer,
                             TopicCollection, TopicPartition)
from confluent_kafka.admin import AdminClient


def produce(bootstrap, topic, history, ids, producer="p", conf=None, timeout=60.0):
    """Sends one record per id (value = id) with acks=all and idempotence;
    records each acknowledgement. Returns the ids that failed."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "message.timeout.ms": int(timeout * 1000), "log_level": 2, **(conf or {})})
    failed = []
    seq = {}

    def done(err, msg):
        v = msg.value().decode()
        if err is None:
            history.ack(msg.partition(), msg.offset(), v, producer=producer, seq=seq[v])
        else:
            failed.append(v)

    for i, v in enumerate(ids):
        seq[v] = i
        while True:
            try:
                p.produce(topic, value=v.encode(), on_delivery=done)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    left = p.flush(timeout + 5)
    if left:
        raise RuntimeError(f"{left} records neither acknowledged nor failed")
    return failed


def read_all(bootstrap, topic, history, partitions, reader="final", final=True, timeout=60.0):
    """Reads every partition from the beginning up to its high watermark at
    the start of the read; records every record. Returns the count."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"harness-{reader}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "isolation.level": "read_committed", "log_level": 2})
    try:
        ends = {}
        for p in partitions:
            _, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            ends[p] = high
        c.assign([TopicPartition(topic, p, 0) for p in partitions])
        pos = {p: 0 for p in partitions}
        n = 0
        deadline = time.monotonic() + timeout
        while any(pos[p] < ends[p] for p in partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"read_all: positions {pos}, ends {ends}")
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise RuntimeError(f"read_all: {msg.error()}")
            history.read(msg.partition(), msg.offset(), msg.value().decode(), reader=reader,
                         final=final)
            pos[msg.partition()] = msg.offset() + 1
            n += 1
        return n
    finally:
        c.close()


class Load:
    """A continuous load on one topic while faults are injected: `producers`
    idempotent acks=all producers, each sending numbered records (value
    "NAME-i", NAME p1, p2, ...) at `rate` records per second; `readers`
    consumers (r1, r2, ...) that have every partition assigned from the start
    and read until stopped; `members` consumers (g1, g2, ...) of one consumer
    group (`group`) that subscribe to the topic and commit what they consumed
    synchronously every `commit_interval` seconds and when partitions are
    revoked; and, with `admin`, a loop describing the topic, listing groups and
    describing the group every `admin_interval` seconds. Every acknowledgement,
    read, assignment, revocation and commit goes to the History. Clients'
    errors are counted by name in `errors` (they retry internally; a fatal
    producer error stops that producer and is in `fatal`); admin calls are
    counted in `admin_ok` by call and `admin_failed` by call and error
    (failures under faults are expected, not fatal).

    States: created -> running (start) -> draining (stop: producers flushed,
    so every record sent is acknowledged or failed; the group consumes until
    it has read up to the last acknowledged offset of every partition, at most
    `drain_timeout` seconds) -> stopped (members commit a last time; readers,
    members and the admin loop closed)."""

    def __init__(self, bootstrap, topic, partitions, history, producers=2, readers=2, rate=100,
                 message_timeout=120.0, producer_conf=None, reader_conf=None, members=0,
                 group=None, commit_interval=1.0, admin=False, admin_interval=1.0,
                 drain_timeout=120.0):
        self.bootstrap = bootstrap
        self.topic = topic
        self.partitions = list(partitions)
        self.history = history
        self.n_producers = producers
        self.n_readers = readers
        self.rate = rate
        self.message_timeout = message_timeout
        self.producer_conf = dict(producer_conf or {})
        self.reader_conf = dict(reader_conf or {})
        self.sent = {}  # producer name -> records handed to the client
        self.failed = []  # (producer, value, error name): not acknowledged
        self.fatal = []  # (producer, error)
        self.errors = {}  # client error name -> count
        self.reads = 0
        self.n_members = members
        self.group = group or f"harness-group-{topic}"
        self.commit_interval = commit_interval
        self.admin = admin
        self.admin_interval = admin_interval
        self.drain_timeout = drain_timeout
        self.counts = Counter()  # "group reads", "assignments" (received by members)
        self.group_top = {}  # partition -> highest offset a member returned
        self.commits = Counter()  # "acknowledged" / "failed" -> count
        self.drained = None  # whether the group read everything acknowledged before stopping
        self.admin_ok = Counter()
        self.admin_failed = Counter()
        self._admin_proc = None
        self._stopping = threading.Event()  # producers
        self._closing = threading.Event()  # readers, members, admin loop
        self._producers = []
        self._threads = []
        self._lock = threading.Lock()

    def _count(self, err):
        with self._lock:
            self.errors[err.name()] = self.errors.get(err.name(), 0) + 1

    def _tally(self, counter, key, n=1):
        with self._lock:
            counter[key] += n

    @property
    def acked(self):
        return len(self.history.acks)

    def start(self):
        for i in range(1, self.n_producers + 1):
            self._producers.append(self._spawn(self._produce, f"p{i}"))
        for i in range(1, self.n_readers + 1):
            self._threads.append(self._spawn(self._read, f"r{i}"))
        for i in range(1, self.n_members + 1):
            self._threads.append(self._spawn(self._consume, f"g{i}"))
        if self.admin:
            self._threads.append(self._spawn(self._admin, "admin"))
        return self

    def _spawn(self, fn, name):
        t = threading.Thread(target=fn, args=(name,), name=f"load-{name}", daemon=True)
        t.start()
        return t

    def _produce(self, name):
        fatal = []

        def on_error(err):
            self._count(err)
            if err.fatal():
                fatal.append(err)

        p = Producer({"bootstrap.servers": self.bootstrap, "acks": "all",
                      "enable.idempotence": True, "linger.ms": 5,
                      "message.timeout.ms": int(self.message_timeout * 1000),
                      "request.timeout.ms": 5000, "topic.metadata.refresh.interval.ms": 5000,
                      "log_level": 2, "error_cb": on_error, **self.producer_conf})
        seq = {}

        def done(err, msg):
            v = msg.value().decode()
            if err is None:
                self.history.ack(msg.partition(), msg.offset(), v, producer=name, seq=seq.pop(v))
            else:
                seq.pop(v, None)
                self._count(err)
                self.failed.append((name, v, err.name()))

        i = 0
        period = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stopping.is_set() and not fatal:
            v = f"{name}-{i}"
            seq[v] = i
            try:
                p.produce(self.topic, value=v.encode(), on_delivery=done)
            except BufferError:
                seq.pop(v)
                p.poll(0.1)
                continue
            except KafkaException as e:
                # Refused at once, e.g. _UNKNOWN_TOPIC after a broker's Metadata
                # said the topic does not exist: counted, the record is sent again.
                seq.pop(v)
                self._count(e.args[0])
                p.poll(0.1)
                continue
            i += 1
            self.sent[name] = i
            next_at += period
            while True:  # poll returns early when it served a callback
                wait = next_at - time.monotonic()
                p.poll(max(0.0, wait))
                if wait <= 0:
                    break
        left = p.flush(self.message_timeout + 10)
        if left:
            self.fatal.append((name, f"{left} records neither acknowledged nor failed"))
        if fatal:
            self.fatal.append((name, str(fatal[0])))

    def _read(self, name):
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"harness-{name}",
                      "enable.auto.commit": False, "auto.offset.reset": "earliest",
                      "isolation.level": "read_committed",
                      "topic.metadata.refresh.interval.ms": 5000, "log_level": 2,
                      "error_cb": self._count, **self.reader_conf})
        try:
            c.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in self.partitions])
            while not self._closing.is_set():
                msg = c.poll(0.2)
                if msg is None:
                    continue
                if msg.error():
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        self._count(msg.error())
                    continue
                self.history.read(msg.partition(), msg.offset(), msg.value().decode(), reader=name)
                self.reads += 1
        finally:
            c.close()

    def _consume(self, name):
        """A group member: records assignments, revocations, every record and
        every commit; commits the offset after the last record it processed of
        each partition it owns (only partitions it read in this assignment)."""
        h = self.history
        processed = {}  # partition -> offset after the last record read in this assignment
        committed = {}  # partition -> offset last acknowledged in this assignment

        def commit(c, parts):
            offsets = [TopicPartition(self.topic, p, processed[p]) for p in parts
                       if p in processed and processed[p] != committed.get(p)]
            if not offsets:
                return
            sent = h.now()
            try:
                result = c.commit(offsets=offsets, asynchronous=False)
            except KafkaException as e:
                self._count(e.args[0])
                for tp in offsets:
                    h.commit(name, tp.partition, tp.offset, sent, acked=False)
                self._tally(self.commits, "failed", len(offsets))
                return
            for tp in result:
                if tp.error:
                    self._count(tp.error)
                    self._tally(self.commits, "failed")
                    h.commit(name, tp.partition, tp.offset, sent, acked=False)
                else:
                    self._tally(self.commits, "acknowledged")
                    h.commit(name, tp.partition, tp.offset, sent, acked=True)
                    committed[tp.partition] = tp.offset

        def on_assign(c, parts):
            ps = [tp.partition for tp in parts]
            for p in ps:
                processed.pop(p, None)
                committed.pop(p, None)
            h.assign(name, ps)
            self._tally(self.counts, "assignments")

        def on_revoke(c, parts):
            ps = [tp.partition for tp in parts]
            commit(c, ps)
            h.revoke(name, ps)
            for p in ps:
                processed.pop(p, None)

        def on_lost(c, parts):  # no longer a member: its commits would be refused
            ps = [tp.partition for tp in parts]
            h.revoke(name, ps)
            for p in ps:
                processed.pop(p, None)

        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group,
                      "client.id": name, "enable.auto.commit": False,
                      "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                      "session.timeout.ms": 10000, "heartbeat.interval.ms": 1000,
                      "topic.metadata.refresh.interval.ms": 5000, "log_level": 2,
                      "error_cb": self._count, **self.reader_conf})
        try:
            c.subscribe([self.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
            last_commit = time.monotonic()
            while not self._closing.is_set():
                msg = c.poll(0.2)
                if msg is not None:
                    if msg.error():
                        if msg.error().code() != KafkaError._PARTITION_EOF:
                            self._count(msg.error())
                    else:
                        p, o = msg.partition(), msg.offset()
                        h.group_read(name, p, o, msg.value().decode())
                        processed[p] = o + 1
                        with self._lock:
                            self.counts["group reads"] += 1
                            self.group_top[p] = max(self.group_top.get(p, o), o)
                if time.monotonic() - last_commit >= self.commit_interval:
                    commit(c, list(processed))
                    last_commit = time.monotonic()
            commit(c, list(processed))
        finally:
            c.close()

    def _admin(self, name):
        """Runs the admin loop in a child process (admin_main): librdkafka's
        admin client has aborted the whole process under these faults (an
        assertion in rd_kafka_enq_once_del_source_return), which must not end
        the test. A child that dies is counted in admin_failed ("crashed") and
        started again; its counts are merged from the last line it printed."""
        while True:
            with self._lock:
                if self._closing.is_set():
                    return
                proc = subprocess.Popen(
                    [sys.executable, os.path.abspath(__file__), "admin", self.bootstrap,
                     self.topic, self.group, str(self.admin_interval)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                self._admin_proc = proc
            last = None
            for line in proc.stdout:
                last = line
            proc.wait()
            counts = json.loads(last) if last else {"ok": {}, "failed": {}}
            with self._lock:
                self.admin_ok.update(counts["ok"])
                self.admin_failed.update(counts["failed"])
                if proc.returncode != 0:
                    self.admin_failed[f"crashed (exit {proc.returncode})"] += 1

    def committed(self, timeout=60.0):
        """Records in the History the offsets the group holds for every
        partition (a fresh consumer of the group that does not join it);
        returns them."""
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group,
                      "enable.auto.commit": False, "log_level": 2})
        try:
            held = c.committed([TopicPartition(self.topic, p) for p in self.partitions],
                               timeout=timeout)
        finally:
            c.close()
        out = {}
        for tp in held:
            if tp.error:
                raise KafkaException(tp.error)
            out[tp.partition] = tp.offset if tp.offset >= 0 else None
            self.history.committed(tp.partition, out[tp.partition])
        return out

    def wait_acks(self, n, timeout, what="records acknowledged"):
        """Waits until n more records than now are acknowledged."""
        target = self.acked + n
        deadline = time.monotonic() + timeout
        while self.acked < target:
            if self.fatal:
                raise RuntimeError(f"a producer failed: {self.fatal}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {n} {what} "
                                   f"({self.acked - target + n} came)")
            time.sleep(0.1)

    def _drained(self):
        top = {}
        for p, o, _, _, _ in self.history.acks:
            top[p] = max(top.get(p, o), o)
        with self._lock:
            return all(self.group_top.get(p, -1) >= o for p, o in top.items())

    def stop(self):
        self._stopping.set()
        for t in self._producers:
            t.join()
        self._producers = []
        if self.n_members:
            deadline = time.monotonic() + self.drain_timeout
            while not self._drained() and time.monotonic() < deadline:
                time.sleep(0.2)
            self.drained = self._drained()
        with self._lock:
            self._closing.set()
            if self._admin_proc:
                self._admin_proc.stdin.close()  # the admin loop's end
        for t in self._threads:
            t.join()
        self._threads = []

    def summary(self):
        s = (f"sent {sum(self.sent.values())}, acknowledged {self.acked}, "
             f"failed {len(self.failed)}, fatal {len(self.fatal)}, reads {self.reads}")
        if self.n_members:
            s += (f", group reads {self.counts['group reads']} (assignments "
                  f"{self.counts['assignments']}, commits "
                  f"{self.commits['acknowledged']} acknowledged {self.commits['failed']} failed"
                  + ("" if self.drained is not False else ", not drained") + ")")
        if self.admin:
            s += (f", admin ok {dict(sorted(self.admin_ok.items()))} "
                  f"failed {dict(sorted(self.admin_failed.items()))}")
        return s + f", client errors {dict(sorted(self.errors.items()))}"


def admin_main(bootstrap, topic, group, interval):
    """The admin loop (a child process of Load): every `interval` seconds
    describes the topic, lists groups and describes the group, until stdin
    closes; after each round prints the counts so far as one JSON line
    ({"ok": {call: n}, "failed": {"call ERROR": n}})."""
    stop = threading.Event()

    def wait_stdin():
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_stdin, daemon=True).start()
    a = AdminClient({"bootstrap.servers": bootstrap, "log_level": 2})
    calls = {
        "describe_topics": lambda: a.describe_topics(TopicCollection([topic]),
                                                     request_timeout=5)[topic],
        "list_groups": lambda: a.list_consumer_groups(request_timeout=5),
        "describe_group": lambda: a.describe_consumer_groups([group], request_timeout=5)[group],
    }
    ok, failed = Counter(), Counter()
    while not stop.wait(interval):
        for call, future in calls.items():
            try:
                future().result(timeout=15)
                ok[call] += 1
            except KafkaException as e:
                failed[f"{call} {e.args[0].name()}"] += 1
            except TimeoutError:
                failed[f"{call} timeout"] += 1
        print(json.dumps({"ok": ok, "failed": failed}), flush=True)


if __name__ == "__main__" and sys.argv[1:2] == ["admin"]:
    admin_main(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
